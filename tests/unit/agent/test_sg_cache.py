"""The agent's security-group cache: which port to ask about a remote group, kept current as
ports and rules change, and the ports expected before their VIFs."""

from __future__ import annotations

from typing import Any

from dpagent.agent.sg_cache import SecurityGroupCache


def rule(remote: str | None = None) -> dict[str, Any]:
    return {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
            "port_range_min": 22, "port_range_max": 22, "remote_group_id": remote}


def device(port_id: str, groups: list[str], ip: str) -> dict[str, Any]:
    return {"device": port_id, "network_id": "net", "mac_address": "fa:16:3e:00:00:01",
            "fixed_ips": [ip], "security_groups": groups, "port_security_enabled": True,
            "allowed_address_pairs": []}


def reply(devices: dict[str, Any], groups: dict[str, Any]) -> dict[str, Any]:
    return {"devices": devices, "security_groups": groups, "sg_member_ips": {}}


LOCAL = {"ofport": 1, "local_vlan": 1}


def test_the_port_to_ask_about_a_remote_group_follows_ports_and_rules():
    cache = SecurityGroupCache()
    cache.ingest(reply({"a": device("a", ["web"], "10.0.0.1"),
                        "b": device("b", ["db"], "10.0.0.2")},
                       {"web": [rule("admin")], "db": [rule("web")]}), {"a": LOCAL, "b": LOCAL})
    assert cache.ports_referring_to(["admin", "web", "nobody"]) == {"admin": "a", "web": "b"}
    cache.remove_port("a")
    assert cache.ports_referring_to(["admin", "web"]) == {"web": "b"}
    cache.ingest(reply({}, {"db": [rule("admin")]}), {})  # db's rule now names admin
    assert cache.ports_referring_to(["admin", "web"]) == {"admin": "b"}


def test_an_expected_port_is_asked_through_when_no_wired_port_names_the_group():
    cache = SecurityGroupCache()
    changed = cache.ingest(reply({"x": device("x", ["db"], "10.0.0.9")}, {"db": [rule("web")]}),
                           {}, expected=["x"])
    assert changed.expected == {"x"} and not changed.ports
    assert cache.model().expected == {"x": ("db",)}
    assert cache.ports_referring_to(["web"]) == {"web": "x"}
    assert cache.ports_using(["db"]) == {"db": "x"}
    cache.forget_unused()
    assert "db" in cache.model().groups  # an expected port keeps its groups
    assert cache.forget_expected("x") and not cache.forget_expected("x")
    assert cache.ports_referring_to(["web"]) == {}
    cache.forget_unused()
    assert "db" not in cache.model().groups

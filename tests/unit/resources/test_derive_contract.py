"""The cache-derived answers equal the server's, for the objects recorded from a real
neutron-server 29 (``../shared/contract/rpc``): the ``bulk_pull`` replies fill a cache, and
the device details and security-group info derived from it mean what the server's own
``get_devices_details_list_and_failed_devices`` and ``security_group_info_for_devices``
replies of the same run said -- compared field by field that the agent uses, and through the
agent's own parsers (what the compiler would get)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from dpagent.resources.cache import Interest, ResourceCache, put_all
from dpagent.resources.derive import device_details, security_group_info
from dpagent.resources.objects import PARSERS, data_of
from dpagent.rpc.replies import check_device_details, check_security_group_info
from flows.parse import parse_groups, parse_members, parse_port

CONTRACT = Path(__file__).resolve().parents[3] / "tests" / "unit" / "rpc" / "contract"
SHARED = Path("/work/shared/contract/rpc")
HOST = "compute1"
DETAIL_FIELDS = ("network_id", "mac_address", "admin_state_up", "network_type",
                 "segmentation_id", "physical_network", "mtu", "fixed_ips", "device_owner",
                 "allowed_address_pairs", "port_security_enabled", "profile", "port_id")


def recording(name: str) -> dict[str, Any]:
    for base in (CONTRACT / "rpc", SHARED):
        path = base / name
        if path.exists():
            return json.loads(path.read_text())
    pytest.skip(f"no recording {name}")


def objects(name: str) -> list[Any]:
    reply = recording(name)["response"]
    return [PARSERS[data_of(o, "o")[0]](o, "o") for o in reply]


@pytest.fixture
def cache() -> ResourceCache:
    ports = objects("13_bulk_pull_Port_by_id.json") + \
        objects("15_bulk_pull_Port_by_security_group_ids.json")
    groups = objects("18_bulk_pull_SecurityGroup.json")
    interest = Interest(local_ports={p.id for p in ports},
                        groups={g.id for g in groups},
                        networks={p.network_id for p in ports})
    interest.remote_groups = {r.remote_group_id for g in groups for r in g.rules
                              if r.remote_group_id}
    made = ResourceCache(interest)
    put_all(made, [*ports, *groups, *objects("16_bulk_pull_Network.json"),
                   *objects("17_bulk_pull_Subnet.json"),
                   *objects("19_bulk_pull_SecurityGroupRule.json")])
    return made


def test_device_details_mean_what_the_server_said(cache):
    call = recording("05_get_devices_details_list_and_failed_devices.json")
    server = {e["device"]: e for e in call["response"]["devices"]}
    compared = 0
    for device, entry in server.items():
        if device not in cache.ports:
            continue  # not in the recorded pulls
        ours = device_details(cache, device, HOST)
        assert set(ours) >= set(entry) - {"propagate_uplink_status", "qos_network_policy_id",
                                          "qos_policy_id"}, device
        for key in DETAIL_FIELDS:
            assert ours.get(key) == entry.get(key), (device, key)
        compared += 1
    assert compared == 3  # two bound, one unbound subport ({'device': id} both)
    # through the agent's own check, as the agent core receives them
    wanted = sorted(d for d in server if d in cache.ports)
    ours = {"devices": [device_details(cache, d, HOST) for d in wanted], "failed_devices": []}
    mine, theirs = check_device_details(ours, wanted), check_device_details(
        {"devices": [server[d] for d in wanted], "failed_devices": []}, wanted)
    assert not mine.failed and not theirs.failed
    for a, b in zip(mine.devices, theirs.devices, strict=True):
        assert {k: a.get(k) for k in DETAIL_FIELDS} == {k: b.get(k) for k in DETAIL_FIELDS}


def test_a_port_bound_elsewhere_is_no_active_binding_and_an_unknown_one_just_a_device(cache):
    port = next(p for p in cache.ports.values() if p.active_binding() and
                p.active_binding().host == HOST)  # type: ignore[union-attr]
    assert device_details(cache, port.id, "another-host") == {
        "device": port.id, "no_active_binding": True}
    assert device_details(cache, "tap-does-not-exist", HOST) == {"device": "tap-does-not-exist"}


def test_security_group_info_means_what_the_server_said(cache):
    call = recording("10_security_group_info_for_devices.json")
    asked = [d for d in call["kwargs"]["devices"] if d in cache.ports]
    assert asked, "no recorded port to compare"
    theirs = check_security_group_info(call["response"], call["kwargs"]["devices"]).info
    mine = check_security_group_info(security_group_info(cache, asked), asked).info
    warnings: list[str] = []
    for port_id in asked:
        a, b = mine["devices"][port_id], theirs["devices"][port_id]
        assert parse_port(port_id, {**a, "ofport": 1, "local_vlan": 1}, {}) == \
            parse_port(port_id, {**b, "ofport": 1, "local_vlan": 1}, {})
        assert sorted(a["security_group_source_groups"]) == \
            sorted(b["security_group_source_groups"])
    used = {sg for p in asked for sg in theirs["devices"][p]["security_groups"]}
    assert used
    for sg in used:
        groups_a, _ = parse_groups({sg: mine["security_groups"][sg]}, warnings)
        groups_b, _ = parse_groups({sg: theirs["security_groups"][sg]}, warnings)
        # the same rules; ours name each rule by its id (the server's reply has none)
        assert _content(groups_a[sg]) == _content(groups_b[sg]), sg
        rule_ids = {r.id for r in cache.rules_in(sg)}
        assert {r.origin.rsplit(" ", 1)[1] for r in groups_a[sg]} <= rule_ids
    assert set(mine["sg_member_ips"]) == set(theirs["sg_member_ips"])
    for group_id in theirs["sg_member_ips"]:
        # the same addresses (the server sends no MACs with them; the cache does, as
        # neutron's agent-side shim does: the compiler uses the addresses)
        assert parse_members({group_id: mine["sg_member_ips"][group_id]}, warnings) == \
            parse_members({group_id: theirs["sg_member_ips"][group_id]}, warnings)


def _content(rules):
    """Rules as what they match, without where they came from."""
    return {dataclasses.replace(rule, origin="") for rule in rules}

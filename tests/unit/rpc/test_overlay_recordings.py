"""The recorded tunnelled-network traffic (contract/overlay): the shapes the overlay code uses.

A real neutron-server 29 with l2population, played to by three probe agents
(tools/record_overlay_contract.py; compute1 and compute2 with vxlan, geneve and gre, compute3
with vxlan only).  These tests pin what was seen, so that a re-recording that changes a shape
fails here rather than in the agent's parsers: tunnel_sync replies and errors, tunnel_update /
tunnel_delete fanouts, the fdb payloads and which of them go to one host.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import pytest

from tests.unit.rpc.recordings import overlay_records

RECORDS = overlay_records()
FLOODING_ENTRY = ["00:00:00:00:00:00", "0.0.0.0"]
L2POP = "q-agent-notifier-l2population-update"
FDB_METHODS = ("add_fdb_entries", "remove_fdb_entries", "update_fdb_entries")
HOSTS = ["compute1", "compute2", "compute3"]
IP = {"compute1": "192.0.2.1", "compute2": "192.0.2.2", "compute3": "192.0.2.3"}
MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
CAST_KEYS = {"exchange", "routing_key", "fanout", "call", "method", "version", "kwargs",
             "context", "oslo_version", "t_ms", "before_reply", "delivered_to",
             "hosts_reached"}


def record(prefix: str) -> dict[str, Any]:
    (found,) = [r for stem, r in RECORDS.items() if stem.startswith(prefix)]
    return found


def casts(prefix: str, *methods: str) -> list[dict[str, Any]]:
    return [c for c in record(prefix)["casts"] if not methods or c["method"] in methods]


def fdb(prefix: str) -> list[dict[str, Any]]:
    return casts(prefix, *FDB_METHODS)


def port(name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [r["reply"]["port"] for stem, r in RECORDS.items()
                                   if re.fullmatch(rf"\d\d_create_port_{name}_.*", stem)]
    (one,) = found
    return one


def network(kind: str) -> dict[str, Any]:
    found: dict[str, Any] = record(f"{'30' if kind == 'vxlan' else '80'}_create_network"
                                   )["reply"]["network"]
    assert found["provider:network_type"] == kind
    return found


def pairs(name: str) -> list[list[str]]:
    p = port(name)
    return [[p["mac_address"], ip["ip_address"]] for ip in p["fixed_ips"]]


def entries(cast: dict[str, Any], net: str) -> dict[str, list[list[str]]]:
    """``ports`` of one network in an add/remove cast."""
    value: dict[str, list[list[str]]] = cast["kwargs"]["fdb_entries"][net]["ports"]
    return value


def unordered(values: list[list[str]]) -> list[list[str]]:
    """The flooding entry first (as neutron sends it), the rest sorted."""
    flood = [v for v in values if v == FLOODING_ENTRY]
    return flood + sorted(v for v in values if v != FLOODING_ENTRY)


def host_targeted(cast: dict[str, Any]) -> str | None:
    """The host a cast was addressed to, or None for a fanout."""
    match = re.fullmatch(rf"{re.escape(L2POP)}\.(compute\d)", cast["routing_key"])
    return match.group(1) if match else None


# -- the files ---------------------------------------------------------------------------------

def test_every_step_has_request_reply_and_casts() -> None:
    assert len(RECORDS) > 50
    for stem, rec in RECORDS.items():
        assert rec["step"] == stem
        assert rec["request"]["kind"] in ("call", "rest"), stem
        for cast in rec["casts"]:
            assert CAST_KEYS <= set(cast), (stem, set(cast) ^ CAST_KEYS)
            assert cast["oslo_version"] == "2.0"
            assert not cast["call"], stem  # the server sends agents casts only
        if rec["request"]["kind"] == "call":
            assert rec["request"]["exchange"] == "neutron"
            (reply,) = rec["wire_reply"]  # one reply message, "ending": true
            assert reply["exchange"] == "" and reply["message"]["ending"] is True


def test_agents_report_and_show_their_tunnel_configuration() -> None:
    assert record("01_report_state_compute1")["reply"] == "new"
    assert record("04_report_state_compute1_periodic")["reply"] == "alive"
    agents = {a["host"]: a for a in record("05_list_agents")["reply"]["agents"]}
    assert sorted(agents) == HOSTS
    for host, agent in agents.items():
        conf = agent["configurations"]
        assert agent["agent_type"] == "Open vSwitch agent" and agent["alive"]
        assert conf["tunneling_ip"] == IP[host]
        assert conf["tunnel_types"] == (["vxlan"] if host == "compute3"
                                        else ["vxlan", "geneve", "gre"])
        assert conf["l2_population"] is True and conf["arp_responder_enabled"] is True


# -- tunnel_sync -------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "first"), [("vxlan", "10"), ("geneve", "12"), ("gre", "14")])
def test_tunnel_sync_reply_per_type(kind: str, first: str) -> None:
    one = record(f"{first}_tunnel_sync_{kind}_compute1")
    two = record(f"{int(first) + 1}_tunnel_sync_{kind}_compute2")
    keys = {"ip_address", "host", "udp_port"} if kind == "vxlan" else {"ip_address", "host"}
    for rec in (one, two):
        assert set(rec["reply"]) == {"tunnels"}
        for tunnel in rec["reply"]["tunnels"]:
            assert set(tunnel) == keys
            if kind == "vxlan":
                assert tunnel["udp_port"] == 4789
    # the caller is in its own reply; the second host sees the first
    assert one["reply"]["tunnels"] == [{k: v for k, v in {
        "ip_address": IP["compute1"], "host": "compute1", "udp_port": 4789}.items() if k in keys}]
    assert [(t["host"], t["ip_address"]) for t in two["reply"]["tunnels"]] == [
        ("compute1", IP["compute1"]), ("compute2", IP["compute2"])]


def test_every_tunnel_sync_fans_out_tunnel_update_to_every_agent_caller_included() -> None:
    syncs = {s: r for s, r in RECORDS.items()
             if r["request"].get("method") == "tunnel_sync" and r["error"] is None}
    assert len(syncs) >= 14
    for stem, rec in syncs.items():
        kwargs = rec["request"]["kwargs"]
        update = casts(stem, "tunnel_update")[-1]
        assert {k: update[k] for k in ("exchange", "routing_key", "fanout", "version")} == {
            "exchange": "q-agent-notifier-tunnel-update_fanout", "routing_key": "",
            "fanout": True, "version": "1.0"}, stem
        assert update["kwargs"] == {"tunnel_ip": kwargs["tunnel_ip"],
                                    "tunnel_type": kwargs["tunnel_type"]}, stem
        assert update["hosts_reached"] == HOSTS and update["before_reply"], stem
        # the fanout carries the context of the call that caused it
        assert update["context"]["request_id"] == rec["request"]["context"]["request_id"]
        assert [c["method"] for c in rec["casts"]] in (["tunnel_update"],
                                                       ["tunnel_delete", "tunnel_update"])


def test_tunnel_sync_without_host_is_a_legacy_endpoint() -> None:
    tunnels = record("18_tunnel_sync_vxlan_no_host")["reply"]["tunnels"]
    assert {"ip_address": "192.0.2.9", "host": None, "udp_port": 4789} in tunnels


@pytest.mark.parametrize(("prefix", "cls", "module", "text"), [
    ("20_tunnel_sync_error_ipv6", "InvalidInput", "neutron_lib.exceptions",
     "overlay_ip_version"),
    ("21_tunnel_sync_error_type_not_loaded", "InvalidInput", "neutron_lib.exceptions",
     "Network type value stt not supported"),
    ("22_tunnel_sync_error_type_not_tunnelled", "AttributeError", "builtins",
     "'VlanTypeDriver' object has no attribute 'get_endpoint_by_host'"),
    ("23_tunnel_sync_error_missing_ip", "InvalidInput", "neutron_lib.exceptions",
     "Tunnel IP value needed by the ML2 plugin"),
    ("24_tunnel_sync_error_missing_type", "InvalidInput", "neutron_lib.exceptions",
     "Network type value needed by the ML2 plugin"),
    ("25_tunnel_sync_error_invalid_ip", "AddrFormatError", "netaddr.core",
     "failed to detect a valid IP address from 'not-an-ip'"),
])
def test_tunnel_sync_errors(prefix: str, cls: str, module: str, text: str) -> None:
    rec = record(prefix)
    assert rec["reply"] is None and rec["casts"] == []
    (reply,) = rec["wire_reply"]
    failure = reply["message"]["failure"]
    assert reply["message"]["result"] is None
    assert (failure["class"], failure["module"]) == (cls, module)
    assert text in failure["message"]
    # what an oslo.messaging client without allowed_remote_exmods raises: builtins as
    # themselves, anything else as RemoteError naming the class
    if module == "builtins":
        assert rec["error"]["client_raises"] == f"builtins.{cls}"
    else:
        assert rec["error"]["client_raises"] == "oslo_messaging.RemoteError"
        assert rec["error"]["exc_type"] == cls


def test_an_ip_taken_by_another_host_sends_no_tunnel_delete() -> None:
    rec = record("26_tunnel_sync_ip_taken_by_other_host")
    assert [c["method"] for c in rec["casts"]] == ["tunnel_update"]
    tunnels = {t["ip_address"]: t["host"] for t in rec["reply"]["tunnels"]}
    assert tunnels[IP["compute2"]] == "compute3"
    assert IP["compute3"] not in tunnels  # compute3's own endpoint went with it


def test_a_changed_ip_deletes_the_old_endpoint_before_announcing_the_new() -> None:
    delete, update = casts("90_tunnel_sync_vxlan_compute1_new_ip")
    assert delete["method"] == "tunnel_delete"
    assert (delete["exchange"], delete["routing_key"]) == (
        "q-agent-notifier-tunnel-delete_fanout", "")
    assert delete["kwargs"] == {"tunnel_ip": IP["compute1"], "tunnel_type": "vxlan"}
    assert delete["hosts_reached"] == HOSTS
    assert update["kwargs"] == {"tunnel_ip": "192.0.2.11", "tunnel_type": "vxlan"}
    ips = [t["ip_address"] for t in record("90_tunnel_sync")["reply"]["tunnels"]]
    assert "192.0.2.11" in ips and IP["compute1"] not in ips


# -- ports on tunnelled networks ---------------------------------------------------------------

@pytest.mark.parametrize(("kind", "prefix", "vnis", "mtu"), [
    ("vxlan", "41_get_devices_details_p1", range(5001, 6001), 1450),
    ("geneve", "83_get_devices_details_g1", range(7001, 8001), 1442),  # max_header_size 38
])
def test_device_details_of_a_tunnelled_port(kind: str, prefix: str, vnis: range,
                                            mtu: int) -> None:
    (details,) = record(prefix)["reply"]["devices"]
    assert details["network_type"] == kind
    assert details["physical_network"] is None
    assert details["segmentation_id"] == network(kind)["provider:segmentation_id"]
    assert details["segmentation_id"] in vnis
    assert details["mtu"] == mtu


def test_a_segment_the_agent_has_no_tunnel_type_for_fails_to_bind() -> None:
    g3 = record("88_create_port_g3_compute3")["reply"]["port"]
    assert g3["binding:vif_type"] == "binding_failed" and g3["status"] == "DOWN"
    assert record("89_get_devices_details_g3")["reply"] == {
        "devices": [{"device": g3["id"]}], "failed_devices": []}


# -- l2population ------------------------------------------------------------------------------

def test_fdb_entries_shape() -> None:
    seen = 0
    for stem in RECORDS:
        for cast in fdb(stem):
            if cast["method"] == "update_fdb_entries":
                continue
            seen += 1
            assert set(cast["kwargs"]) == {"fdb_entries"}, stem
            for net in cast["kwargs"]["fdb_entries"].values():
                assert set(net) == {"segment_id", "network_type", "ports"}
                assert isinstance(net["segment_id"], int)  # the VNI
                assert net["network_type"] in ("vxlan", "geneve")
                for ip, values in net["ports"].items():
                    ipaddress.IPv4Address(ip)
                    assert values, stem
                    for n, value in enumerate(values):
                        assert isinstance(value, list) and len(value) == 2
                        if value == FLOODING_ENTRY:
                            assert n == 0, stem  # the flooding entry comes first
                        else:
                            assert MAC.match(value[0])
                            ipaddress.ip_address(value[1])
    assert seen >= 40


def test_the_full_fdb_goes_to_one_host_and_the_rest_fans_out() -> None:
    for stem in RECORDS:
        for cast in fdb(stem):
            host = host_targeted(cast)
            if host is not None:
                assert cast["method"] == "add_fdb_entries", stem
                assert (cast["exchange"], cast["fanout"]) == ("neutron", False)
                assert cast["hosts_reached"] == [host]
                assert cast["delivered_to"] == [f"{L2POP}.{host}"]
            else:
                assert (cast["exchange"], cast["routing_key"], cast["fanout"]) == (
                    f"{L2POP}_fanout", "", True), stem
                assert cast["hosts_reached"] == HOSTS
            assert cast["version"] == "1.0"


def test_l2pop_casts_of_a_device_report_precede_its_reply() -> None:
    for stem, rec in RECORDS.items():
        if rec["request"].get("method") == "update_device_list":
            assert all(c["before_reply"] for c in rec["casts"]), stem


def test_first_port_of_the_network_fans_out_its_flooding_entry_twice() -> None:
    net = network("vxlan")["id"]
    sent = fdb("42_update_device_list_up_p1")
    # once from the port's move to ACTIVE, once from the device report itself
    assert len(sent) == 2 and sent[0]["kwargs"] == sent[1]["kwargs"]
    assert all(host_targeted(c) is None for c in sent)  # nobody else: no full fdb
    assert sent[0]["kwargs"]["fdb_entries"][net]["segment_id"] == network(
        "vxlan")["provider:segmentation_id"]
    assert entries(sent[0], net) == {IP["compute1"]: [FLOODING_ENTRY, *pairs("p1")]}


def test_first_port_of_a_second_host_gets_the_full_fdb_host_targeted() -> None:
    net = network("vxlan")["id"]
    sent = fdb("45_update_device_list_up_p2_compute2")
    assert [host_targeted(c) for c in sent] == ["compute2", None, "compute2", None]
    assert [c["kwargs"] for c in sent[:2]] == [c["kwargs"] for c in sent[2:]]  # sent twice
    full, announce = sent[:2]
    assert entries(full, net) == {IP["compute1"]: [FLOODING_ENTRY, *pairs("p1")]}
    assert entries(announce, net) == {IP["compute2"]: [FLOODING_ENTRY, *pairs("p2")]}


def test_two_active_ports_on_a_host_still_count_as_its_first() -> None:
    net = network("vxlan")["id"]
    full, announce = fdb("48_update_device_list_up_p3_compute2")[:2]
    assert host_targeted(full) == "compute2"
    assert entries(full, net) == {IP["compute1"]: [FLOODING_ENTRY, *pairs("p1")]}
    assert entries(announce, net) == {IP["compute2"]: [FLOODING_ENTRY, *pairs("p3")]}


def test_a_port_with_two_fixed_ips_sends_a_pair_per_ip() -> None:
    net = network("vxlan")["id"]
    full, announce = fdb("51_update_device_list_up_p4_compute1")[:2]
    assert host_targeted(full) == "compute1"
    assert unordered(entries(full, net)[IP["compute2"]]) == unordered(
        [FLOODING_ENTRY, *pairs("p2"), *pairs("p3")])
    assert len(pairs("p4")) == 2
    assert unordered(entries(announce, net)[IP["compute1"]]) == unordered(
        [FLOODING_ENTRY, *pairs("p4")])


def test_a_third_port_is_announced_without_flooding_entry_or_full_fdb() -> None:
    net = network("vxlan")["id"]
    sent = fdb("54_update_device_list_up_p5_compute2")
    assert [host_targeted(c) for c in sent] == [None, None]
    assert entries(sent[0], net) == {IP["compute2"]: pairs("p5")}


@pytest.mark.parametrize(("prefix", "keys"), [
    ("55_update_port_p1_fixed_ip_change", {"before", "after"}),
    ("56_update_port_p4_remove_ip", {"before"}),
    ("57_update_port_p4_add_ip", {"after"}),
])
def test_fixed_ip_changes_are_chg_ip_updates(prefix: str, keys: set[str]) -> None:
    net = network("vxlan")["id"]
    (cast,) = fdb(prefix)
    assert cast["method"] == "update_fdb_entries" and host_targeted(cast) is None
    chg = cast["kwargs"]["fdb_entries"]["chg_ip"]
    assert list(chg) == [net] and list(chg[net]) == [IP["compute1"]]
    change = chg[net][IP["compute1"]]
    assert set(change) == keys
    mac = port(prefix.split("_")[3])["mac_address"]
    for values in change.values():
        assert len(values) == 1 and values[0][0] == mac
    request = record(prefix)["request"]["body"]["port"]["fixed_ips"]
    if "after" in change:
        assert change["after"][0][1] in [ip["ip_address"] for ip in request]
    if "before" in change:
        assert change["before"][0][1] not in [ip["ip_address"] for ip in request]
    assert [c["method"] for c in casts(prefix, "port_update")] == ["port_update"]


@pytest.mark.parametrize("prefix", ["58_update_device_list_refresh_tunnels_compute1",
                                    "59_update_device_list_refresh_tunnels_false"])
def test_reporting_active_ports_again_resends_the_full_fdb_per_device(prefix: str) -> None:
    net = network("vxlan")["id"]
    assert record(prefix)["request"]["kwargs"]["refresh_tunnels"] is prefix.startswith("58")
    sent = fdb(prefix)
    assert [host_targeted(c) for c in sent] == ["compute1", None, "compute1", None]
    assert unordered(entries(sent[0], net)[IP["compute2"]]) == unordered(
        [FLOODING_ENTRY, *pairs("p2"), *pairs("p3"), *pairs("p5")])
    assert all(v[0] == FLOODING_ENTRY for c in sent for v in entries(c, net).values())


@pytest.mark.parametrize(("prefix", "name", "flood"), [
    ("60_update_device_list_down_p3", "p3", False),
    ("61_delete_port_p3_down", "p3", False),  # removed a second time
    ("62_delete_port_p5_active", "p5", False),
    ("63_update_device_list_down_p2_last", "p2", True),
    ("65_delete_port_p2_active_last", "p2", True),
])
def test_removals(prefix: str, name: str, flood: bool) -> None:
    net = network("vxlan")["id"]
    (cast,) = fdb(prefix)
    assert cast["method"] == "remove_fdb_entries" and host_targeted(cast) is None
    assert entries(cast, net) == {
        IP["compute2"]: [FLOODING_ENTRY, *pairs(name)] if flood else pairs(name)}


def test_a_migrated_port_is_removed_from_the_old_host_and_added_on_the_new() -> None:
    net = network("vxlan")["id"]
    (removed,) = fdb("70_update_port_p4_host_compute2")
    assert removed["method"] == "remove_fdb_entries"
    (old_pairs,) = entries(removed, net).values()
    assert list(entries(removed, net)) == [IP["compute1"]]  # p1 stays there: no flood entry
    assert FLOODING_ENTRY not in old_pairs and {p[0] for p in old_pairs} == {
        port("p4")["mac_address"]}
    (update,) = casts("70_update_port_p4_host_compute2", "port_update")
    assert update["kwargs"]["port"]["binding:host_id"] == "compute2"
    full, announce = fdb("72_update_device_list_up_p4_compute2")[:2]
    assert host_targeted(full) == "compute2"
    assert list(entries(full, net)) == [IP["compute1"]]
    assert entries(announce, net)[IP["compute2"]][0] == FLOODING_ENTRY
    stale = record("73_update_device_list_down_p4_compute1_stale")
    assert stale["casts"] == []
    assert stale["reply"]["devices_down"] == [{"device": port("p4")["id"], "exists": True}]


def test_geneve_fdb_names_its_type_and_vni() -> None:
    net = network("geneve")
    full, announce = fdb("87_update_device_list_up_g2_compute2")[:2]
    for cast in (full, announce):
        entry = cast["kwargs"]["fdb_entries"][net["id"]]
        assert entry["network_type"] == "geneve"
        assert entry["segment_id"] == net["provider:segmentation_id"]
    assert host_targeted(full) == "compute2"
    assert entries(full, net["id"]) == {IP["compute1"]: [FLOODING_ENTRY, *pairs("g1")]}

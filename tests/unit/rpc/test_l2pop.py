"""Tunnel and l2population payloads: each recorded one parses; a bad item is named, rest kept."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from dpagent.rpc.l2pop import (
    FdbEntry,
    parse_chg_ip,
    parse_fdb_entries,
    parse_tunnel_notice,
    parse_tunnel_sync_reply,
)
from dpagent.rpc.validation import PayloadError

RECORDED = Path(__file__).parent / "contract" / "overlay"
NET = "2b347dd6-72ab-4e45-a52b-54afbcdd59d5"


def recorded_casts(method: str) -> list[dict[str, Any]]:
    casts = []
    for path in sorted(RECORDED.glob("*.json")):
        record = json.loads(path.read_text())
        casts += [c for c in record.get("casts", []) if c.get("method") == method]
    return casts


def fdb(*ports: tuple[str, list[list[str]]], segment: Any = 5624) -> dict[str, Any]:
    return {NET: {"network_type": "vxlan", "segment_id": segment, "ports": dict(ports)}}


@pytest.mark.parametrize("method", ["add_fdb_entries", "remove_fdb_entries"])
def test_every_recorded_fdb_cast_parses_whole(method):
    casts = recorded_casts(method)
    assert casts, f"no recorded {method}"
    for cast in casts:
        networks, problems = parse_fdb_entries(cast["kwargs"]["fdb_entries"])
        assert problems == []
        sent = cast["kwargs"]["fdb_entries"]
        assert {n.network_id for n in networks} == set(sent)
        for network in networks:
            pairs = sum(len(p) for p in sent[network.network_id]["ports"].values())
            assert len(network.entries) == pairs


def test_the_flooding_entry_and_a_port_entry():
    (network,), problems = parse_fdb_entries(fdb(("192.0.2.1", [
        ["00:00:00:00:00:00", "0.0.0.0"], ["FA:16:3E:FC:25:37", "10.50.0.84"]])))
    assert problems == []
    assert (network.network_type, network.segmentation_id) == ("vxlan", 5624)
    assert network.entries == (FdbEntry(NET, "192.0.2.1"),
                               FdbEntry(NET, "192.0.2.1", "fa:16:3e:fc:25:37", "10.50.0.84"))
    assert network.entries[0].flooding and not network.entries[1].flooding


def test_bad_items_are_named_by_path_and_the_others_kept():
    payload = fdb(("192.0.2.1", [["00:00:00:00:00:00", "0.0.0.0"], ["not-a-mac", "10.0.0.1"],
                                 ["fa:16:3e:00:00:01", "10.0.0.300"], ["fa:16:3e:00:00:02"]]),
                  ("bogus", [["fa:16:3e:00:00:03", "10.0.0.3"]]),
                  ("192.0.2.2", [["fa:16:3e:00:00:04", "10.0.0.4"]]))
    payload["other-net"] = {"network_type": "vxlan", "ports": {}}
    networks, problems = parse_fdb_entries(payload)
    assert [len(n.entries) for n in networks] == [2]
    assert [e.remote_ip for e in networks[0].entries] == ["192.0.2.1", "192.0.2.2"]
    assert problems == [
        f"fdb_entries.{NET}.ports.192.0.2.1[1][0]: 'not-a-mac' is not a MAC address",
        f"fdb_entries.{NET}.ports.192.0.2.1[2][1]: '10.0.0.300' is not an IP address",
        f"fdb_entries.{NET}.ports.192.0.2.1[3]: expected [mac, ip], got ['fa:16:3e:00:00:02']",
        f"fdb_entries.{NET}.ports.bogus: 'bogus' is not an IP address",
        "fdb_entries.other-net.segment_id: missing",
    ]


def test_recorded_chg_ip_parses_and_other_actions_are_named():
    casts = recorded_casts("update_fdb_entries")
    assert casts, "no recorded update_fdb_entries"
    for cast in casts:
        changes, problems = parse_chg_ip(cast["kwargs"]["fdb_entries"])
        assert problems == [] and changes
        assert all(c.before or c.after for c in changes)
    changes, problems = parse_chg_ip({"chg_ip": {NET: {"192.0.2.2": {
        "before": [["fa:16:3e:00:00:01", "10.0.0.5"]],
        "after": [["fa:16:3e:00:00:01", "10.0.0.6"]]}}}, "chg_mac": {}})
    assert [(c.before, c.after) for c in changes] == [
        ((("fa:16:3e:00:00:01", "10.0.0.5"),), (("fa:16:3e:00:00:01", "10.0.0.6"),))]
    assert problems == ["fdb_entries.chg_mac: unsupported update (only chg_ip is)"]


def test_recorded_tunnel_sync_replies_and_tunnel_casts():
    replies = []
    for path in sorted(RECORDED.glob("*tunnel_sync*.json")):
        record = json.loads(path.read_text())
        if record.get("reply") is not None:
            replies.append(record["reply"])
    assert replies
    for reply in replies:
        ips, problems = parse_tunnel_sync_reply(reply)
        assert problems == [] and ips == [t["ip_address"] for t in reply["tunnels"]]
    for cast in recorded_casts("tunnel_update") + recorded_casts("tunnel_delete"):
        ip, kind = parse_tunnel_notice(cast["kwargs"])
        assert (ip, kind) == (cast["kwargs"]["tunnel_ip"], cast["kwargs"]["tunnel_type"])
    bad = copy.deepcopy(replies[0])
    bad["tunnels"].append({"ip_address": "nope"})
    assert parse_tunnel_sync_reply(bad)[1] == [
        f"reply.tunnels[{len(bad['tunnels']) - 1}].ip_address: 'nope' is not an IP address"]
    with pytest.raises(PayloadError, match="tunnel_type: 'stt' is not a tunnel type"):
        parse_tunnel_notice({"tunnel_ip": "192.0.2.9", "tunnel_type": "stt"})


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        return lambda *args: self.calls.append((name, args))


def test_endpoints_deliver_the_good_items_and_drop_a_bad_tunnel_cast(caplog):
    from dpagent.rpc import topics
    from dpagent.rpc.notifications import (
        L2populationEndpoint,
        TunnelUpdateEndpoint,
        overlay_catalog,
    )

    handler = Recorder()
    l2pop = L2populationEndpoint(handler)
    l2pop.add_fdb_entries({}, fdb_entries=fdb(
        ("192.0.2.2", [["fa:16:3e:00:00:04", "10.0.0.4"], ["x", "y"]])))
    ((name, (networks,)),) = handler.calls
    assert name == "on_fdb_add" and len(networks[0].entries) == 1
    assert "add_fdb_entries: left out" in caplog.text and "'x' is not a MAC" in caplog.text
    tunnels = TunnelUpdateEndpoint(handler)
    tunnels.tunnel_update({}, tunnel_ip="192.0.2.9", tunnel_type="vxlan")
    tunnels.tunnel_update({}, tunnel_ip="192.0.2.x", tunnel_type="vxlan")
    assert handler.calls[1:] == [("on_tunnel_update", ("192.0.2.9", "vxlan"))]
    assert tunnels.stats.dropped["tunnel_update"] == 1
    assert set(overlay_catalog(False)) == {topics.TUNNEL_UPDATE, topics.TUNNEL_DELETE}
    assert topics.L2POP_UPDATE in overlay_catalog(True)

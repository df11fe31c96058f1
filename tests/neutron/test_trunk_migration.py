"""In-place swap on a host with a VLAN-aware VM: neutron-openvswitch-agent (neutron 29, its
trunk driver on) wired the trunk; it is stopped and dpagent started with the same host and
bridges. dpagent recognises neutron's pairs as its own: the same OVSDB rows with the same
ofports and tags, nothing re-made, the trunk ACTIVE throughout, and the parent and subports
keep passing (the only gaps are br-int's flush when neutron's controller goes)."""

from __future__ import annotations

import time

from dpagent.daemon.status import query
from dpagent.lab.trunk_vm import trunk_bridge
from tests.neutron.conftest import PHYSNET
from tests.neutron.polling import Pinger, agent_records, wait_agent_alive, wait_for, wait_ping
from tests.neutron.stock_agent import StockOvsAgent
from tests.neutron.test_trunk import (
    build_trunk,
    drop_trunk,
    ports_of,
    row_ids,
    trunk_status,
    wait_trunk,
)

PING_INTERVAL = 0.02


def test_dpagent_takes_over_neutrons_trunk_wiring_in_place(
        own_sandbox, neutron_server, neutron_api, neutron_agent, vlan_network, tmp_path):
    api = neutron_api
    host = neutron_agent("tmig", sandbox=own_sandbox, started=False)
    (tmp_path / "stock").mkdir()
    stock = StockOvsAgent(own_sandbox, neutron_server, tmp_path / "stock", host.host,
                          host.bridge, {PHYSNET: host.phys_bridge})
    stock.start()
    rig = None
    try:
        wait_agent_alive(api, host.host, timeout=90)
        rig = build_trunk(api, host, vlan_network, cidrs=("10.61", "10.62", "10.63"))
        trunk, vms, peers = rig["trunk"], rig["vms"], rig["peer_vms"]
        took = wait_trunk(api, trunk["id"], "ACTIVE", timeout=60)
        print(f"\nneutron's agent: trunk ACTIVE after {took:.1f} s")
        for name in "abc":
            wait_ping(vms[name], peers[name].ip4, timeout=30)
        bridge = trunk_bridge(trunk["id"])
        pairs = sorted(n for n in ports_of(host, host.bridge) | ports_of(host, bridge)
                       if n[:3] in ("tpi", "tpt", "spi", "spt"))
        assert len(pairs) == 6, pairs  # neutron's names: dpagent must find the same
        before = row_ids(host, pairs)
        tags = {n: own_sandbox.vsctl("get", "Port", n, "tag").strip() for n in pairs}
        pingers = [Pinger(vms[n], peers[n].ip4, 600, PING_INTERVAL) for n in "abc"]
        time.sleep(1)
        stock.stop(timeout=5)
    finally:
        stock.stop()

    try:
        host.start()
        wait_for(lambda: query(str(host.status_socket)).get("last_sync"), 30,
                 what="dpagent's first full sync")
        wait_for(lambda: query(str(host.status_socket)).get("trunks", {}).get(
            "trunks", {}).get(trunk["id"], {}).get("status") == "ACTIVE", 30,
            what="dpagent reported the trunk ACTIVE")
        results = [p.lost() for p in pingers]
        print(f"swap: lost (parent, B, C) {[r[0] for r in results]} of "
              f"{[r[1] for r in results]} pings {PING_INTERVAL * 1000:.0f} ms apart")
        # br-int is flushed once when neutron's controller goes (right before the bundle
        # that refills it): a ping or two per path at most
        assert all(lost <= 2 for lost, _ in results), results
        assert row_ids(host, pairs) == before  # not one pair re-made
        assert {n: own_sandbox.vsctl("get", "Port", n, "tag").strip() for n in pairs} == tags
        assert trunk_status(api, trunk["id"]) == "ACTIVE"
        (record,) = agent_records(api, host.host)
        assert record["binary"] == "dpagent" and record["alive"]
        for name in "abc":
            assert vms[name].ping(peers[name].ip4)
        log = host.log_tail(200000)
        assert "pair(s) made" not in log, "dpagent re-made neutron's pairs"
    finally:
        if rig is not None:
            drop_trunk(rig)

"""Wiring a physical bridge on a real switch: nothing crosses before the guard flows are in,
a restart changes nothing, long bridge names get short port names."""

from __future__ import annotations

import pytest

from dpagent.physnet import PhysnetConfigError
from dpagent.physnet.naming import patch_pair

SEG_A = 100


def test_patch_ports_are_connected_only_after_the_drop_flows_are_in(host, phys_bridges,
                                                                    ovs_sandbox):
    phys_bridges("br-phys1")
    seen = {}
    make = host.programmer_for

    def observing(bridge):
        programmer = make(bridge)
        reconcile = programmer.reconcile

        def reconcile_and_look(*args, **kwargs):
            seen["peer before flows"] = ovs_sandbox.vsctl(
                "get", "Interface", "phy-br-phys1", "options:peer").strip()
            report = reconcile(*args, **kwargs)
            seen["flows before connect"] = ovs_sandbox.dump_flows(bridge)
            seen["peer after flows"] = ovs_sandbox.vsctl(
                "get", "Interface", "phy-br-phys1", "options:peer").strip()
            return report
        programmer.reconcile = reconcile_and_look
        return programmer

    host.programmer_for = observing
    physnets = host.physnets({"physnet1": "br-phys1"})
    physnets.setup()
    assert seen["peer before flows"] == seen["peer after flows"] == "nonexistent-peer"
    phy = physnets.status()["physnet1"]["phy_ofport"]
    assert any(f"priority=10,in_port={phy} actions=drop" in f
               for f in seen["flows before connect"])
    assert ovs_sandbox.vsctl("get", "Interface", "phy-br-phys1", "options:peer").strip() == \
        "int-br-phys1"
    assert ovs_sandbox.vsctl("get", "Bridge", "br-phys1", "fail_mode").strip() == "secure"


def test_a_restart_reuses_ports_and_ofports_and_changes_no_flow(host, phys_bridges,
                                                                ovs_sandbox):
    phys_bridges("br-phys1")
    first = host.physnets({"physnet1": "br-phys1"})
    first.setup()
    first.set_networks([("physnet1", "vlan", SEG_A)])
    before = first.status()["physnet1"]
    flows_before = ovs_sandbox.dump_flows("br-phys1")
    first.stop()

    second = host.physnets({"physnet1": "br-phys1"})
    second.set_networks([("physnet1", "vlan", SEG_A)])  # the agent knows its networks first
    second.setup()
    after = second.status()["physnet1"]
    assert after["state"] == "wired"
    assert (after["int_ofport"], after["phy_ofport"]) == (before["int_ofport"],
                                                          before["phy_ofport"])
    assert host.programmers["br-phys1"][-1].flow_mods_sent == 0
    assert ovs_sandbox.dump_flows("br-phys1") == flows_before


def test_a_long_bridge_name_gets_shortened_port_names_reused_across_restarts(host,
                                                                            phys_bridges,
                                                                            ovs_sandbox):
    phys_bridges("br-physical-ext")
    pair = patch_pair("br-physical-ext")
    assert len(pair.int_port) == len(pair.phy_port) == 15
    first = host.physnets({"physnet1": "br-physical-ext"})
    first.setup()
    status = first.status()["physnet1"]
    assert (status["state"], status["int_port"]) == ("wired", pair.int_port)
    assert pair.int_port in ovs_sandbox.vsctl("list-ports", host.integration).split()
    assert pair.phy_port in ovs_sandbox.vsctl("list-ports", "br-physical-ext").split()
    first.stop()
    second = host.physnets({"physnet1": "br-physical-ext"})
    second.setup()
    assert second.status()["physnet1"]["int_ofport"] == status["int_ofport"]


def test_asking_for_veth_interconnection_stops_the_start_with_the_reason(host, phys_bridges):
    phys_bridges("br-phys1")
    physnets = host.physnets({"physnet1": "br-phys1"}, use_veth_interconnection=True)
    with pytest.raises(PhysnetConfigError, match="patch ports"):
        physnets.setup()
    assert physnets.status()["physnet1"]["state"] == "missing"  # nothing was touched

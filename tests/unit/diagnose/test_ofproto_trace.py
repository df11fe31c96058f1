"""Trace verdicts from recorded ovs-appctl output (OVS 3.1, netdev datapath)."""

from __future__ import annotations

import pytest

from dpagent.diagnose.ofproto_trace import parse_dpif_show, parse_trace

DPIF_SHOW = """\
netdev@ovs-netdev: hit:15 missed:13
  br0:
    br0 65534/5: (tap)
    other 1/6: (system)
  br1:
    br1 65534/1: (tap)
    tapvm1 1/2: (system)
    tapvm2 2/3: (system)
    tapx3 3/4: (tap)
    patch-x 4/none: (patch: peer=patch-y)
"""
DP_TO_OF = {1: 65534, 2: 1, 3: 2, 4: 3}

OUTPUT = """\
Flow: arp,in_port=1,vlan_tci=0x0000

bridge("br1")
-------------
 0. arp,in_port=1, priority 5
    output:2

Final flow: unchanged
Megaflow: recirc_id=0,eth,arp,in_port=1
Datapath actions: 3
"""

DROP = """\
Flow: tcp,in_port=2

bridge("br1")
-------------
 0. priority 0
    drop

Final flow: unchanged
Megaflow: recirc_id=0,eth,ip,in_port=2,nw_frag=no
Datapath actions: drop
"""

RECIRCULATED = """\
Flow: tcp,in_port=1,nw_src=10.99.0.1,nw_dst=10.99.0.2

bridge("br1")
-------------
 0. ip,in_port=1, priority 10
    ct(table=1,zone=5)
    drop

Final flow: unchanged
Megaflow: recirc_id=0,eth,ip,in_port=1,nw_frag=no
Datapath actions: ct(zone=5),recirc(0x2)

===============================================================================
recirc(0x2) - resume conntrack with ct_state=new|trk
===============================================================================

Flow: recirc_id=0x2,ct_state=new|trk,ct_zone=5,eth,tcp,in_port=1

bridge("br1")
-------------
    thaw
        Resuming from table 1
 1. ct_state=+new+trk,ip, priority 10
    ct(commit,zone=5)
    output:2
    output:3

Final flow: recirc_id=0x2,eth,tcp,in_port=1
Megaflow: recirc_id=0x2,ct_state=+new+trk,eth,ip,in_port=1,nw_frag=no
Datapath actions: ct(commit,zone=5),3,4
"""


def test_dpif_show_maps_datapath_ports_of_one_bridge_only():
    assert parse_dpif_show(DPIF_SHOW, "br1") == DP_TO_OF
    assert parse_dpif_show(DPIF_SHOW, "br0") == {5: 65534, 6: 1}


def test_an_output_is_reported_as_its_openflow_port():
    verdict = parse_trace(OUTPUT, DP_TO_OF)
    assert (verdict.dropped, verdict.output_ports) == (False, (2,))


def test_datapath_drop_is_a_drop():
    verdict = parse_trace(DROP, DP_TO_OF)
    assert (verdict.dropped, verdict.output_ports) == (True, ())


def test_outputs_after_conntrack_recirculation_count():
    verdict = parse_trace(RECIRCULATED, DP_TO_OF)
    assert verdict.output_ports == (2, 3)
    assert verdict.datapath_actions == ("ct(zone=5),recirc(0x2)", "ct(commit,zone=5),3,4")
    assert verdict.final_flow == "recirc_id=0x2,eth,tcp,in_port=1"


def test_a_pass_that_only_commits_to_conntrack_drops():
    text = DROP.replace("Datapath actions: drop", "Datapath actions: ct(commit,zone=5)")
    assert parse_trace(text, DP_TO_OF).dropped


def test_outputs_inside_clone_and_to_controller_are_not_drops():
    text = DROP.replace("Datapath actions: drop",
                        "Datapath actions: clone(ct(commit),2),userspace(pid=0,controller)")
    verdict = parse_trace(text, DP_TO_OF)
    assert (verdict.dropped, verdict.output_ports) == (False, (1,))
    only_controller = DROP.replace("Datapath actions: drop",
                                   "Datapath actions: userspace(pid=0,controller)")
    assert parse_trace(only_controller, DP_TO_OF).dropped is False


def test_a_port_of_another_bridge_is_an_error_not_a_silent_drop():
    with pytest.raises(ValueError, match="datapath port 6"):
        parse_trace(OUTPUT.replace("Datapath actions: 3", "Datapath actions: 6"), DP_TO_OF)


def test_text_without_datapath_actions_is_an_error():
    with pytest.raises(ValueError):
        parse_trace("ovs-appctl: something else\n", DP_TO_OF)

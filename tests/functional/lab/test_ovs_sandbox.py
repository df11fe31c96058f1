"""The private switch behaves like OVS: bundles, traces, a vswitchd restart."""

from __future__ import annotations


def _ports(ovs_sandbox, bridge, *numbers):
    for n in numbers:
        ovs_sandbox.add_port(bridge, f"{bridge}-p{n}", type="internal", ofport_request=n)


def test_replace_flows_installs_exactly_the_given_table(ovs_sandbox, bridge):
    ovs_sandbox.replace_flows(bridge, "cookie=0x1,priority=5,ip,actions=drop\n"
                                      "cookie=0x2,table=3,priority=0,actions=drop\n")
    assert ovs_sandbox.dump_flows(bridge) == [
        "cookie=0x1, priority=5,ip actions=drop",
        "cookie=0x2, table=3, priority=0 actions=drop",
    ]
    assert ovs_sandbox.dump_flows(bridge, cookie="0x2") == [
        "cookie=0x2, table=3, priority=0 actions=drop"]
    ovs_sandbox.replace_flows(bridge, "priority=0,actions=drop\n")
    assert ovs_sandbox.dump_flows(bridge) == ["priority=0 actions=drop"]


def test_trace_reports_output_port_and_drop(ovs_sandbox, bridge):
    _ports(ovs_sandbox, bridge, 1, 2, 3)
    ovs_sandbox.replace_flows(bridge, "priority=10,in_port=1,actions=output:2\n"
                                      "priority=0,actions=drop\n")
    out = ovs_sandbox.trace(bridge, "in_port=1,tcp,nw_dst=10.0.0.2,tp_dst=80")
    assert (out.dropped, out.output_ports) == (False, (2,)), out.raw
    dropped = ovs_sandbox.trace(bridge, "in_port=3,tcp")
    assert (dropped.dropped, dropped.output_ports) == (True, ()), dropped.raw


def test_trace_follows_conntrack_recirculation_with_ct_next(ovs_sandbox, bridge):
    _ports(ovs_sandbox, bridge, 1, 2, 3)
    ovs_sandbox.replace_flows(bridge, "\n".join([
        "table=0,priority=10,ip,in_port=1,actions=ct(table=1,zone=1)",
        "table=1,priority=10,ct_state=+trk+new,ip,actions=ct(commit,zone=1),output:2",
        "table=1,priority=10,ct_state=+trk+est,ip,actions=output:3",
        "table=1,priority=0,actions=drop",
    ]) + "\n")
    flow = "in_port=1,tcp,nw_src=10.0.0.1,nw_dst=10.0.0.2"
    assert ovs_sandbox.trace(bridge, flow, ct_next=["trk,new"]).output_ports == (2,)
    assert ovs_sandbox.trace(bridge, flow, ct_next=["trk,est"]).output_ports == (3,)
    assert ovs_sandbox.trace(bridge, flow, ct_next=["trk,inv"]).dropped


def test_restart_vswitchd_empties_flow_tables_but_keeps_ports(ovs_sandbox, bridge):
    _ports(ovs_sandbox, bridge, 1, 2)
    ovs_sandbox.replace_flows(bridge, "priority=0,actions=NORMAL\n")
    ovs_sandbox.restart_vswitchd()
    assert ovs_sandbox.dump_flows(bridge) == []
    assert ovs_sandbox.vsctl("list-ports", bridge).split() == [f"{bridge}-p1", f"{bridge}-p2"]
    assert ovs_sandbox.ofport(f"{bridge}-p2") == 2
    ovs_sandbox.replace_flows(bridge, "priority=0,actions=drop\n")  # and it takes flows again
    assert ovs_sandbox.dump_flows(bridge) == ["priority=0 actions=drop"]


def test_nothing_of_the_switch_appears_in_the_host_namespace(ovs_sandbox, bridge):
    _ports(ovs_sandbox, bridge, 1)
    with open("/proc/net/dev") as f:
        host_links = f.read()
    assert bridge not in host_links and f"{bridge}-p1" not in host_links

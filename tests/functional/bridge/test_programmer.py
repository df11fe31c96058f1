"""The bridge programmer on a real switch: minimal diffs, atomic refusals, hitless restarts,
recovery after ovs-vswitchd restarts, audits that repair drift and spare foreign flows."""

from __future__ import annotations

import subprocess
import time

import pytest

from dpagent.bridge.ofctl import OfctlTransport
from dpagent.bridge.openflow.transport import OpenFlowTransport
from dpagent.bridge.programmer import BridgeProgrammer
from flows import compile_sg_info
from flows.cookies import Kind
from flows.flow import flow
from flows.pipeline import Table


def r(direction, ethertype="IPv4", **fields):
    return {"direction": direction, "ethertype": ethertype, "stateful": True, **fields}


def groups(tcp_port=22):
    return {"srv": [r("ingress", protocol="tcp", port_range_min=tcp_port,
                      port_range_max=tcp_port), r("ingress", protocol="icmp"), r("egress")],
            "cli": [r("egress"), r("ingress", protocol="icmp")]}


def compiled(vms, tcp_port=22):
    devices = {name: {"mac_address": vm.mac, "fixed_ips": [vm.ip4], "network_id": "n1",
                      "security_groups": [name], "port_security_enabled": True,
                      "ofport": vm.ofport, "local_vlan": 1} for name, vm in vms.items()}
    result = compile_sg_info({"devices": devices, "security_groups": groups(tcp_port)})
    assert not result.errors
    return result


@pytest.fixture(params=["openflow", "ofctl"])
def transport_factory(request, ovs_sandbox, bridge):
    """Every test runs with both transports: they must behave the same."""
    if request.param == "ofctl":
        return lambda: OfctlTransport(bridge, env=ovs_sandbox.env)
    return lambda: OpenFlowTransport(str(ovs_sandbox.directory / f"{bridge}.mgmt"))


@pytest.fixture
def lab(netns_vm):
    return {"srv": netns_vm("srv", ipv4=["10.1.0.1/24"]),
            "cli": netns_vm("cli", ipv4=["10.1.0.2/24"])}


def programmed(transport_factory, lab, tcp_port=22):
    programmer = BridgeProgrammer(transport_factory())
    programmer.replace_all(compiled(lab, tcp_port).owners)
    report = programmer.reconcile("start")
    assert not report.rejected
    return programmer


def dpagent_flows(ovs_sandbox, bridge):
    return ovs_sandbox.dump_flows(bridge, cookie="0xd9a6000000000000/0xffff000000000000")


def test_changing_one_rule_sends_only_that_rules_flows(ovs_sandbox, bridge, transport_factory,
                                                       lab):
    programmer = programmed(transport_factory, lab, tcp_port=22)
    installed = len(dpagent_flows(ovs_sandbox, bridge))
    assert installed == programmer.installed_count > 50
    programmer.replace_all(compiled(lab, tcp_port=2222).owners)
    report = programmer.apply()
    assert (report.added, report.deleted) == (1, 1)  # tcp_dst=22 out, tcp_dst=2222 in
    flows = dpagent_flows(ovs_sandbox, bridge)
    assert len(flows) == installed
    assert any("tp_dst=2222" in f for f in flows) and not any("tp_dst=22 " in f for f in flows)
    assert programmer.apply().flow_mods == 0  # nothing pending, nothing sent


def test_refused_flow_keeps_previous_flows_and_names_the_flow(ovs_sandbox, bridge,
                                                              transport_factory, lab):
    programmer = programmed(transport_factory, lab)
    srv, cli = lab["srv"], lab["cli"]
    srv.tcp_listen(22)
    before = set(dpagent_flows(ovs_sandbox, bridge))
    owners = dict(compiled(lab, tcp_port=2222).owners)
    bad = flow(Table.FORWARD, 5, (("reg6", "0x9"),), ("goto_table:10",), Kind.PORT)
    owners["port:srv"] = owners["port:srv"] + (bad,)  # a goto backwards: OVS refuses it
    owners["extra"] = (flow(Table.FORWARD, 7, (("reg6", "0x77"),), (), Kind.NETWORK),)
    programmer.replace_all(owners)
    report = programmer.apply()
    assert list(report.rejected) == ["port:srv"]
    assert "BAD_TABLE_ID" in report.rejected["port:srv"]
    after = set(dpagent_flows(ovs_sandbox, bridge))
    assert any("reg6=0x77" in f for f in after)  # the other owner's change went through
    assert {f for f in before if "reg6=0x77" not in f} <= after  # srv's old flows are intact
    assert cli.tcp_connect(srv.ip4, 22, timeout=3)  # and still pass traffic


def test_restarted_agent_changes_nothing_and_loses_no_packet(ovs_sandbox, bridge,
                                                            transport_factory, lab):
    programmed(transport_factory, lab)
    srv, cli = lab["srv"], lab["cli"]
    srv.tcp_listen(22)
    session = cli.tcp_session(srv.ip4, 22, timeout=3)
    assert session.exchange()
    pinger = subprocess.Popen(["ip", "netns", "exec", cli.netns, "ping", "-n", "-q", "-i",
                               "0.01", "-c", "300", srv.ip4], stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    restarted = BridgeProgrammer(transport_factory())  # a new agent process: no memory
    restarted.replace_all(compiled(lab).owners)
    report = restarted.reconcile("start")
    out = pinger.communicate(timeout=30)[0]
    assert report.flow_mods == 0
    assert " 0% packet loss" in out, out
    assert session.exchange()


def test_vswitchd_restart_is_detected_and_repaired_within_2s(ovs_sandbox, bridge,
                                                            transport_factory, lab):
    programmer = programmed(transport_factory, lab)
    srv, cli = lab["srv"], lab["cli"]
    assert cli.ping(srv.ip4)
    assert not programmer.switch_was_reset()
    ovs_sandbox.restart_vswitchd()
    start = time.monotonic()
    assert programmer.switch_was_reset()
    programmer.reconcile("switch reset")
    assert cli.ping(srv.ip4, timeout=1)
    assert time.monotonic() - start < 2.0
    assert len(dpagent_flows(ovs_sandbox, bridge)) == programmer.installed_count


def test_audit_restores_deleted_flow_and_spares_foreign_flows(ovs_sandbox, bridge,
                                                               transport_factory, lab):
    programmer = programmed(transport_factory, lab)
    flows = dpagent_flows(ovs_sandbox, bridge)
    victim = next(f for f in flows if "tp_dst=22" in f)
    cookie = victim.split("cookie=")[1].split(",")[0]
    ovs_sandbox.ofctl("del-flows", bridge, f"cookie={cookie}/-1")
    ovs_sandbox.ofctl("add-flow", bridge, "table=99,priority=1,cookie=0x1234,actions=drop")
    ovs_sandbox.ofctl("add-flow", bridge,
                      "table=98,priority=1,cookie=0xd9a6ffff00000001,actions=drop")  # stale ours
    report = programmer.reconcile("audit")
    assert (report.added, report.deleted) == (1, 1)
    after = ovs_sandbox.dump_flows(bridge)
    assert any("tp_dst=22" in f for f in after)
    assert any("cookie=0x1234" in f for f in after)
    assert not any("0xd9a6ffff00000001" in f for f in after)


def test_taking_a_bridge_over_sweeps_another_agents_flows_in_the_same_bundle(
        ovs_sandbox, bridge, transport_factory, lab):
    """neutron's agent leaves flows of its own cookie (and cookie 0) behind; one of them here
    forwards everything, which our groups do not allow (TCP to port 23)."""
    srv, cli = lab["srv"], lab["cli"]
    ovs_sandbox.ofctl("add-flow", bridge, "table=0,priority=65535,cookie=0x5ee7,actions=NORMAL")
    ovs_sandbox.ofctl("add-flow", bridge, "table=60,priority=3,cookie=0,actions=NORMAL")
    srv.tcp_listen(23)
    assert cli.tcp_connect(srv.ip4, 23, timeout=2)  # the leftover decides
    programmer = BridgeProgrammer(transport_factory())
    programmer.replace_all(compiled(lab).owners)
    report = programmer.reconcile("start", sweep=True)
    assert report.swept == 2 and not report.rejected
    after = ovs_sandbox.dump_flows(bridge)
    assert not any("cookie=0x5ee7" in f for f in after)
    assert all("cookie=0xd9a6" in f for f in after), after
    assert len(after) == programmer.installed_count
    assert not cli.tcp_connect(srv.ip4, 23, timeout=1)  # our verdict now
    assert cli.ping(srv.ip4)
    assert programmer.reconcile("again", sweep=True).flow_mods == 0

"""OpenFlowTransport on a real ovs-vswitchd.

The reference is ovs-ofctl: every flow the compilers make (br-int's and br-tun's), installed
once through our own OpenFlow 1.5 encoding and once through ``ovs-ofctl --bundle add-flows``,
must leave the two bridges with the same flows, line for line -- and br-tun's learn action must
teach both the same flow. Then: refusals at add time and at commit time name the offending flow
and change nothing, deletes touch one cookie only, dumps return exactly dpagent's flows, and a
restarted ovs-vswitchd is reconnected to.

``DPAGENT_OPENFLOW_BENCH=1`` also runs the large-preset throughput comparison (prints rates).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from dpagent.bridge.openflow import OpenFlowTransport
from dpagent.bridge.transport import BundleRejected, FlowMod, InstalledFlow
from dpagent.lab.ovs_sandbox import OVSSandbox
from flows import Flow, compile_sg_info, tunnel
from flows.cookies import COOKIE_MASK, COOKIE_VALUE, LEARNED_COOKIE
from flows.offline import with_local_facts
from flows.tunnel import TunnelNetwork

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = ROOT / "tests" / "unit" / "flows" / "golden" / "small_host.json"
WORKLOAD_GENERATOR = ROOT / "tests" / "workloads" / "gen.py"
FOREIGN = "table=0,priority=1,cookie=0x1234,in_port=99,actions=drop"
"""An operator's flow: dpagent must never touch it."""


def mgmt_socket(sandbox: OVSSandbox, bridge: str) -> str:
    return str(sandbox.directory / f"{bridge}.mgmt")


def of15_flows(sandbox: OVSSandbox, bridge: str) -> list[str]:
    out = sandbox.ofctl("-O", "OpenFlow15", "--no-stats", "dump-flows", bridge)
    return sorted(line.strip() for line in out.splitlines()
                  if line.strip() and "reply" not in line)


def ofctl_add(sandbox: OVSSandbox, bridge: str, flows: Sequence[Flow]) -> None:
    sandbox.ofctl("-O", "OpenFlow15", "--bundle", "add-flows", bridge, "-",
                  input="".join(f"{f.render()}\n" for f in flows))


def compiled(path: Path) -> list[Flow]:
    result = compile_sg_info(with_local_facts(json.loads(path.read_text())))
    assert not result.errors
    return result.flows()


def workload(preset: str, out_dir: Path) -> Path:
    if not WORKLOAD_GENERATOR.exists():
        pytest.skip(f"workload generator {WORKLOAD_GENERATOR} not found")
    subprocess.run([sys.executable, str(WORKLOAD_GENERATOR), "--preset", preset, "--seed", "1",
                    "--out-dir", str(out_dir)], check=True, stdout=subprocess.DEVNULL)
    return out_dir / f"{preset}.json"


@pytest.fixture
def transport(ovs_sandbox: OVSSandbox, bridge: str) -> Iterator[OpenFlowTransport]:
    transport = OpenFlowTransport(mgmt_socket(ovs_sandbox, bridge))
    yield transport
    transport.close()


@pytest.fixture
def other_bridge(ovs_sandbox: OVSSandbox) -> Iterator[str]:
    name = f"br-{uuid.uuid4().hex[:8]}"
    ovs_sandbox.add_bridge(name)
    yield name
    ovs_sandbox.del_bridge(name)


def flow(table: int, priority: int, match: tuple[tuple[str, str], ...], actions: tuple[str, ...],
         cookie: int) -> Flow:
    return Flow(table, priority, match, actions, COOKIE_VALUE | cookie)


VOCABULARY = [
    # Everything flows/actions.py and flows/matches.py can say, beyond what the workloads use.
    flow(0, 100, (("in_port", "5"), ("dl_vlan", "100")),
         ("strip_vlan", "load:0x7->NXM_NX_REG6[]", "goto_table:20"), 1),
    flow(0, 99, (("in_port", "5"), ("vlan_tci", "0x1064/0x1fff")),
         ("mod_vlan_vid:200", "output:6"), 2),                       # tagged: rewrite, no push
    flow(0, 98, (("in_port", "6"), ("vlan_tci", "0x0000/0x1fff")),
         ("mod_vlan_vid:200", "output:5"), 3),                       # untagged: push + set
    flow(0, 97, (("in_port", "7"), ("dl_vlan", "9")),
         ("strip_vlan", "mod_vlan_vid:10", "output:5", "mod_vlan_vid:11", "output:6"), 4),
    flow(20, 40, (("reg6", "0x7"), ("dl_dst", "01:00:00:00:00:00/01:00:00:00:00:00")),
         ("load:0x1->NXM_NX_REG5[]", "resubmit(,30)", "mod_vlan_vid:5", "output:100"), 5),
    flow(10, 100, (("arp", ""), ("reg5", "0x1"), ("arp_spa", "10.0.0.0/24"),
                   ("arp_sha", "fa:16:3e:00:00:01"), ("nw_dst", "10.0.0.1")),
         ("goto_table:11",), 6),
    flow(11, 95, (("icmp6", ""), ("icmpv6_type", "136"), ("icmpv6_code", "0"),
                  ("nd_target", "fe80::/64")), ("goto_table:20",), 7),
    flow(11, 94, (("icmp", ""), ("icmp_type", "3"), ("icmp_code", "4")), (), 8),
    flow(32, 70, (("tcp6", ""), ("reg5", "0x1"), ("ipv6_src", "fd00::/8"),
                  ("ipv6_dst", "fd00::5"), ("tp_src", "0x400/0xfc00"), ("tp_dst", "22")),
         ("goto_table:33",), 9),
    flow(32, 69, (("sctp6", ""), ("tp_dst", "0x8000/0x8000")), ("goto_table:33",), 10),
    flow(32, 68, (("udp", ""), ("nw_frag", "first")), ("goto_table:33",), 11),
    flow(32, 67, (("ipv6", ""), ("nw_frag", "no")), ("goto_table:33",), 12),
    flow(32, 66, (("ip", ""), ("nw_frag", "not_later"), ("nw_proto", "47")), (), 13),
    flow(32, 65, (("ip", ""), ("nw_frag", "yes")), (), 14),
    flow(12, 90, (("ct_state", "+est-new+trk"), ("ct_mark", "0x1")), ("goto_table:20",), 15),
    flow(12, 89, (("ip", ""), ("ct_state", "-trk")), ("ct(table=12,zone=5)",), 16),
    flow(32, 64, (("conj_id", "42"), ("tcp", "")), ("goto_table:33",), 17),
    flow(32, 63, (("ip", ""), ("nw_src", "10.9.0.0/16")), ("conjunction(42,1/2)",), 18),
    flow(32, 62, (("tcp", ""), ("tp_dst", "443")),
         ("conjunction(42,2/2)", "conjunction(43,1/3)"), 19),
    flow(33, 100, (("ip", ""), ("ct_state", "+new+trk"), ("reg7", "0x1/0x1")),
         ("ct(commit,zone=NXM_NX_REG6[0..15],exec(load:0x0->NXM_NX_CT_MARK[0]))",
          "output:NXM_NX_REG5[]"), 20),
    flow(33, 99, (("ipv6", ""), ("reg7", "0x0/0x1")),
         ("ct(commit,zone=NXM_NX_REG6[0..15])", "goto_table:34"), 21),
    # what dpagent.physnet puts on a physical bridge: allow-listed VLANs and the rest NORMAL
    flow(0, 20, (("in_port", "5"), ("dl_vlan", "100")), ("NORMAL",), 22),
    flow(0, 0, (), ("NORMAL",), 23),
    flow(0, 19, (("in_port", "6"),), ("output:LOCAL", "IN_PORT", "FLOOD"), 24),
]


def assert_same_as_ofctl(sandbox: OVSSandbox, ours: str, reference: str,
                         flows: Sequence[Flow]) -> None:
    transport = OpenFlowTransport(mgmt_socket(sandbox, ours))
    try:
        transport.apply([FlowMod.add(f) for f in flows])
    finally:
        transport.close()
    ofctl_add(sandbox, reference, flows)
    installed, expected = of15_flows(sandbox, ours), of15_flows(sandbox, reference)
    assert len(expected) == len(flows)
    assert installed == expected


# -- round trip ------------------------------------------------------------------------------


def test_golden_host_flows_are_installed_exactly_as_ovs_ofctl_installs_them(
        ovs_sandbox, bridge, other_bridge):
    assert_same_as_ofctl(ovs_sandbox, bridge, other_bridge, compiled(GOLDEN))


def test_medium_workload_flows_are_installed_exactly_as_ovs_ofctl_installs_them(
        ovs_sandbox, bridge, other_bridge, tmp_path):
    flows = compiled(workload("medium", tmp_path))
    assert_same_as_ofctl(ovs_sandbox, bridge, other_bridge, flows)
    # and the dump (several multipart replies) reads every one of them back
    transport = OpenFlowTransport(mgmt_socket(ovs_sandbox, bridge))
    dumped = transport.dump(COOKIE_VALUE, COOKIE_MASK)
    transport.close()
    assert sorted(dumped, key=repr) == sorted(
        (InstalledFlow(f.cookie, f.table, f.priority) for f in flows), key=repr)


def test_every_action_and_match_form_is_installed_exactly_as_ovs_ofctl_installs_it(
        ovs_sandbox, bridge, other_bridge):
    assert_same_as_ofctl(ovs_sandbox, bridge, other_bridge, VOCABULARY)
    pushes = [line for line in of15_flows(ovs_sandbox, bridge) if "push_vlan" in line]
    assert len(pushes) == 3  # the untagged uplink, the re-tag after strip_vlan, the flood


# -- br-tun ----------------------------------------------------------------------------------

PATCH_INT = 1
VXLAN_PORTS = (2, 3)
GENEVE_PORT = 4
VXLAN_NET = TunnelNetwork("net-vxlan", "vxlan", 0x64, 5)
GENEVE_NET = TunnelNetwork("net-geneve", "geneve", 0x123456, 6)


def tunnel_flows() -> list[Flow]:
    """br-tun of a host with the ARP responder on, two VXLAN endpoints and one Geneve endpoint,
    a network of each type with one remote port behind each endpoint: every builder of
    :mod:`flows.tunnel`."""
    flows = list(tunnel.base_flows(PATCH_INT, arp_responder=True))
    for port in VXLAN_PORTS:
        flows += tunnel.tunnel_port_flows("vxlan", port)
    flows += tunnel.tunnel_port_flows("geneve", GENEVE_PORT)
    flows += tunnel.network_flows(VXLAN_NET, VXLAN_PORTS)
    flows += tunnel.network_flows(GENEVE_NET, [GENEVE_PORT])
    remotes = [(VXLAN_NET, "10.0.0.12", "FA:16:3E:00:00:12", 2),
               (VXLAN_NET, "10.0.0.13", "fa:16:3e:00:00:13", 3),
               (GENEVE_NET, "10.1.0.14", "fa:16:3e:00:00:14", GENEVE_PORT)]
    for network, ip, mac, port in remotes:
        flows += [tunnel.unicast_flow(network, mac, port),
                  tunnel.arp_responder_flow(network, ip, mac)]
    return flows


def add_tunnel_ports(sandbox: OVSSandbox, bridge: str, remote_prefix: str) -> None:
    """br-tun's ports at the ofports the flows name; each bridge its own remote IPs (OVS
    refuses two tunnel ports of the same configuration)."""
    sandbox.add_port(bridge, f"pi-{bridge[3:]}", type="internal", ofport_request=PATCH_INT)
    for number, port in enumerate(VXLAN_PORTS):
        sandbox.add_port(bridge, f"vx{number}-{bridge[3:]}", type="vxlan", ofport_request=port,
                         options={"remote_ip": f"{remote_prefix}.{port}", "key": "flow"})
    sandbox.add_port(bridge, f"gnv-{bridge[3:]}", type="geneve", ofport_request=GENEVE_PORT,
                     options={"remote_ip": f"{remote_prefix}.{GENEVE_PORT}", "key": "flow"})


@pytest.fixture
def tunnel_bridges(ovs_sandbox: OVSSandbox, bridge: str, other_bridge: str) -> tuple[str, str]:
    """(ours, reference): two br-tun lookalikes with the same ports, still without flows."""
    add_tunnel_ports(ovs_sandbox, bridge, "192.0.2")
    add_tunnel_ports(ovs_sandbox, other_bridge, "198.51.100")
    return bridge, other_bridge


def learn_from_tunnel(sandbox: OVSSandbox, bridge: str, port: int, tun_id: int,
                      mac: str) -> str:
    """A broadcast frame from ``mac`` arriving through tunnel ``port`` with key ``tun_id``,
    traced with a generated packet (so the learn action runs, as for a real one)."""
    return sandbox.appctl("ofproto/trace", bridge,
                          f"in_port={port},tun_id={tun_id:#x},dl_src={mac},"
                          "dl_dst=ff:ff:ff:ff:ff:ff", "-generate")


def test_br_tun_flows_are_installed_exactly_as_ovs_ofctl_installs_them(
        ovs_sandbox, tunnel_bridges):
    ours, reference = tunnel_bridges
    flows = tunnel_flows()
    assert_same_as_ofctl(ovs_sandbox, ours, reference, flows)
    # and as OpenFlow 1.0 prints them (load:/move: instead of set_field, resubmit for goto)
    assert sorted(ovs_sandbox.dump_flows(ours)) == sorted(ovs_sandbox.dump_flows(reference))
    installed = "\n".join(of15_flows(ovs_sandbox, ours))
    for action in ("learn(", "move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[]", "set_field:2->arp_op",
                   "set_field:0x123456->tun_id", "push_vlan:0x8100", "IN_PORT"):
        assert action in installed


def test_the_learn_action_teaches_both_bridges_the_same_flow_with_the_learned_cookie(
        ovs_sandbox, tunnel_bridges):
    ours, reference = tunnel_bridges
    assert_same_as_ofctl(ovs_sandbox, ours, reference, tunnel_flows())
    senders = [(VXLAN_PORTS[1], VXLAN_NET, "fa:16:3e:aa:00:01"),
               (GENEVE_PORT, GENEVE_NET, "fa:16:3e:bb:00:02")]
    for bridge in (ours, reference):
        for port, network, mac in senders:
            learn_from_tunnel(ovs_sandbox, bridge, port, network.segmentation_id, mac)
    learned = ovs_sandbox.dump_flows(ours, cookie=f"{LEARNED_COOKIE:#x}")
    assert sorted(learned) == sorted(ovs_sandbox.dump_flows(reference,
                                                            cookie=f"{LEARNED_COOKIE:#x}"))
    assert sorted(learned) == sorted(
        f"cookie={LEARNED_COOKIE:#x}, table=20, hard_timeout=300, priority=1,"
        f"vlan_tci={network.local_vlan:#06x}/0x0fff,dl_dst={mac} "
        f"actions=load:0->NXM_OF_VLAN_TCI[],load:{network.segmentation_id:#x}->NXM_NX_TUN_ID[],"
        f"output:{port}" for port, network, mac in senders)
    # A frame from br-int for the learned MAC now leaves through the tunnel it came from.
    trace = ovs_sandbox.appctl(
        "ofproto/trace", ours,
        f"in_port={PATCH_INT},dl_vlan={VXLAN_NET.local_vlan},dl_dst=fa:16:3e:aa:00:01")
    assert f"cookie {LEARNED_COOKIE:#x}" in trace
    assert f"output:{VXLAN_PORTS[1]}" in trace.split(f"cookie {LEARNED_COOKIE:#x}")[1]


# -- refusals --------------------------------------------------------------------------------

BACKWARDS = flow(20, 5, (("reg6", "0x9"),), ("goto_table:10",), 0xBAD)
"""OVS refuses a goto_table to an earlier table when the flow-mod is added to the bundle."""


def test_a_refused_flow_is_named_and_the_bridge_is_left_as_it_was(
        ovs_sandbox, bridge, transport):
    before_flows = compiled(GOLDEN)
    transport.apply([FlowMod.add(f) for f in before_flows])
    before = of15_flows(ovs_sandbox, bridge)
    bad = FlowMod.add(BACKWARDS)
    bundle = [FlowMod.delete(before_flows[0].cookie), FlowMod.add(VOCABULARY[0]), bad,
              FlowMod.add(VOCABULARY[1])]
    with pytest.raises(BundleRejected) as refused:
        transport.apply(bundle)
    assert refused.value.mod is bad
    assert "BAD_TABLE_ID" in refused.value.reason
    assert of15_flows(ovs_sandbox, bridge) == before
    transport.apply([FlowMod.add(VOCABULARY[0])])  # the connection is still good
    assert len(of15_flows(ovs_sandbox, bridge)) == len(before) + 1


def test_a_refusal_deep_in_a_large_streamed_bundle_is_still_caught(
        ovs_sandbox, bridge, transport, tmp_path):
    flows = compiled(workload("medium", tmp_path))
    bad = FlowMod.add(BACKWARDS)
    mods = [FlowMod.add(f) for f in flows]
    with pytest.raises(BundleRejected) as refused:
        transport.apply(mods[:5000] + [bad] + mods[5000:])
    assert refused.value.mod is bad
    assert of15_flows(ovs_sandbox, bridge) == []


def test_a_flow_refused_at_commit_is_named_and_nothing_is_applied(
        ovs_sandbox, bridge, transport):
    # A table that holds two flows: the third fails only when the bundle is committed.
    ovs_sandbox.vsctl("--", "--id=@limit", "create", "Flow_Table", "flow_limit=2",
                      "overflow_policy=refuse", "--", "set", "Bridge", bridge,
                      "flow_tables:40=@limit")
    mods = [FlowMod.add(flow(40, priority, (("reg5", hex(priority)),), (), priority))
            for priority in (1, 2, 3)]
    with pytest.raises(BundleRejected) as refused:
        transport.apply([FlowMod.add(VOCABULARY[0]), *mods])
    assert refused.value.mod is mods[2]
    assert "TABLE_FULL" in refused.value.reason
    assert of15_flows(ovs_sandbox, bridge) == []


def test_an_unencodable_flow_sends_nothing_and_says_which(ovs_sandbox, bridge, transport):
    strange = flow(0, 1, (("in_port", "1"),), ("enqueue:1:2",), 0x5)
    with pytest.raises(BundleRejected, match="enqueue") as rejected:
        transport.apply([FlowMod.add(VOCABULARY[0]), FlowMod.add(strange)])
    assert rejected.value.mod == FlowMod.add(strange)  # so the programmer can blame its owner
    assert of15_flows(ovs_sandbox, bridge) == []
    transport.apply([FlowMod.add(VOCABULARY[0])])
    assert len(of15_flows(ovs_sandbox, bridge)) == 1


def test_one_flow_mod_alone_goes_without_a_bundle_and_is_refused_and_named_alike(
        ovs_sandbox, bridge, transport):
    """A single flow-mod is atomic by itself: sent with a barrier, no bundle. Refused, or
    refused only when the table is full, or unencodable: named, and nothing changes."""
    transport.apply([FlowMod.add(VOCABULARY[0])])
    before = of15_flows(ovs_sandbox, bridge)
    assert len(before) == 1
    bad = FlowMod.add(BACKWARDS)
    with pytest.raises(BundleRejected) as refused:
        transport.apply([bad])
    assert refused.value.mod is bad and "BAD_TABLE_ID" in refused.value.reason
    strange = FlowMod.add(flow(0, 1, (("in_port", "1"),), ("enqueue:1:2",), 0x5))
    with pytest.raises(BundleRejected, match="enqueue") as rejected:
        transport.apply([strange])
    assert rejected.value.mod == strange
    ovs_sandbox.vsctl("--", "--id=@limit", "create", "Flow_Table", "flow_limit=1",
                      "overflow_policy=refuse", "--", "set", "Bridge", bridge,
                      "flow_tables:40=@limit")
    first = flow(40, 1, (("reg5", "0x1"),), (), 0x41)
    transport.apply([FlowMod.add(first)])
    full = FlowMod.add(flow(40, 2, (("reg5", "0x2"),), (), 0x42))
    with pytest.raises(BundleRejected) as overflow:
        transport.apply([full])
    assert overflow.value.mod is full and "TABLE_FULL" in overflow.value.reason
    assert len(of15_flows(ovs_sandbox, bridge)) == 2
    transport.apply([FlowMod.delete(first.cookie)])
    assert of15_flows(ovs_sandbox, bridge) == before


# -- deletes and dumps -----------------------------------------------------------------------


def test_delete_by_cookie_removes_that_flow_only(ovs_sandbox, bridge, transport):
    ovs_sandbox.ofctl("add-flow", bridge, FOREIGN)
    flows = VOCABULARY[:3]
    transport.apply([FlowMod.add(f) for f in flows])
    transport.apply([FlowMod.delete(flows[1].cookie)])
    remaining = of15_flows(ovs_sandbox, bridge)
    assert len(remaining) == 3
    assert any("cookie=0x1234" in line for line in remaining)
    assert not any(f"cookie={flows[1].cookie:#x}" in line for line in remaining)


def test_dump_returns_exactly_the_dpagent_flows(ovs_sandbox, bridge, transport):
    ovs_sandbox.ofctl("add-flow", bridge, FOREIGN)
    flows = compiled(GOLDEN)
    transport.apply([FlowMod.add(f) for f in flows])
    dumped = transport.dump(COOKIE_VALUE, COOKIE_MASK)
    assert sorted(dumped, key=repr) == sorted(
        (InstalledFlow(f.cookie, f.table, f.priority) for f in flows), key=repr)
    assert transport.dump(flows[3].cookie, (1 << 64) - 1) == [
        InstalledFlow(flows[3].cookie, flows[3].table, flows[3].priority)]
    assert transport.dump(0x1234, (1 << 64) - 1) == [InstalledFlow(0x1234, 0, 1)]


# -- connection ------------------------------------------------------------------------------


def test_reconnects_after_ovs_vswitchd_restarts(ovs_sandbox, bridge, transport):
    transport.apply([FlowMod.add(VOCABULARY[0])])
    ovs_sandbox.restart_vswitchd()
    assert transport.dump(COOKIE_VALUE, COOKIE_MASK) == []  # a new daemon, empty tables
    transport.apply([FlowMod.add(VOCABULARY[1])])
    ovs_sandbox.restart_vswitchd()
    transport.apply([FlowMod.add(VOCABULARY[2])])  # apply is the first use after the restart
    assert [i.cookie for i in transport.dump(COOKIE_VALUE, COOKIE_MASK)] == [
        VOCABULARY[2].cookie]


def test_threads_share_one_transport(ovs_sandbox, bridge, transport):
    def install(base: int) -> None:
        for i in range(50):
            transport.apply([FlowMod.add(flow(20, 10, (("reg6", hex(base + i)),), (),
                                              base + i))])

    threads = [threading.Thread(target=install, args=(base,)) for base in (0x100, 0x200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(transport.dump(COOKIE_VALUE, COOKIE_MASK)) == 100


def test_a_one_flow_bundle_takes_well_under_20_ms(ovs_sandbox, bridge, transport):
    seconds = []
    for i in range(100):
        one = flow(20, 10, (("reg6", hex(i + 1)),), ("output:1",), 0x10000 + i)
        start = time.perf_counter()
        transport.apply([FlowMod.add(one)])
        seconds.append(time.perf_counter() - start)
    print(f"one-flow bundle: median {statistics.median(seconds) * 1e3:.3f} ms, "
          f"max {max(seconds) * 1e3:.3f} ms")
    assert statistics.median(seconds) < 0.005


# -- throughput (opt-in) ---------------------------------------------------------------------


@pytest.mark.skipif(not os.environ.get("DPAGENT_OPENFLOW_BENCH"),
                    reason="set DPAGENT_OPENFLOW_BENCH=1 to measure the large preset")
def test_large_preset_throughput_against_ovs_ofctl(ovs_sandbox, bridge, other_bridge, tmp_path):
    flows = compiled(workload("large", tmp_path))
    mods = [FlowMod.add(f) for f in flows]
    transport = OpenFlowTransport(mgmt_socket(ovs_sandbox, bridge), timeout=60)
    start = time.perf_counter()
    transport.apply(mods)
    ours = time.perf_counter() - start
    transport.close()
    text = "".join(f"{f.render()}\n" for f in flows)
    start = time.perf_counter()
    ovs_sandbox.ofctl("-O", "OpenFlow15", "--bundle", "add-flows", other_bridge, "-", input=text)
    theirs = time.perf_counter() - start
    print(f"\n{len(flows)} flows: openflow {ours:.2f} s = {len(flows) / ours:,.0f} flows/s; "
          f"ovs-ofctl {theirs:.2f} s = {len(flows) / theirs:,.0f} flows/s")
    assert of15_flows(ovs_sandbox, bridge) == of15_flows(ovs_sandbox, other_bridge)

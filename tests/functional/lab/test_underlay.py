"""Two hosts on an underlay carry tenant networks over VXLAN, Geneve and GRE through br-tun
flows of neutron's shape: VMs of one network reach each other across the hosts, the cable
shows the network's VNI, and a VM behind another VNI stays out of reach.

Each host is an OVSSandbox with br-int and br-tun (joined by patch-tun/patch-int) and two VMs:
one of network A (VNI 5001) and one of network B (VNI 5002), all four in one IP subnet so
that only the VNI keeps the networks apart.  The local VLANs differ per host (A is VLAN 1 on
host 0 and VLAN 2 on host 1), as they may in neutron: only the VNI crosses the wire.  br-int
is a plain NORMAL switch; the flows of br-tun are written here by hand, table for table as
neutron's agent installs them (docs/overlay-design.md 2.3), until dpagent compiles its own.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from dpagent.lab import process
from dpagent.lab.netns import NetnsVM
from dpagent.lab.ovs_sandbox import REQUIRED_BINARIES as OVS_BINARIES
from dpagent.lab.ovs_sandbox import OVSSandbox
from dpagent.lab.underlay import GENEVE_UDP_PORT, VXLAN_UDP_PORT, Underlay
from tests.conftest import _require

VNI_A, VNI_B = 5001, 5002
LOCAL_VLANS = ({VNI_A: 1, VNI_B: 2}, {VNI_A: 2, VNI_B: 1})  # per host: VNI -> local VLAN
VMS = (("a0", VNI_A, 1), ("b0", VNI_B, 3), ("a1", VNI_A, 2), ("b1", VNI_B, 4))  # by host
TUN_TO_LV = {"gre": 3, "vxlan": 4, "geneve": 6}  # neutron's table per tunnel type
ON_THE_WIRE = {"vxlan": f"udp port {VXLAN_UDP_PORT}", "geneve": f"udp port {GENEVE_UDP_PORT}",
               "gre": "ip proto 47"}
VM_MTU = 1450  # neutron's network MTU for VXLAN/Geneve over a 1500-byte underlay


def br_tun_flows(patch_int: int, tunnel: int, tunnel_type: str,
                 local_vlans: dict[int, int]) -> str:
    """neutron's br-tun for one tunnel port carrying ``local_vlans`` (no l2pop, no ARP
    responder): flood to the tunnel, learn the way back from what comes out of it."""
    to_lv = TUN_TO_LV[tunnel_type]
    learn = ("learn(table=20,priority=1,hard_timeout=300,NXM_OF_VLAN_TCI[0..11],"
             "NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],"
             "load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:OXM_OF_IN_PORT[])")
    flows = [
        f"table=0,priority=1,in_port={patch_int},actions=goto_table:2",
        f"table=0,priority=1,in_port={tunnel},actions=goto_table:{to_lv}",
        "table=0,priority=0,actions=drop",
        "table=2,priority=0,dl_dst=00:00:00:00:00:00/01:00:00:00:00:00,actions=goto_table:20",
        "table=2,priority=0,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=goto_table:22",
        f"table={to_lv},priority=0,actions=drop",
        f"table=10,priority=1,actions={learn},output:{patch_int}",
        "table=20,priority=0,actions=goto_table:22",
        "table=22,priority=0,actions=drop",
    ]
    for vni, vlan in local_vlans.items():
        flows += [
            f"table={to_lv},priority=1,tun_id={vni:#x},"
            f"actions=push_vlan:0x8100,set_field:{4096 + vlan}->vlan_vid,goto_table:10",
            f"table=22,priority=1,dl_vlan={vlan},"
            f"actions=strip_vlan,set_field:{vni:#x}->tun_id,output:{tunnel}",
        ]
    return "\n".join(flows) + "\n"


@dataclass
class Host:
    sandbox: OVSSandbox
    patch_int: int = 0
    tunnels: dict[str, int] = field(default_factory=dict)  # type -> ofport on br-tun


@dataclass
class Rig:
    underlay: Underlay
    hosts: list[Host]
    vms: dict[str, NetnsVM]
    setup_seconds: float
    tunnel_type: str = ""

    def program(self, tunnel_type: str) -> None:
        """br-tun of both hosts carries A and B over ``tunnel_type``; learned flows and
        the VMs' ARP caches are cleared, so every test starts by flooding."""
        for host, vlans in zip(self.hosts, LOCAL_VLANS, strict=True):
            host.sandbox.replace_flows("br-tun", br_tun_flows(
                host.patch_int, host.tunnels[tunnel_type], tunnel_type, vlans))
        for vm in self.vms.values():
            vm.exec(["ip", "neigh", "flush", "dev", "eth0"])
        self.tunnel_type = tunnel_type


def _plug_host(underlay: Underlay, index: int) -> Host:
    sandbox = underlay.hosts[index]
    host = Host(sandbox)
    sandbox.add_bridge("br-int")
    sandbox.add_bridge("br-tun")
    sandbox.add_port("br-int", "patch-tun", type="patch", options={"peer": "patch-int"})
    host.patch_int = sandbox.add_port("br-tun", "patch-int", type="patch",
                                      options={"peer": "patch-tun"})
    sandbox.replace_flows("br-int", "priority=0,actions=NORMAL\n")
    for tunnel_type in TUN_TO_LV:
        port = underlay.add_lab_tunnel_port(index, "br-tun", tunnel_type, 1 - index)
        host.tunnels[tunnel_type] = port.ofport
    return host


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    _require("a two-host overlay rig", [*OVS_BINARIES, "ethtool", "ping", "tcpdump"])
    with contextlib.ExitStack() as stack:
        started = time.monotonic()
        sandboxes = [stack.enter_context(OVSSandbox()) for _ in range(2)]
        underlay = stack.enter_context(Underlay(sandboxes))
        hosts = [_plug_host(underlay, index) for index in range(2)]
        vms = {}
        for position, (name, vni, octet) in enumerate(VMS):
            index = position // 2
            vm = stack.enter_context(NetnsVM(
                sandboxes[index], "br-int", name, f"fa:16:3e:00:0{index}:{octet:02x}",
                ipv4=[f"10.10.0.{octet}/24"]))
            sandboxes[index].vsctl("set", "Port", vm.tap, f"tag={LOCAL_VLANS[index][vni]}")
            vm.exec(["ip", "link", "set", "eth0", "mtu", str(VM_MTU)])
            vms[name] = vm
        elapsed = time.monotonic() - started
        print(f"\ntwo-host overlay rig set up in {elapsed:.2f}s")
        yield Rig(underlay, hosts, vms, elapsed)


@pytest.fixture(params=list(TUN_TO_LV))
def overlay(request: pytest.FixtureRequest, rig: Rig) -> Rig:
    rig.program(request.param)
    return rig


def test_tunnel_ports_have_neutrons_names_and_options(rig: Rig) -> None:
    sandbox = rig.hosts[0].sandbox
    assert sorted(sandbox.vsctl("list-ports", "br-tun").split()) == [
        "geneve-c0000202", "gre-c0000202", "patch-int", "vxlan-c0000202"]
    options = sandbox.vsctl("get", "Interface", "vxlan-c0000202", "options").strip()
    assert options == ('{df_default="true", egress_pkt_mark="0", in_key=flow, '
                       'local_ip="192.0.2.1", out_key=flow, remote_ip="192.0.2.2"}')
    assert sandbox.vsctl("get", "Interface", "geneve-c0000202", "type").strip() == "geneve"


def test_vms_of_one_network_ping_and_talk_tcp_across_the_hosts(overlay: Rig) -> None:
    a0, a1, b0, b1 = (overlay.vms[n] for n in ("a0", "a1", "b0", "b1"))
    assert a0.ping(a1.ip4), overlay.tunnel_type
    assert a1.ping(a0.ip4)
    assert b1.ping(b0.ip4)
    listener = a1.tcp_listen(8000)
    try:
        assert a0.tcp_connect(a1.ip4, 8000)
        session = a0.tcp_session(a1.ip4, 8000)
        assert session.exchange() and session.exchange()
        session.close()
    finally:
        listener.stop()  # the VMs outlive the test
    # a full-size packet of the network's MTU fits into the tunnel without fragments
    full = a0.exec(["ping", "-n", "-q", "-c", "1", "-W", "1", "-M", "do",
                    "-s", str(VM_MTU - 28), a1.ip4])
    assert full.returncode == 0, full.stdout + full.stderr


def test_the_reply_path_is_learned_into_a_unicast_flow(overlay: Rig) -> None:
    a0, a1 = overlay.vms["a0"], overlay.vms["a1"]
    assert a0.ping(a1.ip4)
    sandbox, tunnel = overlay.hosts[0].sandbox, overlay.hosts[0].tunnels[overlay.tunnel_type]

    def learned() -> list[str]:
        return [f for f in sandbox.dump_flows("br-tun") if "table=20" in f and
                f"dl_dst={a1.mac}" in f]

    # When a datapath flow of an earlier test still matches the reply, OVS runs its learn()
    # only when the revalidator next pushes the flow's statistics (up to ~1 s later).
    assert process.wait_until(lambda: bool(learned()), 3.0), sandbox.dump_flows("br-tun")
    to_a1 = learned()
    assert len(to_a1) == 1, to_a1
    assert "vlan_tci=0x0001/0x0fff" in to_a1[0]  # network A's local VLAN on host 0
    assert f"load:{VNI_A:#x}->NXM_NX_TUN_ID[]" in to_a1[0] and f"output:{tunnel}" in to_a1[0]


def test_the_wire_carries_each_network_under_its_own_vni(overlay: Rig) -> None:
    underlay, vms = overlay.underlay, overlay.vms
    capture = underlay.capture(0, ON_THE_WIRE[overlay.tunnel_type])
    assert vms["a0"].ping(vms["a1"].ip4)
    assert vms["b0"].ping(vms["b1"].ip4)
    packets = capture.packets()
    assert {p.tunnel for p in packets} == {overlay.tunnel_type}
    if overlay.tunnel_type != "gre":
        udp_port = VXLAN_UDP_PORT if overlay.tunnel_type == "vxlan" else GENEVE_UDP_PORT
        assert {p.udp_dst for p in packets} == {udp_port}
    ends = {underlay.local_ip(0), underlay.local_ip(1)}
    assert all({p.outer.ip_src, p.outer.ip_dst} == ends for p in packets)
    assert all(p.dont_fragment for p in packets)  # df_default=true
    vni_of: dict[frozenset[str | None], set[int | None]] = {}
    for p in packets:
        if p.inner is not None and p.inner.ip_proto == 1:  # ICMP between two VMs
            vni_of.setdefault(frozenset((p.inner.ip_src, p.inner.ip_dst)), set()).add(p.vni)
    assert vni_of == {frozenset((vms["a0"].ip4, vms["a1"].ip4)): {VNI_A},
                      frozenset((vms["b0"].ip4, vms["b1"].ip4)): {VNI_B}}, packets


def test_a_vm_behind_another_vni_is_not_reachable(overlay: Rig) -> None:
    a0, b0, b1 = overlay.vms["a0"], overlay.vms["b0"], overlay.vms["b1"]
    assert b0.ping(b1.ip4)  # b1 is up, on its own network
    capture = overlay.underlay.capture(1, ON_THE_WIRE[overlay.tunnel_type])
    lost = a0.exec(["ping", "-n", "-q", "-c", "1", "-W", "0.5", b1.ip4])
    assert lost.returncode != 0, lost.stdout
    # a0's ARP for b1 did cross, under network A's VNI, and host 1 kept it on network A
    arp = [p for p in capture.packets() if p.inner is not None and p.inner.ip_dst == b1.ip4]
    assert arp and {p.vni for p in arp} == {VNI_A}, arp
    assert not b1.exec(["ip", "neigh", "show", a0.ip4]).stdout.strip()

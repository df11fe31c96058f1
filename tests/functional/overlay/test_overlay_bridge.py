"""The overlay manager on a real switch: br-tun set up unconnected-first, tunnel ports made as
neutron names them and dropped with their last entry, the ARP responder answering in
``ofproto/trace``, unknown VNIs dropped, learned flows left alone by audits, and a restart that
keeps every flow and port until the entries are known again."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from dpagent.agent.ovsdb import Ovsdb
from dpagent.bridge.openflow.transport import OpenFlowTransport
from dpagent.bridge.programmer import BridgeProgrammer
from dpagent.lab.ovs_sandbox import OVSSandbox
from dpagent.overlay.config import OverlaySettings
from dpagent.overlay.manager import Overlay
from dpagent.rpc.l2pop import FdbEntry, FdbNetwork
from flows.cookies import LEARNED_COOKIE
from flows.tunnel import TunnelNetwork

LOCAL, REMOTE = "192.0.2.1", "192.0.2.2"
NET = TunnelNetwork("net-a", "vxlan", 5001, 3)
MAC = "fa:16:3e:00:00:05"


class Rig:
    def __init__(self, sandbox: OVSSandbox, ovsdb: Ovsdb, integration: str) -> None:
        tag = uuid.uuid4().hex[:5]
        self.sandbox, self.ovsdb, self.integration = sandbox, ovsdb, integration
        self.settings = OverlaySettings(
            tunnel_types=("vxlan", "geneve"), local_ip=LOCAL, bridge=f"br-t{tag}",
            int_patch_port=f"pt-{tag}", tun_patch_port=f"pi-{tag}", l2_population=True,
            arp_responder=True)
        self.overlays: list[Overlay] = []
        self.seen: dict[str, str] = {}

    def programmer_for(self, bridge: str) -> BridgeProgrammer:
        programmer = BridgeProgrammer(
            OpenFlowTransport(str(self.sandbox.directory / f"{bridge}.mgmt")))
        reconcile = programmer.reconcile

        def observed(*args: object, **kwargs: object) -> object:
            self.seen["peer during reconcile"] = self.peer()
            return reconcile(*args, **kwargs)  # type: ignore[arg-type]
        programmer.reconcile = observed  # type: ignore[method-assign]
        return programmer

    def peer(self) -> str:
        return self.sandbox.vsctl("get", "Interface", self.settings.tun_patch_port,
                                  "options:peer").strip().strip('"')

    def overlay(self) -> Overlay:
        overlay = Overlay(self.ovsdb, self.settings, self.integration, "netdev",
                          self.programmer_for, settle=0.2, settle_max=3.0)
        self.overlays.append(overlay)
        return overlay

    def flows(self) -> list[str]:
        return sorted(f for f in self.sandbox.dump_flows(self.settings.bridge)
                      if f"{LEARNED_COOKIE:#x}" not in f)


@pytest.fixture
def rig(ovs_sandbox: OVSSandbox, ovsdb: Ovsdb, bridge: str) -> Iterator[Rig]:
    made = Rig(ovs_sandbox, ovsdb, bridge)
    yield made
    for overlay in made.overlays:
        overlay.stop()
    ovs_sandbox.del_bridge(made.settings.bridge)


def entries(*items: FdbEntry) -> list[FdbNetwork]:
    return [FdbNetwork(NET.network_id, NET.network_type, NET.segmentation_id, items)]


def settle(overlay: Overlay) -> None:
    """Run the overlay's queued work on this thread (its thread is not started here)."""
    jobs, overlay._jobs = overlay._jobs, []
    for job in jobs:
        job()


def test_br_tun_is_secure_and_patched_only_once_its_flows_are_in(rig: Rig):
    overlay = rig.overlay()
    overlay.setup()
    assert rig.seen["peer during reconcile"] == "nonexistent-peer"
    assert rig.peer() == rig.settings.int_patch_port
    assert rig.sandbox.vsctl("get", "Bridge", rig.settings.bridge, "fail_mode").strip() == \
        "secure"
    assert any("priority=0 actions=drop" in f and "table" not in f for f in rig.flows())
    uplink = overlay.uplink("vxlan", 3)
    assert uplink is not None and uplink.vlan == 3
    assert uplink.ofport == rig.sandbox.ofport(rig.settings.int_patch_port)
    assert overlay.uplink("gre", 3) is None  # not in tunnel_types
    assert "not in [agent] tunnel_types" in overlay.reason("gre")


def test_l2population_entries_make_ports_and_flows_and_take_them_away(rig: Rig):
    overlay = rig.overlay()
    overlay.setup()
    overlay.set_networks({NET.network_id: NET})
    patch_int = rig.sandbox.ofport(rig.settings.tun_patch_port)
    # a frame from a tunnel with a VNI no local network has is dropped
    overlay.on_fdb_add(entries(FdbEntry(NET.network_id, REMOTE),
                               FdbEntry(NET.network_id, REMOTE, MAC, "10.0.0.5")))
    settle(overlay)
    name = "vxlan-c0000202"
    options = rig.sandbox.vsctl("get", "Interface", name, "options").strip()
    for option in ('remote_ip="192.0.2.2"', 'local_ip="192.0.2.1"', "in_key=flow",
                   "out_key=flow", 'df_default="true"', 'egress_pkt_mark="0"'):
        assert option in options
    tunnel = rig.sandbox.ofport(name)
    flows = "\n".join(rig.flows())
    assert f"in_port={tunnel} actions=resubmit(,4)" in flows or \
        f"in_port={tunnel} actions=goto_table:4" in flows
    assert f"dl_vlan=3,dl_dst={MAC} actions=strip_vlan,load:0x1389->NXM_NX_TUN_ID[]," \
           f"output:{tunnel}" in flows
    assert f"table=22, priority=1,dl_vlan=3 actions=strip_vlan," \
           f"load:0x1389->NXM_NX_TUN_ID[],output:{tunnel}" in flows
    # the ARP responder answers a request for the remote IP back into br-int
    answer = rig.sandbox.appctl(
        "ofproto/trace", rig.settings.bridge,
        f"in_port={patch_int},dl_vlan=3,arp,arp_op=1,dl_src=fa:16:3e:00:00:09,"
        "dl_dst=ff:ff:ff:ff:ff:ff,arp_spa=10.0.0.9,arp_tpa=10.0.0.5")
    final = answer.split("Final flow:")[1].splitlines()[0]
    assert f"dl_src={MAC}" in final and "arp_op=2" in final and "arp_spa=10.0.0.5" in final
    assert "IN_PORT" in answer
    unknown = rig.sandbox.trace(rig.settings.bridge, f"in_port={tunnel},tun_id=0x9999,ip")
    assert unknown.dropped
    known = rig.sandbox.trace(rig.settings.bridge,
                              f"in_port={tunnel},tun_id=0x1389,ip,dl_src={MAC}")
    assert f"output:{patch_int}" in known.raw  # tagged with the local VLAN, into br-int
    assert f'bridge("{rig.integration}")' in known.raw and "dl_vlan=3" in known.final_flow
    # the last entries go: the flows and the tunnel port with them
    overlay.on_fdb_remove(entries(FdbEntry(NET.network_id, REMOTE),
                                  FdbEntry(NET.network_id, REMOTE, MAC, "10.0.0.5")))
    settle(overlay)
    assert name not in rig.sandbox.vsctl("list-ports", rig.settings.bridge).split()
    assert not [f for f in rig.flows() if "table=20, priority=2" in f or "table=22, priority=1"
                in f or "table=21, priority=1" in f]
    assert overlay.refresh_tunnels()  # the network floods nowhere now


def test_learned_flows_survive_an_audit(rig: Rig):
    overlay = rig.overlay()
    overlay.setup()
    overlay.set_networks({NET.network_id: NET})
    overlay.on_fdb_add(entries(FdbEntry(NET.network_id, REMOTE)))
    settle(overlay)
    tunnel = rig.sandbox.ofport("vxlan-c0000202")
    rig.sandbox.appctl("ofproto/trace", rig.settings.bridge,
                       f"in_port={tunnel},tun_id=0x1389,dl_src=fa:16:3e:00:00:77,"
                       "dl_dst=ff:ff:ff:ff:ff:ff", "-generate")
    learned = rig.sandbox.dump_flows(rig.settings.bridge, cookie=f"{LEARNED_COOKIE:#x}/-1")
    assert learned and "fa:16:3e:00:00:77" in learned[0]
    assert overlay.programmer is not None
    report = overlay.programmer.reconcile("audit")
    assert report.flow_mods == 0
    assert rig.sandbox.dump_flows(rig.settings.bridge,
                                  cookie=f"{LEARNED_COOKIE:#x}/-1") == learned


def test_a_restart_keeps_flows_and_ports_until_the_entries_are_back(rig: Rig):
    first = rig.overlay()
    first.setup()
    first.set_networks({NET.network_id: NET})
    first.on_fdb_add(entries(FdbEntry(NET.network_id, REMOTE),
                             FdbEntry(NET.network_id, REMOTE, MAC, "10.0.0.5")))
    settle(first)
    before, ofport = rig.flows(), rig.sandbox.ofport("vxlan-c0000202")
    first.stop()
    second = rig.overlay()
    second.set_networks({NET.network_id: NET})  # recorded on br-int's ports
    second.setup()
    assert second.status()["deferred_takeover"]
    assert rig.flows() == before  # nothing swept before the entries are known
    second.take_over_deferred()
    second.on_fdb_add(entries(FdbEntry(NET.network_id, REMOTE),
                              FdbEntry(NET.network_id, REMOTE, MAC, "10.0.0.5")))
    settle(second)
    time.sleep(0.25)
    second._maybe_take_over(time.monotonic())
    assert not second.status()["deferred_takeover"]
    assert rig.flows() == before
    assert rig.sandbox.ofport("vxlan-c0000202") == ofport


def test_a_bundle_taken_over_from_neutron_sweeps_its_flows_and_controller(rig: Rig):
    bridge = rig.settings.bridge
    # what neutron's agent leaves: its br-tun, peered patch ports, a tunnel port, its flows
    rig.sandbox.vsctl("add-br", bridge, "--", "set", "Bridge", bridge, "datapath_type=netdev",
                      "fail_mode=secure", "protocols=OpenFlow10,OpenFlow13")
    rig.sandbox.vsctl("add-port", rig.integration, rig.settings.int_patch_port, "--", "set",
                      "Interface", rig.settings.int_patch_port, "type=patch",
                      f"options:peer={rig.settings.tun_patch_port}")
    rig.sandbox.vsctl("add-port", bridge, rig.settings.tun_patch_port, "--", "set",
                      "Interface", rig.settings.tun_patch_port, "type=patch",
                      f"options:peer={rig.settings.int_patch_port}")
    rig.sandbox.vsctl("add-port", bridge, "vxlan-c0000202", "--", "set", "Interface",
                      "vxlan-c0000202", "type=vxlan", "options:remote_ip=192.0.2.2",
                      "options:local_ip=192.0.2.1", "options:in_key=flow",
                      "options:out_key=flow", "options:df_default=true",
                      "options:egress_pkt_mark=0")
    rig.sandbox.vsctl("set-controller", bridge, "tcp:127.0.0.1:6633")
    ofport = rig.sandbox.ofport("vxlan-c0000202")
    rig.sandbox.ofctl("add-flow", bridge, "cookie=0x1234,table=22,priority=1,dl_vlan=3,"
                      f"actions=strip_vlan,set_tunnel:0x1389,output:{ofport}")
    overlay = rig.overlay()
    overlay.set_networks({NET.network_id: NET})
    overlay.setup()
    assert overlay.status()["deferred_takeover"]
    assert any("cookie=0x1234" in f for f in rig.sandbox.dump_flows(bridge))
    overlay.take_over_deferred()
    overlay.on_fdb_add(entries(FdbEntry(NET.network_id, REMOTE)))
    settle(overlay)
    time.sleep(0.25)
    overlay._maybe_take_over(time.monotonic())
    flows = rig.sandbox.dump_flows(bridge)
    assert not any("cookie=0x1234" in f for f in flows)
    assert any(f"output:{ofport}" in f and "table=22" in f for f in flows)
    assert rig.sandbox.ofport("vxlan-c0000202") == ofport  # the port was reused
    assert rig.sandbox.vsctl("get-controller", bridge).strip() == ""


def test_a_deleted_br_tun_comes_back_with_its_ports_and_flows(rig: Rig):
    overlay = rig.overlay()
    overlay.setup()
    overlay.set_networks({NET.network_id: NET})
    overlay.on_fdb_add(entries(FdbEntry(NET.network_id, REMOTE),
                               FdbEntry(NET.network_id, REMOTE, MAC, "10.0.0.5")))
    settle(overlay)
    before = [f.split(" actions=")[0].split(", ", 1)[1] for f in rig.flows()]
    overlay.start()
    rig.sandbox.vsctl("del-br", rig.settings.bridge)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if rig.peer() == rig.settings.int_patch_port and \
                    "vxlan-c0000202" in rig.sandbox.vsctl("list-ports", rig.settings.bridge) \
                    and len(rig.flows()) == len(before):
                break
        except Exception:  # noqa: BLE001 - the bridge is being re-created
            pass
        time.sleep(0.05)
    after = [f.split(" actions=")[0].split(", ", 1)[1] for f in rig.flows()]
    assert len(after) == len(before)
    assert any(f"dl_dst={MAC}" in f for f in after)
    assert overlay.status()["error"] == ""


def test_what_was_learned_for_a_network_leaves_with_it(rig: Rig):
    other = TunnelNetwork("net-b", "vxlan", 5002, 4)
    overlay = rig.overlay()
    overlay.setup()
    overlay.set_networks({NET.network_id: NET, other.network_id: other})
    overlay.on_fdb_add([*entries(FdbEntry(NET.network_id, REMOTE)),
                        FdbNetwork(other.network_id, "vxlan", 5002,
                                   (FdbEntry(other.network_id, REMOTE),))])
    settle(overlay)
    tunnel = rig.sandbox.ofport("vxlan-c0000202")
    for vni, mac in ((0x1389, "fa:16:3e:00:00:77"), (0x138A, "fa:16:3e:00:00:78")):
        rig.sandbox.appctl("ofproto/trace", rig.settings.bridge,
                           f"in_port={tunnel},tun_id={vni:#x},dl_src={mac},"
                           "dl_dst=ff:ff:ff:ff:ff:ff", "-generate")

    def learned() -> list[str]:
        return rig.sandbox.dump_flows(rig.settings.bridge, cookie=f"{LEARNED_COOKIE:#x}/-1")
    assert len(learned()) == 2
    overlay.set_networks({other.network_id: other})  # net-a leaves: VLAN 3 is free again
    (left,) = learned()
    assert "vlan_tci=0x0004/0x0fff" in left and "fa:16:3e:00:00:78" in left


@pytest.mark.parametrize("transport", ["native", "ovs-ofctl"])
def test_a_purge_deletes_only_the_flows_it_names_on_either_transport(rig: Rig, transport: str):
    from dpagent.bridge.ofctl import OfctlTransport
    from flows.tunnel import learned_of

    bridge = rig.integration
    for vlan in (3, 4):
        rig.sandbox.ofctl("add-flow", bridge, f"cookie={LEARNED_COOKIE:#x},table=20,priority=1,"
                          f"vlan_tci={vlan:#06x}/0x0fff,dl_dst=fa:16:3e:00:00:0{vlan},"
                          "actions=drop")
    rig.sandbox.ofctl("add-flow", bridge, "cookie=0x77,table=20,priority=1,"
                      "vlan_tci=0x0003/0x0fff,dl_dst=fa:16:3e:00:00:09,actions=drop")
    programmer = BridgeProgrammer(
        OpenFlowTransport(str(rig.sandbox.directory / f"{bridge}.mgmt"))
        if transport == "native" else OfctlTransport(bridge, env=rig.sandbox.env))
    programmer.purge(learned_of(3))
    programmer.apply()
    left = [f for f in rig.sandbox.dump_flows(bridge) if "table=20" in f]
    assert len(left) == 2
    assert any("vlan_tci=0x0004/0x0fff" in f for f in left)
    assert any("cookie=0x77" in f for f in left)  # another cookie: not named, kept


def test_flows_lost_by_a_vswitchd_restart_come_back_from_memory(rig: Rig):
    overlay = rig.overlay()
    overlay.setup()
    overlay.set_networks({NET.network_id: NET})
    overlay.on_fdb_add(entries(FdbEntry(NET.network_id, REMOTE),
                               FdbEntry(NET.network_id, REMOTE, MAC, "10.0.0.5")))
    settle(overlay)
    before = rig.flows()
    overlay.guard_interval = 0.1
    overlay.start()
    rig.sandbox.restart_vswitchd()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and rig.flows() != before:
        time.sleep(0.1)
    assert rig.flows() == before


def test_bad_entries_are_logged_naming_them_and_the_rest_applied(rig: Rig, caplog):
    overlay = rig.overlay()
    overlay.setup()
    overlay.set_networks({NET.network_id: NET})
    caplog.set_level("DEBUG", logger="dpagent.overlay.manager")
    overlay.on_tunnel_delete("192.0.2.7", "gre")  # not in tunnel_types: vxlan, geneve
    overlay.on_fdb_add([
        FdbNetwork(NET.network_id, "vxlan", 9999, (FdbEntry(NET.network_id, REMOTE),)),
        FdbNetwork("elsewhere", "vxlan", 5003, (FdbEntry("elsewhere", REMOTE),)),
        *entries(FdbEntry(NET.network_id, LOCAL), FdbEntry(NET.network_id, REMOTE, MAC,
                                                             "10.0.0.5"))])
    settle(overlay)
    log = caplog.text
    assert "tunnel_delete for gre tunnel 192.0.2.7: gre is not in [agent] tunnel_types" in log
    assert f"network {NET.network_id} is vxlan 5001 here but the entries say vxlan 9999" in log
    assert "entry for network elsewhere, which has no port on this host" in log
    assert "entry of this host (192.0.2.1)" in log
    assert any(f"dl_dst={MAC}" in f for f in rig.flows())  # the good entry is in

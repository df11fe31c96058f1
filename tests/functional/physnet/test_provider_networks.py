"""Provider networks on a real switch: VMs on br-int reach an external host behind the physical
bridge, with the segmentation id on the wire (untagged for flat networks); other networks and
unknown VLANs stay out, at both patch ports."""

from __future__ import annotations

import pytest

from flows.model import Uplink
from tests.functional.physnet.conftest import wait_for

SEG_A, SEG_B = 100, 200


@pytest.fixture
def vlan_lab(host, phys_bridges, netns_vm, wire):
    """physnet1 -> br-phys1; net-a (VLAN 100): vm1, vm2 and the external host; net-b (VLAN 200,
    same physnet, same subnet): vm3. Only net-a is present on the physical bridge's allow-list
    until a test says otherwise."""
    phys_bridges("br-phys1")
    physnets = host.physnets({"physnet1": "br-phys1"})
    physnets.setup()
    lab = type("Lab", (), {})()
    lab.physnets = physnets
    lab.vm1 = netns_vm("vm1", bridge=host.integration, ipv4=["10.0.0.1/24"])
    lab.vm2 = netns_vm("vm2", bridge=host.integration, ipv4=["10.0.0.2/24"])
    lab.vm3 = netns_vm("vm3", bridge=host.integration, ipv4=["10.0.0.3/24"])
    lab.wire = wire("br-phys1")
    lab.ext = lab.wire.host("ext", "10.0.0.9/24", vlan=SEG_A)
    lab.up_a = physnets.uplink("vlan", "physnet1", SEG_A)
    lab.up_b = physnets.uplink("vlan", "physnet1", SEG_B)
    assert lab.up_a == Uplink(physnets.status()["physnet1"]["int_ofport"], SEG_A)
    host.program([(lab.vm1, "net-a"), (lab.vm2, "net-a"), (lab.vm3, "net-b")],
                 {"net-a": (1, lab.up_a), "net-b": (2, lab.up_b)})
    physnets.set_networks([("physnet1", "vlan", SEG_A)])
    return lab


def test_vms_and_the_external_host_on_one_vlan_network_reach_each_other(vlan_lab, capture):
    lab = vlan_lab
    on_wire = capture(lab.wire.nic)
    assert lab.vm1.ping(lab.vm2.ip4)
    assert lab.vm1.ping(lab.ext.ip4)
    assert lab.vm2.ping(lab.ext.ip4)
    assert lab.ext.ping(lab.vm1.ip4)
    frames = on_wire.stop()
    icmp = [f for f in frames if "ICMP echo" in f and "10.0.0.9" in f]
    assert icmp, frames
    assert all("802.1Q (0x8100), length" in f and f"vlan {SEG_A}," in f for f in icmp), icmp


def test_a_vm_on_another_network_reaches_neither_the_vms_nor_the_external_host(vlan_lab):
    lab = vlan_lab
    lab.physnets.set_networks([("physnet1", "vlan", SEG_A), ("physnet1", "vlan", SEG_B)])
    assert not lab.vm3.ping(lab.vm1.ip4, timeout=1)
    assert not lab.vm3.ping(lab.ext.ip4, timeout=1)
    assert not lab.ext.ping(lab.vm3.ip4, timeout=1)
    assert lab.vm1.ping(lab.ext.ip4)


def test_the_physical_bridge_passes_only_the_vlans_of_present_networks(vlan_lab, capture):
    lab = vlan_lab
    on_wire = capture(lab.wire.nic)
    lab.vm3.ping("10.0.0.250", timeout=1)  # ARP on net-b: leaves br-int tagged 200
    assert not any(f"vlan {SEG_B}," in f for f in on_wire.stop())

    lab.physnets.set_networks([("physnet1", "vlan", SEG_A), ("physnet1", "vlan", SEG_B)])
    on_wire = capture(lab.wire.nic)
    lab.vm3.ping("10.0.0.250", timeout=1)
    assert any(f"vlan {SEG_B}," in f and "ARP" in f for f in on_wire.stop())
    assert lab.physnets.status()["physnet1"]["vlans"] == [SEG_A, SEG_B]

    lab.physnets.set_networks([])
    assert not lab.vm1.ping(lab.ext.ip4, timeout=1)


def test_unknown_vlans_are_dropped_at_both_patch_ports(vlan_lab, ovs_sandbox, host):
    status = vlan_lab.physnets.status()["physnet1"]
    int_port, phy_port = status["int_ofport"], status["phy_ofport"]
    nic = vlan_lab.wire.nic_ofport
    arp = ("arp,dl_src=fa:16:3e:00:00:09,dl_dst=ff:ff:ff:ff:ff:ff,arp_op=1,"
           "arp_spa=10.0.0.9,arp_tpa=10.0.0.1")
    # br-int side: the wire's VLAN 100 is net-a, anything else matches no network
    into = ovs_sandbox.trace(host.integration, f"in_port={int_port},dl_vlan={SEG_A},{arp}")
    assert set(into.output_ports) == {vlan_lab.vm1.ofport, vlan_lab.vm2.ofport}
    assert ovs_sandbox.trace(host.integration, f"in_port={int_port},dl_vlan=300,{arp}").dropped
    assert ovs_sandbox.trace(host.integration, f"in_port={int_port},{arp}").dropped
    # physical side: from phy-X only the present VLAN; from the NIC, plain switching
    out = ovs_sandbox.trace("br-phys1", f"in_port={phy_port},dl_vlan={SEG_A},{arp}")
    assert nic in out.output_ports
    for other in (f"dl_vlan={SEG_B}", "dl_vlan=300", "vlan_tci=0"):
        assert ovs_sandbox.trace("br-phys1", f"in_port={phy_port},{other},{arp}").dropped
    from_nic = ovs_sandbox.trace("br-phys1", f"in_port={nic},dl_vlan=300,{arp}")
    assert not from_nic.dropped


def test_a_flat_network_is_untagged_on_the_wire(host, phys_bridges, netns_vm, wire, capture):
    phys_bridges("br-phys2")
    physnets = host.physnets({"physnet2": "br-phys2"})
    physnets.setup()
    vm = netns_vm("flat1", bridge=host.integration, ipv4=["10.1.0.1/24"])
    cable = wire("br-phys2")
    ext = cable.host("ext2", "10.1.0.9/24")
    uplink = physnets.uplink("flat", "physnet2", None)
    assert uplink is not None and uplink.vlan is None
    host.program([(vm, "net-c")], {"net-c": (3, uplink)})
    physnets.set_networks([("physnet2", "flat", None)])
    on_wire = capture(cable.nic)
    assert vm.ping(ext.ip4)
    assert ext.ping(vm.ip4)
    icmp = [f for f in on_wire.stop() if "ICMP echo" in f]
    assert icmp
    assert not any("802.1Q" in f or "vlan" in f for f in icmp), icmp


def test_flows_lost_in_an_ovs_vswitchd_restart_come_back(vlan_lab, ovs_sandbox, host):
    before = ovs_sandbox.dump_flows("br-phys1")
    ovs_sandbox.restart_vswitchd()
    wait_for(lambda: ovs_sandbox.dump_flows("br-phys1") == before, timeout=5,
             what="the physical bridge's flows after the restart")
    host.br_int.reconcile("switch reset")  # the agent core's job for br-int
    assert vlan_lab.vm1.ping(vlan_lab.ext.ip4)

"""VLAN-aware VMs on VFs end to end through the agent's SR-IOV side: the control plane (an
in-process double) creates a trunk with two subports, adds a third, removes one -- the i40e VF's
trunk file follows exactly, with one batched write per change; a restarted agent reconciles
without writing (no VLAN that should stay is touched); a trunk on a NIC without trunks fails
that port only. The sysfs tree is the fake one with the real layout (Intel's out-of-tree trunk
files have no emulation anywhere); drivers are found through their entry points."""

from __future__ import annotations

import pytest

from dpagent.agent.sriov_ports import SriovPorts
from dpagent.agent.sriov_vfs import LibraryVfs
from dpagent.rpc.trunks import SubPort, Trunk
from sriov import SriovSettings
from sriov.testing import FakeLinkOps, FakeSysfs, FakeSysfsTree
from tests.unit.agent.sriov_fakes import (
    FakeControlPlane,
    details,
    subport_details,
    trunk,
    wait_for,
)


@pytest.fixture
def tree(tmp_path):
    tree = FakeSysfsTree(tmp_path / "sys")
    tree.add_pf("ens1f0", "0000:07:00.0", kernel_driver="i40e", num_vfs=4)
    tree.set_module_version("i40e", "2.22.18")
    tree.add_pf("eno2", "0000:08:00.0", kernel_driver="igb", vf_driver="igbvf", num_vfs=2)
    return tree


@pytest.fixture
def settings(tree):
    return SriovSettings.from_options(["physnet2:ens1f0", "physnet3:eno2"],
                                      sysfs_root=tree.root)


def start(tree, settings, control_plane):
    sysfs = FakeSysfs(tree)
    link_ops = FakeLinkOps(tree, unsupported={"link_state"})  # as igb answers
    ports = SriovPorts(control_plane, LibraryVfs(settings, link_ops, sysfs=sysfs),
                       retry_backoff=0.05)
    ports.start()
    return ports, sysfs, link_ops


def trunk_writes(sysfs):
    return [value.strip() for path, value in sysfs.writes if path.endswith("/trunk")]


def test_trunk_subports_follow_the_control_plane_and_a_restart_writes_nothing(tree, settings):
    parent_vf = tree.pfs["ens1f0"].vf_address(2)
    cp = FakeControlPlane()
    cp.ports = {"p1": details("p1", physical_network="physnet2",
                              profile={"pci_slot": parent_vf})}
    cp.set_trunk(trunk(10, 20))
    ports, sysfs, _ = start(tree, settings, cp)
    try:
        wait_for(lambda: cp.up == ["p1", "sp10", "sp20"])
        assert tree.trunk("ens1f0", 2).strip() == "10,20"
        assert tree.vendor_file("ens1f0", 2, "allow_untagged") == "off"
        assert trunk_writes(sysfs) == ["add 10,20"]
        assert ("t1", "ACTIVE") in cp.trunk_status

        cp.set_trunk(trunk(10, 20, 30))
        ports.on_subports("created", [SubPort("sp30", "t1", "vlan", 30)])
        wait_for(lambda: tree.trunk("ens1f0", 2).strip() == "10,20,30")
        cp.set_trunk(trunk(10, 30))
        ports.on_subports("deleted", [SubPort("sp20", "t1", "vlan", 20)])
        wait_for(lambda: tree.trunk("ens1f0", 2).strip() == "10,30")
        assert trunk_writes(sysfs) == ["add 10,20", "add 30", "rem 20"]
        for other in (0, 1, 3):  # the other VFs are untouched
            assert tree.trunk("ens1f0", other).strip() == ""
    finally:
        ports.stop()

    again, sysfs_again, link_again = start(tree, settings, cp)
    try:
        wait_for(lambda: again.synced_once and again.status()["ports"] == {"wired": 1})
        assert tree.trunk("ens1f0", 2).strip() == "10,30"
        assert sysfs_again.writes == []  # nothing flapped: every VLAN was already right
        assert [c for c in link_again.calls if c[0] != "link_state"] == []
    finally:
        again.stop()


def test_a_trunk_on_a_nic_without_trunks_fails_that_port_only(tree, settings):
    igb = tree.pfs["eno2"]
    cp = FakeControlPlane()
    cp.ports = {
        "p1": details("p1", physical_network="physnet3",
                      profile={"pci_slot": igb.vf_address(0)}),
        "p2": details("p2", physical_network="physnet3", segmentation_id=300,
                      mac_address="fa:16:3e:00:00:02", profile={"pci_slot": igb.vf_address(1)}),
    }
    cp.set_trunk(trunk(10), physnet="physnet3")
    ports, _, link_ops = start(tree, settings, cp)
    try:
        wait_for(lambda: "p1" in cp.down and "p2" in cp.up)
        reason = ports.status()["failed"]["p1"]
        assert "eno2" in reason and "netlink" in reason and "p1" in reason
        assert ("t1", "DEGRADED") in cp.trunk_status
        assert tree.link[("eno2", 1)].vlan == 300  # the single-VLAN port works
        assert tree.link[("eno2", 0)].vlan == 0  # the failed one was not half-configured
    finally:
        ports.stop()


def test_a_subport_the_vm_tags_other_than_its_network_never_reaches_the_wire(tree, settings):
    """sp-a is tagged 110 by the VM on a network whose VLAN is 110: carried. sp-b is tagged 10
    on a network whose VLAN is 120: a VF cannot translate, so neither 10 nor 120 is on the VF
    for it; the trunk is DEGRADED, sp-a keeps working."""
    parent_vf = tree.pfs["ens1f0"].vf_address(2)
    cp = FakeControlPlane()
    cp.ports = {"p1": details("p1", profile={"pci_slot": parent_vf})}
    cp.set_trunk(Trunk("t1", "p1", (SubPort("sp-b", "t1", "vlan", 10),
                                    SubPort("sp-a", "t1", "vlan", 110))),
                 networks={"sp-b": subport_details("sp-b", 120)})
    ports, sysfs, _ = start(tree, settings, cp)
    try:
        wait_for(lambda: ("t1", "DEGRADED") in cp.trunk_status)
        assert trunk_writes(sysfs) == ["add 110"]
        assert tree.trunk("ens1f0", 2).strip() == "110"
        assert "p1" in cp.up and "sp-a" in cp.up and "sp-b" in cp.down
        reason = ports.status()["refused_subports"]["sp-b"]
        assert "VLAN 10" in reason and "VLAN 120" in reason
    finally:
        ports.stop()


def test_a_pci_slot_of_no_managed_vf_fails_the_port_naming_it(tree, settings):
    cp = FakeControlPlane()
    cp.ports = {"p1": details("p1", physical_network="physnet2",
                              profile={"pci_slot": "0000:07:0f.7"})}
    ports, _, _ = start(tree, settings, cp)
    try:
        wait_for(lambda: "p1" in cp.down)
        assert "0000:07:0f.7" in ports.status()["failed"]["p1"]
    finally:
        ports.stop()

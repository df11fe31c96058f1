"""Discovery from a fake tree with the real sysfs layout, and port -> VF matching."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sriov.config import SriovSettings
from sriov.errors import UnknownPf, UnknownVf
from sriov.inventory import discover, discover_pf, owner_pf_name
from sriov.sysfs import Sysfs


def settings(*mappings, excludes=(), root="/sys"):
    return SriovSettings.from_options(list(mappings), list(excludes), sysfs_root=root)


def test_the_fake_tree_has_the_real_layout(tree):
    tree.add_pf("ens1f0", "0000:07:00.0", num_vfs=2)
    root = tree.root
    pf_dev = root / "devices/pci0000:00/0000:00:07.0/0000:07:00.0"
    assert os.readlink(root / "class/net/ens1f0") == (
        "../../devices/pci0000:00/0000:00:07.0/0000:07:00.0/net/ens1f0")
    assert (root / "class/net/ens1f0/device").resolve() == pf_dev.resolve()
    assert os.readlink(pf_dev / "virtfn1") == "../0000:07:02.1"
    assert os.readlink(pf_dev / "driver") == "../../../../bus/pci/drivers/i40e"
    assert (pf_dev / "driver").resolve() == (root / "bus/pci/drivers/i40e").resolve()
    assert (root / "class/net/ens1f0/device/virtfn1/physfn").resolve() == pf_dev.resolve()
    assert (root / "class/net/ens1f0v1/address").read_text() == "02:00:00:07:00:01\n"
    assert (root / "class/net/ens1f0/device/sriov/1/trunk").read_text() == "\n"
    assert (root / "class/net/ens1f0/device/sriov/1/allow_untagged").read_text() == "on\n"
    assert (root / "bus/pci/devices/0000:07:02.1/physfn/net/ens1f0").is_dir()


def test_pfs_and_vfs_are_discovered(tree, sysfs):
    tree.add_pf("ens1f0", "0000:07:00.0", num_vfs=3)
    tree.add_pf("ens2f0", "0000:08:00.0", kernel_driver="igb", vf_driver="vfio-pci",
                total_vfs=7, num_vfs=2)
    inventory = discover(sysfs, settings("physnet2:ens1f0", "physnet3:ens2f0"))
    assert inventory.problems == {}
    first, second = inventory.pfs
    assert (first.name, first.physnet, first.pci_address, first.kernel_driver,
            first.total_vfs, first.num_vfs) == ("ens1f0", "physnet2", "0000:07:00.0", "i40e", 8, 3)
    assert [(vf.index, vf.pci_address, vf.netdev, vf.netdev_mac, vf.kernel_driver)
            for vf in first.vfs] == [
        (0, "0000:07:02.0", "ens1f0v0", "02:00:00:07:00:00", "iavf"),
        (1, "0000:07:02.1", "ens1f0v1", "02:00:00:07:00:01", "iavf"),
        (2, "0000:07:02.2", "ens1f0v2", "02:00:00:07:00:02", "iavf")]
    assert second.kernel_driver == "igb"
    assert [(vf.index, vf.netdev, vf.kernel_driver) for vf in second.vfs] == [
        (0, None, "vfio-pci"), (1, None, "vfio-pci")]  # passed through: no netdev


def test_more_than_ten_vfs_keep_their_indexes(tree, sysfs):
    tree.add_pf("ens1f0", "0000:07:00.0", total_vfs=64, num_vfs=12)
    pf = discover(sysfs, settings("physnet2:ens1f0")).pf("ens1f0")
    assert [vf.index for vf in pf.vfs] == list(range(12))
    assert pf.vfs[11].pci_address == "0000:07:03.3"


def test_excluded_vfs_are_left_out_and_named_when_asked_for(tree, sysfs):
    tree.add_pf("ens1f0", "0000:07:00.0", num_vfs=3)
    inventory = discover(sysfs, settings("physnet2:ens1f0",
                                         excludes=["ens1f0:0000:07:02.1"]))
    assert [vf.index for vf in inventory.vfs] == [0, 2]
    with pytest.raises(UnknownVf, match="VF 1 of PF ens1f0: excluded"):
        inventory.vf("ens1f0", 1)
    with pytest.raises(UnknownVf, match="excluded by .sriov. exclude_devices"):
        inventory.find_vf(pci_slot="0000:07:02.1")


def test_absent_and_non_sriov_pfs_are_problems_not_failures(tree, sysfs):
    tree.add_pf("ens1f0", "0000:07:00.0", num_vfs=1)
    tree.add_plain_netdev("eno1", "0000:00:19.0")
    inventory = discover(sysfs, settings("physnet2:ens1f0", "physnet3:eno1", "physnet4:ens9"))
    assert [pf.name for pf in inventory.pfs] == ["ens1f0"]
    assert "not an SR-IOV physical function" in inventory.problems["eno1"]
    assert "no network device ens9" in inventory.problems["ens9"]
    with pytest.raises(UnknownPf, match="PF ens9: no network device ens9"):
        inventory.pf("ens9")
    with pytest.raises(UnknownPf, match="PF eth0: not in .sriov. physical_device_mappings"):
        inventory.vf("eth0", 0)


def test_a_vf_index_beyond_numvfs_is_named(tree, sysfs):
    tree.add_pf("ens1f0", "0000:07:00.0", num_vfs=4)
    inventory = discover(sysfs, settings("physnet2:ens1f0"))
    with pytest.raises(UnknownVf) as caught:
        inventory.vf("ens1f0", 9)
    assert str(caught.value) == "VF 9 of PF ens1f0: does not exist (sriov_numvfs is 4)"


def test_a_port_is_matched_by_pci_slot_first_then_by_mac(tree, sysfs, link_ops):
    tree.add_pf("ens1f0", "0000:07:00.0", num_vfs=3)
    tree.add_pf("ens2f0", "0000:08:00.0", vf_driver="vfio-pci", num_vfs=2)
    link_ops.set_vf_mac("ens2f0", 1, "fa:16:3e:00:00:01")  # as libvirt sets it for the VM
    inventory = discover(sysfs, settings("physnet2:ens1f0", "physnet2:ens2f0"), link_ops)
    by_slot = inventory.find_vf(pci_slot="0000:07:02.2", mac="fa:16:3e:00:00:01")
    assert (by_slot.pf, by_slot.index) == ("ens1f0", 2)
    assert inventory.find_vf(pci_slot="07:02.2").index == 2  # domain may be omitted
    by_admin_mac = inventory.find_vf(pci_slot="0000:09:02.0", mac="FA:16:3E:00:00:01")
    assert (by_admin_mac.pf, by_admin_mac.index, by_admin_mac.admin_mac) == (
        "ens2f0", 1, "fa:16:3e:00:00:01")
    by_netdev_mac = inventory.find_vf(mac="02:00:00:07:00:01")
    assert (by_netdev_mac.pf, by_netdev_mac.index) == ("ens1f0", 1)
    with pytest.raises(UnknownVf, match="no managed VF has PCI slot 0000:09:02.0 or MAC "
                       "fa:16:3e:99:99:99"):
        inventory.find_vf(pci_slot="0000:09:02.0", mac="fa:16:3e:99:99:99")


def test_a_mac_on_two_vfs_is_ambiguous(tree, sysfs, link_ops):
    tree.add_pf("ens1f0", "0000:07:00.0", num_vfs=2)
    link_ops.set_vf_mac("ens1f0", 0, "fa:16:3e:00:00:01")
    link_ops.set_vf_mac("ens1f0", 1, "fa:16:3e:00:00:01")
    inventory = discover(sysfs, settings("physnet2:ens1f0"), link_ops)
    with pytest.raises(UnknownVf, match="on several VFs .ens1f0 VF 0, ens1f0 VF 1."):
        inventory.find_vf(mac="fa:16:3e:00:00:01")


def test_numvfs_changes_are_seen_by_rediscovering_the_pf(tree, sysfs):
    tree.add_pf("ens1f0", "0000:07:00.0", num_vfs=2)
    config = settings("physnet2:ens1f0")
    inventory = discover(sysfs, config)
    sysfs.write("class/net/ens1f0/device/sriov_numvfs", "0")
    sysfs.write("class/net/ens1f0/device/sriov_numvfs", "5")
    assert len(inventory.pf("ens1f0").vfs) == 2
    inventory = inventory.with_pf("ens1f0", discover_pf(sysfs, config, "ens1f0"))
    assert [vf.index for vf in inventory.pf("ens1f0").vfs] == [0, 1, 2, 3, 4]
    assert not (tree.root / "class/net/ens1f0v5").exists()


def test_the_owner_of_an_unmapped_vf_is_found(tree, sysfs):
    tree.add_pf("ens9f0", "0000:0a:00.0", num_vfs=1)
    assert owner_pf_name(sysfs, "0000:0a:02.0") == "ens9f0"
    assert owner_pf_name(sysfs, "0000:0b:02.0") is None


def test_the_real_sysfs_of_this_machine_is_read_without_error():
    """Whatever /sys holds here (probably no SR-IOV): mapped netdevs are classified."""
    sysfs = Sysfs("/sys")
    names = sorted(os.listdir("/sys/class/net")) if Path("/sys/class/net").is_dir() else []
    mappings = [f"physnet{i}:{name}" for i, name in enumerate(names)] + ["physnetx:nonexistent0"]
    inventory = discover(sysfs, settings(*mappings))
    assert {pf.name for pf in inventory.pfs} | set(inventory.problems) == {*names, "nonexistent0"}
    assert "no network device" in inventory.problems["nonexistent0"]
    for pf in inventory.pfs:  # a real SR-IOV PF: its VFs point back at it
        assert pf.num_vfs == len(pf.vfs)
        for vf in pf.vfs:
            assert (Path("/sys/bus/pci/devices") / vf.pci_address / "physfn").resolve().name == (
                pf.pci_address)

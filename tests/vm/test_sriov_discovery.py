"""sriov's discovery on a real SR-IOV NIC: the VM's igb PF and its igbvf VFs."""

from __future__ import annotations

import errno

import pytest

from sriov.config import SriovSettings
from sriov.errors import UnknownVf
from sriov.inventory import discover
from sriov.netlink import NetlinkLinkOps
from sriov.sysfs import Sysfs
from tests.vm.conftest import IGB_TOTAL_VFS, IgbPF


def settings(pf: IgbPF, excludes: tuple[str, ...] = ()) -> SriovSettings:
    return SriovSettings.from_options([f"physnet1:{pf.name}"], list(excludes))


def test_the_pf_and_its_seven_vfs_are_found_through_virtfn_and_physfn(igb_vfs: IgbPF) -> None:
    inventory = discover(Sysfs("/sys"), settings(igb_vfs))
    assert inventory.problems == {}
    (pf,) = inventory.pfs
    assert (pf.name, pf.physnet, pf.kernel_driver, pf.total_vfs, pf.num_vfs) == (
        igb_vfs.name, "physnet1", "igb", IGB_TOTAL_VFS, IGB_TOTAL_VFS)
    assert pf.pci_address == igb_vfs.device.resolve().name
    assert [vf.index for vf in pf.vfs] == list(range(IGB_TOTAL_VFS))
    for vf in pf.vfs:
        real = (igb_vfs.device / f"virtfn{vf.index}").resolve()
        assert vf.pci_address == real.name
        assert (real / "physfn").resolve().name == pf.pci_address
        assert vf.kernel_driver == "igbvf"
        assert vf.netdev == next((real / "net").iterdir()).name
        assert vf.netdev_mac == (real / "net" / vf.netdev / "address").read_text().strip()


def test_no_vfs_and_excluded_vfs(igb_pf: IgbPF) -> None:
    assert discover(Sysfs("/sys"), settings(igb_pf)).pfs[0].vfs == ()
    igb_pf.set_numvfs(3)
    second = (igb_pf.device / "virtfn1").resolve().name
    inventory = discover(Sysfs("/sys"), settings(igb_pf, (f"{igb_pf.name}:{second}",)))
    assert [vf.index for vf in inventory.vfs] == [0, 2]
    with pytest.raises(UnknownVf, match="excluded"):
        inventory.vf(igb_pf.name, 1)


def test_a_port_finds_its_vf_by_pci_slot_and_by_admin_mac(igb_vfs: IgbPF) -> None:
    link_ops = NetlinkLinkOps()
    try:
        link_ops.set_vf_mac(igb_vfs.name, 4, "fa:16:3e:00:00:04")
        inventory = discover(Sysfs("/sys"), settings(igb_vfs), link_ops)
    finally:
        link_ops.close()
    slot = (igb_vfs.device / "virtfn5").resolve().name
    assert inventory.find_vf(pci_slot=slot).index == 5
    by_mac = inventory.find_vf(mac="FA:16:3E:00:00:04")
    assert (by_mac.index, by_mac.admin_mac) == (4, "fa:16:3e:00:00:04")
    assert inventory.find_vf(pci_slot=slot, mac="fa:16:3e:00:00:04").index == 5  # slot first


def test_sriov_numvfs_through_the_single_write_path_gets_the_kernels_errnos(
        igb_pf: IgbPF) -> None:
    """The same semantics the fake tree emulates for the unit tests."""
    sysfs = Sysfs("/sys")
    path = f"class/net/{igb_pf.name}/device/sriov_numvfs"
    sysfs.write(path, "3")
    assert igb_pf.numvfs == 3 and sysfs.read(path) == "3"
    for value, error in (("2", errno.EBUSY), ("8", errno.ERANGE)):
        with pytest.raises(OSError) as caught:
            sysfs.write(path, value)
        assert caught.value.errno == error
    assert igb_pf.numvfs == 3

"""The SR-IOV VM rig proves itself with raw sysfs and iproute2, no dpagent code.

If these fail, a failure elsewhere in tests/vm says nothing about ``sriov/``.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.vm.conftest import IGB_TOTAL_VFS, IgbPF


def ip_link_show(dev: str) -> str:
    return subprocess.run(
        ["ip", "link", "show", "dev", dev], check=True, capture_output=True, text=True
    ).stdout


def vf_lines(dev: str) -> dict[int, str]:
    """``ip link show`` of a PF -> {vf number: its "vf N ..." line}."""
    found = re.findall(r"^\s+vf (\d+)\s+(.*)$", ip_link_show(dev), re.MULTILINE)
    return {int(n): rest for n, rest in found}


def test_the_pf_is_an_82576_driven_by_igb_offering_seven_vfs(igb_pf: IgbPF) -> None:
    device = igb_pf.device
    assert (device / "driver").resolve().name == "igb"
    assert (device / "vendor").read_text().strip() == "0x8086"
    assert (device / "device").read_text().strip() == "0x10c9"  # 82576
    assert int((device / "sriov_totalvfs").read_text()) == IGB_TOTAL_VFS
    assert int((device / "sriov_numvfs").read_text()) == 0
    assert not list(device.glob("virtfn*"))


def test_writing_sriov_numvfs_creates_seven_vfs_linked_to_their_pf(igb_pf: IgbPF) -> None:
    (igb_pf.device / "sriov_numvfs").write_text("7")

    assert int((igb_pf.device / "sriov_numvfs").read_text()) == 7
    links = sorted(p.name for p in igb_pf.device.glob("virtfn*"))
    assert links == [f"virtfn{n}" for n in range(7)]
    pf_bdf = igb_pf.device.resolve().name
    vf_bdfs = set()
    for n in range(7):
        vf = (igb_pf.device / f"virtfn{n}").resolve()
        vf_bdfs.add(vf.name)
        assert (vf / "physfn").resolve().name == pf_bdf
        assert (vf / "driver").resolve().name == "igbvf"
        # bound to igbvf, so the VF has a netdev of its own
        assert [p.name for p in (vf / "net").iterdir()] != []
    assert len(vf_bdfs) == 7 and pf_bdf not in vf_bdfs


def test_ip_link_lists_vf_0_to_6_with_their_macs(igb_vfs: IgbPF) -> None:
    vfs = vf_lines(igb_vfs.name)

    assert sorted(vfs) == list(range(7))
    for line in vfs.values():
        assert re.search(r"link/ether ([0-9a-f]{2}:){5}[0-9a-f]{2}", line)


def test_a_vf_vlan_and_mac_set_through_netlink_read_back(igb_vfs: IgbPF) -> None:
    subprocess.run(
        ["ip", "link", "set", "dev", igb_vfs.name, "vf", "3", "vlan", "100",
         "mac", "fa:16:3e:00:00:03", "spoofchk", "on"],
        check=True,
    )

    vfs = vf_lines(igb_vfs.name)
    assert "link/ether fa:16:3e:00:00:03" in vfs[3]
    assert re.search(r"\bvlan 100\b", vfs[3])
    assert "spoof checking on" in vfs[3]
    assert not re.search(r"\bvlan 100\b", vfs[2])


def test_disabling_the_vfs_removes_their_pci_devices(igb_vfs: IgbPF) -> None:
    vf_paths = [(igb_vfs.device / f"virtfn{n}").resolve() for n in range(7)]

    (igb_vfs.device / "sriov_numvfs").write_text("0")

    assert not list(igb_vfs.device.glob("virtfn*"))
    assert not any(path.exists() for path in vf_paths)
    assert vf_lines(igb_vfs.name) == {}


def test_the_root_is_the_hosts_behind_a_memory_overlay() -> None:
    mounts = {}
    for line in Path("/proc/mounts").read_text().splitlines():
        _, target, fstype, *_ = line.split()
        mounts[target] = fstype
    assert mounts["/"] == "overlay"  # host root (9p, read-only) below, RAM above
    assert mounts["/tmp"] == mounts["/run"] == "tmpfs"  # not the host's pid files
    # so a test may write into the work tree; the host never sees it
    probe = Path.cwd() / ".sriov-vm-write-probe"
    probe.write_text("only in the VM")
    assert probe.read_text() == "only in the VM"
    probe.unlink()


def test_modules_beyond_the_initramfs_load_with_modprobe() -> None:
    # veth is a module in Debian's kernel and not in modules.list: modprobe
    # finds it in the kernel's module tree that the init mounted.
    release = os.uname().release
    plan = subprocess.run(["modprobe", "--show-depends", "veth"], check=True,
                          capture_output=True, text=True).stdout
    assert f"insmod /lib/modules/{release}/kernel/drivers/net/veth.ko" in plan
    subprocess.run(["modprobe", "veth"], check=True)
    assert Path("/sys/module/veth").is_dir()

"""A fake sysfs tree with the real layout, and the fake kernel behind it, for tests.

:class:`FakeSysfsTree` builds, under any directory, what ``/sys`` holds for SR-IOV NICs::

    class/net/<pf> -> ../../devices/pci0000:00/0000:00:BB.0/<PF>/net/<pf>
    devices/.../<PF>/{sriov_totalvfs,sriov_numvfs}
    devices/.../<PF>/driver -> ../../../../bus/pci/drivers/i40e
    devices/.../<PF>/virtfnN -> ../<VF>          devices/.../<VF>/physfn -> ../<PF>
    devices/.../<VF>/net/<vf netdev>/address     (none for a VF bound to vfio-pci)
    devices/.../<PF>/sriov/<N>/{trunk,allow_untagged,...}   (Intel's out-of-tree i40e only)
    bus/pci/devices/<address> -> ../../../devices/...    module/i40e/version

(``<PF>``, ``<VF>``: PCI addresses such as ``0000:07:00.0``.)

Reading it goes through the production code unchanged (plain files and relative symlinks).  A
plain file cannot act like a sysfs attribute on write, so :class:`FakeSysfs` -- the production
:class:`~sriov.sysfs.Sysfs` with its ``write()`` path intact up to the system call -- hands writes
to emulated attributes to the fake kernel instead, which applies the documented semantics and
stores the result in the file for the next read:

* ``sriov_numvfs``: ERANGE above ``sriov_totalvfs``, EBUSY when changing a non-zero count to
  another non-zero one, otherwise VFs (links, devices, netdevs) appear or disappear;
* i40e ``trunk``: ``add <range list>`` / ``rem <range list>``, EINVAL for anything else or a VLAN
  outside 1-4094, removing an absent VLAN ignored, read back as the canonical range list; the
  first VLAN clears the VF's port VLAN and turns ``allow_untagged`` off, emptying the trunk turns
  it back on; a write longer than a page is cut to a page (a short write) as kernfs does;
* i40e ``allow_untagged``: ``on`` / ``off``, EINVAL otherwise.

The range lists are parsed and printed here by code independent of :mod:`sriov.vlans`, so a bug
there is not mirrored by the fake.  :class:`FakeLinkOps` is the fake kernel's rtnetlink: VF MAC,
port VLAN, spoof check, trust and link state per VF, with errors as the kernel reports them
(EINVAL for a VF index beyond ``sriov_numvfs``, ENODEV for an unknown PF, and EOPNOTSUPP for the
operations a test declares unsupported, e.g. link state on igb).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from sriov.driver import LinkState, VfLinkState
from sriov.sysfs import PAGE_SIZE, Sysfs

I40E_VF_FILES = {"trunk": "", "allow_untagged": "on", "vlan_strip": "off", "vlan_mirror": "",
                 "mac": "", "mac_list": "", "trust": "off", "link_state": "auto",
                 "promisc": "off", "loopback": "off"}


@dataclass
class FakePf:
    """The fake kernel's view of one PF."""

    name: str
    pci_address: str
    kernel_driver: str
    vf_driver: str
    total_vfs: int
    vendor_tree: bool
    num_vfs: int = 0
    vf_netdevs: dict[int, str] = field(default_factory=dict)

    @property
    def bus(self) -> int:
        return int(self.pci_address.split(":")[1], 16)

    @property
    def port_dir(self) -> str:
        return f"devices/pci0000:00/0000:00:{self.bus:02x}.0"

    @property
    def device_dir(self) -> str:
        return f"{self.port_dir}/{self.pci_address}"

    def vf_address(self, index: int) -> str:
        domain, bus, _ = self.pci_address.split(":")
        return f"{domain}:{bus}:{0x02 + index // 8:02x}.{index % 8}"

    def vf_dir(self, index: int) -> str:
        return f"{self.port_dir}/{self.vf_address(index)}"


class FakeSysfsTree:
    """Builds the sysfs layout of SR-IOV NICs under ``root`` and plays their kernel."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.pfs: dict[str, FakePf] = {}
        #: (pf, vf) -> netlink-visible VF settings.
        self.link: dict[tuple[str, int], VfLinkState] = {}
        self._handlers: dict[Path, Callable[[bytes], int]] = {}

    # -- building ---------------------------------------------------------------------------
    def add_pf(self, name: str, pci_address: str, *, kernel_driver: str = "i40e",
               vf_driver: str = "iavf", total_vfs: int = 8, num_vfs: int = 4,
               vendor_tree: bool | None = None) -> FakePf:
        """A PF netdev on its PCI function, with ``num_vfs`` VFs enabled.

        ``vendor_tree`` (default: for i40e) adds Intel's ``device/sriov/<vf>/`` files.
        """
        pf = FakePf(name, pci_address, kernel_driver, vf_driver, total_vfs,
                    kernel_driver == "i40e" if vendor_tree is None else vendor_tree)
        self.pfs[name] = pf
        self._pci_device(pf.device_dir, pci_address, kernel_driver)
        self._file(f"{pf.device_dir}/sriov_totalvfs", str(total_vfs))
        self._file(f"{pf.device_dir}/sriov_numvfs", "0")
        self._handlers[self._real(f"{pf.device_dir}/sriov_numvfs")] = (
            lambda data: self._write_numvfs(pf, data))
        self._netdev(pf.device_dir, name, pci_address, f"3c:fd:fe:{pf.bus:02x}:00:00")
        if pf.vendor_tree:
            (self.root / pf.device_dir / "sriov").mkdir()
        self.set_num_vfs(name, num_vfs)
        return pf

    def add_plain_netdev(self, name: str, pci_address: str, kernel_driver: str = "e1000e") -> None:
        """A NIC without SR-IOV (no ``sriov_totalvfs``)."""
        device = f"devices/pci0000:00/0000:00:1f.0/{pci_address}"
        self._pci_device(device, pci_address, kernel_driver)
        self._netdev(device, name, pci_address, "00:16:3e:00:00:01")

    def set_module_version(self, module: str, version: str | None) -> None:
        """``module/<module>/version`` as an out-of-tree driver has it (None: in-tree, none)."""
        path = self.root / "module" / module / "version"
        if version is None:
            path.unlink(missing_ok=True)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{version}\n")

    def rename_vf_netdev(self, pf: str, index: int, new_name: str) -> None:
        """Rename a VF's netdev, as udev does (``class/net`` entry and ``net/`` dir)."""
        fake = self.pfs[pf]
        old = fake.vf_netdevs[index]
        vf_dir = fake.vf_dir(index)
        os.rename(self.root / vf_dir / "net" / old, self.root / vf_dir / "net" / new_name)
        (self.root / "class/net" / old).unlink()
        self._link(f"class/net/{new_name}", f"../../{vf_dir}/net/{new_name}")
        fake.vf_netdevs[index] = new_name

    def set_num_vfs(self, pf: str, count: int) -> None:
        """Enable ``count`` VFs (0 removes them all), as the kernel does on sriov_numvfs."""
        fake = self.pfs[pf]
        for index in range(count, fake.num_vfs):
            self._remove_vf(fake, index)
        for index in range(fake.num_vfs, count):
            self._add_vf(fake, index)
        fake.num_vfs = count
        (self.root / fake.device_dir / "sriov_numvfs").write_text(f"{count}\n")

    # -- state of the fake kernel ----------------------------------------------------------------
    def trunk(self, pf: str, index: int) -> str:
        """The i40e trunk file's raw content."""
        return (self.root / self.pfs[pf].device_dir / "sriov" / str(index) / "trunk").read_text()

    def vendor_file(self, pf: str, index: int, name: str) -> str:
        path = self.root / self.pfs[pf].device_dir / "sriov" / str(index) / name
        return path.read_text().strip()

    def handler(self, path: Path) -> Callable[[bytes], int] | None:
        """The fake kernel's store method for ``path`` (resolved), if it emulates that file."""
        return self._handlers.get(path.resolve())

    # -- helpers ----------------------------------------------------------------------------
    def _real(self, relative: str) -> Path:
        return (self.root / relative).resolve()

    def _file(self, relative: str, content: str) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{content}\n")

    def _link(self, relative: str, target: str) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)

    def _pci_device(self, device: str, address: str, driver: str) -> None:
        (self.root / device).mkdir(parents=True, exist_ok=True)
        self._file(f"{device}/vendor", "0x8086")
        (self.root / "bus/pci/drivers" / driver).mkdir(parents=True, exist_ok=True)
        self._link(f"{device}/driver", f"../../../../bus/pci/drivers/{driver}")
        self._link(f"bus/pci/devices/{address}", f"../../../{device}")

    def _netdev(self, device: str, name: str, address: str, mac: str) -> None:
        self._file(f"{device}/net/{name}/address", mac)
        self._link(f"{device}/net/{name}/device", f"../../../{address}")
        self._link(f"class/net/{name}", f"../../{device}/net/{name}")

    def _add_vf(self, pf: FakePf, index: int) -> None:
        address, vf_dir = pf.vf_address(index), pf.vf_dir(index)
        self._pci_device(vf_dir, address, pf.vf_driver)
        self._link(f"{pf.device_dir}/virtfn{index}", f"../{address}")
        self._link(f"{vf_dir}/physfn", f"../{pf.pci_address}")
        mac = f"02:00:00:{pf.bus:02x}:{index // 256:02x}:{index % 256:02x}"
        if pf.vf_driver != "vfio-pci":
            name = f"{pf.name}v{index}"
            self._netdev(vf_dir, name, address, mac)
            pf.vf_netdevs[index] = name
        self.link[(pf.name, index)] = VfLinkState(index, "00:00:00:00:00:00", spoof_check=True,
                                                  trust=False, link_state=LinkState.AUTO)
        if pf.vendor_tree:
            vendor = f"{pf.device_dir}/sriov/{index}"
            for name, content in I40E_VF_FILES.items():
                self._file(f"{vendor}/{name}", content)
            self._handlers[self._real(f"{vendor}/trunk")] = (
                lambda data: self._write_trunk(pf, index, data))
            self._handlers[self._real(f"{vendor}/allow_untagged")] = (
                lambda data: self._write_allow_untagged(pf, index, data))

    def _remove_vf(self, pf: FakePf, index: int) -> None:
        address, vf_dir = pf.vf_address(index), pf.vf_dir(index)
        name = pf.vf_netdevs.pop(index, None)
        if name is not None:
            (self.root / "class/net" / name).unlink()
        if pf.vendor_tree:
            vendor = self.root / pf.device_dir / "sriov" / str(index)
            for path in list(self._handlers):
                if path.parent == vendor.resolve():
                    del self._handlers[path]
            shutil.rmtree(vendor)
        (self.root / pf.device_dir / f"virtfn{index}").unlink()
        (self.root / "bus/pci/devices" / address).unlink()
        shutil.rmtree(self.root / vf_dir)
        del self.link[(pf.name, index)]

    # -- store methods of the emulated attributes ------------------------------------------------
    def _write_numvfs(self, pf: FakePf, data: bytes) -> int:
        text = data.decode(errors="replace").strip()
        if not text.isdigit():
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        count = int(text)
        if count > pf.total_vfs:
            raise OSError(errno.ERANGE, os.strerror(errno.ERANGE))
        if count != pf.num_vfs and count and pf.num_vfs:
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
        self.set_num_vfs(pf.name, count)
        return len(data)

    def _write_trunk(self, pf: FakePf, index: int, data: bytes) -> int:
        taken = data[:PAGE_SIZE]
        command, _, ranges = taken.decode(errors="replace").strip().partition(" ")
        vlans = _kernel_parse(ranges)
        if command not in ("add", "rem") or vlans is None:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        path = self.root / pf.device_dir / "sriov" / str(index) / "trunk"
        before = _kernel_parse(path.read_text()) or set()
        after = before | vlans if command == "add" else before - vlans
        path.write_text(f"{_kernel_format(after)}\n")
        untagged = path.parent / "allow_untagged"
        if after and not before:
            untagged.write_text("off\n")
            key = (pf.name, index)
            self.link[key] = replace(self.link[key], vlan=0, qos=0)
        elif before and not after:
            untagged.write_text("on\n")
        return len(taken)

    def _write_allow_untagged(self, pf: FakePf, index: int, data: bytes) -> int:
        value = data.decode(errors="replace").strip()
        if value not in ("on", "off"):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        (self.root / pf.device_dir / "sriov" / str(index) / "allow_untagged").write_text(
            f"{value}\n")
        return len(data)


def _kernel_parse(text: str) -> set[int] | None:
    """The fake driver's own range-list parser: None for anything malformed."""
    vlans: set[int] = set()
    for item in filter(None, text.strip().split(",")):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", item)
        if not match:
            return None
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if not 1 <= low <= high <= 4094:
            return None
        vlans.update(range(low, high + 1))
    return vlans


def _kernel_format(vlans: set[int]) -> str:
    parts: list[str] = []
    ordered = sorted(vlans)
    start = 0
    for position in range(1, len(ordered) + 1):
        if position == len(ordered) or ordered[position] != ordered[position - 1] + 1:
            low, high = ordered[start], ordered[position - 1]
            parts.append(str(low) if low == high else f"{low}-{high}")
            start = position
    return ",".join(parts)


class FakeSysfs(Sysfs):
    """The production :class:`Sysfs` over a fake tree; the fake kernel takes emulated writes.

    ``writes`` logs every write as (relative path, value), so tests can assert what was sent.
    """

    def __init__(self, tree: FakeSysfsTree) -> None:
        super().__init__(tree.root)
        self.tree = tree
        self.writes: list[tuple[str, str]] = []
        self._refusals: dict[Path, tuple[int, Callable[[str], bool]]] = {}

    def refuse(self, relative: str, error: int = errno.EINVAL,
               when: Callable[[str], bool] = lambda value: True) -> None:
        """Make the kernel refuse later writes to ``relative`` (those ``when`` accepts)."""
        self._refusals[self.path(relative).resolve()] = (error, when)

    def allow(self, relative: str) -> None:
        self._refusals.pop(self.path(relative).resolve(), None)

    def write(self, relative: str, value: str) -> None:
        self.writes.append((relative, value))
        super().write(relative, value)

    def _write_once(self, path: Path, data: bytes) -> int:
        resolved = path.resolve()
        error, when = self._refusals.get(resolved, (0, lambda value: False))
        if when(data.decode(errors="replace")):
            raise OSError(error, os.strerror(error), str(path))
        handler = self.tree.handler(resolved)
        if handler is None:
            return super()._write_once(path, data)
        if not resolved.exists():
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
        return handler(data)


class FakeLinkOps:
    """The fake kernel's rtnetlink VF settings (implements :class:`sriov.driver.LinkOps`).

    ``unsupported`` holds operation names (``mac``, ``vlan``, ``spoof_check``, ``link_state``,
    ``trust``) the NIC answers with EOPNOTSUPP, ``refusals`` operations refused with another
    errno, ``ignored`` operations accepted but not applied (as some firmware does);
    ``calls`` logs every successful set.
    """

    def __init__(self, tree: FakeSysfsTree, unsupported: set[str] | None = None) -> None:
        self.tree = tree
        self.unsupported = set(unsupported or ())
        self.refusals: dict[str, int] = {}
        self.ignored: set[str] = set()
        self.calls: list[tuple[str, str, int, object]] = []

    def vf_states(self, pf: str) -> Mapping[int, VfLinkState]:
        if pf not in self.tree.pfs:
            raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))
        return {index: state for (name, index), state in sorted(self.tree.link.items())
                if name == pf}

    def set_vf_mac(self, pf: str, vf: int, mac: str) -> None:
        self._set("mac", pf, vf, mac, mac=mac)

    def set_vf_vlan(self, pf: str, vf: int, vlan: int, qos: int = 0) -> None:
        self._set("vlan", pf, vf, vlan, vlan=vlan, qos=qos)

    def set_vf_spoof_check(self, pf: str, vf: int, enabled: bool) -> None:
        self._set("spoof_check", pf, vf, enabled, spoof_check=enabled)

    def set_vf_link_state(self, pf: str, vf: int, state: LinkState) -> None:
        self._set("link_state", pf, vf, state, link_state=state)

    def set_vf_trust(self, pf: str, vf: int, trusted: bool) -> None:
        self._set("trust", pf, vf, trusted, trust=trusted)

    def _set(self, operation: str, pf: str, vf: int, value: object, **changes: object) -> None:
        if pf not in self.tree.pfs:
            raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))
        error = self.refusals.get(operation)
        if operation in self.unsupported:
            error = errno.EOPNOTSUPP
        if (pf, vf) not in self.tree.link:
            error = errno.EINVAL
        if operation == "vlan" and not 0 <= int(str(value)) <= 4095:
            error = errno.EINVAL
        if error is not None:
            raise OSError(error, os.strerror(error))
        if operation not in self.ignored:
            self.tree.link[(pf, vf)] = replace(self.tree.link[(pf, vf)], **changes)  # type: ignore[arg-type]
        self.calls.append((operation, pf, vf, value))

"""Which VFs exist: PFs from the mappings, VFs from sysfs, ports matched to VFs.

Discovery reads only sysfs (plus, optionally, each PF's VF MACs over netlink):

* a mapped PF is ``class/net/<pf>``; its PCI device (``device ->``) has ``sriov_totalvfs``,
  ``sriov_numvfs``, a ``driver`` link naming the kernel driver and ``virtfnN -> ../<VF address>``
  links, N being the VF index the PF's netlink and vendor sysfs use;
* a VF bound to a netdev driver has ``net/<name>/address``; bound to vfio-pci (passed to a VM) it
  has none, and only the PF knows its administrative MAC.

A mapped PF that is absent or not SR-IOV capable is not fatal: it is listed in
:attr:`Inventory.problems` and discovered again when it appears (see :mod:`sriov.monitor`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from sriov.config import SriovSettings, normalize_pci_address
from sriov.driver import LinkOps, PfInfo, VfTarget, normalize_mac
from sriov.errors import UnknownPf, UnknownVf
from sriov.sysfs import Sysfs


@dataclass(frozen=True)
class VirtualFunction:
    """One VF of a managed PF; ``index`` is N of the PF's ``virtfnN`` link."""

    pf: str
    index: int
    pci_address: str
    physnet: str
    kernel_driver: str | None = None  # e.g. iavf, igbvf, vfio-pci; None if unbound
    netdev: str | None = None  # only while bound to a netdev driver
    netdev_mac: str | None = None
    admin_mac: str | None = None  # as the PF reports it over netlink, when asked

    def target(self, port: str | None = None) -> VfTarget:
        """The driver-level address of this VF, for ``port``."""
        return VfTarget(self.pf, self.index, port, self.pci_address)

    def has_mac(self, mac: str) -> bool:
        return mac in (self.admin_mac, self.netdev_mac)


@dataclass(frozen=True)
class PhysicalFunction:
    """A mapped PF and its VFs (excluded ones left out, their addresses in ``excluded``)."""

    name: str
    physnet: str
    pci_address: str
    kernel_driver: str | None
    total_vfs: int
    num_vfs: int
    vfs: tuple[VirtualFunction, ...] = ()
    excluded: frozenset[str] = frozenset()

    def info(self) -> PfInfo:
        return PfInfo(self.name, self.pci_address, self.kernel_driver)


@dataclass(frozen=True)
class Inventory:
    """The managed PFs and VFs at one moment; replaced, never mutated."""

    pfs: tuple[PhysicalFunction, ...] = ()
    #: mapped PF -> why it is not in :attr:`pfs` (absent, not SR-IOV capable).
    problems: Mapping[str, str] = field(default_factory=dict)

    @property
    def vfs(self) -> tuple[VirtualFunction, ...]:
        return tuple(vf for pf in self.pfs for vf in pf.vfs)

    def pf(self, name: str) -> PhysicalFunction:
        """The PF called ``name``; :class:`UnknownPf` says whether it is unmapped or absent."""
        for pf in self.pfs:
            if pf.name == name:
                return pf
        if name in self.problems:
            raise UnknownPf(self.problems[name], pf=name)
        raise UnknownPf("not in [sriov] physical_device_mappings", pf=name)

    def vf(self, pf: str, index: int) -> VirtualFunction:
        """VF ``index`` of ``pf``; :class:`UnknownVf` if it does not exist or is excluded."""
        function = self.pf(pf)
        for vf in function.vfs:
            if vf.index == index:
                return vf
        if 0 <= index < function.num_vfs:
            raise UnknownVf("excluded by [sriov] exclude_devices", pf=pf, vf=index)
        raise UnknownVf(f"does not exist (sriov_numvfs is {function.num_vfs})", pf=pf, vf=index)

    def find_vf(self, pci_slot: str | None = None, mac: str | None = None) -> VirtualFunction:
        """The VF for a port: by the PCI slot of its binding profile, else by MAC.

        The slot wins when both are given and known (a VF just plugged may not carry the port's
        MAC yet; compare :attr:`VirtualFunction.admin_mac` if that matters).  Raises
        :class:`UnknownVf` naming what was looked for and why nothing matched.
        """
        if pci_slot:
            slot = normalize_pci_address(pci_slot)
            for vf in self.vfs:
                if vf.pci_address == slot:
                    return vf
            for pf in self.pfs:
                if slot in pf.excluded:
                    raise UnknownVf("excluded by [sriov] exclude_devices", pf=pf.name,
                                    pci_address=slot)
        if mac:
            wanted = normalize_mac(mac)
            matches = [vf for vf in self.vfs if vf.has_mac(wanted)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                names = ", ".join(f"{vf.pf} VF {vf.index}" for vf in matches)
                raise UnknownVf(f"MAC {wanted} is on several VFs ({names}); the PCI slot "
                                "must say which", pci_address=pci_slot)
        looked_for = " or ".join(
            text for text in (pci_slot and f"PCI slot {pci_slot}", mac and f"MAC {mac}") if text)
        raise UnknownVf(f"no managed VF has {looked_for or 'no PCI slot or MAC given'}")

    def with_pf(self, pf: str, discovered: PhysicalFunction | str) -> Inventory:
        """This inventory with ``pf`` replaced by a fresh discovery (or its problem text)."""
        pfs = [p for p in self.pfs if p.name != pf]
        problems = {name: text for name, text in self.problems.items() if name != pf}
        if isinstance(discovered, PhysicalFunction):
            pfs.append(discovered)
        else:
            problems[pf] = discovered
        return replace(self, pfs=tuple(sorted(pfs, key=lambda p: p.name)), problems=problems)


def discover(sysfs: Sysfs, settings: SriovSettings, link_ops: LinkOps | None = None) -> Inventory:
    """The inventory of every mapped PF; with ``link_ops`` VFs also get their admin MACs."""
    inventory = Inventory()
    for pf in settings.pfs:
        inventory = inventory.with_pf(pf, discover_pf(sysfs, settings, pf, link_ops))
    return inventory


def discover_pf(sysfs: Sysfs, settings: SriovSettings, pf: str,
                link_ops: LinkOps | None = None) -> PhysicalFunction | str:
    """One PF and its VFs, or a sentence saying why it cannot be managed."""
    physnet = settings.physnet_of(pf)
    if physnet is None:
        return "not in [sriov] physical_device_mappings"
    device = f"class/net/{pf}/device"
    if not sysfs.exists(f"class/net/{pf}"):
        return f"no network device {pf} (under {sysfs.root}/class/net)"
    if not sysfs.exists(f"{device}/sriov_totalvfs"):
        return f"{pf} is not an SR-IOV physical function (no device/sriov_totalvfs)"
    try:
        total = int(sysfs.read(f"{device}/sriov_totalvfs"))
        num = int(sysfs.read(f"{device}/sriov_numvfs"))
    except (OSError, ValueError) as exc:
        return f"cannot read the VF counts of {pf}: {exc}"
    excluded = settings.exclude_devices.get(pf, frozenset())
    admin_macs = _admin_macs(link_ops, pf)
    vfs = []
    for entry in sysfs.listdir(device):
        if not entry.startswith("virtfn") or not entry[6:].isdigit():
            continue
        index = int(entry[6:])
        address = sysfs.link_target_name(f"{device}/{entry}")
        if address is None or address in excluded:
            continue
        netdev, netdev_mac = _vf_netdev(sysfs, f"{device}/{entry}")
        vfs.append(VirtualFunction(
            pf, index, address, physnet, sysfs.link_target_name(f"{device}/{entry}/driver"),
            netdev, netdev_mac, admin_macs.get(index)))
    return PhysicalFunction(
        pf, physnet, sysfs.resolve(device).name, sysfs.link_target_name(f"{device}/driver"),
        total, num, tuple(sorted(vfs, key=lambda vf: vf.index)), excluded)


def _vf_netdev(sysfs: Sysfs, vf_device: str) -> tuple[str | None, str | None]:
    for name in sysfs.listdir(f"{vf_device}/net"):
        try:
            return name, normalize_mac(sysfs.read(f"{vf_device}/net/{name}/address"))
        except (OSError, ValueError):
            return name, None
    return None, None


def _admin_macs(link_ops: LinkOps | None, pf: str) -> dict[int, str]:
    if link_ops is None:
        return {}
    try:
        states = link_ops.vf_states(pf)
    except OSError:
        return {}  # the sysfs view still stands; MAC matching falls back to VF netdevs
    return {index: state.mac for index, state in states.items()
            if state.mac and state.mac != "00:00:00:00:00:00"}


def owner_pf_name(sysfs: Sysfs, pci_address: str) -> str | None:
    """The netdev name of the PF that VF ``pci_address`` belongs to, mapped or not."""
    physfn = f"bus/pci/devices/{pci_address}/physfn"
    if not sysfs.exists(physfn):
        return None
    names = sysfs.listdir(f"{physfn}/net")
    return names[0] if names else None

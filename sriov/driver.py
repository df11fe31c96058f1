"""The NIC driver interface: what a vendor plugin implements and what it is given.

Part of the driver interface (with :mod:`sriov.errors` and :mod:`sriov.vlans`), the only modules
of ``sriov`` a plugin may import.  A driver is a class registered under the
``dpagent.sriov.drivers`` entry point group; the loader (:mod:`sriov.drivers`) makes one instance
per physical function (PF), chosen by ``[sriov] driver_overrides`` or by the PF's kernel driver
name (:attr:`NicDriver.kernel_drivers`), and hands it a :class:`DriverContext`:

* ``sysfs`` -- reads and writes files under the configured sysfs root, each write one ``write()``
  call (no shell), so plugins for vendor sysfs trees need no file code and tests can use a fake
  tree;
* ``link_ops`` -- the kernel's standard VF settings over rtnetlink (MAC, port VLAN, spoof check,
  link state, trust), so a plugin that only adds, say, VLAN trunks inherits the rest from
  :class:`StandardVfDriver` without importing the netlink module.

Every operation takes a :class:`VfTarget` (PF, VF index, and the port it is for, used only in
error messages) and raises a :class:`~sriov.errors.VfError` subclass naming port, PF, VF and
driver.  Operations are idempotent; trunk changes are batched (one call adds or removes a whole
set).  Drivers do not validate requests beyond their own limits: the caller
(:mod:`sriov.ports`) validates everything before the first write.
"""

from __future__ import annotations

import abc
import enum
import errno
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol

from sriov.errors import DriverRefused, UnknownVf, UnsupportedOperation, VfError

MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


class Capability(enum.Flag):
    """What a driver can do for a VF of its PF."""

    NONE = 0
    PORT_VLAN = enum.auto()  # one 802.1Q VLAN the NIC tags on egress and strips on ingress
    TRUNK = enum.auto()  # a set of VLANs the VF sends and receives tagged
    MAC = enum.auto()  # set the VF's administrative MAC
    SPOOF_CHECK = enum.auto()  # drop frames whose source MAC is not the VF's
    LINK_STATE = enum.auto()  # force the VF's link up/down or follow the PF
    TRUST = enum.auto()  # let the VF change its MAC and enter promiscuous modes

    @property
    def names(self) -> list[str]:
        """Member names, for messages and reports."""
        return [flag.name or "" for flag in Capability if flag and flag in self]


STANDARD_CAPABILITIES = (Capability.PORT_VLAN | Capability.MAC | Capability.SPOOF_CHECK
                         | Capability.LINK_STATE | Capability.TRUST)


class LinkState(enum.IntEnum):
    """A VF's administrative link state (the kernel's ``IFLA_VF_LINK_STATE_*`` values)."""

    AUTO = 0  # follow the PF's link
    ENABLE = 1  # always up
    DISABLE = 2  # always down


@dataclass(frozen=True)
class VfTarget:
    """The VF an operation is for: PF netdev name and VF index, plus the port for messages."""

    pf: str
    vf: int
    port: str | None = None
    pci_address: str | None = None


@dataclass(frozen=True)
class VfLinkState:
    """A VF's settings as the PF reports them over netlink (``IFLA_VFINFO_LIST``).

    ``vlan`` is 0 when no port VLAN is set; ``None`` means the NIC does not report the setting.
    """

    vf: int
    mac: str
    vlan: int = 0
    qos: int = 0
    spoof_check: bool | None = None
    trust: bool | None = None
    link_state: LinkState | None = None


@dataclass(frozen=True)
class PfInfo:
    """What a driver is told about its PF when it is chosen."""

    name: str
    pci_address: str
    kernel_driver: str | None


class SysfsAccess(Protocol):
    """Files under the sysfs root; paths are relative to it (``class/net/<pf>/device/...``)."""

    def read(self, path: str) -> str:
        """The file's content without the trailing newline; OSError if unreadable."""

    def write(self, path: str, value: str) -> None:
        """Write ``value`` with one write() call; OSError (with errno) if the kernel refuses."""

    def exists(self, path: str) -> bool:
        """Whether the path exists (following symlinks)."""


class LinkOps(Protocol):
    """The standard VF settings of a PF (rtnetlink); each raises OSError with the kernel errno."""

    def vf_states(self, pf: str) -> Mapping[int, VfLinkState]:
        """Every VF's settings, by VF index."""

    def set_vf_mac(self, pf: str, vf: int, mac: str) -> None:
        """Set the VF's administrative MAC."""

    def set_vf_vlan(self, pf: str, vf: int, vlan: int, qos: int = 0) -> None:
        """Set (1-4094) or clear (0) the VF's 802.1Q port VLAN."""

    def set_vf_spoof_check(self, pf: str, vf: int, enabled: bool) -> None:
        """Turn MAC anti-spoofing on or off."""

    def set_vf_link_state(self, pf: str, vf: int, state: LinkState) -> None:
        """Set the administrative link state."""

    def set_vf_trust(self, pf: str, vf: int, trusted: bool) -> None:
        """Turn trusted mode on or off."""


@dataclass(frozen=True)
class DriverContext:
    """Everything a driver instance gets: its entry point name, its PF, sysfs and link ops.

    ``selected_because`` is the loader's reason for this choice, quoted in errors (e.g. why the
    vendor plugin was not usable).
    """

    name: str
    pf: PfInfo
    sysfs: SysfsAccess
    link_ops: LinkOps
    selected_because: str = ""


def normalize_mac(mac: str) -> str:
    """Lower-case ``xx:xx:xx:xx:xx:xx`` or ValueError naming the address."""
    normalized = mac.strip().lower().replace("-", ":")
    if not MAC_RE.match(normalized):
        raise ValueError(f"MAC address {mac!r} is not of the form xx:xx:xx:xx:xx:xx")
    return normalized


class NicDriver(abc.ABC):
    """A NIC family's way of configuring the VFs of one PF.

    Subclasses declare :attr:`capabilities` and the :attr:`kernel_drivers` they are chosen for,
    and may refuse a PF in :meth:`unusable_reason` (e.g. a driver version without the needed
    sysfs files); the loader then falls back to the generic driver and says why.
    """

    #: Kernel driver names (``/sys/class/net/<pf>/device/driver``) this plugin is chosen for.
    kernel_drivers: ClassVar[tuple[str, ...]] = ()
    #: What this driver can do; callers check before asking.
    capabilities: ClassVar[Capability] = Capability.NONE

    def __init__(self, context: DriverContext) -> None:
        self.context = context

    @classmethod
    def unusable_reason(cls, pf: PfInfo, sysfs: SysfsAccess) -> str | None:
        """Why this driver cannot drive ``pf`` (a sentence), or ``None`` if it can."""
        return None

    @property
    def name(self) -> str:
        """The entry point name this driver was loaded by, as used in messages."""
        return self.context.name

    @abc.abstractmethod
    def vf_state(self, target: VfTarget) -> VfLinkState:
        """The VF's current MAC, port VLAN, spoof check, trust and link state."""

    @abc.abstractmethod
    def set_port_vlan(self, target: VfTarget, vlan: int, qos: int = 0) -> None:
        """Place the VF on 802.1Q VLAN ``vlan`` (tagged by the NIC), or untagged with 0."""

    def clear_port_vlan(self, target: VfTarget) -> None:
        """Remove the port VLAN (same as ``set_port_vlan(target, 0)``)."""
        self.set_port_vlan(target, 0)

    @abc.abstractmethod
    def trunk_vlans(self, target: VfTarget) -> frozenset[int]:
        """The VLANs the VF may use tagged (empty on a NIC without trunks)."""

    @abc.abstractmethod
    def add_trunk_vlans(self, target: VfTarget, vlans: Collection[int]) -> None:
        """Allow ``vlans`` on the VF's trunk in one batch; already allowed ones are no-ops."""

    @abc.abstractmethod
    def remove_trunk_vlans(self, target: VfTarget, vlans: Collection[int]) -> None:
        """Withdraw ``vlans`` from the trunk in one batch; absent ones are ignored."""

    @abc.abstractmethod
    def set_mac(self, target: VfTarget, mac: str) -> None:
        """Set the VF's administrative MAC."""

    @abc.abstractmethod
    def set_spoof_check(self, target: VfTarget, enabled: bool) -> None:
        """Turn MAC anti-spoofing on or off."""

    @abc.abstractmethod
    def set_link_state(self, target: VfTarget, state: LinkState) -> None:
        """Force the VF's link up or down, or let it follow the PF."""

    @abc.abstractmethod
    def set_trust(self, target: VfTarget, trusted: bool) -> None:
        """Turn trusted mode on or off."""

    def error(self, kind: type[VfError], target: VfTarget, problem: str) -> VfError:
        """An error of class ``kind`` naming this driver, ``target``'s PF, VF and port."""
        return kind(problem, port=target.port, pf=target.pf, vf=target.vf,
                    pci_address=target.pci_address, driver=self.name)

    def refused(self, target: VfTarget, action: str, exc: OSError) -> VfError:
        """Translate the kernel's refusal of ``action`` into the matching :class:`VfError`."""
        reason = exc.strerror or str(exc)
        if exc.errno in (errno.EOPNOTSUPP, errno.ENOTSUP):
            return self.error(UnsupportedOperation, target,
                              f"{action}: the NIC does not support it ({reason})")
        return self.error(DriverRefused, target, f"{action}: refused by the kernel ({reason}, "
                          f"errno {exc.errno})")


    def require(self, target: VfTarget, capability: Capability) -> None:
        """Raise :meth:`unsupported` unless this driver has ``capability``."""
        if capability not in self.capabilities:
            raise self.unsupported(target, capability)

    def unsupported(self, target: VfTarget, capability: Capability) -> VfError:
        """The error for a request needing ``capability``, naming PF, driver and why."""
        kernel = self.context.pf.kernel_driver or "unknown"
        what, limit = _UNSUPPORTED.get(capability, (", ".join(capability.names), "do that"))
        why = f" ({self.context.selected_because})" if self.context.selected_because else ""
        return self.error(UnsupportedOperation, target,
                          f"{what} requested, but driver {self.name} of PF {target.pf} (kernel "
                          f"driver {kernel}) cannot {limit}{why}")


_UNSUPPORTED = {
    Capability.TRUNK: ("VLAN trunk", "carry VLAN trunks on a VF; only a single port VLAN"),
    Capability.PORT_VLAN: ("port VLAN", "set a VF's port VLAN"),
    Capability.MAC: ("MAC", "set a VF's MAC"),
    Capability.SPOOF_CHECK: ("spoof checking", "change a VF's spoof checking"),
    Capability.LINK_STATE: ("link state", "set a VF's link state"),
    Capability.TRUST: ("trust", "change a VF's trust mode"),
}


class StandardVfDriver(NicDriver):
    """The kernel's standard VF settings, through :class:`LinkOps`; no VLAN trunks.

    Vendor plugins subclass this and override what their NIC does beyond the standard (e.g.
    trunks), keeping netlink for the rest.  The generic ``netlink`` driver is this class as is.
    """

    capabilities: ClassVar[Capability] = STANDARD_CAPABILITIES

    def vf_state(self, target: VfTarget) -> VfLinkState:
        try:
            states = self.context.link_ops.vf_states(target.pf)
        except OSError as exc:
            raise self.refused(target, "reading VF settings over netlink", exc) from exc
        if target.vf not in states:
            raise self.error(UnknownVf, target, f"VF {target.vf} does not exist (PF {target.pf} "
                             f"reports VFs {sorted(states) or 'none'})")
        return states[target.vf]

    def set_port_vlan(self, target: VfTarget, vlan: int, qos: int = 0) -> None:
        self._link(target, f"setting port VLAN {vlan}", self.context.link_ops.set_vf_vlan,
                   vlan, qos)

    def trunk_vlans(self, target: VfTarget) -> frozenset[int]:
        return frozenset()

    def add_trunk_vlans(self, target: VfTarget, vlans: Collection[int]) -> None:
        if vlans:
            raise self.unsupported(target, Capability.TRUNK)

    def remove_trunk_vlans(self, target: VfTarget, vlans: Collection[int]) -> None:
        """Nothing to do: without trunks no VLAN is ever on one."""

    def set_mac(self, target: VfTarget, mac: str) -> None:
        self._link(target, f"setting MAC {mac}", self.context.link_ops.set_vf_mac, mac)

    def set_spoof_check(self, target: VfTarget, enabled: bool) -> None:
        self._link(target, f"turning spoof checking {'on' if enabled else 'off'}",
                   self.context.link_ops.set_vf_spoof_check, enabled)

    def set_link_state(self, target: VfTarget, state: LinkState) -> None:
        self._link(target, f"setting link state {state.name.lower()}",
                   self.context.link_ops.set_vf_link_state, state)

    def set_trust(self, target: VfTarget, trusted: bool) -> None:
        self._link(target, f"turning trust {'on' if trusted else 'off'}",
                   self.context.link_ops.set_vf_trust, trusted)

    def _link(self, target: VfTarget, action: str, operation: Callable[..., None],
              *args: object) -> None:
        try:
            operation(target.pf, target.vf, *args)
        except OSError as exc:
            raise self.refused(target, action, exc) from exc

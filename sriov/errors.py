"""The errors of the SR-IOV library: each names the port, PF, VF and driver it concerns.

Part of the driver interface: plugins raise these.  The agent reports a port whose operation
raised a :class:`VfError` as failed and retries it later; other ports and VFs are unaffected.
The message is meant for an operator's log, so it carries every name that is known at the point
of failure, and :meth:`VfError.replace` lets a caller higher up add what the driver did not know
(the port id, the outcome of a rollback).
"""

from __future__ import annotations

from typing import Any, Self


class SriovError(Exception):
    """Base of every error this library raises on purpose."""


class SriovConfigError(SriovError):
    """The [sriov] options are unusable; the message lists every problem, one per line."""


class VfError(SriovError):
    """An operation for one port/VF failed; nothing else is affected.

    ``problem`` says what went wrong; the other fields say where, each ``None`` when unknown.
    ``rollback`` records what happened to the changes already made for the same request.
    """

    def __init__(self, problem: str, *, port: str | None = None, pf: str | None = None,
                 vf: int | None = None, pci_address: str | None = None,
                 driver: str | None = None, rollback: str | None = None) -> None:
        self.problem = problem
        self.port = port
        self.pf = pf
        self.vf = vf
        self.pci_address = pci_address
        self.driver = driver
        self.rollback = rollback
        super().__init__(self._message())

    def _message(self) -> str:
        where = []
        if self.port is not None:
            where.append(f"port {self.port}")
        if self.vf is not None:
            where.append(f"VF {self.vf}")
        if self.pf is not None:
            where.append(f"{'of ' if self.vf is not None else ''}PF {self.pf}")
        details = [d for d in (self.pci_address, self.driver and f"driver {self.driver}") if d]
        text = " ".join(where) or "SR-IOV"
        if details:
            text += f" ({', '.join(details)})"
        text += f": {self.problem}"
        if self.rollback:
            text += f"; {self.rollback}"
        return text

    def replace(self, **changes: Any) -> Self:
        """A copy of this error (same class) with some fields changed, e.g. ``port=...``."""
        fields: dict[str, Any] = {
            "port": self.port, "pf": self.pf, "vf": self.vf, "pci_address": self.pci_address,
            "driver": self.driver, "rollback": self.rollback}
        fields.update(changes)
        copy = type(self)(self.problem, **fields)
        copy.__cause__ = self.__cause__
        return copy


class InvalidRequest(VfError):
    """The request itself is wrong (VLAN out of 1-4094, port VLAN and trunk together, bad MAC)."""


class UnknownPf(VfError):
    """The PF is not in ``physical_device_mappings``, or is mapped but absent or not SR-IOV."""


class UnknownVf(VfError):
    """No such VF: an index beyond ``sriov_numvfs``, an unknown PCI slot or MAC, an excluded VF."""


class UnsupportedOperation(VfError):
    """The PF's driver cannot do this (a trunk on a NIC without trunks, EOPNOTSUPP from netlink)."""


class DriverRefused(VfError):
    """The kernel driver refused a write (sysfs or netlink error); the errno is in the message."""


class DriverUnavailable(VfError):
    """A NIC driver plugin cannot drive this PF (wrong kernel driver version, missing sysfs)."""

"""Noticing VF and PF changes as they happen: udev events folded into "PF x changed".

A :class:`SriovMonitor` listens on a udev netlink socket (pyudev) for the ``net`` and ``pci``
subsystems -- no polling: its thread sleeps in poll(2) until the kernel sends something -- and
turns each burst of events into one call ``on_change(frozenset of PF names)``.  The owner then
rediscovers those PFs (:func:`sriov.inventory.discover_pf`) and hands the new inventory back with
:meth:`SriovMonitor.update`.

What maps an event to a mapped PF (:class:`PfResolver`):

* a ``net`` event for a mapped PF's name (appearing, leaving, renamed to or from it);
* a ``net`` event for a known VF netdev, or a new netdev whose ``device/physfn`` is a mapped PF;
* a ``pci`` event for a known PF or VF address, or a new function whose ``physfn`` is a mapped PF
  -- writing ``sriov_numvfs`` adds or removes the VF PCI functions, so this is how a VF count
  change is seen.

Removal events are resolved from the last inventory (their sysfs entries are already gone).  If
the socket overflows (events lost), every mapped PF is reported changed.

``source='udev'`` (after udevd's rules ran, e.g. after renaming) is used when udevd runs,
``'kernel'`` otherwise.  :meth:`SriovMonitor.handle` takes synthesized :class:`UEvent` s, so the
whole path after the socket is testable without hardware.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyudev

from sriov.config import SriovSettings
from sriov.inventory import Inventory
from sriov.sysfs import Sysfs

LOG = logging.getLogger(__name__)
SUBSYSTEMS = ("net", "pci")
RECEIVE_BUFFER = 8 * 1024 * 1024  # a PF going to 64 VFs sends a few hundred events at once


@dataclass(frozen=True)
class UEvent:
    """What the monitor needs of a udev event."""

    action: str
    subsystem: str
    devpath: str
    properties: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_device(cls, device: Any) -> UEvent:
        """From a pyudev ``Device`` delivered by a monitor."""
        properties = {key: str(device.properties[key])
                      for key in ("INTERFACE", "DEVPATH_OLD", "PCI_SLOT_NAME")
                      if key in device.properties}
        return cls(str(device.action or ""), str(device.subsystem or ""),
                   str(device.device_path), properties)

    @property
    def names(self) -> set[str]:
        """The device's name now and, for a rename, before."""
        names = {self.properties.get("INTERFACE") or os.path.basename(self.devpath)}
        if "DEVPATH_OLD" in self.properties:
            names.add(os.path.basename(self.properties["DEVPATH_OLD"]))
        if self.subsystem == "pci" and "PCI_SLOT_NAME" in self.properties:
            names.add(self.properties["PCI_SLOT_NAME"])
        return names


class PfResolver:
    """Which mapped PF an event concerns, from the last inventory and, for new devices, sysfs."""

    def __init__(self, sysfs: Sysfs, settings: SriovSettings,
                 inventory: Inventory | None = None) -> None:
        self.sysfs = sysfs
        self.mapped = frozenset(settings.pfs)
        self._known: dict[str, str] = {}
        self.update(inventory or Inventory())

    def update(self, inventory: Inventory) -> None:
        """Remember the PF of every known VF netdev and PCI address (for removal events)."""
        known: dict[str, str] = {}
        for pf in inventory.pfs:
            known[pf.pci_address] = pf.name
            for vf in pf.vfs:
                known[vf.pci_address] = pf.name
                if vf.netdev:
                    known[vf.netdev] = pf.name
        self._known = known

    def affected(self, event: UEvent) -> str | None:
        if event.subsystem not in SUBSYSTEMS:
            return None
        for name in sorted(event.names):
            if event.subsystem == "net" and name in self.mapped:
                return name
            if name in self._known:
                return self._known[name]
        if event.action == "remove":
            return None
        for name in sorted(event.names):
            device = f"class/net/{name}/device" if event.subsystem == "net" else (
                f"bus/pci/devices/{name}")
            owner = self._mapped_pf_of(device)
            if owner is not None:
                return owner
        return None

    def _mapped_pf_of(self, device: str) -> str | None:
        for candidate in (device, f"{device}/physfn"):
            if candidate != device and not self.sysfs.exists(candidate):
                continue
            for name in self.sysfs.listdir(f"{candidate}/net"):
                if name in self.mapped:
                    return name
        return None


class SriovMonitor:
    """Calls ``on_change(pfs)`` once per burst of udev events that concern mapped PFs.

    ``on_change`` runs on the monitor's thread; an exception in it is logged, not fatal.
    """

    def __init__(self, resolver: PfResolver, on_change: Callable[[frozenset[str]], None],
                 monitor: pyudev.Monitor | None = None, source: str | None = None) -> None:
        self.resolver = resolver
        self.on_change = on_change
        self.source = source or self.default_source()
        self.monitor = monitor if monitor is not None else self.open_monitor(self.source)
        self._thread: threading.Thread | None = None
        self._wake_read, self._wake_write = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)

    @staticmethod
    def default_source() -> str:
        """``udev`` when udevd runs (its control socket exists), else ``kernel``."""
        return "udev" if os.path.exists("/run/udev/control") else "kernel"

    @staticmethod
    def open_monitor(source: str) -> pyudev.Monitor:
        """A netlink monitor on the net and pci subsystems (the socket's netns is the caller's)."""
        monitor = pyudev.Monitor.from_netlink(pyudev.Context(), source=source)
        for subsystem in SUBSYSTEMS:
            monitor.filter_by(subsystem)
        try:
            monitor.set_receive_buffer_size(RECEIVE_BUFFER)
        except OSError as exc:  # needs CAP_NET_ADMIN beyond rmem_max; the default still works
            LOG.debug("udev receive buffer left at its default: %s", exc)
        return monitor

    def update(self, inventory: Inventory) -> None:
        """The inventory after a rediscovery, so later removals are recognised."""
        self.resolver.update(inventory)

    def handle(self, events: Iterable[UEvent]) -> frozenset[str]:
        """Fold ``events`` into the PFs they concern and report them (if any); returns them."""
        pfs = frozenset(pf for pf in map(self.resolver.affected, events) if pf is not None)
        if pfs:
            self.on_change(pfs)
        return pfs

    def start(self) -> None:
        self.monitor.start()
        self._thread = threading.Thread(target=self._run, name="sriov-udev", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and close the wake-up pipe; the monitor cannot be restarted."""
        if self._thread is not None:
            os.write(self._wake_write, b"x")
            self._thread.join()
            self._thread = None
        if self._wake_read >= 0:
            os.close(self._wake_read)
            os.close(self._wake_write)
            self._wake_read = self._wake_write = -1

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self.monitor.fileno(), select.POLLIN)
        poller.register(self._wake_read, select.POLLIN)
        while True:
            ready = {fd for fd, _ in poller.poll()}
            if self._wake_read in ready:
                return
            try:
                self.handle(self._drain())
            except Exception:  # noqa: BLE001 - the monitor must outlive a failing callback
                LOG.exception("SR-IOV change handling failed")

    def _drain(self) -> list[UEvent]:
        events: list[UEvent] = []
        while True:
            try:
                device = self.monitor.poll(timeout=0)
            except OSError as exc:
                LOG.warning("udev events lost (%s): treating every mapped PF as changed", exc)
                self.on_change(self.resolver.mapped)
                return events
            if device is None:
                return events
            events.append(UEvent.from_device(device))

"""Finding NIC drivers by entry point and choosing one per PF.

Drivers are classes registered under the ``dpagent.sriov.drivers`` entry point group and loaded
with stevedore; nothing in the core names a vendor plugin.  For each PF the choice is:

1. ``[sriov] driver_overrides`` names an entry point for it: that driver, or the PF fails with
   :class:`~sriov.errors.DriverUnavailable` if the driver refuses the PF;
2. otherwise the first driver (by entry point name) listing the PF's kernel driver in
   :attr:`~sriov.driver.NicDriver.kernel_drivers` that accepts the PF;
3. otherwise the generic ``netlink`` driver, remembering why no plugin fitted (quoted when a
   trunk is then refused).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import stevedore

from sriov.driver import DriverContext, LinkOps, NicDriver, PfInfo, SysfsAccess
from sriov.errors import DriverUnavailable, SriovConfigError

NAMESPACE = "dpagent.sriov.drivers"
GENERIC = "netlink"


@dataclass(frozen=True)
class DriverChoice:
    """Which driver a PF gets, and why (for logs and error messages)."""

    pf: str
    name: str
    because: str


class DriverCatalog:
    """The driver classes by entry point name."""

    def __init__(self, drivers: Mapping[str, type[NicDriver]]) -> None:
        if GENERIC not in drivers:
            raise SriovConfigError(f"no {GENERIC!r} driver among {sorted(drivers)}: every PF "
                                   "without a plugin needs it")
        self.drivers = dict(drivers)

    @classmethod
    def from_entry_points(cls, namespace: str = NAMESPACE) -> DriverCatalog:
        """Load every entry point of ``namespace``; a broken one is an error naming it."""
        def failed(_manager: object, entry_point: object, exc: BaseException) -> None:
            raise SriovConfigError(f"SR-IOV driver entry point {entry_point} cannot be "
                                   f"loaded: {exc}") from exc

        manager: stevedore.ExtensionManager[type[NicDriver]] = stevedore.ExtensionManager(
            namespace, invoke_on_load=False, on_load_failure_callback=failed)
        drivers: dict[str, type[NicDriver]] = {}
        for extension in manager:
            plugin = extension.plugin
            if not (isinstance(plugin, type) and issubclass(plugin, NicDriver)):
                raise SriovConfigError(f"SR-IOV driver entry point {extension.name} "
                                       f"({extension.entry_point_target}) is not a NicDriver")
            drivers[extension.name] = plugin
        return cls(drivers)

    @property
    def names(self) -> list[str]:
        return sorted(self.drivers)

    def check_overrides(self, overrides: Mapping[str, str]) -> None:
        """:class:`SriovConfigError` for every override naming no known driver."""
        problems = [f"[sriov] driver_overrides: PF {pf} names driver {name!r}, which is not "
                    f"an entry point of {NAMESPACE} (known: {', '.join(self.names)})"
                    for pf, name in sorted(overrides.items()) if name not in self.drivers]
        if problems:
            raise SriovConfigError("\n".join(problems))

    def choose(self, pf: PfInfo, sysfs: SysfsAccess, override: str | None = None) -> DriverChoice:
        """The driver for ``pf`` (see the module docstring for the rules)."""
        if override is not None:
            driver = self.drivers.get(override)
            if driver is None:
                raise DriverUnavailable(f"[sriov] driver_overrides names unknown driver "
                                        f"{override!r} (known: {', '.join(self.names)})",
                                        pf=pf.name, driver=override)
            reason = driver.unusable_reason(pf, sysfs)
            if reason is not None:
                raise DriverUnavailable(f"cannot drive this PF: {reason}", pf=pf.name,
                                        pci_address=pf.pci_address, driver=override)
            return DriverChoice(pf.name, override, "chosen by [sriov] driver_overrides")
        refusals = []
        for name in self.names:
            driver = self.drivers[name]
            if name == GENERIC or pf.kernel_driver not in driver.kernel_drivers:
                continue
            reason = driver.unusable_reason(pf, sysfs)
            if reason is None:
                return DriverChoice(pf.name, name, f"for kernel driver {pf.kernel_driver}")
            refusals.append(f"{name} not usable: {reason}")
        because = "; ".join(refusals) or f"no plugin for kernel driver {pf.kernel_driver}"
        return DriverChoice(pf.name, GENERIC, because)


class PfDrivers:
    """One driver instance per PF, chosen on first use and kept until :meth:`forget`."""

    def __init__(self, catalog: DriverCatalog, sysfs: SysfsAccess, link_ops: LinkOps,
                 overrides: Mapping[str, str] | None = None) -> None:
        self.catalog = catalog
        self.sysfs = sysfs
        self.link_ops = link_ops
        self.overrides = dict(overrides or {})
        catalog.check_overrides(self.overrides)
        self._drivers: dict[str, tuple[PfInfo, NicDriver]] = {}

    def for_pf(self, pf: PfInfo) -> NicDriver:
        """The driver of ``pf``; :class:`DriverUnavailable` if its forced driver refuses it."""
        cached = self._drivers.get(pf.name)
        if cached is not None and cached[0] == pf:
            return cached[1]
        choice = self.catalog.choose(pf, self.sysfs, self.overrides.get(pf.name))
        driver = self.catalog.drivers[choice.name](
            DriverContext(choice.name, pf, self.sysfs, self.link_ops, choice.because))
        self._drivers[pf.name] = (pf, driver)
        return driver

    def forget(self, pf: str) -> None:
        """Choose again next time (the PF changed: driver reloaded, device replaced)."""
        self._drivers.pop(pf, None)

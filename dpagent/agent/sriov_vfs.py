"""The SR-IOV side's VF programmer: :class:`~dpagent.agent.sriov_ports.VfProgrammer` on the
``sriov`` library (inventory, NIC drivers by entry point, the validate-then-converge port
operation, the udev monitor).

Link state follows the port's admin state on a best-effort basis, as in neutron's SR-IOV agent:
some NICs (igb) refuse it (EOPNOTSUPP); that is logged once per port and does not fail the port,
whose VLANs and spoof checking are what isolate it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from dpagent.agent.sriov_plan import VfPlan
from sriov import (
    DriverCatalog,
    DriverRefused,
    LinkState,
    PfDrivers,
    PfResolver,
    SriovMonitor,
    SriovSettings,
    Sysfs,
    UnsupportedOperation,
    VfPortConfigurator,
    VfPortRequest,
    VlanIntent,
    discover,
    discover_pf,
)
from sriov.driver import LinkOps

LOG = logging.getLogger(__name__)


class LibraryVfs:
    """Converges VFs with :class:`sriov.VfPortConfigurator`; rediscovers PFs on udev events."""

    def __init__(self, settings: SriovSettings, link_ops: LinkOps, *,
                 sysfs: Sysfs | None = None, catalog: DriverCatalog | None = None) -> None:
        self.settings = settings
        self.sysfs = sysfs or Sysfs(settings.sysfs_root)
        self.link_ops = link_ops
        self.drivers = PfDrivers(catalog or DriverCatalog.from_entry_points(), self.sysfs,
                                 link_ops, settings.driver_overrides)
        self.configurator = VfPortConfigurator(discover(self.sysfs, settings, link_ops),
                                               self.drivers, self.sysfs)
        for pf, problem in self.configurator.inventory.problems.items():
            LOG.error("SR-IOV: PF %s cannot be managed: %s", pf, problem)
        self._lock = threading.Lock()
        self._monitor: SriovMonitor | None = None
        self._link_state_refused: set[str] = set()

    # -- VfProgrammer ----------------------------------------------------------------------------

    def apply(self, plan: VfPlan) -> str:
        vlans = VlanIntent(port_vlan=plan.vlan, trunk=plan.trunk_vlans or frozenset())
        request = VfPortRequest(plan.port_id, pci_slot=plan.pci_slot, mac=plan.mac,
                                physnet=plan.physnet, vlans=vlans, spoof_check=plan.spoof_check)
        with self._lock:
            result = self.configurator.apply(request)
            self._link_state(plan)
        vf = f"{result.vf.pf}/{result.vf.index}"
        if result.changes:
            LOG.info("SR-IOV: VF %s for port %s: %s", vf, plan.port_id, "; ".join(result.changes))
        return vf

    def release(self, plan: VfPlan) -> None:
        request = VfPortRequest(plan.port_id, pci_slot=plan.pci_slot, mac=plan.mac,
                                vlans=VlanIntent())
        with self._lock:
            self.configurator.apply(request)
        self._link_state_refused.discard(plan.port_id)

    def device_mappings(self) -> dict[str, list[str]]:
        return {physnet: list(pfs) for physnet, pfs in self.settings.device_mappings.items()}

    def vf_count(self) -> int:
        return len(self.configurator.inventory.vfs)

    def _link_state(self, plan: VfPlan) -> None:
        if plan.port_id in self._link_state_refused:
            return  # asked once: the NIC will not do it, no need to ask on every apply
        state = LinkState.ENABLE if plan.link_up else LinkState.DISABLE
        request = VfPortRequest(plan.port_id, pci_slot=plan.pci_slot, mac=plan.mac,
                                link_state=state)
        try:
            self.configurator.apply(request)
        except (UnsupportedOperation, DriverRefused) as exc:
            self._link_state_refused.add(plan.port_id)
            LOG.warning("SR-IOV: link state of port %s left as it is: %s", plan.port_id, exc)

    # -- inventory changes -------------------------------------------------------------------------

    def watch(self, on_change: Callable[[frozenset[str]], None],
              source: str | None = None) -> None:
        """Follow udev: rediscover PFs whose VFs changed, then tell ``on_change`` which."""
        resolver = PfResolver(self.sysfs, self.settings, self.configurator.inventory)

        def changed(pfs: frozenset[str]) -> None:
            with self._lock:
                inventory = self.configurator.inventory
                for pf in sorted(pfs):
                    inventory = inventory.with_pf(pf, discover_pf(self.sysfs, self.settings, pf,
                                                                  self.link_ops))
                    self.drivers.forget(pf)
                self.configurator.inventory = inventory
            if self._monitor is not None:
                self._monitor.update(inventory)
            LOG.info("SR-IOV: VFs of %s changed; %d VFs managed", ", ".join(sorted(pfs)),
                     len(inventory.vfs))
            on_change(pfs)

        self._monitor = SriovMonitor(resolver, changed, source=source)
        self._monitor.start()

    def stop(self) -> None:
        if self._monitor is not None:
            self._monitor.stop()
            self._monitor = None

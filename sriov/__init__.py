"""SR-IOV VF inventory and NIC drivers for dpagent (a library: it never imports ``dpagent``).

The public API, in the order an agent uses it (details in docs/sriov.md)::

    settings = SriovSettings.from_options(conf.sriov.physical_device_mappings,
                                          conf.sriov.exclude_devices,
                                          conf.sriov.driver_overrides, conf.sriov.sysfs_root)
    sysfs, link_ops = Sysfs(settings.sysfs_root), NetlinkLinkOps()
    drivers = PfDrivers(DriverCatalog.from_entry_points(), sysfs, link_ops,
                        settings.driver_overrides)
    inventory = discover(sysfs, settings, link_ops)            # PFs, VFs, problems
    ports = VfPortConfigurator(inventory, drivers, sysfs)
    result = ports.apply(VfPortRequest(port_id, pci_slot=..., mac=..., physnet=...,
                                       vlans=VlanIntent(trunk=frozenset({10, 20})),
                                       spoof_check=True, link_state=LinkState.ENABLE))
    monitor = SriovMonitor(PfResolver(sysfs, settings, inventory), on_change=...)
    monitor.start()   # on_change(frozenset of PF names) from its thread: rediscover those PFs
                      # (discover_pf, Inventory.with_pf), then ports.inventory = new,
                      # monitor.update(new), drivers.forget(pf)

Every failure for a port is a :class:`VfError` subclass naming port, PF, VF and driver; other
ports are unaffected.  Drivers are found only through the ``dpagent.sriov.drivers`` entry points
(stevedore); the interface they implement is :mod:`sriov.driver` (with :mod:`sriov.errors` and
:mod:`sriov.vlans`), and vendor plugins such as :mod:`sriov.intel` import nothing else of this
package.  :mod:`sriov.testing` has a fake sysfs tree with an emulated kernel for tests.
"""

from __future__ import annotations

from sriov.config import SriovSettings
from sriov.driver import Capability, LinkState, NicDriver, VfLinkState, VfTarget
from sriov.drivers import DriverCatalog, PfDrivers
from sriov.errors import (
    DriverRefused,
    DriverUnavailable,
    InvalidRequest,
    SriovConfigError,
    SriovError,
    UnknownPf,
    UnknownVf,
    UnsupportedOperation,
    VfError,
)
from sriov.inventory import Inventory, PhysicalFunction, VirtualFunction, discover, discover_pf
from sriov.monitor import PfResolver, SriovMonitor
from sriov.netlink import NetlinkLinkOps
from sriov.ports import VfPortConfigurator, VfPortRequest, VfPortResult
from sriov.sysfs import Sysfs
from sriov.vlan_plan import VlanIntent

__all__ = [
    "Capability", "DriverCatalog", "DriverRefused", "DriverUnavailable", "InvalidRequest",
    "Inventory", "LinkState", "NetlinkLinkOps", "NicDriver", "PfDrivers", "PfResolver",
    "PhysicalFunction", "SriovConfigError", "SriovError", "SriovMonitor", "SriovSettings",
    "Sysfs", "UnknownPf", "UnknownVf", "UnsupportedOperation", "VfError", "VfLinkState",
    "VfPortConfigurator", "VfPortRequest", "VfPortResult", "VfTarget", "VirtualFunction",
    "VlanIntent", "discover", "discover_pf",
]

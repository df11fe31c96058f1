"""udev events folded into "PF x changed": synthesized events through the real handling path."""

from __future__ import annotations

import errno
import socket
import threading
from types import SimpleNamespace

import pytest

from sriov.config import SriovSettings
from sriov.inventory import discover, discover_pf
from sriov.monitor import PfResolver, SriovMonitor, UEvent

PORT = "/devices/pci0000:00/0000:00:07.0"


@pytest.fixture
def setup(tree, sysfs):
    tree.add_pf("ens1f0", "0000:07:00.0", num_vfs=2)
    tree.add_pf("ens2f0", "0000:08:00.0", kernel_driver="igb", num_vfs=1)
    tree.add_pf("ens9f0", "0000:0a:00.0", num_vfs=1)  # SR-IOV but not mapped
    settings = SriovSettings.from_options(["physnet2:ens1f0", "physnet3:ens2f0"])
    inventory = discover(sysfs, settings)
    reports = []
    monitor = SriovMonitor(PfResolver(sysfs, settings, inventory), reports.append,
                           monitor=SimpleNamespace(), source="kernel")
    yield SimpleNamespace(monitor=monitor, reports=reports, settings=settings, tree=tree,
                          sysfs=sysfs)
    monitor.stop()


def net(action, name, devpath=None, **properties):
    return UEvent(action, "net", devpath or f"{PORT}/x/net/{name}",
                  {"INTERFACE": name, **properties})


def pci(action, address):
    return UEvent(action, "pci", f"{PORT}/{address}", {"PCI_SLOT_NAME": address})


@pytest.mark.parametrize("event, pf", [
    (net("add", "ens1f0v1"), "ens1f0"),  # a VF netdev (re)appearing
    (net("remove", "ens1f0v0"), "ens1f0"),  # ... and leaving: known from the inventory
    (net("remove", "ens1f0"), "ens1f0"),  # the PF itself
    (net("move", "ens2f0", DEVPATH_OLD=f"{PORT}/0000:08:00.0/net/eth3"), "ens2f0"),  # renamed to
    (net("move", "eth7", DEVPATH_OLD=f"{PORT}/0000:08:00.0/net/ens2f0"), "ens2f0"),  # ... from
    (pci("remove", "0000:07:02.1"), "ens1f0"),  # sriov_numvfs lowered: VF functions go
    (pci("bind", "0000:08:02.0"), "ens2f0"),  # a VF bound to another driver (vfio-pci)
    (pci("change", "0000:07:00.0"), "ens1f0"),  # the PF's PCI function
    (net("add", "lo", "/devices/virtual/net/lo"), None),
    (net("add", "ens9f0v0"), None),  # VF of an unmapped PF
    (pci("add", "0000:0a:02.0"), None),
    (pci("remove", "0000:0b:02.0"), None),
    (UEvent("add", "block", "/devices/virtual/block/loop0"), None),
])
def test_events_map_to_the_pf_they_concern(setup, event, pf):
    assert setup.monitor.handle([event]) == (frozenset({pf}) if pf else frozenset())
    assert setup.reports == ([frozenset({pf})] if pf else [])


def test_raising_sriov_numvfs_is_seen_through_the_new_vf_functions(setup):
    setup.sysfs.write("class/net/ens1f0/device/sriov_numvfs", "0")
    setup.sysfs.write("class/net/ens1f0/device/sriov_numvfs", "4")
    # VF 3 is new: not in the inventory, found through its physfn link
    assert setup.monitor.handle([pci("add", "0000:07:02.3")]) == {"ens1f0"}
    assert setup.monitor.handle([net("add", "ens1f0v3")]) == {"ens1f0"}


def test_a_burst_of_events_is_one_report(setup):
    setup.monitor.handle([pci("remove", "0000:07:02.0"), pci("remove", "0000:07:02.1"),
                          net("remove", "ens1f0v0"), net("remove", "ens1f0v1"),
                          net("add", "lo", "/devices/virtual/net/lo"),
                          pci("add", "0000:08:02.0")])
    assert setup.reports == [frozenset({"ens1f0", "ens2f0"})]


def test_after_an_update_old_vfs_are_forgotten_and_new_ones_known(setup):
    setup.sysfs.write("class/net/ens1f0/device/sriov_numvfs", "0")
    monitor = setup.monitor
    inventory = discover(setup.sysfs, setup.settings)
    monitor.update(inventory.with_pf("ens1f0", discover_pf(setup.sysfs, setup.settings,
                                                           "ens1f0")))
    assert monitor.handle([net("remove", "ens1f0v0")]) == frozenset()


class SocketMonitor:
    """Stands in for pyudev.Monitor: readable when events are queued (a socketpair)."""

    def __init__(self):
        self.reader, self.writer = socket.socketpair()
        self.queue = []
        self.started = False

    def start(self):
        self.started = True

    def fileno(self):
        return self.reader.fileno()

    def push(self, *devices):
        self.queue.extend(devices)
        self.writer.send(b"!")

    def poll(self, timeout=None):
        self.reader.setblocking(False)
        try:
            self.reader.recv(64)
        except BlockingIOError:
            pass
        item = self.queue.pop(0) if self.queue else None
        if isinstance(item, OSError):
            raise item
        return item


def device(action, subsystem, devpath, **properties):
    return SimpleNamespace(action=action, subsystem=subsystem, device_path=devpath,
                           properties=properties)


def test_the_thread_drains_a_burst_reports_it_and_stops(setup):
    fake = SocketMonitor()
    reported = threading.Event()
    reports = []

    def on_change(pfs):
        reports.append(pfs)
        reported.set()

    monitor = SriovMonitor(setup.monitor.resolver, on_change, monitor=fake, source="kernel")
    monitor.start()
    try:
        fake.push(device("remove", "net", f"{PORT}/x/net/ens1f0v0", INTERFACE="ens1f0v0"),
                  device("remove", "pci", f"{PORT}/0000:07:02.0", PCI_SLOT_NAME="0000:07:02.0"))
        assert reported.wait(10)
        reported.clear()
        fake.push(OSError(errno.ENOBUFS, "No buffer space available"))
        assert reported.wait(10)
    finally:
        monitor.stop()
    assert fake.started
    assert reports == [frozenset({"ens1f0"}), frozenset({"ens1f0", "ens2f0"})]

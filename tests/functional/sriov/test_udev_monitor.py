"""The monitor on a real udev netlink socket (source='kernel') with real kernel uevents.

The socket is opened in a private namespace, where the test creates and deletes devices; the
fake sysfs tree says that the device's name is VF 0's netdev of mapped PF ens1f0, so the real
event must come out as "ens1f0 changed", and an unrelated device as nothing.
"""

from __future__ import annotations

import threading
import uuid

from dpagent.lab import process
from sriov.config import SriovSettings
from sriov.inventory import discover
from sriov.monitor import PfResolver, SriovMonitor
from sriov.testing import FakeSysfs, FakeSysfsTree
from tests.functional.sriov.conftest import in_netns


def test_real_uevents_for_a_vf_netdev_report_its_pf(netns, tmp_path):
    vf_netdev = f"svf{uuid.uuid4().hex[:8]}"
    tree = FakeSysfsTree(tmp_path / "sys")
    tree.add_pf("ens1f0", "0000:07:00.0", num_vfs=2)
    tree.rename_vf_netdev("ens1f0", 0, vf_netdev)
    sysfs = FakeSysfs(tree)
    settings = SriovSettings.from_options(["physnet2:ens1f0"])
    resolver = PfResolver(sysfs, settings, discover(sysfs, settings))

    reports: list[frozenset[str]] = []
    arrived = threading.Event()

    def on_change(pfs: frozenset[str]) -> None:
        reports.append(pfs)
        arrived.set()

    udev = in_netns(netns, lambda: SriovMonitor.open_monitor("kernel"))
    monitor = SriovMonitor(resolver, on_change, monitor=udev, source="kernel")
    monitor.start()
    try:
        process.run(["ip", "-n", netns, "link", "add", "unrelated0", "type", "ifb"])
        process.run(["ip", "-n", netns, "link", "add", vf_netdev, "type", "ifb"])
        assert arrived.wait(10), "no uevent reached the monitor"
        assert reports == [frozenset({"ens1f0"})]  # unrelated0 reported nothing
        arrived.clear()
        process.run(["ip", "-n", netns, "link", "del", vf_netdev])
        assert arrived.wait(10), "the removal did not reach the monitor"
        assert reports == [frozenset({"ens1f0"}), frozenset({"ens1f0"})]
    finally:
        monitor.stop()

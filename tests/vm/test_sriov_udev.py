"""The udev monitor (source='kernel': no udevd in the VM) sees sriov_numvfs change on the real
igb PF, folded into "this PF changed"."""

from __future__ import annotations

import threading

from sriov.config import SriovSettings
from sriov.inventory import discover, discover_pf
from sriov.monitor import PfResolver, SriovMonitor
from sriov.sysfs import Sysfs
from tests.vm.conftest import IgbPF


def test_vfs_appearing_and_disappearing_report_the_pf(igb_pf: IgbPF) -> None:
    sysfs = Sysfs("/sys")
    settings = SriovSettings.from_options([f"physnet1:{igb_pf.name}"])
    reports: list[frozenset[str]] = []
    arrived = threading.Event()

    def on_change(pfs: frozenset[str]) -> None:
        reports.append(pfs)
        arrived.set()

    assert SriovMonitor.default_source() == "kernel"
    monitor = SriovMonitor(PfResolver(sysfs, settings, discover(sysfs, settings)), on_change)
    monitor.start()
    try:
        igb_pf.set_numvfs(3)
        assert arrived.wait(60), "no event for the new VFs"
        assert set(reports) == {frozenset({igb_pf.name})}
        pf = discover_pf(sysfs, settings, igb_pf.name)
        assert not isinstance(pf, str) and len(pf.vfs) == 3
        monitor.update(discover(sysfs, settings))
        reports.clear()
        arrived.clear()
        igb_pf.set_numvfs(0)  # the VFs' sysfs entries are gone: resolved from the inventory
        assert arrived.wait(60), "no event for the removed VFs"
        assert set(reports) == {frozenset({igb_pf.name})}
    finally:
        monitor.stop()

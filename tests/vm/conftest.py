"""The SR-IOV VM tier: tests that need a real SR-IOV NIC.

Everything under tests/vm/ is marked ``sriov_vm`` and runs only inside the VM
that ``tools/sriov-vm/run.sh`` boots (QEMU's emulated Intel 82576 driven by
the stock igb/igbvf drivers); its init sets ``DPAGENT_SRIOV_VM=1``.  Anywhere
else these tests skip: writing ``sriov_numvfs`` on a developer's machine is
not something a test may do.  Inside the VM a missing igb PF fails the test
instead, since it means the rig itself is broken.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

VM_TESTS = Path(__file__).parent
IN_VM = os.environ.get("DPAGENT_SRIOV_VM") == "1"
SYS_NET = Path("/sys/class/net")
IGB_TOTAL_VFS = 7  # QEMU's igb, like a real 82576, offers 7 VFs


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sriov_vm: needs the SR-IOV test VM (tools/sriov-vm/run.sh); "
        "set for everything under tests/vm/",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(
        reason="runs only inside the SR-IOV test VM: bash tools/sriov-vm/run.sh"
    )
    for item in items:
        if VM_TESTS in item.path.parents:
            item.add_marker(pytest.mark.sriov_vm)
            if not IN_VM:
                item.add_marker(skip)


@dataclass(frozen=True)
class IgbPF:
    """The igb physical function of the VM, with its sysfs device directory."""

    name: str

    @property
    def device(self) -> Path:
        """``/sys/class/net/<pf>/device``: sriov_numvfs, virtfnN links."""
        return SYS_NET / self.name / "device"

    @property
    def numvfs(self) -> int:
        return int((self.device / "sriov_numvfs").read_text())

    def set_numvfs(self, count: int) -> None:
        """Enable ``count`` VFs (0 disables them).

        The kernel refuses to change a non-zero VF count directly (EBUSY), so
        the count goes through 0 first.  The VFs' PCI devices -- and, with
        igbvf loaded, their netdevs -- exist when this returns.
        """
        numvfs = self.device / "sriov_numvfs"
        if self.numvfs not in (0, count):
            numvfs.write_text("0")
        if self.numvfs != count:
            numvfs.write_text(str(count))


def find_igb_pf() -> IgbPF:
    """The one netdev whose driver is igb; fails (not skips) when absent."""
    found = [
        net.name
        for net in sorted(SYS_NET.iterdir())
        if (net / "device" / "driver").exists()
        and (net / "device" / "driver").resolve().name == "igb"
    ]
    if len(found) != 1:
        pytest.fail(f"the VM should have exactly one igb PF, found {found or 'none'}",
                    pytrace=False)
    return IgbPF(found[0])


@pytest.fixture
def igb_pf() -> Iterator[IgbPF]:
    """The VM's igb PF with no VFs; whatever VFs a test enables are removed after it."""
    pf = find_igb_pf()
    pf.set_numvfs(0)
    try:
        yield pf
    finally:
        pf.set_numvfs(0)


@pytest.fixture
def igb_vfs(igb_pf: IgbPF) -> IgbPF:
    """The igb PF with all its 7 VFs enabled (removed again after the test)."""
    igb_pf.set_numvfs(IGB_TOTAL_VFS)
    return igb_pf

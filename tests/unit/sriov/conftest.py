"""A fake sysfs tree (real layout, fake kernel behind it) for the SR-IOV unit tests."""

from __future__ import annotations

import pytest

from sriov.testing import FakeLinkOps, FakeSysfs, FakeSysfsTree


@pytest.fixture
def tree(tmp_path) -> FakeSysfsTree:
    return FakeSysfsTree(tmp_path / "sys")


@pytest.fixture
def sysfs(tree) -> FakeSysfs:
    return FakeSysfs(tree)


@pytest.fixture
def link_ops(tree) -> FakeLinkOps:
    return FakeLinkOps(tree)

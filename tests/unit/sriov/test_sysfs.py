"""The one sysfs writer: whole value in one write(), errors with the kernel's errno."""

from __future__ import annotations

import errno

import pytest

from sriov.sysfs import Sysfs


def test_a_write_replaces_the_content_like_echo(tmp_path):
    (tmp_path / "attr").write_text("a much longer old value\n")
    Sysfs(tmp_path).write("attr", "on\n")
    assert (tmp_path / "attr").read_text() == "on\n"
    assert Sysfs(tmp_path).read("attr") == "on"


def test_a_missing_attribute_is_not_created(tmp_path):
    with pytest.raises(FileNotFoundError):
        Sysfs(tmp_path).write("class/net/eth9/device/sriov_numvfs", "4")
    assert not (tmp_path / "class").exists()


def test_absolute_paths_escape_the_root_and_are_refused(tmp_path):
    with pytest.raises(ValueError, match="relative to the sysfs root"):
        Sysfs(tmp_path).read("/etc/passwd")


def test_a_short_write_is_an_error_not_a_retry(tree, sysfs):
    """kernfs hands a store method one page; the rest of a longer write is lost."""
    tree.add_pf("ens1f0", "0000:07:00.0", num_vfs=1)
    value = "add " + ",".join(str(v) for v in range(1, 4095, 2)) + "\n"
    with pytest.raises(OSError) as caught:
        sysfs.write("class/net/ens1f0/device/sriov/0/trunk", value)
    assert caught.value.errno == errno.EIO
    assert f"short write: the kernel took 4096 of {len(value)} bytes" in str(caught.value)
    assert len(sysfs.writes) == 1  # one write() call, not retried


def test_the_kernels_errno_comes_through(tree, sysfs):
    tree.add_pf("ens1f0", "0000:07:00.0", total_vfs=8, num_vfs=2)
    for value, error in (("9", errno.ERANGE), ("3", errno.EBUSY), ("x", errno.EINVAL)):
        with pytest.raises(OSError) as caught:
            sysfs.write("class/net/ens1f0/device/sriov_numvfs", value)
        assert caught.value.errno == error
    assert sysfs.read("class/net/ens1f0/device/sriov_numvfs") == "2"


def test_listing_and_links(tree, sysfs):
    tree.add_pf("ens1f0", "0000:07:00.0", num_vfs=2)
    assert "virtfn1" in sysfs.listdir("class/net/ens1f0/device")
    assert sysfs.listdir("class/net/nothing") == []
    assert sysfs.link_target_name("class/net/ens1f0/device/driver") == "i40e"
    assert sysfs.link_target_name("class/net/ens1f0/device/vendor") is None
    assert sysfs.resolve("class/net/ens1f0/device").name == "0000:07:00.0"

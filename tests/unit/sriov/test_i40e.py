"""The Intel i40e plugin against a fake sysfs tree with the out-of-tree driver's files."""

from __future__ import annotations

import errno

import pytest

from sriov.driver import Capability, DriverContext, LinkState, PfInfo, VfTarget
from sriov.errors import DriverRefused, InvalidRequest, UnknownVf
from sriov.intel.i40e import I40eTrunkDriver, parse_version

TRUNK = "class/net/ens1f0/device/sriov/{}/trunk"


@pytest.fixture
def driver(tree, sysfs, link_ops):
    tree.add_pf("ens1f0", "0000:07:00.0", num_vfs=4)
    tree.set_module_version("i40e", "2.22.18")
    pf = PfInfo("ens1f0", "0000:07:00.0", "i40e")
    assert I40eTrunkDriver.unusable_reason(pf, sysfs) is None
    return I40eTrunkDriver(DriverContext("intel_i40e", pf, sysfs, link_ops))


def vf(index, port="port-a"):
    return VfTarget("ens1f0", index, port, f"0000:07:02.{index}")


def test_it_can_carry_trunks(driver):
    assert Capability.TRUNK in driver.capabilities
    assert Capability.PORT_VLAN in driver.capabilities


def test_write_add_10_20_then_read_10_20(driver, sysfs, tree):
    driver.add_trunk_vlans(vf(1), {20, 10})
    assert sysfs.writes == [(TRUNK.format(1), "add 10,20\n")]
    assert tree.trunk("ens1f0", 1) == "10,20\n"
    assert driver.trunk_vlans(vf(1)) == {10, 20}


def test_the_documented_add_and_rem_example(driver, sysfs, tree):
    driver.add_trunk_vlans(vf(0), {2, 4, 5, *range(10, 21)})
    driver.remove_trunk_vlans(vf(0), {5, 11, 12, 13})
    assert [value for _, value in sysfs.writes] == ["add 2,4-5,10-20\n", "rem 5,11-13\n"]
    assert tree.trunk("ens1f0", 0) == "2,4,10,14-20\n"


def test_removing_an_absent_vlan_is_ignored_and_nothing_is_a_no_op(driver, sysfs, tree):
    driver.add_trunk_vlans(vf(0), {10})
    driver.remove_trunk_vlans(vf(0), {30})
    driver.add_trunk_vlans(vf(0), set())
    driver.remove_trunk_vlans(vf(0), ())
    assert tree.trunk("ens1f0", 0) == "10\n"
    assert len(sysfs.writes) == 2


def test_first_trunk_vlan_clears_the_port_vlan_and_untagged_emptying_turns_it_back(
        driver, link_ops, tree):
    driver.set_port_vlan(vf(2), 300)
    assert driver.vf_state(vf(2)).vlan == 300
    driver.add_trunk_vlans(vf(2), {10, 11})
    assert driver.vf_state(vf(2)).vlan == 0
    assert driver.allow_untagged(vf(2)) is False
    driver.remove_trunk_vlans(vf(2), {10})
    assert driver.allow_untagged(vf(2)) is False
    driver.remove_trunk_vlans(vf(2), {11})
    assert driver.allow_untagged(vf(2)) is True
    driver.set_allow_untagged(vf(2), False)
    assert tree.vendor_file("ens1f0", 2, "allow_untagged") == "off"


def test_a_vlan_outside_1_4094_is_refused_before_any_write(driver, sysfs):
    with pytest.raises(InvalidRequest) as caught:
        driver.add_trunk_vlans(vf(1), {10, 4095})
    assert str(caught.value) == ("port port-a VF 1 of PF ens1f0 (0000:07:02.1, driver "
                                 "intel_i40e): trunk add: VLAN 4095 is outside 1-4094")
    assert sysfs.writes == []


def test_a_vf_index_that_does_not_exist_is_named(driver, sysfs):
    with pytest.raises(UnknownVf) as caught:
        driver.add_trunk_vlans(VfTarget("ens1f0", 7, "port-b"), {10})
    assert str(caught.value) == (
        "port port-b VF 7 of PF ens1f0 (driver intel_i40e): VF 7 does not exist "
        "(no class/net/ens1f0/device/sriov/7)")
    assert sysfs.writes == []


def test_a_write_refused_by_the_driver_names_port_pf_vf_and_errno_others_keep_working(
        driver, sysfs, tree):
    sysfs.refuse(TRUNK.format(1), errno.EIO)
    with pytest.raises(DriverRefused) as caught:
        driver.add_trunk_vlans(vf(1), {10})
    message = str(caught.value)
    assert message.startswith("port port-a VF 1 of PF ens1f0 (0000:07:02.1, driver intel_i40e)")
    assert "writing 'add 10' to class/net/ens1f0/device/sriov/1/trunk" in message
    assert f"errno {errno.EIO}" in message
    driver.add_trunk_vlans(vf(2), {10})
    assert tree.trunk("ens1f0", 2) == "10\n"
    assert tree.trunk("ens1f0", 1) == "\n"


def test_the_kernel_refusing_a_malformed_command_is_reported(driver, sysfs):
    with pytest.raises(OSError) as caught:
        sysfs.write(TRUNK.format(0), "add ten\n")
    assert caught.value.errno == errno.EINVAL


def test_a_fragmented_set_goes_out_in_page_sized_batches(driver, sysfs, tree):
    every_other = set(range(1, 4095, 2))
    driver.add_trunk_vlans(vf(3), every_other)
    assert len(sysfs.writes) == 3
    assert all(len(value.encode()) <= 4096 and value.startswith("add ")
               for _, value in sysfs.writes)
    assert driver.trunk_vlans(vf(3)) == every_other


def test_an_unreadable_trunk_file_is_an_error_naming_the_file(driver, tree):
    (tree.root / "class/net/ens1f0/device/sriov/0/trunk").write_text("garbage\n")
    with pytest.raises(DriverRefused, match="sriov/0/trunk reads 'garbage'"):
        driver.trunk_vlans(vf(0))


def test_standard_settings_go_through_netlink(driver, link_ops, tree):
    driver.set_mac(vf(0), "fa:16:3e:00:00:07")
    driver.set_spoof_check(vf(0), False)
    driver.set_link_state(vf(0), LinkState.ENABLE)
    driver.set_trust(vf(0), True)
    state = driver.vf_state(vf(0))
    assert (state.mac, state.spoof_check, state.link_state, state.trust) == (
        "fa:16:3e:00:00:07", False, LinkState.ENABLE, True)
    assert [call[0] for call in link_ops.calls] == ["mac", "spoof_check", "link_state", "trust"]


@pytest.mark.parametrize("version, usable", [
    ("2.7.11", True), ("2.22.18", True), ("2.7.10", False), ("2.3.6", False), ("1.9", False),
    ("3.0.0-k", True)])
def test_driver_version_at_least_2_7_11(tree, sysfs, version, usable):
    tree.add_pf("ens1f0", "0000:07:00.0", num_vfs=1)
    tree.set_module_version("i40e", version)
    reason = I40eTrunkDriver.unusable_reason(PfInfo("ens1f0", "0000:07:00.0", "i40e"), sysfs)
    assert (reason is None) == usable
    if not usable:
        assert f"i40e {version} is older than 2.7.11" in reason


def test_the_in_tree_driver_has_no_version_and_no_trunks(tree, sysfs):
    tree.add_pf("ens1f0", "0000:07:00.0", num_vfs=1, vendor_tree=False)
    reason = I40eTrunkDriver.unusable_reason(PfInfo("ens1f0", "0000:07:00.0", "i40e"), sysfs)
    assert "in-tree i40e driver" in reason and "module/i40e/version" in reason
    tree.set_module_version("i40e", "2.22.18")
    reason = I40eTrunkDriver.unusable_reason(PfInfo("ens1f0", "0000:07:00.0", "i40e"), sysfs)
    assert "no device/sriov/ VF management tree" in reason


def test_version_parsing():
    assert parse_version("2.22.18\n") == (2, 22, 18)
    assert parse_version("2.8.20-k") == (2, 8, 20)
    assert parse_version("unknown") is None

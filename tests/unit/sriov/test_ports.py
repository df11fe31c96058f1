"""Configuring a port's VF end to end on the fake tree: converge, refuse early, or roll back.

ens1f0 is an X710 with Intel's out-of-tree i40e (trunks); ens2f0 an 82576 on igb (generic
netlink driver, link state unsupported as on real igb); ens9f0 is an SR-IOV NIC not mapped.
"""

from __future__ import annotations

import errno

import pytest

from sriov.config import SriovSettings
from sriov.driver import LinkState
from sriov.drivers import DriverCatalog, PfDrivers
from sriov.errors import (
    DriverRefused,
    InvalidRequest,
    UnknownPf,
    UnknownVf,
    UnsupportedOperation,
    VfError,
)
from sriov.inventory import discover
from sriov.ports import VfPortConfigurator, VfPortRequest
from sriov.vlan_plan import VlanIntent

TRUNK1 = "class/net/ens1f0/device/sriov/1/trunk"


@pytest.fixture
def configurator(tree, sysfs, link_ops):
    tree.add_pf("ens1f0", "0000:07:00.0", num_vfs=4)
    tree.set_module_version("i40e", "2.22.18")
    tree.add_pf("ens2f0", "0000:08:00.0", kernel_driver="igb", vf_driver="vfio-pci", num_vfs=2)
    tree.add_pf("ens9f0", "0000:0a:00.0", num_vfs=1)
    link_ops.unsupported.add("link_state")
    settings = SriovSettings.from_options(["physnet2:ens1f0", "physnet3:ens2f0"])
    drivers = PfDrivers(DriverCatalog.from_entry_points(), sysfs, link_ops)
    return VfPortConfigurator(discover(sysfs, settings, link_ops), drivers, sysfs)


def trunk_port(vlans, slot="0000:07:02.1", port="port-t", **extra):
    return VfPortRequest(port, pci_slot=slot, vlans=VlanIntent(trunk=frozenset(vlans)), **extra)


def test_a_trunk_converges_with_batched_diffs_and_no_flap(configurator, sysfs, tree):
    result = configurator.apply(trunk_port({10, 20}))
    assert (result.vf.pf, result.vf.index, result.driver) == ("ens1f0", 1, "intel_i40e")
    assert result.changes == ("trunk add 10,20",)
    assert tree.trunk("ens1f0", 1) == "10,20\n"
    sysfs.writes.clear()
    assert configurator.apply(trunk_port({10, 20})).changes == ()
    assert sysfs.writes == []  # idempotent: nothing written when nothing differs
    configurator.apply(trunk_port({20, 30, 31, 32}))
    assert sysfs.writes == [(TRUNK1, "add 30-32\n"), (TRUNK1, "rem 10\n")]
    assert tree.trunk("ens1f0", 1) == "20,30-32\n"


def test_port_vlan_to_trunk_and_back(configurator, link_ops, tree):
    configurator.apply(VfPortRequest("p", pci_slot="0000:07:02.2",
                                     vlans=VlanIntent(port_vlan=100)))
    assert tree.link[("ens1f0", 2)].vlan == 100
    result = configurator.apply(trunk_port({10}, slot="0000:07:02.2"))
    assert result.changes == ("port VLAN 0", "trunk add 10")
    assert (tree.link[("ens1f0", 2)].vlan, tree.trunk("ens1f0", 2)) == (0, "10\n")
    assert tree.vendor_file("ens1f0", 2, "allow_untagged") == "off"
    result = configurator.apply(VfPortRequest("p", pci_slot="0000:07:02.2",
                                              vlans=VlanIntent(port_vlan=200)))
    assert result.changes == ("trunk rem 10", "port VLAN 200")
    assert (tree.link[("ens1f0", 2)].vlan, tree.trunk("ens1f0", 2)) == (200, "\n")
    assert tree.vendor_file("ens1f0", 2, "allow_untagged") == "on"


def test_the_generic_driver_sets_a_single_vlan_and_refuses_a_trunk_untouched(
        configurator, link_ops, tree):
    result = configurator.apply(VfPortRequest("p-igb", pci_slot="0000:08:02.0",
                                              vlans=VlanIntent(port_vlan=300), spoof_check=True))
    assert (result.driver, result.changes) == ("netlink", ("port VLAN 300",))
    link_ops.calls.clear()
    with pytest.raises(UnsupportedOperation) as caught:
        configurator.apply(trunk_port({10, 20}, slot="0000:08:02.0", port="p-igb"))
    assert str(caught.value) == (
        "port p-igb VF 0 of PF ens2f0 (0000:08:02.0, driver netlink): VLAN trunk requested, "
        "but driver netlink of PF ens2f0 (kernel driver igb) cannot carry VLAN trunks on a VF; "
        "only a single port VLAN (no plugin for kernel driver igb)")
    assert link_ops.calls == []
    assert tree.link[("ens2f0", 0)].vlan == 300


@pytest.mark.parametrize("vlans, message", [
    (VlanIntent(trunk=frozenset({10, 4095})), "VLAN 4095 is outside 1-4094"),
    (VlanIntent(port_vlan=0x1000), "VLAN 4096 is outside 1-4094"),
    (VlanIntent(port_vlan=5, trunk=frozenset({6})), "port VLAN 5 and trunk 6 together"),
])
def test_bad_vlans_are_refused_before_any_write(configurator, sysfs, link_ops, vlans, message):
    with pytest.raises(InvalidRequest) as caught:
        configurator.apply(VfPortRequest("port-x", pci_slot="0000:07:02.1", vlans=vlans))
    assert str(caught.value).startswith(
        "port port-x VF 1 of PF ens1f0 (0000:07:02.1, driver intel_i40e): ")
    assert message in str(caught.value)
    assert sysfs.writes == [] and link_ops.calls == []


def test_a_vf_of_an_unmapped_pf_is_named(configurator):
    with pytest.raises(UnknownPf) as caught:
        configurator.apply(trunk_port({10}, slot="0000:0a:02.0", port="port-u"))
    assert str(caught.value) == ("port port-u PF ens9f0 (0000:0a:02.0): VF 0000:0a:02.0 belongs "
                                 "to PF ens9f0, which is not in [sriov] physical_device_mappings")


def test_an_unknown_vf_is_named(configurator):
    with pytest.raises(UnknownVf, match="port port-v: no managed VF has PCI slot 0000:07:05.0"):
        configurator.apply(trunk_port({10}, slot="0000:07:05.0", port="port-v"))
    with pytest.raises(InvalidRequest, match="port port-v: 'garbage' is not a PCI address"):
        configurator.apply(trunk_port({10}, slot="garbage", port="port-v"))


def test_the_vf_is_found_by_mac_without_a_slot(configurator, link_ops):
    link_ops.set_vf_mac("ens2f0", 1, "fa:16:3e:aa:bb:cc")
    configurator.inventory = discover(configurator.sysfs, SriovSettings.from_options(
        ["physnet2:ens1f0", "physnet3:ens2f0"]), link_ops)
    result = configurator.apply(VfPortRequest("p", mac="fa:16:3e:aa:bb:cc",
                                              vlans=VlanIntent(port_vlan=5)))
    assert (result.vf.pf, result.vf.index) == ("ens2f0", 1)


def test_a_port_on_another_physnet_is_refused(configurator):
    with pytest.raises(InvalidRequest, match="on physical network physnet3, but PF ens1f0 "
                       "serves physnet2"):
        configurator.apply(trunk_port({10}, physnet="physnet3"))


def test_a_refused_write_rolls_back_what_was_done(configurator, link_ops, tree):
    configurator.apply(VfPortRequest("p", pci_slot="0000:07:02.1",
                                     vlans=VlanIntent(port_vlan=100)))
    link_ops.refusals["spoof_check"] = errno.EPERM
    with pytest.raises(DriverRefused) as caught:
        configurator.apply(trunk_port({10, 20}, spoof_check=False))
    message = str(caught.value)
    assert message.startswith("port port-t VF 1 of PF ens1f0 (0000:07:02.1, driver intel_i40e): "
                              "turning spoof checking off: refused by the kernel")
    assert message.endswith("rolled back (trunk rem 10,20, port VLAN 100)")
    assert (tree.link[("ens1f0", 1)].vlan, tree.trunk("ens1f0", 1)) == (100, "\n")
    assert tree.vendor_file("ens1f0", 1, "allow_untagged") == "on"


def test_a_trunk_write_refused_by_the_driver_leaves_the_vf_as_it_was(configurator, sysfs, tree):
    configurator.apply(trunk_port({10, 11}))
    sysfs.refuse(TRUNK1, errno.EIO, when=lambda value: value.startswith("rem"))
    with pytest.raises(DriverRefused) as caught:
        configurator.apply(trunk_port({11, 12}))
    assert "writing 'rem 10' to class/net/ens1f0/device/sriov/1/trunk" in str(caught.value)
    assert str(caught.value).endswith("rollback failed at trunk rem 12: writing 'rem 12' to "
                                      f"{TRUNK1}: refused by the kernel (Input/output error, "
                                      "errno 5); the VF may be half-configured")
    sysfs.allow(TRUNK1)
    assert configurator.apply(trunk_port({11, 12})).changes == ("trunk rem 10",)


def test_igb_refusing_link_state_fails_the_port_with_its_vlan_rolled_back(configurator, tree):
    with pytest.raises(UnsupportedOperation) as caught:
        configurator.apply(VfPortRequest("p-igb", pci_slot="0000:08:02.1",
                                         vlans=VlanIntent(port_vlan=42),
                                         link_state=LinkState.ENABLE))
    assert str(caught.value) == (
        "port p-igb VF 1 of PF ens2f0 (0000:08:02.1, driver netlink): setting link state "
        "enable: the NIC does not support it (Operation not supported); rolled back "
        "(port VLAN 0)")
    assert tree.link[("ens2f0", 1)].vlan == 0


def test_a_setting_the_nic_silently_ignores_is_caught_by_the_read_back(configurator, link_ops):
    link_ops.ignored.add("spoof_check")
    with pytest.raises(DriverRefused, match="the writes were accepted but spoof checking reads "
                       "back as True; rolled back"):
        configurator.apply(VfPortRequest("p", pci_slot="0000:07:02.0", spoof_check=False))


def test_bad_macs_are_refused(configurator, link_ops):
    for mac, problem in (("fa:16:3e:00:00", "not of the form"),
                         ("01:00:5e:00:00:01", "multicast")):
        with pytest.raises(InvalidRequest, match=problem):
            configurator.apply(VfPortRequest("p", pci_slot="0000:07:02.0", admin_mac=mac))
    assert link_ops.calls == []
    result = configurator.apply(VfPortRequest("p", pci_slot="0000:07:02.0",
                                              admin_mac="FA:16:3E:00:00:09", trust=True))
    assert result.changes == ("MAC fa:16:3e:00:00:09", "trust on")


def test_one_failed_port_does_not_stop_the_others(configurator, tree):
    outcome = configurator.apply_all([
        trunk_port({10}, slot="0000:07:02.0", port="a"),
        trunk_port({5000}, slot="0000:07:02.1", port="b"),
        VfPortRequest("c", pci_slot="0000:08:02.0", vlans=VlanIntent(port_vlan=7)),
    ])
    assert isinstance(outcome["b"], VfError) and "VLAN 5000" in str(outcome["b"])
    assert not isinstance(outcome["a"], VfError) and not isinstance(outcome["c"], VfError)
    assert tree.trunk("ens1f0", 0) == "10\n" and tree.trunk("ens1f0", 1) == "\n"
    assert tree.link[("ens2f0", 0)].vlan == 7


def test_a_plugin_bug_mid_request_is_a_vf_error_and_is_rolled_back(configurator, tree,
                                                                    monkeypatch):
    configurator.apply(VfPortRequest("p", pci_slot="0000:07:02.3",
                                     vlans=VlanIntent(port_vlan=100)))
    driver = configurator.drivers.for_pf(configurator.inventory.pf("ens1f0").info())

    def broken(target, vlans):
        raise KeyError("oops")

    monkeypatch.setattr(driver, "add_trunk_vlans", broken)
    with pytest.raises(DriverRefused, match=r"driver intel_i40e failed: KeyError\('oops'\); "
                       r"rolled back \(port VLAN 100\)"):
        configurator.apply(trunk_port({10}, slot="0000:07:02.3"))
    assert tree.link[("ens1f0", 3)].vlan == 100

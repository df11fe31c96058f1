"""Drivers come only through the dpagent.sriov.drivers entry points and are chosen per PF."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib.metadata import entry_points

import grimp
import pytest

from sriov.driver import NicDriver, PfInfo, StandardVfDriver, VfTarget
from sriov.drivers import GENERIC, NAMESPACE, DriverCatalog, PfDrivers
from sriov.errors import DriverUnavailable, SriovConfigError, UnsupportedOperation

INTERFACE = {"sriov.driver", "sriov.errors", "sriov.vlans"}


def test_every_declared_entry_point_loads_as_a_nic_driver():
    declared = {ep.name: ep.value for ep in entry_points(group=NAMESPACE)}
    assert declared == {"netlink": "sriov.netlink:NetlinkDriver",
                        "intel_i40e": "sriov.intel.i40e:I40eTrunkDriver"}
    catalog = DriverCatalog.from_entry_points()
    assert catalog.names == sorted(declared)
    for name, value in declared.items():
        driver = catalog.drivers[name]
        assert issubclass(driver, NicDriver)
        assert f"{driver.__module__}:{driver.__qualname__}" == value
        assert not getattr(driver, "__abstractmethods__", None)  # instantiable


def test_the_intel_plugin_is_reached_only_through_its_entry_point():
    """Importing every core module loads nothing of sriov.intel; the entry point does."""
    script = textwrap.dedent("""
        import pkgutil, sys, sriov
        core = [m.name for m in pkgutil.iter_modules(sriov.__path__, "sriov.")
                if not m.name.startswith("sriov.intel")]
        for name in core:
            __import__(name)
        assert {"sriov.drivers", "sriov.netlink", "sriov.inventory"} <= set(core), core
        assert not [m for m in sys.modules if m.startswith("sriov.intel")], "core loaded intel"
        from sriov.drivers import DriverCatalog
        catalog = DriverCatalog.from_entry_points()
        assert catalog.drivers["intel_i40e"] is sys.modules["sriov.intel.i40e"].I40eTrunkDriver
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=False)
    assert result.stdout.strip() == "ok", result.stderr


def test_layering_sriov_intel_imports_only_the_interface_and_nothing_imports_it():
    graph = grimp.build_graph("sriov", "dpagent", "flows")
    intel = {m for m in graph.modules if m == "sriov.intel" or m.startswith("sriov.intel.")}
    for module in intel:
        imported = graph.find_modules_directly_imported_by(module)
        outside = {m for m in imported if m.split(".")[0] in ("sriov", "dpagent", "flows")}
        assert outside - intel <= INTERFACE, module
    for module in INTERFACE:
        assert graph.find_modules_directly_imported_by(module) - {"sriov"} <= INTERFACE
    for module in set(graph.modules) - intel:
        assert not graph.find_modules_directly_imported_by(module) & intel, module


def pf(kernel_driver, name="ens1f0", address="0000:07:00.0"):
    return PfInfo(name, address, kernel_driver)


@pytest.fixture
def catalog():
    return DriverCatalog.from_entry_points()


def test_a_pf_gets_the_plugin_of_its_kernel_driver(catalog, tree, sysfs):
    tree.add_pf("ens1f0", "0000:07:00.0")
    tree.set_module_version("i40e", "2.22.18")
    choice = catalog.choose(pf("i40e"), sysfs)
    assert (choice.name, choice.because) == ("intel_i40e", "for kernel driver i40e")


def test_a_pf_without_a_plugin_gets_the_generic_driver(catalog, tree, sysfs):
    tree.add_pf("ens2f0", "0000:08:00.0", kernel_driver="igb")
    choice = catalog.choose(pf("igb", "ens2f0", "0000:08:00.0"), sysfs)
    assert (choice.name, choice.because) == (GENERIC, "no plugin for kernel driver igb")


def test_an_unusable_plugin_falls_back_to_generic_and_says_why(catalog, tree, sysfs, link_ops):
    tree.add_pf("ens1f0", "0000:07:00.0", vendor_tree=False)  # in-tree i40e
    drivers = PfDrivers(catalog, sysfs, link_ops)
    driver = drivers.for_pf(pf("i40e"))
    assert driver.name == GENERIC
    with pytest.raises(UnsupportedOperation) as caught:
        driver.add_trunk_vlans(VfTarget("ens1f0", 1, "port-a"), {10})
    assert str(caught.value) == (
        "port port-a VF 1 of PF ens1f0 (driver netlink): VLAN trunk requested, but driver "
        "netlink of PF ens1f0 (kernel driver i40e) cannot carry VLAN trunks on a VF; only a "
        "single port VLAN (intel_i40e not usable: no module/i40e/version: the in-tree i40e "
        "driver, which has no VF trunk support (Intel's out-of-tree i40e >= 2.7.11 has))")


def test_the_generic_driver_still_sets_a_single_vlan(catalog, tree, sysfs, link_ops):
    tree.add_pf("ens2f0", "0000:08:00.0", kernel_driver="igb")
    driver = PfDrivers(catalog, sysfs, link_ops).for_pf(pf("igb", "ens2f0", "0000:08:00.0"))
    target = VfTarget("ens2f0", 1)
    driver.set_port_vlan(target, 200)
    assert driver.vf_state(target).vlan == 200
    assert driver.trunk_vlans(target) == frozenset()
    driver.remove_trunk_vlans(target, {5})  # nothing on a trunk that cannot exist


def test_an_override_forces_a_driver(catalog, tree, sysfs, link_ops):
    tree.add_pf("ens1f0", "0000:07:00.0")
    tree.set_module_version("i40e", "2.22.18")
    drivers = PfDrivers(catalog, sysfs, link_ops, {"ens1f0": "netlink"})
    assert drivers.for_pf(pf("i40e")).name == "netlink"


def test_an_override_the_driver_refuses_fails_the_pf_naming_it(catalog, tree, sysfs, link_ops):
    tree.add_pf("ens2f0", "0000:08:00.0", kernel_driver="igb")
    tree.set_module_version("i40e", "2.22.18")
    drivers = PfDrivers(catalog, sysfs, link_ops, {"ens2f0": "intel_i40e"})
    with pytest.raises(DriverUnavailable) as caught:
        drivers.for_pf(pf("igb", "ens2f0", "0000:08:00.0"))
    assert str(caught.value) == (
        "PF ens2f0 (0000:08:00.0, driver intel_i40e): cannot drive this PF: i40e 2.22.18 but "
        "PF ens2f0 has no device/sriov/ VF management tree")


def test_an_override_naming_no_entry_point_is_a_configuration_error(catalog, sysfs, link_ops):
    with pytest.raises(SriovConfigError, match="PF ens1f0 names driver 'mellanox'.*known: "
                       "intel_i40e, netlink"):
        PfDrivers(catalog, sysfs, link_ops, {"ens1f0": "mellanox"})


def test_one_driver_per_pf_until_forgotten(catalog, tree, sysfs, link_ops):
    tree.add_pf("ens1f0", "0000:07:00.0")
    tree.set_module_version("i40e", "2.22.18")
    drivers = PfDrivers(catalog, sysfs, link_ops)
    first = drivers.for_pf(pf("i40e"))
    assert drivers.for_pf(pf("i40e")) is first
    drivers.forget("ens1f0")
    assert drivers.for_pf(pf("i40e")) is not first


def test_a_catalog_needs_the_generic_driver():
    with pytest.raises(SriovConfigError, match="no 'netlink' driver"):
        DriverCatalog({"only": StandardVfDriver})


@pytest.fixture
def private_entry_point_cache(tmp_path, monkeypatch):
    """stevedore caches entry points per sys.path in ~/.cache; keep this test's out of it."""
    from stevedore import _cache

    cache = _cache.Cache(str(tmp_path / "entry-point-cache"))
    monkeypatch.setattr(_cache, "get_group_all", cache.get_group_all)


def _dist(tmp_path, group, lines):
    info = tmp_path / "fake_sriov_plugins-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-sriov-plugins\n"
                                   "Version: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n" + "\n".join(lines) + "\n")


def test_a_broken_entry_point_is_an_error_naming_it(tmp_path, monkeypatch,
                                                    private_entry_point_cache):
    _dist(tmp_path, "test.sriov.broken", ["netlink = sriov.netlink:NetlinkDriver",
                                          "vendor_x = no_such_module.driver:Driver"])
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(SriovConfigError, match="vendor_x.*cannot be loaded"):
        DriverCatalog.from_entry_points("test.sriov.broken")


def test_an_entry_point_that_is_no_driver_is_refused(tmp_path, monkeypatch,
                                                     private_entry_point_cache):
    _dist(tmp_path, "test.sriov.odd", ["netlink = sriov.netlink:NetlinkDriver",
                                       "odd = os.path:join"])
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(SriovConfigError, match="entry point odd .os.path:join. is not a "
                       "NicDriver"):
        DriverCatalog.from_entry_points("test.sriov.odd")

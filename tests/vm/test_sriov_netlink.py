"""The generic netlink driver on a real igb PF: settings read back over netlink (ours and
iproute2's), and igb's refusals reported with port, PF, VF and driver."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest

from sriov.config import SriovSettings
from sriov.driver import LinkState, NicDriver, VfTarget
from sriov.drivers import DriverCatalog, PfDrivers
from sriov.errors import DriverRefused, InvalidRequest, UnsupportedOperation
from sriov.inventory import discover
from sriov.netlink import NetlinkLinkOps
from sriov.ports import VfPortConfigurator, VfPortRequest
from sriov.sysfs import Sysfs
from sriov.vlan_plan import VlanIntent
from tests.vm.conftest import IgbPF


def ip_vf_line(pf: str, vf: int) -> str:
    out = subprocess.run(["ip", "link", "show", "dev", pf], check=True, capture_output=True,
                         text=True).stdout
    return dict(re.findall(r"^\s+vf (\d+)\s+(.*)$", out, re.MULTILINE))[str(vf)]


@pytest.fixture
def link_ops() -> Iterator[NetlinkLinkOps]:
    ops = NetlinkLinkOps()
    yield ops
    ops.close()


@pytest.fixture
def configurator(igb_vfs: IgbPF, link_ops: NetlinkLinkOps) -> VfPortConfigurator:
    sysfs = Sysfs("/sys")
    settings = SriovSettings.from_options([f"physnet1:{igb_vfs.name}"])
    drivers = PfDrivers(DriverCatalog.from_entry_points(), sysfs, link_ops)
    return VfPortConfigurator(discover(sysfs, settings, link_ops), drivers, sysfs)


@pytest.fixture
def driver(configurator: VfPortConfigurator, igb_vfs: IgbPF) -> NicDriver:
    driver = configurator.drivers.for_pf(configurator.inventory.pf(igb_vfs.name).info())
    assert driver.name == "netlink"
    assert driver.context.selected_because == "no plugin for kernel driver igb"
    return driver


def test_vlan_mac_spoof_check_and_trust_read_back(driver: NicDriver, igb_vfs: IgbPF) -> None:
    target = VfTarget(igb_vfs.name, 3, "port-3")
    driver.set_port_vlan(target, 100, qos=2)
    driver.set_mac(target, "fa:16:3e:00:00:03")
    driver.set_spoof_check(target, False)
    driver.set_trust(target, True)
    state = driver.vf_state(target)
    assert (state.vlan, state.qos, state.mac, state.spoof_check, state.trust) == (
        100, 2, "fa:16:3e:00:00:03", False, True)
    line = ip_vf_line(igb_vfs.name, 3)
    assert "link/ether fa:16:3e:00:00:03" in line and re.search(r"\bvlan 100, qos 2\b", line)
    assert "spoof checking off" in line and "trust on" in line
    driver.clear_port_vlan(target)
    driver.set_spoof_check(target, True)
    assert (driver.vf_state(target).vlan, driver.vf_state(target).spoof_check) == (0, True)
    assert not re.search(r"\bvlan \d", ip_vf_line(igb_vfs.name, 3))
    assert driver.vf_state(VfTarget(igb_vfs.name, 2)).vlan == 0  # the neighbour untouched


def test_igb_refuses_link_state_and_the_error_names_everything(driver: NicDriver,
                                                               igb_vfs: IgbPF) -> None:
    with pytest.raises(UnsupportedOperation) as caught:
        driver.set_link_state(VfTarget(igb_vfs.name, 1, "port-1"), LinkState.DISABLE)
    assert str(caught.value) == (
        f"port port-1 VF 1 of PF {igb_vfs.name} (driver netlink): setting link state disable: "
        "the NIC does not support it (Operation not supported)")


def test_a_vf_index_igb_does_not_have_is_refused_by_the_kernel(driver: NicDriver,
                                                               igb_vfs: IgbPF) -> None:
    with pytest.raises(DriverRefused, match=rf"VF 9 of PF {igb_vfs.name} .driver netlink.: "
                       "setting port VLAN 10: refused by the kernel"):
        driver.set_port_vlan(VfTarget(igb_vfs.name, 9), 10)


def test_a_port_gets_its_vlan_and_settings_and_a_trunk_is_refused_untouched(
        configurator: VfPortConfigurator, igb_vfs: IgbPF, driver: NicDriver) -> None:
    slot = (igb_vfs.device / "virtfn6").resolve().name
    result = configurator.apply(VfPortRequest(
        "port-6", pci_slot=slot, physnet="physnet1", vlans=VlanIntent(port_vlan=200),
        admin_mac="fa:16:3e:00:00:06", spoof_check=True))
    assert (result.vf.index, result.driver) == (6, "netlink")
    assert "port VLAN 200" in result.changes and "MAC fa:16:3e:00:00:06" in result.changes
    target = VfTarget(igb_vfs.name, 6)
    assert driver.vf_state(target).vlan == 200
    with pytest.raises(UnsupportedOperation, match="cannot carry VLAN trunks on a VF"):
        configurator.apply(VfPortRequest("port-6", pci_slot=slot,
                                         vlans=VlanIntent(trunk=frozenset({10, 20}))))
    with pytest.raises(InvalidRequest, match="VLAN 4095 is outside 1-4094"):
        configurator.apply(VfPortRequest("port-6", pci_slot=slot,
                                         vlans=VlanIntent(port_vlan=4095)))
    assert driver.vf_state(target).vlan == 200
    assert configurator.apply(VfPortRequest("port-6", pci_slot=slot,
                                            vlans=VlanIntent(port_vlan=200))).changes == ()


def test_link_state_refused_mid_request_rolls_the_vlan_back(
        configurator: VfPortConfigurator, igb_vfs: IgbPF, driver: NicDriver) -> None:
    slot = (igb_vfs.device / "virtfn2").resolve().name
    with pytest.raises(UnsupportedOperation, match=r"rolled back \(port VLAN 0\)"):
        configurator.apply(VfPortRequest("port-2", pci_slot=slot,
                                         vlans=VlanIntent(port_vlan=300),
                                         link_state=LinkState.ENABLE))
    assert driver.vf_state(VfTarget(igb_vfs.name, 2)).vlan == 0

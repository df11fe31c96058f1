"""The SR-IOV side's decisions: what a direct port wants of its VF, and how the worker keeps
VFs, reports and trunk status in step with the control plane (fakes on both sides; the real
VF programmer over a fake sysfs tree is tested in tests/functional/agent)."""

from __future__ import annotations

import time

import pytest

from dpagent.agent.sriov_plan import PlanError, VfPlan, plan_for
from dpagent.agent.sriov_ports import SriovPorts
from dpagent.rpc.errors import ServerError
from dpagent.rpc.trunks import SubPort, Trunk
from tests.unit.agent.sriov_fakes import (
    FakeControlPlane,
    FakeVfs,
    details,
    subport_details,
    trunk,
    wait_for,
)

HOST = "compute1"


def test_a_vlan_port_gets_its_segment_as_port_vlan():
    plan = plan_for(details(), None)
    assert plan == VfPlan("p1", "fa:16:3e:00:00:01", "0000:07:02.0", "physnet2", vlan=100,
                          trunk_vlans=None, spoof_check=True, link_up=True)


def test_a_trunk_parent_carries_its_subport_vlans_and_no_port_vlan():
    subports = {"sp10": subport_details("sp10", 10), "sp20": subport_details("sp20", 20)}
    plan = plan_for(details(), trunk(10, 20), subports)
    assert (plan.vlan, plan.trunk_vlans, plan.refused_subports) == (0, {10, 20}, ())


def test_a_vf_carries_a_subport_only_on_its_networks_vlan_as_the_vm_tags_it():
    t = Trunk("t1", "p1", (
        SubPort("same", "t1", "vlan", 110),  # network VLAN 110: carried on 110
        SubPort("other", "t1", "vlan", 10),  # network VLAN 110: a VF cannot translate 10
        SubPort("inherits", "t1", "inherit", 120),  # the VM tags it with its network's VLAN
        SubPort("elsewhere", "t1", "vlan", 130),  # a VLAN network of another physnet
        SubPort("tunnel", "t1", "vlan", 140),  # not a VLAN network
        SubPort("unbound", "t1", "vlan", 150),  # no binding here: its network is unknown
    ))
    subports = {"same": subport_details("same", 110), "other": subport_details("other", 110),
                "inherits": subport_details("inherits", 120),
                "elsewhere": subport_details("elsewhere", 130, physnet="physnet3"),
                "tunnel": subport_details("tunnel", 140, physnet=None, network_type="vxlan"),
                "unbound": {"device": "unbound"}}
    plan = plan_for(details(), t, subports)
    assert plan.trunk_vlans == {110, 120}
    reasons = dict(plan.refused_subports)
    assert set(reasons) == {"other", "elsewhere", "tunnel", "unbound"}
    assert "subport other" in reasons["other"] and "VLAN 10" in reasons["other"] \
        and "VLAN 110" in reasons["other"]
    assert "physnet3" in reasons["elsewhere"] and "vxlan" in reasons["tunnel"]
    assert "unknown" in reasons["unbound"]


def test_flat_no_port_security_and_admin_down():
    plan = plan_for(details(network_type="flat", segmentation_id=None,
                            port_security_enabled=False, admin_state_up=False), None)
    assert (plan.vlan, plan.spoof_check, plan.link_up) == (0, False, False)


@pytest.mark.parametrize("over, words", [
    ({"segmentation_id": 4095}, "4095 is outside 1-4094"),
    ({"network_type": "vxlan"}, "network type 'vxlan'"),
    ({"profile": {"pci_slot": 7}}, "pci_slot 7"),
    ({"mac_address": None}, "no mac_address"),
])
def test_bad_details_are_refused_naming_port_and_field(over, words):
    with pytest.raises(PlanError) as raised:
        plan_for(details(**over), None)
    assert "port p1" in str(raised.value) and words.split()[0] in str(raised.value)


@pytest.fixture
def side():
    cp, vfs = FakeControlPlane(), FakeVfs()
    ports = SriovPorts(cp, vfs, retry_backoff=0.05)
    yield cp, vfs, ports
    ports.stop()


def test_start_wires_the_direct_ports_and_reports_them_up(side):
    cp, vfs, ports = side
    ports.start()
    wait_for(lambda: cp.up == ["p1"])
    assert vfs.applied[-1].vlan == 100
    assert ports.status()["ports"] == {"wired": 1}


def test_subport_pushes_reconverge_the_parent_and_report_bindings(side):
    cp, vfs, ports = side
    cp.set_trunk(trunk(10, 20))
    ports.start()
    wait_for(lambda: ("t1", "ACTIVE") in cp.trunk_status)
    assert vfs.applied[-1].trunk_vlans == {10, 20}
    cp.set_trunk(trunk(10, 20, 30))
    ports.on_subports("created", [SubPort("sp30", "t1", "vlan", 30)])
    wait_for(lambda: vfs.applied[-1].trunk_vlans == {10, 20, 30})
    assert [s.segmentation_id for s in cp.bindings[-1]] == [10, 20, 30]
    ports.on_subports("created", [SubPort("x", "unknown-trunk", "vlan", 40)])  # not ours
    cp.set_trunk(trunk(10, 30))
    ports.on_subports("deleted", [SubPort("sp20", "t1", "vlan", 20)])
    wait_for(lambda: vfs.applied[-1].trunk_vlans == {10, 30})
    # every fetch of the parent's details moved it to BUILD (neutron does): it is up again
    wait_for(lambda: cp.status["p1"] == "ACTIVE")


def test_a_subport_on_another_vlan_is_refused_alone_and_degrades_the_trunk(side):
    cp, vfs, ports = side
    cp.set_trunk(Trunk("t1", "p1", (SubPort("sp10", "t1", "vlan", 10),
                                    SubPort("sp110", "t1", "vlan", 110))),
                 networks={"sp10": subport_details("sp10", 110),
                           "sp110": subport_details("sp110", 110)})
    ports.start()
    wait_for(lambda: ("t1", "DEGRADED") in cp.trunk_status)
    assert vfs.applied[-1].trunk_vlans == {110}  # never VLAN 10
    assert "sp110" in cp.up and "sp10" in cp.down and "sp10" not in cp.up
    assert cp.bindings[-1] == list(cp.trunks["t1"].sub_ports)  # bound first, to be known
    refused = ports.status()["refused_subports"]
    assert list(refused) == ["sp10"] and "VLAN 10" in refused["sp10"] \
        and "VLAN 110" in refused["sp10"]
    assert ports.status()["ports"] == {"wired": 1}  # the parent and sp110 keep working

    cp.set_trunk(Trunk("t1", "p1", (SubPort("sp110", "t1", "vlan", 110),)))
    ports.on_subports("deleted", [SubPort("sp10", "t1", "vlan", 10)])
    wait_for(lambda: cp.trunk_status[-1] == ("t1", "ACTIVE"))
    assert vfs.applied[-1].trunk_vlans == {110}
    assert ports.status()["refused_subports"] == {}


def test_a_trunk_on_a_nic_without_trunks_fails_the_port_and_degrades_the_trunk(side):
    cp, vfs, ports = side
    cp.ports["p2"] = details("p2", mac_address="fa:16:3e:00:00:02")
    cp.set_trunk(trunk(10))
    vfs.refuse_trunks = True
    ports.start()
    wait_for(lambda: "p1" in cp.down and "p2" in cp.up)
    assert ("t1", "DEGRADED") in cp.trunk_status
    status = ports.status()
    assert status["ports"] == {"failed": 1, "wired": 1}
    assert "no VLAN trunks" in status["failed"]["p1"] and "PF ens1f0" in status["failed"]["p1"]


def test_port_delete_releases_the_vf_and_reports_down(side):
    cp, vfs, ports = side
    ports.start()
    wait_for(lambda: cp.up == ["p1"])
    ports.port_deleted("p1")
    wait_for(lambda: cp.down == ["p1"])
    assert vfs.released[-1].port_id == "p1"
    ports.port_deleted("p1")  # again, or never ours: nothing
    ports.port_updated({"id": "p9", "binding:vnic_type": "normal", "binding:host_id": HOST}, HOST)
    time.sleep(0.2)
    assert cp.down == ["p1"] and ports.ports == {}


def test_a_port_update_binding_a_direct_port_here_wires_it(side):
    cp, vfs, ports = side
    ports.start()
    wait_for(lambda: cp.up == ["p1"])
    cp.ports["p3"] = details("p3", segmentation_id=300)
    ports.port_updated({"id": "p3", "binding:vnic_type": "direct", "binding:host_id": HOST},
                       HOST)
    wait_for(lambda: cp.up == ["p1", "p3"])
    assert vfs.applied[-1].vlan == 300


def test_work_waits_out_a_control_plane_outage(side):
    cp, vfs, ports = side
    cp.available = False
    ports.start()
    time.sleep(0.3)
    assert cp.up == [] and not ports.synced_once
    cp.available = True
    wait_for(lambda: cp.up == ["p1"])


def test_admin_down_holds_new_direct_ports_and_up_wires_them(side):
    cp, vfs, ports = side
    ports.start()
    wait_for(lambda: cp.up == ["p1"])
    ports.set_admin_state(False)
    cp.ports["p4"] = details("p4", segmentation_id=400)
    ports.port_updated({"id": "p4", "binding:vnic_type": "direct", "binding:host_id": HOST},
                       HOST)
    wait_for(lambda: cp.down == ["p4"])
    assert ports.ports["p4"].state == "admin-down"
    assert all(plan.port_id != "p4" for plan in vfs.applied)
    ports.set_admin_state(True)
    wait_for(lambda: cp.up == ["p1", "p4"])
    assert vfs.applied[-1].vlan == 400


def test_a_report_the_server_refused_is_told_again(side):
    cp, vfs, ports = side
    failures = iter([RuntimeError("db locked")])
    original = cp.update_device_list

    def flaky(up, down):
        for error in failures:
            raise error
        original(up, down)

    cp.update_device_list = flaky
    ports.start()
    wait_for(lambda: cp.status.get("p1") == "ACTIVE")
    assert set(cp.up) == {"p1"} and ports.ports["p1"].state == "wired"


def _count_calls_for(cp, seconds=2.0, **backoff):
    ports = SriovPorts(cp, FakeVfs(), **backoff)
    ports.start()
    try:
        time.sleep(seconds)
        return cp.calls
    finally:
        ports.stop()


def test_a_control_plane_that_refuses_at_once_is_retried_with_a_growing_wait():
    """Broker up, neutron-server gone: every call fails at once. Waits 0.2, 0.4, 0.8, 1.6 s."""
    cp = FakeControlPlane()
    cp.failure = TimeoutError("no reply")
    assert 2 <= _count_calls_for(cp, retry_backoff=0.2, max_backoff=5.0) <= 6


def test_a_control_plane_that_answers_with_errors_is_retried_at_the_base_pace():
    cp = FakeControlPlane()
    cp.failure = ServerError("RemoteError: database is locked")
    assert 5 <= _count_calls_for(cp, retry_backoff=0.2, max_backoff=5.0) <= 15


def test_an_answer_between_lost_replies_keeps_the_wait_at_the_base_pace():
    cp = FakeControlPlane()  # direct_ports answers; every details call is lost

    def lost(devices):
        cp.calls += 1
        raise TimeoutError("no reply")

    cp.get_devices_details = lost
    assert 10 <= _count_calls_for(cp, retry_backoff=0.2, max_backoff=5.0) <= 30

"""The daemon with SR-IOV configured, against dpagent-controller over RabbitMQ: the SR-IOV side
registers its own 'NIC Switch agent' record with its device mappings beside the OVS agent's,
finds the direct ports bound to the host, and a port whose VF the kernel refuses to configure
is reported failed with a reason naming port, PF and VF -- the daemon keeps running and the OVS
side keeps working. (The PF lives on a fake sysfs tree: this host has no SR-IOV NIC, so the
kernel's netlink answers for it as for any unknown device; real VFs are exercised in the VM
tier, tests/vm.)"""

from __future__ import annotations

import os
import uuid

import pytest

from dpagent.daemon.status import query
from sriov.testing import FakeSysfsTree
from tests.functional.controller.controller_process import ControllerProcess
from tests.functional.controller.test_controller import plug, statuses, stop
from tests.functional.daemon.test_daemon import start_daemon, wait_for


@pytest.mark.parametrize("backend", ["threading", "eventlet"])
def test_sriov_side_registers_and_fails_an_unconfigurable_port_only(backend, tmp_path,
                                                                     ovs_sandbox, transport_url,
                                                                     netns_vm):
    host = f"compute-{uuid.uuid4().hex[:6]}"
    bridge = f"br-s{uuid.uuid4().hex[:6]}"
    tree = FakeSysfsTree(tmp_path / "sys")
    pf = tree.add_pf("dpafake0", "0000:07:00.0", kernel_driver="i40e", num_vfs=4)
    tree.set_module_version("i40e", "2.22.18")
    doc = {
        "version": 1,
        "networks": [{"name": "n1", "type": "flat", "physnet": None,
                      "subnets": [{"cidr": "10.40.0.0/24"}]},
                     {"name": "provider", "type": "vlan", "physnet": "physnet2",
                      "segmentation_id": 100, "subnets": [{"cidr": "10.41.0.0/24"}]}],
        "security_groups": [{"name": "ping", "rules": [
            {"direction": "ingress", "protocol": "icmp"}, {"direction": "egress"}]}],
        "ports": [{"name": "a", "network": "n1", "host": host, "security_groups": ["ping"]},
                  {"name": "b", "network": "n1", "host": host, "security_groups": ["ping"]},
                  {"name": "vf-port", "network": "provider", "host": host,
                   "vnic_type": "direct", "pci_slot": pf.vf_address(1),
                   "security_groups": []}],
    }
    controller = ControllerProcess(tmp_path, transport_url, topology=doc).start()
    agent = start_daemon(tmp_path, ovs_sandbox, transport_url, host, bridge, backend,
                         extra=f"""
[sriov]
physical_device_mappings = physnet2:dpafake0
sysfs_root = {tree.root}
""")
    status_socket = str(tmp_path / "status.sock")
    try:
        def agent_types():
            found = controller.get(f"/v2.0/agents?host={host}")["agents"]
            return {a["agent_type"]: a for a in found}
        wait_for(lambda: {"Open vSwitch agent", "NIC Switch agent"} <= set(agent_types()),
                 timeout=30, what="both agent records")
        nic = agent_types()["NIC Switch agent"]
        assert nic["alive"] and nic["configurations"]["device_mappings"] == {
            "physnet2": ["dpafake0"]}

        a, b = plug(netns_vm, controller, bridge, "a"), plug(netns_vm, controller, bridge, "b")
        wait_for(lambda: statuses(controller)["a"] == statuses(controller)["b"] == "ACTIVE",
                 what="the OVS ports up")
        wait_for(lambda: query(status_socket).get("sriov", {}).get("ports") == {"failed": 1},
                 timeout=30, what="the direct port failed")
        reason = query(status_socket)["sriov"]["failed"][controller.ports()["vf-port"]["id"]]
        assert "dpafake0" in reason and pf.vf_address(1) in reason
        assert query(status_socket)["sriov"]["vfs_managed"] == 4
        assert statuses(controller)["vf-port"] != "ACTIVE"
        assert a.ping(b.ip4) and agent.poll() is None
    finally:
        stop(agent)
        controller.stop()
        ovs_sandbox.del_bridge(bridge)
    assert os.path.exists(tree.root)

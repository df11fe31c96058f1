"""The agent's SR-IOV side against dpagent-controller over a real RabbitMQ: a direct port's
trunk is created with three subports, one is replaced and one removed through the topology --
neutron's versioned-object pushes (neutron-vo-SubPort-1.0) reach the agent and the VF's i40e
trunk file follows exactly; the parent is reported ACTIVE, the subports bound, and the SR-IOV
side appears as its own 'NIC Switch agent' with its device mappings. A subport the VM tags with
another VLAN than its network's (a VF cannot translate) is never on the VF: it is reported
DOWN, the others ACTIVE. A restarted side writes nothing. (The VF is on the fake sysfs tree:
Intel's out-of-tree trunk files have no emulation.)"""

from __future__ import annotations

import uuid

import pytest
from oslo_config import cfg

from dpagent import conf as dpagent_conf
from dpagent.agent.sriov_ports import SriovPorts
from dpagent.agent.sriov_vfs import LibraryVfs
from dpagent.daemon.wiring import RpcSriovControlPlane
from dpagent.rpc import topics
from dpagent.rpc.consumers import NotificationConsumers
from dpagent.rpc.notifications import TRUNK_PUSHES
from dpagent.rpc.plugin_api import PluginApi
from dpagent.rpc.state_report import StateReporter, sriov_agent_configurations
from dpagent.rpc.transport import make_transport
from dpagent.rpc.trunks import TrunkApi
from sriov import SriovSettings
from sriov.testing import FakeLinkOps, FakeSysfs, FakeSysfsTree
from tests.functional.controller.controller_process import ControllerProcess
from tests.functional.daemon.test_daemon import wait_for

NETWORK_VLANS = {"provider": 100, "net110": 110, "net120": 120, "net130": 130, "tenant": 200}


def topology(host: str, pci_slot: str, subports: dict[str, tuple[str, int]]) -> dict:
    """``subports``: name -> (its network, the VLAN the VM tags it with)."""
    ports = [{"name": "vm-trunk", "network": "provider", "host": host, "vnic_type": "direct",
              "pci_slot": pci_slot, "mac": "fa:16:3e:00:09:01", "security_groups": []}]
    ports += [{"name": name, "network": net, "mac": f"fa:16:3e:00:09:{vlan:02x}",
               "security_groups": []} for name, (net, vlan) in subports.items()]
    return {
        "version": 1,
        "networks": [{"name": name, "type": "vlan", "physnet": "physnet2",
                      "segmentation_id": vlan, "subnets": [{"cidr": f"10.{vlan % 250}.0.0/24"}]}
                     for name, vlan in NETWORK_VLANS.items()],
        "security_groups": [],
        "ports": ports,
        "trunks": [{"name": "t1", "parent": "vm-trunk",
                    "subports": [{"port": name, "segmentation_type": "vlan",
                                  "segmentation_id": vlan}
                                 for name, (_net, vlan) in subports.items()]}],
    }


@pytest.fixture
def conf(transport_url) -> cfg.ConfigOpts:
    c = cfg.ConfigOpts()
    dpagent_conf.register_opts(c)
    c(args=[], default_config_files=[])
    c.set_override("rpc_response_timeout", 5)
    return c


class SriovSide:
    """The daemon's SR-IOV side, in process, on the fake tree."""

    def __init__(self, conf, transport_url, host, tree, settings):
        self.transport = make_transport(conf, transport_url)
        self.sysfs = FakeSysfs(tree)
        vfs = LibraryVfs(settings, FakeLinkOps(tree), sysfs=self.sysfs)
        plugin = PluginApi(self.transport, host, timeout=5)
        self.ports = SriovPorts(RpcSriovControlPlane(plugin, TrunkApi(self.transport, host,
                                                                      timeout=5)), vfs)
        self.consumers = NotificationConsumers(self.transport, host, self.ports,
                                               catalog=TRUNK_PUSHES)
        self.reporter = StateReporter(
            self.transport, host, interval=1, timeout=5,
            configurations=sriov_agent_configurations(vfs.device_mappings()),
            on_resync=self.ports.resync, agent_type=topics.AGENT_TYPE_NIC_SWITCH)
        self.consumers.start()
        self.ports.start()
        self.reporter.start()

    def stop(self):
        self.reporter.stop()
        self.consumers.stop()
        self.ports.stop()
        self.transport.cleanup()


def test_trunk_subports_reach_the_vf_through_the_controller(tmp_path, transport_url, conf):
    host = f"compute-{uuid.uuid4().hex[:6]}"
    tree = FakeSysfsTree(tmp_path / "sys")
    pf = tree.add_pf("ens1f0", "0000:07:00.0", kernel_driver="i40e", num_vfs=4)
    tree.set_module_version("i40e", "2.22.18")
    settings = SriovSettings.from_options(["physnet2:ens1f0"], sysfs_root=tree.root)
    slot = pf.vf_address(1)

    first = {"sp110": ("net110", 110), "sp120": ("net120", 120), "sp-wrong": ("tenant", 10)}
    controller = ControllerProcess(tmp_path, transport_url,
                                   topology=topology(host, slot, first))
    controller.start()
    side = SriovSide(conf, transport_url, host, tree, settings)
    try:
        wait_for(lambda: controller.ports()["vm-trunk"]["status"] == "ACTIVE", timeout=30,
                 what="the trunk parent reported up")
        assert tree.trunk("ens1f0", 1).strip() == "110,120"  # neither 10 nor 200
        assert tree.vendor_file("ens1f0", 1, "allow_untagged") == "off"
        wait_for(lambda: controller.ports()["sp110"]["binding:host_id"] == host,
                 what="subports bound to the parent's host")
        wait_for(lambda: (controller.ports()["sp110"]["status"],
                          controller.ports()["sp-wrong"]["status"]) == ("ACTIVE", "DOWN"),
                 what="the carried subport up, the refused one down")
        reason = side.ports.status()["refused_subports"][controller.ports()["sp-wrong"]["id"]]
        assert "VLAN 10" in reason and "VLAN 200" in reason
        nic = [a for a in controller.get(f"/v2.0/agents?host={host}")["agents"]
               if a["agent_type"] == "NIC Switch agent"]
        assert nic and nic[0]["configurations"]["device_mappings"] == {"physnet2": ["ens1f0"]}

        for subports, expected in (
                ({"sp110": ("net110", 110), "sp120": ("net120", 120),
                  "sp130": ("net130", 130)}, "110,120,130"),
                ({"sp110": ("net110", 110), "sp130": ("net130", 130)}, "110,130")):
            status, body = controller.request("POST", "/v2.0/topology",
                                              topology(host, slot, subports))
            assert status == 200, body
            wait_for(lambda e=expected: tree.trunk("ens1f0", 1).strip() == e, timeout=20,
                     what=f"the VF's trunk {expected}")
        writes = [v.strip() for p, v in side.sysfs.writes if p.endswith("/trunk")]
        assert writes == ["add 110,120", "add 130", "rem 120"]
        assert side.ports.status()["refused_subports"] == {}
        assert all(tree.trunk("ens1f0", vf).strip() == "" for vf in (0, 2, 3))
    finally:
        side.stop()

    again = SriovSide(conf, transport_url, host, tree, settings)
    try:
        wait_for(lambda: again.ports.synced_once and again.ports.status()["ports"] == {"wired": 1},
                 timeout=30, what="the restarted side synchronised")
        assert tree.trunk("ens1f0", 1).strip() == "110,130"
        assert again.sysfs.writes == []  # every VLAN that should stay stayed
    finally:
        again.stop()
        controller.stop()

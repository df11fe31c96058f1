"""The controller's RPC endpoints answer the agent's own client (dpagent.rpc) as neutron does,
over oslo.messaging's in-memory driver."""

from __future__ import annotations

from collections.abc import Iterator

import oslo_messaging
import pytest
from oslo_config import cfg

from dpagent.controller.faults import FaultInjector
from dpagent.controller.rpc_server import RpcServer
from dpagent.rpc import topics
from dpagent.rpc.errors import ServerError, ServerUnavailable
from dpagent.rpc.plugin_api import PluginApi
from dpagent.rpc.state_report import StateReporter
from dpagent.rpc.transport import call, make_transport, request_context, rpc_client
from tests.unit.controller.conftest import group_id, port_id


@pytest.fixture
def transport() -> Iterator[oslo_messaging.Transport]:
    conf = cfg.ConfigOpts()
    t = make_transport(conf, "fake://")
    conf(args=[], default_config_files=[])
    yield t
    t.cleanup()


@pytest.fixture
def served(transport, loaded) -> Iterator[RpcServer]:
    server = RpcServer(transport, loaded)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def api(transport, served) -> PluginApi:
    return PluginApi(transport, "compute1", timeout=5)


def test_device_details_bound_unbound_elsewhere_and_direct(api, loaded):
    ids = [port_id(loaded, n) for n in ("vm1", "vm3-sub10", "other", "sr1")]
    details = api.get_devices_details_list_and_failed_devices([*ids, "unknown"])
    by_id = {d["device"]: d for d in details.devices}
    vm1 = by_id[ids[0]]
    assert vm1["mac_address"] == "fa:16:3e:00:00:01"
    assert vm1["network_type"] == "flat" and vm1["physical_network"] is None
    assert [f["ip_address"] for f in vm1["fixed_ips"]] == ["10.10.0.11", "fd00:a::11"]
    assert vm1["allowed_address_pairs"] == [{"ip_address": "10.10.0.100",
                                             "mac_address": "fa:16:3e:00:00:01"}]
    # a subport is bound where its parent is and shows its own network's segment
    assert by_id[ids[1]]["device_owner"] == "trunk:subport"
    assert by_id[ids[1]]["network_type"] == "flat"
    assert by_id[ids[2]] == {"device": ids[2], "no_active_binding": True}
    assert by_id[ids[3]]["profile"] == {"pci_slot": "0000:00:02.1"}
    assert by_id[ids[3]]["segmentation_id"] == 100
    assert by_id["unknown"] == {"device": "unknown"}
    assert loaded.status_of(ids[0]) == "BUILD"  # neutron's side effect


def test_security_group_info_members_address_groups_and_statefulness(api, loaded):
    vm1 = port_id(loaded, "vm1")
    web, ops = group_id(loaded, "web"), group_id(loaded, "ops")
    info = api.security_group_info_for_devices([vm1]).info
    rules = info["security_groups"][web]
    assert {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
            "port_range_min": 80, "port_range_max": 80, "source_ip_prefix": "0.0.0.0/0",
            "stateful": True} in rules
    assert {"direction": "egress", "ethertype": "IPv4", "stateful": True} in rules
    vm2_ip = loaded.topology.ports[port_id(loaded, "vm2")].fixed_ips[0].ip_address
    assert info["sg_member_ips"][web] == {"IPv4": [
        ["10.10.0.100", "fa:16:3e:00:00:01"], ["10.10.0.11", None], [vm2_ip, None]]}
    assert info["sg_member_ips"][ops] == {"IPv4": [["192.0.2.0/24", None]]}
    device = info["devices"][vm1]
    assert device["fixed_ips"] == ["10.10.0.11", "fd00:a::11"]
    assert device["security_group_source_groups"] == [web]
    assert device["security_group_remote_address_groups"] == [ops]


def test_update_device_list_sets_status_of_this_hosts_ports_only(api, loaded):
    vm1, other = port_id(loaded, "vm1"), port_id(loaded, "other")
    result = api.update_device_list([vm1, other], [])
    assert result.devices_up == [vm1, other] and result.failed_devices_up == []
    assert loaded.status_of(vm1) == "ACTIVE"
    assert loaded.status_of(other) == "DOWN"
    result = api.update_device_list([], [vm1])
    assert result.devices_down == [{"device": vm1, "exists": True}]
    assert loaded.status_of(vm1) == "DOWN"


def test_network_details_and_unknown_network(api, loaded):
    net = next(n for n in loaded.topology.networks.values() if n.name == "net-v")
    assert api.get_network_details(net.id)["provider:segmentation_id"] == 100
    with pytest.raises(ServerError):
        api.get_network_details("nope")


def test_heartbeats_new_alive_revived_and_new_after_delete(transport, served, loaded):
    reporter = StateReporter(transport, "compute1", interval=30,
                             configurations={"admin_state_up": True})
    assert reporter.report_once() == "new"
    assert reporter.report_once() == "alive"
    (agent,) = loaded.agents.all()
    loaded.agents.expire(agent.id)
    assert reporter.report_once() == "revived"
    loaded.delete_agent(agent.id)
    assert reporter.report_once() == "new"
    assert loaded.agents.all()[0].id != agent.id


def test_versions_above_the_endpoints_are_refused_as_by_neutron(transport, served):
    """security_group_info_for_devices lives on a 1.3 endpoint: at 1.4 only the 1.9 ML2
    endpoint is compatible, and it has no such method (neutron's dispatcher says the same)."""
    client = rpc_client(transport, topics.PLUGIN, "1.4", timeout=5)
    with pytest.raises(ServerError, match="NoSuchMethod"):
        call(client, "security_group_info_for_devices", version="1.4", devices=[])


def test_trunk_pull_bindings_status_and_vnic_query(transport, served, loaded, sent):
    parent, sub = port_id(loaded, "vm3"), port_id(loaded, "vm3-sub10")
    plugin = rpc_client(transport, topics.PLUGIN, "1.1", timeout=5)

    def pull(resource_type, resource_id):
        # pull's own "version" kwarg would be taken by call() for the message version
        return plugin.call(request_context(), "pull", resource_type=resource_type,
                           version="1.1", resource_id=resource_id)

    trunk = pull("Trunk", parent)
    data = trunk["versioned_object.data"]
    assert trunk["versioned_object.name"] == "Trunk" and data["port_id"] == parent
    assert [s["versioned_object.data"]["segmentation_id"] for s in data["sub_ports"]] == [10]
    with pytest.raises(Exception, match="Callback for Port not found"):  # noqa: B017
        pull("Port", parent)

    trunk_rpc = rpc_client(transport, "trunk", "1.0", timeout=5, namespace="trunk")
    reply = call(trunk_rpc, "update_subport_bindings", subports=[
        {"trunk_id": data["id"], "port_id": sub, "segmentation_type": "vlan",
         "segmentation_id": 10}])
    (bound,) = reply[data["id"]]
    assert bound["binding:host_id"] == "compute1"
    assert bound["device_owner"] == "trunk:subport" and bound["binding:vif_type"] == "ovs"
    assert sent.methods() == ["port_update"]
    assert call(trunk_rpc, "update_trunk_status", trunk_id=data["id"], status="ACTIVE") is None
    assert loaded.status_of(data["id"]) == "ACTIVE"
    with pytest.raises(ServerError, match="UnsupportedVersion"):  # no namespace: refused
        call(rpc_client(transport, "trunk", "1.0", timeout=5), "update_trunk_status",
             trunk_id=data["id"], status="ACTIVE")

    direct = call(rpc_client(transport, topics.PLUGIN, "1.7", timeout=5),
                  "get_ports_by_vnic_type_and_host", vnic_type="direct", host="compute1")
    assert [p["name"] for p in direct] == ["sr1"]
    assert direct[0]["binding:profile"] == {"pci_slot": "0000:00:02.1"}


@pytest.mark.parametrize(("kind", "error"), [("error", ServerError),
                                             ("timeout", ServerUnavailable)])
def test_injected_faults_reach_the_caller(transport, loaded, kind, error):
    server = RpcServer(transport, loaded, faults=FaultInjector(1.0, [kind]))
    server.start()
    try:
        api = PluginApi(transport, "compute1", timeout=1)
        vm1 = port_id(loaded, "vm1")
        with pytest.raises(error):
            api.update_device_list([vm1], [])
        # an error fault refuses the call; a timeout fault ran it and lost the reply
        assert loaded.status_of(vm1) == ("ACTIVE" if kind == "timeout" else "DOWN")
        assert server.faults.injected == {f"update_device_list:{kind}": 1}
    finally:
        server.stop()

"""The control-plane double answers in the shapes neutron-server 29 was recorded answering."""

from __future__ import annotations

import time

import pytest

from dpagent.lab.control_plane import ControlPlaneModel
from dpagent.rpc.plugin_api import PluginApi
from dpagent.rpc.replies import check_security_group_info
from tests.unit.rpc.recordings import rpc_call

HOST = "compute1"


@pytest.fixture
def model():
    return ControlPlaneModel()


@pytest.fixture
def world(model):
    """Two networks, a stateful group naming itself as remote group, a stateless group."""
    net = model.add_network("net1")
    web = model.add_security_group()
    web.rules += [
        {"id": "r1", "direction": "egress", "ethertype": "IPv4"},
        {"id": "r2", "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
         "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"},
        {"id": "r3", "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
         "port_range_min": 80, "port_range_max": 80, "remote_group_id": web.id},
    ]
    dns = model.add_security_group(stateful=False)
    dns.rules.append({"id": "r4", "direction": "ingress", "ethertype": "IPv4",
                      "protocol": "udp", "port_range_min": 53, "port_range_max": 53,
                      "remote_ip_prefix": "10.10.0.7/24"})
    a = model.add_port(net.id, host=HOST, security_groups=[web.id],
                       allowed_address_pairs=[{"ip_address": "10.10.9.9"}])
    b = model.add_port(net.id, host="compute2", security_groups=[web.id])
    c = model.add_port(net.id, host=HOST, security_groups=[dns.id])
    return {"net": net, "web": web, "dns": dns, "a": a, "b": b, "c": c}


def test_bound_details_have_the_recorded_keys(model, world):
    recorded = rpc_call("05_")["response"]["devices"][0]
    entry = model.device_details(world["a"].id, HOST)
    assert set(entry) == set(recorded)
    assert entry["segmentation_id"] == world["net"].segmentation_id
    assert model.ports[world["a"].id].status == "BUILD"  # neutron's side effect


def test_unbound_unknown_and_elsewhere_bound_ports(model, world):
    world["c"].host = None
    assert model.device_details(world["c"].id, HOST) == {"device": world["c"].id}
    assert model.device_details("tap-nope", HOST) == {"device": "tap-nope"}
    assert model.device_details(world["b"].id, HOST) == {"device": world["b"].id,
                                                         "no_active_binding": True}


def test_security_group_info_has_the_recorded_shape(model, world):
    recorded = rpc_call("10_")["response"]
    info = model.security_group_info([world["a"].id, world["c"].id], "1.3")
    assert set(info) == set(recorded)
    recorded_device = next(iter(recorded["devices"].values()))
    device = info["devices"][world["a"].id]
    assert set(device) <= set(recorded_device) | {"binding:vif_details"}
    for key in ("security_group_rules", "security_group_source_groups",
                "security_group_remote_address_groups", "fixed_ips", "device"):
        assert key in device
    assert device["security_group_source_groups"] == [world["web"].id]
    assert device["security_group_rules"][0] == recorded_device["security_group_rules"][0] | {
        "dest_ip_prefix": f"{world['a'].fixed_ips[0]['ip_address']}/32"}
    # the dpagent validator takes it whole
    assert check_security_group_info(info, [world["a"].id, world["c"].id]).failed == {}


def test_rules_come_in_the_1_3_form_with_the_groups_stateful_flag(model, world):
    info = model.security_group_info([world["a"].id, world["c"].id], "1.3")
    web = info["security_groups"][world["web"].id]
    assert web[1] == {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                      "port_range_min": 22, "port_range_max": 22,
                      "source_ip_prefix": "0.0.0.0/0", "stateful": True}
    assert web[2]["remote_group_id"] == world["web"].id and "source_ip_prefix" not in web[2]
    (dns_rule,) = info["security_groups"][world["dns"].id]
    assert dns_rule["stateful"] is False
    assert dns_rule["source_ip_prefix"] == "10.10.0.0/24"  # normalised like neutron


def test_members_are_ip_mac_pairs_computed_from_the_ports_in_the_group(model, world):
    info = model.security_group_info([world["a"].id], "1.3")
    members = info["sg_member_ips"][world["web"].id]
    assert set(members) == {"IPv4"}  # only the ethertypes the remote-group rules use
    a, b = world["a"], world["b"]
    assert members["IPv4"] == sorted([[a.fixed_ips[0]["ip_address"], None],
                                      [b.fixed_ips[0]["ip_address"], None],
                                      ["10.10.9.9", a.mac_address]])


def test_without_call_version_members_are_plain_ips_as_from_neutron(model, world):
    recorded = rpc_call("11_")["response"]["sg_member_ips"]
    info = model.security_group_info([world["a"].id], None)
    members = info["sg_member_ips"][world["web"].id]
    assert set(members) == set(next(iter(recorded.values())))  # IPv4 and IPv6
    assert all(isinstance(ip, str) for ip in members["IPv4"])


def test_heartbeats_say_new_alive_revived(model):
    state = {"agent_type": "Open vSwitch agent", "host": HOST, "start_flag": True,
             "resource_versions": {"Port": "1.11"}}
    now = time.time()
    assert model.heartbeat(state, now) == "new"
    assert model.heartbeat({**state, "start_flag": False}, now + 30) == "alive"
    assert model.heartbeat(state, now + 200) == "revived"
    agent = model.agent(HOST)
    assert agent.heartbeats == [now, now + 30, now + 200]
    assert agent.resource_versions == {"Port": "1.11"} and agent.started_at == now + 200


def test_the_double_computes_replies_from_its_model(transport, conf, double):
    net = double.model.add_network("net1")
    sg = double.model.add_security_group()
    double.add_rule(sg.id, direction="ingress", ethertype="IPv4", remote_group_id=sg.id)
    ports = [double.add_port(net.id, host=HOST, security_groups=[sg.id]) for _ in range(3)]
    api = PluginApi.from_conf(transport, conf)
    ids = [p.id for p in ports]
    details = api.get_devices_details_list_and_failed_devices(ids)
    assert [d["device"] for d in details.devices] == ids and details.failed == {}
    info = api.security_group_info_for_devices(ids)
    assert len(info.info["sg_member_ips"][sg.id]["IPv4"]) == 3
    api.update_device_list(ids[:2], ids[2:])
    assert [double.model.ports[i].status for i in ids] == ["ACTIVE", "ACTIVE", "DOWN"]


def test_changes_send_the_casts_neutron_sends(double, monkeypatch):
    sent = []
    monkeypatch.setattr(double, "cast", lambda topic, method, **kw: sent.append((topic, method)))
    net = double.model.add_network()
    sg = double.model.add_security_group()
    double.add_rule(sg.id, direction="egress", ethertype="IPv4")
    port = double.add_port(net.id, host=HOST, security_groups=[sg.id])
    double.update_port(port.id, security_groups=[])
    double.delete_port(port.id)
    double.set_agent_admin_state(HOST, False)
    assert [m for _, m in sent if m != "push"] == [
        "security_groups_rule_updated", "security_groups_member_updated", "port_update",
        "security_groups_member_updated", "port_update", "port_delete", "agent_updated"]
    # and the OVO pushes of the same changes, each before its legacy casts (CONTRACT.md 2.2)
    assert [t for t, m in sent if m == "push"] == [
        "neutron-vo-SecurityGroupRule-1.3", "neutron-vo-Port-1.11", "neutron-vo-Port-1.11",
        "neutron-vo-Port-1.11"]
    assert sent[0] == ("neutron-vo-SecurityGroupRule-1.3", "push")

"""``[agent] rpc_mode = cache`` against a real neutron-server 29: the agent fills its cache
with ``bulk_pull`` and then lives on the OVO pushes. The cache-derived answers equal the
server's own replies for live objects; ports wire, go ACTIVE and pass traffic; and a rule
added and removed, a remote-group member added and removed, a port set admin down and up again
reach the dataplane from the pushes: in cache mode the agent makes no details or
security-group call at all, and ``bulk_pull`` only for a gap (a group new to the host's
ports), counted by the agent itself."""

from __future__ import annotations

import dataclasses
import time

import pytest
from oslo_config import cfg

from dpagent.daemon.status import query
from dpagent.resources.control_plane import CacheControlPlane, ResourcesApi
from dpagent.rpc.plugin_api import PluginApi
from dpagent.rpc.transport import make_transport
from flows.parse import parse_groups, parse_members
from tests.neutron.polling import (
    wait_agent_alive,
    wait_for,
    wait_ping,
    wait_ports_status,
    wait_tcp,
)
from tests.neutron.test_neutron_server import EGRESS_ALL, ICMP_IN, group, plugged

DETAIL_FIELDS = ("network_id", "mac_address", "admin_state_up", "network_type",
                 "segmentation_id", "physical_network", "mtu", "fixed_ips", "device_owner",
                 "allowed_address_pairs", "port_security_enabled", "port_id")


def pulls(agent) -> int:
    return query(str(agent.status_socket))["resources"]["bulk_pulls"]


@pytest.fixture
def server_apis(neutron_server):
    transport = make_transport(cfg.ConfigOpts(), neutron_server.transport_url)
    yield (PluginApi(transport, "cache-probe", timeout=10),
           ResourcesApi(transport, timeout=10))
    transport.cleanup()


def test_cache_derived_answers_equal_the_servers_for_live_objects(
        neutron_api, neutron_agent, vlan_network, server_apis):
    agent = neutron_agent("cmp", rpc_mode="legacy")
    wait_agent_alive(neutron_api, agent.host)
    net = vlan_network("10.71.0.0/24")
    web = group(neutron_api, "web", EGRESS_ALL, ICMP_IN)
    db = group(neutron_api, "db", EGRESS_ALL,
               {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                "port_range_min": 5432, "port_range_max": 5432, "remote_group_id": web["id"]},
               {"direction": "ingress", "ethertype": "IPv4", "protocol": "udp",
                "remote_ip_prefix": "10.71.0.0/25"})
    ports, _ = plugged(neutron_api, agent, net, [[web], [db], [web, db]], ["w", "d", "wd"])
    elsewhere = neutron_api.create_port(net["id"], host="other-host",
                                        security_groups=[web["id"]],
                                        allowed_address_pairs=[{"ip_address": "10.71.0.200"}])
    plugin, resources = server_apis
    plugin.host = agent.host
    ids = [p["id"] for p in ports]
    cached = CacheControlPlane(resources, plugin, agent.host)
    mine_details, failed = cached.get_devices_details(ids)
    assert not failed
    theirs = plugin.get_devices_details_list_and_failed_devices(ids)
    assert not theirs.failed
    for a, b in zip(sorted(mine_details, key=lambda d: d["device"]),
                    sorted(theirs.devices, key=lambda d: d["device"]), strict=True):
        assert {k: a.get(k) for k in DETAIL_FIELDS} == {k: b.get(k) for k in DETAIL_FIELDS}
    mine = cached.security_group_info(ids)
    server = plugin.security_group_info_for_devices(ids).info
    warnings: list[str] = []
    for sg in (web["id"], db["id"]):
        # the same rules; ours name each rule by its id (the server's reply has none)
        assert {dataclasses.replace(r, origin="")
                for r in parse_groups({sg: mine["security_groups"][sg]}, warnings)[0][sg]} == \
            {dataclasses.replace(r, origin="")
             for r in parse_groups({sg: server["security_groups"][sg]}, warnings)[0][sg]}
    assert set(mine["sg_member_ips"]) == set(server["sg_member_ips"]) == {web["id"]}
    members = parse_members({web["id"]: mine["sg_member_ips"][web["id"]]}, warnings)
    assert members == parse_members({web["id"]: server["sg_member_ips"][web["id"]]}, warnings)
    assert "10.71.0.200" in members[web["id"]][4]  # the other host's address pair
    for port_id in ids:
        for key in ("mac_address", "security_groups", "port_security_enabled",
                    "allowed_address_pairs", "network_id"):
            assert mine["devices"][port_id][key] == server["devices"][port_id][key], key
        assert sorted(mine["devices"][port_id]["fixed_ips"]) == \
            sorted(server["devices"][port_id]["fixed_ips"])
    neutron_api.delete_port(elsewhere["id"])


def test_changes_reach_the_dataplane_from_pushes_alone(neutron_api, neutron_agent,
                                                      vlan_network):
    agent = neutron_agent("cache", rpc_mode="cache")
    wait_agent_alive(neutron_api, agent.host)
    net = vlan_network("10.72.0.0/24")
    app = group(neutron_api, "app", EGRESS_ALL, ICMP_IN)
    db = group(neutron_api, "db", EGRESS_ALL, ICMP_IN,
               {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                "port_range_min": 5432, "port_range_max": 5432, "remote_group_id": app["id"]})
    plain = group(neutron_api, "plain", EGRESS_ALL)
    (p_db, p_client), (vm_db, vm_client) = plugged(neutron_api, agent, net, [[db], [plain]],
                                                   ["db", "client"])
    assert query(str(agent.status_socket))["resources"]["objects"]["ports"] >= 2
    vm_db.tcp_listen(5432)
    wait_ping(vm_client, vm_db.ip4)
    assert not vm_client.tcp_connect(vm_db.ip4, 5432, timeout=1)
    before = pulls(agent)

    # a remote-group member added: the client port joins app (a port update, pushed)
    started = time.monotonic()
    neutron_api.update_port(p_client["id"], security_groups=[plain["id"], app["id"]])
    wait_tcp(vm_client, vm_db.ip4, 5432, allowed=True, timeout=10)
    joined = time.monotonic() - started
    # the member leaves
    neutron_api.update_port(p_client["id"], security_groups=[plain["id"]])
    wait_tcp(vm_client, vm_db.ip4, 5432, allowed=False, timeout=10)
    # a rule added to the client's own group, enforced from the push
    assert not vm_db.ping(vm_client.ip4, timeout=1)
    rule = neutron_api.create_security_group_rule(plain["id"], **ICMP_IN)
    wait_ping(vm_db, vm_client.ip4, timeout=10)
    # and removed again
    neutron_api.delete_security_group_rule(rule["id"])
    wait_ping(vm_db, vm_client.ip4, allowed=False, timeout=10)
    # a port administratively down: cut off, reported DOWN
    neutron_api.update_port(p_db["id"], admin_state_up=False)
    wait_ports_status(neutron_api, [p_db["id"]], "DOWN", timeout=10)
    wait_ping(vm_client, vm_db.ip4, allowed=False, timeout=10)
    neutron_api.update_port(p_db["id"], admin_state_up=True)
    wait_ports_status(neutron_api, [p_db["id"]], "ACTIVE", timeout=10)
    wait_ping(vm_client, vm_db.ip4, timeout=10)
    print(f"\ncache mode: a member joined in {joined:.2f} s; bulk_pulls {before} -> "
          f"{pulls(agent)} over six changes")
    # one gap: the client's joining made 'app' a group of the host's ports, which the cache
    # did not hold (neutron pushes a group only when it changes): pulled once, with its rules
    assert pulls(agent) - before == 1

    # a new port of the host is a gap: pulled once, with its network known already
    (_,), (vm_new,) = plugged(neutron_api, agent, net, [[app]], ["new"])
    gap = pulls(agent)
    wait_ping(vm_new, vm_db.ip4)
    wait_for(lambda: vm_new.tcp_connect(vm_db.ip4, 5432, timeout=1), 10, what="new member")
    assert pulls(agent) - gap == 0
    assert pulls(agent) - before <= 3  # the new port only (app and its members are known)


def test_a_members_address_held_on_another_network_gets_no_members_access(
        neutron_api, neutron_agent, vlan_network):
    """Overlapping addresses (issue 16, item 6): net A and net B are both 10.74.0.0/24; web's
    member on net B (another host) has 10.74.0.50, and on net A the intruder holds 10.74.0.50
    too without being in web. db (net A) lets web in on tcp/5432: the intruder is refused, a
    member of web on net A gets in."""
    agent = neutron_agent("overlap", rpc_mode="cache")
    wait_agent_alive(neutron_api, agent.host)
    net_a, net_b = vlan_network("10.74.0.0/24"), vlan_network("10.74.0.0/24")
    web = group(neutron_api, "web", EGRESS_ALL)
    plain = group(neutron_api, "plain", EGRESS_ALL)
    db = group(neutron_api, "db", EGRESS_ALL, ICMP_IN,
               {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                "port_range_min": 5432, "port_range_max": 5432, "remote_group_id": web["id"]})
    shared = "10.74.0.50"
    neutron_api.create_port(net_b["id"], host="other-host", security_groups=[web["id"]],
                            fixed_ips=[{"subnet_id": net_b["subnet"]["id"],
                                        "ip_address": shared}])
    intruder = neutron_api.create_port(net_a["id"], host=agent.host,
                                       security_groups=[plain["id"]],
                                       fixed_ips=[{"subnet_id": net_a["subnet"]["id"],
                                                   "ip_address": shared}])
    vm_intruder = agent.plug(intruder, "intruder")
    _, (vm_db, vm_friend) = plugged(neutron_api, agent, net_a, [[db], [web]], ["db", "friend"])
    wait_ports_status(neutron_api, [intruder["id"]], "ACTIVE", timeout=30)
    assert vm_intruder.ip4 == shared
    vm_db.tcp_listen(5432)
    wait_tcp(vm_friend, vm_db.ip4, 5432, allowed=True, timeout=10)
    wait_ping(vm_intruder, vm_db.ip4)  # the intruder reaches db, just not on 5432
    assert not vm_intruder.tcp_connect(vm_db.ip4, 5432, timeout=1.5)

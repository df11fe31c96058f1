"""dpagent as a drop-in for neutron-openvswitch-agent, against a real neutron-server 29:
registration, binding, port status, security groups through the API, and the agent's
recovery when the server deleted its record or counted it dead."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

from dpagent.daemon.status import query
from tests.neutron.conftest import AGENT_DOWN_TIME, PHYSNET
from tests.neutron.polling import (
    agent_records,
    wait_agent_alive,
    wait_for,
    wait_ping,
    wait_ports_status,
    wait_tcp,
)

EGRESS_ALL = {"direction": "egress", "ethertype": "IPv4"}
ICMP_IN = {"direction": "ingress", "ethertype": "IPv4", "protocol": "icmp"}


def group(api, name, *rules):
    sg = api.create_security_group(name)
    for rule in rules:
        api.create_security_group_rule(sg["id"], **rule)
    return sg


def app_plain_db_groups(api):
    """Groups ``app`` and ``plain`` (egress only) and ``db`` (ICMP in, tcp/5432 from ``app``)."""
    app = group(api, "app", EGRESS_ALL)
    plain = group(api, "plain", EGRESS_ALL)
    db = group(api, "db", ICMP_IN, EGRESS_ALL,
               {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                "port_range_min": 5432, "port_range_max": 5432, "remote_group_id": app["id"]})
    return app, plain, db


def pinging_pair(api, agent, vlan_network, cidr, names):
    """Two VMs of one ICMP-in group on a new VLAN network, ACTIVE and pinging each other."""
    net = vlan_network(cidr)
    sg = group(api, "ping", ICMP_IN, EGRESS_ALL)
    ports, vms = plugged(api, agent, net, [[sg], [sg]], names)
    wait_ping(vms[0], vms[1].ip4)
    return ports, vms


def plugged(api, agent, net, groups, names):
    """Ports bound to the agent's host, plugged as VMs; returns (ports, vms) once ACTIVE."""
    ports = [api.create_port(net["id"], host=agent.host, security_groups=[g["id"] for g in gs])
             for gs in groups]
    vms = [agent.plug(p, name) for p, name in zip(ports, names, strict=True)]
    wait_ports_status(api, [p["id"] for p in ports], "ACTIVE", timeout=30)
    return ports, vms


def test_agent_registers_alive_with_its_bridge_mappings(neutron_api, neutron_agent):
    agent = neutron_agent("reg")
    record = wait_agent_alive(neutron_api, agent.host)
    assert record["agent_type"] == "Open vSwitch agent"
    assert record["binary"] and record["admin_state_up"] is True
    assert record["configurations"]["bridge_mappings"] == {PHYSNET: agent.phys_bridge}
    assert record["configurations"]["integration_bridge"] == agent.bridge
    assert len(agent_records(neutron_api, agent.host)) == 1


def test_two_vms_on_a_vlan_network_bind_go_active_and_ping(neutron_api, neutron_agent,
                                                           vlan_network):
    agent = neutron_agent("vlan")
    wait_agent_alive(neutron_api, agent.host)
    net = vlan_network("10.21.0.0/24", vlan=101)
    assert net["provider:segmentation_id"] == 101
    sg = group(neutron_api, "ping", ICMP_IN, EGRESS_ALL)
    ports = [neutron_api.create_port(net["id"], host=agent.host, security_groups=[sg["id"]])
             for _ in range(2)]
    for port in ports:
        assert port["binding:vif_type"] == "ovs", port
        assert port["status"] == "DOWN"
    started = time.monotonic()
    vms = [agent.plug(p, f"a{i}") for i, p in enumerate(ports)]
    plugged_in = time.monotonic() - started
    took = wait_ports_status(neutron_api, [p["id"] for p in ports], "ACTIVE", timeout=30)
    print(f"\nplug of 2 VMs {plugged_in:.1f} s, then ACTIVE after {took:.1f} s")
    wait_ping(vms[0], vms[1].ip4)
    assert vms[1].ping(vms[0].ip4)
    status = query(str(agent.status_socket))
    assert status["ports"] == {"wired": 2}


def test_security_group_rules_added_and_deleted_through_the_api(neutron_api, neutron_agent,
                                                                vlan_network):
    agent = neutron_agent("sg")
    wait_agent_alive(neutron_api, agent.host)
    net = vlan_network("10.22.0.0/24")
    sg = group(neutron_api, "members", ICMP_IN, EGRESS_ALL)
    ports, (a, b) = plugged(neutron_api, agent, net, [[sg], [sg]], ["sa", "sb"])
    b.tcp_listen(8080)
    wait_ping(a, b.ip4)
    assert not a.tcp_connect(b.ip4, 8080, timeout=1)  # no rule: dropped

    rule = neutron_api.create_security_group_rule(
        sg["id"], protocol="tcp", port_range_min=8080, port_range_max=8080)
    wait_tcp(a, b.ip4, 8080, allowed=True)
    neutron_api.delete_security_group_rule(rule["id"])
    wait_tcp(a, b.ip4, 8080, allowed=False)
    assert a.ping(b.ip4)
    wait_ports_status(neutron_api, [p["id"] for p in ports], "ACTIVE", timeout=10)


def test_new_member_of_a_remote_group_is_let_in(neutron_api, neutron_agent, vlan_network):
    agent = neutron_agent("rg")
    wait_agent_alive(neutron_api, agent.host)
    net = vlan_network("10.23.0.0/24")
    app, plain, db = app_plain_db_groups(neutron_api)
    ports, (db_vm, cli) = plugged(neutron_api, agent, net, [[db], [plain]], ["db", "cli"])
    db_vm.tcp_listen(5432)
    wait_ping(cli, db_vm.ip4)
    assert not cli.tcp_connect(db_vm.ip4, 5432, timeout=1)

    member = neutron_api.create_port(net["id"], host=agent.host, security_groups=[app["id"]])
    member_vm = agent.plug(member, "app")
    wait_tcp(member_vm, db_vm.ip4, 5432, allowed=True)
    assert not cli.tcp_connect(db_vm.ip4, 5432, timeout=1)
    wait_ports_status(neutron_api, [p["id"] for p in [*ports, member]], "ACTIVE", timeout=10)

    # dpagent-ctl trace says the same, naming neutron's own rule (by id) and groups
    def trace(src, dst):
        return query(str(agent.status_socket), timeout=30, request={
            "command": "trace", "from": src, "to": dst, "service": "tcp/5432"})
    rule_5432 = next(r["id"] for r in neutron_api.get(
        f"/v2.0/security-group-rules?security_group_id={db['id']}")["security_group_rules"]
        if r["port_range_min"] == 5432)
    allowed = trace(member_vm.ip4, db_vm.ip4)
    assert allowed["verdict"] == "ALLOWED", allowed
    through = [r for r in allowed["rules"] if "through remote group" in r]
    if os.environ.get("DPAGENT_TEST_RPC_MODE", "cache") == "cache":
        # the resource cache's objects carry the rule's id and the groups' names
        assert through == [f"security group db ({db['id']}) rule {rule_5432} (through remote "
                           f"group app ({app['id']}) ingress IPv4)"], allowed["rules"]
    else:  # neutron's SG info has no rule ids: the rule's place in its group
        assert len(through) == 1 and through[0].startswith(
            f"security group {db['id']} rule #"), allowed["rules"]
    refused = trace(cli.ip4, db_vm.ip4)
    assert refused["verdict"] == "DROPPED" and \
        refused["stage"].startswith("ingress rules of port ") and ports[0]["id"] in \
        refused["stage"], refused


@pytest.mark.parametrize("rpc_mode", ["cache", "legacy"])
def test_a_port_bound_before_its_vif_finds_its_remote_group_installed_and_stays_down(
        neutron_api, neutron_agent, vlan_network, rpc_mode):
    """As Nova does it: the port created unbound, bound to the host (neutron tells the agents:
    port_update), and only later plugged. The agent installs the members of the port's remote
    groups on the binding, without a details call (the port stays DOWN, not BUILD); the VIF
    then finds them in place and only its own flows go in."""
    agent = neutron_agent(f"ah{rpc_mode[0]}", rpc_mode=rpc_mode)
    wait_agent_alive(neutron_api, agent.host)
    net = vlan_network("10.29.0.0/24")
    app, _, db = app_plain_db_groups(neutron_api)
    (app_port,), (app_vm,) = plugged(neutron_api, agent, net, [[app]], ["app"])
    app_ip = app_vm.ip4

    def member_flows():
        return [f for f in agent.sandbox.dump_flows(agent.bridge)
                if re.search(rf"nw_src={re.escape(app_ip)}[ ,]", f) and "conjunction(" in f]

    assert not member_flows()  # no rule of a local port names app yet
    db_port = neutron_api.create_port(net["id"], security_groups=[db["id"]])
    neutron_api.update_port(db_port["id"], **{"binding:host_id": agent.host})
    wait_for(member_flows, 20, what="app's member flow installed on db's binding")
    assert query(str(agent.status_socket))["expected"] == 1
    ahead = member_flows()
    time.sleep(1)
    assert neutron_api.show_port(db_port["id"])["status"] == "DOWN"

    db_vm = agent.plug(db_port, "db")
    wait_ports_status(neutron_api, [db_port["id"], app_port["id"]], "ACTIVE", timeout=30)
    assert member_flows() == ahead  # the same flows, not installed again
    assert query(str(agent.status_socket))["expected"] == 0
    db_vm.tcp_listen(5432)
    wait_tcp(app_vm, db_vm.ip4, 5432, allowed=True)


def test_port_security_group_update_opens_traffic_and_ports_stay_active(
        neutron_api, neutron_agent, vlan_network):
    agent = neutron_agent("upd")
    wait_agent_alive(neutron_api, agent.host)
    net = vlan_network("10.24.0.0/24")
    app, plain, db = app_plain_db_groups(neutron_api)
    ports, (db_vm, cli) = plugged(neutron_api, agent, net, [[db], [plain]], ["db", "cli"])
    db_vm.tcp_listen(5432)
    assert not cli.tcp_connect(db_vm.ip4, 5432, timeout=1)

    started = time.monotonic()
    neutron_api.update_port(ports[1]["id"], security_groups=[plain["id"], app["id"]])
    # traffic may open by the member update (another topic) before the agent handled the
    # port_update; give it time to fetch the port again -- which puts it in BUILD (observed:
    # within 0.25 s) -- so that ACTIVE below is the agent's report, not the old status
    wait_tcp(cli, db_vm.ip4, 5432, allowed=True)
    time.sleep(2)
    wait_ports_status(neutron_api, [p["id"] for p in ports], "ACTIVE", timeout=10)
    print(f"\nsecurity-group update: open and ACTIVE again {time.monotonic() - started:.2f} s "
          "after the PUT")


def test_agent_deleted_while_alive_registers_again_and_its_ports_end_active(
        neutron_api, neutron_agent, vlan_network):
    agent = neutron_agent("del")
    old = wait_agent_alive(neutron_api, agent.host)
    ports, (a, b) = pinging_pair(neutron_api, agent, vlan_network, "10.25.0.0/24", ["da", "db"])

    neutron_api.delete_agent(old["id"])
    new = wait_agent_alive(neutron_api, agent.host, exclude_ids=[old["id"]], timeout=20)
    assert new["configurations"]["bridge_mappings"] == {PHYSNET: agent.phys_bridge}
    assert [r["id"] for r in agent_records(neutron_api, agent.host)] == [new["id"]]
    wait_for(lambda: "server replied 'new' to the state report" in agent.log.read_text(),
             10, what="the agent's resync on 'new'")
    time.sleep(2)  # the resync fetches every port (BUILD): ACTIVE below is the agent's report
    wait_ports_status(neutron_api, [p["id"] for p in ports], "ACTIVE", timeout=10)
    assert a.ping(b.ip4)


def test_frozen_agent_is_revived_and_resyncs_its_ports_to_active(neutron_api, neutron_agent,
                                                                 vlan_network):
    agent = neutron_agent("frz")
    wait_agent_alive(neutron_api, agent.host)
    ports, (a, b) = pinging_pair(neutron_api, agent, vlan_network, "10.26.0.0/24", ["fa", "fb"])

    agent.signal(signal.SIGSTOP)
    try:
        wait_agent_alive(neutron_api, agent.host, alive=False, timeout=AGENT_DOWN_TIME + 15)
        assert a.ping(b.ip4)  # the dataplane does not need the agent
    finally:
        agent.signal(signal.SIGCONT)
    wait_agent_alive(neutron_api, agent.host, timeout=15)
    # the first report after the silence is answered 'revived'; on a busy server that reply
    # can come after the report's timeout, and the next one's 'alive' resyncs instead
    wait_for(lambda: any(line in agent.log.read_text() for line in (
        "server replied 'revived' to the state report",
        "reply was lost (it may have said 'revived'): full resync")),
        15, what="the agent's resync on 'revived'")
    time.sleep(2)  # the resync fetches every port (BUILD): ACTIVE below is the agent's report
    wait_ports_status(neutron_api, [p["id"] for p in ports], "ACTIVE", timeout=10)
    assert a.ping(b.ip4)


def test_while_br_int_cannot_be_programmed_the_agent_does_not_look_alive(
        own_sandbox, neutron_api, neutron_agent, vlan_network):
    """OVS down: dpagent says why, reports nothing up and withholds its heartbeat (as neutron's
    agent does while OVS is dead), so the server counts it dead and binds no new port there;
    with OVS back, it is revived and every port is ACTIVE again."""
    agent = neutron_agent("ovsd", sandbox=own_sandbox)
    wait_agent_alive(neutron_api, agent.host)
    ports, (a, b) = pinging_pair(neutron_api, agent, vlan_network, "10.27.0.0/24", ["oa", "ob"])
    own_sandbox.stop_vswitchd()
    try:
        status = wait_for(lambda: (s := query(str(agent.status_socket)))["switch"]["problem"]
                          and s, 10, what="the agent noticing the switch is away")
        assert agent.bridge in status["switch"]["problem"]
        started = time.monotonic()
        wait_agent_alive(neutron_api, agent.host, alive=False, timeout=AGENT_DOWN_TIME + 15)
        print(f"\nOVS down: the server counts the agent dead after "
              f"{time.monotonic() - started:.1f} s more")
        assert "not reporting state to the server" in agent.log.read_text()
        late = neutron_api.create_port(ports[0]["network_id"], host=agent.host)
        assert late["binding:vif_type"] == "binding_failed", late
        assert query(str(agent.status_socket))["heartbeat"]["withheld"]
    finally:
        own_sandbox.start_vswitchd()
    wait_agent_alive(neutron_api, agent.host, timeout=20)
    # the first report after the silence is answered 'revived'; on a busy server that reply
    # can come after the report's timeout, and the next one's 'alive' resyncs instead
    wait_for(lambda: any(line in agent.log.read_text() for line in (
        "server replied 'revived' to the state report",
        "reply was lost (it may have said 'revived'): full resync")),
        15, what="the agent's resync on 'revived'")
    time.sleep(2)  # the resync fetches every port (BUILD): ACTIVE below is the agent's report
    wait_ports_status(neutron_api, [p["id"] for p in ports], "ACTIVE", timeout=10)
    wait_ping(a, b.ip4)

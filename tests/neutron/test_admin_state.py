"""Administrative state through neutron's own agents API, with the neutron-dpagent extension
loaded into the real neutron-server (as the tier's server does): ``PUT admin_state_up=false``
cordons the host's dpagent (wired ports keep working, a new VIF is held, a new port's binding
fails there), ``true`` wires what was held without a restart, a restart while cordoned stays
cordoned, an agent without admin-state meaning gets 400. And a server without the extension
behaves as before: 200, nothing reaches the agent, ports still bind."""

from __future__ import annotations

import time
import uuid

import pytest
from oslo_config import cfg

from dpagent.daemon.status import query
from dpagent.lab.neutron_server import NeutronAPIError, NeutronServer
from dpagent.rpc import topics
from dpagent.rpc.state_report import StateReporter, sriov_agent_configurations
from dpagent.rpc.transport import make_transport
from tests.neutron.conftest import NeutronAgent
from tests.neutron.polling import (
    agent_records,
    wait_agent_alive,
    wait_for,
    wait_ping,
    wait_ports_status,
)
from tests.neutron.test_neutron_server import EGRESS_ALL, ICMP_IN, group, plugged

REFUSAL = "does not declare administrative state support"


def admin_state(agent: NeutronAgent) -> bool:
    return bool(query(str(agent.status_socket))["admin_state_up"])


def set_admin_state(api, agent: NeutronAgent, up: bool) -> float:
    """PUT it on the host's OVS agent record; seconds until the agent itself says so."""
    (record,) = agent_records(api, agent.host)
    started = time.monotonic()
    assert api.update_agent(record["id"], admin_state_up=up)["admin_state_up"] is up
    wait_for(lambda: admin_state(agent) is up, 10, what=f"admin_state_up {up} on the agent",
             interval=0.02)
    return time.monotonic() - started


def test_cordon_holds_new_vifs_fails_new_bindings_and_lifts_without_a_restart(
        neutron_api, neutron_agent, vlan_network):
    agent = neutron_agent("cordon")
    wait_agent_alive(neutron_api, agent.host)
    net = vlan_network("10.81.0.0/24")
    sg = group(neutron_api, "ping", ICMP_IN, EGRESS_ALL)
    _, (a, b) = plugged(neutron_api, agent, net, [[sg], [sg]], ["ca", "cb"])
    wait_ping(a, b.ip4)
    waiting = neutron_api.create_port(net["id"], host=agent.host, security_groups=[sg["id"]])
    assert waiting["binding:vif_type"] == "ovs"  # bound while the agent is up

    took = set_admin_state(neutron_api, agent, False)
    print(f"\ncordoned {took * 1000:.0f} ms after the PUT")
    assert took < 1.0
    late = agent.plug(waiting, "clate")
    wait_for(lambda: query(str(agent.status_socket))["ports"].get("admin-down") == 1, 10,
             what="the new VIF held back")
    assert neutron_api.show_port(waiting["id"])["status"] != "ACTIVE"
    assert not late.ping(a.ip4, timeout=1)
    assert a.ping(b.ip4)  # wired ports keep working
    refused = neutron_api.create_port(net["id"], host=agent.host, security_groups=[sg["id"]])
    assert refused["binding:vif_type"] == "binding_failed", refused

    took = set_admin_state(neutron_api, agent, True)
    wait_ports_status(neutron_api, [waiting["id"]], "ACTIVE", timeout=15)
    wait_ping(late, a.ip4)
    print(f"admin up {took * 1000:.0f} ms after the PUT; the held VIF ACTIVE and pinging")
    # the host binds again: the refused port, asked once more (as Nova's retry would)
    rebound = neutron_api.update_port(refused["id"], **{"binding:host_id": agent.host})
    assert rebound["binding:vif_type"] == "ovs", rebound


def test_an_agent_restarted_while_cordoned_stays_cordoned(neutron_api, neutron_agent,
                                                          vlan_network):
    agent = neutron_agent("recordon")
    wait_agent_alive(neutron_api, agent.host)
    net = vlan_network("10.82.0.0/24")
    sg = group(neutron_api, "ping", ICMP_IN, EGRESS_ALL)
    _, (a, b) = plugged(neutron_api, agent, net, [[sg], [sg]], ["ra", "rb"])
    waiting = neutron_api.create_port(net["id"], host=agent.host, security_groups=[sg["id"]])
    set_admin_state(neutron_api, agent, False)

    agent.stop()
    late = agent.plug(waiting, "rlate")  # plugged while the agent is away
    agent.start()
    wait_for(lambda: query(str(agent.status_socket)).get("last_sync"), 30, what="first sync")
    # known before the first sync: the VIF plugged meanwhile was held, not wired
    assert admin_state(agent) is False
    assert query(str(agent.status_socket))["ports"] == {"wired": 2, "admin-down": 1}
    wait_ping(a, b.ip4)
    assert not late.ping(a.ip4, timeout=1)
    assert "the server says this agent is administratively down" in agent.log_tail(20000)

    set_admin_state(neutron_api, agent, True)
    wait_ports_status(neutron_api, [waiting["id"]], "ACTIVE", timeout=15)
    wait_ping(late, a.ip4)


def test_admin_state_on_an_agent_that_gives_it_no_meaning_is_refused(neutron_server,
                                                                     neutron_api):
    """neutron's own OVS agent ignores admin_state_up: the extension answers 400, naming it."""
    host = f"stock-{uuid.uuid4().hex[:6]}"
    transport = make_transport(cfg.ConfigOpts(), neutron_server.transport_url)
    try:
        reporter = StateReporter(transport, host, interval=3600.0, timeout=30.0,
                                 configurations={"bridge_mappings": {}},
                                 binary="neutron-openvswitch-agent")
        assert reporter.report_once() == "new"
    finally:
        transport.cleanup()
    (record,) = agent_records(neutron_api, host)
    try:
        with pytest.raises(NeutronAPIError) as refused:
            neutron_api.update_agent(record["id"], admin_state_up=False)
        assert refused.value.status == 400
        assert REFUSAL in refused.value.body and record["id"] in refused.value.body
        (unchanged,) = agent_records(neutron_api, host)
        assert unchanged["admin_state_up"] is True
        # what has no admin-state meaning is still editable
        assert neutron_api.update_agent(record["id"], description="stock")["description"] \
            == "stock"
    finally:
        neutron_api.delete_agent(record["id"])


@pytest.fixture(scope="module")
def plain_neutron(rabbit_broker):
    """neutron-server 29 without the extension (``service_plugins = trunk``)."""
    with NeutronServer(rabbit_broker, agent_down_time=12, dpagent_extension=False) as server:
        yield server


def test_without_the_extension_admin_state_reaches_nobody_as_before(plain_neutron, ovs_sandbox,
                                                                    tmp_path):
    api = plain_neutron.api
    agent = NeutronAgent(ovs_sandbox, plain_neutron, tmp_path, "plain",
                         {"report_interval": 1})
    try:
        wait_agent_alive(api, agent.host)
        assert "no answer to get_admin_state" in agent.log_tail(20000)
        (record,) = agent_records(api, agent.host)
        assert api.update_agent(record["id"], admin_state_up=False)["admin_state_up"] is False
        net = api.create_network(f"net-{uuid.uuid4().hex[:6]}", "vlan", "physnet1")
        try:
            api.create_subnet(net["id"], "10.83.0.0/24")
            port = api.create_port(net["id"], host=agent.host)
            assert port["binding:vif_type"] == "ovs"  # still bound there
            time.sleep(1)
            assert admin_state(agent) is True  # nothing told it
            api.delete_port(port["id"])
        finally:
            api.delete(f"/v2.0/networks/{net['id']}")
    finally:
        agent.close()


def test_a_cordoned_sriov_side_gets_no_direct_port(neutron_server, neutron_api, vlan_network):
    """sriovnicswitch likewise: the SR-IOV side's own record (NIC Switch agent, registered here
    by its heartbeat alone, as dpagent's SR-IOV side reports it) set down refuses a direct
    port's binding to the host; set up again, the port binds (vif_type hw_veb)."""
    host = f"sriov-{uuid.uuid4().hex[:6]}"
    transport = make_transport(cfg.ConfigOpts(), neutron_server.transport_url)
    try:
        reporter = StateReporter(transport, host, interval=3600.0, timeout=30.0,
                                 configurations=sriov_agent_configurations(
                                     {"physnet1": ["enp0s1"]}),
                                 agent_type=topics.AGENT_TYPE_NIC_SWITCH)
        assert reporter.report_once() == "new"
    finally:
        transport.cleanup()
    (record,) = agent_records(neutron_api, host, topics.AGENT_TYPE_NIC_SWITCH)
    net = vlan_network("10.84.0.0/24")
    try:
        neutron_api.update_agent(record["id"], admin_state_up=False)
        refused = neutron_api.create_port(net["id"], host=host, **{"binding:vnic_type": "direct"})
        assert refused["binding:vif_type"] == "binding_failed", refused
        neutron_api.update_agent(record["id"], admin_state_up=True)
        bound = neutron_api.update_port(refused["id"], **{"binding:host_id": host})
        assert bound["binding:vif_type"] == "hw_veb", bound
    finally:
        neutron_api.delete_agent(record["id"])

"""The HTTP API with a real HTTP client against an in-process server: every endpoint and
every error, and dpagent-ctl's agents commands against it."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator

import pytest
import yaml

from dpagent.cmd import ctl
from dpagent.controller.api import ApiServer
from dpagent.controller.state import ControllerState
from tests.unit.controller.conftest import SAMPLE, port_id


def dpagent_state(host: str) -> dict:
    return {"binary": "dpagent", "host": host, "topic": "N/A",
            "agent_type": "Open vSwitch agent", "start_flag": True,
            "configurations": {"bridge_mappings": {}, "admin_state_up": True, "devices": 0}}


def sriov_state(host: str) -> dict:  # a foreign agent: no admin_state_up in configurations
    return {"binary": "neutron-sriov-nic-agent", "host": host, "topic": "N/A",
            "agent_type": "NIC Switch agent", "configurations": {"device_mappings": {}}}


@pytest.fixture
def server(loaded: ControllerState) -> Iterator[ApiServer]:
    api = ApiServer(loaded, "127.0.0.1", 0)
    api.start()
    yield api
    api.stop()


@pytest.fixture
def agents(loaded: ControllerState) -> dict[str, str]:
    loaded.agents.report(dpagent_state("compute1"))
    loaded.agents.report(sriov_state("compute1"))
    return {a.agent_type: a.id for a in loaded.agents.all()}


def request(server: ApiServer, method: str, path: str, body: object = None,
            raw: bytes | None = None) -> tuple[int, object]:
    host, port = server.url[len("http://"):].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        payload = raw if raw is not None else (None if body is None
                                               else json.dumps(body).encode())
        conn.request(method, path, body=payload,
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        if response.getheader("Content-Type") == "application/yaml":
            return response.status, yaml.safe_load(data)
        return response.status, json.loads(data) if data else None
    finally:
        conn.close()


def error_message(body: object) -> str:
    assert isinstance(body, dict)
    return str(body["NeutronError"]["message"])


def test_list_and_show_agents_in_neutrons_shape(server, agents):
    status, body = request(server, "GET", "/v2.0/agents")
    assert status == 200
    listed = {a["agent_type"]: a for a in body["agents"]}
    ovs = listed["Open vSwitch agent"]
    assert ovs["id"] == agents["Open vSwitch agent"] and ovs["host"] == "compute1"
    assert ovs["alive"] is True and ovs["admin_state_up"] is True
    assert ovs["binary"] == "dpagent" and ovs["configurations"]["admin_state_up"] is True
    assert set(ovs) >= {"created_at", "started_at", "heartbeat_timestamp", "topic",
                        "resource_versions", "description", "availability_zone"}
    status, body = request(server, "GET", f"/v2.0/agents/{ovs['id']}")
    assert status == 200 and body["agent"] == ovs
    status, body = request(server, "GET", "/v2.0/agents?agent_type=NIC%20Switch%20agent")
    assert [a["id"] for a in body["agents"]] == [agents["NIC Switch agent"]]


def test_alive_follows_heartbeat_age(server, agents, loaded):
    ovs = agents["Open vSwitch agent"]
    loaded.agents.expire(ovs)
    assert request(server, "GET", f"/v2.0/agents/{ovs}")[1]["agent"]["alive"] is False
    loaded.agents.report(dpagent_state("compute1"))
    assert request(server, "GET", f"/v2.0/agents/{ovs}")[1]["agent"]["alive"] is True


def test_admin_down_is_persisted_notified_and_refuses_new_bindings(server, agents, loaded,
                                                                   sent, db_path):
    ovs = agents["Open vSwitch agent"]
    status, body = request(server, "PUT", f"/v2.0/agents/{ovs}",
                           {"agent": {"admin_state_up": False}})
    assert status == 200 and body["agent"]["admin_state_up"] is False
    (cast,) = sent
    assert (cast.topic, cast.method, cast.server) == ("dpagent", "agent_updated", "compute1")
    assert cast.kwargs == {"payload": {"admin_state_up": False}}
    from dpagent.controller.store import Store
    assert [a.admin_state_up for a in Store(db_path).agents()
            if a.id == ovs] == [False]

    doc = yaml.safe_load(SAMPLE)
    doc["ports"].append({"name": "late", "network": "net-a", "host": "compute1"})
    status, body = request(server, "POST", "/v2.0/topology", doc)
    assert status == 400
    assert error_message(body) == (
        f"ports[late].host: cannot bind to compute1: its Open vSwitch agent {ovs} is "
        f"administratively down (dpagent-ctl agents set --admin-up {ovs})")
    assert "late" not in {p.name for p in loaded.topology.ports.values()}
    # ports already bound there stay: only new bindings are refused
    doc["ports"].pop()
    assert request(server, "POST", "/v2.0/topology", doc)[0] == 200

    assert request(server, "PUT", f"/v2.0/agents/{ovs}",
                   {"agent": {"admin_state_up": True}})[0] == 200
    doc["ports"].append({"name": "late", "network": "net-a", "host": "compute1"})
    status, body = request(server, "POST", "/v2.0/topology", doc)
    assert status == 200
    assert [c["kind"] for c in body["changes"]] == ["port_update"]


def test_admin_state_of_an_agent_without_support_is_refused(server, agents):
    sriov = agents["NIC Switch agent"]
    status, body = request(server, "PUT", f"/v2.0/agents/{sriov}",
                           {"agent": {"admin_state_up": False}})
    assert status == 400
    assert "does not declare administrative state support" in error_message(body)
    assert "would have no effect" in error_message(body)
    assert request(server, "GET", f"/v2.0/agents/{sriov}")[1]["agent"]["admin_state_up"]


@pytest.mark.parametrize(("body", "raw", "message"), [
    (None, b"{not json", "the body is not JSON"),
    ({"admin_state_up": False}, None, 'expected {"agent": {"admin_state_up": true|false}}'),
    ({"agent": {}}, None, "agent.admin_state_up: required"),
    ({"agent": {"admin_state_up": "no"}}, None,
     "agent.admin_state_up: expected true or false, got 'no'"),
    ({"agent": {"admin_state_up": True, "host": "x"}}, None,
     "agent.host: cannot be changed (only admin_state_up can)"),
])
def test_bad_updates_get_400_naming_the_problem(server, agents, body, raw, message):
    status, answer = request(server, "PUT", f"/v2.0/agents/{agents['Open vSwitch agent']}",
                             body, raw)
    assert status == 400
    assert message in error_message(answer)


def test_unknown_ids_paths_and_methods(server, agents):
    for method, body in (("GET", None), ("PUT", {"agent": {"admin_state_up": False}}),
                         ("DELETE", None)):
        status, answer = request(server, method, "/v2.0/agents/nope", body)
        assert status == 404 and answer["NeutronError"]["type"] == "AgentNotFound"
        assert error_message(answer) == "agent nope could not be found"
    assert request(server, "GET", "/v2.0/routers")[0] == 404
    assert request(server, "GET", "/v1/agents")[0] == 404
    assert request(server, "GET", "/v2.0/ports/nope")[0] == 404
    assert request(server, "POST", "/v2.0/agents", {})[0] == 405
    assert request(server, "DELETE", "/v2.0/ports")[0] == 405
    status, answer = request(server, "GET", "/v2.0/agents?colour=red")
    assert status == 400 and "unknown filter(s) colour" in error_message(answer)


def test_delete_agent_then_it_registers_as_new(server, agents, loaded):
    ovs = agents["Open vSwitch agent"]
    assert request(server, "DELETE", f"/v2.0/agents/{ovs}") == (204, None)
    assert request(server, "GET", f"/v2.0/agents/{ovs}")[0] == 404
    assert loaded.agents.report(dpagent_state("compute1")) == "new"
    ids = [a["id"] for a in request(server, "GET", "/v2.0/agents?binary=dpagent")[1]["agents"]]
    assert len(ids) == 1 and ids[0] != ovs


def test_read_only_resources_in_neutrons_shapes(server, loaded):
    status, body = request(server, "GET", "/v2.0/ports")
    ports = {p["name"]: p for p in body["ports"]}
    assert status == 200 and ports["vm1"]["binding:host_id"] == "compute1"
    assert ports["vm3"]["trunk_details"]["sub_ports"][0]["segmentation_id"] == 10
    assert ports["sr1"]["binding:profile"] == {"pci_slot": "0000:00:02.1"}
    vm1 = port_id(loaded, "vm1")
    assert request(server, "GET", f"/v2.0/ports/{vm1}")[1]["port"]["name"] == "vm1"
    nets = request(server, "GET", "/v2.0/networks")[1]["networks"]
    assert {n["name"]: n["provider:segmentation_id"] for n in nets} == {"net-a": None,
                                                                         "net-v": 100}
    groups = request(server, "GET", "/v2.0/security-groups")[1]["security_groups"]
    assert {g["name"]: g["stateful"] for g in groups} == {"web": True, "quiet": False}


def test_topology_export_and_reload_with_difference(server, loaded, sent):
    status, exported = request(server, "GET", "/v2.0/topology")
    assert status == 200 and exported["version"] == 1
    status, body = request(server, "POST", "/v2.0/topology", exported)
    assert status == 200 and body == {"changes": []} and sent == []
    web = next(g for g in exported["security_groups"] if g["name"] == "web")
    web["rules"].append({"direction": "ingress", "ethertype": "IPv4", "protocol": "udp",
                         "port_range_min": 53, "port_range_max": 53})
    status, body = request(server, "POST", "/v2.0/topology",
                           raw=yaml.safe_dump(exported).encode())
    assert status == 200
    assert [c["kind"] for c in body["changes"]] == ["security_groups_rule_updated"]
    status, body = request(server, "POST", "/v2.0/topology", raw=b"ports: [{name: x}]")
    assert status == 400 and error_message(body) == "ports[x].network: required"
    status, body = request(server, "POST", "/v2.0/topology", raw=b"ports: [")
    assert status == 400 and error_message(body).startswith("request body: not valid YAML")


def test_ctl_agents_commands(server, agents, capsys):
    ovs = agents["Open vSwitch agent"]
    base = ["--api-url", server.url, "agents"]
    assert ctl.main([*base, "list"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["ID", "Agent", "Type", "Host", "Alive", "State", "Binary"]
    assert any(line.startswith(ovs) and ":-)" in line and "UP" in line for line in table)
    assert ctl.main([*base, "set", "--admin-down", ovs]) == 0
    assert "admin state DOWN" in capsys.readouterr().out
    assert ctl.main([*base, "show", ovs, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["admin_state_up"] is False
    assert ctl.main([*base, "set", "--admin-up", agents["NIC Switch agent"]]) == 1
    assert "400: agent" in capsys.readouterr().err
    assert ctl.main([*base, "delete", ovs]) == 0
    assert ctl.main([*base, "delete", ovs]) == 1
    assert f"404: agent {ovs} could not be found" in capsys.readouterr().err


def test_ctl_without_api_says_so(capsys):
    assert ctl.main(["--api-url", "http://127.0.0.1:1", "agents", "list"]) == 2
    assert "cannot reach the API at http://127.0.0.1:1" in capsys.readouterr().err


def test_times_are_in_neutrons_api_format(server, agents):
    agent = request(server, "GET", f"/v2.0/agents/{agents['Open vSwitch agent']}")[1]["agent"]
    for key in ("created_at", "started_at", "heartbeat_timestamp"):
        time.strptime(agent[key], "%Y-%m-%d %H:%M:%S")

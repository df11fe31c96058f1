"""The dpagent daemon against dpagent-controller: both real processes, a real broker, a private
OVS and namespaces.  The controller keeps its state across restarts, ages heartbeats, takes an
agent deleted while alive back as a new one, and a 20% rate of failed RPC replies leaves the
agent with exactly the right flows."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid

import pytest

from dpagent.agent.sg_cache import SecurityGroupCache
from dpagent.bridge.ofctl import OfctlTransport
from dpagent.bridge.programmer import canary_flow
from dpagent.controller import views
from dpagent.controller.store import Store
from dpagent.daemon.status import query
from flows.compiler import compile_host
from flows.cookies import COOKIE_MASK, COOKIE_VALUE
from flows.model import Network
from tests.functional.controller.controller_process import ControllerProcess
from tests.functional.daemon.test_daemon import start_daemon, wait_for


def topology(host: str, cidr: str, ports: dict[str, list[str]],
             rules: list[dict] | None = None) -> dict:
    """One internal flat network; group "ping" (ICMP in, anything out), "web" (tcp/80 from
    members of "ping"), "plain" (anything out); ``ports``: name -> groups, all on ``host``."""
    base = cidr.rsplit(".", 1)[0]
    return {
        "version": 1,
        "networks": [{"name": "n1", "type": "flat", "physnet": None,
                      "subnets": [{"cidr": cidr}]}],
        "security_groups": [
            {"name": "ping", "rules": rules if rules is not None else [
                {"direction": "ingress", "protocol": "icmp"}, {"direction": "egress"}]},
            {"name": "web", "rules": [
                {"direction": "ingress", "protocol": "tcp", "port_range": "80",
                 "remote_group": "ping"}, {"direction": "egress"}]},
            {"name": "plain", "rules": [{"direction": "egress"}]},
        ],
        "ports": [{"name": name, "network": "n1", "host": host, "security_groups": groups,
                   "mac": f"fa:16:3e:00:07:{i + 10:02x}", "fixed_ips": [f"{base}.{i + 10}"]}
                  for i, (name, groups) in enumerate(ports.items())],
    }


def start_agent(tmp_path, ovs_sandbox, transport_url, host, bridge, *, rpc_timeout=5):
    return start_daemon(tmp_path, ovs_sandbox, transport_url, host, bridge, "threading",
                        rpc_timeout=rpc_timeout)


def stop(proc) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def plug(netns_vm, controller, bridge, name):
    port = controller.ports()[name]
    return netns_vm(name, bridge=bridge, mac=port["mac_address"],
                    ipv4=[f"{port['fixed_ips'][0]['ip_address']}/24"], iface_id=port["id"])


def statuses(controller):
    return {name: p["status"] for name, p in controller.ports().items()}


@pytest.fixture
def host():
    return f"compute-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def bridge(ovs_sandbox):
    name = f"br-c{uuid.uuid4().hex[:6]}"
    yield name
    ovs_sandbox.del_bridge(name)


def test_agent_follows_the_topology_across_a_controller_restart(tmp_path, ovs_sandbox,
                                                                transport_url, netns_vm,
                                                                host, bridge):
    doc = topology(host, "10.7.0.0/24", {"a": ["ping"], "b": ["ping"]})
    controller = ControllerProcess(tmp_path, transport_url, topology=doc).start()
    agent = start_agent(tmp_path, ovs_sandbox, transport_url, host, bridge)
    try:
        wait_for(lambda: controller.agent(host) is not None, timeout=30, what="registration")
        a, b = plug(netns_vm, controller, bridge, "a"), plug(netns_vm, controller, bridge, "b")
        wait_for(lambda: statuses(controller) == {"a": "ACTIVE", "b": "ACTIVE"},
                 what="ports reported up")
        assert a.ping(b.ip4)
        registered = controller.agent(host)
        ports_before = controller.ports()

        assert controller.stop() == 0
        assert a.ping(b.ip4)  # the dataplane does not need the controller
        controller.start()
        assert controller.ports() == ports_before  # ids, MACs, addresses and statuses kept
        assert controller.agent(host)["id"] == registered["id"]

        # SIGHUP re-applies the edited file: the rule change reaches the agent
        controller.write_topology(topology(host, "10.7.0.0/24", {"a": ["ping"], "b": ["ping"]},
                                           rules=[{"direction": "egress"}]))
        controller.reload()
        wait_for(lambda: not a.ping(b.ip4, timeout=1), what="icmp closed by the reload")
        assert controller.ports() == ports_before
    finally:
        stop(agent)
        controller.stop()


def test_aging_admin_state_and_delete_while_alive(tmp_path, ovs_sandbox, transport_url,
                                                  netns_vm, host, bridge):
    doc = topology(host, "10.8.0.0/24", {"a": ["ping"], "b": ["ping"]})
    controller = ControllerProcess(tmp_path, transport_url, topology=doc,
                                   agent_down_time=3).start()
    status_socket = str(tmp_path / "status.sock")
    agent = start_agent(tmp_path, ovs_sandbox, transport_url, host, bridge)
    try:
        wait_for(lambda: (controller.agent(host) or {}).get("alive"), timeout=30,
                 what="registration")
        wait_for(lambda: os.path.exists(status_socket), what="status socket")
        first = controller.agent(host)

        status, body = controller.request("PUT", f"/v2.0/agents/{first['id']}",
                                          {"agent": {"admin_state_up": False}})
        assert status == 200 and body["agent"]["admin_state_up"] is False
        wait_for(lambda: query(status_socket)["admin_state_up"] is False,
                 what="agent_updated reached the daemon")
        status, body = controller.request("POST", "/v2.0/topology", {
            **doc, "ports": [*doc["ports"], {"name": "c", "network": "n1", "host": host}]})
        assert status == 400 and "administratively down" in body["NeutronError"]["message"]
        assert controller.request("PUT", f"/v2.0/agents/{first['id']}",
                                  {"agent": {"admin_state_up": True}})[0] == 200
        wait_for(lambda: query(status_socket)["admin_state_up"] is True, what="admin up")

        # deleted while alive: the next heartbeat registers it anew and the daemon resyncs
        a = plug(netns_vm, controller, bridge, "a")
        wait_for(lambda: statuses(controller)["a"] == "ACTIVE", what="a up")
        synced = query(status_socket)["last_sync"]
        assert controller.request("DELETE", f"/v2.0/agents/{first['id']}") == (204, None)
        wait_for(lambda: controller.agent(host) is not None, what="re-registration")
        assert controller.agent(host)["id"] != first["id"]
        wait_for(lambda: query(status_socket)["last_sync"] > synced, what="full resync")
        b = plug(netns_vm, controller, bridge, "b")
        wait_for(lambda: statuses(controller)["b"] == "ACTIVE", what="b up")
        assert a.ping(b.ip4)

        # heartbeats stop: alive turns false after agent_down_time; back: alive, same record
        second = controller.agent(host)
        stop(agent)
        wait_for(lambda: controller.agent(host)["alive"] is False, what="aged out")
        agent = start_agent(tmp_path, ovs_sandbox, transport_url, host, bridge)
        wait_for(lambda: controller.agent(host)["alive"] is True, timeout=30, what="revived")
        assert controller.agent(host)["id"] == second["id"]
    finally:
        stop(agent)
        controller.stop()


def expected_cookies(controller, ovs_sandbox, vms):
    """What the compiler makes of the controller's final model for these VIFs (plus the
    programmer's canary), computed here from the controller's database, free of faults."""
    store = Store(str(controller.database))
    try:
        model = store.load_topology()
    finally:
        store.close()
    cache = SecurityGroupCache()
    local = {}
    for vm in vms:
        details = views.device_details(model, vm.iface_id, "")
        port = model.ports[vm.iface_id]
        vlan = int(ovs_sandbox.vsctl("get", "Port", vm.tap, "tag"))
        cache.networks[vlan] = Network(port.network_id, vlan, None)
        local[vm.iface_id] = {"ofport": vm.ofport, "local_vlan": vlan}
        assert details  # the port exists in the model
    cache.ingest(views.security_group_info(model, sorted(local), "1.3", {}), local)
    result = compile_host(cache.model())
    assert not result.errors
    return {f.cookie for f in result.flows()} | {canary_flow().cookie}


NAMES = ("a", "b", "c", "d", "e", "f")
GROUPS = ("ping", "web", "plain")


def churned(host: str, round_: int) -> dict:
    """The topology of churn round ``round_``: memberships rotate, the ping group's rules
    change, so every round gives member and rule updates."""
    ports = {name: [GROUPS[(i + round_) % 3]] + (["ping"] if (i + round_) % 2 else [])
             for i, name in enumerate(NAMES)}
    rules = [{"direction": "ingress", "protocol": "icmp"}, {"direction": "egress"},
             {"direction": "ingress", "protocol": "udp",
              "port_range": f"{5000 + round_}-{5100 + round_ * 7}"}]
    return topology(host, "10.9.0.0/24", {k: sorted(set(v)) for k, v in ports.items()},
                    rules=rules)


def injected_faults(controller) -> int:
    return controller.log().count("fault injection: ")


def test_twenty_percent_failed_replies_still_converge_exactly(tmp_path, ovs_sandbox,
                                                              transport_url, netns_vm, host,
                                                              bridge):
    """20% of the replies fail (an error, or no reply after the call ran) while ports are
    plugged and groups change: the agent ends with exactly the flows the compiler makes of the
    final model, every port is reported up, heartbeats keep arriving."""
    controller = ControllerProcess(tmp_path, transport_url, topology=churned(host, 0),
                                   fault_rate=0.2, fault_seed=20).start()
    agent = start_agent(tmp_path, ovs_sandbox, transport_url, host, bridge, rpc_timeout=2)
    ofctl = OfctlTransport(bridge, env=ovs_sandbox.env)
    try:
        wait_for(lambda: controller.agent(host) is not None, timeout=60, what="registration")
        first_beat = controller.agent(host)["heartbeat_timestamp"]
        vms = {}
        round_ = 0
        # churn until every port is plugged and enough faults were injected to matter
        while round_ < len(NAMES) or (injected_faults(controller) < 10 and round_ < 40):
            if round_ < len(NAMES):
                vms[NAMES[round_]] = plug(netns_vm, controller, bridge, NAMES[round_])
            round_ += 1
            assert controller.request("POST", "/v2.0/topology",
                                      churned(host, round_))[0] == 200
            time.sleep(0.2)  # pacing only: let the agent work between changes

        wait_for(lambda: set(statuses(controller).values()) == {"ACTIVE"}, timeout=60,
                 what=f"every port reported up, last seen {statuses(controller)}")
        expected = expected_cookies(controller, ovs_sandbox, vms.values())
        wait_for(lambda: {f.cookie for f in ofctl.dump(COOKIE_VALUE, COOKIE_MASK)} == expected,
                 timeout=60, what="the installed flows equal the compiled final model")
        installed = ofctl.dump(COOKIE_VALUE, COOKIE_MASK)
        assert len(installed) == len(expected)  # no duplicate or stale flow
        final = churned(host, round_)
        pingable = [p["name"] for p in final["ports"] if "ping" in p["security_groups"]]
        assert vms[NAMES[0] if NAMES[0] not in pingable else NAMES[1]].ping(
            vms[pingable[0]].ip4)  # the last changes took effect

        assert controller.agent(host)["alive"] is True
        assert controller.agent(host)["heartbeat_timestamp"] > first_beat
        log = controller.log()
        assert "fault injection: failing" in log and "fault injection: dropping" in log
    finally:
        stop(agent)
        controller.stop()
        print(f"\n{round_} rounds; {controller.log().split('injected faults: ')[-1][:300]}")

"""dpagent's RPC against the control-plane double over a real RabbitMQ (own vhost per test)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from oslo_config import cfg

from dpagent import conf as dpagent_conf
from dpagent.lab.control_plane import ControlPlaneDouble
from dpagent.rpc.consumers import NotificationConsumers
from dpagent.rpc.plugin_api import PluginApi
from dpagent.rpc.state_report import TIME_FORMAT, StateReporter
from dpagent.rpc.transport import make_transport

HOST = "compute1"


class Handler:
    """Remembers notifications; ``wait_for`` blocks until one arrives."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, tuple[object, ...]]] = []
        self._changed = threading.Condition()

    def __getattr__(self, name: str):
        if not name.startswith("on_"):
            raise AttributeError(name)

        def record(*args: object) -> None:
            with self._changed:
                self.seen.append((name, args))
                self._changed.notify_all()
        return record

    def wait_for(self, name: str, timeout: float = 10.0) -> tuple[object, ...]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for seen, args in self.seen:
                    if seen == name:
                        return args
                if not self._changed.wait(max(0.0, deadline - time.monotonic())):
                    raise TimeoutError(f"no {name} within {timeout} s: {self.seen}")


@pytest.fixture
def conf() -> cfg.ConfigOpts:
    c = cfg.ConfigOpts()
    dpagent_conf.register_opts(c)
    c(args=[], default_config_files=[])
    c.set_override("host", HOST, group="agent")
    c.set_override("report_interval", 1, group="agent")
    c.set_override("rpc_response_timeout", 5)
    c.set_override("bridge_mappings", {"physnet1": "br-phys"}, group="ovs")
    return c


@pytest.fixture
def double(transport_url: str) -> Iterator[ControlPlaneDouble]:
    with ControlPlaneDouble(transport_url) as cp:
        yield cp


@pytest.fixture
def transport(conf, transport_url):
    t = make_transport(conf, transport_url)
    # the driver registered its options: notice the outage and reconnect within seconds
    # (defaults: retry intervals growing by 2 s up to 30 s, 1 s delay after an error), and
    # stop consumers within a second (an idle listener polls for up to 5 s, or for
    # heartbeat_timeout_threshold / 6 if less)
    for name, value in (("rabbit_interval_max", 2), ("rabbit_retry_backoff", 0),
                        ("kombu_reconnect_delay", 0.2), ("heartbeat_timeout_threshold", 6)):
        conf.set_override(name, value, group="oslo_messaging_rabbit")
    yield t
    t.cleanup()


def test_plugin_api_round_trips(transport, conf, double):
    net = double.model.add_network("net1")
    web = double.model.add_security_group()
    double.add_rule(web.id, direction="ingress", ethertype="IPv4", protocol="tcp",
                    port_range_min=80, port_range_max=80, remote_group_id=web.id)
    mine = [double.add_port(net.id, host=HOST, security_groups=[web.id]) for _ in range(3)]
    other = double.add_port(net.id, host="compute2", security_groups=[web.id])
    api = PluginApi.from_conf(transport, conf)

    assert api.has_alive_neutron_server() is True
    ids = [p.id for p in mine] + [other.id, "tap-unknown"]
    details = api.get_devices_details_list_and_failed_devices(ids)
    assert details.failed == {}
    by_id = {d["device"]: d for d in details.devices}
    assert by_id[mine[0].id]["segmentation_id"] == net.segmentation_id
    assert by_id[other.id] == {"device": other.id, "no_active_binding": True}
    assert by_id["tap-unknown"] == {"device": "tap-unknown"}

    info = api.security_group_info_for_devices([p.id for p in mine])
    assert info.failed == {} and info.warnings == []
    members = info.info["sg_member_ips"][web.id]["IPv4"]
    assert sorted(ip for ip, _ in members) == sorted(
        p.fixed_ips[0]["ip_address"] for p in [*mine, other])
    assert all(mac is None for _, mac in members)  # [ip, mac] pairs over the wire too

    result = api.update_device_list([p.id for p in mine], [other.id])
    assert result.devices_up == [p.id for p in mine]
    assert result.devices_down == [{"device": other.id, "exists": True}]
    assert api.get_network_details(net.id)["provider:segmentation_id"] == net.segmentation_id

    sent = {c.method: c for c in double.calls()}
    assert sent["security_group_info_for_devices"].kwargs["call_version"] == "1.3"
    assert sent["get_devices_details_list_and_failed_devices"].version == "1.5"
    assert sent["update_device_list"].version == "1.9"


def test_report_state_arrives_with_the_documented_shape(transport, conf, double):
    reporter = StateReporter.from_conf(transport, conf)
    reporter.start()
    try:
        first = double.wait_for_call("report_state")
        second = double.wait_for_call("report_state", after=1, timeout=5)
    finally:
        assert reporter.stop()
    assert (first.topic, first.version, first.reply) == ("q-reports-plugin", "1.4", "new")
    state = first.kwargs["agent_state"]["agent_state"]
    assert {"binary", "host", "topic", "agent_type", "configurations", "uuid", "start_flag",
            "resource_versions"} == set(state)
    assert (state["binary"], state["host"], state["topic"]) == ("dpagent", HOST, "N/A")
    assert state["configurations"]["bridge_mappings"] == {"physnet1": "br-phys"}
    time.strptime(first.kwargs["time"], TIME_FORMAT)
    assert second.reply == "alive"
    assert "start_flag" not in second.kwargs["agent_state"]["agent_state"]
    assert 0.5 < second.at - first.at < 2.0  # every report_interval (1 s)
    agent = double.model.agent(HOST)
    assert agent is not None and len(agent.heartbeats) >= 2


def test_revived_and_new_after_registration_ask_for_a_resync(transport, conf, double):
    resyncs: list[str] = []
    reporter = StateReporter.from_conf(transport, conf, on_resync=resyncs.append)
    reporter.start()
    try:
        double.wait_for_call("report_state", where=lambda c: c.reply == "alive")
        double.expire_agent(HOST)  # the server thinks the agent was dead
        double.wait_for_call("report_state", where=lambda c: c.reply == "revived")
        double.delete_agent(HOST)  # an operator deleted the live agent
        double.wait_for_call("report_state", where=lambda c: c.reply == "new"
                             and "start_flag" not in c.kwargs["agent_state"]["agent_state"])
        time.sleep(0.2)
    finally:
        assert reporter.stop()
    assert resyncs == ["revived", "new"]


def test_notifications_reach_the_handler_of_their_host(transport, conf, double):
    mine, other = Handler(), Handler()
    consumers = [NotificationConsumers(transport, HOST, mine),
                 NotificationConsumers(transport, "compute2", other)]
    for c in consumers:
        c.start()
    try:
        net = double.model.add_network()
        sg = double.model.add_security_group()
        double.add_rule(sg.id, direction="ingress", ethertype="IPv6")
        port = double.add_port(net.id, host=HOST, security_groups=[sg.id])
        double.set_agent_admin_state(HOST, False)
        for handler in (mine, other):  # fanout: every agent gets the casts
            assert handler.wait_for("on_security_groups_rule_updated") == ([sg.id],)
            assert handler.wait_for("on_security_groups_member_updated") == ([sg.id],)
            args = handler.wait_for("on_port_update")
            assert args[0]["id"] == port.id and args[1:] == ("vlan", net.segmentation_id,
                                                             "physnet1")
        assert mine.wait_for("on_agent_updated") == (False,)
        time.sleep(0.3)
        assert all(name != "on_agent_updated" for name, _ in other.seen)  # not its host
    finally:
        for c in consumers:
            c.stop()


def _until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.1)
    return predicate()


def test_the_heartbeat_survives_a_broker_outage(rabbit_broker, transport, conf, double):
    if rabbit_broker.external_url is not None:
        pytest.skip("an external broker cannot be stopped by the test")
    handler = Handler()
    consumers = NotificationConsumers(transport, HOST, handler)
    consumers.start()
    resyncs: list[str] = []
    reporter = StateReporter.from_conf(transport, conf, on_resync=resyncs.append)
    reporter.start()
    broker_down = False
    try:
        assert _until(lambda: reporter.status().registered, 10)
        rabbit_broker.stop()
        broker_down, stopped = True, time.time()
        # reports fail (no reply, then not deliverable); the reporter keeps its last
        # result and its thread lives on
        assert _until(lambda: reporter.status().consecutive_failures >= 1, 10)
        status = reporter.status()
        assert reporter.running
        assert status.last_result == "new" and status.last_error, status
        assert (status.last_success or 0) < stopped
        rabbit_broker.start()
        broker_down = False
        assert _until(lambda: (reporter.status().last_success or 0) > stopped, 20), \
            reporter.status()
        status = reporter.status()
        assert status.last_result == "alive" and status.last_error is None
        assert resyncs == ["reconnected"]  # casts of the outage are lost: resync
        # the consumers are back too; casts sent before they re-declared their fanout
        # queues are lost, so cast until one arrives
        assert _until(lambda: double.notify_port_delete("p-after-outage")
                      or any(name == "on_port_delete" for name, _ in handler.seen), 20)
    finally:
        if broker_down:
            rabbit_broker.start()  # the broker is shared by the session's tests
        assert reporter.stop(timeout=10)
        consumers.stop()

"""The server's casts: every recorded one reaches the handler; broken ones are dropped and named."""

from __future__ import annotations

import copy
import logging
import threading
import time
from typing import Any

import pytest

from dpagent.rpc import topics
from dpagent.rpc.consumers import NotificationConsumers
from dpagent.rpc.notifications import CONSUMED, AgentEndpoint, PortUpdateEndpoint
from tests.unit.rpc.recordings import notifications

CTXT = {"request_id": "req-test", "project_id": "fake_project_id", "is_admin": True}
RECORDED = notifications()


class Recorder:
    """An AgentNotifications that remembers every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.event = threading.Event()

    def _add(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))
        self.event.set()

    def on_security_groups_rule_updated(self, sg_ids):
        self._add("on_security_groups_rule_updated", sg_ids)

    def on_security_groups_member_updated(self, sg_ids):
        self._add("on_security_groups_member_updated", sg_ids)

    def on_port_update(self, port, network_type, segmentation_id, physical_network):
        self._add("on_port_update", port, network_type, segmentation_id, physical_network)

    def on_port_delete(self, port_id):
        self._add("on_port_delete", port_id)

    def on_binding_deactivate(self, port_id, host, network_id):
        self._add("on_binding_deactivate", port_id, host, network_id)

    def on_binding_activate(self, port_id, host):
        self._add("on_binding_activate", port_id, host)

    def on_network_update(self, network):
        self._add("on_network_update", network)

    def on_network_delete(self, network_id):
        self._add("on_network_delete", network_id)

    def on_agent_updated(self, admin_state_up):
        self._add("on_agent_updated", admin_state_up)

    def wait(self, count: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.calls) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.calls) >= count, self.calls


def _dispatch(topic: str, method: str, kwargs: dict[str, Any]) -> tuple[Recorder, Any]:
    """Call the endpoint method as oslo.messaging's dispatcher would."""
    handler = Recorder()
    endpoint = CONSUMED[topic][0](handler)
    result = getattr(endpoint, method)(CTXT, **copy.deepcopy(kwargs))
    return handler, endpoint, result


def _expected(method: str, kwargs: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    args = {
        "security_groups_rule_updated": (kwargs.get("security_groups"),),
        "security_groups_member_updated": (kwargs.get("security_groups"),),
        "port_update": (kwargs.get("port"), kwargs.get("network_type"),
                        kwargs.get("segmentation_id"), kwargs.get("physical_network")),
        "port_delete": (kwargs.get("port_id"),),
        "network_update": (kwargs.get("network"),),
        "network_delete": (kwargs.get("network_id"),),
    }[method]
    return f"on_{method}", args


def _case_id(note: dict[str, Any]) -> str:
    return f"{note['phase']}-{note['method']}"


def test_the_recording_holds_every_legacy_notification_kind():
    assert {n["method"] for n in RECORDED} == {
        "security_groups_rule_updated", "security_groups_member_updated", "port_update",
        "port_delete", "network_update", "network_delete"}


@pytest.mark.parametrize("note", RECORDED, ids=[_case_id(n) for n in RECORDED])
def test_every_recorded_notification_reaches_the_handler_as_sent(note, caplog):
    assert note["topic"] in CONSUMED, "a recorded topic has no consumer"
    handler, endpoint, result = _dispatch(note["topic"], note["method"], note["kwargs"])
    assert result is None
    assert handler.calls == [_expected(note["method"], note["kwargs"])]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert endpoint.stats.snapshot()["delivered"] == {note["method"]: 1}


def _first(method: str) -> dict[str, Any]:
    return next(n for n in RECORDED if n["method"] == method)


def _mutations() -> list[tuple[str, str, dict[str, Any], str]]:
    """(method, what, broken kwargs, field the log must name) from recorded payloads."""
    cases = []
    for method in sorted({n["method"] for n in RECORDED}):
        note = _first(method)
        for key in note["kwargs"]:
            broken = copy.deepcopy(note["kwargs"])
            del broken[key]
            cases.append((note["topic"], method, f"missing {key}", broken, key))
            broken = copy.deepcopy(note["kwargs"])
            broken[key] = 3.5  # no field of any notification is a float
            cases.append((note["topic"], method, f"float {key}", broken, key))
    port = _first("port_update")

    def port_case(what: str, field: str, change) -> None:
        broken = copy.deepcopy(port["kwargs"])
        change(broken["port"])
        cases.append((port["topic"], "port_update", what, broken, field))

    for key in ("id", "network_id", "mac_address", "admin_state_up"):
        port_case(f"port without {key}", f"port.{key}", lambda p, k=key: p.pop(k))
    port_case("admin_state_up as text", "port.admin_state_up",
              lambda p: p.update(admin_state_up="true"))
    port_case("bad fixed IP", "port.fixed_ips[0].ip_address",
              lambda p: p["fixed_ips"][0].update(ip_address="10.10.0.300"))
    port_case("security_groups as a string", "port.security_groups",
              lambda p: p.update(security_groups="sg"))
    port_case("bad MAC", "port.mac_address", lambda p: p.update(mac_address="fa:16:3e"))
    port_case("address pair without ip", "port.allowed_address_pairs[0].ip_address",
              lambda p: p.update(allowed_address_pairs=[{"mac_address": "fa:16:3e:00:00:01"}]))
    broken = copy.deepcopy(port["kwargs"])
    broken["segmentation_id"] = True
    cases.append((port["topic"], "port_update", "segmentation_id as bool", broken,
                  "segmentation_id"))
    note = _first("security_groups_rule_updated")
    cases.append((note["topic"], note["method"], "an id that is not a string",
                  {"security_groups": ["sg-a", 7]}, "security_groups[1]"))
    cases.append((note["topic"], note["method"], "an empty id",
                  {"security_groups": [""]}, "security_groups[0]"))
    network = _first("network_update")
    broken = copy.deepcopy(network["kwargs"])
    broken["network"]["mtu"] = "1400"
    cases.append((network["topic"], "network_update", "mtu as text", broken, "network.mtu"))
    broken = copy.deepcopy(network["kwargs"])
    del broken["network"]["id"]
    cases.append((network["topic"], "network_update", "network without id", broken,
                  "network.id"))
    return cases


MUTATIONS = _mutations()


@pytest.mark.parametrize(("topic", "method", "what", "kwargs", "field"), MUTATIONS,
                         ids=[f"{m}-{w}" for _, m, w, _, _ in MUTATIONS])
def test_a_broken_notification_is_dropped_and_the_log_names_the_field(
        topic, method, what, kwargs, field, caplog):
    caplog.set_level(logging.WARNING, logger="dpagent.rpc")
    handler, endpoint, result = _dispatch(topic, method, kwargs)
    assert result is None  # nothing raised into oslo.messaging
    assert handler.calls == []
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"dropped {method} (request req-test): invalid field {field}:" in m
               for m in messages), messages
    assert endpoint.stats.snapshot()["dropped"] == {method: 1}


def test_unknown_arguments_are_logged_and_ignored(caplog):
    note = _first("port_delete")
    handler, _, _ = _dispatch(note["topic"], "port_delete", {**note["kwargs"], "extra": 1})
    assert handler.calls == [("on_port_delete", (note["kwargs"]["port_id"],))]
    assert "ignoring unknown argument(s) extra" in caplog.text


@pytest.mark.parametrize("up", [True, False])
def test_agent_updated_delivers_the_admin_state(up):
    handler = Recorder()
    AgentEndpoint(handler).agent_updated(CTXT, payload={"admin_state_up": up})
    assert handler.calls == [("on_agent_updated", (up,))]


@pytest.mark.parametrize(("payload", "field"), [
    ({}, "payload.admin_state_up"),
    ({"admin_state_up": "false"}, "payload.admin_state_up"),
    ({"admin_state_up": 0}, "payload.admin_state_up"),
    ("down", "payload"),
])
def test_agent_updated_with_a_bad_payload_is_dropped(payload, field, caplog):
    handler = Recorder()
    AgentEndpoint(handler).agent_updated(CTXT, payload=payload)
    assert handler.calls == []
    assert f"invalid field {field}:" in caplog.text


def test_a_failing_handler_is_logged_and_does_not_raise(caplog):
    class Broken(Recorder):
        def on_port_update(self, *args):
            raise RuntimeError("agent core bug")

    note = _first("port_update")
    endpoint = PortUpdateEndpoint(Broken())
    assert endpoint.port_update(CTXT, **note["kwargs"]) is None
    assert "handler of port_update (request req-test) failed" in caplog.text
    assert endpoint.stats.snapshot()["handler_errors"] == {"port_update": 1}


def test_endpoints_declare_the_versions_neutron_sends_at():
    # network_update is sent at 1.4: an endpoint at 1.0 would refuse it (UnsupportedVersion)
    assert CONSUMED[topics.NETWORK_UPDATE][0].target.version == "1.7"
    assert CONSUMED[topics.SECURITY_GROUP_UPDATE][0].target.version == "1.1"
    assert CONSUMED[topics.AGENT] == (AgentEndpoint, False)


# -- through oslo.messaging (fake://) ---------------------------------------------------------

@pytest.fixture
def consumers(transport):
    handler = Recorder()
    c = NotificationConsumers(transport, "compute1", handler)
    c.start()
    yield c
    c.stop()


def test_casts_reach_the_handler_through_oslo_messaging(consumers, double):
    for note in RECORDED:
        version = "1.4" if note["method"] == "network_update" else "1.1"
        double.cast(note["topic"], note["method"], version=version, **note["kwargs"])
    double.notify_agent_updated("compute1", False)
    consumers.handler.wait(len(RECORDED) + 1)
    assert sorted(name for name, _ in consumers.handler.calls) == sorted(
        [f"on_{n['method']}" for n in RECORDED] + ["on_agent_updated"])


def test_agent_updated_for_another_host_is_not_received(consumers, double):
    double.notify_agent_updated("compute2", False)
    double.notify_port_delete("p1")
    consumers.handler.wait(1)
    time.sleep(0.2)
    assert consumers.handler.calls == [("on_port_delete", ("p1",))]


def test_a_broken_cast_leaves_the_consumer_working(consumers, double, caplog):
    double.cast(topics.PORT_DELETE, "port_delete", port_id=None)
    double.cast(topics.PORT_DELETE, "port_delete")
    double.cast(topics.PORT_DELETE, "no_such_method", port_id="p0")
    double.notify_port_delete("p1")
    consumers.handler.wait(1)
    assert consumers.handler.calls == [("on_port_delete", ("p1",))]
    assert consumers.stats.snapshot()["dropped"] == {"port_delete": 2}


def test_messages_of_one_topic_arrive_in_the_order_sent(consumers, double):
    # one worker per topic: an admin-down port_update is never overtaken by the admin-up
    ids = [f"port-{i:03d}" for i in range(60)]
    for port_id in ids:
        double.notify_port_delete(port_id)
    consumers.handler.wait(len(ids))
    assert [args[0] for _, args in consumers.handler.calls] == ids


def test_stopped_consumers_receive_nothing(transport, double):
    handler = Recorder()
    c = NotificationConsumers(transport, "compute1", handler)
    c.start()
    assert c.running
    assert c.stop(timeout=5) is True
    assert not c.running
    double.notify_port_delete("p1")
    time.sleep(0.2)
    assert handler.calls == []


def test_live_migration_binding_casts_reach_the_handler():
    """neutron's AgentNotifierApi casts these (message version 1.5) during live migration."""
    handler, endpoint, _ = _dispatch(topics.BINDING_DEACTIVATE, "binding_deactivate",
                                     {"port_id": "p1", "host": "src", "network_id": "n1"})
    assert handler.calls == [("on_binding_deactivate", ("p1", "src", "n1"))]
    handler, endpoint, _ = _dispatch(topics.BINDING_ACTIVATE, "binding_activate",
                                     {"port_id": "p1", "host": "dst"})
    assert handler.calls == [("on_binding_activate", ("p1", "dst"))]
    assert topics.BINDING_ACTIVATE == "q-agent-notifier-binding-activate"
    assert CONSUMED[topics.BINDING_DEACTIVATE][0].target.version == "1.7"


def test_a_binding_cast_without_its_host_is_dropped_naming_the_field(caplog):
    handler, endpoint, _ = _dispatch(topics.BINDING_ACTIVATE, "binding_activate",
                                     {"port_id": "p1"})
    assert handler.calls == []
    assert "invalid field host" in caplog.text
    assert endpoint.stats.snapshot()["dropped"] == {"binding_activate": 1}

"""A transport's observer hears of every call and every notification on it, and nothing of
another transport's (fake:// broker, the control-plane double)."""

from __future__ import annotations

import threading

import pytest

from dpagent.rpc import topics
from dpagent.rpc.consumers import NotificationConsumers
from dpagent.rpc.errors import ServerUnavailable
from dpagent.rpc.observers import observe, observer_of
from dpagent.rpc.plugin_api import PluginApi
from dpagent.rpc.transport import make_transport


class Heard:
    """An RpcObserver that remembers (method, error) of each call and notification."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []
        self.notifications: list[tuple[str, str | None]] = []
        self.seconds: list[float] = []
        self.notified = threading.Semaphore(0)

    def call_done(self, method, seconds, error):
        self.calls.append((method, error))
        self.seconds.append(seconds)

    def notification_done(self, method, seconds, error):
        self.notifications.append((method, error))
        self.seconds.append(seconds)
        self.notified.release()


class Deletions:
    """Handles port_delete; its agent_updated handler is broken."""

    def on_port_delete(self, port_id):
        pass

    def on_agent_updated(self, admin_state_up):
        raise RuntimeError("a handler bug")


@pytest.fixture
def heard(transport):
    observer = Heard()
    observe(transport, observer)
    yield observer
    observe(transport, None)


def test_calls_are_heard_with_their_outcome(transport, double, heard):
    api = PluginApi(transport, "compute1", timeout=2)
    assert api.has_alive_neutron_server() is True
    api.get_devices_details_list_and_failed_devices(["p-unknown"])
    assert heard.calls == [("has_alive_neutron_server", None),
                           ("get_devices_details_list_and_failed_devices", None)]
    assert all(0 <= s < 2 for s in heard.seconds)


def test_a_call_without_an_answer_is_heard_as_unavailable(transport, double, heard):
    double.inject("has_alive_neutron_server", delay=0.5, times=1)
    api = PluginApi(transport, "compute1", timeout=0.2)
    with pytest.raises(ServerUnavailable):
        api.has_alive_neutron_server()
    assert heard.calls == [("has_alive_neutron_server", "ServerUnavailable")]
    assert heard.seconds[0] >= 0.2


def test_notifications_are_heard_delivered_invalid_or_failed(transport, double, heard):
    consumers = NotificationConsumers(transport, "compute1", Deletions())
    consumers.start()
    try:
        double.notify_port_delete("p1")
        double.cast(topics.PORT_DELETE, "port_delete", port_id=None)
        double.notify_agent_updated("compute1", False)
        for _ in range(3):
            assert heard.notified.acquire(timeout=5)
    finally:
        consumers.stop()
    assert sorted(heard.notifications, key=str) == [
        ("agent_updated", "handler"), ("port_delete", "invalid"), ("port_delete", None)]
    assert consumers.stats.snapshot()["dropped"] == {"port_delete": 1}  # as before


def test_another_transport_is_not_watched(conf, transport, double, heard):
    other = make_transport(conf, "fake://")
    try:
        assert observer_of(other) is None
        assert PluginApi(other, "compute1", timeout=2).has_alive_neutron_server() is True
    finally:
        other.cleanup()
    assert heard.calls == []


def test_what_cannot_be_watched_is_not():
    class Slotted:  # no __weakref__ (a test's stand-in client, say)
        __slots__ = ()

    assert observer_of(Slotted()) is None
    assert observer_of(None) is None

"""Trunks over RPC: the recorded pull/push payloads parse, the agent's trunk calls carry what
neutron's trunk drivers send, and broken pushes are dropped naming the field."""

from __future__ import annotations

import copy
import threading
from typing import Any

import oslo_messaging
import pytest

from dpagent.rpc import topics
from dpagent.rpc.consumers import NotificationConsumers
from dpagent.rpc.errors import InvalidReply
from dpagent.rpc.notifications import TRUNK_PUSHES, SubPortPushEndpoint, TrunkPushEndpoint
from dpagent.rpc.plugin_api import PluginApi
from dpagent.rpc.transport import rpc_client, rpc_server, stop_servers
from dpagent.rpc.trunks import SubPort, TrunkApi, parse_subport, parse_trunk
from dpagent.rpc.validation import PayloadError
from tests.unit.rpc.recordings import pushes, rpc_call

CTXT = {"request_id": "req-test"}
TRUNK_ID = "b9ef81c0-b153-4fd5-8f0b-c307c555ee22"
PARENT = "9c4bb65b-d0ee-4606-ae26-8393a2c7f661"


def test_the_recorded_trunk_pull_reply_parses():
    trunk = parse_trunk(rpc_call("21_")["response"])
    assert (trunk.id, trunk.port_id) == (TRUNK_ID, PARENT)
    assert trunk.sub_ports == (SubPort("8c7571a8-3c41-4a26-9dec-9284afa162ab", TRUNK_ID,
                                       "vlan", 10),)


def test_an_inherit_subport_parses():
    primitive = copy.deepcopy(rpc_call("21_")["response"]["versioned_object.data"]["sub_ports"][0])
    primitive["versioned_object.data"]["segmentation_type"] = "inherit"
    assert parse_subport(primitive).segmentation_type == "inherit"


@pytest.mark.parametrize("change, field", [
    (lambda d: d.update(segmentation_id=4095), "segmentation_id"),
    (lambda d: d.update(segmentation_id="10"), "segmentation_id"),
    (lambda d: d.update(segmentation_type="vxlan"), "segmentation_type"),
    (lambda d: d.pop("port_id"), "port_id"),
])
def test_a_bad_subport_is_refused_naming_the_field(change, field):
    primitive = copy.deepcopy(rpc_call("21_")["response"]["versioned_object.data"]["sub_ports"][0])
    change(primitive["versioned_object.data"])
    with pytest.raises(PayloadError) as raised:
        parse_subport(primitive, "resource_list[0]")
    assert raised.value.field.startswith("resource_list[0].versioned_object.data")
    assert field in raised.value.field


def test_an_object_of_another_type_is_refused():
    with pytest.raises(PayloadError, match="expected 'Trunk'"):
        parse_trunk(rpc_call("21_")["response"]["versioned_object.data"]["sub_ports"][0])


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, list[Any]]] = []
        self.event = threading.Event()

    def on_trunks(self, event_type, trunks):
        self.calls.append(("trunks", event_type, trunks))
        self.event.set()

    def on_subports(self, event_type, subports):
        self.calls.append(("subports", event_type, subports))
        self.event.set()


@pytest.mark.parametrize("recorded", pushes(), ids=lambda r: f"{r['topic']}-{r['phase']}")
def test_every_recorded_push_reaches_the_handler(recorded):
    recorder = _Recorder()
    endpoint_cls, fanout = TRUNK_PUSHES[recorded["topic"]]
    assert fanout
    getattr(endpoint_cls(recorder), recorded["method"])(CTXT, **recorded["kwargs"])
    ((kind, event, objects),) = recorder.calls
    assert event == recorded["kwargs"]["event_type"]
    assert len(objects) == len(recorded["kwargs"]["resource_list"])
    if kind == "subports":
        assert objects[0].trunk_id == TRUNK_ID and objects[0].segmentation_id in (10, 11)


def test_a_broken_push_is_dropped_and_counted(caplog):
    recorder = _Recorder()
    endpoint = SubPortPushEndpoint(recorder)
    (recorded,) = [p for p in pushes() if p["phase"] == "trunk_add_subport"]
    kwargs = copy.deepcopy(recorded["kwargs"])
    kwargs["resource_list"][0]["versioned_object.data"]["segmentation_id"] = 0
    endpoint.push(CTXT, **kwargs)
    endpoint.push(CTXT, resource_list=[], event_type="renamed")
    assert recorder.calls == []
    assert endpoint.stats.dropped["push SubPort"] == 2
    assert "resource_list[0].versioned_object.data.segmentation_id" in caplog.text
    TrunkPushEndpoint(recorder).push(CTXT, resource_list=[], event_type="deleted")
    assert recorder.calls == [("trunks", "deleted", [])]


def test_pushes_arrive_through_the_consumers(transport):
    recorder = _Recorder()
    consumers = NotificationConsumers(transport, "compute1", recorder, catalog=TRUNK_PUSHES)
    consumers.start()
    try:
        (recorded,) = [p for p in pushes() if p["phase"] == "trunk_remove_subport"]
        client = rpc_client(transport, topics.SUBPORT_PUSH, topics.RESOURCE_PUSH_VERSION, 2)
        client.prepare(fanout=True).cast(CTXT, "push", **recorded["kwargs"])
        assert recorder.event.wait(5)
        assert recorder.calls[0][:2] == ("subports", "deleted")
    finally:
        consumers.stop()


class _TrunkServer:
    """Answers pull (q-plugin) and the trunk topic with the recorded replies, recording
    what it was asked."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.pull_reply: Any = rpc_call("21_")["response"]

    class _Pull:
        target = oslo_messaging.Target(version="1.1")

        def __init__(self, server):
            self.server = server

        def pull(self, ctxt, **kwargs):
            self.server.received.append(("pull", kwargs))
            return self.server.pull_reply

    class _Ml2:
        target = oslo_messaging.Target(version="1.9")  # neutron's ML2 RpcCallbacks

        def __init__(self, server):
            self.server = server

        def get_ports_by_vnic_type_and_host(self, ctxt, **kwargs):
            self.server.received.append(("get_ports_by_vnic_type_and_host", kwargs))
            return rpc_call("09_")["response"]

    class _Trunk:
        target = oslo_messaging.Target(version="1.0", namespace="trunk")

        def __init__(self, server):
            self.server = server

        def update_subport_bindings(self, ctxt, **kwargs):
            self.server.received.append(("update_subport_bindings", kwargs))
            return rpc_call("22_")["response"]

        def update_trunk_status(self, ctxt, **kwargs):
            self.server.received.append(("update_trunk_status", kwargs))


@pytest.fixture
def trunk_server(transport):
    server = _TrunkServer()
    servers = [rpc_server(transport, oslo_messaging.Target(topic=topics.PLUGIN, server="s"),
                          [server._Pull(server), server._Ml2(server)]),
               rpc_server(transport, oslo_messaging.Target(topic="trunk", server="s"),
                          [server._Trunk(server)])]
    for s in servers:
        s.start()
    yield server
    stop_servers(servers)


def test_trunk_calls_send_what_neutrons_trunk_driver_sends(transport, trunk_server):
    api = TrunkApi(transport, "compute1", timeout=2)
    trunk = api.trunk_of(PARENT)
    assert trunk is not None and [s.segmentation_id for s in trunk.sub_ports] == [10]
    bound = api.update_subport_bindings(trunk.sub_ports)
    api.update_trunk_status(trunk.id, "ACTIVE")
    (pull, bindings, status) = trunk_server.received
    assert pull == ("pull", rpc_call("21_")["kwargs"])
    assert bindings == ("update_subport_bindings", rpc_call("22_")["kwargs"])
    assert status == ("update_trunk_status", rpc_call("23_")["kwargs"])
    assert TRUNK_ID in bound


def test_no_trunk_and_a_foreign_trunk(transport, trunk_server):
    api = TrunkApi(transport, "compute1", timeout=2)
    trunk_server.pull_reply = None
    assert api.trunk_of(PARENT) is None
    trunk_server.pull_reply = rpc_call("21_")["response"]
    with pytest.raises(InvalidReply, match="of port other"):
        api.trunk_of("other")


def test_ports_by_vnic_type(transport, conf, trunk_server):
    api = PluginApi.from_conf(transport, conf)
    ports = api.get_ports_by_vnic_type_and_host("direct")
    recorded = rpc_call("09_")
    assert len(ports) == len(recorded["response"])
    (asked,) = trunk_server.received
    assert asked == ("get_ports_by_vnic_type_and_host",
                     {"vnic_type": "direct", "host": "compute1"})

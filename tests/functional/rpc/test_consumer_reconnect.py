"""A consumer whose queue the broker lost (deleted here, as a partial broker failure does) is
reconnected by oslo.messaging without telling anyone; :mod:`dpagent.rpc.reconnects` notices,
once for a burst, and only then."""

from __future__ import annotations

import time
from typing import Any

import oslo_messaging
import pytest
from oslo_config import cfg

from dpagent.resources.control_plane import push_topic
from dpagent.rpc.consumers import NotificationConsumers
from dpagent.rpc.notifications import resource_push_catalog
from dpagent.rpc.reconnects import Coalesced
from dpagent.rpc.transport import make_transport
from tests.neutron.polling import wait_for


class Pushes:
    def __init__(self) -> None:
        self.got: list[tuple[str, str, list[Any]]] = []

    def on_resource_push(self, resource_type: str, event_type: str,
                         resource_list: list[Any]) -> None:
        self.got.append((resource_type, event_type, resource_list))


@pytest.fixture
def vhost(rabbit_broker):
    if rabbit_broker.external_url is not None:
        pytest.skip("needs the private broker, whose queues the test deletes")
    made = rabbit_broker.new_vhost()
    yield made
    made.delete()


def test_a_deleted_queue_is_declared_again_and_reported_once(rabbit_broker, vhost):
    transport = make_transport(cfg.ConfigOpts(), vhost.transport_url)
    topics = {kind: push_topic(kind) for kind in ("Port", "SecurityGroupRule")}
    handler, reasons = Pushes(), []
    told = Coalesced(reasons.append, settle=0.5)
    consumers = NotificationConsumers(transport, "host-1", handler,
                                      catalog=resource_push_catalog(topics),
                                      on_reconnect=told)
    consumers.start()
    try:
        assert not consumers.unwatched
        client = oslo_messaging.get_rpc_client(transport, oslo_messaging.Target(
            topic=topics["Port"], fanout=True, version="1.0"))
        client.cast({}, "push", resource_list=[], event_type="updated")
        wait_for(lambda: len(handler.got) == 1, what="the first push")
        time.sleep(1.0)
        assert reasons == []  # consuming is no reconnection

        queues = rabbit_broker.rabbitmqctl("list_queues", "-p", vhost.name, "name").split()
        fanout = [q for q in queues if q.startswith(f"{topics['Port']}_fanout_")]
        assert len(fanout) == 1, queues
        rabbit_broker.rabbitmqctl("delete_queue", "-p", vhost.name, fanout[0])
        wait_for(lambda: reasons, what="the reconnection reported")
        assert reasons == [f"the consumer of {topics['Port']} reconnected to the broker"]

        # consuming again, and no second report for it
        client.cast({}, "push", resource_list=[], event_type="updated")
        wait_for(lambda: len(handler.got) == 2, what="a push after the reconnection")
        time.sleep(1.0)
        assert len(reasons) == 1 and told.fired == 1
    finally:
        consumers.stop()
        told.cancel()
        transport.cleanup()

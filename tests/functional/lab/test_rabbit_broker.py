"""A real oslo.messaging RPC round trip over the test's own vhost."""

from __future__ import annotations

import threading

import oslo_messaging
import pytest
from oslo_config import cfg

from dpagent import conf as dpagent_conf


class _Echo:
    target = oslo_messaging.Target(version="1.0")

    def __init__(self) -> None:
        self.calls = 0

    def echo(self, context, value):
        self.calls += 1
        return {"echo": value, "thread": threading.current_thread().name}


@pytest.fixture
def rpc_conf():
    conf = cfg.ConfigOpts()
    dpagent_conf.register_opts(conf)  # includes groups oslo.messaging keeps on the global
    conf(args=[], default_config_files=[])
    return conf


def test_rpc_call_round_trips_through_the_broker(rpc_conf, transport_url):
    transport = oslo_messaging.get_rpc_transport(rpc_conf, url=transport_url)
    target = oslo_messaging.Target(topic="dpagent-lab-test", server="host-a")
    endpoint = _Echo()
    server = oslo_messaging.get_rpc_server(transport, target, [endpoint])
    server.start()
    try:
        client = oslo_messaging.get_rpc_client(
            transport, oslo_messaging.Target(topic="dpagent-lab-test", version="1.0"),
            timeout=10)
        reply = client.prepare(server="host-a").call({}, "echo", value=[1, "two"])
        assert reply["echo"] == [1, "two"]
        assert endpoint.calls == 1
    finally:
        server.stop()
        server.wait()
        transport.cleanup()


def test_each_test_gets_its_own_vhost(rabbit_broker, transport_url):
    if rabbit_broker.external_url is not None:
        pytest.skip("an external broker is shared as given")
    vhost = transport_url.rsplit("/", 1)[1]
    assert vhost.startswith("dpa-")
    assert vhost in rabbit_broker.rabbitmqctl("list_vhosts").split()

"""oslo.messaging set up on a private ConfigOpts, neutron's exchange, dpagent's errors."""

from __future__ import annotations

import time

import oslo_messaging
import pytest
from oslo_config import cfg

from dpagent.rpc import topics
from dpagent.rpc.errors import ServerUnavailable
from dpagent.rpc.plugin_api import PluginApi
from dpagent.rpc.transport import make_transport, request_context, rpc_client, rpc_server
from tests.unit.rpc.recordings import rpc_call


def test_a_bare_private_conf_can_carry_clients_and_servers():
    # oslo.messaging 18 reads [oslo_messaging_tracing] from the transport's conf but
    # registers it only on cfg.CONF: make_transport registers it on ours.
    conf = cfg.ConfigOpts()
    conf(args=[], default_config_files=[])
    transport = make_transport(conf, "fake://")
    try:
        rpc_client(transport, topics.PLUGIN, "1.0", timeout=1)
        server = rpc_server(transport, oslo_messaging.Target(topic="t", server="h"), [])
        assert server.executor_type == "threading"
        assert conf.oslo_messaging_tracing.tracing_enabled is False
    finally:
        transport.cleanup()


def test_messages_go_to_neutrons_exchange_unless_the_operator_says_otherwise(conf, tmp_path):
    assert conf.control_exchange == "neutron"
    transport = make_transport(conf, "fake://")
    assert transport._driver._default_exchange == "neutron"
    transport.cleanup()
    path = tmp_path / "dpagent.conf"
    path.write_text("[DEFAULT]\ncontrol_exchange = openstack\n")
    conf(args=["--config-file", str(path)], default_config_files=[])
    assert conf.control_exchange == "openstack"


def test_the_context_is_the_one_neutrons_agent_sends():
    recorded = rpc_call("01_")["context"]
    context = request_context()
    assert set(context) == set(recorded)
    assert context["is_admin"] is True and context["roles"] == recorded["roles"]
    assert context["request_id"].startswith("req-")
    assert context["request_id"] != request_context()["request_id"]


def test_an_endpoint_without_a_target_is_refused_before_it_can_fail_every_call(transport):
    class Endpoint:
        def port_update(self, ctxt, **kwargs):
            pass

    with pytest.raises(TypeError, match="declares no oslo_messaging.Target"):
        rpc_server(transport, oslo_messaging.Target(topic="t", server="h"), [Endpoint()])


def test_no_server_is_unavailable_after_the_timeout(transport):
    api = PluginApi(transport, "compute1", timeout=0.3)
    started = time.monotonic()
    with pytest.raises(ServerUnavailable) as caught:
        api.get_devices_details_list_and_failed_devices(["p1"])
    assert 0.25 < time.monotonic() - started < 2
    assert isinstance(caught.value, TimeoutError)  # what the agent core retries on


@pytest.mark.parametrize(("raised", "expected"), [
    (oslo_messaging.MessagingTimeout("t"), "ServerUnavailable"),
    (oslo_messaging.MessageDeliveryFailure("broker down"), "BrokerUnreachable"),
    (oslo_messaging.MessageUndeliverable(Exception(), "x", "k", {}), "ServerUnavailable"),
    (oslo_messaging.RemoteError("NeutronError", "boom"), "ServerError"),
    (ConnectionRefusedError("from the server"), "ServerError"),  # remote builtin, re-raised
])
def test_errors_of_a_call_become_dpagent_errors(raised, expected):
    from dpagent.rpc import transport as rpc_transport

    class Client:
        def call(self, ctxt, method, **kwargs):
            raise raised

    with pytest.raises(Exception) as caught:
        rpc_transport.call(Client(), "m")
    assert type(caught.value).__name__ == expected
    assert caught.value.__cause__ is raised

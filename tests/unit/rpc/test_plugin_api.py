"""PluginApi sends what neutron's agent sends and takes every recorded reply."""

from __future__ import annotations

import pytest

from dpagent.rpc import topics
from dpagent.rpc.errors import InvalidReply, ServerError, ServerUnavailable
from dpagent.rpc.plugin_api import DEVICE_LIST_CHUNK, PluginApi
from dpagent.rpc.transport import call, rpc_client
from tests.unit.rpc.recordings import rpc_call


@pytest.fixture
def api(transport, conf):
    return PluginApi.from_conf(transport, conf)


def _sent(double, method):
    (received,) = double.calls(method)
    return received


def _same_request(received, recorded):
    """Same topic, version and argument names as the stock agent's recorded call."""
    assert received.topic == recorded["topic"]
    assert received.version == recorded["version"]
    assert received.namespace == recorded["namespace"]
    assert set(received.kwargs) == set(recorded["kwargs"])
    assert received.context["is_admin"] is True


def test_has_alive_neutron_server(api, double):
    recorded = rpc_call("01_")
    double.inject("has_alive_neutron_server", reply=recorded["response"])
    assert api.has_alive_neutron_server() is True
    _same_request(_sent(double, "has_alive_neutron_server"), recorded)


@pytest.mark.parametrize("prefix", ["05_", "24_"])
def test_device_details_request_and_recorded_reply(api, double, prefix):
    recorded = rpc_call(prefix)
    double.inject("get_devices_details_list_and_failed_devices", reply=recorded["response"])
    result = api.get_devices_details_list_and_failed_devices(recorded["kwargs"]["devices"])
    assert result.devices == recorded["response"]["devices"] and result.failed == {}
    received = _sent(double, "get_devices_details_list_and_failed_devices")
    _same_request(received, recorded)
    assert received.kwargs["devices"] == recorded["kwargs"]["devices"]
    assert received.kwargs["host"] == "compute1"
    assert received.kwargs["agent_id"] == "dpagent-compute1"


def test_security_group_info_asks_for_the_1_3_form(api, double):
    recorded = rpc_call("10_")
    double.inject("security_group_info_for_devices", reply=recorded["response"])
    result = api.security_group_info_for_devices(recorded["kwargs"]["devices"])
    assert result.info == recorded["response"] and result.failed == {}
    received = _sent(double, "security_group_info_for_devices")
    _same_request(received, recorded)
    assert received.kwargs == recorded["kwargs"]  # devices and call_version='1.3'


def test_security_group_info_takes_the_1_2_reply_of_an_old_server(api, double):
    recorded = rpc_call("11_")
    double.inject("security_group_info_for_devices", reply=recorded["response"])
    result = api.security_group_info_for_devices(recorded["kwargs"]["devices"])
    assert result.failed == {} and "1.2 form" in result.warnings[0]


@pytest.mark.parametrize("prefix", ["26_", "28_"])
def test_update_device_list_request_and_recorded_reply(api, double, prefix):
    recorded = rpc_call(prefix)
    double.inject("update_device_list", reply=recorded["response"])
    result = api.update_device_list(recorded["kwargs"]["devices_up"],
                                    recorded["kwargs"]["devices_down"])
    assert result._asdict() == recorded["response"]
    received = _sent(double, "update_device_list")
    _same_request(received, recorded)
    assert received.kwargs["refresh_tunnels"] is False


def test_network_details_request_and_recorded_reply(api, double):
    recorded = rpc_call("08_")
    double.inject("get_network_details", reply=recorded["response"])
    network = api.get_network_details(recorded["kwargs"]["network"])
    assert network == recorded["response"]
    _same_request(_sent(double, "get_network_details"), recorded)


def test_update_device_list_goes_in_chunks_and_merges_the_replies(api, double):
    up = [f"up-{i}" for i in range(2 * DEVICE_LIST_CHUNK + 5)]
    down = ["down-1", "down-2", "down-3"]
    double.failing_devices.update({"up-3", "up-44", "down-2"})
    result = api.update_device_list(up, down)
    chunks = double.calls("update_device_list")
    assert [len(c.kwargs["devices_up"]) for c in chunks] == [20, 20, 5]
    assert [len(c.kwargs["devices_down"]) for c in chunks] == [3, 0, 0]
    assert result.devices_up == [d for d in up if d not in ("up-3", "up-44")]
    assert result.failed_devices_up == ["up-3", "up-44"]
    assert result.devices_down == [{"device": "down-1", "exists": True},
                                   {"device": "down-3", "exists": True}]
    assert result.failed_devices_down == ["down-2"]


def test_a_chunk_with_a_bad_reply_fails_its_devices_only(api, double, caplog):
    double.inject("update_device_list", reply={"devices_up": "all"}, times=1)
    up = [f"up-{i}" for i in range(DEVICE_LIST_CHUNK + 2)]
    result = api.update_device_list(up, [])
    assert result.failed_devices_up == up[:DEVICE_LIST_CHUNK]
    assert result.devices_up == up[DEVICE_LIST_CHUNK:]
    assert "update_device_list: invalid reply" in caplog.text


def test_nothing_to_send_sends_nothing(api, double):
    assert api.update_device_list([], []) == ([], [], [], [])
    assert api.get_devices_details_list_and_failed_devices([]) == ([], {})
    assert api.security_group_info_for_devices([]).info["devices"] == {}
    assert double.calls() == []


class NeutronError(Exception):
    pass


@pytest.mark.parametrize(("error", "exc_type"), [
    (NeutronError("port not found"), "NeutronError"),  # -> oslo RemoteError
    (KeyError("devices"), "KeyError"),  # a builtin comes back as the builtin
    (TimeoutError("db lock wait"), "TimeoutError"),  # ...and must not look like our timeout
])
def test_a_server_exception_is_a_server_error(api, double, error, exc_type):
    double.inject("get_devices_details_list_and_failed_devices", error=error)
    with pytest.raises(ServerError) as caught:
        api.get_devices_details_list_and_failed_devices(["p1"])
    assert caught.value.exc_type == exc_type
    assert not isinstance(caught.value, ServerUnavailable)


def test_a_call_above_the_endpoint_version_is_refused_as_on_neutron(transport, double):
    # q-reports-plugin has only the 1.4 agent endpoint
    client = rpc_client(transport, topics.REPORTS, "1.0", timeout=2)
    with pytest.raises(ServerError) as caught:
        call(client, "has_alive_neutron_server", version="1.5")
    assert caught.value.exc_type == "UnsupportedVersion"


def test_security_group_info_above_1_3_finds_no_method_as_on_neutron(transport, double):
    # q-plugin's 1.9 ML2 endpoint accepts the version but has no such method, and the
    # 1.3 security group endpoint does not accept 1.9: NoSuchMethod, not UnsupportedVersion
    client = rpc_client(transport, topics.PLUGIN, "1.0", timeout=2)
    with pytest.raises(ServerError) as caught:
        call(client, "security_group_info_for_devices", version="1.9", devices=["p1"])
    assert caught.value.exc_type == "NoSuchMethod"


def test_a_reply_that_is_not_a_boolean_is_invalid(api, double):
    double.inject("has_alive_neutron_server", reply="yes")
    with pytest.raises(InvalidReply):
        api.has_alive_neutron_server()


def test_network_details_of_the_wrong_shape_are_invalid(api, double):
    double.inject("get_network_details", reply={"name": "net1"})
    with pytest.raises(InvalidReply, match="reply.id: missing"):
        api.get_network_details("n1")

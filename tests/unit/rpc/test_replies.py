"""Replies the agent consumes: recorded ones pass whole; a bad entry fails only its device."""

from __future__ import annotations

import copy

import pytest

from dpagent.rpc.errors import InvalidReply
from dpagent.rpc.replies import check_device_details, check_security_group_info, is_bound
from tests.unit.rpc.recordings import rpc_call

DETAILS = rpc_call("05_")
SG_INFO = rpc_call("10_")
SG_INFO_12 = rpc_call("11_")


def _details(reply=None, requested=None):
    reply = copy.deepcopy(DETAILS["response"] if reply is None else reply)
    return check_device_details(reply, requested or DETAILS["kwargs"]["devices"])


# -- device details -------------------------------------------------------------------------

def test_recorded_device_details_pass_whole():
    result = _details()
    assert result.failed == {}
    assert result.devices == DETAILS["response"]["devices"]
    bound = [d["device"] for d in result.devices if is_bound(d)]
    assert len(bound) == 4  # the subport was not bound yet: {"device": id}
    assert {"device": "tap-does-not-exist"} in result.devices  # unknown: not a failure


def test_recorded_subport_details_pass():
    call = rpc_call("24_")
    result = check_device_details(call["response"], call["kwargs"]["devices"])
    assert result.failed == {} and result.devices[0]["segmentation_id"] == 150


def test_a_port_bound_elsewhere_is_valid_and_not_bound_here():
    result = _details({"devices": [{"device": "p1", "no_active_binding": True}],
                       "failed_devices": []}, ["p1"])
    assert result.failed == {} and not is_bound(result.devices[0])


@pytest.mark.parametrize(("change", "field"), [
    (lambda e: e.pop("mac_address"), "mac_address"),
    (lambda e: e.update(mac_address="fa:16:3e:zz:00:01"), "mac_address"),
    (lambda e: e.update(admin_state_up="yes"), "admin_state_up"),
    (lambda e: e.update(segmentation_id="104"), "segmentation_id"),
    (lambda e: e.update(segmentation_id=-1), "segmentation_id"),
    (lambda e: e.pop("network_type"), "network_type"),
    (lambda e: e.update(fixed_ips=[{"subnet_id": "s", "ip_address": "10.0.0"}]),
     "fixed_ips[0].ip_address"),
    (lambda e: e.update(fixed_ips="10.0.0.1"), "fixed_ips"),
    (lambda e: e.update(allowed_address_pairs=[{"ip_address": "10.0.0.5", "mac_address": 5}]),
     "allowed_address_pairs[0].mac_address"),
    (lambda e: e.update(port_security_enabled=None), "port_security_enabled"),
    (lambda e: e.update(profile=[]), "profile"),
    (lambda e: e.update(no_active_binding="true"), "no_active_binding"),
])
def test_a_bad_bound_entry_fails_only_its_device(change, field):
    reply = copy.deepcopy(DETAILS["response"])
    victim = reply["devices"][1]
    change(victim)
    result = _details(reply)
    assert list(result.failed) == [victim["device"]]
    assert f"devices[1].{field}:" in result.failed[victim["device"]]
    assert len(result.devices) == len(DETAILS["response"]["devices"]) - 1


def test_devices_the_server_failed_or_left_out_are_failed():
    reply = copy.deepcopy(DETAILS["response"])
    missing = reply["devices"].pop(0)["device"]
    reply["failed_devices"] = [reply["devices"][0]["device"]]
    result = _details(reply)
    assert result.failed == {missing: "the server sent no details for it",
                             reply["devices"][0]["device"]: "the server failed to get its details"}


def test_entries_without_an_id_or_not_asked_for_are_ignored(caplog):
    reply = {"devices": [{"network_id": "n"}, "garbage", {"device": "stranger"},
                         {"device": "p1"}], "failed_devices": []}
    result = _details(reply, ["p1"])
    assert result == ([{"device": "p1"}], {})
    assert "has no device id" in caplog.text and "not asked for" in caplog.text


@pytest.mark.parametrize("reply", [None, [], {"devices": []}, {"devices": {}, "failed_devices": []},
                                   {"devices": [], "failed_devices": "p1"}])
def test_a_reply_of_the_wrong_shape_is_invalid(reply):
    with pytest.raises(InvalidReply):
        check_device_details(reply, ["p1"])


# -- security group info ------------------------------------------------------------------

def _sg(reply=None, requested=None):
    reply = copy.deepcopy(SG_INFO["response"] if reply is None else reply)
    return check_security_group_info(reply, requested or SG_INFO["kwargs"]["devices"])


def test_recorded_security_group_info_passes_whole():
    result = _sg()
    assert result.failed == {} and result.warnings == []
    assert result.info == SG_INFO["response"]


def test_the_1_2_member_form_is_accepted_with_a_warning_as_ip_mac_pairs(caplog):
    result = check_security_group_info(copy.deepcopy(SG_INFO_12["response"]),
                                       SG_INFO_12["kwargs"]["devices"])
    assert result.failed == {}
    (group,) = result.info["sg_member_ips"].values()
    assert group["IPv4"][0] == ["10.10.0.41", None]
    assert group["IPv6"] == []
    assert "1.2 form" in result.warnings[0] and "ignored call_version" in caplog.text


def _users_of(sg_id: str) -> set[str]:
    devices = SG_INFO["response"]["devices"]
    return {p for p, d in devices.items() if sg_id in d["security_groups"]
            or sg_id in d["security_group_source_groups"]}


STATEFUL_SG = "619ddde8-9134-4a82-8825-23ed35a0df41"  # also the remote group of its rules
STATELESS_SG = "c891eb5c-f0bd-4c67-a263-c92973585ba4"


@pytest.mark.parametrize(("sg_id", "change", "field"), [
    (STATELESS_SG, lambda r: r[1].update(stateful="false"), "[1].stateful"),
    (STATELESS_SG, lambda r: r[0].pop("direction"), "[0].direction"),
    (STATELESS_SG, lambda r: r[0].update(direction="inbound"), "[0].direction"),
    (STATELESS_SG, lambda r: r[1].update(source_ip_prefix="10.10.0.0/33"),
     "[1].source_ip_prefix"),
    (STATELESS_SG, lambda r: r[1].update(source_ip_prefix="fe80::/64"), "[1].source_ip_prefix"),
    (STATEFUL_SG, lambda r: r[2].update(remote_group_id=7), "[2].remote_group_id"),
    (STATEFUL_SG, lambda r: r.append("allow all"), "[5]"),
])
def test_a_bad_rule_fails_the_devices_of_its_group_only(sg_id, change, field):
    reply = copy.deepcopy(SG_INFO["response"])
    change(reply["security_groups"][sg_id])
    result = _sg(reply)
    users = {p for p, d in reply["devices"].items() if sg_id in d["security_groups"]}
    assert set(result.failed) == users and users
    for reason in result.failed.values():
        assert f"security_groups[{sg_id}]{field}:" in reason
    assert set(result.info["devices"]) == set(reply["devices"]) - users
    assert sg_id not in result.info["security_groups"]


@pytest.mark.parametrize(("change", "field"), [
    (lambda m: m["IPv4"].append(["10.10.0.9"]), "IPv4[5]"),
    (lambda m: m["IPv4"].append(["10.10.0.9", "nope"]), "IPv4[5][1]"),
    (lambda m: m["IPv4"].append(["fe80::1", None]), "IPv4[5][0]"),
    (lambda m: m.update(IPv5=[]), "IPv5"),
    (lambda m: m.update(IPv4="10.10.0.9"), "IPv4"),
])
def test_bad_members_fail_the_devices_whose_rules_name_the_group(change, field):
    reply = copy.deepcopy(SG_INFO["response"])
    change(reply["sg_member_ips"][STATEFUL_SG])
    result = _sg(reply)
    assert set(result.failed) == _users_of(STATEFUL_SG)
    for reason in result.failed.values():
        assert f"sg_member_ips[{STATEFUL_SG}].{field}:" in reason


def test_members_with_a_mac_are_kept_as_pairs():
    reply = copy.deepcopy(SG_INFO["response"])
    reply["sg_member_ips"][STATEFUL_SG]["IPv4"].append(["10.10.0.200", "fa:16:3e:60:28:92"])
    result = _sg(reply)
    assert ["10.10.0.200", "fa:16:3e:60:28:92"] in result.info["sg_member_ips"][STATEFUL_SG]["IPv4"]
    assert result.failed == {}


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d.pop("mac_address"), "mac_address"),
    (lambda d: d.update(fixed_ips=["10.10.0.x"]), "fixed_ips[0]"),
    (lambda d: d.update(security_groups=[None]), "security_groups[0]"),
    (lambda d: d.update(port_security_enabled="on"), "port_security_enabled"),
    (lambda d: d["security_group_rules"][0].update(ethertype="IPv5"),
     "security_group_rules[0].ethertype"),
])
def test_a_bad_device_fails_alone(change, field):
    reply = copy.deepcopy(SG_INFO["response"])
    port_id = sorted(reply["devices"])[0]
    change(reply["devices"][port_id])
    result = _sg(reply)
    assert list(result.failed) == [port_id]
    assert f"devices[{port_id}].{field}:" in result.failed[port_id]
    assert len(result.info["devices"]) == len(reply["devices"]) - 1


def test_a_group_missing_from_the_reply_fails_its_devices():
    reply = copy.deepcopy(SG_INFO["response"])
    del reply["security_groups"][STATELESS_SG]
    result = _sg(reply)
    assert set(result.failed) == {p for p, d in reply["devices"].items()
                                  if STATELESS_SG in d["security_groups"]}
    assert "missing from the reply" in next(iter(result.failed.values()))


def test_a_port_without_port_security_is_not_failed_for_its_groups():
    reply = copy.deepcopy(SG_INFO["response"])
    unfiltered = [p for p, d in reply["devices"].items() if not d["port_security_enabled"]]
    assert unfiltered  # the recording has one (4182190b...)
    reply["devices"][unfiltered[0]]["security_groups"] = ["not-in-the-reply"]
    assert _sg(reply).failed == {}


def test_a_remote_group_without_members_is_taken_as_empty_with_a_warning():
    reply = copy.deepcopy(SG_INFO["response"])
    del reply["sg_member_ips"][STATEFUL_SG]
    result = _sg(reply)
    assert result.failed == {}
    assert result.info["sg_member_ips"][STATEFUL_SG] == {}
    assert result.warnings == [f"no sg_member_ips for remote group {STATEFUL_SG}: taken as empty"]


def test_requested_devices_left_out_are_failed():
    result = _sg(requested=[*SG_INFO["kwargs"]["devices"], "p-extra"])
    assert result.failed == {"p-extra": "the server sent no security group info for it"}


@pytest.mark.parametrize("reply", [
    None, [], {"devices": {}, "security_groups": {}},
    {"devices": [], "security_groups": {}, "sg_member_ips": {}},
    {"devices": {}, "security_groups": [], "sg_member_ips": {}},
])
def test_a_security_group_reply_of_the_wrong_shape_is_invalid(reply):
    with pytest.raises(InvalidReply):
        check_security_group_info(reply, ["p1"])

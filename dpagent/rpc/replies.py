"""Validation of the server's replies the agent consumes, one device at a time.

A reply whose overall shape is wrong raises :class:`~dpagent.rpc.errors.InvalidReply`.
Inside a well-formed reply, a bad entry fails only the devices it concerns: they are
listed in ``failed`` with the reason (naming the field), everything else is kept.

Shapes (CONTRACT.md 1.2 and 1.3):

* device details: bound ``{device, network_id, mac_address, admin_state_up,
  network_type, segmentation_id, physical_network, fixed_ips, ...}``, unbound/unknown
  ``{'device': id}``, bound to another host ``{'device': id, 'no_active_binding': True}``;
* SG_INFO 1.3: ``{'devices': {id: port}, 'security_groups': {sg: [rule]},
  'sg_member_ips': {sg: {'IPv4': [[ip, mac_or_None], ...]}}}``.  The 1.2 member form
  (plain IP strings, from a server ignoring ``call_version``) is accepted with a warning
  and turned into ``[ip, None]`` pairs, so consumers see one form only. The resource
  cache's answer adds ``member_networks`` and ``network_subnets`` (``resources.derive``);
  they are passed on when they are objects, judged in detail where they are used.

What a rule *means* -- protocols, port ranges, unknown rule fields, a port mixing
stateful and stateless groups -- is judged by ``flows.parse`` and the compiler, which
reject the group or port with messages of their own; checking it twice would let the
two judgements drift apart.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from dpagent.rpc.errors import InvalidReply
from dpagent.rpc.validation import (
    ETHERTYPES,
    PayloadError,
    expect_address_pairs,
    expect_bool,
    expect_fixed_ips,
    expect_ids,
    expect_int,
    expect_ip,
    expect_list,
    expect_mac,
    expect_mapping,
    expect_optional_int,
    expect_optional_str,
    expect_str,
    require,
)

LOG = logging.getLogger(__name__)

CACHE_ADDITIONS = ("member_networks", "network_subnets")
"""What the cache-derived SG info has beyond the server's reply (``resources.derive``)."""


class DeviceDetails(NamedTuple):
    """``devices``: valid entries in reply order; ``failed``: device id -> reason."""

    devices: list[dict[str, Any]]
    failed: dict[str, str]


class SecurityGroupInfo(NamedTuple):
    """``info``: the reply in SG_INFO 1.3 form, bad parts removed; ``failed``: id -> reason."""

    info: dict[str, Any]
    failed: dict[str, str]
    warnings: list[str]


def is_bound(entry: Mapping[str, Any]) -> bool:
    """True for an entry with a binding on this host (not ``{'device': id}``)."""
    return "network_id" in entry and not entry.get("no_active_binding")


# -- get_devices_details_list_and_failed_devices -------------------------------------------------

def _check_bound(entry: Mapping[str, Any], field: str) -> None:
    expect_str(require(entry, "network_id", field), f"{field}.network_id")
    expect_mac(require(entry, "mac_address", field), f"{field}.mac_address")
    expect_bool(require(entry, "admin_state_up", field), f"{field}.admin_state_up")
    expect_str(require(entry, "network_type", field), f"{field}.network_type")
    expect_optional_int(require(entry, "segmentation_id", field), f"{field}.segmentation_id",
                        low=0)
    expect_optional_str(require(entry, "physical_network", field), f"{field}.physical_network")
    expect_str(require(entry, "device_owner", field), f"{field}.device_owner", empty=True)
    expect_bool(require(entry, "port_security_enabled", field),
                f"{field}.port_security_enabled")
    expect_fixed_ips(require(entry, "fixed_ips", field), f"{field}.fixed_ips")
    expect_address_pairs(require(entry, "allowed_address_pairs", field),
                         f"{field}.allowed_address_pairs")
    if entry.get("port_id") is not None:
        expect_str(entry["port_id"], f"{field}.port_id")
    if entry.get("mtu") is not None:
        expect_int(entry["mtu"], f"{field}.mtu", low=68)
    if entry.get("profile") is not None:
        expect_mapping(entry["profile"], f"{field}.profile")
    if entry.get("security_groups") is not None:
        expect_ids(entry["security_groups"], f"{field}.security_groups")


def check_device_details(reply: Any, requested: Sequence[str]) -> DeviceDetails:
    """Validate a ``get_devices_details_list_and_failed_devices`` reply."""
    try:
        body = expect_mapping(reply, "reply")
        entries = expect_list(require(body, "devices", "reply"), "reply.devices")
        server_failed = expect_ids(require(body, "failed_devices", "reply"),
                                   "reply.failed_devices")
    except PayloadError as exc:
        raise InvalidReply(f"get_devices_details_list_and_failed_devices: {exc}") from exc
    wanted = set(requested)
    failed = {d: "the server failed to get its details" for d in server_failed}
    devices: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        field = f"devices[{i}]"
        device = entry.get("device") if isinstance(entry, Mapping) else None
        if not isinstance(device, str) or not device:
            LOG.warning("device details: %s has no device id; ignored: %r", field, entry)
            continue
        if device not in wanted:
            LOG.warning("device details: %s is for %s, which was not asked for", field, device)
            continue
        seen.add(device)
        try:
            if entry.get("no_active_binding") is not None:
                expect_bool(entry["no_active_binding"], f"{field}.no_active_binding")
            if is_bound(entry):
                _check_bound(entry, field)
        except PayloadError as exc:
            failed[device] = f"invalid details: {exc}"
            continue
        devices.append(dict(entry))
    for device in wanted - seen - failed.keys():
        failed[device] = "the server sent no details for it"
    devices = [d for d in devices if d["device"] not in failed]
    return DeviceDetails(devices, failed)


# -- security_group_info_for_devices --------------------------------------------------------

def _check_rule(value: Any, field: str) -> None:
    """The parts of a rule the agent needs to attribute it; flows.parse checks the rest."""
    rule = expect_mapping(value, field)
    direction = expect_str(require(rule, "direction", field), f"{field}.direction")
    if direction not in ("ingress", "egress"):
        raise PayloadError(f"{field}.direction", f"{direction!r} is neither ingress nor egress")
    ethertype = expect_str(require(rule, "ethertype", field), f"{field}.ethertype")
    if ethertype not in ETHERTYPES:
        raise PayloadError(f"{field}.ethertype", f"{ethertype!r} is neither IPv4 nor IPv6")
    if "stateful" in rule:
        expect_bool(rule["stateful"], f"{field}.stateful")
    for key in ("remote_group_id", "remote_address_group_id"):
        if rule.get(key) is not None:
            expect_str(rule[key], f"{field}.{key}")
    for key in ("source_ip_prefix", "dest_ip_prefix", "remote_ip_prefix"):
        if rule.get(key) is not None:
            expect_ip(rule[key], f"{field}.{key}", ethertype)


def _check_group(sg_id: str, rules: Any) -> list[Any]:
    field = f"security_groups[{sg_id}]"
    for i, rule in enumerate(expect_list(rules, field)):
        _check_rule(rule, f"{field}[{i}]")
    return list(rules)


def _check_members(group_id: str, by_ethertype: Any, legacy: list[str]
                   ) -> dict[str, list[list[str | None]]]:
    field = f"sg_member_ips[{group_id}]"
    normalised: dict[str, list[list[str | None]]] = {}
    for ethertype, entries in expect_mapping(by_ethertype, field).items():
        where = f"{field}.{ethertype}"
        if ethertype not in ETHERTYPES:
            raise PayloadError(where, "ethertype is neither IPv4 nor IPv6")
        pairs: list[list[str | None]] = []
        for i, entry in enumerate(expect_list(entries, where)):
            if isinstance(entry, str):  # 1.2: a plain address
                legacy.append(group_id)
                pairs.append([expect_ip(entry, f"{where}[{i}]", ethertype), None])
                continue
            pair = expect_list(entry, f"{where}[{i}]")
            if len(pair) != 2:
                raise PayloadError(f"{where}[{i}]", f"expected [ip, mac], got {pair!r}")
            ip = expect_ip(pair[0], f"{where}[{i}][0]", ethertype)
            mac = None if pair[1] is None else expect_mac(pair[1], f"{where}[{i}][1]")
            pairs.append([ip, mac])
        normalised[ethertype] = pairs
    return normalised


def _check_device(port_id: str, device: Any) -> dict[str, Any]:
    field = f"devices[{port_id}]"
    port = expect_mapping(device, field)
    expect_mac(require(port, "mac_address", field), f"{field}.mac_address")
    expect_fixed_ips(port.get("fixed_ips", []), f"{field}.fixed_ips", plain=True)
    expect_address_pairs(port.get("allowed_address_pairs", []), f"{field}.allowed_address_pairs")
    expect_ids(port.get("security_groups", []), f"{field}.security_groups")
    if "port_security_enabled" in port:
        expect_bool(port["port_security_enabled"], f"{field}.port_security_enabled")
    expect_ids(port.get("security_group_source_groups", []),
               f"{field}.security_group_source_groups")
    for i, rule in enumerate(expect_list(port.get("security_group_rules", []),
                                         f"{field}.security_group_rules")):
        _check_rule(rule, f"{field}.security_group_rules[{i}]")
    return dict(port)


def _remote_groups(rules: Iterable[Any]) -> set[str]:
    return {r["remote_group_id"] for r in rules
            if isinstance(r, Mapping) and r.get("remote_group_id")}


def check_security_group_info(reply: Any, requested: Sequence[str]) -> SecurityGroupInfo:
    """Validate a ``security_group_info_for_devices`` reply (1.3 form, or 1.2 members)."""
    try:
        body = expect_mapping(reply, "reply")
        raw_devices = expect_mapping(require(body, "devices", "reply"), "reply.devices")
        raw_groups = expect_mapping(require(body, "security_groups", "reply"),
                                    "reply.security_groups")
        raw_members = expect_mapping(require(body, "sg_member_ips", "reply"),
                                     "reply.sg_member_ips")
    except PayloadError as exc:
        raise InvalidReply(f"security_group_info_for_devices: {exc}") from exc
    warnings: list[str] = []
    groups: dict[str, list[Any]] = {}
    bad_groups: dict[str, str] = {}
    for sg_id, rules in raw_groups.items():
        try:
            groups[sg_id] = _check_group(sg_id, rules)
        except PayloadError as exc:
            bad_groups[sg_id] = str(exc)
    members: dict[str, dict[str, list[list[str | None]]]] = {}
    bad_members: dict[str, str] = {}
    legacy: list[str] = []
    for group_id, by_ethertype in raw_members.items():
        try:
            members[group_id] = _check_members(group_id, by_ethertype, legacy)
        except PayloadError as exc:
            bad_members[group_id] = str(exc)
    if legacy:
        warnings.append("sg_member_ips in the 1.2 form (plain IPs) for "
                        f"{', '.join(sorted(set(legacy)))}: the server ignored call_version")
    devices: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    for port_id, raw in raw_devices.items():
        try:
            device = _check_device(port_id, raw)
        except PayloadError as exc:
            failed[port_id] = f"invalid security group info: {exc}"
            continue
        reason = _device_problem(device, groups, bad_groups, bad_members)
        if reason:
            failed[port_id] = reason
        else:
            devices[port_id] = device
    for port_id in set(requested) - raw_devices.keys():
        failed[port_id] = "the server sent no security group info for it"
    for group_id in sorted(_remote_groups_of(devices.values(), groups) - members.keys()):
        # neutron lists every remote group its rules name, even without members
        warnings.append(f"no sg_member_ips for remote group {group_id}: taken as empty")
        members[group_id] = {}
    for warning in warnings:
        LOG.warning("security group info: %s", warning)
    for port_id, reason in sorted(failed.items()):
        LOG.warning("security group info: device %s failed: %s", port_id, reason)
    info = {"devices": devices, "security_groups": groups, "sg_member_ips": members}
    for key in CACHE_ADDITIONS:
        if key in body:
            try:
                info[key] = dict(expect_mapping(body[key], f"reply.{key}"))
            except PayloadError as exc:
                LOG.warning("security group info: %s ignored: %s", key, exc)
    return SecurityGroupInfo(info, failed, warnings)


def _remote_groups_of(devices: Iterable[Mapping[str, Any]], groups: Mapping[str, Any]
                      ) -> set[str]:
    remote: set[str] = set()
    for device in devices:
        if device.get("port_security_enabled", True):
            remote.update(device.get("security_group_source_groups", []))
            for sg in device.get("security_groups", []):
                remote |= _remote_groups(groups.get(sg, []))
    return remote


def _device_problem(device: Mapping[str, Any], groups: Mapping[str, Any],
                    bad_groups: Mapping[str, str], bad_members: Mapping[str, str]) -> str | None:
    if not device.get("port_security_enabled", True):
        return None  # not filtered: its groups do not matter
    for sg in device.get("security_groups", []):
        if sg in bad_groups:
            return f"security group {sg} is invalid: {bad_groups[sg]}"
        if sg not in groups:
            return f"security group {sg} is missing from the reply"
    for group_id in sorted(_remote_groups_of([device], groups)):
        if group_id in bad_members:
            return f"members of remote group {group_id} are invalid: {bad_members[group_id]}"
    return None

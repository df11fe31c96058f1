"""neutron's versioned objects as the agent receives them (``bulk_pull`` replies and ``push``
casts, CONTRACT.md 1.5 and 2.2), parsed into small immutable records of the fields the agent
uses. A primitive that is not right raises :class:`~dpagent.rpc.validation.PayloadError` naming
the field, so the caller can refuse that one object and keep the rest.

Versions: Port 1.11, Network 1.3, Subnet 1.2, SecurityGroup 1.6 (rules embedded),
SecurityGroupRule 1.3, AddressGroup 1.2 -- what neutron 29 pushes to an agent reporting them.
A deleted object may come with only some fields (a Port: ``id`` and ``security_group_ids:
null``): :func:`object_id` reads only what a delete needs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from dpagent.rpc.validation import (
    ETHERTYPES,
    PayloadError,
    expect_bool,
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

VERSIONS: Final = {"Port": "1.11", "Network": "1.3", "Subnet": "1.2", "SecurityGroup": "1.6",
                   "SecurityGroupRule": "1.3", "AddressGroup": "1.2"}
"""The object versions the agent asks for and reports in ``resource_versions``."""


@dataclass(frozen=True, slots=True)
class Segment:
    network_type: str
    physical_network: str | None
    segmentation_id: int | None


@dataclass(frozen=True, slots=True)
class Binding:
    host: str
    status: str
    vif_type: str
    vnic_type: str
    profile: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class PortObject:
    id: str
    revision: int
    network_id: str
    mac_address: str
    fixed_ips: tuple[tuple[str, str], ...]
    """(ip address, subnet id)"""
    address_pairs: tuple[tuple[str, str | None], ...]
    """(ip address or network, mac or None: the port's)"""
    security_group_ids: frozenset[str]
    admin_state_up: bool
    status: str
    device_owner: str
    device_id: str
    port_security_enabled: bool
    bindings: tuple[Binding, ...]
    levels: tuple[tuple[str, int, Segment | None], ...]
    """binding levels: (host, level, segment)"""
    qos_policy_id: str | None = None
    name: str = ""
    """For operators' words only (``dpagent-ctl trace``); nothing is decided by it."""

    def active_binding(self) -> Binding | None:
        return next((b for b in self.bindings if b.status == "ACTIVE"), None)

    def segment_on(self, host: str) -> Segment | None:
        """The segment the port is bound to on ``host``: its deepest binding level there."""
        levels = sorted((lv for lv in self.levels if lv[0] == host), key=lambda lv: lv[1])
        return levels[-1][2] if levels else None


@dataclass(frozen=True, slots=True)
class NetworkObject:
    id: str
    revision: int
    mtu: int | None
    segments: tuple[Segment, ...]
    qos_policy_id: str | None = None


@dataclass(frozen=True, slots=True)
class SubnetObject:
    id: str
    revision: int
    network_id: str
    cidr: str


@dataclass(frozen=True, slots=True)
class RuleObject:
    id: str
    revision: int
    security_group_id: str
    direction: str
    ethertype: str
    protocol: str | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    normalized_cidr: str | None = None
    remote_group_id: str | None = None
    remote_address_group_id: str | None = None


@dataclass(frozen=True, slots=True)
class SecurityGroupObject:
    id: str
    revision: int
    stateful: bool
    rules: tuple[RuleObject, ...]
    name: str = ""
    """For operators' words only (``dpagent-ctl trace``)."""


@dataclass(frozen=True, slots=True)
class AddressGroupObject:
    id: str
    revision: int
    addresses: tuple[str, ...]


ResourceObject = (PortObject | NetworkObject | SubnetObject | SecurityGroupObject
                  | RuleObject | AddressGroupObject)


def data_of(primitive: Any, field: str, name: str | None = None) -> tuple[str, Mapping[str, Any]]:
    """(the object's type name, its ``versioned_object.data``)."""
    body = expect_mapping(primitive, field)
    found = expect_str(require(body, "versioned_object.name", field),
                       f"{field}.versioned_object.name")
    if name is not None and found != name:
        raise PayloadError(f"{field}.versioned_object.name", f"expected {name!r}, got {found!r}")
    data = expect_mapping(require(body, "versioned_object.data", field),
                          f"{field}.versioned_object.data")
    return found, data


def _revision(data: Mapping[str, Any], where: str) -> int:
    return expect_int(data.get("revision_number", 0), f"{where}.revision_number", low=0)


def _segment(value: Any, where: str) -> Segment:
    _, data = data_of(value, where, "NetworkSegment")
    w = f"{where}.versioned_object.data"
    return Segment(expect_str(require(data, "network_type", w), f"{w}.network_type"),
                   expect_optional_str(data.get("physical_network"), f"{w}.physical_network"),
                   expect_optional_int(data.get("segmentation_id"), f"{w}.segmentation_id",
                                       low=0))


def _json_field(value: Any, where: str) -> Mapping[str, Any]:
    """PortBinding's profile: a JSON string (or, from a double, already a mapping)."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise PayloadError(where, f"{value!r} is not JSON") from None
    return dict(expect_mapping(value, where))


def parse_port(primitive: Any, field: str = "Port") -> PortObject:
    _, data = data_of(primitive, field, "Port")
    w = f"{field}.versioned_object.data"
    fixed = []
    for i, item in enumerate(expect_list(data.get("fixed_ips") or [], f"{w}.fixed_ips")):
        where = f"{w}.fixed_ips[{i}]"
        _, ip = data_of(item, where, "IPAllocation")
        d = f"{where}.versioned_object.data"
        fixed.append((expect_ip(require(ip, "ip_address", d), f"{d}.ip_address"),
                      expect_str(require(ip, "subnet_id", d), f"{d}.subnet_id")))
    pairs = []
    for i, item in enumerate(expect_list(data.get("allowed_address_pairs") or [],
                                         f"{w}.allowed_address_pairs")):
        where = f"{w}.allowed_address_pairs[{i}]"
        _, pair = data_of(item, where, "AllowedAddressPair")
        d = f"{where}.versioned_object.data"
        mac = pair.get("mac_address")
        pairs.append((expect_ip(require(pair, "ip_address", d), f"{d}.ip_address"),
                      None if mac is None else expect_mac(mac, f"{d}.mac_address")))
    bindings = []
    for i, item in enumerate(expect_list(data.get("bindings") or [], f"{w}.bindings")):
        where = f"{w}.bindings[{i}]"
        _, b = data_of(item, where, "PortBinding")
        d = f"{where}.versioned_object.data"
        bindings.append(Binding(
            expect_str(require(b, "host", d), f"{d}.host", empty=True),
            expect_str(require(b, "status", d), f"{d}.status"),
            expect_str(b.get("vif_type") or "unbound", f"{d}.vif_type"),
            expect_str(b.get("vnic_type") or "normal", f"{d}.vnic_type"),
            _json_field(b.get("profile"), f"{d}.profile")))
    levels = []
    for i, item in enumerate(expect_list(data.get("binding_levels") or [],
                                         f"{w}.binding_levels")):
        where = f"{w}.binding_levels[{i}]"
        _, lv = data_of(item, where, "PortBindingLevel")
        d = f"{where}.versioned_object.data"
        segment = lv.get("segment")
        levels.append((expect_str(require(lv, "host", d), f"{d}.host", empty=True),
                       expect_int(lv.get("level", 0), f"{d}.level", low=0),
                       None if segment is None else _segment(segment, f"{d}.segment")))
    security = data.get("security")
    port_security = True
    if security is not None:
        _, sec = data_of(security, f"{w}.security", "PortSecurity")
        port_security = expect_bool(sec.get("port_security_enabled", True),
                                    f"{w}.security.versioned_object.data.port_security_enabled")
    return PortObject(
        id=expect_str(require(data, "id", w), f"{w}.id"),
        revision=_revision(data, w),
        network_id=expect_str(require(data, "network_id", w), f"{w}.network_id"),
        mac_address=expect_mac(require(data, "mac_address", w), f"{w}.mac_address"),
        fixed_ips=tuple(fixed), address_pairs=tuple(pairs),
        security_group_ids=frozenset(expect_ids(data.get("security_group_ids") or [],
                                                f"{w}.security_group_ids")),
        admin_state_up=expect_bool(data.get("admin_state_up", True), f"{w}.admin_state_up"),
        status=expect_str(data.get("status") or "DOWN", f"{w}.status"),
        device_owner=expect_str(data.get("device_owner") or "", f"{w}.device_owner",
                                empty=True),
        device_id=expect_str(data.get("device_id") or "", f"{w}.device_id", empty=True),
        port_security_enabled=port_security, bindings=tuple(bindings), levels=tuple(levels),
        qos_policy_id=expect_optional_str(data.get("qos_policy_id"), f"{w}.qos_policy_id"),
        name=_name(data))


def parse_network(primitive: Any, field: str = "Network") -> NetworkObject:
    _, data = data_of(primitive, field, "Network")
    w = f"{field}.versioned_object.data"
    segments = tuple(_segment(s, f"{w}.segments[{i}]")
                     for i, s in enumerate(expect_list(data.get("segments") or [],
                                                       f"{w}.segments")))
    return NetworkObject(expect_str(require(data, "id", w), f"{w}.id"), _revision(data, w),
                         expect_optional_int(data.get("mtu"), f"{w}.mtu", low=0), segments,
                         expect_optional_str(data.get("qos_policy_id"), f"{w}.qos_policy_id"))


def parse_subnet(primitive: Any, field: str = "Subnet") -> SubnetObject:
    _, data = data_of(primitive, field, "Subnet")
    w = f"{field}.versioned_object.data"
    return SubnetObject(expect_str(require(data, "id", w), f"{w}.id"), _revision(data, w),
                        expect_str(require(data, "network_id", w), f"{w}.network_id"),
                        expect_ip(require(data, "cidr", w), f"{w}.cidr"))


def _rule(data: Mapping[str, Any], w: str) -> RuleObject:
    direction = expect_str(require(data, "direction", w), f"{w}.direction")
    if direction not in ("ingress", "egress"):
        raise PayloadError(f"{w}.direction", f"{direction!r} is neither ingress nor egress")
    ethertype = expect_str(require(data, "ethertype", w), f"{w}.ethertype")
    if ethertype not in ETHERTYPES:
        raise PayloadError(f"{w}.ethertype", f"{ethertype!r} is neither IPv4 nor IPv6")
    protocol = data.get("protocol")
    if protocol is not None and not isinstance(protocol, str | int):
        raise PayloadError(f"{w}.protocol", f"expected a name or a number, got {protocol!r}")
    return RuleObject(
        expect_str(require(data, "id", w), f"{w}.id"), _revision(data, w),
        expect_str(require(data, "security_group_id", w), f"{w}.security_group_id"),
        direction, ethertype, None if protocol is None else str(protocol),
        expect_optional_int(data.get("port_range_min"), f"{w}.port_range_min", low=0),
        expect_optional_int(data.get("port_range_max"), f"{w}.port_range_max", low=0),
        None if data.get("remote_ip_prefix") is None else expect_ip(
            data["remote_ip_prefix"], f"{w}.remote_ip_prefix", ethertype),
        None if data.get("normalized_cidr") is None else expect_ip(
            data["normalized_cidr"], f"{w}.normalized_cidr", ethertype),
        expect_optional_str(data.get("remote_group_id"), f"{w}.remote_group_id"),
        expect_optional_str(data.get("remote_address_group_id"),
                            f"{w}.remote_address_group_id"))


def parse_rule(primitive: Any, field: str = "SecurityGroupRule") -> RuleObject:
    _, data = data_of(primitive, field, "SecurityGroupRule")
    return _rule(data, f"{field}.versioned_object.data")


def parse_security_group(primitive: Any, field: str = "SecurityGroup") -> SecurityGroupObject:
    _, data = data_of(primitive, field, "SecurityGroup")
    w = f"{field}.versioned_object.data"
    rules = tuple(parse_rule(r, f"{w}.rules[{i}]")
                  for i, r in enumerate(expect_list(data.get("rules") or [], f"{w}.rules")))
    return SecurityGroupObject(expect_str(require(data, "id", w), f"{w}.id"),
                               _revision(data, w),
                               expect_bool(data.get("stateful", True), f"{w}.stateful"), rules,
                               _name(data))


def _name(data: Any) -> str:
    """A resource's name, if it has a usable one: it is only ever shown, never checked."""
    name = data.get("name")
    return name if isinstance(name, str) else ""


def parse_address_group(primitive: Any, field: str = "AddressGroup") -> AddressGroupObject:
    _, data = data_of(primitive, field, "AddressGroup")
    w = f"{field}.versioned_object.data"
    addresses = []
    for i, item in enumerate(expect_list(data.get("addresses") or [], f"{w}.addresses")):
        where = f"{w}.addresses[{i}]"
        _, assoc = data_of(item, where, "AddressAssociation")
        addresses.append(expect_ip(require(assoc, "address", f"{where}.versioned_object.data"),
                                   f"{where}.versioned_object.data.address"))
    return AddressGroupObject(expect_str(require(data, "id", w), f"{w}.id"), _revision(data, w),
                              tuple(sorted(set(addresses))))


PARSERS: Final[dict[str, Callable[[Any, str], ResourceObject]]] = {
    "Port": parse_port, "Network": parse_network, "Subnet": parse_subnet,
    "SecurityGroup": parse_security_group, "SecurityGroupRule": parse_rule,
    "AddressGroup": parse_address_group,
}


def object_id(primitive: Any, field: str) -> tuple[str, str, int | None]:
    """(type, id, revision or None) of a possibly partial primitive (a deleted object)."""
    name, data = data_of(primitive, field)
    w = f"{field}.versioned_object.data"
    revision = data.get("revision_number")
    return (name, expect_str(require(data, "id", w), f"{w}.id"),
            None if revision is None else expect_int(revision, f"{w}.revision_number", low=0))

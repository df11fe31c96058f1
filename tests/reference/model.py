"""The reference reading of the compiler's input, written from docs/security-groups.md alone.

This module shares no code with ``flows/`` on purpose: the differential test is only worth
something if the two readings of the contract were made independently. It turns the
``security_group_info_for_devices`` reply (plus the agent's ``ofport``/``local_vlan``) into plain
values, and records, per port, the first input error the contract names ("Input errors"): a port
in error is denied everything.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: "a name (...) or a number 0-255": the names the contract lists, with their IANA numbers.
PROTOCOL_NAMES = {
    "tcp": 6, "udp": 17, "icmp": 1, "ipv6-icmp": 58, "icmpv6": 58, "sctp": 132,
    "ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "igmp": 2, "ipip": 4,
    "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-nonxt": 59, "ipv6-opts": 60, "ipv6-route": 43,
    "ospf": 89, "pgm": 113, "rsvp": 46, "udplite": 136, "vrrp": 112,
}
#: Protocols whose ports a rule may restrict.
PORT_PROTOCOLS = frozenset({6, 17, 132})
#: Protocols with ports the switch cannot match: a port range makes the rule match nothing.
UNMATCHABLE_PORT_PROTOCOLS = frozenset({33, 136})
ICMP_BY_ETHERTYPE = {"IPv4": 1, "IPv6": 58}
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


class InputError(ValueError):
    """One thing the contract calls an input error."""


@dataclass(frozen=True)
class RefRule:
    """One security-group rule, decoded. ``None`` means "any" for every field."""

    origin: str
    direction: str
    ethertype: str
    stateful: bool
    protocol: int | None
    dst_ports: tuple[int, int] | None
    src_ports: tuple[int, int] | None
    icmp_type: int | None
    icmp_code: int | None
    prefix: IPNetwork | None
    remote_group: str | None
    matches_nothing: bool = False

    @property
    def is_icmp(self) -> bool:
        return self.protocol == ICMP_BY_ETHERTYPE[self.ethertype]


@dataclass
class RefPort:
    port_id: str
    port_security: bool = True
    mac: str = ""
    ofport: int | None = None
    local_vlan: int | None = None
    network_id: str | None = None
    #: allowed (MAC, address-or-CIDR) sources, link-locals included
    sources: list[tuple[str, IPNetwork]] = field(default_factory=list)
    rules: list[RefRule] = field(default_factory=list)
    stateful: bool = True
    error: str | None = None

    @property
    def macs(self) -> set[str]:
        return {mac for mac, _ in self.sources} | {self.mac}

    def own_ipv6(self) -> list[IPNetwork]:
        return [net for _, net in self.sources if net.version == 6]


def parse_ports(sg_info: Mapping[str, Any]) -> dict[str, RefPort]:
    """Every device of the reply, each either usable or carrying its ``error``."""
    groups = sg_info.get("security_groups") or {}
    decoded: dict[str, list[RefRule] | str] = {}
    ports = {}
    for port_id, device in (sg_info.get("devices") or {}).items():
        port = RefPort(port_id)
        try:
            _fill_port(port, device, groups, decoded)
        except InputError as exc:
            port.error = str(exc)
        ports[port_id] = port
    return ports


def member_networks(sg_info: Mapping[str, Any], group_id: str, ethertype: str) -> list[IPNetwork]:
    """The addresses of remote group/address group ``group_id``; a missing group has none."""
    entries = ((sg_info.get("sg_member_ips") or {}).get(group_id) or {}).get(ethertype) or []
    return [ipaddress.ip_network(entry[0], strict=False) for entry in entries]


def _fill_port(port: RefPort, device: Mapping[str, Any], groups: Mapping[str, Any],
               decoded: dict[str, list[RefRule] | str]) -> None:
    port.port_security = device.get("port_security_enabled", True) is not False
    port.ofport = _int(device.get("ofport"), "ofport", 1, 2**31)
    port.local_vlan = _int(device.get("local_vlan"), "local_vlan", 1, 4094)
    port.network_id = device.get("network_id")
    port.mac = _mac(device.get("mac_address"))
    for fixed in device.get("fixed_ips") or []:
        address = fixed.get("ip_address") if isinstance(fixed, Mapping) else fixed
        port.sources.append((port.mac, _network(address, "fixed IP", host_only=True)))
    for pair in device.get("allowed_address_pairs") or []:
        mac = _mac(pair["mac_address"]) if pair.get("mac_address") else port.mac
        port.sources.append((mac, _network(pair.get("ip_address"), "address pair")))
    for mac in sorted({mac for mac, _ in port.sources} | {port.mac}):
        port.sources.append((mac, ipaddress.ip_network(link_local(mac))))
    if not port.port_security:
        return
    for group_id in device.get("security_groups") or []:
        if group_id not in groups:
            raise InputError(f"security group {group_id} is absent from security_groups")
        if group_id not in decoded:
            decoded[group_id] = _decode_group(group_id, groups[group_id])
        rules = decoded[group_id]
        if isinstance(rules, str):
            raise InputError(rules)
        port.rules.extend(rules)
    kinds = {rule.stateful for rule in port.rules}
    if len(kinds) > 1:
        raise InputError("the port mixes stateful and stateless rules")
    port.stateful = kinds != {False}


def link_local(mac: str) -> str:
    """The EUI-64 IPv6 link-local address of ``mac``."""
    octets = [int(part, 16) for part in mac.split(":")]
    octets[0] ^= 0x02
    eui = octets[:3] + [0xFF, 0xFE] + octets[3:]
    words = [f"{eui[i] << 8 | eui[i + 1]:x}" for i in range(0, 8, 2)]
    return str(ipaddress.IPv6Address("fe80::" + ":".join(words)))


def _decode_group(group_id: str, rules: Any) -> list[RefRule] | str:
    out = []
    for index, rule in enumerate(rules or []):
        try:
            out.append(decode_rule(rule, f"{group_id}[{index}]"))
        except InputError as exc:
            return f"security group {group_id} rule #{index}: {exc}"
    return out


def decode_rule(rule: Mapping[str, Any], origin: str) -> RefRule:
    direction = rule.get("direction")
    if direction not in ("ingress", "egress"):
        raise InputError(f"unknown direction {direction!r}")
    ethertype = rule.get("ethertype")
    if ethertype not in ("IPv4", "IPv6"):
        raise InputError(f"unknown ethertype {ethertype!r}")
    protocol = _protocol(rule.get("protocol"), ethertype)
    port_min, port_max = rule.get("port_range_min"), rule.get("port_range_max")
    src_min, src_max = rule.get("source_port_range_min"), rule.get("source_port_range_max")
    for name, value in (("port_range_min", port_min), ("port_range_max", port_max),
                        ("source_port_range_min", src_min), ("source_port_range_max", src_max)):
        if value is not None:
            _int(value, name, 0, 65535)
    dst_ports = src_ports = icmp_type = icmp_code = None
    matches_nothing = False
    has_ranges = any(v is not None for v in (port_min, port_max, src_min, src_max))
    if protocol is not None and protocol == ICMP_BY_ETHERTYPE[ethertype]:
        if src_min is not None or src_max is not None:
            raise InputError("a source port range on ICMP")
        if port_max is not None and port_min is None:
            raise InputError("an ICMP code without a type")
        if port_min is not None and port_min > 255:
            raise InputError("ICMP type out of 0-255")
        if port_max is not None and port_max > 255:
            raise InputError("ICMP code out of 0-255")
        icmp_type, icmp_code = port_min, port_max
    elif protocol in PORT_PROTOCOLS or protocol in UNMATCHABLE_PORT_PROTOCOLS:
        dst_ports = _range(port_min, port_max, "port_range")
        src_ports = _range(src_min, src_max, "source_port_range")
        # a full range restricts nothing, so only a real range on these matches nothing
        matches_nothing = protocol in UNMATCHABLE_PORT_PROTOCOLS and (
            dst_ports is not None or src_ports is not None)
    elif has_ranges:
        raise InputError(f"a port range on protocol {protocol}, which has no ports")
    prefix_key = "source_ip_prefix" if direction == "ingress" else "dest_ip_prefix"
    prefix = None
    if rule.get(prefix_key) is not None:
        prefix = _network(rule[prefix_key], prefix_key)
        if prefix.version != (4 if ethertype == "IPv4" else 6):
            raise InputError(f"{prefix_key} {prefix} is not an {ethertype} prefix")
    remote = rule.get("remote_group_id") or rule.get("remote_address_group_id")
    return RefRule(origin, direction, ethertype, rule.get("stateful", True) is not False,
                   protocol, dst_ports, src_ports, icmp_type, icmp_code, prefix, remote,
                   matches_nothing)


def _protocol(value: Any, ethertype: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise InputError(f"invalid protocol {value!r}")
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        number = int(value)
        if not 0 <= number <= 255:
            raise InputError(f"protocol number {number} out of 0-255")
        return number
    if isinstance(value, str) and value in PROTOCOL_NAMES:
        if value == "icmp":
            return ICMP_BY_ETHERTYPE[ethertype]
        return PROTOCOL_NAMES[value]
    raise InputError(f"unknown protocol {value!r}")


def _range(low: int | None, high: int | None, name: str) -> tuple[int, int] | None:
    """[min, max] or None for any port: max absent = min, both absent = any, 0/1-65535 = any;
    a max without its min is an input error."""
    if low is None:
        if high is not None:
            raise InputError(f"{name}_max without {name}_min")
        return None
    high = low if high is None else high
    if low > high:
        raise InputError(f"{name}_min {low} > {name}_max {high}")
    if (low, high) in ((0, 65535), (1, 65535)):
        return None
    return (low, high)


def _int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"{name} {value!r} is not an integer in {low}-{high}")
    return value


def _mac(value: Any) -> str:
    if not isinstance(value, str) or not _MAC.match(value.lower()):
        raise InputError(f"invalid MAC {value!r}")
    return value.lower()


def _network(value: Any, what: str, host_only: bool = False) -> IPNetwork:
    try:
        if host_only:
            return ipaddress.ip_network(ipaddress.ip_address(value))
        return ipaddress.ip_network(value, strict=False)
    except (TypeError, ValueError) as exc:
        raise InputError(f"invalid {what} {value!r}") from exc

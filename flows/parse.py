"""From the control plane's JSON to a validated :class:`flows.model.HostModel`.

Bad input never raises out of :func:`parse_host`: a problem is pinned on the ports it affects
(:class:`flows.model.PortError`), those ports get no flows, and every other port compiles.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from flows import protocols
from flows.model import (
    AddressPair,
    Direction,
    HostModel,
    IPAddress,
    IPNetwork,
    Network,
    Port,
    PortError,
    PortIntervals,
    RemoteGroup,
    RemotePrefix,
    Rule,
    Uplink,
)
from flows.portrange import merge_intervals

ETHERTYPES = {"IPv4": 4, "IPv6": 6}
MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
KNOWN_RULE_KEYS = frozenset({
    "direction", "ethertype", "protocol", "port_range_min", "port_range_max",
    "source_port_range_min", "source_port_range_max", "source_ip_prefix", "dest_ip_prefix",
    "remote_ip_prefix", "remote_group_id", "remote_address_group_id", "stateful",
    "security_group_id", "id", "description", "normalized_cidr", "belongs_to_default_sg",
})
MAX_OFPORT = 0xFFFFFF00


class InputError(ValueError):
    """A value of the input that cannot be compiled; the message names it."""


def parse_host(sg_info: Mapping[str, Any]) -> HostModel:
    """Validate the RPC reply (plus the agent's local facts) into a :class:`HostModel`."""
    if not isinstance(sg_info, Mapping):
        raise InputError(f"security group info must be an object, not {type(sg_info).__name__}")
    warnings: list[str] = []
    groups, group_errors = parse_groups(_mapping(sg_info, "security_groups"), warnings)
    members = parse_members(_mapping(sg_info, "sg_member_ips"), warnings)
    member_networks = parse_member_networks(_mapping(sg_info, "member_networks"), warnings)
    networks = parse_networks(_mapping(sg_info, "networks"))
    ports: dict[str, Port] = {}
    errors: list[PortError] = []
    for port_id, device in sorted(_mapping(sg_info, "devices").items()):
        try:
            port = parse_port(str(port_id), device, networks)
        except InputError as exc:
            errors.append(PortError(str(port_id), str(exc)))
            continue
        ports[port.port_id] = port
    _check_ofport_clashes(ports, errors)
    for port in ports.values():
        networks.setdefault(port.local_vlan, Network(port.network_id, port.local_vlan, None))
    return HostModel(ports=ports, groups=groups, members=members, networks=networks,
                     port_errors=tuple(errors), warnings=tuple(warnings),
                     group_errors=group_errors, member_networks=member_networks)


def _mapping(container: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = container.get(key) or {}
    if not isinstance(value, Mapping):
        raise InputError(f"{key} must be an object, not {type(value).__name__}")
    return value


# --- security groups --------------------------------------------------------------------------

def parse_groups(raw: Mapping[str, Any], warnings: list[str],
                  ) -> tuple[dict[str, tuple[Rule, ...]], dict[str, str]]:
    groups: dict[str, tuple[Rule, ...]] = {}
    errors: dict[str, str] = {}
    for sg_id, rules in raw.items():
        if not isinstance(rules, list):
            errors[sg_id] = f"security group {sg_id}: rules must be a list"
            continue
        parsed: list[Rule] = []
        try:
            for index, rule in enumerate(rules):
                origin = f"security group {sg_id} rule " + (
                    str(rule["id"]) if isinstance(rule, Mapping) and rule.get("id")
                    else f"#{index}")
                try:
                    parsed_rule = parse_rule(rule, origin)
                except InputError as exc:
                    raise InputError(f"{origin} {_describe(rule)}: {exc}") from None
                if parsed_rule.matches_nothing:
                    warnings.append(f"{origin} {_describe(rule)} matches nothing: the switch "
                                    "cannot match ports of this protocol")
                parsed.append(parsed_rule)
        except InputError as exc:
            errors[sg_id] = str(exc)
            continue
        groups[sg_id] = tuple(parsed)
    return groups, errors


def _describe(rule: Any) -> str:
    if not isinstance(rule, Mapping):
        return repr(rule)
    return "(" + ", ".join(f"{k}={rule[k]}" for k in sorted(rule)) + ")"


def parse_rule(raw: Any, origin: str) -> Rule:
    """Validate one rule (see ``Rule.matches_nothing`` for rules the switch cannot express)."""
    if not isinstance(raw, Mapping):
        raise InputError("a rule must be an object")
    unknown = set(raw) - KNOWN_RULE_KEYS
    if unknown:
        raise InputError(f"unknown rule field(s) {', '.join(sorted(unknown))}")
    try:
        direction = Direction(raw.get("direction"))
    except ValueError:
        raise InputError("direction must be ingress or egress, "
                         f"not {raw.get('direction')!r}") from None
    ethertype = ETHERTYPES.get(raw.get("ethertype"))  # type: ignore[arg-type]
    if ethertype is None:
        raise InputError(f"ethertype must be IPv4 or IPv6, not {raw.get('ethertype')!r}")
    stateful = raw.get("stateful", True)
    if not isinstance(stateful, bool):
        raise InputError(f"stateful must be true or false, not {stateful!r}")
    protocol = _protocol(raw.get("protocol"), ethertype)
    src_ports = _port_range(raw, "source_port_range_min", "source_port_range_max")
    dst_ports = icmp_type = icmp_code = None
    if protocol in protocols.ICMP_PROTOCOLS:
        icmp_type, icmp_code = _icmp(raw)
        if src_ports is not None:
            raise InputError("ICMP has no source ports")
    else:
        dst_ports = _port_range(raw, "port_range_min", "port_range_max")
    if protocol not in protocols.ICMP_PROTOCOLS and (dst_ports is not None
                                                      or src_ports is not None):
        if protocol is None:
            raise InputError("a port range needs a protocol")
        if protocol in protocols.UNMATCHABLE_PORT_PROTOCOLS:
            return Rule(direction=direction, ethertype=ethertype, protocol=protocol,
                        dst_ports=dst_ports, src_ports=src_ports, icmp_type=None,
                        icmp_code=None, remote=_remote(raw, direction, ethertype),
                        stateful=stateful, origin=origin, matches_nothing=True)
        if protocol not in protocols.PORT_PROTOCOLS:
            raise InputError(f"protocol {protocol} has no ports")
    return Rule(direction=direction, ethertype=ethertype, protocol=protocol,
                dst_ports=dst_ports, src_ports=src_ports, icmp_type=icmp_type,
                icmp_code=icmp_code, remote=_remote(raw, direction, ethertype),
                stateful=stateful, origin=origin)


def _protocol(value: Any, ethertype: int) -> int | None:
    if value is None or value == "" or value == "any":
        return None
    if isinstance(value, bool):
        raise InputError(f"invalid protocol {value!r}")
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        number = int(value)
        if not 0 <= number <= 255:
            raise InputError(f"protocol number {number} is outside 0-255")
        return number
    if not isinstance(value, str) or value.lower() not in protocols.PROTOCOL_NUMBERS:
        raise InputError(f"unknown protocol {value!r}")
    number = protocols.PROTOCOL_NUMBERS[value.lower()]
    if number == protocols.ICMP and ethertype == 6:
        return protocols.ICMPV6
    return number


def _int_field(raw: Mapping[str, Any], key: str, low: int, high: int) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InputError(f"{key} must be an integer, not {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise InputError(f"{key} must be an integer, not {value!r}") from None
    if not low <= number <= high:
        raise InputError(f"{key} {number} is outside {low}-{high}")
    return number


def _port_range(raw: Mapping[str, Any], min_key: str, max_key: str) -> PortIntervals | None:
    low = _int_field(raw, min_key, 0, 65535)
    high = _int_field(raw, max_key, 0, 65535)
    if low is None:
        if high is not None:
            raise InputError(f"{max_key} without {min_key}")
        return None
    if high is None:
        high = low
    if low > high:
        raise InputError(f"{min_key} {low} is greater than {max_key} {high}")
    if low <= 1 and high == 65535:
        return None
    return merge_intervals([(low, high)])


def _icmp(raw: Mapping[str, Any]) -> tuple[int | None, int | None]:
    icmp_type = _int_field(raw, "port_range_min", 0, 255)
    icmp_code = _int_field(raw, "port_range_max", 0, 255)
    if icmp_code is not None and icmp_type is None:
        raise InputError("an ICMP code needs an ICMP type")
    return icmp_type, icmp_code


def _remote(raw: Mapping[str, Any], direction: Direction, ethertype: int
            ) -> RemotePrefix | RemoteGroup:
    prefix_key = "source_ip_prefix" if direction is Direction.INGRESS else "dest_ip_prefix"
    prefix = raw.get(prefix_key) or raw.get("remote_ip_prefix")
    group = raw.get("remote_group_id")
    address_group = raw.get("remote_address_group_id")
    given = [name for name, value in (("prefix", prefix), ("remote_group_id", group),
                                      ("remote_address_group_id", address_group)) if value]
    if len(given) > 1:
        raise InputError(f"only one of {', '.join(given)} may be given")
    if group:
        return RemoteGroup(str(group))
    if address_group:
        return RemoteGroup(str(address_group), address_group=True)
    if prefix:
        network = parse_network(prefix, prefix_key)
        if network.version != ethertype:
            raise InputError(f"{prefix_key} {prefix} is not an IPv{ethertype} prefix")
        return RemotePrefix(network)
    return RemotePrefix(ipaddress.ip_network("0.0.0.0/0" if ethertype == 4 else "::/0"))


def parse_network(value: Any, what: str) -> IPNetwork:
    if not isinstance(value, str):
        raise InputError(f"{what} must be a string, not {value!r}")
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise InputError(f"invalid {what} {value!r}") from None


# --- members ------------------------------------------------------------------------------------

@lru_cache(maxsize=65536)
@lru_cache(maxsize=1 << 16)
def _member_text(value: str) -> tuple[int, str]:
    """A member address's IP version and canonical text. Remembered: a remote group's whole
    member list comes again with each change of one member, and parsing 5,000 addresses costs
    milliseconds; the text is the given string itself when it is canonical already (no copy).
    A plain IPv4 address in canonical form (nearly every member) skips ``ipaddress``."""
    if _is_canonical_ipv4(value):
        return 4, value
    network = ipaddress.ip_network(value, strict=False)
    text = str(network.network_address) if network.prefixlen == network.max_prefixlen \
        else str(network)
    return network.version, value if text == value else text


def _is_canonical_ipv4(value: str) -> bool:
    try:
        return socket.inet_ntoa(socket.inet_aton(value)) == value
    except (OSError, TypeError, ValueError):  # not an IPv4 address; a str with NUL
        return False


def parse_members(raw: Mapping[str, Any], warnings: list[str],
                   ) -> dict[str, dict[int, frozenset[str]]]:
    members: dict[str, dict[int, frozenset[str]]] = {}
    for group_id, by_ethertype in raw.items():
        if not isinstance(by_ethertype, Mapping):
            warnings.append(f"members of {group_id} ignored: not an object")
            continue
        parsed: dict[int, frozenset[str]] = {}
        for ethertype_name, entries in by_ethertype.items():
            version = ETHERTYPES.get(ethertype_name)
            if version is None or not isinstance(entries, list):
                warnings.append(f"members of {group_id} under {ethertype_name!r} ignored")
                continue
            texts = set()
            for entry in entries:
                address = entry[0] if isinstance(entry, list | tuple) and entry else entry
                try:
                    entry_version, text = _member_text(address)
                except (TypeError, ValueError):
                    warnings.append(f"member {entry!r} of {group_id} ignored: not an address")
                    continue
                if entry_version != version:
                    warnings.append(f"member {address} of {group_id} ignored: not {ethertype_name}")
                    continue
                texts.add(text)
            parsed[version] = frozenset(texts)
        members[str(group_id)] = parsed
    return members


def parse_member_networks(raw: Mapping[str, Any], warnings: list[str],
                          ) -> dict[str, dict[int, dict[str, frozenset[str]]]]:
    """``{group: {address: [network id, ...]}}``: the networks of the ports each member
    address belongs to (the resource cache's addition to SG_INFO), keyed as ``members``."""
    parsed: dict[str, dict[int, dict[str, frozenset[str]]]] = {}
    for group_id, by_address in raw.items():
        if not isinstance(by_address, Mapping):
            warnings.append(f"member networks of {group_id} ignored: not an object")
            continue
        group: dict[int, dict[str, frozenset[str]]] = {}
        for address, networks in by_address.items():
            try:
                version, text = _member_text(address)
            except (TypeError, ValueError):
                warnings.append(f"member networks of {group_id}: {address!r} ignored: "
                                "not an address")
                continue
            if not isinstance(networks, list | tuple) or \
                    not all(isinstance(n, str) for n in networks):
                warnings.append(f"member networks of {group_id}: {address} ignored: "
                                "not a list of network ids")
                continue
            group.setdefault(version, {})[text] = frozenset(networks)
        parsed[str(group_id)] = group
    return parsed


# --- networks and ports -------------------------------------------------------------------------

def parse_networks(raw: Mapping[str, Any]) -> dict[int, Network]:
    networks: dict[int, Network] = {}
    for network_id, spec in sorted(raw.items()):
        where = f"network {network_id}"
        if not isinstance(spec, Mapping):
            raise InputError(f"{where}: must be an object")
        vlan = _local_vlan(spec.get("local_vlan"), where)
        uplink = None
        if spec.get("uplink"):
            up = spec["uplink"]
            if not isinstance(up, Mapping):
                raise InputError(f"{where}: uplink must be an object")
            ofport = _ofport(up.get("ofport"), f"{where} uplink")
            tag = up.get("vlan")
            if tag is not None:
                tag = _local_vlan(tag, f"{where} uplink")
            uplink = Uplink(ofport, tag)
        if vlan in networks:
            raise InputError(f"{where}: local_vlan {vlan} is used by network "
                             f"{networks[vlan].network_id} too")
        networks[vlan] = Network(str(network_id), vlan, uplink,
                                 parse_subnets(spec.get("subnets") or [], where))
    return networks


def parse_subnets(raw: Any, where: str) -> tuple[IPNetwork, ...]:
    """A network's subnets (CIDRs), sorted; a bad one names itself."""
    if not isinstance(raw, list | tuple):
        raise InputError(f"{where}: subnets must be a list of CIDRs, not {raw!r}")
    return tuple(sorted({parse_network(cidr, f"{where} subnet") for cidr in raw},
                        key=lambda n: (n.version, n)))


def _local_vlan(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4094:
        raise InputError(f"{where}: local_vlan must be an integer in 1-4094, not {value!r}")
    return value


def _ofport(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < MAX_OFPORT:
        raise InputError(f"{where}: ofport must be a positive integer, not {value!r}")
    return value


def _mac(value: Any, where: str) -> str:
    if not isinstance(value, str) or not MAC_RE.match(value.lower()):
        raise InputError(f"{where}: invalid MAC address {value!r}")
    return value.lower()


def parse_port(port_id: str, device: Any, networks: Mapping[int, Network]) -> Port:
    if not isinstance(device, Mapping):
        raise InputError("port details must be an object")
    mac = _mac(device.get("mac_address"), "mac_address")
    ofport = _ofport(device.get("ofport"), "ofport")
    network_id = str(device.get("network_id") or "")
    local_vlan = device.get("local_vlan")
    if local_vlan is None:
        by_id = [net for net in networks.values() if net.network_id == network_id]
        local_vlan = by_id[0].local_vlan if by_id else None
    local_vlan = _local_vlan(local_vlan, "port")
    known = networks.get(local_vlan)
    if known is not None and network_id and known.network_id != network_id:
        raise InputError(f"local_vlan {local_vlan} belongs to network {known.network_id}, "
                         f"not {network_id}")
    fixed_ips = tuple(_fixed_ips(device.get("fixed_ips") or []))
    pairs = tuple(_address_pairs(device.get("allowed_address_pairs") or [], mac))
    port_security = device.get("port_security_enabled", True)
    if not isinstance(port_security, bool):
        raise InputError(f"port_security_enabled must be true or false, not {port_security!r}")
    return Port(port_id=port_id, ofport=ofport, local_vlan=local_vlan, network_id=network_id,
                mac=mac, fixed_ips=fixed_ips, address_pairs=pairs,
                port_security=port_security, security_groups=parse_port_groups(device))


def parse_port_groups(device: Mapping[str, Any]) -> tuple[str, ...]:
    """A device's security groups as the compiler keys them (sorted, once each)."""
    groups = device.get("security_groups") or []
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise InputError(f"security_groups must be a list of ids, not {groups!r}")
    return tuple(sorted(set(groups)))


def _fixed_ips(raw: Any) -> Iterable[IPAddress]:
    if not isinstance(raw, list):
        raise InputError(f"fixed_ips must be a list, not {raw!r}")
    for entry in raw:
        value: Any = entry.get("ip_address") if isinstance(entry, Mapping) else entry
        try:
            yield ipaddress.ip_address(value)
        except (TypeError, ValueError):
            raise InputError(f"invalid fixed IP {value!r}") from None


def _address_pairs(raw: Any, port_mac: str) -> Iterable[AddressPair]:
    if not isinstance(raw, list):
        raise InputError(f"allowed_address_pairs must be a list, not {raw!r}")
    for entry in raw:
        if not isinstance(entry, Mapping):
            raise InputError(f"invalid allowed address pair {entry!r}")
        mac = _mac(entry["mac_address"], "allowed address pair") if entry.get("mac_address") \
            else port_mac
        yield AddressPair(mac, parse_network(entry.get("ip_address"), "allowed address pair IP"))


def _check_ofport_clashes(ports: dict[str, Port], errors: list[PortError]) -> None:
    seen: dict[int, str] = {}
    for port_id in sorted(ports):
        ofport = ports[port_id].ofport
        if ofport in seen:
            errors.append(PortError(port_id, f"ofport {ofport} is used by port {seen[ofport]} too"))
            del ports[port_id]
        else:
            seen[ofport] = port_id

"""The declarative topology file (version 1) <-> :class:`~dpagent.controller.model.Topology`.

References in the file are by name; ids are the controller's.  :func:`parse_topology` reuses
the ids (and generated MACs and addresses) of the previous topology for items of the same
name, so a reload of an unchanged file changes nothing and an edited one keeps every id it
can.  The file is the whole truth: what it does not declare does not exist (no default
security group, no default egress rules unless ``default_egress: true``).

Every problem raises :class:`TopologyError` naming the item and field, e.g.
``ports[vm1].network: no network named 'net-x'``.  Checks follow neutron's API where it
refuses: a port mixing stateful and stateless groups, groups or address pairs on a port
without port security, a VLAN outside 1-4094, an address outside the port's subnets.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from dpagent.controller.model import (
    DEVICE_OWNER_SUBPORT,
    AddressGroup,
    AddressPair,
    FixedIp,
    Network,
    Port,
    Rule,
    SecurityGroup,
    Subnet,
    SubPort,
    Topology,
    Trunk,
)

VERSION = 1
NETWORK_TYPES = ("flat", "vlan")
VNIC_TYPES = ("normal", "direct")
DIRECTIONS = ("ingress", "egress")
ETHERTYPES = {"IPv4": 4, "IPv6": 6}
PORT_PROTOCOLS = {"tcp", "udp", "sctp", "dccp", "udplite", "6", "17", "132", "33", "136"}
ICMP_PROTOCOLS = {"icmp", "ipv6-icmp", "icmpv6", "1", "58"}
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_PCI = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")

_TOP_KEYS = {"version", "networks", "security_groups", "address_groups", "ports", "trunks"}


class TopologyError(ValueError):
    """The topology is refused; ``where`` names the item and field."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


def new_id() -> str:
    return str(uuid.uuid4())


def random_mac() -> str:
    return "fa:16:3e:" + ":".join(f"{b:02x}" for b in os.urandom(3))


# -- reading files -------------------------------------------------------------------------------

def load_document(text: str, source: str = "topology") -> dict[str, Any]:
    """YAML (JSON is YAML too) text -> the document; a syntax error names ``source``."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TopologyError(source, f"not valid YAML: {exc}") from exc
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise TopologyError(source, f"expected a mapping at the top, got {type(doc).__name__}")
    return doc


def load_file(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return load_document(f.read(), path)


# -- small checks ------------------------------------------------------------------------------

def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TopologyError(where, f"expected a mapping, got {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise TopologyError(where, f"expected a list, got {type(value).__name__}")
    return value


def _keys(item: Mapping[str, Any], where: str, allowed: set[str], required: set[str]) -> None:
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise TopologyError(where, f"unknown field(s) {', '.join(unknown)} "
                                   f"(allowed: {', '.join(sorted(allowed))})")
    for key in sorted(required):
        if item.get(key) is None:
            raise TopologyError(f"{where}.{key}", "required")


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise TopologyError(where, f"expected a non-empty string, got {value!r}")
    return value


def _bool(value: Any, where: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise TopologyError(where, f"expected true or false, got {value!r}")
    return value


def _int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise TopologyError(where, f"expected an integer in {low}..{high}, got {value!r}")
    return value


def _choice(value: Any, where: str, choices: tuple[str, ...], default: str) -> str:
    if value is None:
        return default
    if value not in choices:
        raise TopologyError(where, f"expected one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _named(items: list[Any], kind: str) -> list[tuple[str, str, Mapping[str, Any]]]:
    """(name, where, item) for each item of a section, names unique."""
    seen: set[str] = set()
    out = []
    for i, raw in enumerate(items):
        item = _mapping(raw, f"{kind}[{i}]")
        name = _str(item.get("name"), f"{kind}[{i}].name")
        if name in seen:
            raise TopologyError(f"{kind}[{name}]", "declared twice")
        seen.add(name)
        out.append((name, f"{kind}[{name}]", item))
    return out


def _id_for(previous: Mapping[str, Any], name: str) -> str:
    for item in previous.values():
        if item.name == name:
            return str(item.id)
    return new_id()


def _cidr(value: Any, where: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(str(value), strict=False)
    except ValueError as exc:
        raise TopologyError(where, f"not an IP network: {value!r}") from exc


def _ip(value: Any, where: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(str(value))
    except ValueError as exc:
        raise TopologyError(where, f"not an IP address: {value!r}") from exc


# -- sections ----------------------------------------------------------------------------------

def _networks(items: list[Any], previous: Topology) -> dict[str, Network]:
    networks: dict[str, Network] = {}
    segments: dict[tuple[str | None, int | None], str] = {}
    for name, where, item in _named(items, "networks"):
        _keys(item, where, {"name", "type", "physnet", "segmentation_id", "mtu", "subnets"},
              {"type"})
        kind = _choice(item.get("type"), f"{where}.type", NETWORK_TYPES, "flat")
        physnet = item.get("physnet")
        if physnet is not None:
            physnet = _str(physnet, f"{where}.physnet")
        seg = item.get("segmentation_id")
        if kind == "vlan":
            if physnet is None:
                raise TopologyError(f"{where}.physnet", "a vlan network needs a physnet")
            seg = _int(seg, f"{where}.segmentation_id", 1, 4094)
        elif seg is not None:
            raise TopologyError(f"{where}.segmentation_id", "only vlan networks have one")
        if physnet is not None:
            other = segments.get((physnet, seg))
            if other is not None:
                raise TopologyError(where, f"segment {kind} {physnet} {seg or ''} is already "
                                           f"used by network {other!r}".replace("  ", " "))
            segments[(physnet, seg)] = name
        mtu = _int(item.get("mtu", 1500), f"{where}.mtu", 68, 65535)
        net_id = _id_for(previous.networks, name)
        old = previous.networks.get(net_id)
        old_subnets = {s.cidr: s.id for s in old.subnets} if old else {}
        subnets: list[Subnet] = []
        for j, raw in enumerate(_list(item.get("subnets"), f"{where}.subnets")):
            swhere = f"{where}.subnets[{j}]"
            sub = _mapping(raw, swhere)
            _keys(sub, swhere, {"cidr", "gateway_ip"}, {"cidr"})
            cidr = _cidr(sub["cidr"], f"{swhere}.cidr")
            gateway = sub.get("gateway_ip")
            if gateway is not None:
                gw = _ip(gateway, f"{swhere}.gateway_ip")
                if gw not in cidr:
                    raise TopologyError(f"{swhere}.gateway_ip", f"{gw} is not in {cidr}")
                gateway = str(gw)
            if str(cidr) in {s.cidr for s in subnets}:
                raise TopologyError(swhere, f"{cidr} declared twice")
            subnets.append(Subnet(old_subnets.get(str(cidr), new_id()), str(cidr), gateway))
        networks[net_id] = Network(net_id, name, kind, physnet, seg, mtu, tuple(subnets))
    return networks


def _port_range(rule: Mapping[str, Any], where: str, protocol: str | None
                ) -> tuple[int | None, int | None]:
    low, high = rule.get("port_range_min"), rule.get("port_range_max")
    text = rule.get("port_range")
    if text is not None:
        if low is not None or high is not None:
            raise TopologyError(f"{where}.port_range", "give port_range or "
                                "port_range_min/max, not both")
        parts = str(text).split("-")
        try:
            numbers = [int(p) for p in parts]
        except ValueError as exc:
            raise TopologyError(f"{where}.port_range", f"expected '80' or '8000-8100', "
                                f"got {text!r}") from exc
        if len(numbers) not in (1, 2):
            raise TopologyError(f"{where}.port_range", f"expected '80' or '8000-8100', "
                                f"got {text!r}")
        low, high = numbers[0], numbers[-1]
    if low is None and high is None:
        return None, None
    if protocol in ICMP_PROTOCOLS:
        low = _int(low, f"{where}.port_range_min (icmp type)", 0, 255)
        high = None if high is None else _int(high, f"{where}.port_range_max (icmp code)",
                                                0, 255)
        return low, high
    if protocol not in PORT_PROTOCOLS:
        raise TopologyError(where, f"a port range needs protocol tcp, udp, sctp, dccp or "
                                   f"udplite, not {protocol!r}")
    low = _int(low, f"{where}.port_range_min", 1, 65535)
    high = _int(low if high is None else high, f"{where}.port_range_max", 1, 65535)
    if high < low:
        raise TopologyError(f"{where}.port_range", f"{low}-{high} is empty")
    return low, high


def _rule(raw: Any, where: str, groups: Mapping[str, str], address_groups: Mapping[str, str]
          ) -> Rule:
    rule = _mapping(raw, where)
    _keys(rule, where, {"direction", "ethertype", "protocol", "port_range", "port_range_min",
                        "port_range_max", "remote_ip_prefix", "remote_group",
                        "remote_address_group"}, {"direction"})
    direction = _choice(rule.get("direction"), f"{where}.direction", DIRECTIONS, "")
    ethertype = _choice(rule.get("ethertype"), f"{where}.ethertype", tuple(ETHERTYPES), "IPv4")
    protocol = rule.get("protocol")
    if protocol is not None:
        protocol = str(protocol).lower()
    low, high = _port_range(rule, where, protocol)
    remotes = [k for k in ("remote_ip_prefix", "remote_group", "remote_address_group")
               if rule.get(k) is not None]
    if len(remotes) > 1:
        raise TopologyError(where, f"give at most one of {', '.join(remotes)}")
    prefix = group_id = address_group_id = None
    if rule.get("remote_ip_prefix") is not None:
        net = _cidr(rule["remote_ip_prefix"], f"{where}.remote_ip_prefix")
        if net.version != ETHERTYPES[ethertype]:
            raise TopologyError(f"{where}.remote_ip_prefix", f"{net} is not {ethertype}")
        prefix = str(net)
    if rule.get("remote_group") is not None:
        group_id = groups.get(str(rule["remote_group"]))
        if group_id is None:
            raise TopologyError(f"{where}.remote_group",
                                f"no security group named {rule['remote_group']!r}")
    if rule.get("remote_address_group") is not None:
        address_group_id = address_groups.get(str(rule["remote_address_group"]))
        if address_group_id is None:
            raise TopologyError(f"{where}.remote_address_group",
                                f"no address group named {rule['remote_address_group']!r}")
    return Rule("", direction, ethertype, protocol, low, high, prefix, group_id,
                address_group_id)


def _security_groups(items: list[Any], previous: Topology, address_groups: Mapping[str, str]
                     ) -> dict[str, SecurityGroup]:
    named = _named(items, "security_groups")
    ids = {name: _id_for(previous.security_groups, name) for name, _, _ in named}
    groups: dict[str, SecurityGroup] = {}
    for name, where, item in named:
        _keys(item, where, {"name", "stateful", "rules", "default_egress"}, set())
        rules = [_rule(raw, f"{where}.rules[{i}]", ids, address_groups)
                 for i, raw in enumerate(_list(item.get("rules"), f"{where}.rules"))]
        if _bool(item.get("default_egress"), f"{where}.default_egress", False):
            rules += [Rule("", "egress", "IPv4"), Rule("", "egress", "IPv6")]
        old = previous.security_groups.get(ids[name])
        old_ids: dict[tuple[Any, ...], list[str]] = {}
        for r in old.rules if old else ():
            old_ids.setdefault(r.content(), []).append(r.id)
        unique: list[Rule] = []
        for r in rules:
            if r.content() in {u.content() for u in unique}:
                continue  # neutron refuses duplicates; one rule is what was meant
            reuse = old_ids.get(r.content())
            unique.append(Rule(reuse.pop(0) if reuse else new_id(), *r.content()))
        groups[ids[name]] = SecurityGroup(
            ids[name], name, _bool(item.get("stateful"), f"{where}.stateful", True),
            tuple(unique))
    return groups


def _address_groups(items: list[Any], previous: Topology) -> dict[str, AddressGroup]:
    groups: dict[str, AddressGroup] = {}
    for name, where, item in _named(items, "address_groups"):
        _keys(item, where, {"name", "addresses"}, set())
        addresses = sorted({str(_cidr(a, f"{where}.addresses[{i}]")) for i, a in
                            enumerate(_list(item.get("addresses"), f"{where}.addresses"))})
        group_id = _id_for(previous.address_groups, name)
        groups[group_id] = AddressGroup(group_id, name, tuple(addresses))
    return groups


def _fixed_ips(item: Mapping[str, Any], where: str, network: Network, old: Port | None,
               used: set[str], keep: bool) -> tuple[FixedIp, ...]:
    """The port's addresses; ``used`` holds every address taken on the network (explicit
    ones of all ports included) and receives the ones allocated here."""
    raw = item.get("fixed_ips")
    if keep and old is not None:
        return old.fixed_ips  # reserved for it by _keep_addresses
    fixed = []
    for i, value in enumerate(_list(raw, f"{where}.fixed_ips")):
        address = _ip(value, f"{where}.fixed_ips[{i}]")
        subnet = next((s for s in network.subnets
                       if address in ipaddress.ip_network(s.cidr)), None)
        if subnet is None:
            raise TopologyError(f"{where}.fixed_ips[{i}]", f"{address} is in no subnet of "
                                f"network {network.name!r}")
        fixed.append(FixedIp(subnet.id, str(address)))
    if raw is None:  # allocate from the first subnet, as neutron would
        for subnet in network.subnets[:1]:
            cidr = ipaddress.ip_network(subnet.cidr)
            for host in cidr.hosts():
                if str(host) not in used and str(host) != subnet.gateway_ip:
                    used.add(str(host))
                    fixed.append(FixedIp(subnet.id, str(host)))
                    break
            else:
                raise TopologyError(f"{where}.fixed_ips", f"no free address left in {cidr}")
    return tuple(fixed)


def _claim_addresses(named: list[tuple[str, str, Mapping[str, Any]]],
                     net_ids: Mapping[str, str]) -> dict[str, set[str]]:
    """Addresses given explicitly, per network id; one address on two ports is refused."""
    owner: dict[tuple[str, str], str] = {}
    for name, where, item in named:
        net_id = net_ids.get(str(item.get("network")))
        for i, value in enumerate(_list(item.get("fixed_ips"), f"{where}.fixed_ips")):
            if isinstance(value, Mapping):
                raise TopologyError(f"{where}.fixed_ips[{i}]", "expected an address string")
            address = str(_ip(value, f"{where}.fixed_ips[{i}]"))
            if net_id is None:
                continue
            if (net_id, address) in owner and owner[(net_id, address)] != name:
                raise TopologyError(f"{where}.fixed_ips[{i}]", f"{address} is already used "
                                    f"by port {owner[(net_id, address)]!r}")
            owner[(net_id, address)] = name
    used: dict[str, set[str]] = {}
    for net_id, address in owner:
        used.setdefault(net_id, set()).add(address)
    return used


def _keep_addresses(named: list[tuple[str, str, Mapping[str, Any]]],
                    net_ids: Mapping[str, str], previous: Topology,
                    used: dict[str, set[str]]) -> set[str]:
    """Ports that give no addresses keep the ones they had (unless now claimed explicitly
    by another port): reserve them before anything is allocated; the names of those ports."""
    kept = set()
    old_ports = {p.name: p for p in previous.ports.values()}
    for name, _where, item in named:
        old = old_ports.get(name)
        net_id = net_ids.get(str(item.get("network")))
        if item.get("fixed_ips") is not None or old is None or old.network_id != net_id \
                or net_id is None:
            continue
        addresses = {f.ip_address for f in old.fixed_ips}
        if not addresses & used[net_id]:
            used[net_id] |= addresses
            kept.add(name)
    return kept


def _ports(items: list[Any], previous: Topology, networks: dict[str, Network],
           groups: dict[str, SecurityGroup]) -> dict[str, Port]:
    net_ids = {n.name: n.id for n in networks.values()}
    group_ids = {g.name: g.id for g in groups.values()}
    named = _named(items, "ports")
    # addresses given explicitly are taken first, so allocation never steals one
    claimed = _claim_addresses(named, net_ids)
    used = {n: set(claimed.get(n, ())) for n in networks}
    kept = _keep_addresses(named, net_ids, previous, used)
    ports: dict[str, Port] = {}
    macs: dict[str, str] = {}
    for name, where, item in named:
        _keys(item, where, {"name", "network", "mac", "fixed_ips", "security_groups",
                            "port_security_enabled", "allowed_address_pairs", "host",
                            "vnic_type", "pci_slot", "admin_state_up"}, {"network"})
        net_id = net_ids.get(str(item["network"]))
        if net_id is None:
            raise TopologyError(f"{where}.network", f"no network named {item['network']!r}")
        network = networks[net_id]
        port_id = _id_for(previous.ports, name)
        old = previous.ports.get(port_id)
        mac = item.get("mac")
        if mac is None:
            mac = old.mac_address if old else random_mac()
        mac = str(mac).lower()
        if not _MAC.match(mac):
            raise TopologyError(f"{where}.mac", f"not a MAC address: {item.get('mac')!r}")
        if mac in macs:
            raise TopologyError(f"{where}.mac", f"{mac} is already used by port {macs[mac]!r}")
        macs[mac] = name
        fixed = _fixed_ips(item, where, network, old, used[net_id], name in kept)
        sgs = []
        for i, sg_name in enumerate(_list(item.get("security_groups"),
                                          f"{where}.security_groups")):
            sg_id = group_ids.get(str(sg_name))
            if sg_id is None:
                raise TopologyError(f"{where}.security_groups[{i}]",
                                    f"no security group named {sg_name!r}")
            if sg_id not in sgs:
                sgs.append(sg_id)
        if len({groups[s].stateful for s in sgs}) > 1:
            raise TopologyError(f"{where}.security_groups", "mixes stateful and stateless "
                                "groups (neutron refuses this too)")
        security = _bool(item.get("port_security_enabled"), f"{where}.port_security_enabled",
                         True)
        pairs = []
        for i, raw in enumerate(_list(item.get("allowed_address_pairs"),
                                      f"{where}.allowed_address_pairs")):
            pwhere = f"{where}.allowed_address_pairs[{i}]"
            pair = _mapping(raw, pwhere)
            _keys(pair, pwhere, {"ip_address", "mac_address"}, {"ip_address"})
            pair_mac = pair.get("mac_address")
            if pair_mac is not None and not _MAC.match(str(pair_mac).lower()):
                raise TopologyError(f"{pwhere}.mac_address", f"not a MAC address: {pair_mac!r}")
            address = str(pair["ip_address"])
            net = _cidr(address, f"{pwhere}.ip_address")
            pairs.append(AddressPair(address if "/" in address and net.prefixlen <
                                     net.max_prefixlen else str(net.network_address),
                                     str(pair_mac).lower() if pair_mac else None))
        if not security and (sgs or pairs):
            raise TopologyError(f"{where}.port_security_enabled", "a port without port "
                                "security can have neither security groups nor allowed "
                                "address pairs")
        host = item.get("host")
        if host is not None:
            host = _str(host, f"{where}.host")
        vnic = _choice(item.get("vnic_type"), f"{where}.vnic_type", VNIC_TYPES, "normal")
        pci = item.get("pci_slot")
        if pci is not None:
            if vnic != "direct":
                raise TopologyError(f"{where}.pci_slot", "only a direct port has one")
            pci = str(pci).lower()
            if not _PCI.match(pci):
                raise TopologyError(f"{where}.pci_slot", f"expected a PCI address like "
                                    f"0000:00:02.1, got {item['pci_slot']!r}")
        ports[port_id] = Port(
            port_id, name, net_id, mac, fixed, tuple(sgs), security, tuple(pairs), host,
            vnic, pci, _bool(item.get("admin_state_up"), f"{where}.admin_state_up", True))
    return ports


def _trunks(items: list[Any], previous: Topology, ports: dict[str, Port]
            ) -> tuple[dict[str, Trunk], dict[str, Port]]:
    port_ids = {p.name: p.id for p in ports.values()}
    trunks: dict[str, Trunk] = {}
    role: dict[str, str] = {}  # port id -> which trunk uses it

    def claim(port_name: Any, where: str, trunk: str) -> str:
        """The id of the port ``port_name``, now used by ``trunk`` (as parent or subport)."""
        port_id = port_ids.get(str(port_name))
        if port_id is None:
            raise TopologyError(where, f"no port named {port_name!r}")
        if port_id in role:
            raise TopologyError(where, f"port {port_name!r} is already used by trunk "
                                f"{role[port_id]!r}")
        role[port_id] = trunk
        return port_id

    for name, where, item in _named(items, "trunks"):
        _keys(item, where, {"name", "parent", "subports"}, {"parent"})
        parent = claim(item["parent"], f"{where}.parent", name)
        subs: list[SubPort] = []
        for i, raw in enumerate(_list(item.get("subports"), f"{where}.subports")):
            swhere = f"{where}.subports[{i}]"
            sub = _mapping(raw, swhere)
            _keys(sub, swhere, {"port", "segmentation_type", "segmentation_id"},
                  {"port", "segmentation_id"})
            port_id = claim(sub["port"], f"{swhere}.port", name)
            seg_type = _choice(sub.get("segmentation_type"), f"{swhere}.segmentation_type",
                               ("vlan",), "vlan")
            seg = _int(sub["segmentation_id"], f"{swhere}.segmentation_id", 1, 4094)
            if seg in {s.segmentation_id for s in subs}:
                raise TopologyError(f"{swhere}.segmentation_id", f"VLAN {seg} is already "
                                    f"used in this trunk")
            subs.append(SubPort(port_id, seg_type, seg))
        trunk_id = _id_for(previous.trunks, name)
        trunks[trunk_id] = Trunk(trunk_id, name, parent, tuple(subs))
    # a subport is owned by the trunk and bound where its parent is, as neutron leaves it
    # after update_subport_bindings
    ports = dict(ports)
    for trunk in trunks.values():
        host = ports[trunk.port_id].host
        for subport in trunk.sub_ports:
            port = ports[subport.port_id]
            ports[subport.port_id] = _replace(port, device_owner=DEVICE_OWNER_SUBPORT,
                                              host=port.host or host)
    return trunks, ports


def _replace(port: Port, **changes: Any) -> Port:
    return dataclasses.replace(port, **changes)


# -- the document --------------------------------------------------------------------------------

def parse_topology(doc: Mapping[str, Any], previous: Topology | None = None) -> Topology:
    """Check ``doc`` and resolve it to a Topology, keeping ``previous``' ids by name."""
    previous = previous or Topology()
    doc = _mapping(doc, "topology")
    _keys(doc, "topology", _TOP_KEYS, set())
    version = doc.get("version", VERSION)
    if version != VERSION:
        raise TopologyError("version", f"this controller reads version {VERSION}, "
                                       f"got {version!r}")
    section: Callable[[str], list[Any]] = lambda key: _list(doc.get(key), key)  # noqa: E731
    networks = _networks(section("networks"), previous)
    address_groups = _address_groups(section("address_groups"), previous)
    groups = _security_groups(section("security_groups"), previous,
                              {g.name: g.id for g in address_groups.values()})
    ports = _ports(section("ports"), previous, networks, groups)
    trunks, ports = _trunks(section("trunks"), previous, ports)
    return Topology(networks, groups, address_groups, ports, trunks)


def export_topology(topology: Topology) -> dict[str, Any]:
    """The topology as a version-1 document (names, not ids): what parse_topology reads."""
    nets = {n.id: n.name for n in topology.networks.values()}
    sgs = {g.id: g.name for g in topology.security_groups.values()}
    ags = {g.id: g.name for g in topology.address_groups.values()}
    ports = {p.id: p.name for p in topology.ports.values()}
    doc: dict[str, Any] = {"version": VERSION, "networks": [], "security_groups": [],
                           "address_groups": [], "ports": [], "trunks": []}
    for n in topology.networks.values():
        net: dict[str, Any] = {"name": n.name, "type": n.network_type,
                               "physnet": n.physical_network}
        if n.segmentation_id is not None:
            net["segmentation_id"] = n.segmentation_id
        net["mtu"] = n.mtu
        net["subnets"] = [{"cidr": s.cidr, **({"gateway_ip": s.gateway_ip}
                                              if s.gateway_ip else {})} for s in n.subnets]
        doc["networks"].append(net)
    for g in topology.security_groups.values():
        rules = []
        for r in g.rules:
            rule: dict[str, Any] = {"direction": r.direction, "ethertype": r.ethertype}
            for key in ("protocol", "port_range_min", "port_range_max", "remote_ip_prefix"):
                if getattr(r, key) is not None:
                    rule[key] = getattr(r, key)
            if r.remote_group_id:
                rule["remote_group"] = sgs[r.remote_group_id]
            if r.remote_address_group_id:
                rule["remote_address_group"] = ags[r.remote_address_group_id]
            rules.append(rule)
        doc["security_groups"].append({"name": g.name, "stateful": g.stateful, "rules": rules})
    for a in topology.address_groups.values():
        doc["address_groups"].append({"name": a.name, "addresses": list(a.addresses)})
    for p in topology.ports.values():
        port: dict[str, Any] = {
            "name": p.name, "network": nets[p.network_id], "mac": p.mac_address,
            "fixed_ips": [f.ip_address for f in p.fixed_ips],
            "security_groups": [sgs[s] for s in p.security_groups],
            "port_security_enabled": p.port_security_enabled,
            "allowed_address_pairs": [{"ip_address": a.ip_address, **(
                {"mac_address": a.mac_address} if a.mac_address else {})}
                for a in p.allowed_address_pairs],
            "host": p.host, "vnic_type": p.vnic_type, "admin_state_up": p.admin_state_up}
        if p.pci_slot:
            port["pci_slot"] = p.pci_slot
        doc["ports"].append(port)
    for t in topology.trunks.values():
        doc["trunks"].append({"name": t.name, "parent": ports[t.port_id], "subports": [
            {"port": ports[s.port_id], "segmentation_type": s.segmentation_type,
             "segmentation_id": s.segmentation_id} for s in t.sub_ports]})
    return doc


def dump_yaml(topology: Topology) -> str:
    return str(yaml.safe_dump(export_topology(topology), sort_keys=False))

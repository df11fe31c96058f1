"""Packets aimed at a model's edges: rule boundaries, prefix borders, members, base checks.

Random packets almost never hit a port range or a /27 by chance, so most probes are built from
one rule of the port: ports at min, max, min-1 and max+1, addresses at the first and last address
of a prefix or member and just outside it. The rest exercise the base checks (DHCP, RA, NA
targets, DAD, ARP) and anti-spoofing (a foreign MAC or an address just outside a pair's CIDR).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from hypothesis import strategies as st

from tests.reference.model import InputError, RefRule, decode_rule, link_local
from tests.reference.packets import (
    EGRESS,
    INGRESS,
    OFF_HOST_MAC,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_SCTP,
    PROTO_TCP,
    PROTO_UDP,
    REMOTE_MAC,
    Packet,
)
from tests.reference.pools import addresses

FOREIGN_MAC = "fa:16:3e:ee:ee:ee"
_L4 = (PROTO_TCP, PROTO_UDP, PROTO_SCTP)
_RANDOM_PROTOS = (PROTO_TCP, PROTO_UDP, PROTO_SCTP, 47, 50, 112, 0, 255)


def _shift(address: str, delta: int) -> str:
    ip = ipaddress.ip_address(address)
    top = 2 ** ip.max_prefixlen
    return str(type(ip)((int(ip) + delta) % top))


def _inside_and_edges(draw: Any, cidr: str) -> str:
    """An address at the first/last address of ``cidr``, inside it, or one step outside."""
    net = ipaddress.ip_network(cidr, strict=False)
    first, last = net.network_address, net.broadcast_address
    choice = draw(st.sampled_from(("first", "last", "inside", "below", "above")))
    if choice == "first":
        return str(first)
    if choice == "last":
        return str(last)
    if choice == "below":
        return _shift(str(first), -1)
    if choice == "above":
        return _shift(str(last), 1)
    offset = draw(st.integers(0, min(net.num_addresses - 1, 2**32)))
    return str(first + offset)


def _edge_port(draw: Any, bounds: tuple[int, int] | None) -> int:
    if bounds is None or draw(st.integers(0, 5)) == 0:
        return draw(st.one_of(st.sampled_from((0, 1, 80, 65535)), st.integers(0, 65535)))
    low, high = bounds
    return max(0, min(65535, draw(st.sampled_from((low, high, low - 1, high + 1, low, high)))))


def _decoded_rules(model: dict[str, Any], device: dict[str, Any]) -> list[RefRule]:
    out = []
    for group_id in device["security_groups"]:
        for index, rule in enumerate(model["security_groups"].get(group_id, [])):
            try:
                out.append(decode_rule(rule, f"{group_id}[{index}]"))
            except InputError:
                continue
    return out


def _sources(draw: Any, device: dict[str, Any], version: int) -> list[tuple[str, str]]:
    """(MAC, address) pairs this port may send from, for ``version``."""
    mac = device["mac_address"]
    out = [(mac, ip) for ip in device["fixed_ips"] if ipaddress.ip_address(ip).version == version]
    for pair in device.get("allowed_address_pairs") or []:
        net = ipaddress.ip_network(pair["ip_address"], strict=False)
        if net.version == version:
            pair_mac = pair.get("mac_address") or mac
            out.append((pair_mac, _inside_and_edges(draw, str(net))))
    if version == 6:
        macs = {mac} | {p.get("mac_address") or mac for p in device["allowed_address_pairs"]}
        out.extend((m, link_local(m)) for m in sorted(macs))
    return out


@st.composite
def _identity(draw: Any, device: dict[str, Any], version: int) -> tuple[str, str]:
    """A source for an egress frame: usually allowed, sometimes spoofed."""
    candidates = _sources(draw, device, version)
    mac, ip = draw(st.sampled_from(candidates)) if candidates else (device["mac_address"],
                                                                    _any_address(version))
    spoof = draw(st.sampled_from(("none",) * 8 + ("mac", "ip")))
    if spoof == "mac":
        mac = FOREIGN_MAC
    elif spoof == "ip":
        ip = _shift(ip, draw(st.sampled_from((1, -1, 1 << 16))))
    return mac, ip


def _any_address(version: int) -> str:
    return "10.9.9.9" if version == 4 else "fd99::9"


def _ct(draw: Any, stateful: bool) -> str | None:
    if not stateful:
        return None
    return draw(st.sampled_from(("new", "new", "new", "est", "est_rpl")))


def _fragment(draw: Any, stateful: bool) -> str:
    if stateful:
        return "no"
    return draw(st.sampled_from(("no",) * 6 + ("first", "later", "later")))


def _port_stateful(model: dict[str, Any], device: dict[str, Any]) -> bool:
    kinds = {r.get("stateful", True) for g in device["security_groups"]
             for r in model["security_groups"].get(g, [])}
    return kinds != {False}


@st.composite
def probe_from_rule(draw: Any, model: dict[str, Any], port_id: str) -> Packet:
    """A packet built to sit on or just off one of the port's rules."""
    device = model["devices"][port_id]
    decoded = _decoded_rules(model, device)
    direction = draw(st.sampled_from((EGRESS, INGRESS)))
    rule = draw(st.sampled_from(decoded)) if decoded else None
    if rule is not None and draw(st.integers(0, 4)) != 0:
        direction = rule.direction
    ethertype = rule.ethertype if rule is not None else draw(st.sampled_from(("IPv4", "IPv6")))
    version = 4 if ethertype == "IPv4" else 6
    icmp = PROTO_ICMP if version == 4 else PROTO_ICMPV6
    proto = rule.protocol if rule is not None else None
    if proto is None or draw(st.integers(0, 9)) == 0:
        proto = draw(st.sampled_from((*_RANDOM_PROTOS, icmp)))
    fields: dict[str, Any] = {"ip_proto": proto}
    if proto in _L4:
        fields["l4_dst"] = _edge_port(draw, rule.dst_ports if rule else None)
        fields["l4_src"] = _edge_port(draw, rule.src_ports if rule else None)
    elif proto == icmp:
        icmp_type = rule.icmp_type if rule is not None and rule.icmp_type is not None else None
        if icmp_type is None or draw(st.integers(0, 4)) == 0:
            icmp_type = draw(st.one_of(st.sampled_from((0, 3, 8, 128, 129)),
                                       st.integers(0, 255)))
        code = rule.icmp_code if rule is not None and rule.icmp_code is not None else 0
        code = draw(st.sampled_from((code, code, code + 1, max(0, code - 1), 0)))
        fields.update(icmp_type=min(icmp_type, 255), icmp_code=min(code, 255))
        _fix_nd(draw, device, version, fields)
    remote = _remote_address(draw, model, rule, version)
    if direction == EGRESS:
        mac, src = draw(_identity(device, version))
        packet = Packet(EGRESS, port_id, mac, OFF_HOST_MAC, ethertype, src, remote, **fields)
    else:
        dst = _own_or_any(draw, device, version)
        packet = Packet(INGRESS, port_id, REMOTE_MAC, device["mac_address"], ethertype, remote,
                        dst, **fields)
    stateful = _port_stateful(model, device)
    return packet.replace(ct=_ct(draw, stateful), fragment=_fragment(draw, stateful))


def _fix_nd(draw: Any, device: dict[str, Any], version: int, fields: dict[str, Any]) -> None:
    """ND packets need a target, and code 0 so that the switch parses it."""
    if version == 6 and fields["icmp_type"] in (135, 136):
        fields["icmp_code"] = 0
        own = [ip for _, ip in _sources(draw, device, 6)]
        fields["nd_target"] = draw(st.sampled_from(own + ["fd99::9"]))


def _remote_address(draw: Any, model: dict[str, Any], rule: RefRule | None,
                    version: int) -> str:
    if rule is not None and rule.prefix is not None and draw(st.integers(0, 5)) != 0:
        return _inside_and_edges(draw, str(rule.prefix))
    if rule is not None and rule.remote_group is not None and draw(st.integers(0, 5)) != 0:
        entries = ((model["sg_member_ips"].get(rule.remote_group) or {})
                   .get(rule.ethertype) or [])
        if entries:
            return _inside_and_edges(draw, draw(st.sampled_from(entries))[0])
    return draw(st.one_of(st.just(_any_address(version)),
                          _pool_address(version)))


def _pool_address(version: int) -> st.SearchStrategy[str]:
    return addresses(version)


def _own_or_any(draw: Any, device: dict[str, Any], version: int) -> str:
    own = [ip for ip in device["fixed_ips"] if ipaddress.ip_address(ip).version == version]
    return draw(st.sampled_from(own)) if own else _any_address(version)


#: Base-check probes: (name, ethertype, proto, src port or ICMP type, dst port or code)
_BASE_PROBES = (
    ("dhcp4-client", "IPv4", PROTO_UDP, 68, 67), ("dhcp4-server", "IPv4", PROTO_UDP, 67, 68),
    ("dhcp6-client", "IPv6", PROTO_UDP, 546, 547), ("dhcp6-server", "IPv6", PROTO_UDP, 547, 546),
    ("mld-query", "IPv6", PROTO_ICMPV6, 130, 0), ("mld-report", "IPv6", PROTO_ICMPV6, 131, 0),
    ("mld-done", "IPv6", PROTO_ICMPV6, 132, 0), ("mldv2", "IPv6", PROTO_ICMPV6, 143, 0),
    ("rs", "IPv6", PROTO_ICMPV6, 133, 0), ("ra", "IPv6", PROTO_ICMPV6, 134, 0),
    ("ns", "IPv6", PROTO_ICMPV6, 135, 0), ("na", "IPv6", PROTO_ICMPV6, 136, 0),
    ("redirect", "IPv6", PROTO_ICMPV6, 137, 0), ("echo6", "IPv6", PROTO_ICMPV6, 128, 0),
    ("echo4", "IPv4", PROTO_ICMP, 8, 0),
)


@st.composite
def probe_base(draw: Any, model: dict[str, Any], port_id: str) -> Packet:
    """DHCP, ND, RA, MLD, DAD and ARP, from the VM and to it."""
    device = model["devices"][port_id]
    stateful = _port_stateful(model, device)
    direction = draw(st.sampled_from((EGRESS, INGRESS)))
    if draw(st.integers(0, 4)) == 0:
        return draw(_arp(device, port_id, direction))
    _name, ethertype, proto, a, b = draw(st.sampled_from(_BASE_PROBES))
    version = 4 if ethertype == "IPv4" else 6
    fields: dict[str, Any] = {"ip_proto": proto}
    if proto == PROTO_UDP:
        fields.update(l4_src=a, l4_dst=b)
    else:
        fields.update(icmp_type=a, icmp_code=b)
        _fix_nd(draw, device, version, fields)
    if direction == EGRESS:
        mac, src = draw(_identity(device, version))
        unspecified = "0.0.0.0" if version == 4 else "::"
        if draw(st.integers(0, 3)) == 0:
            src = unspecified  # DHCP discover / duplicate address detection
        dst = draw(_pool_address(version))
        packet = Packet(EGRESS, port_id, mac, OFF_HOST_MAC, ethertype, src, dst, **fields)
    else:
        src = draw(_pool_address(version))
        packet = Packet(INGRESS, port_id, REMOTE_MAC, device["mac_address"], ethertype, src,
                        _own_or_any(draw, device, version), **fields)
    return packet.replace(ct=_ct(draw, stateful))


@st.composite
def _arp(draw: Any, device: dict[str, Any], port_id: str, direction: str) -> Packet:
    if direction == INGRESS:
        spa = draw(_pool_address(4))
        return Packet(INGRESS, port_id, REMOTE_MAC, device["mac_address"], "ARP",
                      arp_sha=REMOTE_MAC, arp_spa=spa, arp_tpa=_own_or_any(draw, device, 4),
                      arp_op=draw(st.sampled_from((1, 2))))
    mac, spa = draw(_identity(device, 4))
    sha = draw(st.sampled_from((mac, mac, mac, FOREIGN_MAC, device["mac_address"])))
    return Packet(EGRESS, port_id, mac, OFF_HOST_MAC, "ARP", arp_sha=sha, arp_spa=spa,
                  arp_tpa=draw(_pool_address(4)), arp_op=draw(st.sampled_from((1, 2))))


def _addressable(device: dict[str, Any]) -> bool:
    """Whether frames to and from the port can be written down (valid MAC and IPs)."""
    try:
        for ip in device["fixed_ips"]:
            ipaddress.ip_address(ip)
        int(device["mac_address"].replace(":", ""), 16)
    except (TypeError, ValueError, AttributeError):
        return False
    return True


@st.composite
def packets_for(draw: Any, model: dict[str, Any], min_size: int = 8,
                max_size: int = 16) -> list[Packet]:
    """A batch of probes over the model's ports, mostly rule probes, some base probes."""
    port_ids = [port_id for port_id, device in sorted(model["devices"].items())
                if _addressable(device)]
    count = draw(st.integers(min_size, max_size))
    out = []
    for _ in range(count):
        port_id = draw(st.sampled_from(port_ids))
        kind = draw(st.sampled_from(("rule", "rule", "base")))
        probe = probe_from_rule if kind == "rule" else probe_base
        out.append(draw(probe(model, port_id)))
    return out

"""Match fragments shared by the feature modules: protocols, addresses, ports, registers."""

from __future__ import annotations

from functools import lru_cache

from flows import fields, portrange, protocols
from flows.flow import MatchItem
from flows.model import Direction, IPNetwork, PortIntervals

MULTICAST_MAC = ("dl_dst", "01:00:00:00:00:00/01:00:00:00:00:00")


@lru_cache(maxsize=65536)
def reg(register: fields.Register, value: int, mask: int | None = None) -> MatchItem:
    """Cached: every port's flows repeat the same few register matches."""
    return (register.match_name, f"{value:#x}" if mask is None else f"{value:#x}/{mask:#x}")


def port(ofport: int) -> MatchItem:
    return reg(fields.PORT, ofport)


def network(local_vlan: int) -> MatchItem:
    return reg(fields.NETWORK, local_vlan)


STATEFUL = reg(fields.FLAGS, fields.FLAG_STATEFUL, fields.FLAG_STATEFUL)


def protocol(ethertype: int, proto: int | None) -> tuple[MatchItem, ...]:
    """``tcp`` / ``icmp6`` / ``ip,nw_proto=47``: the shorthand when OVS has one."""
    shorthand = protocols.SHORTHAND.get((ethertype, proto))
    if shorthand is not None:
        return ((shorthand, ""),)
    return (("ip" if ethertype == 4 else "ipv6", ""), ("nw_proto", str(proto)))


def address_field(ethertype: int, remote_is_source: bool) -> str:
    if ethertype == 4:
        return "nw_src" if remote_is_source else "nw_dst"
    return "ipv6_src" if remote_is_source else "ipv6_dst"


def remote_address_field(direction: Direction, ethertype: int) -> str:
    """Ingress rules look at who sent the packet, egress rules at where it goes."""
    return address_field(ethertype, direction is Direction.INGRESS)


@lru_cache(maxsize=65536)
def network_text(net: IPNetwork) -> str:
    """``10.0.0.5`` for a host route, ``10.0.0.0/8`` otherwise (as ovs-ofctl prints them)."""
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return str(net)


def icmp_type(ethertype: int, value: int) -> MatchItem:
    return ("icmp_type" if ethertype == 4 else "icmpv6_type", str(value))


def icmp_code(ethertype: int, value: int) -> MatchItem:
    return ("icmp_code" if ethertype == 4 else "icmpv6_code", str(value))


def port_masks(field_name: str, intervals: PortIntervals | None
               ) -> list[tuple[MatchItem, ...]]:
    """One match fragment per value/mask block; a single empty fragment for 'any port'."""
    if intervals is None:
        return [()]
    return [((field_name, portrange.render_mask(value, mask)),)
            for lo, hi in intervals for value, mask in portrange.range_to_masks(lo, hi)]

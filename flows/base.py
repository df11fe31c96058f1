"""The shared part of the pipeline: flows that do not depend on any port.

These verdicts hold for every port with port security, whatever its rules say (neutron's
behaviour, which operators rely on): control traffic a VM needs to get an address and find its
neighbours passes; traffic only a router or DHCP server may send is dropped when a VM sends it.
"""

from __future__ import annotations

from flows import actions, cookies, matches
from flows.flow import Flow, MatchItem, flow
from flows.pipeline import Table

ICMPV6_RS, ICMPV6_RA, ICMPV6_NS, ICMPV6_NA, ICMPV6_REDIRECT = 133, 134, 135, 136, 137
MLD_QUERY, MLD_REPORT, MLD_DONE, MLDV2_REPORT = 130, 131, 132, 143

EGRESS_ALLOWED_ICMPV6 = (MLD_REPORT, MLD_DONE, ICMPV6_RS, ICMPV6_NS, MLDV2_REPORT)
EGRESS_DROPPED_ICMPV6 = (ICMPV6_RA, ICMPV6_REDIRECT)
INGRESS_ALLOWED_ICMPV6 = (MLD_QUERY, MLD_REPORT, MLD_DONE, ICMPV6_RA, ICMPV6_NS, ICMPV6_NA,
                          MLDV2_REPORT)

PRIO_GUARD = 200
PRIO_FORCED_DROP = 100
PRIO_NA_TARGET = 95
PRIO_NA_DROP = 90
PRIO_CONTROL = 80
PRIO_TO_CONNTRACK = 50
PRIO_TO_RULES = 40
PRIO_MISS = 0

_KIND = cookies.Kind.BASE


def _f(table: Table, priority: int, match: tuple[MatchItem, ...],
       acts: tuple[str, ...]) -> Flow:
    return flow(table, priority, match, acts, _KIND)


def _icmp6(kind: int) -> tuple[MatchItem, ...]:
    return (("icmp6", ""), matches.icmp_type(6, kind))


def _udp(ethertype: int, src: int, dst: int) -> tuple[MatchItem, ...]:
    return (("udp" if ethertype == 4 else "udp6", ""), ("tp_src", str(src)), ("tp_dst", str(dst)))


DHCP4_CLIENT, DHCP4_SERVER = _udp(4, 68, 67), _udp(4, 67, 68)
DHCP6_CLIENT, DHCP6_SERVER = _udp(6, 546, 547), _udp(6, 547, 546)

IPV6_UNPARSED_HEADERS = (0, 43, 60, 135, 139, 140, 253, 254)
"""``nw_proto`` values that mean OVS did not see the upper-layer header of an IPv6 packet.

OVS skips hop-by-hop (0), routing (43), destination options (60), fragment (44) and AH headers
to reach the upper layer; one of the first three left in ``nw_proto`` means the chain did not
parse (0 also when nothing past the fixed header parsed: a header longer than the packet).
Mobility (135), HIP (139), shim6 (140) and the experimental 253/254 are extension headers OVS
does not walk: whatever follows them is unseen."""

HIDDEN_UPPER_LAYER = [
    *[(("ipv6", ""), ("nw_proto", str(proto))) for proto in IPV6_UNPARSED_HEADERS],
    # a fragment header left over, on a packet that is not a later fragment: unparsed
    (("ipv6", ""), ("nw_proto", "44"), ("nw_frag", "not_later")),
    # a first fragment too short for its ICMPv6/UDP/TCP header: OVS reads type 0 / port 0,
    # neither of which a real header carries (RFC 7112: the first fragment must hold it whole;
    # later fragments carry no header at all and read 0 too: they pass)
    (("icmp6", ""), matches.icmp_type(6, 0), ("nw_frag", "not_later")),
    *[((proto, ""), ("tp_dst", "0"), ("nw_frag", "not_later"))
      for proto in ("udp6", "udp", "tcp6", "tcp")],
]
"""Packets from a VM whose upper-layer header a later check could not see: an RA, a redirect or
a DHCP server reply behind them would skip the drops of EGRESS_BASE (and a stateless port's port
rules), so they are dropped first, whatever the port's statefulness."""


def base_flows() -> list[Flow]:
    """Every shared flow of the pipeline."""
    return [*_misses(), *_egress_base(), *_conntrack_verdicts(), *_ingress_base()]


def _misses() -> list[Flow]:
    drop_tables = (Table.CLASSIFY, Table.EGRESS_SPOOF, Table.EGRESS_BASE, Table.FORWARD,
                   Table.INGRESS_BASE)
    return [_f(table, PRIO_MISS, (), actions.DROP) for table in drop_tables]


def _egress_base() -> list[Flow]:
    forward = (actions.goto(Table.FORWARD),)
    table = Table.EGRESS_BASE
    flows = [_f(table, PRIO_GUARD, match, actions.DROP) for match in HIDDEN_UPPER_LAYER]
    flows += [_f(table, PRIO_FORCED_DROP, _icmp6(kind), actions.DROP)
              for kind in EGRESS_DROPPED_ICMPV6]
    flows += [_f(table, PRIO_FORCED_DROP, DHCP4_SERVER, actions.DROP),
              _f(table, PRIO_FORCED_DROP, DHCP6_SERVER, actions.DROP),
              _f(table, PRIO_NA_DROP, _icmp6(ICMPV6_NA), actions.DROP),
              _f(table, PRIO_CONTROL, (("arp", ""),), forward),
              _f(table, PRIO_CONTROL, DHCP4_CLIENT, forward),
              _f(table, PRIO_CONTROL, DHCP6_CLIENT, forward)]
    flows += [_f(table, PRIO_CONTROL, _icmp6(kind), forward) for kind in EGRESS_ALLOWED_ICMPV6]
    flows += _to_filter(table, Table.EGRESS_CT, Table.EGRESS_RULES)
    return flows


def _ingress_base() -> list[Flow]:
    deliver = (actions.output_to_port_register(),)
    table = Table.INGRESS_BASE
    flows = [_f(table, PRIO_CONTROL, (("arp", ""),), deliver),
             _f(table, PRIO_CONTROL, DHCP4_SERVER, deliver),
             _f(table, PRIO_CONTROL, DHCP6_SERVER, deliver)]
    flows += [_f(table, PRIO_CONTROL, _icmp6(kind), deliver) for kind in INGRESS_ALLOWED_ICMPV6]
    flows += _to_filter(table, Table.INGRESS_CT, Table.INGRESS_RULES)
    return flows


def _to_filter(table: Table, ct_table: Table, rules_table: Table) -> list[Flow]:
    """IP of stateful ports goes through conntrack first; stateless IP straight to the rules."""
    flows = []
    for shorthand in ("ip", "ipv6"):
        flows.append(_f(table, PRIO_TO_CONNTRACK, ((shorthand, ""), matches.STATEFUL),
                        (actions.conntrack(ct_table),)))
        flows.append(_f(table, PRIO_TO_RULES, ((shorthand, ""),), (actions.goto(rules_table),)))
    return flows


def _conntrack_verdicts() -> list[Flow]:
    """CT, RULES-miss and ACCEPT tables of both directions: the stateful machinery."""
    flows: list[Flow] = []
    for ct_table, rules_table, accept_table, accepted in (
            (Table.EGRESS_CT, Table.EGRESS_RULES, Table.EGRESS_ACCEPT,
             (actions.goto(Table.FORWARD),)),
            (Table.INGRESS_CT, Table.INGRESS_RULES, Table.INGRESS_ACCEPT,
             (actions.output_to_port_register(),))):
        not_blocked = ("ct_mark", "0/0x1")
        blocked = ("ct_mark", "0x1/0x1")
        flows += [
            _f(ct_table, 100, (("ct_state", "+inv+trk"),), actions.DROP),
            _f(ct_table, 90, (("ct_state", "+est+rpl+trk"), not_blocked), accepted),
            _f(ct_table, 90, (("ct_state", "+rel+trk"), not_blocked), accepted),
            _f(ct_table, 80, (("ct_state", "+rpl+trk"),), actions.DROP),
            _f(ct_table, 80, (("ct_state", "+rel+trk"),), actions.DROP),
            # Conntrack reassembled the datagram and judged it whole; its first fragment, which
            # carries the headers, goes through the rules. The later ones carry no ports (IPv6:
            # not even the protocol) for a rule to match, and are nothing to the receiver
            # without the first: they follow it -- through the same commit, since every ct()
            # reassembles again and would hold a first fragment whose followers went elsewhere.
            *[_f(ct_table, 70, ((ip, ""), ("nw_frag", "later"), ("ct_state", "+trk")),
                 (actions.goto(accept_table),)) for ip in ("ip", "ipv6")],
            _f(ct_table, PRIO_MISS, (), (actions.goto(rules_table),)),
            _f(rules_table, PRIO_MISS, (), actions.DROP),
            _f(accept_table, PRIO_MISS, (), accepted),
        ]
        for ip in (("ip", ""),), (("ipv6", ""),):  # ct() needs the IP version in the match
            flows += [
                # No rule allows an established connection any more: block it, replies too.
                _f(rules_table, 10, ip + (("ct_state", "+est+trk"), matches.STATEFUL),
                   (actions.commit_with_blocked(True),)),
                _f(accept_table, 100, ip + (("ct_state", "+new+trk"), matches.STATEFUL),
                   (actions.commit(), *accepted)),
                _f(accept_table, 100, ip + (("ct_state", "+est+trk"), blocked, matches.STATEFUL),
                   (actions.commit_with_blocked(False), *accepted)),
            ]
    return flows

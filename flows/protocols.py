"""IP protocol names and numbers as neutron accepts them, and which ones carry ports."""

from __future__ import annotations

PROTOCOL_NUMBERS: dict[str, int] = {
    "hopopt": 0, "icmp": 1, "igmp": 2, "ggp": 3, "ipip": 4, "tcp": 6, "egp": 8, "udp": 17,
    "dccp": 33, "ipv6-encap": 41, "ipv6-route": 43, "ipv6-frag": 44, "rsvp": 46, "gre": 47,
    "esp": 50, "ah": 51, "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59, "ipv6-opts": 60,
    "ospf": 89, "pgm": 113, "vrrp": 112, "sctp": 132, "udplite": 136,
}

TCP, UDP, SCTP, ICMP, ICMPV6 = 6, 17, 132, 1, 58
DCCP, UDPLITE = 33, 136

PORT_PROTOCOLS = frozenset({TCP, UDP, SCTP})
"""Protocols whose ports the switch can match."""

UNMATCHABLE_PORT_PROTOCOLS = frozenset({DCCP, UDPLITE})
"""Protocols that have ports, which the switch cannot match: a port range on them matches
nothing rather than everything."""

ICMP_PROTOCOLS = frozenset({ICMP, ICMPV6})

SHORTHAND = {
    (4, None): "ip", (6, None): "ipv6",
    (4, TCP): "tcp", (6, TCP): "tcp6",
    (4, UDP): "udp", (6, UDP): "udp6",
    (4, SCTP): "sctp", (6, SCTP): "sctp6",
    (4, ICMP): "icmp", (6, ICMPV6): "icmp6",
}
"""ovs-ofctl shorthands for (IP version, protocol)."""

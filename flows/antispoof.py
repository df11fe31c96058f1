"""Anti-spoofing: a VM may only send from the MAC and IP addresses the control plane gave it.

The allowed pairs are the port's MAC with each fixed IP, each allowed address pair (an address
or a CIDR, with its own MAC or the port's), and the IPv6 link-local address of every allowed MAC.
Unlike neutron's firewall, ARP is checked on the sender hardware address too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from flows import actions, base, matches
from flows.cookies import Kind
from flows.flow import Flow, MatchItem, flow
from flows.model import IPNetwork, Port
from flows.pipeline import Table

PRIO_ALLOWED_SOURCE = 100


def link_local(mac: str) -> ipaddress.IPv6Address:
    """The EUI-64 link-local address a VM derives from its MAC."""
    octets = [int(part, 16) for part in mac.split(":")]
    octets[0] ^= 0x02
    eui = octets[:3] + [0xFF, 0xFE] + octets[3:]
    return ipaddress.IPv6Address(bytes([0xFE, 0x80, 0, 0, 0, 0, 0, 0, *eui]))


def allowed_sources(port: Port) -> dict[str, dict[int, list[IPNetwork]]]:
    """MAC -> IP version -> allowed source networks, without entries covered by others."""
    sources: dict[str, dict[int, list[IPNetwork]]] = {mac: {4: [], 6: []} for mac in port.macs}
    for address in port.fixed_ips:
        sources[port.mac][address.version].append(ipaddress.ip_network(address))
    for pair in port.address_pairs:
        sources[pair.mac][pair.network.version].append(pair.network)
    for mac, by_version in sources.items():
        by_version[6].append(ipaddress.ip_network(link_local(mac)))
        for version, nets in by_version.items():
            by_version[version] = _without_covered(nets)
    return sources


def _without_covered(nets: Iterable[IPNetwork]) -> list[IPNetwork]:
    unique = sorted(set(nets), key=lambda n: (n.prefixlen, n))
    kept: list[IPNetwork] = []
    for net in unique:
        if not any(net.subnet_of(wider) for wider in kept):  # type: ignore[arg-type]
            kept.append(net)
    return sorted(kept, key=lambda n: (n.network_address, n.prefixlen))


def nd_targets(port: Port) -> list[IPNetwork]:
    """Addresses the port may announce in a Neighbor Advertisement: its own IPv6 addresses."""
    return _without_covered(net for by_version in allowed_sources(port).values()
                            for net in by_version[6])


def spoof_flows(port: Port, kind: Kind) -> list[Flow]:
    """EGRESS_SPOOF flows of one port, plus its NA target checks in EGRESS_BASE."""
    to_base = (actions.goto(Table.EGRESS_BASE),)
    me = matches.port(port.ofport)
    flows: list[Flow] = []

    def allow(match: tuple[MatchItem, ...]) -> None:
        flows.append(flow(Table.EGRESS_SPOOF, PRIO_ALLOWED_SOURCE, match, to_base, kind))

    for mac, by_version in allowed_sources(port).items():
        src = ("dl_src", mac)
        for net in by_version[4]:
            text = matches.network_text(net)
            allow((("ip", ""), me, src, ("nw_src", text)))
            allow((("arp", ""), me, src, ("arp_spa", text), ("arp_sha", mac)))
        for net in by_version[6]:
            allow((("ipv6", ""), me, src, ("ipv6_src", matches.network_text(net))))
        allow((*base.DHCP4_CLIENT[:1], me, src, ("nw_src", "0.0.0.0"), *base.DHCP4_CLIENT[1:]))
        for icmp_type in (base.ICMPV6_NS, base.MLDV2_REPORT):
            allow((("icmp6", ""), me, src, ("ipv6_src", "::"),
                   matches.icmp_type(6, icmp_type)))
    forward = (actions.goto(Table.FORWARD),)
    for target in nd_targets(port):
        flows.append(flow(Table.EGRESS_BASE, base.PRIO_NA_TARGET,
                          (("icmp6", ""), me, matches.icmp_type(6, base.ICMPV6_NA),
                           ("nd_target", matches.network_text(target))), forward, kind))
    return flows

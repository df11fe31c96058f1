"""The reference evaluator: does docs/security-groups.md let this packet through this port?

Plain Python from the contract, sharing no code with ``flows/`` (see ``tests/reference/model.py``
for why). ``Evaluator(sg_info).evaluate(packet)`` answers allow or deny with the reason: the rule
that allowed it, or the base check that decided. The order of the checks is the order of the
contract's sections: port in error, port security off, anti-spoofing and the egress base, the
ingress base, conntrack, rules.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.reference.model import RefPort, RefRule, member_networks, parse_ports
from tests.reference.packets import EGRESS, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, Packet

#: ICMPv6 types the egress base decides.
RA, REDIRECT, RS, NS, NA = 134, 137, 133, 135, 136
MLD_REPORTS = frozenset({131, 132, 143})
MLD_QUERY, MLDV2_REPORT = 130, 143
EGRESS_ALWAYS_ICMPV6 = frozenset({RS, NS}) | MLD_REPORTS
INGRESS_ALWAYS_ICMPV6 = frozenset({MLD_QUERY, RA, NS, NA}) | MLD_REPORTS

DHCP4_CLIENT = (68, 67)
DHCP4_SERVER = (67, 68)
DHCP6_CLIENT = (546, 547)
DHCP6_SERVER = (547, 546)
#: (server reply, client request) ports per family: DHCPv4 is IPv4, DHCPv6 is IPv6.
_DHCP = {"IPv4": (DHCP4_SERVER, DHCP4_CLIENT), "IPv6": (DHCP6_SERVER, DHCP6_CLIENT)}


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


def allow(reason: str) -> Verdict:
    return Verdict(True, reason)


def deny(reason: str) -> Verdict:
    return Verdict(False, reason)


class Evaluator:
    """The verdicts of one compiler input; build once per input, ask per packet."""

    def __init__(self, sg_info: Mapping[str, Any]) -> None:
        self.sg_info = sg_info
        self.ports: dict[str, RefPort] = parse_ports(sg_info)
        self._members: dict[tuple[str, str], list[Any]] = {}

    @property
    def port_errors(self) -> dict[str, str]:
        return {pid: port.error for pid, port in self.ports.items() if port.error}

    def evaluate(self, packet: Packet) -> Verdict:
        port = self.ports.get(packet.port_id)
        if port is None:
            return deny(f"no port {packet.port_id}")
        if port.error:
            return deny(f"port in error: {port.error}")
        if not port.port_security:
            return allow("port security disabled")
        if packet.direction == EGRESS:
            base = self._egress_base(port, packet)
        else:
            base = self._ingress_base(packet)
        if base is not None:
            return base
        if port.stateful and packet.ct == "est_rpl":
            return allow("reply of a committed connection (ct est+rpl)")
        rule = self._matching_rule(port, packet)
        if rule is None:
            state = "stateful" if port.stateful else "stateless"
            return deny(f"no {packet.direction} rule of the ({state}) port matches")
        return allow(f"rule {rule.origin}")

    # -- egress: anti-spoofing, then the verdicts no rule can change ------------------------

    def _egress_base(self, port: RefPort, packet: Packet) -> Verdict | None:
        spoof = self._anti_spoofing(port, packet)
        if spoof is not None:
            return spoof
        if packet.ethertype == "ARP":
            return allow("egress base: ARP from an allowed MAC/IP")
        hidden = _hidden_upper_layer(packet)
        if hidden is not None:
            return deny(f"egress base: {hidden}")
        udp = self._udp_ports(packet)
        server, client = _DHCP[packet.ethertype]
        if udp == server:
            return deny(f"egress base: DHCP server reply {udp[0]}->{udp[1]} from the VM")
        if udp == client:
            return allow(f"egress base: DHCP client {udp[0]}->{udp[1]}")
        icmp6 = self._icmpv6_type(packet)
        if icmp6 in (RA, REDIRECT):
            return deny(f"egress base: ICMPv6 {icmp6} from the VM")
        if icmp6 == NA:
            target = _address(packet.nd_target)
            if target is None or not any(target in net for net in port.own_ipv6()):
                return deny(f"egress base: NA target {packet.nd_target} not the port's")
            return allow("egress base: NA with the port's own target")
        if icmp6 in EGRESS_ALWAYS_ICMPV6:
            return allow(f"egress base: ICMPv6 {icmp6}")
        return None

    def _anti_spoofing(self, port: RefPort, packet: Packet) -> Verdict | None:
        """None when the frame passes anti-spoofing, else the deny verdict."""
        mac = packet.eth_src.lower()
        allowed_macs = port.macs
        if packet.ethertype == "ARP":
            spa = _address(packet.arp_spa)
            if (packet.arp_sha or "").lower() != mac or mac not in allowed_macs:
                return deny("anti-spoofing: ARP sha must equal eth_src, an allowed MAC")
            if spa is None or spa.version != 4 or not self._source_ok(port, mac, spa):
                return deny(f"anti-spoofing: ARP spa {packet.arp_spa} not allowed for {mac}")
            return None
        if packet.ethertype not in ("IPv4", "IPv6"):
            return deny(f"anti-spoofing: ethertype {packet.ethertype}")
        src = _address(packet.ip_src)
        if src is not None and self._source_ok(port, mac, src):
            return None
        if mac in allowed_macs and src is not None and int(src) == 0:
            if packet.ethertype == "IPv4" and self._udp_ports(packet) == DHCP4_CLIENT:
                return None
            if (packet.ethertype == "IPv6"
                    and self._icmpv6_type(packet) in (NS, MLDV2_REPORT)):
                return None
        return deny(f"anti-spoofing: ({mac}, {packet.ip_src}) is not an allowed source")

    @staticmethod
    def _source_ok(port: RefPort, mac: str, address: Any) -> bool:
        return any(mac == allowed_mac and address.version == net.version and address in net
                   for allowed_mac, net in port.sources)

    # -- ingress base ------------------------------------------------------------------------

    def _ingress_base(self, packet: Packet) -> Verdict | None:
        if packet.ethertype == "ARP":
            return allow("ingress base: ARP")
        if packet.ethertype not in ("IPv4", "IPv6"):
            return deny(f"ingress base: non-IP ethertype {packet.ethertype}")
        udp = self._udp_ports(packet)
        if udp == _DHCP[packet.ethertype][0]:
            return allow(f"ingress base: DHCP reply {udp[0]}->{udp[1]}")
        icmp6 = self._icmpv6_type(packet)
        if icmp6 in INGRESS_ALWAYS_ICMPV6:
            return allow(f"ingress base: ICMPv6 {icmp6}")
        return None

    @staticmethod
    def _udp_ports(packet: Packet) -> tuple[int, int] | None:
        if packet.ip_proto != PROTO_UDP or not packet.has_l4:
            return None
        if packet.ethertype not in ("IPv4", "IPv6"):
            return None
        return (packet.l4_src, packet.l4_dst)

    @staticmethod
    def _icmpv6_type(packet: Packet) -> int | None:
        if packet.ethertype != "IPv6" or packet.ip_proto != PROTO_ICMPV6 or not packet.has_l4:
            return None
        return packet.icmp_type

    # -- rules -------------------------------------------------------------------------------

    def _matching_rule(self, port: RefPort, packet: Packet) -> RefRule | None:
        for rule in port.rules:
            if self.rule_matches(rule, packet, stateless=not port.stateful):
                return rule
        return None

    def rule_matches(self, rule: RefRule, packet: Packet, stateless: bool) -> bool:
        if rule.direction != packet.direction or rule.ethertype != packet.ethertype:
            return False
        if rule.matches_nothing:
            return False
        later_v6 = packet.ethertype == "IPv6" and not packet.has_l4
        if rule.protocol is not None and rule.protocol != packet.ip_proto and not later_v6:
            return False  # a later IPv6 fragment does not say its protocol (contract)
        if packet.has_l4:
            if not self._l4_matches(rule, packet):
                return False
        elif not stateless and _has_l4_condition(rule):
            return False  # no ports to check; only stateless ports ignore them (contract)
        remote = _address(packet.ip_dst if packet.direction == EGRESS else packet.ip_src)
        if remote is None:
            return False
        if rule.prefix is not None and remote not in rule.prefix:
            return False
        if rule.remote_group is not None:
            members = self._member_networks(rule.remote_group, rule.ethertype)
            if not any(remote.version == net.version and remote in net for net in members):
                return False
        return True

    @staticmethod
    def _l4_matches(rule: RefRule, packet: Packet) -> bool:
        if rule.is_icmp:
            if rule.icmp_type is not None and rule.icmp_type != packet.icmp_type:
                return False
            return rule.icmp_code is None or rule.icmp_code == packet.icmp_code
        if rule.dst_ports is not None:
            low, high = rule.dst_ports
            if not low <= packet.l4_dst <= high:
                return False
        if rule.src_ports is not None:
            low, high = rule.src_ports
            if not low <= packet.l4_src <= high:
                return False
        return True

    def _member_networks(self, group_id: str, ethertype: str) -> list[Any]:
        key = (group_id, ethertype)
        if key not in self._members:
            self._members[key] = member_networks(self.sg_info, group_id, ethertype)
        return self._members[key]


def evaluate(sg_info: Mapping[str, Any], packet: Packet) -> Verdict:
    """One-shot form of ``Evaluator(sg_info).evaluate(packet)``."""
    return Evaluator(sg_info).evaluate(packet)


def _has_l4_condition(rule: RefRule) -> bool:
    return (rule.dst_ports is not None or rule.src_ports is not None
            or rule.icmp_type is not None)


def _address(value: str | None) -> Any:
    if value is None:
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


UNWALKED_IPV6_HEADERS = frozenset({0, 43, 60, 135, 139, 140, 253, 254})


def _hidden_upper_layer(packet: Packet) -> str | None:
    """Why the packet's upper-layer header cannot be seen (docs/security-groups.md), if so."""
    if packet.ethertype not in ("IPv4", "IPv6"):
        return None
    if not packet.has_l4:
        return None  # a later fragment: no upper-layer header to see (nor its protocol)
    if packet.ethertype == "IPv6" and packet.ip_proto in UNWALKED_IPV6_HEADERS:
        return f"IPv6 next header {packet.ip_proto} left unparsed"
    if packet.ethertype == "IPv6" and packet.ip_proto == 44:
        return "a fragment header left unparsed"
    if packet.ethertype == "IPv6" and packet.ip_proto == PROTO_ICMPV6 and packet.icmp_type == 0:
        return "ICMPv6 type 0 (a header too short to read)"
    if packet.ip_proto in (PROTO_TCP, PROTO_UDP) and packet.l4_dst == 0:
        return "destination port 0 (a header too short to read)"
    return None

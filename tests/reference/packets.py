"""A packet as the reference evaluator sees it, and as ``ovs-appctl ofproto/trace`` wants it.

One value describes a frame at one port in one direction, plus the conntrack state the trace
should assume. The evaluator reads the fields; ``to_trace_flow`` renders the same fields as a
trace flow, so the two sides of the differential test look at exactly the same packet.

Conventions of the pipeline under test (see docs/security-groups.md, "Which traffic a port
sees"): an *egress* frame enters on the VM's ofport and is addressed to a MAC that is not on the
host, so when allowed it leaves on the network's uplink; an *ingress* frame enters untagged on the
uplink addressed to the port's MAC, so when allowed it leaves on the port's ofport.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

EGRESS = "egress"
INGRESS = "ingress"

#: Destination MAC of egress frames: on no port of the host, so L2 sends it to the uplink.
OFF_HOST_MAC = "02:00:00:00:00:fe"
#: Source MAC of ingress frames (a machine behind the uplink).
REMOTE_MAC = "02:00:00:00:00:aa"

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMPV6 = 58
PROTO_SCTP = 132

_L4_KEYWORDS = {PROTO_TCP: "tcp", PROTO_UDP: "udp", PROTO_SCTP: "sctp"}
_ND_TYPES = (135, 136)

#: Conntrack state of a packet -> the ``--ct-next`` argument of ofproto/trace.
CT_NEXT = {"new": "trk,new", "est": "trk,est", "est_rpl": "trk,est,rpl"}


@dataclass(frozen=True)
class Packet:
    """A frame seen by one port in one direction.

    ``ip_proto``/``l4_src``/``l4_dst`` describe IP packets; ``icmp_type``/``icmp_code`` (and
    ``nd_target`` for Neighbor Solicitation/Advertisement) ICMP and ICMPv6 ones; the ``arp_*``
    fields ARP. ``fragment`` is ``"no"``, ``"first"`` or ``"later"`` (a later fragment has no
    L4 header, so its ports, types and codes are meaningless). ``ct`` is the conntrack state the
    trace assumes for a stateful port: ``"new"``, ``"est"`` (original direction of an
    established connection), ``"est_rpl"`` (its reply) or None (no conntrack).
    """

    direction: str
    port_id: str
    eth_src: str
    eth_dst: str
    ethertype: str
    ip_src: str | None = None
    ip_dst: str | None = None
    ip_proto: int | None = None
    l4_src: int = 0
    l4_dst: int = 0
    icmp_type: int | None = None
    icmp_code: int | None = None
    nd_target: str | None = None
    arp_sha: str | None = None
    arp_spa: str | None = None
    arp_tpa: str | None = None
    arp_op: int = 1
    fragment: str = "no"
    ct: str | None = None

    def replace(self, **changes: object) -> Packet:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @property
    def has_l4(self) -> bool:
        """False for a non-first fragment: no ports, no ICMP type/code."""
        return self.fragment != "later"

    def ct_next(self) -> list[str] | None:
        """The ``ct_next`` argument of ``OVSSandbox.trace`` for this packet."""
        return None if self.ct is None else [CT_NEXT[self.ct]]

    def to_trace_flow(self, in_port: int) -> str:
        """The packet as an ``ofproto/trace`` flow entering on ``in_port`` (untagged)."""
        head = [f"in_port={in_port}", f"dl_src={self.eth_src}", f"dl_dst={self.eth_dst}"]
        if self.ethertype == "ARP":
            return ",".join(["arp", *head, f"arp_sha={self.arp_sha}", f"arp_spa={self.arp_spa}",
                             f"arp_tpa={self.arp_tpa or '0.0.0.0'}", f"arp_op={self.arp_op}",
                             f"arp_tha={self.eth_dst}"])
        v6 = self.ethertype == "IPv6"
        addrs = ([f"ipv6_src={self.ip_src}", f"ipv6_dst={self.ip_dst}"] if v6
                 else [f"nw_src={self.ip_src}", f"nw_dst={self.ip_dst}"])
        frag = [] if self.fragment == "no" else [f"nw_frag={self.fragment}"]
        proto = self.ip_proto
        if v6 and self.fragment == "later":  # OVS sees only the fragment header of these
            return ",".join(["ipv6", *head, *addrs, "nw_proto=44", *frag])
        if not self.has_l4 or proto not in (*_L4_KEYWORDS, PROTO_ICMP, PROTO_ICMPV6):
            keyword = "ipv6" if v6 else "ip"
            return ",".join([keyword, *head, *addrs, f"nw_proto={proto}", *frag])
        if proto in _L4_KEYWORDS:
            name = _L4_KEYWORDS[proto]
            return ",".join([name + ("6" if v6 else ""), *head, *addrs, *frag,
                             f"{name}_src={self.l4_src}", f"{name}_dst={self.l4_dst}"])
        if v6 and proto == PROTO_ICMPV6:
            fields = [f"icmpv6_type={self.icmp_type}", f"icmpv6_code={self.icmp_code}"]
            if self.icmp_type in _ND_TYPES:
                fields.append(f"nd_target={self.nd_target or '::'}")
            return ",".join(["icmp6", *head, *addrs, *frag, *fields])
        if not v6 and proto == PROTO_ICMP:
            return ",".join(["icmp", *head, *addrs, *frag, f"icmp_type={self.icmp_type}",
                             f"icmp_code={self.icmp_code}"])
        keyword = "ipv6" if v6 else "ip"
        return ",".join([keyword, *head, *addrs, f"nw_proto={proto}", *frag])

    def describe(self) -> str:
        """One line for failure messages."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        return "Packet(" + ", ".join(f"{k}={v!r}" for k, v in fields.items()
                                     if k not in defaults or v != defaults[k]) + ")"

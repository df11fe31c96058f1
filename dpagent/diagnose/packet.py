"""The packet ``dpagent-ctl trace`` asks about, as ``ofproto/trace`` wants it. Pure.

An operator names a packet the way they think of it: from a port to a port or an address,
``tcp/5432``, a new or an established connection. The trace needs a flow: the ingress OpenFlow
port, both MACs and addresses, the L4 header, and one ``--ct-next`` state per conntrack pass.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

PROTOCOLS = {"tcp": 6, "udp": 17, "sctp": 132, "icmp": 1}
"""What a service may name; ``icmp`` means ICMPv6 for an IPv6 packet."""
ECHO_REQUEST = {4: 8, 6: 128}
SOURCE_PORT = 40000
"""The client's port: an ephemeral one, as a real client would pick."""
UNKNOWN_MAC = "02:00:00:00:00:01"
"""The destination MAC for an address no local port holds (a router's or a remote VM's, which
this host does not know): a unicast MAC no port has, so it takes the network's way out."""
STATES = {"new": "trk,new", "established": "trk,est", "reply": "trk,est,rpl",
          "invalid": "trk,inv"}
"""Connection state -> the conntrack state each ``ct()`` pass of the trace resumes with.
``reply``: the packet answers a connection the destination opened (its ports swapped)."""
CT_PASSES = 2
"""At most two conntrack passes: the sender's egress filter, the receiver's ingress filter."""


class PacketError(ValueError):
    """The packet cannot be traced as given; the message says what to change."""


@dataclass(frozen=True)
class Service:
    """``tcp/5432``, ``udp/53``, ``sctp/9``, ``icmp`` (an echo request), ``icmp/TYPE[/CODE]``
    or ``ip`` (any other payload, with ``ip/PROTO`` for a protocol number)."""

    protocol: str
    number: int
    port: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None

    def describe(self) -> str:
        if self.port is not None:
            return f"{self.protocol}/{self.port}"
        if self.protocol == "icmp":
            return f"icmp type {self.icmp_type} code {self.icmp_code or 0}" \
                if self.icmp_type is not None else "icmp echo request"
        return f"ip protocol {self.number}"


def parse_service(text: str) -> Service:
    parts = text.strip().lower().split("/")
    name = parts[0]
    try:
        numbers = [int(p) for p in parts[1:]]
    except ValueError:
        raise PacketError(f"service {text!r}: numbers after '/' expected") from None
    if name in ("tcp", "udp", "sctp"):
        if len(numbers) != 1 or not 0 < numbers[0] < 65536:
            raise PacketError(f"service {text!r}: {name} needs one port, 1-65535 "
                              f"(e.g. {name}/5432)")
        return Service(name, PROTOCOLS[name], port=numbers[0])
    if name in ("icmp", "icmp6", "ping"):
        if len(numbers) > 2 or any(not 0 <= n < 256 for n in numbers):
            raise PacketError(f"service {text!r}: icmp[/TYPE[/CODE]], each 0-255")
        return Service("icmp", PROTOCOLS["icmp"],
                       icmp_type=numbers[0] if numbers else None,
                       icmp_code=numbers[1] if len(numbers) > 1 else None)
    if name == "ip":
        if len(numbers) > 1 or any(not 0 <= n < 256 for n in numbers):
            raise PacketError(f"service {text!r}: ip[/PROTOCOL], 0-255")
        return Service("ip", numbers[0] if numbers else 253)  # 253: for experiments
    raise PacketError(f"service {text!r}: one of tcp/PORT, udp/PORT, sctp/PORT, "
                      "icmp[/TYPE[/CODE]], ip[/PROTOCOL]")


@dataclass(frozen=True)
class Packet:
    """Everything the trace's flow needs."""

    in_port: int
    src_mac: str
    dst_mac: str
    src_ip: IPAddress
    dst_ip: IPAddress
    service: Service
    state: str = "new"
    vlan: int | None = None
    """A VLAN tag on the frame (a VM may not send tagged frames on its port)."""

    def flow(self) -> str:
        """The flow in ``ofproto/trace`` syntax."""
        v6 = self.src_ip.version == 6
        if self.src_ip.version != self.dst_ip.version:
            raise PacketError(f"source {self.src_ip} and destination {self.dst_ip} are of "
                              "different IP versions")
        service = self.service
        fields = [f"in_port={self.in_port}"]
        if self.vlan is not None:
            fields.append(f"dl_vlan={self.vlan}")
        if service.protocol == "icmp":
            fields.append("icmp6" if v6 else "icmp")
        elif service.protocol == "ip":
            fields += ["ipv6" if v6 else "ip", f"nw_proto={service.number}"]
        else:
            fields.append(service.protocol + ("6" if v6 else ""))
        fields += [f"dl_src={self.src_mac}", f"dl_dst={self.dst_mac}"]
        src, dst = ("ipv6_src", "ipv6_dst") if v6 else ("nw_src", "nw_dst")
        fields += [f"{src}={self.src_ip}", f"{dst}={self.dst_ip}", "nw_ttl=64"]
        if service.port is not None:
            ports = (service.port, SOURCE_PORT) if self.state == "reply" \
                else (SOURCE_PORT, service.port)
            fields += [f"tp_src={ports[0]}", f"tp_dst={ports[1]}"]
        elif service.protocol == "icmp":
            icmp_type = ECHO_REQUEST[6 if v6 else 4] if service.icmp_type is None \
                else service.icmp_type
            fields += [f"icmp_type={icmp_type}", f"icmp_code={service.icmp_code or 0}"]
        return ",".join(fields)

    def ct_next(self) -> list[str]:
        """The ``--ct-next`` arguments: the same state for each conntrack pass."""
        return [arg for _ in range(CT_PASSES) for arg in ("--ct-next", STATES[self.state])]

    def describe(self) -> str:
        port = self.service.port
        if port is None:
            ends = f"{self.src_ip} -> {self.dst_ip}"
        elif self.state == "reply":
            ends = f"{self.src_ip}:{port} -> {self.dst_ip}:{SOURCE_PORT}"
        else:
            ends = f"{self.src_ip}:{SOURCE_PORT} -> {self.dst_ip}:{port}"
        state = "a reply of a connection the destination opened" if self.state == "reply" \
            else f"{self.state} connection"
        tag = f", tagged VLAN {self.vlan}" if self.vlan is not None else ""
        return f"{self.service.describe()} {ends}, {state}{tag}"


def parse_address(text: str) -> IPAddress | None:
    """An IP address, or None when ``text`` is not one (then it names a port)."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def check_state(state: str) -> str:
    if state not in STATES:
        raise PacketError(f"state {state!r}: one of {', '.join(STATES)}")
    return state

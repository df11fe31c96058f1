"""The compiler's input, validated and typed: what the control plane says about this host.

:mod:`flows.parse` builds these values from the ``security_group_info_for_devices`` RPC reply;
everything after parsing can rely on them being well-formed.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
PortIntervals = tuple[tuple[int, int], ...]
"""Merged, sorted closed intervals of transport ports."""


class Direction(enum.Enum):
    INGRESS = "ingress"
    EGRESS = "egress"


@dataclass(frozen=True, slots=True)
class RemotePrefix:
    """The far side is any address in ``network`` (``0.0.0.0/0`` / ``::/0`` = anywhere)."""

    network: IPNetwork


@dataclass(frozen=True, slots=True)
class RemoteGroup:
    """The far side is a member of a security group or of an address group."""

    group_id: str
    address_group: bool = False


Remote = RemotePrefix | RemoteGroup


@dataclass(frozen=True, slots=True)
class Rule:
    """One security-group rule, validated.

    ``protocol`` None means any; ``dst_ports``/``src_ports`` None mean any port;
    ``icmp_type``/``icmp_code`` None mean any. ``origin`` names where the rule came from, for
    error messages and for tracing a verdict back to it.
    """

    direction: Direction
    ethertype: int
    protocol: int | None
    dst_ports: PortIntervals | None
    src_ports: PortIntervals | None
    icmp_type: int | None
    icmp_code: int | None
    remote: Remote
    stateful: bool
    origin: str
    matches_nothing: bool = False
    """A port range the switch cannot match (dccp, udplite): the rule allows nothing, but it
    still says whether its group is stateful."""


@dataclass(frozen=True, slots=True)
class AddressPair:
    mac: str
    network: IPNetwork


@dataclass(frozen=True, slots=True)
class Uplink:
    """Where a network leaves br-int: a patch port, tagged with ``vlan`` or untagged (None)."""

    ofport: int
    vlan: int | None


@dataclass(frozen=True, slots=True)
class Network:
    network_id: str
    local_vlan: int
    uplink: Uplink | None
    subnets: tuple[IPNetwork, ...] = ()
    """The network's subnets, where the control plane told them (the resource cache does): a
    remote-group member on another network whose address lies in one of them cannot
    legitimately arrive on this network (see :mod:`flows.remote_groups`)."""


@dataclass(frozen=True, slots=True)
class Port:
    port_id: str
    ofport: int
    local_vlan: int
    network_id: str
    mac: str
    fixed_ips: tuple[IPAddress, ...]
    address_pairs: tuple[AddressPair, ...]
    port_security: bool
    security_groups: tuple[str, ...]

    @property
    def macs(self) -> tuple[str, ...]:
        """The port's MAC, then every other MAC its address pairs allow, without repeats."""
        seen = [self.mac]
        for pair in self.address_pairs:
            if pair.mac not in seen:
                seen.append(pair.mac)
        return tuple(seen)


@dataclass(frozen=True, slots=True)
class PortError:
    """Why a port got no flows (its traffic stays dropped)."""

    port_id: str
    message: str

    def __str__(self) -> str:
        return f"port {self.port_id}: {self.message}"


@dataclass(frozen=True)
class HostModel:
    """Everything the compiler needs about this host, already validated.

    ``groups`` maps a security group to its rules; ``members`` maps a remote group or address
    group to its member networks per IP version (4 or 6), as canonical text (``10.0.0.5`` for a
    host, ``10.1.0.0/24`` for a CIDR) because that is what the member flows print.
    """

    ports: Mapping[str, Port]
    groups: Mapping[str, tuple[Rule, ...]]
    members: Mapping[str, Mapping[int, frozenset[str]]]
    networks: Mapping[int, Network]
    port_errors: tuple[PortError, ...] = ()
    warnings: tuple[str, ...] = field(default=())
    group_errors: Mapping[str, str] = field(default_factory=dict)
    """Security groups whose rules could not be parsed -> why; ports using them fail."""
    member_networks: Mapping[str, Mapping[int, Mapping[str, frozenset[str]]]] = \
        field(default_factory=dict)
    """Remote group -> IP version -> member address (as in ``members``) -> the networks of the
    ports it belongs to, where the control plane told them (the resource cache does; neutron's
    SG_INFO reply does not). An address without it matches on every network, as in neutron."""
    expected: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Ports bound to this host whose VIF is not plugged yet -> their security groups. The
    remote groups their rules name get their member flows now, so the port's own flows are
    all that is left to install when the VIF appears. Safe: a member flow is only the second
    clause of a conjunction, and lets nothing through without a port's first clause."""

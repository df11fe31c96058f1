"""The controller's resources as frozen values, and the agent records.

A :class:`Topology` is the whole declarative truth (networks, security groups, address
groups, ports, trunks), every reference resolved to an id.  It is replaced as a whole on a
reload, never edited in place, so that readers (RPC handlers, the API) can hold a snapshot
without a lock.  What changes at run time -- port and trunk status, agents -- lives beside it.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

DEVICE_OWNER_COMPUTE = "compute:nova"
DEVICE_OWNER_SUBPORT = "trunk:subport"


@dataclass(frozen=True)
class Subnet:
    id: str
    cidr: str
    gateway_ip: str | None = None


@dataclass(frozen=True)
class Network:
    id: str
    name: str
    network_type: str  # flat | vlan
    physical_network: str | None
    segmentation_id: int | None
    mtu: int = 1500
    subnets: tuple[Subnet, ...] = ()


@dataclass(frozen=True)
class Rule:
    """A security-group rule in neutron's API form (``remote_ip_prefix`` normalised)."""

    id: str
    direction: str
    ethertype: str
    protocol: str | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None
    remote_address_group_id: str | None = None

    def content(self) -> tuple[Any, ...]:
        """Everything but the id: two rules with equal content are the same rule."""
        return dataclasses.astuple(self)[1:]


@dataclass(frozen=True)
class SecurityGroup:
    id: str
    name: str
    stateful: bool = True
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True)
class AddressGroup:
    id: str
    name: str
    addresses: tuple[str, ...] = ()  # normalised CIDRs


@dataclass(frozen=True)
class FixedIp:
    subnet_id: str
    ip_address: str


@dataclass(frozen=True)
class AddressPair:
    ip_address: str
    mac_address: str | None = None


@dataclass(frozen=True)
class Port:
    id: str
    name: str
    network_id: str
    mac_address: str
    fixed_ips: tuple[FixedIp, ...] = ()
    security_groups: tuple[str, ...] = ()
    port_security_enabled: bool = True
    allowed_address_pairs: tuple[AddressPair, ...] = ()
    host: str | None = None
    vnic_type: str = "normal"  # normal | direct
    pci_slot: str | None = None
    admin_state_up: bool = True
    device_owner: str = DEVICE_OWNER_COMPUTE


@dataclass(frozen=True)
class SubPort:
    port_id: str
    segmentation_type: str
    segmentation_id: int


@dataclass(frozen=True)
class Trunk:
    id: str
    name: str
    port_id: str  # the parent port
    sub_ports: tuple[SubPort, ...] = ()


@dataclass(frozen=True)
class Topology:
    """Everything declared, by id.  Build a new one to change anything."""

    networks: dict[str, Network] = field(default_factory=dict)
    security_groups: dict[str, SecurityGroup] = field(default_factory=dict)
    address_groups: dict[str, AddressGroup] = field(default_factory=dict)
    ports: dict[str, Port] = field(default_factory=dict)
    trunks: dict[str, Trunk] = field(default_factory=dict)

    def by_kind(self) -> dict[str, dict[str, Any]]:
        return {kind: getattr(self, kind) for kind in RESOURCE_KINDS}

    def trunk_of_parent(self, port_id: str) -> Trunk | None:
        return next((t for t in self.trunks.values() if t.port_id == port_id), None)

    def trunk_of_subport(self, port_id: str) -> tuple[Trunk, SubPort] | None:
        for trunk in self.trunks.values():
            for sub in trunk.sub_ports:
                if sub.port_id == port_id:
                    return trunk, sub
        return None


RESOURCE_KINDS: dict[str, type] = {
    "networks": Network, "security_groups": SecurityGroup, "address_groups": AddressGroup,
    "ports": Port, "trunks": Trunk,
}
"""Topology attribute -> the class of its values (also the store's ``kind`` column)."""


@dataclass
class AgentRecord:
    """One agent as neutron's agents table keeps it, keyed by (agent_type, host).

    Times are ``time.time()`` values; ``heartbeat_at`` is when the controller received the
    last report (neutron's ``heartbeat_timestamp``), which decides ``alive``.
    """

    id: str
    agent_type: str
    host: str
    binary: str
    topic: str
    admin_state_up: bool = True
    configurations: dict[str, Any] = field(default_factory=dict)
    resource_versions: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    started_at: float = 0.0
    heartbeat_at: float = 0.0


# -- JSON codec (the store keeps each resource as one JSON document) ---------------------------

def to_json(value: Any) -> Any:
    """A dataclass value as plain JSON data (tuples become lists)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value


def from_json(cls: type, data: Any) -> Any:
    """The inverse of :func:`to_json` for the resource classes of this module."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _decode(hints[f.name], data[f.name])
    return cls(**kwargs)


def _decode(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin is tuple:
        (item, _ellipsis) = typing.get_args(hint)
        return tuple(_decode(item, v) for v in value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return from_json(hint, value)
    return value

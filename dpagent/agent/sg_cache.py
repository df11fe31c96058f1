"""What the control plane said about the wired ports' security, kept parsed and versioned.

Replies of ``security_group_info_for_devices`` are folded in piece by piece; each piece is
parsed once, and :meth:`SecurityGroupCache.ingest` says exactly what changed (ports, groups'
rules, remote groups' members) so that the compiler recomputes only that.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flows.model import HostModel, IPNetwork, Network, Port, PortError, RemoteGroup, Rule
from flows.parse import (
    InputError,
    parse_groups,
    parse_member_networks,
    parse_members,
    parse_port,
    parse_port_groups,
    parse_subnets,
)

LOG = logging.getLogger(__name__)


@dataclass
class Changed:
    ports: set[str] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    members: set[str] = field(default_factory=set)
    expected: set[str] = field(default_factory=set)
    """ports bound here, not plugged yet (see :attr:`flows.model.HostModel.expected`)"""

    def __bool__(self) -> bool:
        return bool(self.ports or self.groups or self.members or self.expected)

    def merge(self, other: Changed) -> None:
        self.ports |= other.ports
        self.groups |= other.groups
        self.members |= other.members
        self.expected |= other.expected


class SecurityGroupCache:
    def __init__(self) -> None:
        self._devices: dict[str, dict[str, Any]] = {}
        self._ports: dict[str, Port] = {}
        self._port_errors: dict[str, PortError] = {}
        self._raw_groups: dict[str, Any] = {}
        self._groups: dict[str, tuple[Rule, ...]] = {}
        self._group_errors: dict[str, str] = {}
        self._raw_members: dict[str, Any] = {}
        self._members: dict[str, dict[int, frozenset[str]]] = {}
        self._raw_member_networks: dict[str, Any] = {}
        self._member_networks: dict[str, dict[int, dict[str, frozenset[str]]]] = {}
        """remote group -> IP version -> member address -> the networks of its ports (only
        from the resource cache's answers)"""
        self._subnets: dict[str, tuple[IPNetwork, ...]] = {}
        """network id -> its subnets (likewise)"""
        self._warnings: list[str] = []
        self.networks: dict[int, Network] = {}
        self._expected: dict[str, tuple[str, ...]] = {}
        """port bound here whose VIF is not plugged yet -> its security groups"""
        self._referring: dict[str, str] | None = None
        """remote group -> one port whose rules name it (None: to be rebuilt; ports or
        rules changed): a member change must not walk every port's rules"""

    # -- folding replies in --------------------------------------------------------------------

    def ingest(self, reply: Mapping[str, Any], local: Mapping[str, Mapping[str, Any]],
               expected: Iterable[str] = ()) -> Changed:
        """Fold one reply in. ``local`` gives, per port id, the facts only the agent knows
        (``ofport``, ``local_vlan``); of the devices of the reply without local facts, those
        in ``expected`` (bound here, not plugged yet) are kept for their security groups
        only, the others are ignored."""
        changed = Changed()
        expected = set(expected)
        for sg_id, rules in (reply.get("security_groups") or {}).items():
            if self._raw_groups.get(sg_id) != rules:
                self._raw_groups[sg_id] = rules  # replies are fresh objects: no copy needed
                groups, errors = parse_groups({sg_id: rules}, self._warnings)
                self._groups.pop(sg_id, None)
                self._group_errors.pop(sg_id, None)
                self._groups.update(groups)
                self._group_errors.update(errors)
                changed.groups.add(sg_id)
                self._referring = None
        for group_id, by_family in (reply.get("sg_member_ips") or {}).items():
            if self._raw_members.get(group_id) != by_family:
                self._raw_members[group_id] = by_family
                self._members.update(parse_members({group_id: by_family}, self._warnings))
                changed.members.add(group_id)
        for group_id, by_address in (reply.get("member_networks") or {}).items():
            if self._raw_member_networks.get(group_id) != by_address:
                self._raw_member_networks[group_id] = by_address
                self._member_networks.pop(group_id, None)
                self._member_networks.update(
                    parse_member_networks({group_id: by_address}, self._warnings))
                changed.members.add(group_id)
        for network_id, cidrs in (reply.get("network_subnets") or {}).items():
            try:
                subnets = parse_subnets(cidrs, f"network {network_id}")
            except InputError as exc:
                LOG.warning("subnets ignored: %s", exc)
                continue
            self._subnets[network_id] = subnets
        for port_id, device in (reply.get("devices") or {}).items():
            if port_id not in local:
                if port_id in expected and self._expect(port_id, device):
                    changed.expected.add(port_id)
                continue
            merged = {**device, **local[port_id]} if isinstance(device, Mapping) else device
            if self._devices.get(port_id) != merged:
                self.set_device(port_id, merged)
                changed.ports.add(port_id)
        return changed

    def _expect(self, port_id: str, device: Any) -> bool:
        try:
            secured = not isinstance(device, Mapping) or \
                device.get("port_security_enabled", True) is not False
            groups = parse_port_groups(device) if secured else ()
        except (InputError, AttributeError) as exc:
            LOG.warning("port %s: not prepared ahead: %s", port_id, exc)
            groups = ()
        if self._expected.get(port_id) == groups:
            return False
        self._expected[port_id] = groups
        self._referring = None
        return True

    def forget_expected(self, port_id: str) -> bool:
        """The port is plugged (it is a device now), bound elsewhere, deleted or late."""
        if self._expected.pop(port_id, None) is None:
            return False
        self._referring = None
        return True

    def set_device(self, port_id: str, device: Any) -> None:
        self._referring = None
        self._devices[port_id] = device
        self._ports.pop(port_id, None)
        self._port_errors.pop(port_id, None)
        try:
            self._ports[port_id] = parse_port(port_id, device, self.networks)
        except InputError as exc:
            self._port_errors[port_id] = PortError(port_id, str(exc))

    def set_local(self, port_id: str, **facts: Any) -> bool:
        """Update local facts of a known port (e.g. its ofport changed); True if it changed."""
        device = self._devices.get(port_id)
        if device is None or all(device.get(k) == v for k, v in facts.items()):
            return False
        self.set_device(port_id, {**device, **facts})
        return True

    def remove_port(self, port_id: str) -> bool:
        self._referring = None
        known = port_id in self._devices
        self._devices.pop(port_id, None)
        self._ports.pop(port_id, None)
        self._port_errors.pop(port_id, None)
        return known

    def forget_unused(self) -> None:
        """Drop groups and member lists no wired port refers to any more."""
        self._referring = None
        used = {sg for p in self._ports.values() for sg in p.security_groups}
        used |= {sg for groups in self._expected.values() for sg in groups}
        remote = {r.remote.group_id for sg in used for r in self._groups.get(sg, ())
                  if isinstance(r.remote, RemoteGroup)}
        for sg_id in [g for g in self._raw_groups if g not in used]:
            for table in (self._raw_groups, self._groups, self._group_errors):
                table.pop(sg_id, None)
        for group_id in [g for g in self._raw_members if g not in remote]:
            self._raw_members.pop(group_id, None)
            self._members.pop(group_id, None)
        for group_id in [g for g in self._raw_member_networks if g not in remote]:
            self._raw_member_networks.pop(group_id, None)
            self._member_networks.pop(group_id, None)
        networks = {p.network_id for p in self._ports.values()}
        for network_id in [n for n in self._subnets if n not in networks]:
            del self._subnets[network_id]

    # -- questions -----------------------------------------------------------------------------

    def known_ports(self) -> set[str]:
        return set(self._devices)

    def ports_using(self, sg_ids: Iterable[str]) -> dict[str, str]:
        """For each of ``sg_ids`` used by a port here: one such port (to ask the server about)."""
        wanted = set(sg_ids)
        found: dict[str, str] = {}
        for port_id, groups in self._groups_by_port():
            for sg in groups:
                if sg in wanted:
                    found.setdefault(sg, port_id)
        return found

    def _groups_by_port(self) -> list[tuple[str, tuple[str, ...]]]:
        """Wired ports, then expected ones: a refresh asks through a wired port if it can."""
        return [(p, self._ports[p].security_groups) for p in sorted(self._ports)] + \
            [(p, self._expected[p]) for p in sorted(self._expected) if p not in self._ports]

    def ports_referring_to(self, group_ids: Iterable[str]) -> dict[str, str]:
        """For each remote group in ``group_ids``: one port whose rules name it (the first
        in order, wired ports first; an index kept until ports or rules change)."""
        if self._referring is None:
            index: dict[str, str] = {}
            for port_id, groups in self._groups_by_port():
                for sg in groups:
                    for rule in self._groups.get(sg, ()):
                        if isinstance(rule.remote, RemoteGroup):
                            index.setdefault(rule.remote.group_id, port_id)
            self._referring = index
        return {g: self._referring[g] for g in group_ids if g in self._referring}

    def model(self) -> HostModel:
        """A snapshot for the compiler (new containers, shared immutable parts)."""
        networks = {vlan: dataclasses.replace(n, subnets=self._subnets[n.network_id])
                        if n.network_id in self._subnets else n
                    for vlan, n in self.networks.items()}
        return HostModel(ports=dict(self._ports), groups=dict(self._groups),
                         members=dict(self._members), networks=networks,
                         port_errors=tuple(self._port_errors.values()),
                         warnings=tuple(self._warnings[-100:]),
                         group_errors=dict(self._group_errors),
                         member_networks=dict(self._member_networks),
                         expected={p: g for p, g in self._expected.items()
                                   if g and p not in self._ports})

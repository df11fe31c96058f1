"""The agent's copy of neutron's resources, ordered by revision, kept to what the host uses.

Every object carries its ``revision_number``; an update older than (or as old as) what is
cached is ignored, and a deleted object leaves a tombstone with its last revision, so a push
that arrives late (reordered, duplicated, or a ``bulk_pull`` reply overtaken by a push)
cannot bring back what is gone. Rules are kept on their own, as neutron's agent keeps them: a
``SecurityGroup`` update records the rules it embeds but removes none (the server pushes each
rule's deletion, and none of a rule's creation bumps the group it would push), a group deleted
takes its rules with it.

What is kept is decided by the caller's :class:`Interest` -- the ports of this host, the
groups they use, the remote groups their rules name and those groups' member ports, and the
networks and subnets of the host's ports: the fanout brings every port of the cloud, and the
rest is dropped on arrival (see :meth:`ResourceCache.put`).
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from dpagent.resources.objects import (
    AddressGroupObject,
    NetworkObject,
    PortObject,
    ResourceObject,
    RuleObject,
    SecurityGroupObject,
    SubnetObject,
)

FOREVER = 2**62
"""The revision of a deletion that came without one."""
TOMBSTONES = 20_000
"""Deleted objects remembered (the oldest forgotten first): enough for the pushes a burst of
deletions can leave in flight; a resync starts from the server's state anyway."""


@dataclass
class Interest:
    """What the host needs: its ports, and what they refer to (maintained by the caller)."""

    local_ports: set[str] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    """groups of the local ports"""
    remote_groups: set[str] = field(default_factory=set)
    """remote groups the local ports' rules name (their members are kept)"""
    networks: set[str] = field(default_factory=set)
    address_groups: set[str] = field(default_factory=set)

    def wants_port(self, port: PortObject) -> bool:
        return port.id in self.local_ports or bool(port.security_group_ids & self.remote_groups)


@dataclass
class Change:
    """What an update changed, for the agent: ports (local ones' details), groups whose rules
    changed, remote groups whose members changed."""

    ports: set[str] = field(default_factory=set)
    rule_groups: set[str] = field(default_factory=set)
    member_groups: set[str] = field(default_factory=set)
    networks: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.ports or self.rule_groups or self.member_groups or self.networks)

    def merge(self, other: Change) -> None:
        self.ports |= other.ports
        self.rule_groups |= other.rule_groups
        self.member_groups |= other.member_groups
        self.networks |= other.networks


def _rev(obj: ResourceObject | None) -> int | None:
    return obj.revision if obj is not None else None


def _member_view(port: PortObject) -> tuple[object, ...]:
    """What a port contributes to the groups it is a member of."""
    return (port.mac_address, port.fixed_ips, port.address_pairs, port.security_group_ids,
            port.network_id)


class ResourceCache:
    def __init__(self, interest: Interest | None = None) -> None:
        self.interest = interest or Interest()
        self.ports: dict[str, PortObject] = {}
        self.networks: dict[str, NetworkObject] = {}
        self.subnets: dict[str, SubnetObject] = {}
        self.groups: dict[str, SecurityGroupObject] = {}
        """groups without their rules (``rules`` is empty): see :attr:`rules`"""
        self.rules: dict[str, RuleObject] = {}
        self.address_groups: dict[str, AddressGroupObject] = {}
        self.members: dict[str, set[str]] = defaultdict(set)
        """security group -> ports of the cache that are its members"""
        self.rules_of: dict[str, set[str]] = defaultdict(set)
        """security group -> its rules' ids"""
        self.subnets_of: dict[str, set[str]] = defaultdict(set)
        """network -> its subnets' ids"""
        self._tombstones: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._passed_over: OrderedDict[str, int] = OrderedDict()
        """port -> the revision of a push not kept (no interest then): an older one must not
        bring the port back; the same one, pulled once the port matters, is kept"""

    # -- revisions ---------------------------------------------------------------------------

    def _stale(self, kind: str, obj_id: str, revision: int, cached: int | None) -> bool:
        if cached is not None and revision <= cached:
            return True
        gone = self._tombstones.get((kind, obj_id))
        return gone is not None and revision <= gone

    def _bury(self, kind: str, obj_id: str, revision: int) -> None:
        self._tombstones[(kind, obj_id)] = revision
        self._tombstones.move_to_end((kind, obj_id))
        while len(self._tombstones) > TOMBSTONES:
            self._tombstones.popitem(last=False)

    # -- updates -----------------------------------------------------------------------------

    def put(self, obj: ResourceObject) -> Change:
        """Record ``obj`` if it is newer than what is known and the host wants it."""
        if isinstance(obj, PortObject):
            return self._put_port(obj)
        if isinstance(obj, SecurityGroupObject):
            return self._put_group(obj)
        if isinstance(obj, RuleObject):
            return self._put_rule(obj)
        if isinstance(obj, NetworkObject):
            cached = self.networks.get(obj.id)
            if self._stale("Network", obj.id, obj.revision, _rev(cached)) or \
                    obj.id not in self.interest.networks:
                return Change()
            self.networks[obj.id] = obj
            return Change(networks={obj.id})
        if isinstance(obj, SubnetObject):
            cached_subnet = self.subnets.get(obj.id)
            if self._stale("Subnet", obj.id, obj.revision,
                           _rev(cached_subnet)) or \
                    obj.network_id not in self.interest.networks:
                return Change()
            self.subnets[obj.id] = obj
            self.subnets_of[obj.network_id].add(obj.id)
            return Change(networks={obj.network_id})
        cached_ag = self.address_groups.get(obj.id)
        if self._stale("AddressGroup", obj.id, obj.revision, _rev(cached_ag)) \
                or obj.id not in self.interest.address_groups:
            return Change()
        self.address_groups[obj.id] = obj
        return Change(member_groups={obj.id})

    def _put_port(self, port: PortObject) -> Change:
        old = self.ports.get(port.id)
        passed = self._passed_over.get(port.id)
        if self._stale("Port", port.id, port.revision, _rev(old)) or \
                (passed is not None and port.revision < passed):
            return Change()
        change = Change()
        if not self.interest.wants_port(port):
            if old is not None:  # it left every group the host cares about
                self._drop_port(old, change)
            self._pass_over(port.id, port.revision)
            return change
        self._passed_over.pop(port.id, None)
        self.ports[port.id] = port
        for sg in (old.security_group_ids if old else frozenset()) - port.security_group_ids:
            self.members[sg].discard(port.id)
        for sg in port.security_group_ids:
            self.members[sg].add(port.id)
        if port.id in self.interest.local_ports:
            change.ports.add(port.id)
        if old is None or _member_view(old) != _member_view(port):
            groups = port.security_group_ids | (old.security_group_ids if old else frozenset())
            change.member_groups |= groups & self.interest.remote_groups
        return change

    def _pass_over(self, port_id: str, revision: int) -> None:
        """Remember a port let go at ``revision``: a late push of an older one (when it was
        still a member, say) must not bring it back."""
        self._passed_over[port_id] = revision
        self._passed_over.move_to_end(port_id)
        while len(self._passed_over) > TOMBSTONES:
            self._passed_over.popitem(last=False)

    def _drop_port(self, port: PortObject, change: Change) -> None:
        del self.ports[port.id]
        for sg in port.security_group_ids:
            self.members[sg].discard(port.id)
        change.member_groups |= port.security_group_ids & self.interest.remote_groups
        if port.id in self.interest.local_ports:
            change.ports.add(port.id)

    def _put_group(self, group: SecurityGroupObject) -> Change:
        old = self.groups.get(group.id)
        if self._stale("SecurityGroup", group.id, group.revision, _rev(old)) or \
                group.id not in self.interest.groups:
            return Change()
        self.groups[group.id] = SecurityGroupObject(group.id, group.revision, group.stateful,
                                                    (), group.name)
        change = Change()
        if old is None or old.stateful != group.stateful:
            change.rule_groups.add(group.id)
        for rule in group.rules:
            change.merge(self._put_rule(rule))
        return change

    def _put_rule(self, rule: RuleObject) -> Change:
        old = self.rules.get(rule.id)
        if self._stale("SecurityGroupRule", rule.id, rule.revision, _rev(old)) or \
                rule.security_group_id not in self.interest.groups:
            return Change()
        self.rules[rule.id] = rule
        self.rules_of[rule.security_group_id].add(rule.id)
        return Change(rule_groups={rule.security_group_id})

    def delete(self, kind: str, obj_id: str, revision: int | None = None) -> Change:
        """The server deleted an object (``revision``: its last one, if the push said)."""
        change = Change()
        cached: ResourceObject | None = None
        if kind == "Port":
            cached = self.ports.get(obj_id)
            if cached is not None:
                self._drop_port(cached, change)
            elif obj_id in self.interest.local_ports:
                change.ports.add(obj_id)
        elif kind == "SecurityGroupRule":
            cached = self.rules.pop(obj_id, None)
            if cached is not None:
                self.rules_of[cached.security_group_id].discard(obj_id)
                change.rule_groups.add(cached.security_group_id)
        elif kind == "SecurityGroup":
            cached = self.groups.pop(obj_id, None)
            for rule_id in list(self.rules_of.pop(obj_id, ())):
                rule = self.rules.pop(rule_id, None)
                if rule is not None:
                    self._bury("SecurityGroupRule", rule_id, rule.revision)
            for rule in [r for r in self.rules.values() if r.remote_group_id == obj_id]:
                del self.rules[rule.id]
                self.rules_of[rule.security_group_id].discard(rule.id)
                change.rule_groups.add(rule.security_group_id)
            if cached is not None:
                change.rule_groups.add(obj_id)
        elif kind == "Network":
            cached = self.networks.pop(obj_id, None)
            for subnet_id in self.subnets_of.pop(obj_id, set()):
                self.subnets.pop(subnet_id, None)
            if cached is not None:
                change.networks.add(obj_id)
        elif kind == "Subnet":
            cached = self.subnets.pop(obj_id, None)
            if cached is not None:
                self.subnets_of[cached.network_id].discard(obj_id)
                change.networks.add(cached.network_id)
        elif kind == "AddressGroup":
            cached = self.address_groups.pop(obj_id, None)
            if cached is not None:
                change.member_groups.add(obj_id)
        # without a revision (neutron's deletes carry none) the deletion is final: neutron
        # never reuses an id, and an update still in flight must not bring the object back
        self._bury(kind, obj_id, revision if revision is not None else FOREVER)
        return change

    # -- what the host no longer needs ------------------------------------------------------

    def narrow(self, *, groups: set[str], remote_groups: set[str], networks: set[str],
               address_groups: set[str]) -> None:
        """Make the interest these (from the local ports) and drop what left it at once.

        A group, network or address group out of the interest no longer follows its pushes
        (they are dropped on arrival), so a copy kept would go stale and be taken for current
        when a local port names it again; gone, it is pulled again then. Costs what left the
        interest, not the size of the cache."""
        interest = self.interest
        left_groups = interest.groups - groups
        left_remote = interest.remote_groups - remote_groups
        left_networks = interest.networks - networks
        left_address = interest.address_groups - address_groups
        interest.groups, interest.remote_groups = groups, remote_groups
        interest.networks, interest.address_groups = networks, address_groups
        for group_id in left_groups:
            self._drop_group(group_id)
        for group_id in left_remote:
            for port_id in sorted(self.members.get(group_id, ())):
                port = self.ports[port_id]
                if not interest.wants_port(port):
                    self._drop_port(port, Change())
                    # its older pushes may still be on their way: one of a time it was in a
                    # group still of interest must not bring it back
                    self._pass_over(port_id, port.revision)
            if not self.members.get(group_id):
                self.members.pop(group_id, None)
        for network_id in left_networks:
            self._drop_network(network_id)
        for ag_id in left_address:
            self.address_groups.pop(ag_id, None)

    def _drop_group(self, group_id: str) -> None:
        self.groups.pop(group_id, None)
        for rule_id in self.rules_of.pop(group_id, ()):
            self.rules.pop(rule_id, None)

    def _drop_network(self, network_id: str) -> None:
        self.networks.pop(network_id, None)
        for subnet_id in self.subnets_of.pop(network_id, set()):
            self.subnets.pop(subnet_id, None)

    def forget_unwanted(self) -> None:
        """Drop every object the interest no longer covers (after ports went)."""
        interest = self.interest
        for port in [p for p in self.ports.values() if not interest.wants_port(p)]:
            self._drop_port(port, Change())
        for group_id in [g for g in self.groups if g not in interest.groups]:
            self._drop_group(group_id)
        for network_id in [n for n in self.networks if n not in interest.networks]:
            self._drop_network(network_id)
        for ag_id in [a for a in self.address_groups if a not in interest.address_groups]:
            del self.address_groups[ag_id]
        for table in (self.members, self.rules_of, self.subnets_of):
            for key in [k for k, v in table.items() if not v]:
                del table[key]

    # -- reads -------------------------------------------------------------------------------

    def rules_in(self, group_id: str) -> list[RuleObject]:
        """The group's rules, in a stable order (by id)."""
        return [self.rules[r] for r in sorted(self.rules_of.get(group_id, ()))]

    def member_ports(self, group_id: str) -> list[PortObject]:
        return [self.ports[p] for p in sorted(self.members.get(group_id, ()))]

    def subnets_in(self, network_id: str) -> list[SubnetObject]:
        return [self.subnets[s] for s in sorted(self.subnets_of.get(network_id, ()))]

    def sizes(self) -> dict[str, int]:
        return {"ports": len(self.ports), "networks": len(self.networks),
                "subnets": len(self.subnets), "security_groups": len(self.groups),
                "rules": len(self.rules), "address_groups": len(self.address_groups),
                "tombstones": len(self._tombstones) + len(self._passed_over)}


def put_all(cache: ResourceCache, objects: Iterable[ResourceObject]) -> Change:
    change = Change()
    for obj in objects:
        change.merge(cache.put(obj))
    return change

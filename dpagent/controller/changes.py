"""The difference between two topologies, as the notifications neutron would send (pure).

:func:`diff` returns :class:`Change` values in the order they go out: network updates, rule
updates, member updates, port updates, port deletes, trunk pushes, network deletes.  What
triggers what follows neutron's ML2 and trunk plugins (CONTRACT.md 2.1 and 2.2), with three
additions an agent that pulls needs to converge and that are harmless to neutron's agents:

* an allowed-address-pair change of a port in groups also gives ``member_updated`` (the
  pairs are remote-group members; neutron only sends ``port_update``);
* unbinding a port gives ``port_update`` (neutron sends nothing; the old host then learns
  that the port is no longer its own);
* a change of an address group's addresses gives ``member_updated`` with the address group's
  id (neutron pushes an AddressGroup object instead, which dpagent does not consume).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from dpagent.controller.model import Port, SubPort, Topology

NETWORK_UPDATE = "network_update"
NETWORK_DELETE = "network_delete"
RULES_UPDATED = "security_groups_rule_updated"
MEMBERS_UPDATED = "security_groups_member_updated"
PORT_UPDATE = "port_update"
PORT_DELETE = "port_delete"
TRUNK_CREATED = "trunk_created"
TRUNK_DELETED = "trunk_deleted"
SUBPORTS_CREATED = "subports_created"
SUBPORTS_DELETED = "subports_deleted"


@dataclass(frozen=True)
class Change:
    """One notification: ``kind`` about ``ids`` (group ids, or one port/network/trunk id);
    ``sub_ports`` for the subport pushes."""

    kind: str
    ids: tuple[str, ...]
    sub_ports: tuple[SubPort, ...] = ()


def _port_facts(port: Port) -> Port:
    """The port without what agents do not care about (its name)."""
    return dataclasses.replace(port, name="")


def diff(old: Topology, new: Topology) -> list[Change]:
    changes: list[Change] = [Change(NETWORK_UPDATE, (net_id,))
                             for net_id, net in new.networks.items()
                             if net_id in old.networks and old.networks[net_id] != net]
    rule_groups = sorted(
        sg_id for sg_id, group in new.security_groups.items()
        if sg_id in old.security_groups and (
            {r.content() for r in old.security_groups[sg_id].rules}
            != {r.content() for r in group.rules}
            or old.security_groups[sg_id].stateful != group.stateful))
    if rule_groups:
        changes.append(Change(RULES_UPDATED, tuple(rule_groups)))

    members: set[str] = {ag_id for ag_id, group in new.address_groups.items()
                         if ag_id in old.address_groups
                         and old.address_groups[ag_id].addresses != group.addresses}
    updates: list[str] = []
    for port_id, port in new.ports.items():
        before = old.ports.get(port_id)
        if before is None:
            members |= set(port.security_groups)
            if port.host:
                updates.append(port_id)
            continue
        if before.security_groups != port.security_groups:
            members |= set(before.security_groups) ^ set(port.security_groups)
        if (before.fixed_ips != port.fixed_ips
                or before.allowed_address_pairs != port.allowed_address_pairs
                or before.network_id != port.network_id):
            members |= set(before.security_groups) | set(port.security_groups)
        if (port.host or before.host) and _port_facts(before) != _port_facts(port):
            updates.append(port_id)
    deletes = []
    for port_id, before in old.ports.items():
        if port_id not in new.ports:
            members |= set(before.security_groups)
            deletes.append(port_id)
    if members:
        changes.append(Change(MEMBERS_UPDATED, tuple(sorted(members))))
    changes += [Change(PORT_UPDATE, (p,)) for p in updates]
    changes += [Change(PORT_DELETE, (p,)) for p in deletes]

    for trunk_id, trunk in new.trunks.items():
        before_trunk = old.trunks.get(trunk_id)
        if before_trunk is None:
            changes.append(Change(TRUNK_CREATED, (trunk_id,)))
            continue
        added = tuple(s for s in trunk.sub_ports if s not in before_trunk.sub_ports)
        removed = tuple(s for s in before_trunk.sub_ports if s not in trunk.sub_ports)
        if removed:
            changes.append(Change(SUBPORTS_DELETED, (trunk_id,), removed))
        if added:
            changes.append(Change(SUBPORTS_CREATED, (trunk_id,), added))
    changes += [Change(TRUNK_DELETED, (t,)) for t in old.trunks if t not in new.trunks]
    changes += [Change(NETWORK_DELETE, (n,)) for n in old.networks if n not in new.networks]
    return changes

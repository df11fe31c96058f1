"""Remote groups and address groups as the second clause of conjunctive matches.

One conjunction id per (group, direction, IP version) serves every port and rule on the host that
refers to the group: the first clause (in :mod:`flows.rules`) says "this port, this protocol and
port", the second says "the far side is a member". Because the second clause is the same for all
of them, the disjunction of the first clauses joined with it is exactly "some rule allows it".

Member flows are keyed by address: an address in several groups is one flow carrying one
conjunction action per group. Adding or removing a member therefore adds, changes or removes one
flow per direction and IP version in which its group is used, whatever the number of ports.

Membership is by address (in neutron and OVN alike), and addresses overlap across networks. A
member on network B whose address lies in a subnet of network A cannot legitimately be the far
side of a packet on A: a packet on A from (or to) that address is from (or to) whoever holds it
on A. Where the control plane tells the members' networks and the local networks' subnets (the
resource cache does), such an address's member flow is split per local network (``reg6``, the
network's local VLAN): on A it leaves out the groups it is a member of only from elsewhere, on
every other network it is unchanged. The split costs one flow per local network, and only for
the addresses it concerns; a member change still touches that address's flows alone. A member
entry that is a prefix (an address pair's CIDR) is left out on A when it overlaps a subnet of A
at all. Address groups are addresses by definition, and are never split.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from flows import actions, cookies, matches
from flows.flow import Flow, flow
from flows.model import Direction, IPNetwork, Network
from flows.rules import ACCEPT_TABLE, PRIO_CONJUNCTION, RULES_TABLE, ConjunctionKey

CONJ_ID_BITS = 31


def allocate_ids(keys: Iterable[ConjunctionKey]) -> dict[ConjunctionKey, int]:
    """Stable conjunction ids: a hash of the key, so a group keeps its id across compiles and
    adding another group changes no existing flow. Collisions are resolved in sorted key order,
    which keeps the result deterministic."""
    ids: dict[ConjunctionKey, int] = {}
    used: set[int] = set()
    for key in sorted(set(keys), key=lambda k: (k[0], k[1].value, k[2])):
        salt = 0
        while True:
            text = f"{key[0]}|{key[1].value}|{key[2]}|{salt}"
            conj_id = cookies.stable_hash(text, CONJ_ID_BITS) or 1
            if conj_id not in used:
                break
            salt += 1
        used.add(conj_id)
        ids[key] = conj_id
    return ids


def owner_of_member(direction: Direction, ethertype: int, address: str) -> str:
    return f"member:{direction.value}:{ethertype}:{address}"


def owner_of_group(key: ConjunctionKey) -> str:
    return f"remote:{key[1].value}:{key[2]}:{key[0]}"


def member_flow(direction: Direction, ethertype: int, address: str,
                conj_ids: Iterable[int], local_vlan: int | None = None) -> Flow:
    """The far side is ``address``; with ``local_vlan``, only on that network."""
    field = matches.remote_address_field(direction, ethertype)
    match = (("ip" if ethertype == 4 else "ipv6", ""),) + \
        ((matches.network(local_vlan),) if local_vlan is not None else ()) + ((field, address),)
    return flow(RULES_TABLE[direction], PRIO_CONJUNCTION, match,
                tuple(actions.conjunction(cid, 2, 2) for cid in sorted(conj_ids)),
                cookies.Kind.MEMBER)


@dataclass(frozen=True, slots=True)
class NetworkView:
    """A local network as the member flows see it: its VLAN, identity and subnets."""

    local_vlan: int
    network_id: str
    subnets: tuple[IPNetwork, ...]


def network_views(networks: Mapping[int, Network]) -> tuple[NetworkView, ...]:
    return tuple(NetworkView(vlan, n.network_id, n.subnets)
                 for vlan, n in sorted(networks.items()))


@lru_cache(maxsize=65536)
def _entry(address: str) -> IPNetwork:
    return ipaddress.ip_network(address)


def overlaps_subnet(view: NetworkView, address: str) -> bool:
    entry = _entry(address)
    return any(entry.version == s.version and entry.overlaps(s) for s in view.subnets)


def foreign_on(view: NetworkView, address: str, origins: frozenset[str]) -> bool:
    """A member entry of ports on other networks only, inside a subnet of ``view``'s."""
    return bool(origins) and view.network_id not in origins and overlaps_subnet(view, address)


def address_flows(direction: Direction, ethertype: int, address: str,
                  groups: Sequence[tuple[int, frozenset[str]]],
                  views: Sequence[NetworkView]) -> tuple[tuple[Flow, ...], bool]:
    """The member flows of one address, and whether they are split per network: ``groups``
    are the (conjunction id, origin networks) of every group in use that has it as a member
    (origins empty where unknown). One flow, or one per local network where the address is
    foreign on some of them."""
    if not groups:
        return (), False
    if not any(origins for _, origins in groups):  # no networks known: matches on all
        return (member_flow(direction, ethertype, address, [cid for cid, _ in groups]),), False
    legit = {view.local_vlan: [cid for cid, origins in groups
                               if not foreign_on(view, address, origins)]
             for view in views}
    if all(len(ids) == len(groups) for ids in legit.values()):
        return (member_flow(direction, ethertype, address, [cid for cid, _ in groups]),), False
    return tuple(member_flow(direction, ethertype, address, ids, vlan)
                 for vlan, ids in sorted(legit.items()) if ids), True


def conjunction_flow(key: ConjunctionKey, conj_id: int) -> Flow:
    """The flow a completed conjunction lands on: the rule accepts."""
    group_id, direction, _ = key
    return flow(RULES_TABLE[direction], PRIO_CONJUNCTION, (("conj_id", str(conj_id)),),
                (actions.goto(ACCEPT_TABLE[direction]),), cookies.Kind.REMOTE_GROUP)

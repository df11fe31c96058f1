"""Remote groups and address groups as the second clause of conjunctive matches.

One conjunction id per (group, direction, IP version) serves every port and rule on the host that
refers to the group: the first clause (in :mod:`flows.rules`) says "this port, this protocol and
port", the second says "the far side is a member". Because the second clause is the same for all
of them, the disjunction of the first clauses joined with it is exactly "some rule allows it".

Member flows are keyed by address: an address in several groups is one flow carrying one
conjunction action per group. Adding or removing a member therefore adds, changes or removes one
flow per direction and IP version in which its group is used, whatever the number of ports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from flows import actions, cookies, matches
from flows.flow import Flow, flow
from flows.model import Direction
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
                conj_ids: Iterable[int]) -> Flow:
    field = matches.remote_address_field(direction, ethertype)
    return flow(RULES_TABLE[direction], PRIO_CONJUNCTION,
                (("ip" if ethertype == 4 else "ipv6", ""), (field, address)),
                tuple(actions.conjunction(cid, 2, 2) for cid in sorted(conj_ids)),
                cookies.Kind.MEMBER)


def member_flows(conj_ids: Mapping[ConjunctionKey, int],
                 members: Mapping[str, Mapping[int, frozenset[str]]],
                 ) -> dict[str, Flow]:
    """Owner -> member flow, for every address of every group in use."""
    by_address: dict[tuple[Direction, int, str], list[int]] = {}
    for (group_id, direction, ethertype), conj_id in conj_ids.items():
        for address in members.get(group_id, {}).get(ethertype, ()):
            by_address.setdefault((direction, ethertype, address), []).append(conj_id)
    return {owner_of_member(direction, ethertype, address):
            member_flow(direction, ethertype, address, ids)
            for (direction, ethertype, address), ids in by_address.items()}


def conjunction_flow(key: ConjunctionKey, conj_id: int) -> Flow:
    """The flow a completed conjunction lands on: the rule accepts."""
    group_id, direction, _ = key
    return flow(RULES_TABLE[direction], PRIO_CONJUNCTION, (("conj_id", str(conj_id)),),
                (actions.goto(ACCEPT_TABLE[direction]),), cookies.Kind.REMOTE_GROUP)

"""A port's security-group rules as flows in the RULES tables.

Rules with an address prefix become direct flows that accept. Rules with a remote group become
the first clause of a conjunction whose second clause is the group's member addresses
(:mod:`flows.remote_groups`): members are listed once for the whole host, however many ports and
rules refer to the group.

Ports with the same security groups have the same rules, so the flows are built once per set of
groups as :class:`RuleTemplate` values and stamped with each port's ofport.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flows import actions, cookies, matches
from flows.flow import Flow, MatchItem, finished
from flows.model import Direction, RemoteGroup, RemotePrefix
from flows.normalize import Atom
from flows.pipeline import Table

PRIO_DIRECT = 70
"""Direct accepts outrank conjunction clauses: a flow with conjunction actions may not accept by
itself, and an accept is right whichever rule grants it."""
PRIO_CONJUNCTION = 60

RULES_TABLE = {Direction.INGRESS: Table.INGRESS_RULES, Direction.EGRESS: Table.EGRESS_RULES}
ACCEPT_TABLE = {Direction.INGRESS: Table.INGRESS_ACCEPT, Direction.EGRESS: Table.EGRESS_ACCEPT}

ConjunctionKey = tuple[str, Direction, int]
"""(remote group id, direction, IP version): one conjunction id each."""


@dataclass(frozen=True, slots=True)
class RuleTemplate:
    """A rule flow without its port: ``head`` goes before the port match, ``tail`` after."""

    table: Table
    priority: int
    head: tuple[MatchItem, ...]
    tail: tuple[MatchItem, ...]
    actions: tuple[str, ...]
    meaning: str
    """What the flow stands for, without the port: direction and the rules behind it."""
    head_text: str = ""
    """Rendered match before the port (with its trailing comma)."""
    tail_text: str = ""
    """Rendered match after the port, then the actions."""


def _with_text(t: RuleTemplate) -> RuleTemplate:
    head = "".join(f"{n}={v}," if v else f"{n}," for n, v in t.head)
    tail = "".join(f",{n}={v}" if v else f",{n}" for n, v in t.tail)
    return RuleTemplate(t.table, t.priority, t.head, t.tail, t.actions, t.meaning, head,
                        f"{tail},actions={','.join(t.actions)}")


def conjunction_key(atom: Atom) -> ConjunctionKey | None:
    if isinstance(atom.remote, RemoteGroup):
        return (atom.remote.group_id, atom.direction, atom.ethertype)
    return None


IPV6_LATER_FRAGMENT: tuple[MatchItem, ...] = (("ipv6", ""), ("nw_proto", "44"))
"""How OVS shows a non-first IPv6 fragment, whatever it carries."""


def templates(atoms: tuple[Atom, ...], stateless: bool,
              conj_ids: Mapping[ConjunctionKey, int],
              cache: dict[tuple[Any, ...], list[RuleTemplate]] | None = None,
              ) -> tuple[RuleTemplate, ...]:
    """The rule flows of a set of atoms, for any port that has exactly these atoms.

    ``cache`` (atom identity, stateless[, meaning]) -> templates spares the work for atoms that
    many sets of security groups share; it is only valid for one ``conj_ids``. The same atom
    comes from different rules in different groups: its flows are shared, their meaning is
    this atom's (kept under the meaning too, made once).
    """
    by_key: dict[tuple[Any, ...], RuleTemplate] = {}
    cache = {} if cache is None else cache
    for atom in atoms:
        found = cache.get((atom.identity, stateless))
        if found is None:
            found = [_with_text(t) for t in _atom_templates(atom, stateless, conj_ids)]
            cache[(atom.identity, stateless)] = found
        meaning = atom_meaning(atom)
        if found and found[0].meaning != meaning:
            renamed = cache.get((atom.identity, stateless, meaning))
            if renamed is None:
                renamed = [_with_meaning(t, meaning) for t in found]
                cache[(atom.identity, stateless, meaning)] = renamed
            found = renamed
        for template in found:
            key = (template.table, template.priority, template.head, template.tail)
            known = by_key.get(key)
            if known is None:
                by_key[key] = template
            elif template.priority == PRIO_CONJUNCTION:
                merged = tuple(sorted(set(known.actions + template.actions)))
                by_key[key] = _with_text(RuleTemplate(
                    known.table, known.priority, known.head, known.tail, merged,
                    f"{known.meaning}; {template.meaning}"))
    return tuple(by_key[key] for key in sorted(by_key))


def _with_meaning(t: RuleTemplate, meaning: str) -> RuleTemplate:
    return RuleTemplate(t.table, t.priority, t.head, t.tail, t.actions, meaning, t.head_text,
                        t.tail_text)


def atom_meaning(atom: Atom) -> str:
    """``ingress: security group G rule R; ...``: the direction and the rules behind an atom."""
    return f"{atom.direction.value}: {'; '.join(atom.origins)}"


def _atom_templates(atom: Atom, stateless: bool, conj_ids: Mapping[ConjunctionKey, int]
                    ) -> list[RuleTemplate]:
    table = RULES_TABLE[atom.direction]
    conj = conjunction_key(atom)
    if conj is None:
        priority = PRIO_DIRECT
        acts: tuple[str, ...] = (actions.goto(ACCEPT_TABLE[atom.direction]),)
    else:
        priority = PRIO_CONJUNCTION
        acts = (actions.conjunction(conj_ids[conj], 1, 2),)
    head = matches.protocol(atom.ethertype, atom.protocol)
    remote: tuple[MatchItem, ...] = ()
    if isinstance(atom.remote, RemotePrefix) and atom.remote.network.prefixlen:
        remote = ((matches.remote_address_field(atom.direction, atom.ethertype),
                   matches.network_text(atom.remote.network)),)
    l4: list[tuple[MatchItem, ...]] = []
    if atom.icmp_type is not None:
        icmp: tuple[MatchItem, ...] = (matches.icmp_type(atom.ethertype, atom.icmp_type),)
        if atom.icmp_code is not None:
            icmp += (matches.icmp_code(atom.ethertype, atom.icmp_code),)
        l4.append(icmp)
    else:
        for src in matches.port_masks("tp_src", atom.src_ports):
            for dst in matches.port_masks("tp_dst", atom.dst_ports):
                l4.append(src + dst)
    meaning = atom_meaning(atom)
    found = [RuleTemplate(table, priority, head, remote + part, acts, meaning) for part in l4]
    if stateless and atom.ethertype == 6 and atom.protocol is not None:
        # OVS reports a non-first IPv6 fragment as nw_proto=44 (the fragment header): neither
        # the protocol nor the ports can be checked, only the far side. Safe without conntrack
        # too: a later fragment is nothing to the receiver without its first, which the rule
        # checked whole.
        found.append(RuleTemplate(table, priority, IPV6_LATER_FRAGMENT,
                                  remote + (("nw_frag", "later"),), acts, meaning))
    elif stateless and atom.has_l4_constraint:
        # A non-first fragment has no ports or ICMP header: the protocol and the far side are
        # all a stateless filter can check, and without conntrack nothing reassembles it.
        found.append(RuleTemplate(table, priority, head, remote + (("nw_frag", "later"),), acts,
                                  meaning))
    return found


def instantiate(template: RuleTemplate, port_label: str, ofport: int
                ) -> tuple[Flow, tuple[str, str]]:
    """The template's flow for one port, and what its cookie means (as parts, joined only when
    someone asks: a large host has ~10^5 rule flows and the text is rarely read).
    ``port_label`` (``port <id>``) is one string per port, shared by all its flows' meanings."""
    port_item = matches.port(ofport)
    draft = Flow(int(template.table), template.priority,
                 template.head + (port_item,) + template.tail, template.actions, 0)
    body = f"{template.head_text}{port_item[0]}={port_item[1]}{template.tail_text}"
    return finished(draft, cookies.Kind.RULE, body), (port_label, template.meaning)

"""Packets and bytes per security-group rule, from the switch's own flow counters. Pure.

Each rule flow carries the rules it stands for in its cookie's meaning (``ingress: security
group G rule R; ...``), so a rule's count is the sum over the flows of a port that name it.
The counters live in the switch: an agent restart that keeps the flows (it does, when nothing
changed) keeps the counts.

Two things are counted as the switch counts them, and said so:

* a flow that stands for two rules (the compiler merged what they allow, e.g. tcp/80 from
  anywhere and tcp/80 from 10.1.0.0/16) counts for both;
* a rule with a remote group is a conjunction, and OVS counts a conjunctive match on its
  ``conj_id`` flow only -- one per remote group, direction and IP version, shared by every port
  and rule that uses it. Such a rule shows the shared count, marked ``shared``.

Every rule of a wired port's groups is listed, those that never matched (0) too, and those
with no flow at all (``flows`` 0: a rule the switch cannot match, such as dccp ports).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flows import cookies
from flows.compiler import port_owner
from flows.flow import Flow
from flows.model import HostModel, RemoteGroup, RemotePrefix, Rule

Meaning = str | tuple[str, str]
_STATS = re.compile(r"cookie=(0x[0-9a-f]+).*?n_packets=(\d+), n_bytes=(\d+)")
_CONJ_ACTION = re.compile(r"conjunction\((\d+),")
_CONJ_ID = re.compile(r"\(conjunction (\d+)\)")


@dataclass(frozen=True)
class RuleCount:
    port_id: str
    group_id: str
    rule: str
    """the rule's id (``#N``, its place in the group, where the server gave no ids)"""
    direction: str
    description: str
    packets: int
    bytes: int
    flows: int
    """how many of the port's flows carry it (0: it allows nothing the switch can match)"""
    shared: str = ""
    """for a remote-group rule: the conjunction whose count it shows (shared)"""

    def as_dict(self) -> dict[str, Any]:
        return {"port": self.port_id, "group": self.group_id, "rule": self.rule,
                "direction": self.direction, "description": self.description,
                "packets": self.packets, "bytes": self.bytes, "flows": self.flows,
                "shared": self.shared}


def parse_flow_stats(text: str) -> dict[int, tuple[int, int]]:
    """``ovs-ofctl dump-flows`` text -> cookie -> (packets, bytes), summed per cookie."""
    stats: dict[int, tuple[int, int]] = {}
    for line in text.splitlines():
        found = _STATS.search(line)
        if found:
            cookie = int(found.group(1), 16)
            packets, size = stats.get(cookie, (0, 0))
            stats[cookie] = (packets + int(found.group(2)), size + int(found.group(3)))
    return stats


def count_rules(model: HostModel, owners: Mapping[str, tuple[Flow, ...]],
                meanings: Mapping[int, Meaning], stats: Mapping[int, tuple[int, int]]
                ) -> list[RuleCount]:
    """One row per wired port and rule of its groups, sorted by port, group and rule."""
    conj_counts: dict[str, tuple[int, int]] = {}
    for cookie, meaning in meanings.items():
        if cookies.kind_of(cookie) == cookies.Kind.REMOTE_GROUP and isinstance(meaning, str):
            conj = _CONJ_ID.search(meaning)
            if conj:
                conj_counts[conj.group(1)] = stats.get(cookie, (0, 0))
    rows: list[RuleCount] = []
    for port_id in sorted(model.ports):
        port = model.ports[port_id]
        if not port.port_security:
            continue
        direct: dict[str, list[int]] = {}
        shared: dict[str, str] = {}
        for flow in owners.get(port_owner(port_id), ()):
            flow_meaning = meanings.get(flow.cookie)
            if not isinstance(flow_meaning, tuple):
                continue
            feeds = next((m.group(1) for a in flow.actions if (m := _CONJ_ACTION.match(a))),
                         None)
            for origin in _origins(flow_meaning[1]):
                if feeds is not None:
                    shared[origin] = feeds
                else:
                    direct.setdefault(origin, []).append(flow.cookie)
        for group_id in port.security_groups:
            for rule in model.groups.get(group_id, ()):
                rows.append(_row(port_id, group_id, rule, direct, shared, conj_counts, stats))
    return rows


def _row(port_id: str, group_id: str, rule: Rule, direct: Mapping[str, list[int]],
         shared: Mapping[str, str], conj_counts: Mapping[str, tuple[int, int]],
         stats: Mapping[int, tuple[int, int]]) -> RuleCount:
    origin = rule.origin
    rule_id = origin.rsplit(" rule ", 1)[-1]
    flows = direct.get(origin, [])
    packets = sum(stats.get(c, (0, 0))[0] for c in flows)
    size = sum(stats.get(c, (0, 0))[1] for c in flows)
    conj = shared.get(origin, "")
    if conj:
        packets, size = conj_counts.get(conj, (0, 0))
    return RuleCount(port_id, group_id, rule_id, rule.direction.value, describe(rule),
                     packets, size, len(flows) + (1 if conj else 0),
                     f"conjunction {conj}" if conj else "")


def _origins(rule_meaning: str) -> list[str]:
    _, _, origins = rule_meaning.partition(": ")
    return [o.strip() for o in origins.split(";") if o.strip()]


PROTOCOL_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp"}


def describe(rule: Rule) -> str:
    """A rule in a few words: ``IPv4 tcp 5432 from group web``."""
    words = [f"IPv{rule.ethertype}"]
    if rule.protocol is not None:
        words.append(PROTOCOL_NAMES.get(rule.protocol, f"protocol {rule.protocol}"))
    if rule.dst_ports is not None:
        words.append(",".join(str(lo) if lo == hi else f"{lo}-{hi}"
                              for lo, hi in rule.dst_ports))
    if rule.icmp_type is not None:
        words.append(f"type {rule.icmp_type}" + (f" code {rule.icmp_code}"
                                                  if rule.icmp_code is not None else ""))
    side = "from" if rule.direction.value == "ingress" else "to"
    remote = rule.remote
    if isinstance(remote, RemoteGroup):
        kind = "address group" if remote.address_group else "group"
        words.append(f"{side} {kind} {remote.group_id}")
    elif isinstance(remote, RemotePrefix) and remote.network.prefixlen:
        words.append(f"{side} {remote.network}")
    if not rule.stateful:
        words.append("(stateless)")
    return " ".join(words)

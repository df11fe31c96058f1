"""Shrink a failing compiler input to the few rules, ports and members that matter.

Hypothesis' own shrinking re-runs the whole batch of traces for every candidate and can take
minutes on a real switch. This greedy reducer knows the shape of the input instead: it deletes
one thing at a time (a port, a group, a rule, a rule field, a member, an address pair) and keeps
the deletion whenever ``still_fails`` says the failure is still there, until nothing more can go.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

Model = dict[str, Any]
_RULE_KEYS_KEPT = ("direction", "ethertype", "stateful")
_MAX_ROUNDS = 20


def minimise(model: Model, still_fails: Callable[[Model], bool],
             keep_ports: tuple[str, ...] = ()) -> Model:
    """The smallest model reachable by single deletions for which ``still_fails`` holds."""
    current = copy.deepcopy(model)
    for _ in range(_MAX_ROUNDS):
        for candidate in _candidates(current, keep_ports):
            if still_fails(candidate):
                current = candidate
                break
        else:
            return current
    return current


def _candidates(model: Model, keep_ports: tuple[str, ...]) -> Iterator[Model]:
    """Every model with one thing less, biggest deletions first."""
    devices = model["devices"]
    for port_id in sorted(devices):
        if port_id not in keep_ports:
            yield _without(model, lambda m, p=port_id: m["devices"].pop(p))
    used = {g for d in devices.values() for g in d.get("security_groups") or []}
    for group_id in sorted(model["security_groups"]):
        if group_id not in used:
            yield _without(model, lambda m, g=group_id: m["security_groups"].pop(g))
    for group_id in sorted(model.get("sg_member_ips") or {}):
        yield _without(model, lambda m, g=group_id: m["sg_member_ips"].pop(g))
    used_networks = {d.get("network_id") for d in devices.values()}
    for network_id in sorted(model.get("networks") or {}):
        if network_id not in used_networks:
            yield _without(model, lambda m, n=network_id: m["networks"].pop(n))
    for port_id, device in sorted(devices.items()):
        for key in ("security_groups", "allowed_address_pairs", "fixed_ips"):
            for index in range(len(device.get(key) or [])):
                yield _without(model, lambda m, p=port_id, k=key, i=index:
                               m["devices"][p][k].pop(i))
        if device.get("security_group_rules"):
            yield _without(model, lambda m, p=port_id:
                           m["devices"][p].__setitem__("security_group_rules", []))
    for group_id, rules in sorted(model["security_groups"].items()):
        for index in range(len(rules)):
            yield _without(model, lambda m, g=group_id, i=index: m["security_groups"][g].pop(i))
    for group_id, rules in sorted(model["security_groups"].items()):
        for index, rule in enumerate(rules):
            for key in sorted(set(rule) - set(_RULE_KEYS_KEPT)):
                yield _without(model, lambda m, g=group_id, i=index, k=key:
                               m["security_groups"][g][i].pop(k))
    for group_id, by_family in sorted((model.get("sg_member_ips") or {}).items()):
        for family, entries in sorted(by_family.items()):
            for index in range(len(entries)):
                yield _without(model, lambda m, g=group_id, f=family, i=index:
                               m["sg_member_ips"][g][f].pop(i))


def _without(model: Model, delete: Callable[[Model], object]) -> Model:
    candidate = copy.deepcopy(model)
    delete(candidate)
    return candidate

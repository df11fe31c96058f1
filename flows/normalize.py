"""Rule normalisation: the fewest equivalent rules for one port and direction.

neutron's firewall turns every rule into flows on its own: 1,000 single-port rules become 13,000
flows. Here rules that differ only in their destination ports are merged (their port ranges
united, so consecutive ports become one range), and a rule whose packets another rule already
allows is dropped. What a port allows is unchanged; every merged or dropped rule stays listed in
the surviving :class:`Atom`'s ``origins`` so that a verdict still leads back to it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from flows import portrange
from flows.model import Direction, PortIntervals, Remote, RemoteGroup, RemotePrefix, Rule


@dataclass(frozen=True, slots=True)
class Atom:
    """A normalised rule: allowed traffic of one port, direction and IP version."""

    direction: Direction
    ethertype: int
    protocol: int | None
    icmp_type: int | None
    icmp_code: int | None
    src_ports: PortIntervals | None
    dst_ports: PortIntervals | None
    remote: Remote
    origins: tuple[str, ...]
    identity: str = ""
    """Stable text naming what the atom matches (not where it came from); filled in by
    :func:`make_atom`."""

    @property
    def has_l4_constraint(self) -> bool:
        return (self.src_ports is not None or self.dst_ports is not None
                or self.icmp_type is not None)


def make_atom(direction: Direction, ethertype: int, protocol: int | None,
              icmp_type: int | None, icmp_code: int | None, src_ports: PortIntervals | None,
              dst_ports: PortIntervals | None, remote: Remote, origins: tuple[str, ...]) -> Atom:
    identity = (f"{direction.value}|{ethertype}|{protocol}|{icmp_type}|{icmp_code}|"
                f"{src_ports}|{dst_ports}|{_remote_text(remote)}")
    return Atom(direction, ethertype, protocol, icmp_type, icmp_code, src_ports, dst_ports,
                remote, origins, identity)


@lru_cache(maxsize=65536)
def _remote_text(remote: Remote) -> str:
    if isinstance(remote, RemoteGroup):
        return ("ag:" if remote.address_group else "sg:") + remote.group_id
    return str(remote.network)


def normalize(rules: Iterable[Rule], direction: Direction) -> tuple[Atom, ...]:
    """Merge and prune the rules of one direction; deterministic order."""
    merged: dict[tuple[Any, ...], tuple[list[tuple[int, int]] | None, list[str]]] = {}
    for rule in rules:
        if rule.direction is not direction or rule.matches_nothing:
            continue
        key = (rule.ethertype, rule.protocol, rule.icmp_type, rule.icmp_code, rule.src_ports,
               rule.remote)
        ports, origins = merged.setdefault(key, ([], []))
        if rule.dst_ports is None or ports is None:
            merged[key] = (None, origins)
        else:
            ports.extend(rule.dst_ports)
        origins.append(rule.origin)
    atoms = []
    for key, (ports, origins) in merged.items():
        dst = None if ports is None else portrange.merge_intervals(ports)
        if dst is not None and portrange.is_any_port(dst):
            dst = None
        ethertype, protocol, icmp_type, icmp_code, src, remote = key
        atoms.append(make_atom(direction, ethertype, protocol, icmp_type, icmp_code, src, dst,
                               remote, tuple(origins)))
    atoms.sort(key=lambda atom: atom.identity)
    return _prune(atoms)


def _prune(atoms: list[Atom]) -> tuple[Atom, ...]:
    """Drop atoms another atom covers; the cover inherits their origins.

    Only atoms of the same IP version with the same protocol, or any protocol, can cover each
    other, so each atom is compared with that bucket only.
    """
    buckets: dict[tuple[int, int | None], list[int]] = {}
    for index, atom in enumerate(atoms):
        buckets.setdefault((atom.ethertype, atom.protocol), []).append(index)
    dropped = set()
    for index, atom in enumerate(atoms):
        candidates = buckets.get((atom.ethertype, None), [])
        if atom.protocol is not None:
            candidates = candidates + buckets[(atom.ethertype, atom.protocol)]
        for j in candidates:
            other = atoms[j]
            if j != index and covers(other, atom) and not (j > index and covers(atom, other)):
                dropped.add(index)
                break
    result = []
    for index, atom in enumerate(atoms):
        if index in dropped:
            continue
        absorbed = [origin for j in sorted(dropped) if covers(atom, atoms[j])
                    for origin in atoms[j].origins if origin not in atom.origins]
        if absorbed:
            atom = dataclasses.replace(atom, origins=atom.origins + tuple(dict.fromkeys(absorbed)))
        result.append(atom)
    return tuple(result)


_COVERS_CACHE: dict[tuple[str, str], bool] = {}
COVERS_CACHE_LIMIT = 100_000
"""Pairs remembered at most (about 10 MiB); a full compile of `large` compares 51,409."""


def forget_comparisons() -> None:
    """Drop the memo of :func:`covers`: it pays off within one compile of many overlapping
    sets of groups (0.16 s of 1.7 at `large`), not between compiles, and holds 5 MiB."""
    _COVERS_CACHE.clear()


def covers(outer: Atom, inner: Atom) -> bool:
    """True if every packet ``inner`` allows, ``outer`` allows too.

    Memoised by identity: hosts have many ports with overlapping sets of groups, so the same
    pairs of atoms are compared again and again. The cache is bounded (it is cleared when full).
    """
    key = (outer.identity, inner.identity)
    known = _COVERS_CACHE.get(key)
    if known is None:
        if len(_COVERS_CACHE) > COVERS_CACHE_LIMIT:
            _COVERS_CACHE.clear()
        known = _COVERS_CACHE[key] = _covers(outer, inner)
    return known


def _covers(outer: Atom, inner: Atom) -> bool:
    if outer.ethertype != inner.ethertype:
        return False
    if outer.protocol is not None:
        if outer.protocol != inner.protocol:
            return False
        if outer.icmp_type is not None and (
                outer.icmp_type != inner.icmp_type
                or (outer.icmp_code is not None and outer.icmp_code != inner.icmp_code)):
            return False
        if not (_ports_cover(outer.src_ports, inner.src_ports)
                and _ports_cover(outer.dst_ports, inner.dst_ports)):
            return False
    return _remote_covers(outer.remote, inner.remote)


def _ports_cover(outer: PortIntervals | None, inner: PortIntervals | None) -> bool:
    if outer is None:
        return True
    return inner is not None and portrange.covers(outer, inner)


def _remote_covers(outer: Remote, inner: Remote) -> bool:
    if outer is inner:
        return True
    if not isinstance(outer, RemotePrefix):
        return outer == inner
    if outer.network.prefixlen == 0:
        return True
    if outer == inner:
        return True
    return (isinstance(inner, RemotePrefix)
            and inner.network.subnet_of(outer.network))  # type: ignore[arg-type]

"""VLAN ids and the range lists NIC drivers speak (``2,4-5,10-20``).

Part of the driver interface: plugins may import this module.  Everything here is pure, so the
formats are pinned by property tests rather than by hardware.

A range list is what the Intel i40e driver reads back from a VF's ``trunk`` file and accepts
after ``add``/``rem``: ascending ids and ``a-b`` runs separated by commas.
:func:`format_range_list` always produces the canonical form (ascending, runs maximal, ``a-b``
only for two or more ids), so ``parse(format(s)) == s`` for any set and ``format(parse(t)) == t``
for any canonical ``t``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

VLAN_MIN = 1
VLAN_MAX = 4094


class VlanRangeError(ValueError):
    """A VLAN id or range list is malformed or out of 1-4094; the message names the item."""


def check_vlan(vlan: int) -> int:
    """Return ``vlan`` if it is a usable 802.1Q id (1-4094), else raise :class:`VlanRangeError`.

    0 (priority tag) and 4095 (reserved) are not VLANs a port can be placed on.
    """
    if isinstance(vlan, bool) or not isinstance(vlan, int):
        raise VlanRangeError(f"VLAN {vlan!r} is not an integer")
    if not VLAN_MIN <= vlan <= VLAN_MAX:
        raise VlanRangeError(f"VLAN {vlan} is outside {VLAN_MIN}-{VLAN_MAX}")
    return vlan


def check_vlans(vlans: Iterable[int]) -> frozenset[int]:
    """Validate every id and return them as a set; the error names the lowest offending one."""
    collected = frozenset(vlans)
    for vlan in collected:
        if isinstance(vlan, bool) or not isinstance(vlan, int):
            check_vlan(vlan)
    for vlan in sorted(collected):
        check_vlan(vlan)
    return collected


def runs(vlans: Iterable[int]) -> Iterator[tuple[int, int]]:
    """Maximal runs of consecutive ids, ascending, as ``(first, last)`` pairs."""
    ordered = sorted(set(vlans))
    if not ordered:
        return
    first = last = ordered[0]
    for vlan in ordered[1:]:
        if vlan == last + 1:
            last = vlan
            continue
        yield first, last
        first = last = vlan
    yield first, last


def _run_text(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


def format_range_list(vlans: Iterable[int]) -> str:
    """The canonical range list of ``vlans`` (empty string for no VLAN)."""
    return ",".join(_run_text(first, last) for first, last in runs(vlans))


def chunk_range_list(vlans: Iterable[int], max_len: int) -> list[str]:
    """Canonical range lists of at most ``max_len`` characters that together cover ``vlans``.

    sysfs hands a ``store`` method at most one page per write(), so a large, fragmented set (every
    other VLAN is ~10 kB of text) must go out as several complete writes; runs are never split.
    """
    if max_len < len("4094-4094"):
        raise ValueError(f"max_len {max_len} cannot hold one VLAN run")
    chunks: list[str] = []
    current = ""
    for first, last in runs(vlans):
        text = _run_text(first, last)
        candidate = f"{current},{text}" if current else text
        if len(candidate) > max_len:
            chunks.append(current)
            candidate = text
        current = candidate
    if current:
        chunks.append(current)
    return chunks


def parse_range_list(text: str) -> frozenset[int]:
    """The ids in a range list such as ``2,4-5,10-20`` (blank means none).

    Whitespace around items and a trailing newline (as sysfs returns) are accepted; anything else
    that is not an id or an ascending ``a-b`` range in 1-4094 raises :class:`VlanRangeError`
    naming the item.
    """
    whole = text.strip()
    vlans: set[int] = set()
    for item in whole.split(",") if whole else ():
        first, last = _parse_item(item.strip(), whole)
        vlans.update(range(first, last + 1))
    return frozenset(vlans)


def _parse_item(item: str, whole: str) -> tuple[int, int]:
    first_text, dash, last_text = item.partition("-")
    bounds = [first_text.strip(), last_text.strip()] if dash else [first_text.strip()]
    if not all(bound.isascii() and bound.isdigit() for bound in bounds):
        raise VlanRangeError(f"{item!r} in range list {whole!r} is not a VLAN id or a range a-b")
    first, last = int(bounds[0]), int(bounds[-1])
    if first > last:
        raise VlanRangeError(f"range {item!r} in {whole!r} is descending")
    for bound in (first, last):
        if not VLAN_MIN <= bound <= VLAN_MAX:
            raise VlanRangeError(f"VLAN {bound} in {whole!r} is outside {VLAN_MIN}-{VLAN_MAX}")
    return first, last

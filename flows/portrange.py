"""Port ranges as the fewest value/mask matches.

A transport port range [lo, hi] is covered exactly by aligned power-of-two blocks; each block is
one ``tp_dst=value/mask`` match. 1-65535 and 0-65535 need no match at all, 1000-2000 needs 8.
"""

from __future__ import annotations

from collections.abc import Iterable

FULL = 0xFFFF


def range_to_masks(lo: int, hi: int) -> list[tuple[int, int]]:
    """Split [lo, hi] into (value, mask) blocks, in ascending order."""
    if not 0 <= lo <= hi <= FULL:
        raise ValueError(f"invalid port range {lo}-{hi}")
    blocks: list[tuple[int, int]] = []
    while lo <= hi:
        size = lo & -lo if lo else 1 << 16
        while size > hi - lo + 1:
            size >>= 1
        blocks.append((lo, FULL ^ (size - 1)))
        lo += size
    return blocks


def merge_intervals(intervals: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Union of closed intervals, merging overlapping and adjacent ones."""
    merged: list[list[int]] = []
    for lo, hi in sorted(intervals):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return tuple((lo, hi) for lo, hi in merged)


def covers(outer: tuple[tuple[int, int], ...], inner: tuple[tuple[int, int], ...]) -> bool:
    """True if every port of ``inner`` is in ``outer`` (both merged interval lists)."""
    return all(any(olo <= lo and hi <= ohi for olo, ohi in outer) for lo, hi in inner)


def is_any_port(intervals: tuple[tuple[int, int], ...]) -> bool:
    """1-65535 (or wider) means 'any port': port 0 is not a real transport port."""
    return covers(intervals, ((1, FULL),))


def render_mask(value: int, mask: int) -> str:
    """``22`` for an exact port, ``0x400/0xfc00`` for a block (the form ovs-ofctl prints)."""
    return str(value) if mask == FULL else f"{value:#x}/{mask:#x}"

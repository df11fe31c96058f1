from hypothesis import given
from hypothesis import strategies as st

from flows.portrange import merge_intervals, range_to_masks


def expand(blocks):
    ports = set()
    for value, mask in blocks:
        size = (~mask & 0xFFFF) + 1
        assert value & ~mask & 0xFFFF == 0, "block not aligned"
        ports.update(range(value, value + size))
    return ports


@given(st.integers(0, 65535), st.integers(0, 65535))
def test_masks_cover_exactly_the_range(a, b):
    lo, hi = min(a, b), max(a, b)
    blocks = range_to_masks(lo, hi)
    assert expand(blocks) == set(range(lo, hi + 1))
    assert len(blocks) <= 30  # at most 2 blocks per bit


def test_well_known_ranges():
    assert range_to_masks(22, 22) == [(22, 0xFFFF)]
    assert range_to_masks(0, 65535) == [(0, 0)]
    assert len(range_to_masks(1000, 2000)) == 8
    assert len(range_to_masks(3000, 4000)) == 7


def test_merge_joins_overlapping_and_adjacent():
    assert merge_intervals([(5, 5), (1, 3), (4, 4), (10, 12), (11, 20)]) == ((1, 5), (10, 20))

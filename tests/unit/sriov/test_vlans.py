"""Range lists as the i40e trunk file speaks them, and VLAN id validation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sriov.vlans import (
    VlanRangeError,
    check_vlan,
    check_vlans,
    chunk_range_list,
    format_range_list,
    parse_range_list,
)

vlan_sets = st.frozensets(st.integers(min_value=1, max_value=4094), max_size=300)


def test_the_documented_examples():
    assert parse_range_list("2,4-5,10-20") == {2, 4, 5, *range(10, 21)}
    assert format_range_list({2, 4, 5, *range(10, 21)}) == "2,4-5,10-20"
    assert format_range_list({10, 20}) == "10,20"
    assert parse_range_list("10,20\n") == {10, 20}


def test_nothing_is_the_empty_string():
    assert format_range_list(set()) == ""
    assert parse_range_list("") == frozenset()
    assert parse_range_list("\n") == frozenset()


@given(vlan_sets)
def test_format_then_parse_gives_the_set_back(vlans):
    assert parse_range_list(format_range_list(vlans)) == vlans


@given(vlan_sets)
def test_formatting_is_canonical_ascending_and_maximal(vlans):
    text = format_range_list(vlans)
    assert format_range_list(parse_range_list(text)) == text
    bounds = []
    for item in filter(None, text.split(",")):
        low, _, high = item.partition("-")
        bounds.append((int(low), int(high or low)))
        if high:
            assert int(low) < int(high)  # a-b only for two or more ids
    for (_, previous_high), (low, _) in zip(bounds, bounds[1:], strict=False):
        assert low > previous_high + 1  # runs never touch: they would have been merged


@given(vlan_sets, st.integers(min_value=9, max_value=200))
def test_chunks_cover_the_set_exactly_and_respect_the_limit(vlans, max_len):
    chunks = chunk_range_list(vlans, max_len)
    assert all(0 < len(chunk) <= max_len for chunk in chunks)
    parsed = [parse_range_list(chunk) for chunk in chunks]
    assert frozenset().union(*parsed) == vlans
    assert sum(len(p) for p in parsed) == len(vlans)  # no VLAN twice


def test_a_fragmented_full_range_needs_several_page_sized_writes():
    every_other = set(range(1, 4095, 2))
    assert len(format_range_list(every_other)) > 4096
    chunks = chunk_range_list(every_other, 4000)
    assert len(chunks) == 3
    assert all(len(c) <= 4000 for c in chunks)


@pytest.mark.parametrize("text, named", [
    ("0", "VLAN 0"), ("4095", "VLAN 4095"), ("5-4095", "VLAN 4095"), ("20-10", "descending"),
    ("abc", "'abc'"), ("1,,2", "''"), ("1-", "'1-'"), ("-3", "'-3'"), ("+5", "'+5'"),
    ("1 2", "'1 2'"),
])
def test_malformed_range_lists_are_refused_naming_the_item(text, named):
    with pytest.raises(VlanRangeError) as caught:
        parse_range_list(text)
    assert named in str(caught.value)


@pytest.mark.parametrize("vlan", [0, 4095, -1, True, "10", 10.0])
def test_not_a_usable_vlan(vlan):
    with pytest.raises(VlanRangeError):
        check_vlan(vlan)


def test_check_vlans_names_the_lowest_offender():
    assert check_vlans([5, 6]) == {5, 6}
    with pytest.raises(VlanRangeError, match="VLAN 5000"):
        check_vlans([10, 5000, 6000])
    with pytest.raises(VlanRangeError, match="'x'"):
        check_vlans([10, "x"])  # type: ignore[list-item]

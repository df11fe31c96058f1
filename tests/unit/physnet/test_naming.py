"""Patch port names: neutron's names, at most 15 characters, the same on every run."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from dpagent.physnet.naming import MAX_NAME, interface_name, patch_pair


def test_short_bridge_names_are_kept_whole():
    pair = patch_pair("br-phys1")
    assert (pair.int_port, pair.phy_port) == ("int-br-phys1", "phy-br-phys1")


def test_a_name_of_exactly_15_characters_is_not_shortened():
    assert interface_name("int-", "br-ethernet") == "int-br-ethernet"


def test_long_names_keep_prefix_and_start_and_end_with_a_hash_of_the_bridge():
    digest = hashlib.sha1(b"br-physical-ext").hexdigest()[:6]
    pair = patch_pair("br-physical-ext")
    assert pair.int_port == "int-br-ph" + digest
    assert pair.phy_port == "phy-br-ph" + digest
    assert len(pair.int_port) == MAX_NAME


def test_bridges_sharing_a_long_prefix_get_different_names():
    assert patch_pair("br-provider-east").int_port != patch_pair("br-provider-west").int_port


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=40))
def test_any_bridge_name_gives_deterministic_names_that_fit(bridge):
    first, again = patch_pair(bridge), patch_pair(bridge)
    assert first == again
    for name in (first.int_port, first.phy_port):
        assert len(name) <= MAX_NAME
    assert first.int_port.startswith("int-") and first.phy_port.startswith("phy-")
    assert first.int_port[4:] == first.phy_port[4:]

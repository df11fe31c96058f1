"""A network's wire segment: VLAN networks carry their segmentation id, flat ones go untagged,
local and tunnelled networks have no physical uplink."""

from __future__ import annotations

import pytest

from dpagent.physnet.segments import (
    NoSegment,
    Segment,
    recorded_networks,
    segment_of,
    wire_vlans,
)


def test_a_vlan_network_carries_its_segmentation_id():
    assert segment_of("vlan", "physnet1", 100) == Segment("physnet1", 100)


def test_segmentation_ids_recorded_as_text_are_understood():
    assert segment_of("VLAN", "physnet1", "2001") == Segment("physnet1", 2001)


def test_a_flat_network_is_untagged_whatever_its_segmentation_id():
    assert segment_of("flat", "physnet2", None) == Segment("physnet2", None)
    assert segment_of("flat", "physnet2", 7) == Segment("physnet2", None)


@pytest.mark.parametrize(("network_type", "physnet", "seg", "reason"), [
    ("local", None, None, "never leaves this host"),
    ("vxlan", None, 5001, "tunnelled"),
    ("geneve", "physnet1", 5001, "tunnelled"),
    ("vlan", None, 100, "needs a physical network"),
    ("vlan", "physnet1", None, "invalid segmentation id"),
    ("vlan", "physnet1", 4095, "invalid segmentation id"),
    ("vlan", "physnet1", 0, "invalid segmentation id"),
    ("vlan", "physnet1", True, "invalid segmentation id"),
    ("vlan", "physnet1", "abc", "invalid segmentation id"),
    ("token-ring", "physnet1", 1, "unknown network type"),
])
def test_networks_without_a_wire_segment_say_why(network_type, physnet, seg, reason):
    with pytest.raises(NoSegment, match=reason):
        segment_of(network_type, physnet, seg)


def test_wire_vlans_groups_present_networks_by_physnet_and_skips_the_others():
    present = [("physnet1", "vlan", 100), ("physnet1", "vlan", "100"), ("physnet1", "flat", None),
               ("physnet2", "vlan", 200), ("", "vxlan", 5001), ("physnet3", "vlan", 0),
               ("physnet4", "local", None)]
    assert wire_vlans(present) == {"physnet1": frozenset({100, None}),
                                   "physnet2": frozenset({200})}


def test_networks_recorded_on_ports_by_a_previous_run_are_found():
    """ours and neutron's agent record the same other_config keys; unwired ports none."""
    configs = {
        "tap1": {"net_uuid": "n1", "tag": "1", "network_type": "vlan",
                 "physical_network": "physnet1", "segmentation_id": "100"},
        "tap2": {"net_uuid": "n1", "tag": "1", "network_type": "vlan",
                 "physical_network": "physnet1", "segmentation_id": "100"},
        "tap3": {"net_uuid": "n2", "tag": "2", "network_type": "flat",
                 "physical_network": "physnet2", "segmentation_id": ""},
        "tap4": {"net_uuid": "n3", "tag": "3", "network_type": "vxlan",
                 "physical_network": "", "segmentation_id": "7"},
        "tap5": {},
    }
    present = recorded_networks(configs)
    assert sorted(present) == [("physnet1", "vlan", "100"), ("physnet2", "flat", "")]
    assert wire_vlans(present) == {"physnet1": frozenset({100}), "physnet2": frozenset({None})}

"""Start-up checks: the veth option is rejected with the reason, mappings must be usable."""

from __future__ import annotations

import pytest

from dpagent.physnet.config import PhysnetConfigError, check_options


def test_use_veth_interconnection_is_rejected_and_the_message_says_patch_ports_replace_it():
    with pytest.raises(PhysnetConfigError) as caught:
        check_options({"physnet1": "br-phys1"}, "br-int", use_veth_interconnection=True)
    message = str(caught.value)
    assert "use_veth_interconnection" in message
    assert "patch ports" in message and "replace" in message


def test_valid_mappings_pass():
    check_options({"physnet1": "br-phys1", "physnet2": "br-phys2"}, "br-int", False)
    check_options({}, "br-int", False)


def test_one_bridge_for_two_physnets_is_refused():
    with pytest.raises(PhysnetConfigError, match="br-phys1 is mapped to several"):
        check_options({"physnet1": "br-phys1", "physnet2": "br-phys1"}, "br-int", False)


def test_mapping_a_physnet_to_the_integration_bridge_is_refused():
    with pytest.raises(PhysnetConfigError, match="integration bridge br-int"):
        check_options({"physnet1": "br-int"}, "br-int", False)


def test_every_problem_is_listed_at_once():
    with pytest.raises(PhysnetConfigError) as caught:
        check_options({"physnet1": "br-int", "physnet2": ""}, "br-int", True)
    assert len(str(caught.value).splitlines()) == 3

"""The physical bridge's flows, as the switch gets them (golden text): NORMAL for the operator's
traffic, everything from phy-X dropped except the present networks' VLANs."""

from __future__ import annotations

from dpagent.physnet.bridge_flows import allow_flows, guard_flows
from flows.cookies import is_dpagent_cookie


def text(flows):
    return [f.render().split(",", 3)[3] for f in flows]  # without table, priority, cookie


def test_guard_drops_everything_from_the_patch_port_and_switches_the_rest():
    flows = guard_flows(7)
    assert [(f.table, f.priority) for f in flows] == [(0, 10), (0, 0)]
    assert text(flows) == ["in_port=7,actions=drop", "actions=NORMAL"]


def test_allow_list_passes_each_present_vlan_and_untagged_for_flat():
    flows = allow_flows(7, [300, None, 100, 100])
    assert {f.priority for f in flows} == {20}
    assert text(flows) == ["in_port=7,vlan_tci=0x0000/0x1fff,actions=NORMAL",
                           "in_port=7,dl_vlan=100,actions=NORMAL",
                           "in_port=7,dl_vlan=300,actions=NORMAL"]


def test_no_present_network_means_no_allow_flow():
    assert allow_flows(7, []) == ()


def test_flows_carry_dpagent_content_cookies():
    flows = [*guard_flows(7), *allow_flows(7, [100, None])]
    assert all(is_dpagent_cookie(f.cookie) for f in flows)
    assert len({f.cookie for f in flows}) == len(flows)
    assert allow_flows(8, [100])[0].cookie != allow_flows(7, [100])[0].cookie

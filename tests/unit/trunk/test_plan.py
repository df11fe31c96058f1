"""The trunk plan: neutron's names, which subports can be carried, the changes that make a
trunk bridge right (none when it is), and the trunk's status from its ports' states."""

from __future__ import annotations

import json

from dpagent.rpc.trunks import SubPort, Trunk
from dpagent.trunk.naming import (
    integration_side,
    is_service_port,
    trunk_bridge_name,
    trunk_side,
)
from dpagent.trunk.plan import (
    BridgeView,
    ObservedPort,
    PatchPair,
    check_subports,
    plan,
    trunk_metadata,
    trunk_status,
)

TRUNK = "7fc065a9-94d8-4f35-b4bf-64e784343156"
PARENT = "3128999c-5232-45bc-8653-f9035360d08c"
SUB_B = "be67ab41-fbe8-49a5-9bf6-7d6f5e7c7a9c"
SUB_C = "6acc7ee3-d8e6-4018-bca3-c1a89b821404"
BRIDGE = trunk_bridge_name(TRUNK)


def sub(port_id: str, vlan: int, kind: str = "vlan") -> SubPort:
    return SubPort(port_id, TRUNK, kind, vlan)


def trunk(*subs: SubPort) -> Trunk:
    return Trunk(TRUNK, PARENT, tuple(subs))


def test_names_are_neutrons():
    assert BRIDGE == "tbr-7fc065a9-9"
    assert integration_side("tp", PARENT) == "tpi-3128999c-52"
    assert trunk_side("sp", SUB_B) == "spt-be67ab41-fb"
    assert is_service_port("spt-x") and is_service_port("tpi-x") and is_service_port(BRIDGE)
    assert not is_service_port("tap3128999c-52")


def test_a_second_subport_on_a_vlan_is_refused_and_the_wired_one_keeps_it():
    t = trunk(sub(SUB_B, 10), sub(SUB_C, 10))
    accepted, refused = check_subports(t, wired={SUB_B: 10})
    assert accepted == [sub(SUB_B, 10)]
    assert refused == {SUB_C: f"subport {SUB_C} of trunk {TRUNK}: VLAN 10 is already "
                              f"subport {SUB_B}'s"}
    # neither wired yet: neither gets the VLAN (which one the VM means is unknowable)
    accepted, refused = check_subports(t, wired={})
    assert accepted == [] and set(refused) == {SUB_B, SUB_C}
    assert "claimed by subports" in refused[SUB_B] and TRUNK in refused[SUB_B]


def test_inherit_and_the_parent_as_its_own_subport_are_refused_alone():
    t = trunk(sub(SUB_B, 10), sub(SUB_C, 20, "inherit"), sub(PARENT, 30))
    accepted, refused = check_subports(t, wired={})
    assert accepted == [sub(SUB_B, 10)]
    assert "only 'vlan'" in refused[SUB_C] and "the trunk's parent" in refused[PARENT]


def tap(**ids: str) -> ObservedPort:
    return ObservedPort("tap3128999c-52", "", None, None, None,
                        {"iface-id": PARENT, "attached-mac": "fa:16:3e:00:00:01", **ids})


def wired_view(pairs: list[PatchPair], metadata: dict[str, str] | None = None) -> BridgeView:
    ports = {"tap3128999c-52": tap(**(metadata or {}))}
    integration = {}
    for p in pairs:
        ports[p.trunk] = ObservedPort(p.trunk, "patch", p.integration, p.tag, "access",
                                      p.external_ids())
        integration[p.integration] = ObservedPort(p.integration, "patch", p.trunk, 101, None,
                                                  p.external_ids())
    return BridgeView(BRIDGE, ports, integration)


PAIRS = [PatchPair.parent(PARENT, "fa:16:3e:00:00:01"),
         PatchPair.subport(SUB_B, 10, "fa:16:3e:00:00:02")]


def test_a_new_trunk_gets_every_pair_and_its_metadata():
    view = BridgeView(BRIDGE, {"tap3128999c-52": tap()}, {})
    changes = plan(view, PARENT, PAIRS, TRUNK)
    assert changes.create == PAIRS and not changes.delete and not changes.retag
    assert changes.metadata is not None
    name, ids = changes.metadata
    assert name == "tap3128999c-52" and ids["trunk_id"] == TRUNK
    assert json.loads(ids["subport_ids"]) == [SUB_B] and ids["iface-id"] == PARENT


def test_a_right_bridge_changes_nothing():
    view = wired_view(PAIRS, trunk_metadata(BRIDGE, TRUNK, [SUB_B]))
    assert not plan(view, PARENT, PAIRS, TRUNK)


def test_a_wrong_tag_is_retagged_a_broken_pair_recreated_and_a_stale_one_removed():
    stale = PatchPair.subport(SUB_C, 20, "")
    view = wired_view([*PAIRS, stale], trunk_metadata(BRIDGE, TRUNK, [SUB_B, SUB_C]))
    moved = [PAIRS[0], PatchPair.subport(SUB_B, 11, "fa:16:3e:00:00:02")]
    changes = plan(view, PARENT, moved, TRUNK)
    assert changes.retag == {PAIRS[1].trunk: 11}
    assert changes.delete == [stale.trunk, stale.integration]
    assert changes.metadata is not None and json.loads(changes.metadata[1]["subport_ids"]) == \
        [SUB_B]
    # a br-int end that lost its peer: the pair is made again
    broken = wired_view(PAIRS, trunk_metadata(BRIDGE, TRUNK, [SUB_B]))
    del broken.integration[PAIRS[1].integration]  # type: ignore[attr-defined]
    changes = plan(broken, PARENT, PAIRS, TRUNK)
    assert changes.delete == [PAIRS[1].trunk] and changes.create == [PAIRS[1]]


def test_status_waits_for_every_port_then_says_active_or_degraded():
    assert trunk_status({PARENT: "wired"}, PARENT, [SUB_B], {}) == (None, [])
    assert trunk_status({PARENT: "wired", SUB_B: "wired"}, PARENT, [SUB_B], {}) == \
        ("ACTIVE", [])
    status, reasons = trunk_status({PARENT: "wired", SUB_B: "failed"}, PARENT, [SUB_B], {})
    assert status == "DEGRADED" and reasons == [f"subport {SUB_B}: failed on the integration "
                                                "bridge"]
    status, reasons = trunk_status({PARENT: "wired"}, PARENT, [], {SUB_C: "VLAN taken"})
    assert (status, reasons) == ("DEGRADED", ["VLAN taken"])
    # an administratively down subport is down on purpose; a cordoned agent decides nothing
    assert trunk_status({PARENT: "wired", SUB_B: "port-down"}, PARENT, [SUB_B], {})[0] == \
        "ACTIVE"
    assert trunk_status({PARENT: "admin-down"}, PARENT, [], {})[0] is None

"""The VLAN plan: reaches the goal, fewest batched writes, never flaps a VLAN that stays."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sriov.vlan_plan import VlanIntent, VlanStep, apply_step, plan_vlans, undo_step
from sriov.vlans import VlanRangeError

vlans = st.frozensets(st.integers(1, 4094), max_size=20)
port_vlans = st.one_of(st.just(0), st.integers(1, 4094))
intents = st.one_of(
    port_vlans.map(lambda v: VlanIntent(port_vlan=v)),
    vlans.filter(bool).map(lambda t: VlanIntent(trunk=t)))


def run(port_vlan, trunk, steps):
    states = [(port_vlan, trunk)]
    for step in steps:
        states.append(apply_step(*states[-1], step))
    return states


@given(port_vlans, vlans, intents)
def test_the_plan_reaches_the_intent(port_vlan, trunk, intent):
    final = run(port_vlan, trunk, plan_vlans(port_vlan, trunk, intent))[-1]
    assert final == (intent.port_vlan, intent.trunk)


@given(port_vlans, vlans, intents)
def test_a_vlan_that_stays_is_never_removed_and_a_changing_trunk_never_empties(
        port_vlan, trunk, intent):
    steps = plan_vlans(port_vlan, trunk, intent)
    for step in steps:
        if step.kind == "trunk_rem":
            assert not step.vlans & intent.trunk
    if trunk and intent.trunk:
        assert all(t for _, t in run(port_vlan, trunk, steps))


@given(port_vlans, vlans, intents)
def test_at_most_one_batch_each_and_nothing_when_already_there(port_vlan, trunk, intent):
    steps = plan_vlans(port_vlan, trunk, intent)
    kinds = [step.kind for step in steps]
    assert kinds.count("trunk_add") <= 1 and kinds.count("trunk_rem") <= 1
    assert kinds.count("port_vlan") <= 1
    assert plan_vlans(intent.port_vlan, intent.trunk, intent) == ()
    assert all(step.vlans for step in steps)


@given(port_vlans, vlans, intents)
def test_undoing_the_steps_in_reverse_restores_the_start(port_vlan, trunk, intent):
    states = run(port_vlan, trunk, plan_vlans(port_vlan, trunk, intent))
    steps = plan_vlans(port_vlan, trunk, intent)
    undos = [undo_step(*before, step) for before, step in zip(states, steps, strict=False)]
    assert run(*states[-1], list(reversed(undos)))[-1] == (port_vlan, trunk)


def test_examples():
    assert plan_vlans(100, frozenset(), VlanIntent(trunk=frozenset({10, 20}))) == (
        VlanStep("port_vlan", frozenset({0})), VlanStep("trunk_add", frozenset({10, 20})))
    assert [s.describe() for s in plan_vlans(0, frozenset({10, 11, 12}),
                                              VlanIntent(trunk=frozenset({11, 12, 13})))] == [
        "trunk add 13", "trunk rem 10"]
    assert [s.describe() for s in plan_vlans(0, frozenset({5, 6}), VlanIntent(port_vlan=7))] == [
        "trunk rem 5-6", "port VLAN 7"]
    assert [s.describe() for s in plan_vlans(7, frozenset(), VlanIntent())] == ["port VLAN 0"]


@pytest.mark.parametrize("intent, message", [
    (VlanIntent(port_vlan=4095), "VLAN 4095 is outside 1-4094"),
    (VlanIntent(trunk=frozenset({0, 10})), "VLAN 0 is outside 1-4094"),
    (VlanIntent(port_vlan=5, trunk=frozenset({10})), "port VLAN 5 and trunk 10 together"),
])
def test_bad_intents(intent, message):
    with pytest.raises((VlanRangeError, ValueError), match=message):
        intent.check()

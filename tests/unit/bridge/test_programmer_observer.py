"""What a programmer tells its observer: each bundle committed (with its flow-mods), each one
refused, each reset of its switch -- once per reset, however often it is looked for. On an
in-memory switch; the programmer itself is tested on real OVS (tests/functional/bridge)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from dpagent.bridge.programmer import BridgeProgrammer
from dpagent.bridge.transport import BundleRejected, FlowMod, InstalledFlow, Op
from flows.cookies import Kind
from flows.flow import Flow, flow
from flows.pipeline import Table


class MemorySwitch:
    """A FlowTransport holding flows in a dict; refuses bundles adding a cookie of ``refuse``."""

    def __init__(self) -> None:
        self.flows: dict[int, Flow] = {}
        self.refuse: set[int] = set()

    def apply(self, mods: Sequence[FlowMod],
              before_commit: Callable[[], object] | None = None) -> None:
        for mod in mods:
            if mod.op is Op.ADD and mod.cookie in self.refuse:
                raise BundleRejected("refused", mod)
        for mod in mods:
            if mod.op is Op.ADD:
                assert mod.flow is not None
                self.flows[mod.cookie] = mod.flow
            else:
                self.flows.pop(mod.cookie, None)

    def dump(self, cookie: int, mask: int) -> list[InstalledFlow]:
        return [InstalledFlow(c, f.table, f.priority) for c, f in self.flows.items()
                if c & mask == cookie & mask]

    def configure_switch(self) -> None:
        pass


class Told:
    def __init__(self) -> None:
        self.events: list[tuple[str, ...] | tuple[str, int]] = []

    def bundle_committed(self, flow_mods: int, seconds: float) -> None:
        assert 0 <= seconds < 1
        self.events.append(("committed", flow_mods))

    def bundle_rejected(self) -> None:
        self.events.append(("rejected",))

    def switch_reset(self) -> None:
        self.events.append(("reset",))


def drop(priority: int) -> Flow:
    return flow(Table.EGRESS_RULES, priority, (), ("drop",), Kind.BASE)


@pytest.fixture
def switch() -> MemorySwitch:
    return MemorySwitch()


@pytest.fixture
def told() -> Told:
    return Told()


def test_each_committed_bundle_is_told_with_its_flow_mods(switch, told):
    programmer = BridgeProgrammer(switch, told)
    programmer.set_flows("base", [drop(1), drop(2)])
    programmer.reconcile("start")  # the canary and two flows
    programmer.set_flows("base", [drop(2)])
    programmer.apply()  # one delete
    programmer.apply()  # nothing to send: no bundle
    assert told.events == [("committed", 3), ("committed", 1)]


def test_a_refused_bundle_is_told_then_the_one_without_the_culprit(switch, told):
    programmer = BridgeProgrammer(switch, told)
    programmer.reconcile("start")
    bad = drop(9)
    switch.refuse.add(bad.cookie)
    programmer.set_flows("good", [drop(1)])
    programmer.set_flows("bad", [bad])
    report = programmer.apply()
    assert list(report.rejected) == ["bad"]
    assert told.events == [("committed", 1), ("rejected",), ("committed", 1)]


def test_a_reset_is_told_once_however_often_it_is_looked_for(switch, told):
    programmer = BridgeProgrammer(switch, told)
    assert programmer.switch_was_reset()  # nothing installed yet: no reset to tell
    programmer.reconcile("start")
    assert not programmer.switch_was_reset()
    switch.flows.clear()  # ovs-vswitchd restarted
    assert programmer.switch_was_reset()
    assert programmer.switch_was_reset()  # still empty: the same reset
    programmer.reconcile("switch reset")
    assert not programmer.switch_was_reset()
    assert told.events == [("committed", 1), ("reset",), ("committed", 1)]


def test_without_an_observer_nothing_is_told(switch):
    programmer = BridgeProgrammer(switch)
    programmer.reconcile("start")
    switch.flows.clear()
    assert programmer.switch_was_reset()
    assert programmer.bundles_sent == 1

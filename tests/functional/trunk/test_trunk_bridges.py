"""Trunk bridges on a real switch, driven by OVSDB events: neutron's pairs made when os-vif's
VM port appears, subports changed alone by pushes, bad input refused alone (a VLAN taken twice,
a subport the server would not bind), a bridge without a VM removed after the timeout, a
restart that touches nothing, and the trunk's status only once the agent core settled its
ports. The control plane is a recording double; tests/neutron/test_trunk.py runs the same
against the real neutron-server."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from dpagent.agent.ovsdb import Ovsdb
from dpagent.lab.ovs_sandbox import OVSSandbox
from dpagent.rpc.trunks import SubPort, Trunk
from dpagent.trunk.manager import TrunkBridges
from dpagent.trunk.naming import TRUNK_BRIDGE_PREFIX, trunk_bridge_name
from dpagent.trunk.switch import TrunkSwitch


def wait_for(predicate: Any, timeout: float = 5.0, what: str = "condition") -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Control:
    """The server's side of neutron's trunk RPC, recorded."""

    def __init__(self) -> None:
        self.trunks: dict[str, Trunk] = {}  # by parent
        self.unbindable: set[str] = set()
        self.bindings: list[list[str]] = []
        self.statuses: list[tuple[str, str]] = []
        self.pulls = 0

    def trunk_of(self, port_id: str) -> Trunk | None:
        self.pulls += 1
        return self.trunks.get(port_id)

    def update_subport_bindings(self, subports: list[SubPort]) -> dict[str, Any]:
        self.bindings.append([s.port_id for s in subports])
        bound: dict[str, list[dict[str, Any]]] = {}
        for s in subports:
            if s.port_id not in self.unbindable:
                bound.setdefault(s.trunk_id, []).append(
                    {"id": s.port_id, "mac_address": f"fa:16:3e:00:{len(self.bindings):02x}:01"})
        return bound

    def update_trunk_status(self, trunk_id: str, status: str) -> None:
        self.statuses.append((trunk_id, status))


class Rig:
    def __init__(self, sandbox: OVSSandbox, ovsdb: Ovsdb, integration: str) -> None:
        self.sandbox, self.ovsdb, self.integration = sandbox, ovsdb, integration
        ovsdb.watch(lambda event, vif: None, lambda: None, integration)  # as the daemon does
        self.control = Control()
        self.managers: list[TrunkBridges] = []
        self.bridges: list[str] = []

    def manager(self, parent_timeout: float = 60.0) -> TrunkBridges:
        manager = TrunkBridges(TrunkSwitch(self.ovsdb.api, self.integration), self.control,
                               parent_timeout=parent_timeout)
        self.ovsdb.watch_bridges(TRUNK_BRIDGE_PREFIX, manager.bridge_changed,
                                 manager.vif_elsewhere)
        manager.start()
        self.managers.append(manager)
        return manager

    def trunk(self, *vlans: int) -> Trunk:
        trunk_id, parent = str(uuid.uuid4()), str(uuid.uuid4())
        subs = tuple(SubPort(str(uuid.uuid4()), trunk_id, "vlan", v) for v in vlans)
        trunk = Trunk(trunk_id, parent, subs)
        self.control.trunks[parent] = trunk
        return trunk

    def plug(self, trunk: Trunk) -> str:
        """os-vif: the trunk bridge, then the VM's port on it."""
        bridge = trunk_bridge_name(trunk.id)
        self.bridges.append(bridge)
        self.sandbox.vsctl("add-br", bridge, "--", "set", "Bridge", bridge,
                           "datapath_type=netdev")
        tap = f"tap{trunk.port_id[:11]}"
        self.sandbox.vsctl("add-port", bridge, tap, "--", "set", "Interface", tap,
                           "type=internal", f'external_ids:iface-id="{trunk.port_id}"',
                           'external_ids:attached-mac="fa:16:3e:aa:00:01"')
        return bridge

    def ports(self, bridge: str) -> set[str]:
        return set(self.sandbox.vsctl("list-ports", bridge).split())

    def get(self, table: str, row: str, column: str) -> str:
        return self.sandbox.vsctl("get", table, row, column).strip().strip('"')

    def pair_names(self, bridge: str) -> set[str]:
        return {n for n in self.ports(bridge) | self.ports(self.integration)
                if n[:3] in ("tpi", "tpt", "spi", "spt")}


@pytest.fixture
def rig(ovs_sandbox: OVSSandbox, ovsdb: Ovsdb, bridge: str) -> Iterator[Rig]:
    made = Rig(ovs_sandbox, ovsdb, bridge)
    yield made
    for manager in made.managers:
        manager.stop()
    for name in made.bridges:
        ovs_sandbox.del_bridge(name)


def sp(port_id: str, prefix: str = "spi") -> str:
    return f"{prefix}-{port_id}"[:15]


def test_the_vm_port_on_a_trunk_bridge_gets_neutrons_pairs_and_the_trunk_goes_active(rig):
    trunk = rig.trunk(10, 20)
    manager = rig.manager()
    bridge = rig.plug(trunk)
    b, c = (s.port_id for s in trunk.sub_ports)
    wanted = {sp(trunk.port_id, "tpi"), sp(trunk.port_id, "tpt"), sp(b), sp(b, "spt"), sp(c),
              sp(c, "spt")}
    wait_for(lambda: rig.pair_names(bridge) == wanted, what="the three pairs")
    assert rig.control.bindings == [[b, c]]  # bound before their pairs were made
    assert rig.get("Port", sp(b, "spt"), "tag") == "10"
    assert rig.get("Port", sp(c, "spt"), "tag") == "20"
    assert rig.get("Port", sp(trunk.port_id, "tpt"), "tag") == "0"
    assert rig.get("Interface", sp(b), "options:peer") == sp(b, "spt")
    assert rig.get("Interface", sp(b), "external_ids:iface-id") == b
    assert rig.get("Interface", sp(b), "external_ids:attached-mac") == "fa:16:3e:00:01:01"
    tap = f"tap{trunk.port_id[:11]}"
    assert rig.get("Interface", tap, "external_ids:trunk_id") == trunk.id
    assert rig.get("Interface", tap, "external_ids:bridge_name") == bridge
    # no status until the agent core has wired every port of the trunk
    time.sleep(0.3)
    assert rig.control.statuses == []
    manager.port_states({trunk.port_id: "wired", b: "wired"})
    time.sleep(0.3)
    assert rig.control.statuses == []
    manager.port_states({c: "wired"})
    wait_for(lambda: rig.control.statuses == [(trunk.id, "ACTIVE")], what="ACTIVE")
    assert manager.status()["trunks"][trunk.id]["subports"] == {b: 10, c: 20}


def test_subport_pushes_change_only_the_subports_they_name(rig):
    trunk = rig.trunk(10)
    manager = rig.manager()
    bridge = rig.plug(trunk)
    (b,) = (s.port_id for s in trunk.sub_ports)
    wait_for(lambda: sp(b) in rig.ports(rig.integration), what="B's pair")
    manager.port_states({trunk.port_id: "wired", b: "wired"})
    wait_for(lambda: rig.control.statuses, what="a status")
    kept = {n: rig.get("Interface", n, "_uuid") for n in rig.pair_names(bridge)}
    pulls = rig.control.pulls
    new = SubPort(str(uuid.uuid4()), trunk.id, "vlan", 30)
    manager.on_subports("created", [new])
    wait_for(lambda: sp(new.port_id) in rig.ports(rig.integration), what="the new pair")
    assert rig.get("Port", sp(new.port_id, "spt"), "tag") == "30"
    assert rig.control.bindings[-1] == [new.port_id]
    manager.port_states({new.port_id: "wired"})
    wait_for(lambda: rig.control.statuses[-1] == (trunk.id, "ACTIVE") and
             len(rig.control.statuses) == 2, what="ACTIVE again after the change")
    manager.on_subports("deleted", [trunk.sub_ports[0]])
    wait_for(lambda: sp(b) not in rig.ports(rig.integration), what="B's pair gone")
    assert sp(b, "spt") not in rig.ports(bridge)
    survivors = {n: rig.get("Interface", n, "_uuid") for n in kept if "tp" in n[:2]}
    assert survivors == {n: u for n, u in kept.items() if "tp" in n[:2]}
    assert rig.control.pulls == pulls  # pushes are enough: no trunk pulled again
    # a push for a trunk of another host changes nothing here
    manager.on_subports("created", [SubPort(str(uuid.uuid4()), str(uuid.uuid4()), "vlan", 5)])
    time.sleep(0.3)
    assert len(rig.control.bindings) == 2


def test_a_vlan_taken_twice_is_refused_alone_and_the_trunk_is_degraded(rig, caplog):
    caplog.set_level(logging.ERROR, logger="dpagent.trunk")
    trunk = rig.trunk(10, 10, 20)
    manager = rig.manager()
    bridge = rig.plug(trunk)
    b1, b2, c = (s.port_id for s in trunk.sub_ports)
    wait_for(lambda: sp(c) in rig.ports(rig.integration), what="C's pair")
    assert sp(b1) not in rig.ports(rig.integration) and sp(b2) not in rig.ports(bridge)
    manager.port_states({trunk.port_id: "wired", c: "wired"})
    wait_for(lambda: rig.control.statuses == [(trunk.id, "DEGRADED")], what="DEGRADED")
    errors = " ".join(r.getMessage() for r in caplog.records)
    assert trunk.id in errors and b1 in errors and b2 in errors and "VLAN 10" in errors


def test_a_subport_the_server_would_not_bind_is_refused_alone(rig, caplog):
    caplog.set_level(logging.ERROR, logger="dpagent.trunk")
    trunk = rig.trunk(10, 20)
    b, c = (s.port_id for s in trunk.sub_ports)
    rig.control.unbindable.add(c)  # e.g. its network is on a physnet this host lacks
    manager = rig.manager()
    rig.plug(trunk)
    wait_for(lambda: sp(b) in rig.ports(rig.integration), what="B's pair")
    assert sp(c) not in rig.ports(rig.integration)
    manager.port_states({trunk.port_id: "wired", b: "wired"})
    wait_for(lambda: rig.control.statuses == [(trunk.id, "DEGRADED")], what="DEGRADED")
    assert any(c in r.getMessage() and trunk.id in r.getMessage() for r in caplog.records)
    # a subport that fails on br-int degrades it too
    trunk2 = rig.trunk(10)
    rig.plug(trunk2)
    (d,) = (s.port_id for s in trunk2.sub_ports)
    wait_for(lambda: sp(d) in rig.ports(rig.integration), what="D's pair")
    manager.port_states({trunk2.port_id: "wired", d: "failed"})
    wait_for(lambda: (trunk2.id, "DEGRADED") in rig.control.statuses, what="DEGRADED")


def test_the_vm_leaving_removes_its_pairs(rig):
    trunk = rig.trunk(10)
    rig.manager()
    bridge = rig.plug(trunk)
    wait_for(lambda: len(rig.pair_names(bridge)) == 4, what="the pairs")
    rig.sandbox.vsctl("del-port", f"tap{trunk.port_id[:11]}")
    wait_for(lambda: not rig.pair_names(bridge), what="the pairs gone")
    rig.sandbox.del_bridge(bridge)


def test_a_bridge_without_a_vm_goes_after_the_timeout(rig, caplog):
    caplog.set_level(logging.ERROR, logger="dpagent.trunk")
    trunk = rig.trunk(10)
    rig.manager(parent_timeout=1.0)
    bridge = rig.plug(trunk)
    wait_for(lambda: len(rig.pair_names(bridge)) == 4, what="the pairs")
    # the agent away, the VM's port goes, the bridge stays: a new agent finds it so
    for manager in rig.managers:
        manager.stop()
    rig.sandbox.vsctl("del-port", f"tap{trunk.port_id[:11]}")
    started = time.monotonic()
    rig.manager(parent_timeout=1.0)
    wait_for(lambda: bridge not in rig.sandbox.vsctl("list-br").split(), 5,
             what="the bridge removed")
    assert time.monotonic() - started >= 0.9
    assert not {n for n in rig.ports(rig.integration) if n[:3] in ("tpi", "spi")}
    errors = " ".join(r.getMessage() for r in caplog.records)
    assert bridge in errors and trunk.id in errors and trunk.sub_ports[0].port_id in errors
    wait_for(lambda: (trunk.id, "DEGRADED") in rig.control.statuses, what="DEGRADED")


def test_a_restart_on_a_right_bridge_changes_nothing(rig):
    trunk = rig.trunk(10, 20)
    first = rig.manager()
    bridge = rig.plug(trunk)
    wait_for(lambda: len(rig.pair_names(bridge)) == 6, what="the pairs")
    time.sleep(0.2)
    first.stop()
    before = {n: (rig.get("Interface", n, "_uuid"), rig.get("Interface", n, "ofport"),
                  rig.get("Port", n, "tag")) for n in rig.pair_names(bridge)}
    bindings = len(rig.control.bindings)
    second = rig.manager()
    wait_for(lambda: trunk.id in second.status()["trunks"], what="the trunk known again")
    time.sleep(0.3)
    after = {n: (rig.get("Interface", n, "_uuid"), rig.get("Interface", n, "ofport"),
                 rig.get("Port", n, "tag")) for n in rig.pair_names(bridge)}
    assert after == before
    assert len(rig.control.bindings) == bindings  # its subports are bound already
    second.port_states({p: "wired" for p in [trunk.port_id, *(s.port_id for s in
                                                                trunk.sub_ports)]})
    wait_for(lambda: rig.control.statuses[-1:] == [(trunk.id, "ACTIVE")], what="ACTIVE")


def test_a_vm_port_whose_ids_come_later_is_wired_at_once(rig):
    trunk = rig.trunk(10)
    rig.manager()
    bridge = trunk_bridge_name(trunk.id)
    rig.bridges.append(bridge)
    rig.sandbox.vsctl("add-br", bridge, "--", "set", "Bridge", bridge, "datapath_type=netdev")
    tap = f"tap{trunk.port_id[:11]}"
    rig.sandbox.vsctl("add-port", bridge, tap, "--", "set", "Interface", tap, "type=internal")
    time.sleep(0.3)
    assert not rig.pair_names(bridge)  # no VM port yet: a port without Nova's ids
    rig.sandbox.vsctl("set", "Interface", tap, f'external_ids:iface-id="{trunk.port_id}"')
    wait_for(lambda: len(rig.pair_names(bridge)) == 4, 3, what="the pairs, without waiting "
             "for the parentless timeout")

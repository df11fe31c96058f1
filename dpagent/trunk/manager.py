"""Trunk bridges as neutron's OVS trunk driver runs them: one worker that turns OVSDB events,
subport pushes and the agent core's port states into patch-port pairs and trunk statuses.

* A trunk bridge seen (an OVSDB event: created, or its ports changed) with a VM port on it
  (os-vif's tap, iface-id = the trunk's parent) is looked up on the server (``pull`` of the
  ``Trunk`` by its parent), its new subports bound to this host (``update_subport_bindings``,
  before their pairs exist, so the agent core finds them bound when it fetches their details),
  and its pairs made or corrected; a bridge that is right is not touched.
* ``SubPort`` pushes (``created``/``deleted``) change only the subports they name: no call
  to the server but the binding of the new ones.
* The trunk's status goes to the server (``update_trunk_status``) once the agent core has
  settled every one of its ports on br-int: ACTIVE, or DEGRADED with the reasons logged (a
  subport refused, not bound, or failed on br-int). The server sets DOWN itself when the
  parent is unbound; dpagent never reports DOWN when a parent goes (neither does neutron's
  driver): in a live migration the source's VM goes after the destination reported ACTIVE.
* The VM's port gone from the bridge: its pairs go (the br-int ends' VIFs go with them, and
  the agent core reports them down). A trunk bridge without a VM port for ``parent_timeout``
  seconds is removed with its pairs, as neutron's driver does (os-vif normally removes it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from dpagent.agent.reporting import ControlPlaneUnavailable
from dpagent.agent.retry import Backoff
from dpagent.agent.work_queue import WorkQueue
from dpagent.rpc.errors import ControlPlaneError
from dpagent.rpc.trunks import TRUNK_DEGRADED, SubPort, Trunk
from dpagent.trunk.naming import (
    PARENT_PREFIX,
    SUBPORT_PREFIX,
    integration_side,
    is_service_port,
    trunk_bridge_name,
)
from dpagent.trunk.plan import BridgeView, PatchPair, check_subports, plan, trunk_status
from dpagent.trunk.switch import TrunkSwitch

LOG = logging.getLogger(__name__)

GONE = "gone"
"""A port state meaning: the agent core knows no such VIF (any more)."""


class TrunkControl(Protocol):
    def trunk_of(self, port_id: str) -> Trunk | None: ...

    def update_subport_bindings(self, subports: list[SubPort]) -> dict[str, Any]: ...

    def update_trunk_status(self, trunk_id: str, status: str) -> None: ...


@dataclass
class TrunkRecord:
    """One trunk wired on this host."""

    bridge: str
    parent_id: str
    trunk: Trunk
    parent_mac: str = ""
    macs: dict[str, str] = field(default_factory=dict)
    """subport -> MAC (from the binding reply, or the pair found in place)"""
    wired: dict[str, int] = field(default_factory=dict)
    """subport -> VLAN of its pair in place"""
    refused: dict[str, str] = field(default_factory=dict)
    reported: str | None = None
    """The status last told to the server; None: tell it again (a push or a binding call
    made the server change it)."""
    reasons: list[str] = field(default_factory=list)

    def integration_ends(self) -> set[str]:
        return {integration_side(PARENT_PREFIX, self.parent_id),
                *(integration_side(SUBPORT_PREFIX, p) for p in self.wired)}


@dataclass
class _Work:
    bridges: set[str] = field(default_factory=set)
    pushes: list[tuple[str, list[SubPort]]] = field(default_factory=list)
    states: dict[str, str] = field(default_factory=dict)
    resync: str | None = None
    recheck: bool = False
    """look again at the bridges still without a VM port"""

    def __bool__(self) -> bool:
        return bool(self.bridges or self.pushes or self.states or self.resync or self.recheck)


class TrunkBridges:
    """Wires this host's trunk bridges to br-int and reports their trunks' statuses."""

    def __init__(self, switch: TrunkSwitch, control: TrunkControl, *,
                 parent_timeout: float = 60.0, retry_backoff: float = 1.0,
                 max_backoff: float = 30.0) -> None:
        self.switch = switch
        self.control = control
        self.parent_timeout = parent_timeout
        self.records: dict[str, TrunkRecord] = {}
        """trunk bridge -> its trunk, for the bridges wired"""
        self.problems: dict[str, str] = {}
        """trunk bridge -> why it is not wired"""
        self._states: dict[str, str] = {}
        self._parentless: dict[str, float] = {}
        """trunk bridge -> when it is removed unless a VM port comes"""
        self._queue: WorkQueue[_Work] = WorkQueue(_Work, _Work(resync="start"))
        self._backoff = Backoff(retry_backoff, max_backoff)
        self._thread: threading.Thread | None = None

    # -- inputs (any thread) ---------------------------------------------------------------

    def bridge_changed(self, name: str) -> None:
        """OVSDB: a trunk bridge was created or deleted, or its ports changed."""
        self._queue.mark(lambda w: w.bridges.add(name))

    def vif_elsewhere(self, vif: Any) -> None:
        """OVSDB: an interface off br-int got an iface-id (os-vif may write the VM port's ids
        after adding it to its trunk bridge, which changes no Bridge row)."""
        self._queue.mark(lambda w: setattr(w, "recheck", True))

    def resync(self, reason: str) -> None:
        self._queue.mark(lambda w: setattr(w, "resync", w.resync or reason))

    def port_states(self, states: Mapping[str, str]) -> None:
        """The agent core's states of ports whose state changed (GONE: no such VIF)."""
        copy = dict(states)
        self._queue.mark(lambda w: w.states.update(copy))

    def on_trunks(self, event_type: str, trunks: list[Trunk]) -> None:
        """``Trunk`` pushes: the OVS driver learns of trunks from OVSDB (the parent's VIF on
        its bridge), not from these (neutron's driver ignores them too)."""
        LOG.debug("trunk push %s for %s: nothing to do", event_type, [t.id for t in trunks])

    def on_subports(self, event_type: str, subports: list[SubPort]) -> None:
        """``SubPort`` pushes: ``created`` or ``deleted`` subports of (maybe) our trunks."""
        subs = list(subports)
        LOG.debug("subport push %s: %s", event_type,
                  [(s.trunk_id, s.port_id, s.segmentation_id) for s in subs])
        self._queue.mark(lambda w: w.pushes.append((event_type, subs)))

    # -- worker ------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dpagent-trunks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._queue.stop()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._queue.stopping.is_set():
            self.run_once(timeout=self._next_deadline())

    def _next_deadline(self) -> float:
        if not self._parentless:
            return 1.0
        return max(0.0, min(1.0, min(self._parentless.values()) - time.monotonic()))

    def run_once(self, timeout: float = 0.0) -> bool:
        """Process everything pending (waiting up to ``timeout``); True if it did work."""
        work = self._queue.take(timeout)
        expired = sorted(b for b, t in self._parentless.items() if t <= time.monotonic())
        if not work and not expired:
            return False
        started = time.monotonic()
        if work.resync:
            LOG.info("trunk bridges: full synchronisation (%s)", work.resync)
            work.bridges |= set(self.switch.trunk_bridges()) | set(self.records)
            self.records.clear()  # every trunk pulled again, its status told again
        work.bridges |= self._take_pushes(work.pushes)
        if work.recheck:
            work.bridges |= set(self._parentless)
        for port_id, state in work.states.items():
            if state == GONE:
                self._states.pop(port_id, None)
            else:
                self._states[port_id] = state
        failed = set()
        for bridge in sorted(work.bridges | set(expired)):
            try:
                self._reconcile(bridge, expired=bridge in expired)
            except (ControlPlaneUnavailable, ControlPlaneError) as exc:
                LOG.warning("trunk bridge %s: the control plane failed (%s); retrying",
                            bridge, exc)
                failed.add(bridge)
            except Exception as exc:  # noqa: BLE001 - OVSDB, or a bug: keep the others going
                LOG.exception("trunk bridge %s: wiring failed (%s); retrying", bridge, exc)
                self.problems[bridge] = f"wiring failed: {exc}"
                failed.add(bridge)
        for record in list(self.records.values()):
            try:
                self._report(record)
            except (ControlPlaneUnavailable, ControlPlaneError) as exc:
                LOG.warning("trunk %s: reporting its status failed (%s); retrying",
                            record.trunk.id, exc)
                failed.add(record.bridge)
        if failed:
            self._queue.mark(lambda w: w.bridges.update(failed))
            self._backoff.no_answer()
            self._queue.pause(self._backoff.remaining(started))
        else:
            self._backoff.succeeded()
        return True

    def _take_pushes(self, pushes: list[tuple[str, list[SubPort]]]) -> set[str]:
        """Fold subport pushes into our trunks; the bridges to reconcile."""
        changed: set[str] = set()
        by_trunk = {r.trunk.id: r for r in self.records.values()}
        for event_type, subports in pushes:
            for sub in subports:
                record = by_trunk.get(sub.trunk_id)
                if record is None:
                    continue  # not a trunk of ours (pushes go to every host)
                others = tuple(s for s in record.trunk.sub_ports if s.port_id != sub.port_id)
                if event_type == "created":
                    others = tuple(sorted((*others, sub),
                                          key=lambda s: (s.segmentation_id, s.port_id)))
                elif event_type != "deleted":
                    LOG.warning("subport push %s for trunk %s: unknown event, ignored",
                                event_type, sub.trunk_id)
                    continue
                record.trunk = record.trunk._replace(sub_ports=others)
                record.reported = None  # the server set the trunk DOWN for this change
                changed.add(record.bridge)
        return changed

    # -- one bridge ------------------------------------------------------------------------

    def _reconcile(self, bridge: str, expired: bool = False) -> None:
        record = self.records.get(bridge)
        view = self.switch.view(bridge, record.integration_ends() if record else ())
        if view is None:  # os-vif removed the bridge (the VM went)
            self._parentless.pop(bridge, None)
            self.problems.pop(bridge, None)
            if record is not None:
                self.switch.delete_ports(record.integration_ends())
                del self.records[bridge]
                LOG.info("trunk %s: its bridge %s went; its br-int ports removed",
                         record.trunk.id, bridge)
            return
        parent = view.parent()
        if parent is None or parent.iface_id is None:
            self._without_parent(view, record, expired)
            return
        self._parentless.pop(bridge, None)
        if record is None or record.parent_id != parent.iface_id:
            record = self._look_up(view, parent.iface_id)
            if record is None:
                return
        record.parent_mac = parent.external_ids.get("attached-mac", record.parent_mac)
        self._wire(view, record)

    def _without_parent(self, view: BridgeView, record: TrunkRecord | None,
                        expired: bool) -> None:
        bridge = view.name
        if record is not None:  # the VM's port left its bridge: its pairs go
            self.switch.delete_ports([n for n in view.ports if n != bridge and
                                      is_service_port(n)] + sorted(record.integration_ends()))
            del self.records[bridge]
            LOG.info("trunk %s: the VM port left bridge %s; its pairs removed",
                     record.trunk.id, bridge)
            view = self.switch.view(bridge) or view
        if bridge not in self._parentless:
            self._parentless[bridge] = time.monotonic() + self.parent_timeout
            self.problems[bridge] = "no VM port on it yet"
            return
        if not expired:
            return
        del self._parentless[bridge]
        known = sorted({p.iface_id for p in view.ports.values() if p.iface_id})
        trunk = None
        for port_id in known:  # ends left from an earlier wiring name the parent
            trunk = self._ask(self.control.trunk_of, port_id)
            if trunk is not None and trunk_bridge_name(trunk.id) == bridge:
                break
            trunk = None
        subports = ", ".join(s.port_id for s in trunk.sub_ports) if trunk else ""
        LOG.error("trunk bridge %s%s has had no VM port for %.0f s: removing it and its "
                  "patch ports%s", bridge, f" (trunk {trunk.id}, parent {trunk.port_id})"
                  if trunk else "", self.parent_timeout,
                  f" (subports {subports} no longer carried)" if subports else "")
        self.problems.pop(bridge, None)
        self.switch.dispose(view)
        if trunk is not None:
            self._ask(self.control.update_trunk_status, trunk.id, TRUNK_DEGRADED)

    def _look_up(self, view: BridgeView, parent_id: str) -> TrunkRecord | None:
        """The trunk of the VM port ``parent_id``, with what its bridge already holds."""
        trunk = self._ask(self.control.trunk_of, parent_id)
        if trunk is None:
            self._problem(view.name, f"port {parent_id} on trunk bridge {view.name} is the "
                          "parent of no trunk on the server")
            return None
        if trunk_bridge_name(trunk.id) != view.name:
            self._problem(view.name, f"port {parent_id} on trunk bridge {view.name} is the "
                          f"parent of trunk {trunk.id}, whose bridge is "
                          f"{trunk_bridge_name(trunk.id)}")
            return None
        record = TrunkRecord(view.name, parent_id, trunk)
        for port in view.subport_sides().values():
            peer = view.integration.get(port.peer or "")
            if port.iface_id and port.tag is not None and peer is not None:
                record.wired[port.iface_id] = port.tag
                record.macs[port.iface_id] = port.external_ids.get("attached-mac", "")
        self.records[view.name] = record
        self.problems.pop(view.name, None)
        return record

    def _wire(self, view: BridgeView, record: TrunkRecord) -> None:
        trunk = record.trunk
        accepted, refused = check_subports(trunk, record.wired)
        new = [s for s in accepted if record.wired.get(s.port_id) != s.segmentation_id]
        if new:
            # bound before their pairs exist: the agent core then finds them bound here
            LOG.debug("trunk %s: binding subports %s to this host", trunk.id,
                      [s.port_id for s in new])
            reply = self._ask(self.control.update_subport_bindings, new)
            record.reported = None  # the server set the trunk BUILD
            bound = {p.get("id"): p for p in (reply or {}).get(trunk.id, [])
                     if isinstance(p, dict)}
            for sub in new:
                if sub.port_id in bound:
                    record.macs[sub.port_id] = str(bound[sub.port_id].get("mac_address") or "")
                else:
                    refused[sub.port_id] = (
                        f"subport {sub.port_id} of trunk {trunk.id}: the server could not "
                        "bind it to this host (a network this host cannot carry? see the "
                        "server's log)")
        carried = [s for s in accepted if s.port_id not in refused]
        pairs = [PatchPair.parent(record.parent_id, record.parent_mac)] + [
            PatchPair.subport(s.port_id, s.segmentation_id, record.macs.get(s.port_id, ""))
            for s in carried]
        changes = plan(view, record.parent_id, pairs, trunk.id)
        if changes:
            self.switch.apply(view.name, changes)
            LOG.info("trunk %s on %s: %d pair(s) made, %d re-tagged, %d port(s) removed",
                     trunk.id, view.name, len(changes.create), len(changes.retag),
                     len(changes.delete))
        for port_id in set(refused) - set(record.refused):
            LOG.error("%s: not carried", refused[port_id])
        record.wired = {s.port_id: s.segmentation_id for s in carried}
        if refused != record.refused:
            record.reported = None
        record.refused = refused

    def _report(self, record: TrunkRecord) -> None:
        status, reasons = trunk_status(self._states, record.parent_id, record.wired,
                                       record.refused)
        record.reasons = reasons
        if status is None or status == record.reported:
            return
        self._ask(self.control.update_trunk_status, record.trunk.id, status)
        record.reported = status
        if status == TRUNK_DEGRADED:
            LOG.warning("trunk %s is DEGRADED: %s", record.trunk.id, "; ".join(reasons))
        else:
            LOG.info("trunk %s is %s", record.trunk.id, status)

    def _problem(self, bridge: str, problem: str) -> None:
        if self.problems.get(bridge) != problem:
            LOG.error("%s: not wired", problem)
        self.problems[bridge] = problem

    def _ask(self, method: Any, *args: Any) -> Any:
        return self._backoff.ask(method, *args)

    # -- status ----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        records = list(self.records.values())
        return {
            "trunks": {r.trunk.id: {"bridge": r.bridge, "parent": r.parent_id,
                                    "subports": dict(sorted(r.wired.items())),
                                    "refused": dict(r.refused), "status": r.reported,
                                    "reasons": list(r.reasons)} for r in records},
            "problems": dict(self.problems),
        }

"""The agent's heart: one worker thread turns events into wired (or parked) ports.

Inputs arrive from other threads (OVSDB row events, RPC notifications, heartbeat replies,
timers) and only mark work as dirty; the worker takes everything dirty in one batch, asks the
control plane what it needs, updates the security-group cache, recomputes and commits the flows
that changed, and reports ports up or down. Work that fails for lack of a control plane stays
dirty and is retried with backoff, so nothing is lost while the server is away, and the
dataplane keeps forwarding with what it has.

Work that fails because br-int cannot be programmed (ovs-vswitchd down, the bridge refusing
OpenFlow 1.5) is held the same way, and the agent says so: ``switch_problem`` names the cause
(status socket, log, and the service withholds the heartbeat, as neutron's agent does while
OVS is dead, so the server stops binding ports here), and no port is reported up until the
switch takes its flows again.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from dpagent.agent import heap
from dpagent.agent.dataplane import Dataplane
from dpagent.agent.local_vlan import DEAD_VLAN, LocalVlans
from dpagent.agent.ovsdb import Vif
from dpagent.agent.reporting import ControlPlaneUnavailable, PortReports
from dpagent.agent.retry import Backoff
from dpagent.agent.sg_cache import Changed, SecurityGroupCache
from dpagent.agent.work_queue import WorkQueue
from dpagent.bridge.takeover import controller_hand_over
from dpagent.bridge.transport import SwitchError
from dpagent.rpc.errors import ControlPlaneError
from flows.model import Network, Uplink

LOG = logging.getLogger(__name__)


class ControlPlane(Protocol):
    def get_devices_details(self, devices: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
        ...

    def security_group_info(self, devices: list[str]) -> dict[str, Any]:
        ...

    def update_device_list(self, up: list[str], down: list[str], *,
                           refresh_tunnels: bool = False) -> None:
        """``refresh_tunnels``: the server resends l2population's entries for ``up``."""


Segment = tuple[str, str | None, int | str | None]
"""(network_type, physical_network, segmentation_id) as the server gives them."""


class Uplinks(Protocol):
    """Where networks leave br-int: physical bridges (:mod:`dpagent.physnet`) and br-tun
    (:mod:`dpagent.overlay`), see :mod:`dpagent.agent.uplinks`."""

    def uplink(self, network_id: str, local_vlan: int, segment: Segment) -> Uplink | None:
        ...

    def set_networks(self, networks: Mapping[str, tuple[Segment, int]]) -> None:
        """network id -> (segment, local VLAN) of the networks with ports on this host; the
        uplinks carry them when this returns."""

    def take_over_deferred(self) -> None:
        """br-int carries dpagent's flows now: take over the bridges that kept another
        agent's flows until then."""

    def refresh_tunnels(self) -> bool:
        """Whether the next port report should ask for l2population's entries again."""


class NoUplinks:
    """No physical networks: every network stays on this host."""

    def uplink(self, network_id: str, local_vlan: int, segment: Segment) -> Uplink | None:
        return None

    def set_networks(self, networks: Mapping[str, tuple[Segment, int]]) -> None:
        return None

    def take_over_deferred(self) -> None:
        return None

    def refresh_tunnels(self) -> bool:
        return False


class LocalSwitch(Protocol):
    def vifs(self, bridge: str) -> list[Vif]:
        ...

    def set_port_vlans(self, tags: Mapping[str, tuple[int, dict[str, str]]]) -> None:
        ...

    def controllers(self, bridge: str) -> list[str]:
        ...

    def drop_controllers(self, bridge: str) -> list[str]:
        ...


@dataclass
class Settings:
    integration_bridge: str = "br-int"
    device_retries: int = 3
    retry_backoff: float = 1.0
    max_backoff: float = 30.0
    switch_max_backoff: float = 5.0
    """Longest wait between attempts while br-int cannot be programmed: the switch coming back
    is noticed by trying it, and nothing is asked of the server meanwhile."""
    canary_interval: float = 0.5
    """How often to check that the switch still holds our flows (ovs-vswitchd restarts)."""
    audit_interval: float = 300.0
    """How often to compare the switch with the desired flows and repair drift (0: never)."""
    rescan_interval: float = 300.0
    """How often to compare OVSDB's VIFs with the known ports, in case an event was missed
    (a safety net only: VIFs arrive by OVSDB events). 0: never."""
    expect_vif_for: float = 900.0
    """How long a port bound to this host keeps its remote groups' member flows installed
    ahead of its VIF (nova's vif_plugging_timeout is 300 s; neutron sends nothing when a
    port is unbound again)."""


PARKED = frozenset({"unbound", "admin-down", "port-down", "deleted"})
"""States of a port the agent keeps on the dead VLAN on purpose: not bound to this host (or
its binding here is inactive), the agent cordoned, the port administratively down, the port
deleted on the server while its VIF is still plugged."""


@dataclass
class PortRecord:
    """What the agent knows of one VIF."""

    vif: Vif
    state: str = "pending"  # pending, wired, failed, or one of PARKED
    reason: str = ""
    attempts: int = 0
    network_id: str | None = None


@dataclass
class _Work:
    ports: set[str] = field(default_factory=set)
    removed: dict[str, PortRecord | None] = field(default_factory=dict)
    """port -> the record its VIF had when it was unplugged (None: a port the agent did not
    know, e.g. an interface's first row, before OVS gave it an ofport): a record that a plug
    replaced since is not forgotten with it"""
    parked: dict[str, tuple[str, str]] = field(default_factory=dict)
    """port -> (state, reason): cut off at once, no control plane needed (deleted, binding
    deactivated)"""
    rule_groups: set[str] = field(default_factory=set)
    member_groups: set[str] = field(default_factory=set)
    expected: dict[str, bool] = field(default_factory=dict)
    """port -> bound here (True: prepare its remote groups ahead of the VIF) or no more"""
    resync: str | None = None

    retry_reports: bool = False

    def __bool__(self) -> bool:
        return bool(self.ports or self.removed or self.parked or self.rule_groups
                    or self.member_groups or self.expected or self.resync
                    or self.retry_reports)


class Agent:
    """Wires the VIFs of one integration bridge according to the control plane."""

    def __init__(self, settings: Settings, switch: LocalSwitch, control_plane: ControlPlane,
                 dataplane: Dataplane, vlans: LocalVlans | None = None,
                 on_first_sync: Callable[[], None] | None = None,
                 uplinks: Uplinks | None = None) -> None:
        self.settings = settings
        self.switch = switch
        self.control_plane = control_plane
        self.dataplane = dataplane
        self.vlans = vlans or LocalVlans()
        self.cache = SecurityGroupCache()
        self._unapplied = Changed()
        """Changes folded into the cache that the switch has not got yet (see _apply)."""
        self.uplinks: Uplinks = uplinks or NoUplinks()
        self.segments: dict[str, Segment] = {}
        """network id -> its segment"""
        self.ports: dict[str, PortRecord] = {}
        self.admin_state_up = True
        self.wired_before: set[str] = set()
        """VIF (port) names a previous run had wired (their OVSDB ports carry its local-VLAN
        record): under a cordon the first sync keeps them working, as the run before did;
        only VIFs new since then are held"""
        self.synced_once = False
        self.flush_on_first_sync = False
        """drop_flows_on_start: replace every dpagent flow at the first sync, even right ones."""
        self._reports = PortReports()
        self._gone_unreported: set[str] = set()
        self._fetched: set[str] = set()
        """Ports whose details were fetched since the last settle: neutron moved each of them
        to BUILD when it answered, so each one that ends up wired is reported up again."""
        self.last_sync: float | None = None
        self.switch_problem: str | None = None
        """Why br-int cannot be programmed now; None while it can."""
        self.switch_problem_since: float | None = None
        self._on_first_sync = on_first_sync
        self._queue: WorkQueue[_Work] = WorkQueue(_Work, _Work(resync="start"))
        self._backoff = Backoff(settings.retry_backoff, settings.max_backoff)
        """The pace of retries after a batch that failed at the control plane."""
        self._switch_backoff = Backoff(settings.retry_backoff, settings.switch_max_backoff)
        self.control_plane_problem: str | None = None
        """Why the last batch failed at the control plane; None once one succeeds."""
        self._thread: threading.Thread | None = None
        self.on_port_states: Callable[[dict[str, str]], None] | None = None
        """Told, after each batch, the ports whose state changed (``gone``: no such VIF any
        more): how the trunk side learns that a trunk's ports are wired."""
        self.on_audit: Callable[[int], None] | None = None
        """Told after each audit that completed how many flow-mods it took to make the
        switch match again (0: no drift): the daemon's metrics."""
        self._published: dict[str, str] = {}
        self._expected_since: dict[str, float] = {}
        """ports bound here, VIF not plugged yet -> when they were prepared"""
        self.prepared: frozenset[str] = frozenset()
        """those of them whose remote groups are on the switch (as of the last update)"""

    # -- inputs (any thread) --------------------------------------------------------------------

    def _mark(self, change: Callable[[_Work], None]) -> None:
        self._queue.mark(change)

    def vif_event(self, event: str, vif: Vif) -> None:
        """An OVSDB Interface row with an iface-id was created, updated or deleted."""
        if event == "delete" or vif.ofport <= 0:
            def unplug(work: _Work) -> None:
                record = self.ports.get(vif.iface_id)
                if record is not None and record.vif.name != vif.name:
                    return  # another interface with that iface-id went; ours stays
                work.removed[vif.iface_id] = record
                work.ports.discard(vif.iface_id)
            self._mark(unplug)
            return

        def plug(work: _Work) -> None:
            record = self.ports.get(vif.iface_id)
            if record is None or record.vif != vif:
                self.ports[vif.iface_id] = PortRecord(vif)
                work.ports.add(vif.iface_id)
                work.removed.pop(vif.iface_id, None)
        self._mark(plug)

    def resync(self, reason: str) -> None:
        self._mark(lambda w: setattr(w, "resync", reason))

    def security_groups_rule_updated(self, sg_ids: Iterable[str]) -> None:
        ids = set(sg_ids)
        self._mark(lambda w: w.rule_groups.update(ids))

    def security_groups_member_updated(self, sg_ids: Iterable[str]) -> None:
        ids = set(sg_ids)
        self._mark(lambda w: w.member_groups.update(ids))

    def port_updated(self, port_id: str) -> None:
        """The server changed a port (admin state, groups, address pairs, its binding became
        active here): fetch it again."""
        def refetch(work: _Work) -> None:
            if port_id in self.ports:
                work.ports.add(port_id)
                work.parked.pop(port_id, None)
        self._mark(refetch)

    def port_bound(self, port_id: str, here: bool) -> None:
        """The server bound the port to this host (``here``) or to another one. Nova binds a
        port before it plugs the VIF (seconds: the VM boots in between); a port bound here
        gets its remote groups' member flows now, so the VIF finds all but its own flows in
        place -- the first port that brings a 5,000-member group no longer waits for 5,000
        flows. A port plugged already is left to :meth:`port_updated`."""
        def note(work: _Work) -> None:
            if port_id not in self.ports:
                work.expected[port_id] = here
        self._mark(note)

    def port_deleted(self, port_id: str) -> None:
        """The port was deleted on the server: cut its VIF off now, plugged or not (the VM may
        live on a while); nothing is reported, the server has no such port any more."""
        self._cut_off(port_id, "deleted", "deleted on the server")
        self._mark(lambda w: w.expected.__setitem__(port_id, False))

    def binding_deactivated(self, port_id: str) -> None:
        """Live migration: this host's binding of the port is no longer the active one (the
        VM runs elsewhere now): cut the VIF off until a binding here is activated again."""
        self._cut_off(port_id, "unbound", "its binding to this host was deactivated")

    def _cut_off(self, port_id: str, state: str, reason: str) -> None:
        def park(work: _Work) -> None:
            if port_id in self.ports:
                work.parked[port_id] = (state, reason)
                work.ports.discard(port_id)
        self._mark(park)

    def set_admin_state(self, up: bool) -> None:
        """Cordon (False) or uncordon (True) the agent; see docs/agent.md."""
        def change(work: _Work) -> None:
            if up != self.admin_state_up:
                LOG.warning("administrative state is now %s", "UP" if up else "DOWN")
            self.admin_state_up = up
            if up:
                work.ports.update(p for p, r in self.ports.items() if r.state == "admin-down")
        self._mark(change)

    # -- worker -----------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dpagent-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._queue.stop()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        next_canary = next_audit = next_rescan = time.monotonic()
        next_audit += self.settings.audit_interval
        next_rescan += self.settings.rescan_interval
        while not self._queue.stopping.is_set():
            self.run_once(timeout=self.settings.canary_interval)
            now = time.monotonic()
            if self.synced_once and self.settings.rescan_interval and now >= next_rescan:
                next_rescan = now + self.settings.rescan_interval
                self.rescan()
            if self.synced_once and now >= next_canary:
                next_canary = now + self.settings.canary_interval
                self._guard_switch(audit=bool(self.settings.audit_interval) and now >= next_audit)
                if now >= next_audit:
                    next_audit = now + self.settings.audit_interval

    def rescan(self) -> int:
        """Mark VIFs whose OVSDB state differs from what the agent knows; the number found."""
        try:
            vifs = {v.iface_id: v for v in self.switch.vifs(self.settings.integration_bridge)
                    if v.ofport > 0}
        except Exception:  # noqa: BLE001 - OVSDB away: the reconnect will resync
            LOG.exception("rescanning OVSDB failed")
            return 0
        with self._queue.lock:
            missed = {p for p, v in vifs.items()
                      if p not in self.ports or self.ports[p].vif != v}
            gone = set(self.ports) - vifs.keys()
        for port_id in sorted(missed):
            LOG.warning("rescan found VIF %s that no event announced", port_id)
            self.vif_event("update", vifs[port_id])
        for port_id in sorted(gone):
            LOG.warning("rescan found VIF %s gone without an event", port_id)
            self.vif_event("delete", self.ports[port_id].vif)
        return len(missed) + len(gone)

    def _guard_switch(self, audit: bool) -> None:
        """Reprogram from the cached desired state when the switch lost its flows; audit."""
        try:
            self._check_switch(audit)
        except SwitchError as exc:
            self._switch_failed(exc)
        except Exception:  # noqa: BLE001 - keep the worker alive; next round retries
            LOG.exception("checking the switch failed")

    def _check_switch(self, audit: bool = False) -> None:
        """Probe br-int (the canary flow), repair it after a reset; raises SwitchError."""
        if self.dataplane.programmer.switch_was_reset():
            LOG.warning("the switch lost its flows (ovs-vswitchd restart or bridge "
                        "re-created): reprogramming from the cached state")
            self.dataplane.repair("switch reset")
        elif audit:
            report = self.dataplane.repair("audit")
            if report.flow_mods:
                LOG.warning("audit repaired %d flows", report.flow_mods)
            if self.on_audit is not None:
                self.on_audit(report.flow_mods)
            heap.settle()  # the ports and members wired since the last one, out of gc's way
        self._switch_ok()

    def _switch_failed(self, exc: SwitchError) -> None:
        problem = f"{self.settings.integration_bridge} cannot be programmed: {exc}"
        if problem != self.switch_problem:  # said once per cause, not at every retry
            LOG.error("%s; no port is reported up until it can", problem)
        if self.switch_problem is None:
            self.switch_problem_since = time.time()
        self.switch_problem = problem

    def _switch_ok(self) -> None:
        if self.switch_problem is not None:
            LOG.warning("%s can be programmed again (it could not for %.1f s)",
                        self.settings.integration_bridge,
                        time.time() - (self.switch_problem_since or time.time()))
            self.switch_problem = self.switch_problem_since = None

    def run_once(self, timeout: float = 0.0) -> bool:
        """Process everything dirty (waiting up to ``timeout`` for work); True if it did work."""
        work = self._queue.take(timeout)
        if not work:
            return False
        started = time.monotonic()
        try:
            if self.switch_problem is not None:  # back? then the held work goes through
                if self.synced_once:
                    self._check_switch()
                else:  # nothing to repair from yet: only ask
                    self.dataplane.programmer.probe()
            self._process(work)
            self._publish_states()
            self._switch_ok()
            self._backoff.succeeded()
            self._switch_backoff.succeeded()
            self.control_plane_problem = None
        except SwitchError as exc:
            self._switch_failed(exc)
            self._switch_backoff.grow()
            self._requeue(work)
            self._publish_states()
            self._queue.pause(self._switch_backoff.remaining(started))
        except ControlPlaneUnavailable as exc:
            wait = self._backoff.no_answer()
            LOG.warning("control plane unavailable (%s); retrying in %.1f s", exc, wait)
            self.control_plane_problem = f"no answer: {exc}"
            self._requeue(work)
            self._publish_states()
            self._queue.pause(self._backoff.remaining(started))
        except ControlPlaneError as exc:  # it answered, with an error: one line, no trace
            wait = self._backoff.error()
            LOG.warning("the control plane failed (%s); retrying in %.1f s", exc, wait)
            self.control_plane_problem = f"it failed: {exc}"
            self._requeue(work)
            self._publish_states()
            self._queue.pause(self._backoff.remaining(started))
        except Exception:  # noqa: BLE001 - the worker must survive anything
            LOG.exception("processing failed; retrying")
            self._backoff.error()
            self._requeue(work)
            self._publish_states()
            self._queue.pause(self._backoff.remaining(started))
        return True

    def _publish_states(self) -> None:
        if self.on_port_states is None:
            return
        now = {p: r.state for p, r in self.ports.copy().items()}  # plugs add from other threads
        changed = {p: s for p, s in now.items() if self._published.get(p) != s}
        changed.update((p, "gone") for p in self._published.keys() - now.keys())
        if not changed:
            return
        self._published = now
        try:
            self.on_port_states(changed)
        except Exception:  # noqa: BLE001 - a listener never stops the worker
            LOG.exception("port state listener failed")

    def _requeue(self, work: _Work) -> None:
        def merge(current: _Work) -> None:
            current.ports |= work.ports - current.removed.keys()
            for port_id, record in work.removed.items():
                current.removed.setdefault(port_id, record)
            for port_id, why in work.parked.items():
                if port_id not in current.ports:
                    current.parked.setdefault(port_id, why)
            current.rule_groups |= work.rule_groups
            current.member_groups |= work.member_groups
            for port_id, here in work.expected.items():
                current.expected.setdefault(port_id, here)
            current.resync = current.resync or work.resync
            current.retry_reports = current.retry_reports or work.retry_reports
        self._mark(merge)

    def _process(self, work: _Work) -> None:
        if work.resync:
            self._full_sync(work.resync)
            return
        if work.removed:
            # No control plane needed to unwire: do it first, so it cannot be held up.
            gone: list[str] = []
            removed = self._unwire(work.removed, gone)
            if removed or self._unapplied:
                self._apply(removed)
            self._report(up=[], down=gone)  # only once their flows are gone
        self._park({p: why for p, why in work.parked.items() if p in self.ports})
        # each piece goes into the cache and into _unapplied at once, so a later call of
        # this batch that fails loses none of them (the piece first: parking a port on the
        # way applies and replaces _unapplied)
        if work.ports:
            self._pending(self._wire(work.ports))
        if work.rule_groups:
            self._pending(self._refresh(self.cache.ports_using(work.rule_groups)))
        if work.member_groups:
            self._pending(self._refresh_members(work.member_groups))
        if work.expected or self._expected_since:
            self._pending(self._prepare(work.expected))
        if self._unapplied:
            self._apply(Changed())
        if work.retry_reports and self._reports:
            # kept news last, so a lost reply to them cannot hold the flows back
            if work == _Work(retry_reports=True):
                self._reports.send(self._update_device_list, [], [])  # raises: back off
            else:
                self._report(up=[], down=[])

    def _pending(self, changed: Changed) -> None:
        """Note ``changed`` for the switch. A method, not ``self._unapplied.merge(step())``:
        that binds the set before ``step`` runs, and a port parked in it replaces the set."""
        self._unapplied.merge(changed)

    def _apply(self, changed: Changed) -> None:
        """Compile and install ``changed`` and whatever an earlier attempt folded into the
        cache but never got onto the switch, then settle every port that went in.

        The cache is changed before the switch is: a batch that fails after that (a later
        server call, the switch) is retried, but its second fetch finds the cache already
        up to date and reports no change -- without this the first change would be lost
        (seen under churn with failing replies: a remote-group member never installed)."""
        self._unapplied.merge(changed)
        report = self.dataplane.update(self.cache.model(), self._unapplied)
        applied, self._unapplied = self._unapplied, Changed()
        self.prepared = frozenset(self._expected_since)
        self._settle(applied.ports, report.failed)

    # -- steps -------------------------------------------------------------------------------------

    def _full_sync(self, reason: str) -> None:
        """Ask for everything again and make the switch match (start, revived, reconnect)."""
        LOG.info("full synchronisation: %s", reason)
        vifs = {v.iface_id: v for v in self.switch.vifs(self.settings.integration_bridge)
                if v.ofport > 0}
        for port_id in set(self.ports) - vifs.keys():  # unplugged while we were not looking
            if self._forget(port_id):
                self._gone_unreported.add(port_id)
        for port_id, vif in vifs.items():
            record = self.ports.get(port_id)
            if record is None or record.vif != vif:
                self.ports[port_id] = PortRecord(vif)
        self.cache = SecurityGroupCache()
        self._unapplied = Changed()  # the full sync below installs everything
        self._fetched.clear()
        self._wire(set(vifs))
        self._prepare_again(vifs.keys())
        self.vlans.forget_unused()
        # the first sync takes the bridge over: whatever another agent left there goes, its
        # flows in the bundle that brings ours, its controller just before that bundle's
        # commit (removing it flushes the bridge, so the bundle brings every flow)
        first = not self.synced_once
        bridge = self.settings.integration_bridge
        hand_over = controller_hand_over(self.switch, bridge) if first else None
        report = self.dataplane.full_sync(
            self.cache.model(), reason,
            flush=(self.flush_on_first_sync and first) or hand_over is not None,
            sweep=first, before_commit=hand_over)
        self.prepared = frozenset(self._expected_since)
        if first:  # at once: the uplinks' two halves now disagree until this is done
            self.uplinks.take_over_deferred()
        self._settle(set(vifs), report.failed)
        # down only once their flows are gone; kept across a sync that failed half-way
        gone, self._gone_unreported = sorted(self._gone_unreported - vifs.keys()), set()
        self._report(up=[], down=gone)
        if not self.synced_once:
            self.synced_once = True
            self.wired_before.clear()  # what is wired now is known as such
            if self._on_first_sync is not None:
                self._on_first_sync()
        self.last_sync = time.time()  # last: the status socket's readers take it as "synced"
        heap.settle()  # what the full compile and its bundle built and dropped

    def _wire(self, port_ids: set[str]) -> Changed:
        ids = sorted(p for p in port_ids if p in self.ports)
        if not self.admin_state_up:
            # Cordoned: wired ports keep working and keep getting updates; new ones wait.
            held = [p for p in ids if self.ports[p].state != "wired"
                    and self.ports[p].vif.name not in self.wired_before]
            self._park({p: ("admin-down", "the agent is administratively down") for p in held})
            self._report(up=[], down=held)
            ids = [p for p in ids if p not in held]
        if not ids:
            return Changed()
        # Before the call: the server moves them to BUILD even when its reply is lost (not
        # a cache-backed control plane, which asks the server nothing for details).
        if getattr(self.control_plane, "fetch_moves_to_build", True):
            self._fetched |= set(ids)
        details, failed = self._backoff.ask(self.control_plane.get_devices_details, ids)
        bound: dict[str, dict[str, Any]] = {}
        down: list[str] = []
        tags: dict[str, tuple[int, dict[str, str]]] = {}  # written at once, below
        parks: dict[str, tuple[str, str]] = {}  # likewise
        for entry in details:
            device = entry.get("device") if isinstance(entry, dict) else None
            if not isinstance(device, str) or device not in self.ports:
                continue
            port_id = device
            if "network_id" not in entry or entry.get("no_active_binding"):
                parks[port_id] = ("unbound", "not bound to this host")
                continue
            if entry.get("admin_state_up") is False:
                parks[port_id] = ("port-down", "the port is administratively down")
                down.append(port_id)  # neutron moved it to BUILD; DOWN is the truth
                continue
            record = self.ports[port_id]
            vlan = self.vlans.acquire(str(entry["network_id"]), port_id)
            record.network_id = str(entry["network_id"])
            segment: Segment = (str(entry.get("network_type") or ""),
                                entry.get("physical_network"), entry.get("segmentation_id"))
            if self.segments.get(record.network_id) != segment or vlan not in self.cache.networks:
                self.segments[record.network_id] = segment
                self.cache.networks[vlan] = Network(record.network_id, vlan,
                                                    self.uplinks.uplink(record.network_id,
                                                                        vlan, segment))
                self._announce_networks()
            tags[record.vif.name] = (vlan, {
                "net_uuid": record.network_id, "tag": str(vlan),
                "network_type": str(entry.get("network_type") or ""),
                "physical_network": str(entry.get("physical_network") or ""),
                "segmentation_id": str(entry.get("segmentation_id") or "")})
            bound[port_id] = {"ofport": record.vif.ofport, "local_vlan": vlan}
        self._park(parks)
        self.switch.set_port_vlans(tags)
        for port_id in failed:
            if port_id in self.ports:
                self.ports[port_id].reason = "the server failed to give its details"
        self._report(up=[], down=down)
        if not bound:
            return Changed()
        info = self._backoff.ask(self.control_plane.security_group_info, sorted(bound))
        changed = self.cache.ingest(info, bound)
        for port_id in bound:  # plugged: its own flows count its remote groups from now on
            self._expected_since.pop(port_id, None)
            if self.cache.forget_expected(port_id):
                changed.expected.add(port_id)
        missing = set(bound) - set(info.get("devices") or {})
        for port_id in missing:
            self.ports[port_id].reason = "no security group data from the server"
        changed.ports |= set(bound)
        return changed

    def _refresh(self, by_group: dict[str, str]) -> Changed:
        """Fetch groups' rules or members again, through one port per group."""
        ports = sorted(set(by_group.values()))
        if not ports:
            return Changed()
        local = {p: {"ofport": self.ports[p].vif.ofport,
                     "local_vlan": self.vlans.vlan_of(self.ports[p].network_id or "")}
                 for p in ports if p in self.ports}
        info = self._backoff.ask(self.control_plane.security_group_info, ports)
        return self.cache.ingest(info, local)

    def _refresh_members(self, group_ids: set[str]) -> Changed:
        """Fetch the members of remote groups again: only them where the control plane can
        say (the resource cache: no devices, no rules, no parse of what did not change), else
        through one port per group with the whole security-group info."""
        referring = self.cache.ports_referring_to(group_ids)
        member_info = getattr(self.control_plane, "member_info", None)
        if member_info is not None and referring:
            info = self._backoff.ask(member_info, sorted(referring))
            if info is not None:
                return self.cache.ingest(info, {})
        return self._refresh(referring)

    def _prepare(self, bound: Mapping[str, bool]) -> Changed:
        """Ports bound here ahead of their VIFs: fetch their groups (the server answers for a
        port that is not plugged; a cache-backed control plane is asked to follow it first),
        so their remote groups' member flows go in now. Those bound elsewhere, deleted, or
        not plugged in time are let go."""
        changed = Changed()
        now = time.monotonic()
        late = {p for p, since in self._expected_since.items()
                if now - since > self.settings.expect_vif_for}
        # every port bound anywhere in the cloud comes by (neutron's port_update is a
        # fanout): only those expected here cost anything
        for port_id in sorted(late | {p for p, here in bound.items()
                                      if not here and p in self._expected_since}):
            self._expected_since.pop(port_id, None)
            LOG.info("port %s: no longer expected here", port_id)
            if self.cache.forget_expected(port_id):
                changed.expected.add(port_id)
            self._unfollow(port_id)
        if changed.expected:
            self.cache.forget_unused()
        wanted = sorted(p for p, here in bound.items() if here and p not in self.ports)
        if not wanted or not self.admin_state_up:
            return changed
        expect = getattr(self.control_plane, "expect", None)
        if expect is not None:
            self._backoff.ask(expect, wanted)
        info = self._backoff.ask(self.control_plane.security_group_info, wanted)
        self._expected_since.update(dict.fromkeys(wanted, now))
        changed.merge(self.cache.ingest(info, {}, expected=wanted))
        LOG.debug("prepared ahead of their VIFs: %s", wanted)
        return changed

    def _prepare_again(self, plugged: Iterable[str]) -> None:
        """A full sync started a new cache: the ports still expected are fetched again (and
        keep the time they were first prepared, so they still expire)."""
        since = {p: t for p, t in self._expected_since.items() if p not in set(plugged)}
        self._expected_since.clear()
        if since:
            self._prepare(dict.fromkeys(since, True))
            for port_id in list(self._expected_since):
                self._expected_since[port_id] = since[port_id]

    def _unfollow(self, port_id: str) -> None:
        if port_id not in self.ports:
            forget = getattr(self.control_plane, "forget", None)
            if forget is not None:
                forget([port_id])

    def _unwire(self, removed: Mapping[str, PortRecord | None], gone: list[str]) -> Changed:
        """Forget removed VIFs; ``gone`` collects those to report down after the update. A
        port whose record is no longer the one unplugged was plugged again meanwhile (its
        plug is the next batch): it stays; one the agent never knew has nothing to forget."""
        changed = Changed()
        for port_id, record in sorted(removed.items()):
            if record is None or self.ports.get(port_id) is not record:
                continue
            if self._forget(port_id):
                changed.ports.add(port_id)
                gone.append(port_id)
        self.cache.forget_unused()
        return changed

    def _forget(self, port_id: str) -> bool:
        """True if the server should hear that the port went down."""
        record = self.ports.pop(port_id, None)
        forget = getattr(self.control_plane, "forget", None)
        if forget is not None:  # a cache-backed control plane drops what only it needed
            forget([port_id])
        known = self.cache.remove_port(port_id)
        self._release_vlan(port_id)
        if record is not None and record.state == "deleted":
            return known  # the server has no such port any more
        return known or record is not None

    def _release_vlan(self, port_id: str) -> None:
        """The port holds its network's VLAN no more; the network goes with its last port."""
        freed = self.vlans.release(port_id)
        if freed is not None:
            for vlan in [v for v, n in self.cache.networks.items() if n.network_id == freed]:
                del self.cache.networks[vlan]
            self.segments.pop(freed, None)
            self._announce_networks()

    def _announce_networks(self) -> None:
        networks = {}
        for network_id, segment in self.segments.items():
            vlan = self.vlans.vlan_of(network_id)
            if vlan is not None:
                networks[network_id] = (segment, vlan)
        self.uplinks.set_networks(networks)

    def _park(self, parks: Mapping[str, tuple[str, str]]) -> None:
        """Cut VIFs off (port -> (state, reason)): dead VLAN first (nothing forwards them),
        then their flows go -- all of them in one OVSDB transaction and one bundle."""
        if not parks:
            return
        self.switch.set_port_vlans({self.ports[p].vif.name: (DEAD_VLAN, {}) for p in parks})
        had_flows = False
        for port_id, (state, reason) in sorted(parks.items()):
            record = self.ports[port_id]
            record.state, record.reason = state, reason
            had_flows = self.cache.remove_port(port_id) or had_flows
            self._release_vlan(port_id)
            LOG.info("port %s parked on the dead VLAN: %s", port_id, reason)
        if had_flows or self._unapplied:
            self._apply(Changed(ports=set(parks)))

    def _settle(self, port_ids: set[str], failed: dict[str, str]) -> None:
        """Report wired ports up -- newly wired ones and every one whose details were fetched
        again (which put it in BUILD) -- and retry failed ones a bounded number of times."""
        up, down, retry = [], [], set()
        fetched = self._fetched & port_ids
        self._fetched -= port_ids
        for port_id in sorted(port_ids):
            record = self.ports.get(port_id)
            if record is None or record.state in PARKED and \
                    port_id not in self.cache.known_ports():
                continue
            if port_id in failed or port_id not in self.cache.known_ports():
                record.attempts += 1
                record.reason = failed.get(port_id, record.reason or "no data")
                if record.attempts < self.settings.device_retries:
                    record.state = "pending"
                    retry.add(port_id)
                else:
                    if record.state != "failed":
                        down.append(port_id)
                    record.state = "failed"
                    LOG.error("port %s failed: %s", port_id, record.reason)
                continue
            if record.state != "wired" or port_id in fetched:
                up.append(port_id)
            record.state, record.reason, record.attempts = "wired", "", 0
        self._report(up=up, down=down)
        if retry:
            self._mark(lambda w: w.ports.update(retry))

    def _report(self, up: list[str], down: list[str]) -> None:
        """Tell the server; if that fails, keep the news and retry it as work of its own.

        Never raises: the flows are already right, and redoing the work that led here (a
        details fetch, which puts ports in BUILD again) for a lost report would only make
        more calls that can fail."""
        try:
            self._reports.send(self._update_device_list, up, down)
            if up or down:
                LOG.debug("reported ports up %s down %s", up, down)
        except Exception as exc:  # noqa: BLE001 - away, or it failed: keep the news
            LOG.warning("reporting ports up %s down %s failed (%s); will tell again",
                        up, down, exc)
            self._mark(lambda w: setattr(w, "retry_reports", True))

    def _update_device_list(self, up: list[str], down: list[str]) -> None:
        if up and self.uplinks.refresh_tunnels():
            self._backoff.ask(functools.partial(self.control_plane.update_device_list,
                                                refresh_tunnels=True), up, down)
        else:
            self._backoff.ask(self.control_plane.update_device_list, up, down)

    # -- status ------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """For the status socket and the heartbeat, from their threads: read from a copy of
        the ports (one C-level copy under the GIL), which the worker changes as it goes."""
        ports = self.ports.copy()
        states: dict[str, int] = {}
        for record in ports.values():
            states[record.state] = states.get(record.state, 0) + 1
        return {
            "admin_state_up": self.admin_state_up,
            "switch": {"healthy": self.switch_problem is None, "problem": self.switch_problem,
                       "since": self.switch_problem_since},
            "ports": states,
            "failed": {p: r.reason for p, r in ports.items() if r.state == "failed"},
            "flows_installed": self.dataplane.programmer.installed_count,
            "last_sync": self.last_sync,
            "control_plane_problem": self.control_plane_problem,
            "networks": self.vlans.networks(),
            "expected": len(self.prepared),
        }

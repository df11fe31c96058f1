"""The SR-IOV side of the agent: ports with vnic_type ``direct`` and the VFs behind them.

neutron binds a ``direct`` port to a host's VF (``binding:profile.pci_slot``); nova hands the VF
to the VM. What is left for the agent is the VF's network settings -- its port VLAN, or, for the
parent of a trunk (a VLAN-aware VM), the set of subport VLANs the VF must carry tagged -- and
MAC anti-spoofing and link state. This module decides what each port wants of its VF
(:func:`plan_for`, pure) and keeps the VFs converged on it (:class:`SriovPorts`, a worker
thread like the OVS side's :class:`~dpagent.agent.agent.Agent`):

* which ports: ``get_ports_by_vnic_type_and_host('direct')`` at start, after ``revived`` and on
  a resync; a ``port_update`` for a direct port bound here, ``port_delete``;
* what they want: device details (VLAN segment, admin state, port security, PCI slot) and the
  trunk whose parent they are (``pull``); subports added or removed arrive as
  ``neutron-vo-SubPort`` pushes and change only the difference. A VF passes the VM's tagged
  frames through as they are -- it cannot translate VLANs -- so it carries a subport only if
  the VLAN the VM tags it with is its network's VLAN on the VF's physnet (the subport's own
  device details say which, once it is bound here); any other subport is refused, alone;
* the VFs: a :class:`VfProgrammer` (the ``sriov`` library with its NIC drivers) reads back
  what a VF carries and writes only what differs, so a restart that finds every VLAN in place
  writes nothing and no VLAN that should stay ever flaps;
* reports: ports up or down (``update_device_list``; subports too: their details fetch moves
  them to BUILD), subport bindings and the trunk's status (``ACTIVE``; ``DEGRADED`` when the
  VF refused the trunk, e.g. a NIC without trunk support, or some subport cannot be carried).

A port whose VF cannot be configured -- VLAN outside 1-4094, PCI slot of no managed VF, a trunk
on a NIC without trunks, a sysfs write the driver refused -- is reported down (failed) with the
error naming port, PF and VF; the VF is left as the programmer left it (it validates before it
writes) and other ports go on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from dpagent.agent.reporting import ControlPlaneUnavailable, PortReports
from dpagent.agent.retry import Backoff
from dpagent.agent.sriov_plan import VfPlan, plan_for
from dpagent.agent.work_queue import WorkQueue
from dpagent.rpc.errors import ControlPlaneError
from dpagent.rpc.trunks import TRUNK_ACTIVE, TRUNK_DEGRADED, SubPort, Trunk

LOG = logging.getLogger(__name__)


class VfProgrammer(Protocol):
    """The VF side (the ``sriov`` library); errors are exceptions whose text names port, PF
    and VF."""

    def apply(self, plan: VfPlan) -> str:
        """Converge the port's VF on ``plan``, writing only what differs; returns the VF's
        name (``pf/vf``) for logs. Raises if the VF cannot be found or configured."""

    def release(self, plan: VfPlan) -> None:
        """The port is gone: clear its VF's trunk VLANs and port VLAN."""

    def device_mappings(self) -> dict[str, list[str]]:
        """physnet -> the managed PFs (for the agent record's configurations)."""


class SriovControlPlane(Protocol):
    """The calls the SR-IOV side makes; each raises TimeoutError or ControlPlaneUnavailable when
    the server is away."""

    def direct_ports(self) -> list[dict[str, Any]]: ...

    def get_devices_details(self, devices: list[str]
                            ) -> tuple[list[dict[str, Any]], list[str]]: ...

    def trunk_of(self, port_id: str) -> Trunk | None: ...

    def update_device_list(self, up: list[str], down: list[str]) -> None: ...

    def update_subport_bindings(self, subports: list[SubPort]) -> object: ...

    def update_trunk_status(self, trunk_id: str, status: str) -> None: ...


@dataclass
class DirectPort:
    """What the agent knows of one direct port bound here."""

    port_id: str
    state: str = "pending"  # pending, wired, failed, admin-down
    reason: str = ""
    attempts: int = 0
    plan: VfPlan | None = None
    trunk: Trunk | None = None
    vf: str = ""
    refused_subports: dict[str, str] = field(default_factory=dict)  # subport id -> why


@dataclass
class _Work:
    ports: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    resync: str | None = None

    def __bool__(self) -> bool:
        return bool(self.ports or self.removed or self.resync)


class SriovPorts:
    """Keeps the VFs of the direct ports bound to this host configured."""

    def __init__(self, control_plane: SriovControlPlane, vfs: VfProgrammer, *,
                 device_retries: int = 3, retry_backoff: float = 1.0,
                 max_backoff: float = 30.0) -> None:
        self.control_plane = control_plane
        self.vfs = vfs
        self.device_retries = device_retries
        self.ports: dict[str, DirectPort] = {}
        self.synced_once = False
        self.admin_state_up = True
        self._trunk_parent: dict[str, str] = {}  # trunk id -> parent port id
        self._backoff = Backoff(retry_backoff, max_backoff)
        self._reports = PortReports()
        self._queue: WorkQueue[_Work] = WorkQueue(_Work, _Work(resync="start"))
        self._thread: threading.Thread | None = None

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self._queue.stopping.clear()
        self._thread = threading.Thread(target=self._run, name="dpagent-sriov", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._queue.stop()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    # -- events (any thread; they only mark work) --------------------------------------------------

    def _mark(self, change: Callable[[_Work], None]) -> None:
        self._queue.mark(change)

    def resync(self, reason: str) -> None:
        self._mark(lambda w: setattr(w, "resync", reason))

    def port_updated(self, port: dict[str, Any], host: str) -> None:
        """A ``port_update``: ours if it is a direct port bound here (or was ours)."""
        port_id = port["id"]
        ours = port.get("binding:vnic_type") == "direct" and port.get("binding:host_id") == host
        if ours:
            self._mark(lambda w: w.ports.add(port_id))
        elif port_id in self.ports:  # unbound from here, or moved
            self._mark(lambda w: w.removed.add(port_id))

    def port_deleted(self, port_id: str) -> None:
        if port_id in self.ports:
            self._mark(lambda w: w.removed.add(port_id))

    def on_trunks(self, event_type: str, trunks: list[Trunk]) -> None:
        """Trunk pushes: a trunk created on (or deleted from) one of our parents."""
        parents = {t.port_id for t in trunks if t.port_id in self.ports}
        if parents:
            self._mark(lambda w: w.ports.update(parents))

    def on_subports(self, event_type: str, subports: list[SubPort]) -> None:
        """Subport pushes: refetch the trunk of an affected parent; the VF programmer writes
        only the VLANs that changed."""
        parents = {self._trunk_parent[s.trunk_id] for s in subports
                   if s.trunk_id in self._trunk_parent}
        if parents:
            self._mark(lambda w: w.ports.update(parents))

    def set_admin_state(self, up: bool) -> None:
        """Cordon, as on the OVS side: while down, wired ports keep their VFs and updates, new
        ones wait (reported down, the reason says why); back up, they are wired."""
        self.admin_state_up = up
        if up:
            held = {p.port_id for p in self.ports.values() if p.state == "admin-down"}
            if held:
                self._mark(lambda w: w.ports.update(held))

    def inventory_changed(self, pfs: Iterable[str]) -> None:
        """VFs appeared or vanished (udev): re-apply every port of those PFs."""
        changed = set(pfs)
        affected = {p.port_id for p in self.ports.values() if p.vf.split("/")[0] in changed}
        if affected:
            self._mark(lambda w: w.ports.update(affected))

    # -- worker ---------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            work = self._queue.take(None)
            if self._queue.stopping.is_set():
                return
            if not work:
                continue
            started = time.monotonic()
            try:
                self._process(work)
                self._backoff.succeeded()
                continue
            except ControlPlaneUnavailable as exc:
                LOG.warning("SR-IOV: control plane unavailable (%s); retrying in %.1f s",
                            exc, self._backoff.no_answer())
            except ControlPlaneError as exc:  # it answered, with an error: one line, no trace
                LOG.warning("SR-IOV: the control plane failed (%s); retrying in %.1f s",
                            exc, self._backoff.error())
            except Exception:  # noqa: BLE001 - the worker must survive anything
                LOG.exception("SR-IOV: processing failed; retrying in %.1f s",
                              self._backoff.error())
            self._requeue(work)  # the work is pending again: without a pause, no wait at all
            self._queue.pause(self._backoff.remaining(started))

    def _requeue(self, work: _Work) -> None:
        def merge(current: _Work) -> None:
            current.ports |= work.ports
            current.removed |= work.removed
            current.resync = current.resync or work.resync
        self._queue.mark(merge)

    def _process(self, work: _Work) -> None:
        if self._reports:  # what a failed call could not tell, first
            self._report([], [])
        if work.resync:
            self._full_sync(work.resync)
            return
        if work.removed:
            self._release(sorted(work.removed))
        if work.ports:
            self._wire(sorted(work.ports - work.removed))

    def _full_sync(self, reason: str) -> None:
        LOG.info("SR-IOV: full synchronisation: %s", reason)
        listed = {p["id"] for p in self._backoff.ask(self.control_plane.direct_ports)}
        gone = sorted(set(self.ports) - listed)
        if gone:
            self._release(gone)
        for port_id in listed:
            self.ports.setdefault(port_id, DirectPort(port_id))
        self._wire(sorted(listed))
        self.synced_once = True

    def _release(self, port_ids: list[str]) -> None:
        down: list[str] = []
        for port_id in port_ids:
            record = self.ports.pop(port_id, None)
            if record is None:
                continue
            if record.trunk is not None:
                self._trunk_parent.pop(record.trunk.id, None)
            if record.plan is not None and record.state == "wired":
                try:
                    self.vfs.release(record.plan)
                except Exception as exc:  # noqa: BLE001 - log; the port is gone anyway
                    LOG.error("SR-IOV: releasing the VF of port %s failed: %s", port_id, exc)
            down.append(port_id)
        if down:
            self._report([], down)

    def _wire(self, port_ids: list[str]) -> None:
        if not port_ids:
            return
        for port_id in port_ids:
            self.ports.setdefault(port_id, DirectPort(port_id))
        if not self.admin_state_up:
            held = [p for p in port_ids if self.ports[p].state != "wired"]
            for port_id in held:
                record = self.ports[port_id]
                record.state, record.reason = "admin-down", "the agent is administratively down"
            if held:
                self._report([], held)
            port_ids = [p for p in port_ids if p not in held]
            if not port_ids:
                return
        details, failed = self._backoff.ask(self.control_plane.get_devices_details, port_ids)
        by_id = {d.get("device"): d for d in details if isinstance(d, dict)}
        up: list[str] = []
        down: list[str] = []
        for port_id in port_ids:
            record = self.ports[port_id]
            entry = by_id.get(port_id)
            if port_id in failed or entry is None or "network_id" not in entry:
                # unbound or unknown: not (or no longer) a port for this host
                self._fail(record, "the server has no binding for it on this host", down)
                continue
            trunk = self._backoff.ask(self.control_plane.trunk_of, port_id)
            if record.trunk is not None and (trunk is None or trunk.id != record.trunk.id):
                self._trunk_parent.pop(record.trunk.id, None)
            record.trunk = trunk
            subports: dict[str, dict[str, Any]] = {}
            if trunk is not None:
                self._trunk_parent[trunk.id] = port_id
                subports = self._subport_details(trunk)
            try:
                plan = plan_for(entry, trunk, subports)
                record.vf = self.vfs.apply(plan)
            except Exception as exc:  # noqa: BLE001 - PlanError, or the VF refused: this
                self._fail(record, str(exc), down, final=True)  # port fails only
                record.refused_subports = {}
                down.extend(subports)  # nothing of the trunk is carried
                self._trunk_status(trunk, TRUNK_DEGRADED)
                continue
            record.plan = plan
            up.append(port_id)  # again if wired already: the details fetch moved it to BUILD
            record.state, record.reason, record.attempts = "wired", "", 0
            if trunk is not None:
                self._subports_wired(record, trunk, plan, up, down)
            else:
                record.refused_subports = {}
            LOG.info("SR-IOV: port %s wired on VF %s (%s)", port_id, record.vf, _describe(plan))
        if up or down:
            self._report(up, down)

    def _subport_details(self, trunk: Trunk) -> dict[str, dict[str, Any]]:
        """The subports' device details by port id: they show each one's network segment
        (CONTRACT.md 1.2, rpc/24), but only once it is bound here, so the subports are bound
        first -- as neutron's OVS trunk driver binds them before it wires them."""
        if not trunk.sub_ports:
            return {}
        self._backoff.ask(self.control_plane.update_subport_bindings, list(trunk.sub_ports))
        entries, failed = self._backoff.ask(self.control_plane.get_devices_details,
                                    [s.port_id for s in trunk.sub_ports])
        return {e["device"]: e for e in entries
                if isinstance(e, dict) and e.get("device") not in failed}

    def _subports_wired(self, record: DirectPort, trunk: Trunk, plan: VfPlan, up: list[str],
                        down: list[str]) -> None:
        """The parent's VF carries what it can: subports up (their details fetch moved them
        to BUILD) or down if refused, and the trunk ACTIVE, or DEGRADED naming why."""
        refused = {r.port_id: r.reason for r in plan.refused_subports}
        for port_id, reason in refused.items():
            if record.refused_subports.get(port_id) != reason:
                LOG.error("SR-IOV: %s", reason)
        record.refused_subports = refused
        for sub in trunk.sub_ports:
            (up if plan.trunk_vlans and sub.port_id not in refused else down).append(sub.port_id)
        self._trunk_status(trunk, TRUNK_DEGRADED if refused else TRUNK_ACTIVE)

    def _report(self, up: list[str], down: list[str]) -> None:
        """update_device_list; on failure the news is kept (the worker requeues the work and
        :meth:`_process` tells it first)."""
        self._reports.send(self._update_device_list, up, down)

    def _update_device_list(self, up: list[str], down: list[str]) -> None:
        self._backoff.ask(self.control_plane.update_device_list, up, down)

    def _trunk_status(self, trunk: Trunk | None, status: str) -> None:
        if trunk is not None:
            self._backoff.ask(self.control_plane.update_trunk_status, trunk.id, status)

    def _fail(self, record: DirectPort, reason: str, down: list[str], *,
              final: bool = False) -> None:
        record.attempts += 1
        record.reason = reason
        if not final and record.attempts < self.device_retries:
            record.state = "pending"
            self._mark(lambda w: w.ports.add(record.port_id))
            return
        if record.state != "failed":
            down.append(record.port_id)
            LOG.error("SR-IOV: port %s failed: %s", record.port_id, reason)
        record.state = "failed"

    # -- status ----------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """From other threads: read from a copy of the ports, which the worker changes."""
        records = list(self.ports.copy().values())
        states: dict[str, int] = {}
        for record in records:
            states[record.state] = states.get(record.state, 0) + 1
        failed = {p.port_id: p.reason for p in records if p.state == "failed"}
        refused = {sub: why for p in records for sub, why in p.refused_subports.copy().items()}
        return {"ports": states, "failed": failed, "refused_subports": refused,
                "synced_once": self.synced_once}


def _describe(plan: VfPlan) -> str:
    if plan.trunk_vlans is not None:
        refused = f", {len(plan.refused_subports)} subport(s) refused" \
            if plan.refused_subports else ""
        return f"trunk VLANs {sorted(plan.trunk_vlans) or 'none'}{refused}"
    return f"port VLAN {plan.vlan}" if plan.vlan else "untagged"

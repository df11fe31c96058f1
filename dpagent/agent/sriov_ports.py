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
  ``neutron-vo-SubPort`` pushes and change only the difference;
* the VFs: a :class:`VfProgrammer` (the ``sriov`` library with its NIC drivers) reads back
  what a VF carries and writes only what differs, so a restart that finds every VLAN in place
  writes nothing and no VLAN that should stay ever flaps;
* reports: ports up or down (``update_device_list``), subport bindings and the trunk's status
  (``ACTIVE``, ``DEGRADED`` when the VF refused the trunk, e.g. a NIC without trunk support).

A port whose VF cannot be configured -- VLAN outside 1-4094, PCI slot of no managed VF, a trunk
on a NIC without trunks, a sysfs write the driver refused -- is reported down (failed) with the
error naming port, PF and VF; the VF is left as the programmer left it (it validates before it
writes) and other ports go on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from dpagent.agent.reporting import ControlPlaneUnavailable, PortReports
from dpagent.agent.reporting import call as call_control_plane
from dpagent.rpc.trunks import TRUNK_ACTIVE, TRUNK_DEGRADED, SubPort, Trunk

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class VfPlan:
    """What one direct port wants of its VF."""

    port_id: str
    mac: str
    pci_slot: str | None
    physnet: str | None = None  # the port's physical network; must be its VF's PF's
    vlan: int = 0  # port VLAN the NIC tags/strips; 0: none (flat network, or a trunk parent)
    trunk_vlans: frozenset[int] | None = None  # the VLANs carried tagged; None: not a trunk
    spoof_check: bool = True
    link_up: bool = True


class PlanError(ValueError):
    """The control plane's data for a port cannot be turned into a VF configuration."""


def plan_for(details: dict[str, Any], trunk: Trunk | None) -> VfPlan:
    """The VF configuration a port's device details (and its trunk, if it is a parent) ask
    for. Pure; raises PlanError naming the port and the field."""
    port_id = str(details.get("device") or details.get("port_id"))
    profile = details.get("profile") or {}
    if not isinstance(profile, dict):
        raise PlanError(f"port {port_id}: binding profile is not an object: {profile!r}")
    pci_slot = profile.get("pci_slot")
    if pci_slot is not None and not isinstance(pci_slot, str):
        raise PlanError(f"port {port_id}: binding profile pci_slot {pci_slot!r} is not a string")
    mac = details.get("mac_address")
    if not isinstance(mac, str):
        raise PlanError(f"port {port_id}: no mac_address in its details")
    network_type = details.get("network_type")
    vlan = 0
    if network_type == "vlan":
        segment = details.get("segmentation_id")
        if not isinstance(segment, int) or isinstance(segment, bool) or not 1 <= segment <= 4094:
            raise PlanError(f"port {port_id}: VLAN segmentation_id {segment!r} is outside "
                            "1-4094")
        vlan = segment
    elif network_type not in ("flat", None):
        raise PlanError(f"port {port_id}: network type {network_type!r} cannot be carried "
                        "by a VF (only vlan and flat)")
    trunk_vlans = None
    if trunk is not None:
        # The VM tags subport traffic itself: the VF carries those VLANs tagged and has no
        # port VLAN (a NIC cannot both tag everything and pass tagged frames through).
        trunk_vlans = trunk.vlans if trunk.admin_state_up else frozenset()
        vlan = 0
    physnet = details.get("physical_network")
    return VfPlan(port_id, mac.lower(), pci_slot, physnet if isinstance(physnet, str) else None,
                  vlan, trunk_vlans,
                  spoof_check=bool(details.get("port_security_enabled", True)),
                  link_up=bool(details.get("admin_state_up", True)))


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

    def update_subport_bindings(self, subports: list[SubPort]) -> None: ...

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
        self.retry_backoff = retry_backoff
        self.max_backoff = max_backoff
        self.ports: dict[str, DirectPort] = {}
        self.synced_once = False
        self.admin_state_up = True
        self._trunk_parent: dict[str, str] = {}  # trunk id -> parent port id
        self._reports = PortReports()
        self._work = _Work(resync="start")
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="dpagent-sriov", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    # -- events (any thread; they only mark work) --------------------------------------------------

    def _mark(self, change: Callable[[_Work], None]) -> None:
        with self._cond:
            change(self._work)
            self._cond.notify_all()

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
        backoff = 0.0
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopping or bool(self._work),
                                    timeout=backoff or None)
                if self._stopping:
                    return
                work, self._work = self._work, _Work()
            try:
                self._process(work)
                backoff = 0.0
            except ControlPlaneUnavailable as exc:
                backoff = min(self.max_backoff, max(self.retry_backoff, backoff * 2))
                LOG.warning("SR-IOV: control plane unavailable (%s); retrying in %.0f s",
                            exc, backoff)
                self._requeue(work)
            except Exception:  # noqa: BLE001 - the worker must survive anything
                LOG.exception("SR-IOV: processing failed; retrying")
                backoff = min(self.max_backoff, max(self.retry_backoff, backoff * 2))
                self._requeue(work)

    def _requeue(self, work: _Work) -> None:
        def merge(current: _Work) -> None:
            current.ports |= work.ports
            current.removed |= work.removed
            current.resync = current.resync or work.resync
        with self._cond:
            merge(self._work)

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
        listed = {p["id"] for p in call_control_plane(self.control_plane.direct_ports)}
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
        details, failed = call_control_plane(self.control_plane.get_devices_details, port_ids)
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
            trunk = call_control_plane(self.control_plane.trunk_of, port_id)
            if record.trunk is not None and (trunk is None or trunk.id != record.trunk.id):
                self._trunk_parent.pop(record.trunk.id, None)
            record.trunk = trunk
            if trunk is not None:
                self._trunk_parent[trunk.id] = port_id
            try:
                plan = plan_for(entry, trunk)
                record.vf = self.vfs.apply(plan)
            except PlanError as exc:
                self._fail(record, str(exc), down, final=True)
                self._trunk_status(trunk, TRUNK_DEGRADED)
                continue
            except Exception as exc:  # noqa: BLE001 - the VF refused: this port fails only
                self._fail(record, str(exc), down, final=True)
                self._trunk_status(trunk, TRUNK_DEGRADED)
                continue
            record.plan = plan
            if record.state != "wired":
                up.append(port_id)
            record.state, record.reason, record.attempts = "wired", "", 0
            if trunk is not None:
                if trunk.sub_ports:
                    call_control_plane(self.control_plane.update_subport_bindings,
                                       list(trunk.sub_ports))
                self._trunk_status(trunk, TRUNK_ACTIVE)
            LOG.info("SR-IOV: port %s wired on VF %s (%s)", port_id, record.vf, _describe(plan))
        if up or down:
            self._report(up, down)

    def _report(self, up: list[str], down: list[str]) -> None:
        """update_device_list; on failure the news is kept (the worker requeues the work and
        :meth:`_process` tells it first)."""
        self._reports.send(self.control_plane.update_device_list, up, down)

    def _trunk_status(self, trunk: Trunk | None, status: str) -> None:
        if trunk is not None:
            call_control_plane(self.control_plane.update_trunk_status, trunk.id, status)

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
        return {"ports": states, "failed": failed, "synced_once": self.synced_once}


def _describe(plan: VfPlan) -> str:
    if plan.trunk_vlans is not None:
        return f"trunk VLANs {sorted(plan.trunk_vlans) or 'none'}"
    return f"port VLAN {plan.vlan}" if plan.vlan else "untagged"

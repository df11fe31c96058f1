"""Physical networks: every mapped bridge patched to br-int, guarded, and kept that way.

Decisions the rest of the agent may rely on:

* **Patch ports, never veths.** A patch port pair lives inside ovs-vswitchd: a frame crosses it
  without leaving the datapath, and a patch port can exist *unconnected*. Veth interconnections
  of old agents are converted at start-up (:mod:`.migration`); asking for them is a
  configuration error (:mod:`.config`).
* **Unconnected first.** New patch ports are created naming a peer that does not exist
  (:data:`~.patch_ports.UNCONNECTED_PEER`): OVS gives them ofports but forwards nothing. The
  physical bridge is then made fail_mode secure (which flushes its flows, so it comes first), its
  flows are installed (:mod:`.bridge_flows`: drop everything from ``phy-X`` except the VLANs of
  present networks, NORMAL for the rest), and only then are the two ports named each other's peer.
  On the br-int side the guard already exists: br-int is fail_mode secure and its CLASSIFY table
  drops what no network claims, so the wire's frames go nowhere until the agent gives a network
  its uplink. At no moment of the setup can a frame cross unfiltered.
* **Idempotent.** Existing patch ports are reused with their ofports; flows are reconciled
  against what the bridge holds (hitless when they are right), so a restart changes nothing.
* **Taken over together with br-int.** A physical bridge already patched to br-int by another
  agent (neutron's: it rewrites local VLANs to wire VLANs on the physical bridge, where dpagent
  does it on br-int) keeps that agent's flows until br-int carries dpagent's: the agent core calls
  :meth:`PhysicalNetworks.take_over_deferred` right after its first bundle, and the physical
  bridge's controller and flows are replaced then, so the two halves of the uplink disagree
  only for the moment between two bundles.
* **A missing bridge is not fatal.** It is logged as an error naming the bridge, reported by
  :meth:`PhysicalNetworks.status` and :meth:`PhysicalNetworks.resolve`, and every other physical
  network is served. When the bridge appears (an OVSDB Bridge row event), it is wired without a
  restart and ``on_uplinks_changed`` tells the agent to refresh its networks' uplinks; the same
  happens when a bridge is deleted and re-created while the agent runs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dpagent.agent.ovsdb import Ovsdb
from dpagent.bridge.programmer import BridgeProgrammer
from dpagent.bridge.takeover import controller_hand_over
from dpagent.physnet import bridge_flows, migration
from dpagent.physnet.config import check_options
from dpagent.physnet.events import BridgeRowEvent
from dpagent.physnet.naming import PatchPair, patch_pair
from dpagent.physnet.patch_ports import NewPatchPort, PatchPorts
from dpagent.physnet.segments import NoSegment, PresentNetwork, WireVlan, segment_of, wire_vlans
from flows.model import Uplink

LOG = logging.getLogger(__name__)

WIRED, MISSING, FAILED = "wired", "missing", "error"


@dataclass(frozen=True, slots=True)
class UplinkAnswer:
    """A network's uplink, or None and why (unmapped physnet, missing bridge, local network)."""

    uplink: Uplink | None
    reason: str = ""


@dataclass
class _Physnet:
    """What dpagent knows of one mapping."""

    name: str
    pair: PatchPair
    state: str = MISSING
    error: str = ""
    int_ofport: int | None = None
    phy_ofport: int | None = None
    programmer: BridgeProgrammer | None = None
    vlans: frozenset[WireVlan] = frozenset()
    """The wire VLANs the bridge's allow-list was last programmed with."""
    ofport_request: int | None = None
    """The ofport of a migrated veth, for the patch port that replaces it."""
    migrated: bool = False
    deferred: BridgeProgrammer | None = None
    """Patched already, another agent's flows in place: taken over after br-int's first sync."""
    wire_seconds: float | None = None
    """How long the last successful wiring took."""
    wired_at: float | None = None
    """When it finished (time.time())."""

    @property
    def uplink_key(self) -> tuple[str, int | None]:
        return (self.state, self.int_ofport if self.state == WIRED else None)


class PhysicalNetworks:
    """Owns the interconnection of the integration bridge with every mapped physical bridge.

    The agent core calls :meth:`setup` once at start (after its integration bridge exists),
    :meth:`resolve`/:meth:`uplink` for each network it wires, :meth:`set_networks` whenever the
    set of networks present on the host changes, :meth:`rewire` after an OVSDB reconnect, and
    :meth:`stop` at exit. ``on_uplinks_changed(physnets)`` is called from this manager's own
    thread when physnets' uplinks appeared, disappeared or moved (bridge created, deleted or
    re-created): the agent should re-resolve the uplinks of networks on those physnets.
    """

    def __init__(self, ovsdb: Ovsdb, bridge_mappings: Mapping[str, str],
                 integration_bridge: str, programmer_for: Callable[[str], BridgeProgrammer], *,
                 use_veth_interconnection: bool = False, netns: str | None = None,
                 on_uplinks_changed: Callable[[frozenset[str]], None] | None = None,
                 guard_interval: float = 1.0, retry_interval: float = 10.0) -> None:
        """``programmer_for(bridge)`` makes a fresh programmer for a physical bridge (one per
        wiring, since a re-created bridge is a new switch). ``netns`` is the network namespace
        ovs-vswitchd runs in (None: ours), where veths to migrate are found. Every
        ``guard_interval`` seconds the physical bridges' canary flows are checked (flows lost
        by an ovs-vswitchd restart are put back); every ``retry_interval`` seconds bridges that
        are missing or failed are looked at again, in case an OVSDB event was missed."""
        self.ovsdb = ovsdb
        self.ports = PatchPorts(ovsdb.api)
        self.integration_bridge = integration_bridge
        self.mappings = dict(bridge_mappings)
        self.use_veth_interconnection = use_veth_interconnection
        self.netns = netns
        self.on_uplinks_changed = on_uplinks_changed
        self.guard_interval = guard_interval
        self.retry_interval = retry_interval
        self._programmer_for = programmer_for
        self._physnets = {name: _Physnet(name, patch_pair(bridge))
                          for name, bridge in sorted(self.mappings.items())}
        self._wanted: dict[str, frozenset[WireVlan]] = {}
        self._integration_synced = False
        """br-int carries dpagent's flows (its first sync is done): nothing is deferred."""
        self._lock = threading.RLock()
        self._wake = threading.Condition()
        self._dirty: set[str] = set()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._event: BridgeRowEvent | None = None

    # -- agent API ----------------------------------------------------------------------------

    def setup(self) -> None:
        """Check the options, migrate veth interconnections, wire every existing mapped bridge.

        Raises :class:`~dpagent.physnet.config.PhysnetConfigError` for unusable options; a
        missing or failing bridge is logged and reported, never raised.
        """
        check_options(self.mappings, self.integration_bridge, self.use_veth_interconnection)
        # Watch before looking: a bridge created in between is then wired by the event.
        bridges = {p.pair.bridge for p in self._physnets.values()} | {self.integration_bridge}
        self._event = BridgeRowEvent(bridges, self._bridge_event)
        self.ovsdb.api.idl.notify_handler.watch_event(self._event)
        with self._lock:
            migrated = migration.migrate(self.ports, self.integration_bridge,
                                         [p.pair for p in self._physnets.values()], self.netns)
            for physnet in self._physnets.values():
                if physnet.pair.bridge in migrated:
                    physnet.migrated = True
                    physnet.ofport_request = migrated[physnet.pair.bridge]
                self._wire(physnet)
        self._thread = threading.Thread(target=self._run, name="dpagent-physnet", daemon=True)
        self._thread.start()

    def resolve(self, network_type: str, physical_network: str | None,
                segmentation_id: int | str | None) -> UplinkAnswer:
        """The uplink a network should get on br-int, or None with the reason."""
        try:
            segment = segment_of(network_type, physical_network, segmentation_id)
        except NoSegment as exc:
            return UplinkAnswer(None, str(exc))
        with self._lock:
            physnet = self._physnets.get(segment.physical_network)
            if physnet is None:
                return UplinkAnswer(None, f"physical network {segment.physical_network} is not "
                                    "mapped in [ovs] bridge_mappings on this host")
            if physnet.state != WIRED or physnet.int_ofport is None:
                return UplinkAnswer(None, f"physical network {physnet.name}: {physnet.error}")
            return UplinkAnswer(Uplink(physnet.int_ofport, segment.vlan))

    def uplink(self, network_type: str, physical_network: str | None,
               segmentation_id: int | str | None) -> Uplink | None:
        """:meth:`resolve` without the reason."""
        return self.resolve(network_type, physical_network, segmentation_id).uplink

    def set_networks(self, present: Iterable[PresentNetwork]) -> None:
        """The networks with ports on this host: each physical bridge lets exactly their VLANs
        (untagged for flat networks) out of ``phy-X``. Bridges not wired yet get them when
        they are."""
        wanted = wire_vlans(present)
        with self._lock:
            self._wanted = wanted
            for physnet in self._physnets.values():
                if physnet.state == WIRED:
                    self._program_allow_list(physnet)

    def take_over_deferred(self) -> None:
        """br-int carries dpagent's flows now: take over the physical bridges that kept
        another agent's flows meanwhile (see the module's notes). Called by the agent right
        after its first bundle, on its thread."""
        with self._lock:
            self._integration_synced = True
            for physnet in self._physnets.values():
                programmer, physnet.deferred = physnet.deferred, None
                if programmer is None or physnet.state != WIRED:
                    continue
                try:
                    problem = self._take_over(physnet, programmer)
                except Exception as exc:  # noqa: BLE001 - retried as a wiring of its own
                    LOG.exception("taking over %s failed", physnet.pair.bridge)
                    problem = (FAILED, f"taking over bridge {physnet.pair.bridge} failed: {exc}")
                if problem is not None:
                    LOG.error("physical network %s: %s", physnet.name, problem[1])
                    physnet.state, physnet.error = problem
                    self._mark({physnet.pair.bridge})

    def rewire(self, reason: str) -> None:
        """Look at every mapped bridge again (e.g. after an OVSDB reconnect, when events may
        have been missed); done on the manager's thread."""
        LOG.info("re-checking the physical bridges: %s", reason)
        self._mark({p.pair.bridge for p in self._physnets.values()})

    def status(self) -> dict[str, dict[str, Any]]:
        """Per physnet: bridge, patch ports and ofports, state (wired, missing, error) and why,
        the flows installed on the bridge.

        Read without the lock: the wiring thread holds it across OVSDB and OpenFlow exchanges,
        which take their whole timeout while ovs-vswitchd is down -- exactly when an operator
        asks for the status. Each field is read whole; a wiring in progress may show half done.
        """
        return {p.name: {"bridge": p.pair.bridge, "state": p.state, "error": p.error,
                         "int_port": p.pair.int_port, "int_ofport": p.int_ofport,
                         "phy_port": p.pair.phy_port, "phy_ofport": p.phy_ofport,
                         "vlans": sorted(p.vlans, key=lambda v: -1 if v is None else v),
                         "migrated_from_veth": p.migrated, "wire_seconds": p.wire_seconds,
                         "wired_at": p.wired_at,
                         "flows_installed": p.programmer.installed_count if p.programmer
                         else 0}
                for p in list(self._physnets.values())}

    def stop(self, timeout: float = 5.0) -> None:
        if self._event is not None:
            self.ovsdb.api.idl.notify_handler.unwatch_event(self._event)
            self._event = None
        self._stopping.set()
        with self._wake:
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    # -- wiring (under the lock) --------------------------------------------------------------

    def _wire(self, physnet: _Physnet) -> None:
        start = time.perf_counter()
        try:
            problem = self._wire_steps(physnet)
        except Exception as exc:  # noqa: BLE001 - one bridge's failure leaves the others be
            LOG.exception("wiring %s (physical network %s) failed", physnet.pair.bridge,
                          physnet.name)
            problem = (FAILED, f"wiring bridge {physnet.pair.bridge} failed: {exc}")
        if problem is not None:
            if (physnet.state, physnet.error) != problem:  # said once, not at every retry
                LOG.error("physical network %s: %s", physnet.name, problem[1])
            physnet.state, physnet.error = problem
            physnet.programmer = None
            return
        physnet.wire_seconds = time.perf_counter() - start
        physnet.wired_at = time.time()
        LOG.info("physical network %s: %s patched to %s (%s ofport %s, %s ofport %s) in %.3f s%s",
                 physnet.name, physnet.pair.bridge, self.integration_bridge,
                 physnet.pair.int_port, physnet.int_ofport, physnet.pair.phy_port,
                 physnet.phy_ofport, physnet.wire_seconds,
                 " (migrated from veth)" if physnet.migrated else "")

    def _wire_steps(self, physnet: _Physnet) -> tuple[str, str] | None:
        """Wire one bridge; (state, error) if it cannot be."""
        pair = physnet.pair
        problem = self._precondition(pair)
        if problem is not None:
            return problem
        int_ofport, phy_ofport, connected = self._prepare_ports(physnet)
        programmer = self._programmer_for(pair.bridge)
        physnet.int_ofport, physnet.phy_ofport = int_ofport, phy_ofport
        physnet.ofport_request = None
        if connected and not self._integration_synced and programmer.holds_foreign_flows():
            LOG.info("bridge %s is patched to %s with another agent's flows: they stay until "
                     "%s carries dpagent's", pair.bridge, self.integration_bridge,
                     self.integration_bridge)
            physnet.state, physnet.error = WIRED, ""
            physnet.programmer, physnet.deferred = None, programmer
            return None
        problem = self._take_over(physnet, programmer)
        if problem is not None:
            return problem
        if not connected:  # only now: the guard flows are in
            self.ports.connect(pair.int_port, pair.phy_port)
        physnet.state, physnet.error = WIRED, ""
        return None

    def _take_over(self, physnet: _Physnet,
                   programmer: BridgeProgrammer) -> tuple[str, str] | None:
        """Install dpagent's flows on the bridge; (state, error) if it refuses them."""
        bridge, phy_ofport = physnet.pair.bridge, physnet.phy_ofport
        assert phy_ofport is not None
        vlans = self._wanted.get(physnet.name, frozenset())
        programmer.set_flows(bridge_flows.GUARD_OWNER, bridge_flows.guard_flows(phy_ofport))
        programmer.set_flows(bridge_flows.ALLOW_OWNER,
                             bridge_flows.allow_flows(phy_ofport, vlans))
        # a fresh programmer takes the bridge over: another agent's flows (neutron's NORMAL
        # and VLAN rewrites) go in the same bundle as ours come in; its controller just
        # before that bundle's commit (removing it flushes the bridge: the bundle refills it)
        hand_over = controller_hand_over(self.ovsdb, bridge)
        report = programmer.reconcile(f"wiring {bridge}", flush=hand_over is not None,
                                      sweep=True, before_commit=hand_over)
        if report.rejected:
            return FAILED, f"bridge {bridge} refused dpagent's flows: {report.rejected}"
        physnet.programmer, physnet.vlans = programmer, vlans
        return None

    def _precondition(self, pair: PatchPair) -> tuple[str, str] | None:
        """Why ``pair.bridge`` cannot be patched to the integration bridge now, if it cannot."""
        integration = self.integration_bridge
        if not self.ports.bridge_exists(pair.bridge):
            return MISSING, (f"bridge {pair.bridge} does not exist; it is wired as soon as it "
                             "is created")
        if not self.ports.bridge_exists(integration):
            return MISSING, f"the integration bridge {integration} does not exist"
        datapaths = {b: self.ports.bridge_column(b, "datapath_type") or "system"
                     for b in (integration, pair.bridge)}
        if datapaths[integration] != datapaths[pair.bridge]:
            return FAILED, (f"bridge {pair.bridge} has datapath {datapaths[pair.bridge]} but "
                            f"{integration} has {datapaths[integration]}: OVS cannot patch them")
        if self.ports.bridge_column(integration, "fail_mode") != "secure":
            return FAILED, (f"the integration bridge {integration} is not fail_mode secure: "
                            "frames from the wire could reach it unfiltered")
        return None

    def _prepare_ports(self, physnet: _Physnet) -> tuple[int, int, bool]:
        """Both patch ports exist and the physical bridge fails secure: (int ofport, phy
        ofport, whether the ports are already connected to each other).

        Existing patch ports are reused; missing ones are created unconnected, in the same
        transaction that sets fail_mode (changing it flushes the bridge's flows, so it must
        come before any flow is installed)."""
        pair = physnet.pair
        self.ovsdb.speak_openflow15(pair.bridge)
        secure = self.ports.bridge_column(pair.bridge, "fail_mode") == "secure"
        return self.ports.ensure_pair(
            NewPatchPort(self.integration_bridge, pair.int_port, physnet.ofport_request),
            NewPatchPort(pair.bridge, pair.phy_port), None if secure else pair.bridge)

    def _program_allow_list(self, physnet: _Physnet) -> None:
        vlans = self._wanted.get(physnet.name, frozenset())
        if vlans == physnet.vlans or physnet.programmer is None or physnet.phy_ofport is None:
            return
        physnet.programmer.set_flows(bridge_flows.ALLOW_OWNER,
                                     bridge_flows.allow_flows(physnet.phy_ofport, vlans))
        try:
            report = physnet.programmer.apply()
        except Exception:  # noqa: BLE001 - the bridge may be going away; its event re-wires
            LOG.exception("updating the allow-list of %s failed", physnet.pair.bridge)
            self._mark({physnet.pair.bridge})
            return
        if report.rejected:
            LOG.error("bridge %s refused the allow-list: %s", physnet.pair.bridge,
                      report.rejected)
            return
        physnet.vlans = vlans

    # -- events and the manager's thread -------------------------------------------------------

    def _bridge_event(self, event_name: str, bridge: str) -> None:
        LOG.info("OVSDB: bridge %s %sd", bridge, event_name)
        if bridge == self.integration_bridge:
            self._mark({p.pair.bridge for p in self._physnets.values()})
        else:
            self._mark({bridge})

    def _mark(self, bridges: set[str]) -> None:
        with self._wake:
            self._dirty |= bridges
            self._wake.notify()

    def _run(self) -> None:
        next_guard = time.monotonic()
        next_retry = next_guard + self.retry_interval
        while not self._stopping.is_set():
            with self._wake:
                if not self._dirty:
                    self._wake.wait(min(self.guard_interval, self.retry_interval))
                dirty, self._dirty = self._dirty, set()
            now = time.monotonic()
            if now >= next_retry:
                next_retry = now + self.retry_interval
                dirty |= {p.pair.bridge for p in self._physnets.values() if p.state != WIRED}
            if dirty and not self._stopping.is_set():
                self._rewire_bridges(dirty)
            if self.guard_interval and now >= next_guard:
                next_guard = now + self.guard_interval
                self._guard()

    def _rewire_bridges(self, bridges: set[str]) -> None:
        changed = set()
        with self._lock:
            for physnet in self._physnets.values():
                if physnet.pair.bridge in bridges:
                    before = physnet.uplink_key
                    self._wire(physnet)
                    if physnet.uplink_key != before:
                        changed.add(physnet.name)
        if changed and self.on_uplinks_changed is not None:
            try:
                self.on_uplinks_changed(frozenset(changed))
            except Exception:  # noqa: BLE001 - the agent's problem, not the wiring's
                LOG.exception("uplink change handler failed for %s", sorted(changed))

    def _guard(self) -> None:
        """Put back the flows of a physical bridge that lost them (ovs-vswitchd restarted)."""
        with self._lock:
            for physnet in self._physnets.values():
                if physnet.state != WIRED or physnet.programmer is None:
                    continue
                try:
                    if physnet.programmer.switch_was_reset():
                        LOG.warning("bridge %s lost its flows: reinstalling them",
                                    physnet.pair.bridge)
                        physnet.programmer.reconcile("switch reset")
                except Exception:  # noqa: BLE001 - e.g. the bridge is being deleted
                    LOG.debug("checking %s failed", physnet.pair.bridge, exc_info=True)

"""Tenant overlay networks: br-tun patched to br-int, its tunnel ports and its flows, kept so.

Decisions the rest of the agent may rely on:

* **br-int does not change.** A tunnelled network's uplink is ``patch-tun`` with the network's
  local VLAN, like a VLAN physnet's; br-tun turns that VLAN into the network's VNI and back.
* **Unconnected first, as for physnets.** br-tun is fail_mode secure before anything else;
  new patch ports name a peer that does not exist until br-tun's base flows are in.
* **Owners are small** (:mod:`.state`): one l2population change costs the flow-mods of the
  remote MAC/IP it is about, whatever the number of networks and endpoints.
* **Synchronous for the agent, queued for the server.** :meth:`Overlay.set_networks` runs on the
  agent's thread and returns once br-tun carries the networks (the agent reports ports up only
  after; the server answers that report with the forwarding entries). Casts are queued and
  applied on the overlay's own thread, which also keeps ``tunnel_sync`` retrying and checks the
  canary (flows lost by an ovs-vswitchd restart are put back from memory).
* **Taking over a br-tun that holds flows** (neutron's, or dpagent's own before a restart,
  whose forwarding entries died with the process): its flows and tunnel ports keep forwarding
  until the entries are known again, i.e. until ``settle`` seconds pass without an entry
  after the first one (the agent asks for them with ``refresh_tunnels``), at most
  ``settle_max`` after br-int's first sync; then one bundle sweeps what is stale and brings
  what is missing, and unused tunnel ports go. Without l2population: once tunnel_sync is done.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from dpagent.agent.ovsdb import Ovsdb
from dpagent.bridge.programmer import BridgeProgrammer
from dpagent.bridge.takeover import controller_hand_over
from dpagent.overlay.config import OverlaySettings
from dpagent.overlay.state import Changes, OverlayState
from dpagent.overlay.tunnel_ports import PortSpec, TunnelPorts
from dpagent.physnet.events import BridgeRowEvent
from dpagent.physnet.patch_ports import NewPatchPort, PatchPorts
from dpagent.rpc.l2pop import FdbNetwork, IpChange
from flows import tunnel
from flows.model import Uplink
from flows.tunnel import TunnelNetwork

LOG = logging.getLogger(__name__)

TUNNELLED = ("vxlan", "geneve", "gre")


class TunnelSync(Protocol):
    def tunnel_sync(self, tunnel_ip: str, tunnel_type: str) -> list[str]:
        ...


class Overlay:
    """Owns br-tun. ``setup`` once at start; ``uplink``/``set_networks`` from the agent;
    the ``on_*`` handlers from the notification consumers; ``stop`` at exit."""

    def __init__(self, ovsdb: Ovsdb, settings: OverlaySettings, integration_bridge: str,
                 datapath_type: str, programmer_for: Callable[[str], BridgeProgrammer], *,
                 guard_interval: float = 1.0, retry_interval: float = 5.0,
                 settle: float = 1.0, settle_max: float = 10.0) -> None:
        assert settings.local_ip is not None
        self.ovsdb = ovsdb
        self.settings = settings
        self.integration_bridge = integration_bridge
        self.datapath_type = datapath_type
        self.control: TunnelSync | None = None
        """Set before :meth:`start`: tunnel_sync's server side."""
        self.on_uplinks_changed: Callable[[], None] | None = None
        """Called (overlay thread) when patch-tun's ofport changed: br-int was re-created."""
        self._event: BridgeRowEvent | None = None
        self.guard_interval, self.retry_interval = guard_interval, retry_interval
        self.settle, self.settle_max = settle, settle_max
        self._programmer_for = programmer_for
        self.patches = PatchPorts(ovsdb.api)
        self.tunnels = TunnelPorts(ovsdb.api, settings.bridge, PortSpec(
            settings.local_ip, settings.vxlan_udp_port, settings.dont_fragment,
            settings.tunnel_csum))
        self.state = OverlayState(settings.local_ip, settings.l2_population,
                                  settings.arp_responder)
        self.programmer: BridgeProgrammer | None = None
        self.patch_tun_ofport: int | None = None
        self.port_names: dict[tuple[str, str], str] = {}
        self.error = "not set up yet"
        self._deferred = False
        self._deadline: float | None = None
        self._int_synced = False
        """br-int carries dpagent's flows (take_over_deferred was called)."""
        self._first_done = False
        """The first wiring succeeded: later ones know everything and never defer."""
        self._last_fdb = 0.0
        self._synced_types: set[str] = set()
        self._fdb_seen = False
        self._lock = threading.RLock()
        self._jobs: list[Callable[[], None]] = []
        self._wake = threading.Condition()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- start and stop ------------------------------------------------------------------------

    def setup(self) -> None:
        """Watch the bridges, then wire br-tun (see :meth:`_wire`). A failure is logged and
        reported (:meth:`status`, :meth:`reason`) and retried on the overlay's thread: the
        agent keeps serving every other network."""
        self._event = BridgeRowEvent({self.settings.bridge, self.integration_bridge},
                                     self._bridge_event)
        self.ovsdb.api.idl.notify_handler.watch_event(self._event)
        self._wire("setting up", first=True)

    def _wire(self, reason: str, first: bool = False) -> None:
        try:
            with self._lock:
                self._wire_steps(reason, first)
        except Exception as exc:  # noqa: BLE001 - reported, retried
            LOG.exception("wiring %s failed", self.settings.bridge)
            self.error = f"wiring bridge {self.settings.bridge} failed: {exc}"
            self.patch_tun_ofport = None
            return
        self.error = ""

    def _wire_steps(self, reason: str, first: bool) -> None:
        """br-tun exists, fails secure and is patched to br-int; its flows are in (or, at the
        agent's start, if it holds flows already, kept until the forwarding entries are known).
        After a bridge was re-created, the tunnel ports are made again from memory."""
        settings = self.settings
        for endpoint in list(self.state.ofports):  # seen again below, if they still exist
            self.state.set_ofport(endpoint, None)
        self.port_names.clear()
        self.ovsdb.ensure_bridge(settings.bridge, self.datapath_type)
        tun_ofport, int_ofport, connected = self._patch_ports()
        before, self.patch_tun_ofport = self.patch_tun_ofport, int_ofport
        for endpoint, port in self.tunnels.inventory().items():
            self.port_names[endpoint] = port.name
            if port.ofport:
                self.state.set_ofport(endpoint, port.ofport)
        self.state.set_patch_port(tun_ofport)
        self.programmer = self._programmer_for(settings.bridge)
        self._set_owners(self.state.all_owners())
        if first and connected and self.programmer.transport.dump(0, 0):
            # neutron's flows, or ours from before a restart: the entries that made them
            # are known again only once the server has resent them
            LOG.info("bridge %s holds flows already: they forward until the forwarding "
                     "entries are known again", settings.bridge)
            self._deferred = True
            if self._int_synced:  # a first wiring that failed before br-int's sync
                self._deadline = time.monotonic() + self.settle_max
                self._last_fdb = time.monotonic()
        else:
            self._deferred = False
            self._take_over(reason)
            # tunnel ports a re-created bridge lost
            self._apply(Changes(endpoints=self.state.wanted_endpoints()), reason)
            if not connected:
                self.patches.connect(settings.int_patch_port, settings.tun_patch_port)
        LOG.info("overlay: %s patched to %s (%s ofport %s), tunnels %s from %s",
                 settings.bridge, self.integration_bridge, settings.int_patch_port,
                 int_ofport, ", ".join(settings.tunnel_types), settings.local_ip)
        self._first_done = True
        if before != int_ofport and self.on_uplinks_changed:  # re-created, or wired at last
            self.on_uplinks_changed()

    def _bridge_event(self, event_name: str, bridge: str) -> None:
        """OVSDB: br-tun or br-int created or deleted: wire again (on the overlay's thread)."""
        LOG.info("OVSDB: bridge %s %sd", bridge, event_name)
        self._queue(lambda: self._wire(f"bridge {bridge} {event_name}d"))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dpagent-overlay", daemon=True)
        self._thread.start()
        self._queue(self._sync_tunnels)

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

    # -- the agent's side ---------------------------------------------------------------------

    def uplink(self, network_type: str, local_vlan: int) -> Uplink | None:
        if network_type not in self.settings.tunnel_types or self.patch_tun_ofport is None:
            return None
        return Uplink(self.patch_tun_ofport, local_vlan)

    def reason(self, network_type: str) -> str:
        if network_type not in self.settings.tunnel_types:
            return f"{network_type} is not in [agent] tunnel_types on this host"
        return self.error

    def set_networks(self, networks: Mapping[str, TunnelNetwork]) -> None:
        """The tunnelled networks with ports here; br-tun carries them when this returns."""
        wanted = {n: net for n, net in networks.items()
                  if net.network_type in self.settings.tunnel_types}
        with self._lock:
            if self.programmer is not None:
                for network_id, network in self.state.networks.items():
                    now = wanted.get(network_id)
                    if now != network:  # gone, or another VLAN or VNI
                        self.programmer.purge(tunnel.learned_of(network.local_vlan))
            self._apply(self.state.set_networks(wanted), "networks changed")

    def take_over_deferred(self) -> None:
        """br-int carries dpagent's flows: br-tun's takeover may happen once settled."""
        with self._lock:
            self._int_synced = True
            if self._deferred and self._deadline is None:
                self._deadline = time.monotonic() + self.settle_max
                self._last_fdb = time.monotonic()
                # only what the server sends from now on (answering the refresh) counts as
                # the forwarding table being known again, not a fanout that came before
                self._fdb_seen = False
        self._notify()

    def refresh_tunnels(self) -> bool:
        """Whether the next ``update_device_list`` should ask the server to resend the
        forwarding entries: none came since start, or a local network floods nowhere."""
        if not self.settings.l2_population:
            return False
        with self._lock:
            return not self._fdb_seen or self.state.tunnels_missing()

    def status(self) -> dict[str, Any]:
        """Read without the lock (the overlay thread holds it across OVSDB calls): each
        table is copied whole first (one C-level copy under the GIL)."""
        state = self.state
        networks, ofports = dict(state.networks), dict(state.ofports)
        return {"bridge": self.settings.bridge, "error": self.error,
                "deferred_takeover": self._deferred, "local_ip": self.settings.local_ip,
                "tunnel_types": list(self.settings.tunnel_types),
                "l2_population": self.settings.l2_population,
                "networks": {n: net.segmentation_id for n, net in networks.items()},
                "tunnels": {f"{t}:{ip}": ofport for (t, ip), ofport in ofports.items()},
                "flows_installed": self.programmer.installed_count if self.programmer else 0}

    # -- the server's side (consumer threads: queue only) ---------------------------------------

    def on_tunnel_update(self, tunnel_ip: str, tunnel_type: str) -> None:
        if self.settings.l2_population or tunnel_ip == self.settings.local_ip:
            return  # l2population says which endpoints are wanted; ours needs no port
        if not self._known_type(tunnel_type, "tunnel_update", tunnel_ip):
            return
        self._queue(self._locked(lambda: self._apply(
            self.state.add_static(tunnel_type, tunnel_ip),
            f"tunnel_update {tunnel_type} {tunnel_ip}")))

    def on_tunnel_delete(self, tunnel_ip: str, tunnel_type: str) -> None:
        if not self._known_type(tunnel_type, "tunnel_delete", tunnel_ip):
            return
        # with l2population too (as neutron's agent): the server sends only this when a host's
        # endpoint IP changed, and the old IP may be given to another machine
        self._queue(self._locked(lambda: self._apply(
            self.state.remove_endpoint(tunnel_type, tunnel_ip),
            f"tunnel_delete {tunnel_type} {tunnel_ip}")))

    def on_fdb_add(self, networks: list[FdbNetwork]) -> None:
        self._queue(self._locked(lambda: self._fdb(networks, add=True)))

    def on_fdb_remove(self, networks: list[FdbNetwork]) -> None:
        self._queue(self._locked(lambda: self._fdb(networks, add=False)))

    def on_fdb_ip_change(self, changes: list[IpChange]) -> None:
        def apply() -> None:
            result = Changes()
            for change in changes:
                result |= self.state.change_ips(change.network_id, change.remote_ip,
                                                change.before, change.after)
            self._apply(result, "update_fdb_entries")
        self._queue(self._locked(apply))

    # -- internals -----------------------------------------------------------------------------

    def _known_type(self, tunnel_type: str, method: str, tunnel_ip: str) -> bool:
        if tunnel_type in self.settings.tunnel_types:
            return True
        LOG.error("%s for %s tunnel %s: %s is not in [agent] tunnel_types here; ignored",
                  method, tunnel_type, tunnel_ip, tunnel_type)
        return False

    def _fdb(self, networks: list[FdbNetwork], add: bool) -> None:
        changes = Changes()
        for network in networks:
            local = self.state.networks.get(network.network_id)
            if local is not None and (local.network_type, local.segmentation_id) != (
                    network.network_type, network.segmentation_id):
                LOG.warning("%s_fdb_entries: network %s is %s %s here but the entries say "
                            "%s %s; ignored", "add" if add else "remove", network.network_id,
                            local.network_type, local.segmentation_id, network.network_type,
                            network.segmentation_id)
                continue
            changes |= (self.state.add_fdb if add else self.state.remove_fdb)(network.entries)
        self._fdb_seen = self._fdb_seen or add
        self._last_fdb = time.monotonic()
        self._apply(changes, "add_fdb_entries" if add else "remove_fdb_entries")

    def _apply(self, changes: Changes, reason: str) -> None:
        """Tunnel ports made for new endpoints, the changed owners' flows committed in one
        bundle, then ports no longer wanted removed. Under the lock."""
        for ignored in changes.ignored:
            log = LOG.debug if ignored.level == "debug" else LOG.warning
            log("%s: ignored %s", reason, ignored.what)
        owners = set(changes.owners)
        state = self.state
        missing = sorted(e for e in changes.endpoints
                         if e not in state.ofports and state.endpoint_wanted(e))
        try:
            made = self.tunnels.create(missing)
        except Exception as exc:  # noqa: BLE001 - the flows still go in; rewired from memory
            LOG.exception("making tunnel ports to %s failed", [e[1] for e in missing])
            self.error = f"making tunnel ports failed: {exc}"
            made = {}
        if made:
            for endpoint, port in made.items():
                self.port_names[endpoint] = port.name
                if port.ofport:
                    owners |= self.state.set_ofport(endpoint, port.ofport).owners
                else:
                    LOG.error("tunnel port %s to %s: OVS could not open it: %s", port.name,
                              endpoint[1], self.tunnels.errors([port.name]).get(port.name))
        # while another run's flows still forward, its tunnel ports stay (see _take_over)
        unwanted = [] if self._deferred else sorted(
            e for e in changes.endpoints if e in state.ofports and not state.endpoint_wanted(e))
        for endpoint in unwanted:
            owners |= self.state.set_ofport(endpoint, None).owners
        self._set_owners(owners)
        self._commit(reason)
        if unwanted:
            self.tunnels.delete([self.port_names.pop(e) for e in unwanted
                                 if e in self.port_names])

    def _set_owners(self, owners: set[str]) -> None:
        programmer = self.programmer
        if programmer is None:
            return
        for owner in sorted(owners):
            flows = self.state.flows_of(owner)
            if flows is None:
                programmer.remove(owner)
            else:
                programmer.set_flows(owner, flows)

    def _commit(self, reason: str) -> None:
        if self.programmer is None:
            return
        report = self.programmer.apply()
        if report.rejected:
            LOG.error("%s refused the flows of %s (%s): their previous flows stay",
                      self.settings.bridge, sorted(report.rejected), reason)

    def _take_over(self, reason: str) -> None:
        assert self.programmer is not None
        # whatever was learned before (another run's networks, which may have had the VLANs
        # ours have now) goes in the same bundle; it is learned again from the traffic
        self.programmer.purge(tunnel.learned_of(None))
        hand_over = controller_hand_over(self.ovsdb, self.settings.bridge)
        report = self.programmer.reconcile(reason, flush=hand_over is not None, sweep=True,
                                           before_commit=hand_over)
        if report.rejected:
            raise RuntimeError(f"bridge {self.settings.bridge} refused dpagent's flows: "
                               f"{report.rejected}")
        self._deferred = False
        # ports of the previous owner that nobody wants now go with its flows
        stale = sorted(self.port_names.keys() - self.state.wanted_endpoints())
        for endpoint in stale:
            self._set_owners(self.state.set_ofport(endpoint, None).owners)
        if stale:
            self._commit("unused tunnel ports")
            self.tunnels.delete([self.port_names.pop(e) for e in stale])

    def _patch_ports(self) -> tuple[int, int, bool]:
        """(patch-int ofport on br-tun, patch-tun ofport on br-int, connected already)."""
        s = self.settings
        tun, int_, connected = self.patches.ensure_pair(
            NewPatchPort(s.bridge, s.tun_patch_port),
            NewPatchPort(self.integration_bridge, s.int_patch_port))
        return tun, int_, connected

    def _sync_tunnels(self) -> None:
        """tunnel_sync for every configured type not synced yet; retried until it works."""
        control = self.control
        if control is None:
            return
        assert self.settings.local_ip is not None
        for tunnel_type in self.settings.tunnel_types:
            if tunnel_type in self._synced_types:
                continue
            try:
                ips = control.tunnel_sync(self.settings.local_ip, tunnel_type)
            except Exception as exc:  # noqa: BLE001 - retried on the overlay's thread
                LOG.error("tunnel_sync %s from %s failed: %s; retrying", tunnel_type,
                          self.settings.local_ip, exc)
                continue
            self._synced_types.add(tunnel_type)
            if not self.settings.l2_population:
                with self._lock:
                    self._apply(self.state.set_static(tunnel_type, ips),
                                f"tunnel_sync {tunnel_type}")

    def resync(self) -> None:
        """The server may have lost what it knew of us (revived, reconnected)."""
        self._synced_types.clear()
        self._fdb_seen = False
        self._queue(self._sync_tunnels)

    def _locked(self, job: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            with self._lock:
                job()
        return run

    def _queue(self, job: Callable[[], None]) -> None:
        with self._wake:
            self._jobs.append(job)
            self._wake.notify()

    def _notify(self) -> None:
        with self._wake:
            self._wake.notify()

    def _run(self) -> None:
        next_guard = next_retry = time.monotonic()
        while not self._stopping.is_set():
            with self._wake:
                if not self._jobs:
                    self._wake.wait(min(self.guard_interval, self.settle))
                jobs, self._jobs = self._jobs, []
            for job in jobs:  # each takes the lock itself: tunnel_sync must not hold it
                try:
                    job()
                except Exception:  # noqa: BLE001 - one bad job must not end the thread
                    LOG.exception("overlay work failed")
            now = time.monotonic()
            if now >= next_retry:
                if self.error:
                    self._wire("retrying", first=not self._first_done)
                if len(self._synced_types) < len(self.settings.tunnel_types):
                    self._sync_tunnels()
                next_retry = now + self.retry_interval
            self._maybe_take_over(now)
            if now >= next_guard:
                next_guard = now + self.guard_interval
                self._guard()

    def _maybe_take_over(self, now: float) -> None:
        with self._lock:
            if not self._deferred or self._deadline is None:
                return
            quiet = self._fdb_seen and now - self._last_fdb >= self.settle
            no_l2pop = not self.settings.l2_population and \
                len(self._synced_types) == len(self.settings.tunnel_types)
            if quiet or no_l2pop or now >= self._deadline:
                try:
                    self._take_over("taking over br-tun")
                except Exception:  # noqa: BLE001 - tried again at the next turn
                    LOG.exception("taking over %s failed", self.settings.bridge)

    def _guard(self) -> None:
        with self._lock:
            programmer = self.programmer
            if programmer is None or self._deferred:
                return
            try:
                if programmer.switch_was_reset():
                    LOG.warning("bridge %s lost its flows: reinstalling them",
                                self.settings.bridge)
                    programmer.reconcile("switch reset")
            except Exception:  # noqa: BLE001 - e.g. vswitchd restarting
                LOG.debug("checking %s failed", self.settings.bridge, exc_info=True)

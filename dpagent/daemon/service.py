"""The dpagent service: builds the parts from configuration, starts and stops them.

Start order: OVSDB and br-int, the restored local VLANs, the bridge programmer, the agent core
(whose first job is a full synchronisation that reconciles with the flows already on br-int, so
an agent restart changes nothing on a switch that is right), then the notification consumers and
heartbeats, and the status socket. READY=1 goes to systemd after the first full sync.

Stop (SIGTERM) stops heartbeats and consumers first, then the worker; br-int is left exactly as
it is: a stopped agent never takes a working dataplane down.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import oslo_messaging
from oslo_config import cfg
from oslo_service import service as oslo_service

from dpagent.agent.agent import Agent, Settings
from dpagent.agent.dataplane import Dataplane
from dpagent.agent.local_vlan import LocalVlans
from dpagent.agent.ovsdb import Ovsdb
from dpagent.agent.sriov_ports import SriovPorts
from dpagent.agent.sriov_vfs import LibraryVfs
from dpagent.agent.uplinks import HostUplinks, recorded_segments, tunnelled
from dpagent.bridge.ofctl import OfctlTransport
from dpagent.bridge.openflow.transport import OpenFlowTransport
from dpagent.bridge.programmer import BridgeProgrammer
from dpagent.bridge.transport import FlowTransport
from dpagent.daemon import systemd
from dpagent.daemon.launcher import CONFIG_ERROR
from dpagent.daemon.status import StatusServer
from dpagent.daemon.wiring import (
    AgentNotificationHandler,
    RpcCacheControlPlane,
    RpcControlPlane,
    RpcSriovControlPlane,
    RpcTrunkControl,
)
from dpagent.diagnose import rule_counters, switch, tracer
from dpagent.metrics import MetricsServer
from dpagent.overlay.config import options_from_conf, overlay_settings
from dpagent.overlay.manager import Overlay
from dpagent.physnet import PhysicalNetworks
from dpagent.physnet.config import PhysnetConfigError
from dpagent.physnet.segments import recorded_networks
from dpagent.resources.control_plane import PUSHED, ResourcePushes, ResourcesApi, push_topic
from dpagent.rpc import topics
from dpagent.rpc.admin_state import AdminStateApi
from dpagent.rpc.consumers import NotificationConsumers
from dpagent.rpc.notifications import TRUNK_PUSHES, overlay_catalog, resource_push_catalog
from dpagent.rpc.plugin_api import PluginApi
from dpagent.rpc.reconnects import Coalesced
from dpagent.rpc.state_report import StateReporter, sriov_agent_configurations
from dpagent.rpc.transport import make_transport
from dpagent.rpc.trunks import TrunkApi
from dpagent.trunk.manager import TrunkBridges
from dpagent.trunk.naming import TRUNK_BRIDGE_PREFIX
from dpagent.trunk.switch import TrunkSwitch
from dpagent.version import version
from flows.cookies import Kind
from sriov import NetlinkLinkOps, SriovConfigError, SriovSettings

LOG = logging.getLogger(__name__)



class StartConfigError(Exception):
    """A configured thing the start found unusable (the status socket's path, say)."""


START_CONFIG_ERRORS = (StartConfigError, PhysnetConfigError, SriovConfigError, cfg.Error,
                       oslo_messaging.InvalidTransportURL, oslo_messaging.DriverLoadFailure)
"""Start-up failures that are mistakes of the configuration: trying again cannot help. The
daemon checks for them before it forks (dpagent.daemon.preflight); these are the cases only
a start finds, or that changed in between."""


def ovs_rundir(ovsdb_connection: str) -> str:
    """Where the bridges' management sockets are: beside a unix: OVSDB socket, else the
    OVS_RUNDIR environment, else Debian's default."""
    if ovsdb_connection.startswith("unix:"):
        return os.path.dirname(ovsdb_connection[len("unix:"):])
    return os.environ.get("OVS_RUNDIR", "/var/run/openvswitch")


def flow_transport(conf: cfg.ConfigOpts, bridge: str) -> FlowTransport:
    """OpenFlow over the bridge's management socket ("native"), or ovs-ofctl."""
    rundir = ovs_rundir(conf.ovs.ovsdb_connection)
    if conf.ovs.of_interface == "native":
        return OpenFlowTransport(os.path.join(rundir, f"{bridge}.mgmt"),
                                 timeout=conf.ovs.of_request_timeout)
    return OfctlTransport(bridge, env=dict(os.environ, OVS_RUNDIR=rundir),
                          timeout=conf.ovs.of_request_timeout)


class AgentService(oslo_service.ServiceBase):  # type: ignore[misc]
    """The agent as an oslo.service service.

    Import this module only after :func:`dpagent.cmd.agent.select_backend`: oslo.service binds
    ``ServiceBase`` to the chosen backend when first imported."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf
        self._stopped = threading.Event()
        self.agent: Agent | None = None
        self.sriov: SriovPorts | None = None  # the SR-IOV side, when configured
        self.overlay: Overlay | None = None  # br-tun, when [agent] tunnel_types is set
        self.trunks: TrunkBridges | None = None  # trunk bridges (VLAN-aware VMs)
        self.cache_control: RpcCacheControlPlane | None = None  # [agent] rpc_mode = cache
        self._reconnected = Coalesced(self._resync)
        """a consumer of the OVS side reconnected: its casts meanwhile are lost"""
        self._sriov_reconnected: Coalesced | None = None
        self.admin_state: AdminStateApi | None = None  # [agent] admin_state_timeout > 0
        self.metrics: MetricsServer | None = None  # [agent] metrics_listen
        self.started_at = time.time()
        self._last_problem: str | None = None
        self.exit_status = 0
        """The daemon's exit status, when the service ended it itself."""
        self._starting: str | None = "the start to begin"
        """What start() waits for now; None once it has returned."""

    # -- oslo.service ServiceBase --------------------------------------------------------------

    def start(self) -> None:
        """Build and start the parts; a configuration error ends the worker with
        CONFIG_ERROR, which makes the master stop rather than fork it again (see launcher)."""
        try:
            self._start()
        except START_CONFIG_ERRORS as exc:
            LOG.error("cannot start: %s", exc)
            self.exit_status = CONFIG_ERROR  # the eventlet backend runs it in this process
            raise SystemExit(CONFIG_ERROR) from None

    def _start(self) -> None:
        conf = self.conf
        bridge = conf.ovs.integration_bridge
        # first: it answers while the rest starts (or waits for the broker)
        self.status_server = StatusServer(conf.agent.status_socket, self.status,
                                          {"trace": self.trace, "rules": self.rules})
        try:
            self.status_server.start()
        except OSError as exc:
            raise StartConfigError(f"[agent] status_socket {conf.agent.status_socket}: "
                                   f"{exc.strerror or exc}") from exc
        self.metrics = self._start_metrics()
        # ensure_bridge waits for ovs-vswitchd too (OVSDB answers a bridge's creation once
        # vswitchd has made it): say both
        self._starting = (f"the integration bridge {bridge}: OVSDB at "
                          f"{conf.ovs.ovsdb_connection} and ovs-vswitchd")
        self.ovsdb = Ovsdb(conf.ovs.ovsdb_connection, conf.ovs.ovsdb_timeout)
        self.ovsdb.ensure_bridge(bridge, conf.ovs.datapath_type)
        recorded = self.ovsdb.port_other_config(bridge)
        vlans = LocalVlans()
        vlans.restore(recorded)
        programmer = self._programmer(bridge)
        self.physnets = PhysicalNetworks(
            self.ovsdb, conf.ovs.bridge_mappings or {}, bridge, self._programmer,
            use_veth_interconnection=conf.agent.use_veth_interconnection,
            on_uplinks_changed=self._uplinks_changed)
        # hitless restart: the uplinks keep passing the networks the ports still use
        self.physnets.set_networks(recorded_networks(recorded))
        self._starting = "the physical bridges"
        self.physnets.setup()
        self.overlay = self._build_overlay(recorded)
        self._starting = f"the message broker at {_brokers(conf)}"
        self.transport = make_transport(conf)
        if self.metrics is not None:  # before anything calls or consumes on it
            self.metrics.watch_transport(self.transport)
        self.plugin = PluginApi.from_conf(self.transport, conf)
        if self.overlay is not None:
            self.overlay.control = self.plugin
        settings = Settings(integration_bridge=bridge, device_retries=conf.agent.device_retries,
                            audit_interval=conf.agent.audit_interval,
                            rescan_interval=conf.agent.audit_interval)
        control: RpcControlPlane | RpcCacheControlPlane = RpcControlPlane(self.plugin)
        if conf.agent.rpc_mode == "cache":
            control = self.cache_control = RpcCacheControlPlane(
                ResourcesApi(self.transport, timeout=conf.rpc_response_timeout), control,
                conf.agent.host)
        self.agent = Agent(settings, self.ovsdb, control,
                           Dataplane(programmer), vlans, on_first_sync=self._first_sync,
                           uplinks=HostUplinks(self.physnets, self.overlay))
        self.agent.wired_before = {name for name, config in recorded.items()
                                   if config.get("net_uuid")}
        if self.metrics is not None:
            self.agent.on_audit = self.metrics.audits_of(bridge)
        if conf.agent.drop_flows_on_start:
            self.agent.flush_on_first_sync = True
        self.ovsdb.watch(self.agent.vif_event, self._ovsdb_reconnected, bridge)
        trunks = self.trunks = self._build_trunks() if conf.ovs.trunk_enabled else None
        if conf.sriov.physical_device_mappings:
            self._build_sriov()
        self.notifications = AgentNotificationHandler(self.agent, self.sriov, conf.agent.host)
        self.consumers = NotificationConsumers(self.transport, conf.agent.host,
                                               self.notifications,
                                               on_reconnect=self._reconnected)
        if conf.agent.admin_state_timeout > 0:
            self.admin_state = AdminStateApi(self.transport, conf.agent.host,
                                             conf.agent.admin_state_timeout)
        if self.overlay is not None:
            self.overlay_consumers = NotificationConsumers(
                self.transport, conf.agent.host, self.overlay,
                catalog=overlay_catalog(self.overlay.settings.l2_population),
                on_reconnect=self._reconnected)
        if self.cache_control is not None:
            self.resource_consumers = NotificationConsumers(
                self.transport, conf.agent.host, ResourcePushes(self.cache_control, self.agent),
                catalog=resource_push_catalog({t: push_topic(t) for t in PUSHED}),
                on_reconnect=self._reconnected)
        self.reporter = StateReporter.from_conf(self.transport, conf,
                                                state_callback=self._state_extras,
                                                on_resync=self._resync,
                                                health=self._health)
        if self.cache_control is not None:
            # before the first pulls: a change between a pull and the subscription is lost
            self.resource_consumers.start()
        self._starting = "the server's answer to get_admin_state"
        self._learn_admin_state()  # before the first sync wires anything
        self.agent.start()
        if trunks is not None:
            self.trunk_consumers.start()
            trunks.start()  # its first job pulls the trunks of the bridges there
        if self.sriov is not None:
            self.sriov.start()
            self.sriov_vfs.watch(self.sriov.inventory_changed)
        self.consumers.start()
        if self.overlay is not None:
            self.overlay_consumers.start()
            self.overlay.start()  # tunnel_sync after its casts are listened to
        self.reporter.start()
        if self.sriov is not None:
            self.sriov_consumers.start()
            self.sriov_reporter.start()
        self._starting = None
        systemd.notify("STATUS=synchronising with the control plane")
        LOG.info("dpagent %s started on host %s, bridge %s", version(), conf.agent.host,
                 bridge)

    def stop(self, graceful: bool = False) -> None:
        """Stop talking to the control plane and stop working; leave br-int as it is.

        The consumers of both sides stop together, before the parts their handlers feed; the
        transport closes last, once nothing can make a call any more."""
        systemd.notify("STOPPING=1")
        for part in ("reporter", "sriov_reporter", "consumers", "sriov", "sriov_vfs"):
            if getattr(self, part, None) is None:
                continue
            try:
                if part == "consumers":
                    NotificationConsumers.stop_together(
                        [self.consumers, getattr(self, "sriov_consumers", None),
                         getattr(self, "overlay_consumers", None),
                         getattr(self, "trunk_consumers", None),
                         getattr(self, "resource_consumers", None)])
                    for pending in (self._reconnected, self._sriov_reconnected):
                        if pending is not None:
                            pending.cancel()
                else:
                    getattr(self, part).stop()
            except Exception:  # noqa: BLE001 - stop everything we can
                LOG.exception("stopping %s failed", part)
        if self.agent is not None:
            self.agent.stop()
        if self.trunks is not None:
            self.trunks.stop()
        for part in ("overlay", "physnets", "ovsdb", "status_server", "metrics"):
            if getattr(self, part, None) is None:  # a start that failed before it
                continue
            try:
                getattr(self, part).stop()
            except Exception:  # noqa: BLE001
                LOG.exception("stopping %s failed", part)
        if getattr(self, "transport", None) is not None:
            try:
                self.transport.cleanup()
            except Exception:  # noqa: BLE001
                LOG.exception("closing the RPC transport failed")
        self._stopped.set()
        LOG.info("dpagent stopped; the dataplane was left as it is")

    def wait(self) -> None:
        self._stopped.wait()

    def reset(self) -> None:
        """SIGHUP: oslo.config has re-read the files (mutable options only; oslo.log applied
        ``debug`` and the logging configuration itself); apply the agent's mutable options.
        Nothing restarts: ports, flows and connections stay as they are."""
        agent = self.conf.agent
        if self.agent is not None:
            self.agent.settings.audit_interval = agent.audit_interval
            self.agent.settings.rescan_interval = agent.audit_interval
            self.agent.settings.device_retries = agent.device_retries
        if getattr(self, "reporter", None) is not None:
            self.reporter.set_interval(agent.report_interval)
        LOG.info("configuration reloaded: report_interval %s s, audit_interval %s s, "
                 "device_retries %s, debug %s", agent.report_interval, agent.audit_interval,
                 agent.device_retries, self.conf.debug)
        self.conf.log_opt_values(LOG, logging.DEBUG)  # the whole effective configuration

    def _build_overlay(self, recorded: dict[str, dict[str, str]]) -> Overlay | None:
        """br-tun and its tunnels, when [agent] tunnel_types asks for them; the tunnelled
        networks the ports still use (recorded on br-int) stay carried across a restart."""
        conf = self.conf
        settings, warnings = overlay_settings(options_from_conf(conf))
        for warning in warnings:
            LOG.warning("%s", warning)
        if not settings.enabled:
            return None
        self._starting = f"the tunnel bridge {settings.bridge}"
        overlay = Overlay(self.ovsdb, settings, conf.ovs.integration_bridge,
                          conf.ovs.datapath_type, self._programmer)
        overlay.on_uplinks_changed = lambda: self._uplinks_changed(frozenset({"overlay"}))
        overlay.set_networks(tunnelled(recorded_segments(recorded)))
        overlay.setup()
        return overlay

    def _start_metrics(self) -> MetricsServer | None:
        """The Prometheus endpoint, if [agent] metrics_listen asks for one (dpagent.metrics)."""
        listen = self.conf.agent.metrics_listen
        if not listen:
            return None
        metrics = MetricsServer(listen, self.status,
                                integration_bridge=self.conf.ovs.integration_bridge,
                                host=self.conf.agent.host,
                                rule_counters=self.rule_counts
                                if self.conf.agent.metrics_rule_counters else None)
        try:
            metrics.start()
        except OSError as exc:
            raise StartConfigError(f"[agent] metrics_listen {listen}: "
                                   f"{exc.strerror or exc}") from exc
        return metrics

    def _programmer(self, bridge: str) -> BridgeProgrammer:
        """A fresh programmer of ``bridge``; its bundles and resets counted, with metrics."""
        return BridgeProgrammer(flow_transport(self.conf, bridge),
                                self.metrics.bridge(bridge) if self.metrics is not None
                                else None)

    def _build_trunks(self) -> TrunkBridges:
        """Trunk bridges (VLAN-aware VMs on OVS ports): seen by OVSDB events, told of
        subports by pushes, told by the agent core when their ports are wired."""
        conf = self.conf
        assert self.agent is not None
        trunk_api = TrunkApi(self.transport, conf.agent.host, timeout=conf.rpc_response_timeout)
        trunks = TrunkBridges(TrunkSwitch(self.ovsdb.api, conf.ovs.integration_bridge),
                              RpcTrunkControl(trunk_api),
                              parent_timeout=conf.ovs.trunk_parent_timeout)
        self.agent.on_port_states = trunks.port_states
        self.ovsdb.watch_bridges(TRUNK_BRIDGE_PREFIX, trunks.bridge_changed,
                                 trunks.vif_elsewhere)
        self.trunk_consumers = NotificationConsumers(self.transport, conf.agent.host,
                                                     trunks, catalog=TRUNK_PUSHES,
                                                     on_reconnect=self._reconnected)
        return trunks

    def _learn_admin_state(self) -> None:
        """Take the administrative state the server's agents API holds (neutron-dpagent), if
        it says: set while the agent was away, its ``agent_updated`` cast is lost."""
        if self.admin_state is None or self.agent is None:
            return
        up = self.admin_state.fetch(topics.AGENT_TYPE_OVS)
        if up is not None and up != self.agent.admin_state_up:
            LOG.info("the server says this agent is administratively %s",
                     "up" if up else "down (cordoned)")
            self.notifications.on_agent_updated(up)

    def _resync(self, reason: str) -> None:
        self._learn_admin_state()  # its change may have been lost too
        if self.cache_control is not None:  # pushes may have been lost meanwhile
            self.cache_control.resync()
        if self.agent is not None:
            self.agent.resync(reason)
        if self.trunks is not None:
            self.trunks.resync(reason)
        if self.overlay is not None:
            self.overlay.resync()

    def _build_sriov(self) -> None:
        """The SR-IOV side: VFs of the mapped PFs, direct ports, trunk pushes, and its own
        agent record ('NIC Switch agent'), as neutron's SR-IOV mechanism driver expects."""
        conf = self.conf
        settings = SriovSettings.from_options(
            conf.sriov.physical_device_mappings, conf.sriov.exclude_devices,
            conf.sriov.driver_overrides, conf.sriov.sysfs_root)
        self.sriov_vfs = LibraryVfs(settings, NetlinkLinkOps())
        trunks = TrunkApi(self.transport, conf.agent.host, timeout=conf.rpc_response_timeout)
        self.sriov = SriovPorts(RpcSriovControlPlane(self.plugin, trunks), self.sriov_vfs,
                                device_retries=conf.agent.device_retries)
        self._sriov_reconnected = Coalesced(self.sriov.resync)
        self.sriov_consumers = NotificationConsumers(self.transport, conf.agent.host,
                                                     self.sriov, catalog=TRUNK_PUSHES,
                                                     on_reconnect=self._sriov_reconnected)
        self.sriov_reporter = StateReporter(
            self.transport, conf.agent.host, interval=conf.agent.report_interval,
            timeout=conf.rpc_response_timeout,
            configurations=sriov_agent_configurations(self.sriov_vfs.device_mappings()),
            state_callback=self._sriov_state_extras, on_resync=self.sriov.resync,
            agent_type=topics.AGENT_TYPE_NIC_SWITCH)

    # -- callbacks ---------------------------------------------------------------------------------

    def _uplinks_changed(self, physnets: frozenset[str]) -> None:
        if self.agent is not None:
            self.agent.resync(f"physical bridges changed: {', '.join(sorted(physnets))}")

    def _ovsdb_reconnected(self) -> None:
        self.physnets.rewire("reconnected to OVSDB")
        if self.agent is not None:
            self.agent.resync("reconnected to OVSDB")
        if self.trunks is not None:
            self.trunks.resync("reconnected to OVSDB")

    def _first_sync(self) -> None:
        systemd.notify("READY=1\nSTATUS=synchronised")
        LOG.info("first full synchronisation done: ready")

    def _health(self) -> str | None:
        """Why the agent must not look alive to the server now (and to systemd's status)."""
        problem = self.agent.switch_problem if self.agent is not None else None
        if problem != self._last_problem:
            self._last_problem = problem
            systemd.notify(f"STATUS={problem}" if problem else "STATUS=synchronised")
        return problem

    def _state_extras(self) -> dict[str, Any]:
        agent = self.agent
        if agent is None:
            return {}
        status = agent.status()
        extras = {"devices": sum(status["ports"].values()),
                  "admin_state_up": agent.admin_state_up,
                  "flows_installed": status["flows_installed"]}
        if self.sriov is not None:
            extras["sriov_device_mappings"] = self.sriov_vfs.device_mappings()
        return extras

    def _sriov_state_extras(self) -> dict[str, Any]:
        if self.sriov is None:
            return {}
        return {"devices": sum(self.sriov.status()["ports"].values()),
                "admin_state_up": self.sriov.admin_state_up,
                "vfs_managed": self.sriov_vfs.vf_count()}

    def status(self) -> dict[str, Any]:
        snapshot: dict[str, Any] = self.agent.status() if self.agent else {}
        if getattr(self, "reporter", None) is not None:
            snapshot["heartbeat"] = _heartbeat(self.reporter)
        snapshot["waiting_for"] = self._waiting_for()
        # resyncs after consumers reconnected (their queues were lost meanwhile)
        snapshot["consumer_reconnects"] = self._reconnected.fired
        snapshot["started_at"] = self.started_at
        snapshot["pid"] = os.getpid()
        if getattr(self, "physnets", None) is not None:
            snapshot["physical_networks"] = self.physnets.status()
        if self.overlay is not None:
            snapshot["overlay"] = self.overlay.status()
        if self.trunks is not None:
            snapshot["trunks"] = self.trunks.status()
        if self.cache_control is not None:
            snapshot["resources"] = self.cache_control.status()
        if self.sriov is not None:
            snapshot["sriov"] = {**self.sriov.status(),
                                 "device_mappings": self.sriov_vfs.device_mappings(),
                                 "vfs_managed": self.sriov_vfs.vf_count(),
                                 "heartbeat": _heartbeat(self.sriov_reporter)}
        return snapshot

    def trace(self, request: dict[str, Any]) -> dict[str, Any]:
        """``dpagent-ctl trace``: a packet through br-int, explained (dpagent.diagnose)."""
        if self.agent is None or not self.agent.synced_once:
            return {"error": "the agent has not synchronised yet: nothing to trace"}
        appctl = switch.vswitchd_appctl(ovs_rundir(self.conf.ovs.ovsdb_connection))
        names = self.cache_control.names if self.cache_control is not None else None
        return tracer.trace(tracer.snapshot_of(self.agent, names), appctl, request)

    def rule_counts(self) -> list[rule_counters.RuleCount]:
        """Packets and bytes per security-group rule of the wired ports (from the switch)."""
        if self.agent is None:
            return []
        compiler = self.agent.dataplane.compiler
        model, owners, meanings = compiler.model, compiler.owners.copy(), \
            compiler.meanings.copy()
        rundir = ovs_rundir(self.conf.ovs.ovsdb_connection)
        # the datapath's flows pass their counts on to the OpenFlow flows when revalidated:
        # without a pass now, the last second's packets would be missing
        switch.vswitchd_appctl(rundir)(["revalidator/wait"])
        text = switch.dump_flows_of_kinds(rundir,
                                          self.conf.ovs.integration_bridge,
                                          [Kind.RULE, Kind.REMOTE_GROUP])
        return rule_counters.count_rules(model, owners, meanings,
                                         rule_counters.parse_flow_stats(text))

    def rules(self, request: dict[str, Any]) -> dict[str, Any]:
        """``dpagent-ctl rules``: the counts, for the ports/groups asked (by id or name)."""
        if self.agent is None or not self.agent.synced_once:
            return {"error": "the agent has not synchronised yet: no rules to count"}
        try:
            rows = self.rule_counts()
        except switch.SwitchCommandError as exc:
            return {"error": str(exc)}
        ids = {r.port_id for r in rows} | {r.group_id for r in rows}
        names = self.cache_control.names(ids) if self.cache_control is not None else {}
        port, group = request.get("port"), request.get("group")
        chosen = [r for r in rows
                  if (not port or port in (r.port_id, names.get(r.port_id))
                      or r.port_id.startswith(str(port)))
                  and (not group or group in (r.group_id, names.get(r.group_id))
                       or r.group_id.startswith(str(group)))]
        return {"rules": [r.as_dict() for r in chosen], "names": names}

    def _waiting_for(self) -> str | None:
        """What keeps the agent from being ready, for ``dpagent-ctl status``; None if ready."""
        if self._starting is not None:
            return self._starting
        agent = self.agent
        if agent is None or agent.synced_once:
            return None
        problem = agent.control_plane_problem
        return "the first full synchronisation with the control plane" + (
            f" (last try: {problem})" if problem else "")


def _brokers(conf: cfg.ConfigOpts) -> str:
    """The transport URL's hosts, without credentials (they go to ``dpagent-ctl status``)."""
    hosts = oslo_messaging.TransportURL.parse(conf, conf.transport_url).hosts
    return ", ".join(f"{h.hostname}:{h.port or 5672}" for h in hosts) or "?"


def _heartbeat(reporter: StateReporter) -> dict[str, Any]:
    """A reporter's last result for the status socket."""
    report = reporter.status()
    return {"last_result": report.last_result, "last_time": report.last_success,
            "last_error": report.last_error, "withheld": report.withheld}

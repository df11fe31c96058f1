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

from oslo_config import cfg
from oslo_service import service as oslo_service

from dpagent.agent.agent import Agent, Settings
from dpagent.agent.dataplane import Dataplane
from dpagent.agent.local_vlan import LocalVlans
from dpagent.agent.ovsdb import Ovsdb
from dpagent.bridge.ofctl import OfctlTransport
from dpagent.bridge.openflow.transport import OpenFlowTransport
from dpagent.bridge.programmer import BridgeProgrammer
from dpagent.bridge.transport import FlowTransport
from dpagent.daemon import systemd
from dpagent.daemon.status import StatusServer
from dpagent.daemon.wiring import AgentNotificationHandler, RpcControlPlane
from dpagent.physnet import PhysicalNetworks
from dpagent.rpc.consumers import NotificationConsumers
from dpagent.rpc.plugin_api import PluginApi
from dpagent.rpc.state_report import StateReporter
from dpagent.rpc.transport import make_transport

LOG = logging.getLogger(__name__)


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
        self.started_at = time.time()

    # -- oslo.service ServiceBase --------------------------------------------------------------

    def start(self) -> None:
        conf = self.conf
        bridge = conf.ovs.integration_bridge
        self.ovsdb = Ovsdb(conf.ovs.ovsdb_connection, conf.ovs.ovsdb_timeout)
        self.ovsdb.ensure_bridge(bridge, conf.ovs.datapath_type)
        vlans = LocalVlans()
        vlans.restore(self.ovsdb.port_other_config(bridge))
        programmer = BridgeProgrammer(flow_transport(conf, bridge))
        self.physnets = PhysicalNetworks(
            self.ovsdb, conf.ovs.bridge_mappings or {}, bridge,
            lambda phys: BridgeProgrammer(flow_transport(conf, phys)),
            use_veth_interconnection=conf.agent.use_veth_interconnection,
            on_uplinks_changed=self._uplinks_changed)
        self.physnets.setup()
        self.transport = make_transport(conf)
        self.plugin = PluginApi.from_conf(self.transport, conf)
        settings = Settings(integration_bridge=bridge, device_retries=conf.agent.device_retries,
                            audit_interval=conf.agent.audit_interval,
                            rescan_interval=conf.agent.audit_interval)
        self.agent = Agent(settings, self.ovsdb, RpcControlPlane(self.plugin),
                           Dataplane(programmer), vlans, on_first_sync=self._first_sync,
                           uplinks=self.physnets)
        if conf.agent.drop_flows_on_start:
            self.agent.flush_on_first_sync = True
        self.ovsdb.watch(self.agent.vif_event, self._ovsdb_reconnected)
        self.consumers = NotificationConsumers(self.transport, conf.agent.host,
                                               AgentNotificationHandler(self.agent))
        self.reporter = StateReporter.from_conf(self.transport, conf,
                                                state_callback=self._state_extras,
                                                on_resync=self.agent.resync)
        self.status_server = StatusServer(conf.agent.status_socket, self.status)
        self.agent.start()
        self.consumers.start()
        self.reporter.start()
        self.status_server.start()
        systemd.notify("STATUS=synchronising with the control plane")
        LOG.info("dpagent started on host %s, bridge %s", conf.agent.host, bridge)

    def stop(self, graceful: bool = False) -> None:
        """Stop talking to the control plane and stop working; leave br-int as it is."""
        systemd.notify("STOPPING=1")
        for part in ("reporter", "consumers"):
            try:
                getattr(self, part).stop()
            except Exception:  # noqa: BLE001 - stop everything we can
                LOG.exception("stopping %s failed", part)
        if self.agent is not None:
            self.agent.stop()
        for part in ("physnets", "ovsdb", "status_server"):
            try:
                getattr(self, part).stop()
            except Exception:  # noqa: BLE001
                LOG.exception("stopping %s failed", part)
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

    # -- callbacks ---------------------------------------------------------------------------------

    def _uplinks_changed(self, physnets: frozenset[str]) -> None:
        if self.agent is not None:
            self.agent.resync(f"physical bridges changed: {', '.join(sorted(physnets))}")

    def _ovsdb_reconnected(self) -> None:
        self.physnets.rewire("reconnected to OVSDB")
        if self.agent is not None:
            self.agent.resync("reconnected to OVSDB")

    def _first_sync(self) -> None:
        systemd.notify("READY=1\nSTATUS=synchronised")
        LOG.info("first full synchronisation done: ready")

    def _state_extras(self) -> dict[str, Any]:
        agent = self.agent
        if agent is None:
            return {}
        status = agent.status()
        return {"devices": sum(status["ports"].values()),
                "admin_state_up": agent.admin_state_up,
                "flows_installed": status["flows_installed"]}

    def status(self) -> dict[str, Any]:
        snapshot: dict[str, Any] = self.agent.status() if self.agent else {}
        report = self.reporter.status() if getattr(self, "reporter", None) else None
        if report is not None:
            snapshot["heartbeat"] = {"last_result": report.last_result,
                                     "last_time": report.last_success,
                                     "last_error": report.last_error}
        snapshot["started_at"] = self.started_at
        snapshot["pid"] = os.getpid()
        if getattr(self, "physnets", None) is not None:
            snapshot["physical_networks"] = self.physnets.status()
        return snapshot

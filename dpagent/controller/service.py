"""dpagent-controller as an oslo.service service: store, state, RPC servers, HTTP API.

Start: open (or create and upgrade) the database, apply the topology file if one is
configured (a refused file is logged and the stored topology kept: a typo must not take the
control plane down), connect to the broker and serve the RPC endpoints, then the API.
SIGHUP re-reads the topology file and applies the difference.
"""

from __future__ import annotations

import logging
import threading

from oslo_config import cfg
from oslo_service import service as oslo_service

from dpagent.controller.api import ApiServer
from dpagent.controller.faults import FaultInjector
from dpagent.controller.notifier import Notifier
from dpagent.controller.rpc_server import RpcServer
from dpagent.controller.state import ControllerState
from dpagent.controller.store import Store
from dpagent.controller.topology import TopologyError, load_file
from dpagent.rpc.transport import make_transport

LOG = logging.getLogger(__name__)


class ControllerService(oslo_service.ServiceBase):  # type: ignore[misc]
    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf
        self._stopped = threading.Event()
        self.store: Store | None = None
        self.rpc: RpcServer | None = None
        self.api: ApiServer | None = None

    def start(self) -> None:
        opts = self.conf.controller
        self.store = Store(opts.database)
        self.transport = make_transport(self.conf)
        self.notifier = Notifier(self.transport)
        self.state = ControllerState(self.store, opts.agent_down_time, self.notifier.send)
        self.load_topology_file()
        faults = FaultInjector(opts.rpc_fault_rate, opts.rpc_fault_kinds, opts.rpc_fault_seed)
        if faults.rate:
            LOG.warning("fault injection is ON: %.0f%% of RPC replies fail (%s)",
                        faults.rate * 100, ", ".join(faults.kinds))
        self.rpc = RpcServer(self.transport, self.state, faults=faults)
        self.rpc.start()
        self.api = ApiServer(self.state, opts.api_host, opts.api_port)
        self.api.start()
        LOG.info("dpagent-controller started: database %s (schema %d), API %s",
                 opts.database, self.store.schema_version, self.api.url)

    def load_topology_file(self) -> None:
        path = self.conf.controller.topology
        if not path:
            return
        try:
            self.state.apply(load_file(path))
        except (OSError, TopologyError) as exc:
            LOG.error("topology %s not applied, keeping the stored one: %s", path, exc)

    def stop(self, graceful: bool = False) -> None:
        if self.api is not None:
            self.api.stop()
        if self.rpc is not None:
            self.rpc.stop()
        if getattr(self, "transport", None) is not None:
            self.transport.cleanup()
        if self.store is not None:
            self.store.close()
        self._stopped.set()
        LOG.info("dpagent-controller stopped")

    def wait(self) -> None:
        self._stopped.wait()

    def reset(self) -> None:
        """SIGHUP: apply the topology file again (only the difference is notified)."""
        LOG.info("SIGHUP: re-reading the topology")
        self.load_topology_file()

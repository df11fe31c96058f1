"""neutron-server's agent-facing RPC endpoints, answered from the controller's state.

Same topics, namespaces and endpoint split as neutron 29 (CONTRACT.md section 1): on
``q-plugin`` an ML2 endpoint at 1.9, a security-group endpoint at 1.3 and a resources-pull
endpoint at 1.1 -- so a call sent at a higher minor than its endpoint has fails with
``UnsupportedVersion`` here as it would there -- plus the agents endpoint (1.4), which is also
alone on ``q-reports-plugin``; the trunk skeleton (1.0) on ``trunk`` in namespace ``trunk``.
Every endpoint method only unpacks its kwargs and asks :class:`ControllerState`.
"""

from __future__ import annotations

import logging
from typing import Any

import oslo_messaging
from oslo_messaging.rpc import server as rpc_server

from dpagent.controller.faults import FaultInjector, FaultyDispatcher
from dpagent.controller.state import ControllerState
from dpagent.rpc import topics
from dpagent.rpc.transport import stop_servers

LOG = logging.getLogger(__name__)

TRUNK_TOPIC = "trunk"
TRUNK_NAMESPACE = "trunk"


class _Endpoint:
    def __init__(self, state: ControllerState) -> None:
        self.state = state


class AgentCallbacks(_Endpoint):
    """neutron.db.agents_db.AgentExtRpcCallback 1.4."""

    target = oslo_messaging.Target(version=topics.REPORTS_VERSION)

    def has_alive_neutron_server(self, ctxt: Any, /) -> bool:
        return True

    def report_state(self, ctxt: Any, /, agent_state: dict[str, Any], time: str) -> Any:
        return self.state.report_state(agent_state, time)


class AdminStateCallbacks(_Endpoint):
    """neutron-dpagent's ``get_admin_state`` (topic ``dpagent-plugin``), which the controller
    answers as the extension does: an agent restarted while cordoned stays cordoned."""

    target = oslo_messaging.Target(version=topics.ADMIN_STATE_VERSION)

    def get_admin_state(self, ctxt: Any, /, host: str, agent_type: str) -> dict[str, Any]:
        agent = self.state.agents.find(agent_type, host)
        return {"admin_state_up": agent.admin_state_up if agent is not None else None}


class PluginCallbacks(_Endpoint):
    """neutron.plugins.ml2.rpc.RpcCallbacks 1.9 (what an L2 agent uses)."""

    target = oslo_messaging.Target(version="1.9")

    def get_devices_details_list_and_failed_devices(self, ctxt: Any, /, devices: list[str],
                                                    agent_id: str, host: str) -> Any:
        return {"devices": self.state.devices_details(devices, host), "failed_devices": []}

    def get_devices_details_list(self, ctxt: Any, /, devices: list[str], agent_id: str,
                                 host: str) -> Any:
        return self.state.devices_details(devices, host)

    def get_device_details(self, ctxt: Any, /, device: str, agent_id: str, host: str) -> Any:
        return self.state.devices_details([device], host)[0]

    def update_device_list(self, ctxt: Any, /, devices_up: list[str], devices_down: list[str],
                           agent_id: str, host: str, refresh_tunnels: bool = False) -> Any:
        return self.state.update_devices(devices_up, devices_down, host)

    def update_device_up(self, ctxt: Any, /, device: str, agent_id: str, host: str,
                         refresh_tunnels: bool = False) -> None:
        self.state.update_devices([device], [], host)

    def update_device_down(self, ctxt: Any, /, device: str, agent_id: str, host: str) -> Any:
        return self.state.update_devices([], [device], host)["devices_down"][0]

    def get_network_details(self, ctxt: Any, /, network: str, agent_id: str, host: str) -> Any:
        return self.state.network_details(network)

    def get_ports_by_vnic_type_and_host(self, ctxt: Any, /, vnic_type: str, host: str) -> Any:
        return self.state.ports_by_vnic_type_and_host(vnic_type, host)


class SecurityGroupCallbacks(_Endpoint):
    """neutron's SecurityGroupServerRpcCallback 1.3."""

    target = oslo_messaging.Target(version=topics.SECURITY_GROUP_INFO_VERSION)

    def security_group_info_for_devices(self, ctxt: Any, /, devices: list[str],
                                        call_version: str | None = None) -> Any:
        return self.state.security_group_info(devices, call_version)

    def security_group_rules_for_devices(self, ctxt: Any, /, devices: list[str]) -> Any:
        return self.state.security_group_rules(devices)


class ResourcesPullCallbacks(_Endpoint):
    """neutron's ResourcesPullRpcCallback 1.1: ``pull`` of a Trunk by its parent port, and
    ``bulk_pull`` of the objects a cache-backed agent keeps."""

    target = oslo_messaging.Target(version="1.1")

    def pull(self, ctxt: Any, /, resource_type: str, version: str, resource_id: str) -> Any:
        return self.state.pull(resource_type, resource_id)

    def bulk_pull(self, ctxt: Any, /, resource_type: str, version: str,
                  filter_kwargs: dict[str, Any]) -> Any:
        return self.state.bulk_pull(resource_type, filter_kwargs)


class TrunkSkeleton(_Endpoint):
    """neutron.services.trunk.rpc.server.TrunkSkeleton 1.0 (topic and namespace ``trunk``)."""

    target = oslo_messaging.Target(version="1.0", namespace=TRUNK_NAMESPACE)

    def update_subport_bindings(self, ctxt: Any, /, subports: list[dict[str, Any]]) -> Any:
        return self.state.update_subport_bindings(subports)

    def update_trunk_status(self, ctxt: Any, /, trunk_id: str, status: str) -> None:
        self.state.update_trunk_status(trunk_id, status)


class RpcServer:
    """The controller's RPC servers on one transport; ``faults`` may make replies fail."""

    def __init__(self, transport: oslo_messaging.Transport, state: ControllerState, *,
                 server_name: str = "dpagent-controller",
                 faults: FaultInjector | None = None) -> None:
        self.transport = transport
        self.state = state
        self.server_name = server_name
        self.faults = faults or FaultInjector(0.0)
        self._servers: list[oslo_messaging.MessageHandlingServer] = []

    def endpoints(self) -> dict[str, list[object]]:
        agent = AgentCallbacks(self.state)
        return {
            topics.REPORTS: [agent],
            topics.PLUGIN: [PluginCallbacks(self.state), SecurityGroupCallbacks(self.state),
                            ResourcesPullCallbacks(self.state), agent],
            TRUNK_TOPIC: [TrunkSkeleton(self.state)],
            topics.ADMIN_STATE: [AdminStateCallbacks(self.state)],
        }

    def start(self) -> None:
        """Declare the queues and start serving (blocks while the broker is unreachable)."""
        try:
            for topic, endpoints in self.endpoints().items():
                target = oslo_messaging.Target(topic=topic, server=self.server_name)
                server = rpc_server.RPCServer(self.transport, target,
                                              FaultyDispatcher(endpoints, self.faults))
                server.start()
                self._servers.append(server)
        except BaseException:
            self.stop()
            raise
        LOG.info("serving %s", ", ".join(self.endpoints()))

    def stop(self, timeout: float | None = None) -> bool:
        servers, self._servers = self._servers, []
        stopped = stop_servers(servers, timeout)
        if self.faults.rate:
            LOG.info("injected faults: %d of %d calls (%s)", sum(self.faults.injected.values()),
                     self.faults.calls, ", ".join(f"{k} {v}" for k, v in
                                                  sorted(self.faults.injected.items())))
        return stopped

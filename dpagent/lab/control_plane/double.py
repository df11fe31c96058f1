"""The double's RPC side: neutron's endpoints over the model, recording, faults and casts."""

from __future__ import annotations

import copy
import datetime
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import oslo_messaging
from oslo_config import cfg
from oslo_messaging.rpc import dispatcher as rpc_dispatcher
from oslo_messaging.rpc import server as rpc_server

from dpagent.conf.messaging import register_messaging_opts
from dpagent.lab.control_plane import objects
from dpagent.lab.control_plane.model import ControlPlaneModel, Port, ReceivedCall, new_id
from dpagent.rpc import topics
from dpagent.rpc.transport import make_transport, request_context, rpc_client, stop_servers

_NOTSET: Any = object()


# -- endpoints ---------------------------------------------------------------------------------

class _Endpoint:
    def __init__(self, double: ControlPlaneDouble) -> None:
        self.double = double

    @property
    def model(self) -> ControlPlaneModel:
        return self.double.model  # replaced by reset()


class _AgentCallbacks(_Endpoint):
    """neutron.db.agents_db.AgentExtRpcCallback 1.4."""

    target = oslo_messaging.Target(version=topics.REPORTS_VERSION)

    def has_alive_neutron_server(self, ctxt: Any, /) -> Any:
        return self.double.fault("has_alive_neutron_server", True)

    def report_state(self, ctxt: Any, /, agent_state: dict[str, Any], time: str) -> Any:
        reply = self.double.fault("report_state", _NOTSET)
        if reply is not _NOTSET:
            return reply
        state = agent_state["agent_state"]  # KeyError -> RemoteError, as on neutron
        for key in ("binary", "host", "topic", "agent_type", "configurations"):
            if key not in state:
                raise KeyError(key)
        sent = datetime.datetime.strptime(time, "%Y-%m-%dT%H:%M:%S.%f").replace(
            tzinfo=datetime.UTC).timestamp()
        if sent < self.double.started_at - 1.0:
            return None  # older than the server: dropped
        return self.model.heartbeat(state, _now())


class _AdminStateCallbacks(_Endpoint):
    """neutron-dpagent's ``get_admin_state``: the real server of the tier loads the extension,
    so the double answers it too (``admin_state_extension=False``: a server without it)."""

    target = oslo_messaging.Target(version=topics.ADMIN_STATE_VERSION)

    def get_admin_state(self, ctxt: Any, /, host: str, agent_type: str) -> Any:
        reply = self.double.fault("get_admin_state", _NOTSET)
        if reply is not _NOTSET:
            return reply
        with self.model.lock:
            agent = self.model.agents.get((agent_type, host))
            return {"admin_state_up": agent.admin_state_up if agent is not None else None}


class _PluginCallbacks(_Endpoint):
    """neutron.plugins.ml2.rpc.RpcCallbacks 1.9 (the parts an L2 agent uses)."""

    target = oslo_messaging.Target(version="1.9")

    def get_devices_details_list_and_failed_devices(self, ctxt: Any, /, devices: list[str],
                                                    agent_id: str, host: str) -> Any:
        reply = self.double.fault("get_devices_details_list_and_failed_devices", _NOTSET)
        if reply is not _NOTSET:
            return reply
        failing = self.double.failing_devices
        return {"devices": [self.model.device_details(d, host) for d in devices
                            if d not in failing],
                "failed_devices": [d for d in devices if d in failing]}

    def get_devices_details_list(self, ctxt: Any, /, devices: list[str], agent_id: str,
                                 host: str) -> Any:
        return [self.model.device_details(d, host) for d in devices]

    def get_device_details(self, ctxt: Any, /, device: str, agent_id: str, host: str) -> Any:
        return self.model.device_details(device, host)

    def update_device_list(self, ctxt: Any, /, devices_up: list[str], devices_down: list[str],
                           agent_id: str, host: str, refresh_tunnels: bool = False) -> Any:
        reply = self.double.fault("update_device_list", _NOTSET)
        if reply is not _NOTSET:
            return reply
        failing = self.double.failing_devices
        for device in devices_up:
            if device not in failing:
                self.model.set_device_status(device, host, True)
        reply = {"devices_up": [d for d in devices_up if d not in failing],
                 "failed_devices_up": [d for d in devices_up if d in failing],
                 "devices_down": [self.model.set_device_status(d, host, False)
                                  for d in devices_down if d not in failing],
                 "failed_devices_down": [d for d in devices_down if d in failing]}
        self.double.push_statuses([d for d in [*devices_up, *devices_down] if d not in failing])
        return reply

    def update_device_up(self, ctxt: Any, /, device: str, agent_id: str, host: str) -> Any:
        return self.model.set_device_status(device, host, True)

    def update_device_down(self, ctxt: Any, /, device: str, agent_id: str, host: str) -> Any:
        return self.model.set_device_status(device, host, False)

    def get_network_details(self, ctxt: Any, /, network: str, agent_id: str, host: str) -> Any:
        reply = self.double.fault("get_network_details", _NOTSET)
        if reply is not _NOTSET:
            return reply
        with self.model.lock:
            return self.model.network_dict(self.model.networks[network])


class _SecurityGroupCallbacks(_Endpoint):
    """neutron's SecurityGroupServerRpcCallback 1.3."""

    target = oslo_messaging.Target(version=topics.SECURITY_GROUP_INFO_VERSION)

    def security_group_info_for_devices(self, ctxt: Any, /, devices: list[str],
                                        call_version: str | None = None) -> Any:
        reply = self.double.fault("security_group_info_for_devices", _NOTSET)
        if reply is not _NOTSET:
            return reply
        return self.model.security_group_info(devices, call_version)


class _ResourcesCallbacks(_Endpoint):
    """neutron's ResourcesPullRpcCallback 1.1: ``bulk_pull`` for a cache-backed agent."""

    target = oslo_messaging.Target(version="1.1")

    def bulk_pull(self, ctxt: Any, /, resource_type: str, version: str,
                  filter_kwargs: dict[str, Any]) -> Any:
        reply = self.double.fault("bulk_pull", _NOTSET)
        if reply is not _NOTSET:
            return reply
        return objects.bulk_pull(self.model, resource_type, filter_kwargs)


def _now() -> float:
    return time.time()


class _RecordingDispatcher(rpc_dispatcher.RPCDispatcher):  # type: ignore[misc]
    """Records each message with the version and namespace only the dispatcher sees."""

    def __init__(self, endpoints: list[object], topic: str, double: ControlPlaneDouble) -> None:
        super().__init__(endpoints, None)
        self.topic = topic
        self.double = double

    def dispatch(self, incoming: Any) -> Any:
        message = incoming.message
        record = ReceivedCall(self.topic, str(message.get("method")),
                              str(message.get("version", "1.0")), message.get("namespace"),
                              copy.deepcopy(message.get("args", {})), dict(incoming.ctxt),
                              _now())
        try:
            record.reply = super().dispatch(incoming)
            return record.reply
        except Exception as exc:
            record.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self.double.record(record)


@dataclass
class _Fault:
    error: BaseException | None
    reply: Any
    delay: float
    times: int | None


class ControlPlaneDouble:
    """A neutron-server stand-in on a broker; ``with ControlPlaneDouble(url) as cp: ...``."""

    def __init__(self, transport_url: str, *, agent_down_time: float = 75.0,
                 server_name: str = "control-plane-double",
                 admin_state_extension: bool = True) -> None:
        self.admin_state_extension = admin_state_extension
        self.conf = cfg.ConfigOpts()
        register_messaging_opts(self.conf)
        self.conf(args=[], default_config_files=[])
        self.transport_url = transport_url
        self.server_name = server_name
        self.model = ControlPlaneModel(agent_down_time)
        self.failing_devices: set[str] = set()
        self.started_at = _now()
        self._calls: list[ReceivedCall] = []
        self._calls_changed = threading.Condition()
        self._faults: dict[str, _Fault] = {}
        self._servers: list[oslo_messaging.MessageHandlingServer] = []
        self._transport: oslo_messaging.Transport | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> ControlPlaneDouble:
        self._transport = make_transport(self.conf, self.transport_url)
        if "oslo_messaging_rabbit" in self.conf:
            # a test double: come back within seconds of a broker restart (not 30), and
            # stop within a second (idle listeners poll for heartbeat_threshold / 6)
            for name, value in (("rabbit_interval_max", 2), ("rabbit_retry_backoff", 0),
                                ("kombu_reconnect_delay", 0.2),
                                ("heartbeat_timeout_threshold", 6)):
                self.conf.set_override(name, value, group="oslo_messaging_rabbit")
        agent = _AgentCallbacks(self)
        served: dict[str, list[object]] = {topics.REPORTS: [agent],
                  topics.PLUGIN: [_PluginCallbacks(self), _SecurityGroupCallbacks(self),
                                  _ResourcesCallbacks(self), agent]}
        if self.admin_state_extension:
            served[topics.ADMIN_STATE] = [_AdminStateCallbacks(self)]
        for topic, endpoints in served.items():
            target = oslo_messaging.Target(topic=topic, server=self.server_name)
            server = rpc_server.RPCServer(self._transport, target,
                                          _RecordingDispatcher(endpoints, topic, self))
            server.start()
            self._servers.append(server)
        self.started_at = _now()
        return self

    def stop(self) -> None:
        servers, self._servers = self._servers, []
        stop_servers(servers)
        if self._transport is not None:
            self._transport.cleanup()
            self._transport = None

    def reset(self) -> None:
        """Forget the model, the recorded calls and the faults (servers keep running)."""
        self.model = ControlPlaneModel(self.model.agent_down_time)
        self.clear_faults()
        with self._calls_changed:
            self._calls.clear()

    def __enter__(self) -> ControlPlaneDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- recorded calls -------------------------------------------------------------------------

    def record(self, call: ReceivedCall) -> None:
        with self._calls_changed:
            self._calls.append(call)
            self._calls_changed.notify_all()

    def calls(self, method: str | None = None) -> list[ReceivedCall]:
        with self._calls_changed:
            return [c for c in self._calls if method is None or c.method == method]

    def wait_for_call(self, method: str, timeout: float = 10.0,
                      where: Callable[[ReceivedCall], bool] | None = None,
                      after: int = 0) -> ReceivedCall:
        """The first call of ``method`` (index >= ``after`` among them) matching ``where``."""
        deadline = time.monotonic() + timeout
        with self._calls_changed:
            while True:
                found = [c for c in self._calls if c.method == method][after:]
                found = [c for c in found if where is None or where(c)]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {method} call within {timeout} s")
                self._calls_changed.wait(left)

    # -- faults ---------------------------------------------------------------------------------

    def inject(self, method: str, *, error: BaseException | None = None, reply: Any = _NOTSET,
               delay: float = 0.0, times: int | None = None) -> None:
        """Make ``method`` raise ``error``, return ``reply`` and/or sleep ``delay`` first,
        for the next ``times`` calls (None: until :meth:`clear_faults`)."""
        self._faults[method] = _Fault(error, reply, delay, times)

    def clear_faults(self) -> None:
        self._faults.clear()
        self.failing_devices.clear()

    def fault(self, method: str, default: Any) -> Any:
        fault = self._faults.get(method)
        if fault is None:
            return default
        if fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                self._faults.pop(method, None)
        if fault.delay:
            time.sleep(fault.delay)
        if fault.error is not None:
            raise fault.error
        return default if fault.reply is _NOTSET else fault.reply

    # -- casts ----------------------------------------------------------------------------------

    def cast(self, topic: str, method: str, *, version: str = "1.0", fanout: bool = True,
             server: str | None = None, **kwargs: Any) -> None:
        """Send any cast, as the server would (fanout by default)."""
        if self._transport is None:
            raise RuntimeError("the double is not started")
        client = rpc_client(self._transport, topic, version, timeout=10)
        prepared = client.prepare(fanout=fanout) if server is None else client.prepare(
            server=server)
        prepared.cast(request_context(), method, **kwargs)

    def push(self, resource_type: str, event_type: str, resource_list: list[Any]) -> None:
        """An OVO push, as neutron-server 29 sends them (CONTRACT.md 2.2)."""
        version = {"Port": "1.11", "Network": "1.3", "Subnet": "1.2", "SecurityGroup": "1.6",
                   "SecurityGroupRule": "1.3"}[resource_type]
        self.cast(f"neutron-vo-{resource_type}-{version}", "push",
                  version=topics.RESOURCE_PUSH_VERSION, resource_list=resource_list,
                  event_type=event_type)

    def push_statuses(self, port_ids: list[str]) -> None:
        """Status changes are port updates too: the server pushes each (CONTRACT.md 2.2)."""
        with self.model.lock:
            primitives = [objects.port_object(p, self.model.networks[p.network_id])
                          for d in port_ids if (p := self.model.ports.get(d)) is not None
                          and p.network_id in self.model.networks]
        if primitives:
            self.push("Port", "updated", primitives)

    def push_port(self, port_id: str) -> None:
        with self.model.lock:
            port = self.model.ports[port_id]
            port.revision += 1
            primitive = objects.port_object(port, self.model.networks[port.network_id])
        self.push("Port", "updated", [primitive])

    def notify_security_groups_rule_updated(self, sg_ids: list[str]) -> None:
        self.cast(topics.SECURITY_GROUP_UPDATE, "security_groups_rule_updated", version="1.1",
                  security_groups=list(sg_ids))

    def notify_security_groups_member_updated(self, sg_ids: list[str]) -> None:
        self.cast(topics.SECURITY_GROUP_UPDATE, "security_groups_member_updated",
                  version="1.1", security_groups=list(sg_ids))

    def notify_port_update(self, port_id: str) -> None:
        with self.model.lock:
            port = self.model.ports[port_id]
            net = self.model.networks[port.network_id]
            kwargs: dict[str, Any] = {
                "port": self.model.port_dict(port), "network_type": net.network_type,
                "segmentation_id": net.segmentation_id,
                "physical_network": net.physical_network}
        self.cast(topics.PORT_UPDATE, "port_update", **kwargs)

    def notify_port_delete(self, port_id: str) -> None:
        self.cast(topics.PORT_DELETE, "port_delete", port_id=port_id)

    def notify_network_update(self, network_id: str) -> None:
        with self.model.lock:
            network = self.model.network_dict(self.model.networks[network_id])
        self.cast(topics.NETWORK_UPDATE, "network_update", version="1.4", network=network)

    def notify_network_delete(self, network_id: str) -> None:
        self.cast(topics.NETWORK_DELETE, "network_delete", network_id=network_id)

    def notify_agent_updated(self, host: str, admin_state_up: bool) -> None:
        self.cast(topics.AGENT, "agent_updated", fanout=False, server=host,
                  payload={"admin_state_up": admin_state_up})

    # -- changes with neutron's notifications ----------------------------------------------------

    def add_rule(self, sg_id: str, *, notify: bool = True, **rule: Any) -> str:
        """Add an API-form rule (direction, ethertype, protocol, port_range_min/max,
        remote_ip_prefix, remote_group_id...); neutron casts rule_updated."""
        rule.setdefault("id", new_id())
        with self.model.lock:
            group = self.model.groups[sg_id]
            group.rules.append(rule)
            group.revision += 1
            primitive = objects.rule_object(sg_id, rule)
        if notify:
            self.push("SecurityGroupRule", "updated", [primitive])  # no 'created' (2.2)
            self.notify_security_groups_rule_updated([sg_id])
        return str(rule["id"])

    def remove_rule(self, sg_id: str, rule_id: str, *, notify: bool = True) -> None:
        with self.model.lock:
            group = self.model.groups[sg_id]
            group.rules = [r for r in group.rules if r["id"] != rule_id]
            group.revision += 1
        if notify:
            self.notify_security_groups_rule_updated([sg_id])
            self.push("SecurityGroupRule", "deleted", [objects.ovo(
                "SecurityGroupRule", "1.3", {"id": rule_id, "belongs_to_default_sg": False})])

    def add_port(self, network_id: str, *, notify: bool = True, **fields: Any) -> Port:
        """Create a port (bound if ``host`` is given): member_updated, then port_update."""
        port = self.model.add_port(network_id, **fields)
        if notify:
            self.push_port(port.id)
        if notify and port.security_groups:
            self.notify_security_groups_member_updated(port.security_groups)
        if notify and port.host:
            self.notify_port_update(port.id)
        return port

    def bind_port(self, port_id: str, host: str | None, *, notify: bool = True) -> None:
        """Bind to ``host`` (port_update) or unbind with None (neutron sends nothing)."""
        with self.model.lock:
            self.model.ports[port_id].host = host
        if notify:
            self.push_port(port_id)  # unbinding too: the server pushes every port update
        if notify and host:
            self.notify_port_update(port_id)

    def update_port(self, port_id: str, *, notify: bool = True, **changes: Any) -> None:
        """Change port fields; port_update if bound, member_updated if its groups changed."""
        with self.model.lock:
            port = self.model.ports[port_id]
            before = set(port.security_groups)
            for key, value in changes.items():
                if not hasattr(port, key):
                    raise AttributeError(key)
                setattr(port, key, value)
            changed_groups = before ^ set(port.security_groups)
            bound = bool(port.host)
        if notify:
            self.push_port(port_id)
        if notify and changed_groups:
            self.notify_security_groups_member_updated(sorted(changed_groups))
        if notify and bound:
            self.notify_port_update(port_id)

    def delete_port(self, port_id: str, *, notify: bool = True) -> None:
        with self.model.lock:
            port = self.model.ports.pop(port_id)
        if notify:
            self.push("Port", "deleted", [objects.deleted_port(port)])
        if notify and port.security_groups:
            self.notify_security_groups_member_updated(port.security_groups)
        if notify:
            self.notify_port_delete(port_id)

    def update_network(self, network_id: str, *, notify: bool = True, **changes: Any) -> None:
        with self.model.lock:
            net = self.model.networks[network_id]
            for key, value in changes.items():
                setattr(net, key, value)
            net.revision += 1
            primitive = objects.network_object(net)
        if notify:
            self.push("Network", "updated", [primitive])
            self.notify_network_update(network_id)

    def delete_network(self, network_id: str, *, notify: bool = True) -> None:
        with self.model.lock:
            net = self.model.networks.pop(network_id)
        if notify:
            self.push("Network", "deleted", [objects.ovo("Network", "1.3", {
                "id": network_id, "revision_number": net.revision + 1})])
            self.notify_network_delete(network_id)

    def set_agent_admin_state(self, host: str, admin_state_up: bool, *,
                              agent_type: str = topics.AGENT_TYPE_OVS, notify: bool = True
                              ) -> None:
        """``PUT /v2.0/agents/<id>``; neutron with neutron-dpagent (and dpagent-controller)
        casts ``agent_updated`` -- the double does unless ``notify`` is False (neutron without
        the extension tells L2 agents nothing)."""
        with self.model.lock:
            agent = self.model.agents.get((agent_type, host))
            if agent is not None:
                agent.admin_state_up = admin_state_up
        if notify:
            self.notify_agent_updated(host, admin_state_up)

    def delete_agent(self, host: str, agent_type: str = topics.AGENT_TYPE_OVS) -> None:
        """``DELETE /v2.0/agents/<id>``: the next report gets 'new'."""
        with self.model.lock:
            self.model.agents.pop((agent_type, host), None)

    def expire_agent(self, host: str, agent_type: str = topics.AGENT_TYPE_OVS) -> None:
        """Make the agent look dead (last heartbeat older than agent_down_time)."""
        with self.model.lock:
            agent = self.model.agents[(agent_type, host)]
            if agent.heartbeats:
                agent.heartbeats[-1] -= self.model.agent_down_time + 1

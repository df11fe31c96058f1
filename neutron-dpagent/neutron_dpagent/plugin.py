"""The service plugin: everything the extension does, loaded with ``service_plugins = dpagent``.

neutron 29's ``PUT /v2.0/agents/<id>`` publishes no AGENT AFTER_UPDATE (only heartbeats do);
what it has is the core plugin's ``agent_notifiers``, per agent type, which
``AgentSchedulerDbMixin.update_agent`` calls with ``agent_updated(context, admin_state_up,
host)`` when the state changed -- neutron's own path to its DHCP agents. The plugin, in every
neutron process that loads it (API, RPC workers, periodic workers):

1. registers a notifier for the agent types dpagent runs (Open vSwitch agent, NIC Switch
   agent) that casts ``agent_updated(payload={'admin_state_up': bool})`` to the host's
   ``dpagent`` topic, which dpagent consumes -- only for agents that declare admin state
   (``configurations['admin_state_up']``); and, on a heartbeat that creates such an agent
   down (``enable_new_agents = false``), tells it likewise;
2. refuses, with 400 and the reason, ``admin_state_up`` on an agent that gives it no meaning
   (:mod:`neutron_dpagent.admin_state`), before anything is written;
3. makes ML2's ``openvswitch`` and ``sriovnicswitch`` drivers refuse a host whose dpagent is
   administratively down (the port's binding fails there and Nova schedules elsewhere): the
   very drivers neutron loaded, so vif_type, vif_details and segment checks are theirs, and
   neutron's OVS trunk driver (which loads only with a mechanism driver named
   ``openvswitch``) keeps working;
4. answers ``get_admin_state(host, agent_type)`` on the ``dpagent-plugin`` topic (RPC workers),
   which dpagent asks at start so that a cordoned agent restarted stays cordoned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import oslo_messaging
from neutron_lib import constants
from neutron_lib import context as n_context
from neutron_lib import exceptions as n_exc
from neutron_lib import rpc as n_rpc
from neutron_lib.callbacks import events, registry, resources
from neutron_lib.plugins import directory
from neutron_lib.services import base as service_base
from oslo_log import log as logging

from neutron_dpagent import admin_state

LOG = logging.getLogger(__name__)

AGENT_TOPIC = "dpagent"
"""dpagent's own topic (``dpagent/rpc/topics.py`` AGENT): cast to ``dpagent.<host>``."""
AGENT_VERSION = "1.0"
PLUGIN_TOPIC = "dpagent-plugin"
"""what dpagent calls ``get_admin_state`` on (``dpagent/rpc/topics.py`` ADMIN_STATE)"""
DPAGENT_TYPES = (constants.AGENT_TYPE_OVS, constants.AGENT_TYPE_NIC_SWITCH)
BINDING_DRIVERS = ("openvswitch", "sriovnicswitch")


class AgentUpdatedNotifier:
    """What ``AgentSchedulerDbMixin.update_agent`` calls for dpagent's agent types."""

    def __init__(self) -> None:
        self._client: Any = None

    def agent_updated(self, context: Any, admin_state_up: bool, host: str) -> None:
        if self._client is None:
            self._client = n_rpc.get_client(oslo_messaging.Target(topic=AGENT_TOPIC,
                                                                  version=AGENT_VERSION))
        LOG.info("dpagent on %s: admin_state_up %s", host, admin_state_up)
        self._client.prepare(server=host, fanout=False).cast(
            context, "agent_updated", payload={"admin_state_up": bool(admin_state_up)})


class AdminStateEndpoint:
    """``get_admin_state``: an agent's record's admin_state_up, None without a record."""

    target = oslo_messaging.Target(version="1.0")

    def get_admin_state(self, context: Any, host: str, agent_type: str) -> dict[str, Any]:
        core = directory.get_plugin()
        agents = core.get_agents(n_context.get_admin_context(),
                                 filters={"host": [host], "agent_type": [agent_type]})
        return {"admin_state_up": agents[0]["admin_state_up"] if agents else None}


def checked_update_agent(core: Any, update: Callable[..., Any]) -> Callable[..., Any]:
    """``core.update_agent`` that refuses admin_state_up where it means nothing (400)."""

    def update_agent(context: Any, id: str, agent: Any) -> Any:  # noqa: A002 - neutron's name
        data = (agent or {}).get("agent") or {}
        if "admin_state_up" in data:
            current = core.get_agent(context, id)
            if not admin_state.honours_admin_state(current["agent_type"],
                                                   current.get("configurations")):
                raise n_exc.BadRequest(resource="agent", msg=admin_state.refusal(
                    id, current["agent_type"], current["host"]))
        return update(context, id, agent)

    return update_agent


def refusing_cordoned(name: str, bind: Callable[..., bool]) -> Callable[..., bool]:
    """A mechanism driver's ``try_to_bind_segment_for_agent`` that binds nothing to a host
    whose dpagent is administratively down."""

    def try_to_bind_segment_for_agent(context: Any, segment: Any, agent: Any) -> bool:
        if agent is not None and admin_state.cordoned(agent):
            LOG.info("%s: port %s not bound to %s: its agent is administratively down",
                     name, context.current["id"], agent["host"])
            return False
        return bind(context, segment, agent)

    return try_to_bind_segment_for_agent


class DpagentPlugin(service_base.ServicePluginBase):
    supported_extension_aliases: list[str] = []

    def __init__(self) -> None:
        super().__init__()
        core = directory.get_plugin()
        self.notifier = AgentUpdatedNotifier()
        notifiers = getattr(core, "agent_notifiers", None)
        if notifiers is None:
            LOG.error("the core plugin has no agent_notifiers: dpagent will not be told of "
                      "admin state changes")
        else:
            for agent_type in DPAGENT_TYPES:
                notifiers[agent_type] = self.notifier
        core.update_agent = checked_update_agent(core, core.update_agent)
        manager = getattr(core, "mechanism_manager", None)
        for name in BINDING_DRIVERS:
            driver = getattr(manager, "mech_drivers", {}).get(name)
            if driver is not None:
                driver.obj.try_to_bind_segment_for_agent = refusing_cordoned(
                    name, driver.obj.try_to_bind_segment_for_agent)
        registry.subscribe(self._agent_created, resources.AGENT, events.AFTER_CREATE)
        self._conn: Any = None

    def _agent_created(self, resource: str, event: str, trigger: Any, payload: Any) -> None:
        """A dpagent registered down (``enable_new_agents = false``): tell it."""
        state = payload.desired_state or {}
        if state.get("agent_type") in DPAGENT_TYPES and state.get("admin_state_up") is False \
                and admin_state.declares_admin_state(state.get("configurations")):
            self.notifier.agent_updated(payload.context, False, state["host"])

    def get_plugin_type(self) -> str:
        return "dpagent"

    def get_plugin_description(self) -> str:
        return "dpagent: administrative state of its agents through the agents API"

    def start_rpc_listeners(self) -> list[Any]:
        self._conn = n_rpc.Connection()
        self._conn.create_consumer(PLUGIN_TOPIC, [AdminStateEndpoint()], fanout=False)
        return list(self._conn.consume_in_threads())

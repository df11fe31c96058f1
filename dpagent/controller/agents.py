"""Agents as neutron's agents table keeps them: heartbeats, liveness, administrative state.

An agent is keyed by (agent_type, host).  ``report_state`` answers ``'new'`` when it creates
the record (first report, or the first after ``DELETE /v2.0/agents/<id>``), ``'revived'``
when the previous heartbeat is older than ``agent_down_time`` and ``'alive'`` otherwise --
neutron's ``agents_db`` semantics, which dpagent's heartbeat turns into a full resync.

Administrative state only means something to an agent that acts on it: dpagent declares
that by putting ``admin_state_up`` in its heartbeat's configurations.  Setting it on any
other agent (neutron's own L2 agents ignore it) is refused with the reason. The rule and its
words are neutron-dpagent's too (``neutron-dpagent/neutron_dpagent/admin_state.py``, which
neutron-server loads); neither package may import the other, so a unit test keeps them equal.
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from dpagent.controller.model import AgentRecord
from dpagent.controller.store import Store

ADMIN_STATE_KEY = "admin_state_up"
"""The configurations key by which an agent declares that it honours admin_state_up."""

SCHEDULED_BY_ADMIN_STATE = ("DHCP agent", "L3 agent")
"""neutron's own agent types whose schedulers skip administratively down agents."""


def honours_admin_state(agent_type: str, configurations: Mapping[str, Any] | None) -> bool:
    return agent_type in SCHEDULED_BY_ADMIN_STATE or ADMIN_STATE_KEY in (configurations or {})


def refusal(agent_id: str, agent_type: str, host: str) -> str:
    return (f"agent {agent_id} ({agent_type} on {host}) does not declare administrative "
            f"state support (no '{ADMIN_STATE_KEY}' in its reported configurations): setting "
            "admin_state_up would have no effect there")

AGENT_TYPE_FOR_VNIC = {"normal": "Open vSwitch agent", "direct": "NIC Switch agent"}


def heartbeat_result(last_heartbeat: float | None, now: float, agent_down_time: float) -> str:
    """'new' (no record), 'revived' (the last heartbeat is too old) or 'alive'."""
    if last_heartbeat is None:
        return "new"
    return "revived" if now - last_heartbeat > agent_down_time else "alive"


class AgentNotFound(LookupError):
    pass


class AdminStateUnsupported(ValueError):
    pass


class AgentRegistry:
    """The agents, persisted in the store; every method is thread-safe."""

    def __init__(self, store: Store, agent_down_time: float) -> None:
        self.store = store
        self.agent_down_time = agent_down_time
        self._lock = threading.Lock()
        self._agents = {a.id: a for a in store.agents()}

    def is_alive(self, agent: AgentRecord, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return now - agent.heartbeat_at <= self.agent_down_time

    def report(self, state: Mapping[str, Any], now: float | None = None) -> str:
        """Record one ``report_state`` STATE; neutron's reply for it."""
        now = time.time() if now is None else now
        with self._lock:
            agent = self._find(str(state["agent_type"]), str(state["host"]))
            result = heartbeat_result(agent.heartbeat_at if agent else None, now,
                                      self.agent_down_time)
            if agent is None:
                agent = AgentRecord(str(uuid.uuid4()), str(state["agent_type"]),
                                    str(state["host"]), str(state["binary"]),
                                    str(state["topic"]), created_at=now, started_at=now)
                self._agents[agent.id] = agent
            agent.binary, agent.topic = str(state["binary"]), str(state["topic"])
            agent.configurations = copy.deepcopy(dict(state.get("configurations") or {}))
            if state.get("resource_versions"):
                agent.resource_versions = dict(state["resource_versions"])
            if state.get("start_flag"):
                agent.started_at = now
            agent.heartbeat_at = now
            self.store.put_agent(agent)
            return result

    def _find(self, agent_type: str, host: str) -> AgentRecord | None:
        return next((a for a in self._agents.values()
                     if a.agent_type == agent_type and a.host == host), None)

    def find(self, agent_type: str, host: str) -> AgentRecord | None:
        with self._lock:
            agent = self._find(agent_type, host)
            return copy.deepcopy(agent)

    def all(self) -> list[AgentRecord]:
        with self._lock:
            return [copy.deepcopy(a) for a in sorted(self._agents.values(),
                                                     key=lambda a: (a.created_at, a.id))]

    def get(self, agent_id: str) -> AgentRecord:
        with self._lock:
            agent = self._agents.get(agent_id)
            if agent is None:
                raise AgentNotFound(f"agent {agent_id} could not be found")
            return copy.deepcopy(agent)

    def set_admin_state(self, agent_id: str, up: bool) -> AgentRecord:
        with self._lock:
            agent = self._agents.get(agent_id)
            if agent is None:
                raise AgentNotFound(f"agent {agent_id} could not be found")
            if not honours_admin_state(agent.agent_type, agent.configurations):
                raise AdminStateUnsupported(refusal(agent_id, agent.agent_type, agent.host))
            agent.admin_state_up = up
            self.store.put_agent(agent)
            return copy.deepcopy(agent)

    def delete(self, agent_id: str) -> AgentRecord:
        with self._lock:
            agent = self._agents.pop(agent_id, None)
            if agent is None:
                raise AgentNotFound(f"agent {agent_id} could not be found")
            self.store.delete_agent(agent_id)
            return agent

    def expire(self, agent_id: str) -> None:
        """Make the agent look dead now (tests and operators' drills)."""
        with self._lock:
            agent = self._agents[agent_id]
            agent.heartbeat_at = time.time() - self.agent_down_time - 1
            self.store.put_agent(agent)

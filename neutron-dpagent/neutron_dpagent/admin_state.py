"""Which agents administrative state means something to, and what the API says where it does
not. Pure (no neutron import): dpagent-controller applies the same rule with the same words
(``dpagent/controller/agents.py``; a test of dpagent's keeps the two equal, as neither package
may import the other).

neutron itself gives ``admin_state_up`` a meaning only where it schedules by it (DHCP and L3
agents); an agent declares that it honours it by reporting the key ``admin_state_up`` in its
heartbeat's configurations (dpagent does). Setting it on any other agent is refused: the
operator would believe a host cordoned that is not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ADMIN_STATE_KEY = "admin_state_up"
"""The configurations key by which an agent declares that it honours admin_state_up."""

SCHEDULED_BY_ADMIN_STATE = ("DHCP agent", "L3 agent")
"""neutron's own agent types whose schedulers skip administratively down agents."""


def honours_admin_state(agent_type: str, configurations: Mapping[str, Any] | None) -> bool:
    return agent_type in SCHEDULED_BY_ADMIN_STATE or ADMIN_STATE_KEY in (configurations or {})


def declares_admin_state(configurations: Mapping[str, Any] | None) -> bool:
    """An agent that acts on admin_state_up itself (dpagent): told of changes, cordoned."""
    return ADMIN_STATE_KEY in (configurations or {})


def refusal(agent_id: str, agent_type: str, host: str) -> str:
    return (f"agent {agent_id} ({agent_type} on {host}) does not declare administrative "
            f"state support (no '{ADMIN_STATE_KEY}' in its reported configurations): setting "
            "admin_state_up would have no effect there")


def cordoned(agent: Mapping[str, Any]) -> bool:
    """An agent record (neutron's agent dict) of an agent that honours admin_state_up itself
    and is administratively down: no port is bound to its host."""
    return declares_admin_state(agent.get("configurations")) and \
        agent.get("admin_state_up") is False

"""What the server says the agent's administrative state is (neutron-dpagent's
``get_admin_state`` on the ``dpagent-plugin`` topic): asked at start so that a restart does not
lose a cordon set through neutron's agents API. Changes while running come as ``agent_updated``
casts; this is only for what was set while the agent was away.

A server without the extension has no consumer on that topic: the call is dropped by the
broker and times out. That is the answer "unknown", not an error: the agent keeps its state.
"""

from __future__ import annotations

import logging

import oslo_messaging

from dpagent.rpc import topics
from dpagent.rpc.errors import InvalidReply, ServerError, ServerUnavailable
from dpagent.rpc.transport import call, rpc_client

LOG = logging.getLogger(__name__)


class AdminStateApi:
    def __init__(self, transport: oslo_messaging.Transport, host: str, timeout: float) -> None:
        self.host = host
        self.timeout = timeout
        self.answered: bool | None = None
        """whether the server has answered before (None: never asked)"""
        self._client = rpc_client(transport, topics.ADMIN_STATE, topics.ADMIN_STATE_VERSION,
                                  timeout, retry=0)

    def fetch(self, agent_type: str) -> bool | None:
        """The record's admin_state_up; None when unknown (no extension, no record yet, a
        server that failed). Never raises."""
        try:
            reply = call(self._client, "get_admin_state", host=self.host,
                         agent_type=agent_type)
            up = check_admin_state(reply)
        except ServerUnavailable:
            if self.answered is None:
                LOG.info("no answer to get_admin_state in %.1f s: the server has no "
                         "neutron-dpagent extension, administrative state set through its "
                         "agents API does not reach this agent", self.timeout)
            else:
                LOG.warning("get_admin_state not answered in %.1f s", self.timeout)
            self.answered = self.answered or False
            return None
        except (ServerError, InvalidReply) as exc:
            LOG.warning("get_admin_state failed: %s", exc)
            return None
        self.answered = True
        return up


def check_admin_state(reply: object) -> bool | None:
    if not isinstance(reply, dict) or "admin_state_up" not in reply:
        raise InvalidReply(f"get_admin_state: expected {{'admin_state_up': ...}}, got {reply!r}")
    up = reply["admin_state_up"]
    if up is not None and not isinstance(up, bool):
        raise InvalidReply(f"get_admin_state: admin_state_up must be true, false or null, "
                           f"not {up!r}")
    return up

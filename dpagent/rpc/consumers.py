"""The agent's listeners: one oslo.messaging RPC server per notification topic.

An RPC server listens on one topic, so each topic of :data:`~dpagent.rpc.notifications.
CONSUMED` gets its own, with ``Target(topic, server=host, fanout=True)`` as neutron's
agents use (oslo.messaging's rabbit driver then consumes ``<topic>``, ``<topic>.<host>``
and the ``<topic>_fanout`` exchange alike).  Each server dispatches with a pool of ONE
worker thread, so messages of a topic reach the handler in the order the server sent
them -- an admin-down ``port_update`` followed by an admin-up one is never seen the other
way round -- which is also why handlers must return quickly.

Fanout queues are not durable: casts sent while the agent is disconnected from the broker
are lost.  After any outage, the agent core should resync: the heartbeat's ``revived``
reply, its reconnection, and (``on_reconnect``) a consumer's own reconnection, which the
heartbeat does not see when only the consumer's queue went (:mod:`dpagent.rpc.reconnects`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import oslo_messaging

from dpagent.rpc.notifications import (
    CONSUMED,
    AgentNotifications,
    NotificationStats,
    OverlayNotifications,
    ResourcePushNotifications,
    TrunkNotifications,
)
from dpagent.rpc.observers import observer_of
from dpagent.rpc.reconnects import ReconnectCallback, watch_reconnects
from dpagent.rpc.transport import rpc_server, stop_servers

LOG = logging.getLogger(__name__)


class NotificationConsumers:
    """Start and stop the consumers of every topic the agent listens to."""

    def __init__(self, transport: oslo_messaging.Transport, host: str,
                 handler: AgentNotifications | TrunkNotifications | OverlayNotifications
                 | ResourcePushNotifications, *,
                 topics: list[str] | None = None,
                 catalog: Mapping[str, tuple[type[Any], bool]] = CONSUMED,
                 on_reconnect: ReconnectCallback | None = None) -> None:
        """``catalog``: topic -> (endpoint class, fanout); :data:`CONSUMED` for the OVS side,
        :data:`TRUNK_PUSHES` (with a TrunkNotifications handler) for the SR-IOV side.
        ``on_reconnect(reason)``: a consumer reconnected (its queue was lost meanwhile).
        The transport's observer (:mod:`dpagent.rpc.observers`), if one was registered
        before, is told of every message handled."""
        self.transport = transport
        self.host = host
        self.handler = handler
        self.stats = NotificationStats(observer_of(transport))
        self.catalog = catalog
        self.topics = list(catalog) if topics is None else topics
        self.on_reconnect = on_reconnect
        self.unwatched: list[str] = []
        """topics whose reconnections cannot be watched (not oslo.messaging's rabbit driver)"""
        self._servers: list[oslo_messaging.MessageHandlingServer] = []

    def start(self) -> None:
        """Declare the queues and start consuming; returns once every consumer listens.

        Blocks while the broker is unreachable: oslo.messaging opens listening connections
        with unbounded retries.  Start the heartbeat independently of this.
        """
        if self._servers:
            return
        try:
            for topic in self.topics:
                endpoint_cls, fanout = self.catalog[topic]
                target = oslo_messaging.Target(topic=topic, server=self.host, fanout=fanout)
                server = rpc_server(self.transport, target,
                                    [endpoint_cls(self.handler, self.stats)])
                server.start(override_pool_size=1)
                self._servers.append(server)
                if self.on_reconnect is not None and \
                        not watch_reconnects(server, topic, self.on_reconnect):
                    self.unwatched.append(topic)
        except BaseException:
            self.stop()
            raise
        if self.unwatched:
            LOG.warning("reconnections of the consumers of %s cannot be watched with this "
                        "messaging driver: a queue lost while the heartbeat's connection stays "
                        "up goes unnoticed", ", ".join(self.unwatched))
        LOG.info("consuming %s for host %s", ", ".join(self.topics), self.host)

    def stop(self, timeout: float | None = None) -> bool:
        """Stop consuming and wait (at most ``timeout`` s) for messages being handled.

        True if every consumer stopped in time.  An idle consumer notices only at the end
        of its current poll (:data:`~dpagent.rpc.transport.IDLE_POLL`).
        """
        return self.stop_together([self], timeout)

    @staticmethod
    def stop_together(groups: Iterable[NotificationConsumers | None],
                      timeout: float | None = None) -> bool:
        """:meth:`stop` several groups (the OVS and the SR-IOV side's) side by side: one poll's
        wait in all, not one per group.  ``None`` entries are skipped."""
        servers: list[oslo_messaging.MessageHandlingServer] = []
        for group in groups:
            if group is not None:
                servers.extend(group._servers)
                group._servers = []
        return stop_servers(servers, timeout)

    @property
    def running(self) -> bool:
        return bool(self._servers)

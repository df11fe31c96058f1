"""Noticing that a consumer lost its queue: casts sent meanwhile are gone, so resync.

Fanout queues are not durable. When the broker restarts, or only the consumer's queue goes (a
partial broker failure: a node of a cluster lost, a queue deleted by an operator), the broker
cancels the consumer and oslo.messaging's rabbit driver reconnects and declares the queue
again, by itself, telling nobody -- the heartbeat's connection may never notice. Every push or
notification sent in between is lost, and in ``rpc_mode = cache`` nothing would ever make it
good. So each consumer's connection is watched: a new channel after its first is a
reconnection, and the agent resyncs (after the queues are declared again, so nothing sent
after the resync's pulls is lost).

The hook is oslo.messaging's rabbit connection, found through private attributes
(``MessageHandlingServer.listener._poll_style_listener.conn.connection``) and wrapped per
instance, never patched globally. Where it is not found (another driver, another
oslo.messaging), :func:`watch_reconnects` says so and the agent warns once: the heartbeat's
reconnect and ``revived`` triggers remain.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

LOG = logging.getLogger(__name__)

ReconnectCallback = Callable[[str], None]

SETTLE = 1.0
"""seconds a burst of reconnections (every consumer, after a broker restart) is given to end
before its one resync"""


def rabbit_connection(server: Any) -> Any | None:
    """The rabbit driver's connection under a started RPC server, or None."""
    listener = getattr(getattr(server, "listener", None), "_poll_style_listener", None)
    context = getattr(listener, "conn", None)
    connection = getattr(context, "connection", None)
    if connection is None or not callable(getattr(connection, "_set_current_channel", None)) \
            or not hasattr(connection, "channel"):
        return None
    return connection


def watch_reconnects(server: Any, topic: str, callback: ReconnectCallback) -> bool:
    """Call ``callback(reason)`` whenever ``server``'s connection gets a new channel after it
    had one (its queues declared again by then). False: not a connection this can watch."""
    connection = rabbit_connection(server)
    if connection is None:
        return False
    original = connection._set_current_channel

    def set_current_channel(new_channel: Any) -> Any:
        renewed = new_channel is not None and connection.channel is not None \
            and new_channel != connection.channel
        lost = new_channel is not None and connection.channel is None and had_one.is_set()
        result = original(new_channel)
        if new_channel is not None:
            if renewed or lost:
                callback(f"the consumer of {topic} reconnected to the broker")
            had_one.set()
        return result

    had_one = threading.Event()
    if connection.channel is not None:
        had_one.set()
    connection._set_current_channel = set_current_channel
    return True


class Coalesced:
    """``callback(reason)`` once for a burst of calls: :data:`SETTLE` s after the first."""

    def __init__(self, callback: ReconnectCallback, settle: float = SETTLE) -> None:
        self.callback = callback
        self.settle = settle
        self.fired = 0
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._reasons: list[str] = []

    def __call__(self, reason: str) -> None:
        with self._lock:
            self._reasons.append(reason)
            if self._timer is None:
                self._timer = threading.Timer(self.settle, self._fire)
                self._timer.daemon = True
                self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            reasons, self._reasons, self._timer = self._reasons, [], None
            self.fired += 1
        first = reasons[0]
        reason = first if len(reasons) == 1 else f"{first} (and {len(reasons) - 1} more)"
        LOG.warning("%s: what was sent meanwhile is lost, resynchronising", reason)
        try:
            self.callback(reason)
        except Exception:  # noqa: BLE001 - a consumer thread must not die of it
            LOG.exception("resync after a reconnection failed")

    def cancel(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._reasons = []

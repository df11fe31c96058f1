"""Who watches a transport's RPC traffic: how the daemon's metrics see every call and every
notification without :mod:`dpagent.rpc` knowing anything about metrics.

An observer is registered per transport (one per daemon), not per process: tests run many
agents in one process, and each counts its own traffic. :func:`dpagent.rpc.transport.call` and
the notification endpoints look it up; with none registered they do nothing more.
"""

from __future__ import annotations

import weakref
from typing import Any, Protocol


class RpcObserver(Protocol):
    """Told of each call and notification, on the thread that made or handled it: must be
    quick and must not raise."""

    def call_done(self, method: str, seconds: float, error: str | None) -> None:
        """A call of ``method`` got its reply (``error`` None) or failed after ``seconds``;
        ``error`` is the class of the dpagent error raised (ServerUnavailable, ...)."""

    def notification_done(self, method: str, seconds: float, error: str | None) -> None:
        """A notification (cast) ``method`` was handled in ``seconds``; ``error``: ``invalid``
        (dropped: its payload failed validation) or ``handler`` (the handler raised)."""


_OBSERVERS: weakref.WeakKeyDictionary[Any, RpcObserver] = weakref.WeakKeyDictionary()


def observe(transport: Any, observer: RpcObserver | None) -> None:
    """Tell ``observer`` of ``transport``'s calls and of the notifications of consumers built
    on it from now on (None: nobody any more). Held only as long as the transport lives."""
    if observer is None:
        _OBSERVERS.pop(transport, None)
    else:
        _OBSERVERS[transport] = observer


def observer_of(transport: Any) -> RpcObserver | None:
    """The observer of ``transport``, if any."""
    try:
        return _OBSERVERS.get(transport)
    except TypeError:  # not weak-referenceable (a test's stand-in): nobody watches it
        return None

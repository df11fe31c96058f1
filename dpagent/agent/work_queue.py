"""Work marked from any thread and taken in batches by one worker thread: the queue of the OVS
and the SR-IOV workers (each had its own copy, and they drifted apart).

Events (OVSDB, notifications, the heartbeat) only *mark* what is to be done on a work record
under the lock; the worker takes the whole record at once, so a burst of events becomes one
batch. A batch that fails is merged back and retried after a pause (see
:mod:`dpagent.agent.retry`); a stop ends every wait at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class _Work(Protocol):
    def __bool__(self) -> bool:
        ...


W = TypeVar("W", bound=_Work)


class WorkQueue(Generic[W]):
    def __init__(self, fresh: Callable[[], W], first: W) -> None:
        self._fresh = fresh
        self._work = first
        self.lock = threading.Condition()
        """Held by ``mark``; hold it around several marks to make them one batch."""
        self.stopping = threading.Event()

    def mark(self, change: Callable[[W], None]) -> None:
        """Record work: ``change`` edits the pending record under the lock."""
        with self.lock:
            change(self._work)
            self.lock.notify_all()

    def take(self, timeout: float | None) -> W:
        """The pending work (empty if none came within ``timeout`` or the queue stopped)."""
        with self.lock:
            if not self._work and not self.stopping.is_set():
                self.lock.wait(timeout)
            work, self._work = self._work, self._fresh()
        return work

    def pause(self, seconds: float) -> None:
        """Wait ``seconds`` (after a failed batch), unless the queue stops first."""
        self.stopping.wait(seconds)

    def stop(self) -> None:
        self.stopping.set()
        with self.lock:
            self.lock.notify_all()

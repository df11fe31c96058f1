"""Fault injection on the RPC replies ("loki" for the agent's sake).

With ``rpc_fault_rate`` above zero, each call the controller receives fails at random with
that probability, in one of the ``rpc_fault_kinds``:

* ``error`` -- the call is refused before it runs: the caller gets a ``RemoteError``
  (:class:`InjectedFault`), as when neutron-server hits a database error;
* ``timeout`` -- the call runs (its side effects happen: a status is set, a heartbeat
  recorded) but no reply is sent, so the caller times out not knowing whether it worked --
  the case that tests whether the agent's calls are safe to repeat.

Casts (no reply expected) are never touched.  The decision is made per message by
:class:`FaultInjector`, whose random generator can be seeded for reproducible runs.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

from oslo_messaging.rpc import dispatcher as rpc_dispatcher

LOG = logging.getLogger(__name__)

KINDS = ("error", "timeout")


class InjectedFault(RuntimeError):
    """The error a caller sees for an ``error`` fault (as ``RemoteError: InjectedFault``)."""


class FaultInjector:
    """Decides, per call, whether and how it fails."""

    def __init__(self, rate: float, kinds: Sequence[str] = KINDS, seed: int | None = None
                 ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rpc_fault_rate must be within 0.0-1.0, got {rate}")
        unknown = sorted(set(kinds) - set(KINDS))
        if unknown or not kinds:
            raise ValueError(f"rpc_fault_kinds: expected some of {', '.join(KINDS)}, "
                             f"got {', '.join(kinds) or 'nothing'}")
        self.rate = rate
        self.kinds = tuple(kinds)
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()  # "<method>:<kind>" -> count
        self.calls = 0

    def decide(self, method: str) -> str | None:
        """None (answer normally), 'error' or 'timeout'."""
        with self._lock:
            self.calls += 1
            if self.rate <= 0.0 or self._random.random() >= self.rate:
                return None
            kind = self._random.choice(self.kinds)
            self.injected[f"{method}:{kind}"] += 1
            return kind


def drop_reply(incoming: Any) -> None:
    """Make oslo.messaging send no reply for ``incoming`` (rabbit and fake drivers)."""
    if hasattr(incoming, "orig_msg_id"):  # amqpdriver: reply() returns without a msg id
        incoming.orig_msg_id = None
    if hasattr(incoming, "_reply_q"):  # impl_fake
        incoming._reply_q = None


class FaultyDispatcher(rpc_dispatcher.RPCDispatcher):  # type: ignore[misc]
    """oslo.messaging's dispatcher, with the injector's faults on calls."""

    def __init__(self, endpoints: list[object], injector: FaultInjector) -> None:
        super().__init__(endpoints, None)
        self.injector = injector

    def dispatch(self, incoming: Any) -> Any:
        method = str(incoming.message.get("method"))
        expects_reply = bool(getattr(incoming, "msg_id", None) or
                             getattr(incoming, "_reply_q", None))
        kind = self.injector.decide(method) if expects_reply else None
        if kind == "error":
            LOG.info("fault injection: failing %s", method)
            raise InjectedFault(f"fault injected by dpagent-controller into {method}")
        result = super().dispatch(incoming)
        if kind == "timeout":
            LOG.info("fault injection: dropping the reply to %s", method)
            drop_reply(incoming)
        return result

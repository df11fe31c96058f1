"""How a worker paces its retries after a failed batch: one policy for the OVS and the SR-IOV
workers (each had its own, and they drifted: the SR-IOV one never waited at all).

* The wait grows (doubling up to a cap) only while nothing answers at all -- the broker or the
  server is down. A server that answers some calls and loses others is retried at the base
  pace: with 40 % of replies lost, doubling held every port back for up to a minute.
* A server that answered with an error is retried at the base pace.
* The wait counts the time the failed batch already took: a call that timed out has waited
  its share, one refused at once (broker down) has not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dpagent.agent.reporting import ControlPlaneUnavailable
from dpagent.agent.reporting import call as call_control_plane


@dataclass
class Backoff:
    base: float
    cap: float
    current: float = 0.0
    answered: bool = False
    """Whether a call got a reply (even an error) since the last failed batch."""

    def ask(self, method: Callable[..., Any], *args: Any) -> Any:
        """``method(*args)`` as :func:`dpagent.agent.reporting.call` makes it, noting replies."""
        try:
            result = call_control_plane(method, *args)
        except ControlPlaneUnavailable:
            raise
        except Exception:
            self.answered = True  # it answered, with an error
            raise
        self.answered = True
        return result

    def succeeded(self) -> None:
        self.current = 0.0

    def grow(self) -> float:
        """After a failure that says nothing of the others' answers (the switch): double."""
        self.current = min(self.cap, max(self.base, self.current * 2))
        return self.current

    def no_answer(self) -> float:
        """After a batch that got no reply in the end: double only if nothing answered."""
        if self.answered:
            self.current = 0.0
        self.answered = False
        return self.grow()

    def error(self) -> float:
        """After a batch that failed otherwise (an error reply, a bug): the base pace."""
        self.current = self.base
        return self.current

    def remaining(self, started: float) -> float:
        """What is left of the wait for a batch that started at ``started`` (monotonic)."""
        return max(0.0, self.current - (time.monotonic() - started))

"""The retry pace shared by the OVS and the SR-IOV workers."""

from __future__ import annotations

import time

import pytest

from dpagent.agent.reporting import ControlPlaneUnavailable
from dpagent.agent.retry import Backoff


def lost(*_args):
    raise ControlPlaneUnavailable("no reply in time")


def refused(*_args):
    raise RuntimeError("RemoteError: the database went away")


def test_the_wait_doubles_only_while_nothing_answers():
    backoff = Backoff(base=1.0, cap=30.0)
    waits = []
    for _ in range(6):
        with pytest.raises(ControlPlaneUnavailable):
            backoff.ask(lost)
        waits.append(backoff.no_answer())
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    for _ in range(3):  # now a reply, then a lost one, in each batch
        assert backoff.ask(lambda: "details") == "details"
        with pytest.raises(ControlPlaneUnavailable):
            backoff.ask(lost)
        assert backoff.no_answer() == 1.0


def test_an_error_reply_is_retried_at_the_base_pace():
    backoff = Backoff(base=0.5, cap=30.0, current=16.0)
    with pytest.raises(RuntimeError):
        backoff.ask(refused)
    assert backoff.answered
    assert backoff.error() == 0.5


def test_the_wait_counts_the_time_the_failed_batch_took():
    backoff = Backoff(base=1.0, cap=30.0)
    backoff.grow()
    assert backoff.remaining(time.monotonic()) == pytest.approx(1.0, abs=0.05)
    assert backoff.remaining(time.monotonic() - 2.5) == 0.0  # it timed out after 2.5 s
    backoff.succeeded()
    assert backoff.remaining(time.monotonic()) == 0.0

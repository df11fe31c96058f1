"""Reconnections of a consumer's connection, told once per burst; a driver without the hook
is reported as unwatched, not guessed at."""

from __future__ import annotations

import time
from types import SimpleNamespace

from dpagent.rpc.reconnects import Coalesced, watch_reconnects


class Connection:
    """The two things of oslo.messaging's rabbit connection the watch relies on."""

    def __init__(self) -> None:
        self.channel: object | None = None
        self.declared = 0

    def _set_current_channel(self, new_channel: object | None) -> None:
        if new_channel == self.channel:
            return
        self.channel = new_channel
        if new_channel is not None:
            self.declared += 1  # the consumers' queues declared on it


def server(connection: object) -> SimpleNamespace:
    return SimpleNamespace(listener=SimpleNamespace(
        _poll_style_listener=SimpleNamespace(conn=SimpleNamespace(connection=connection))))


def test_a_new_channel_after_the_first_is_a_reconnection_told_after_the_declare():
    connection, told = Connection(), []
    first = object()
    connection._set_current_channel(first)
    assert watch_reconnects(server(connection), "topic-a",
                            lambda reason: told.append((reason, connection.declared)))
    connection._set_current_channel(first)  # every call sets the same channel again
    assert told == []
    connection._set_current_channel(object())  # kombu revived the connection
    assert told == [("the consumer of topic-a reconnected to the broker", 2)]
    connection._set_current_channel(None)  # retries exhausted...
    connection._set_current_channel(object())  # ...and later connected again
    assert len(told) == 2


def test_the_first_channel_of_a_connection_is_no_reconnection():
    connection, told = Connection(), []
    assert watch_reconnects(server(connection), "topic-a", told.append)
    connection._set_current_channel(object())
    assert told == []


def test_a_driver_without_the_hook_is_not_watched():
    assert not watch_reconnects(SimpleNamespace(listener=None), "topic-a", print)
    assert not watch_reconnects(server(SimpleNamespace(channel=None)), "topic-a", print)


def test_a_burst_of_reconnections_is_one_resync():
    resyncs = []
    coalesced = Coalesced(resyncs.append, settle=0.2)
    for topic in ("a", "b", "c"):
        coalesced(f"the consumer of {topic} reconnected to the broker")
    time.sleep(0.5)
    assert resyncs == ["the consumer of a reconnected to the broker (and 2 more)"]
    coalesced("again")
    time.sleep(0.4)
    assert resyncs[1:] == ["again"] and coalesced.fired == 2

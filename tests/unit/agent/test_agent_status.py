"""``Agent.status()`` is read by the status socket and the heartbeat while the worker adds and
removes ports: it must never fail with "dictionary changed size during iteration"."""

from __future__ import annotations

import sys
import threading
import types

from dpagent.agent.agent import Agent, PortRecord, Settings
from dpagent.agent.ovsdb import Vif


def test_status_while_ports_come_and_go():
    dataplane = types.SimpleNamespace(programmer=types.SimpleNamespace(installed_count=0))
    agent = Agent(Settings(), switch=None, control_plane=None, dataplane=dataplane)  # type: ignore[arg-type]
    stop = threading.Event()

    def churn() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            agent.ports[f"p{n}"] = PortRecord(Vif(f"tap{n}", f"p{n}", "fa:16:3e:00:00:01", n))
            if n > 20000:
                agent.ports.pop(f"p{n - 20000}", None)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    worker = threading.Thread(target=churn)
    worker.start()
    try:
        for _ in range(100):
            status = agent.status()
            assert sum(status["ports"].values()) >= 0
    finally:
        stop.set()
        worker.join()
        sys.setswitchinterval(interval)

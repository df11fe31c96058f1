"""Waiting for what a real neutron-server and the dataplane take a moment to show."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from dpagent.lab.neutron_server import NeutronAPI

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 20.0, what: str = "condition",
             interval: float = 0.2) -> T:
    """The first truthy value of ``predicate()``; AssertionError after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def port_statuses(api: NeutronAPI, port_ids: Iterable[str]) -> dict[str, str]:
    return {pid: api.show_port(pid)["status"] for pid in port_ids}


def wait_ports_status(api: NeutronAPI, port_ids: Iterable[str], status: str = "ACTIVE",
                      timeout: float = 20.0) -> float:
    """Wait until every port has ``status``; returns the seconds it took.  The error names
    each port's last status (a port stuck in BUILD shows as such)."""
    ids = list(port_ids)
    started = time.monotonic()
    last: dict[str, str] = {}

    def reached() -> bool:
        last.update(port_statuses(api, ids))
        return all(s == status for s in last.values())
    try:
        wait_for(reached, timeout, what=f"ports {status}", interval=0.1)
    except AssertionError:
        raise AssertionError(f"ports not {status} within {timeout} s: {last}") from None
    return time.monotonic() - started


def agent_records(api: NeutronAPI, host: str,
                  agent_type: str = "Open vSwitch agent") -> list[dict[str, Any]]:
    return [a for a in api.list_agents(host=host) if a["agent_type"] == agent_type]


def wait_agent_alive(api: NeutronAPI, host: str, alive: bool = True, timeout: float = 30.0,
                     exclude_ids: Iterable[str] = ()) -> dict[str, Any]:
    """The host's OVS agent record once its ``alive`` is as asked (ids in ``exclude_ids``
    do not count: a deleted agent's old record)."""
    skip = set(exclude_ids)

    def record() -> dict[str, Any] | None:
        for agent in agent_records(api, host):
            if agent["id"] not in skip and agent["alive"] is alive:
                return agent
        return None
    return wait_for(record, timeout, what=f"agent on {host} alive={alive}")


def wait_tcp(vm: Any, ip: str, port: int, allowed: bool, timeout: float = 15.0) -> None:
    """Wait until a TCP connect from ``vm`` to ``ip:port`` succeeds (or fails) as asked."""
    wait_for(lambda: vm.tcp_connect(ip, port, timeout=1) is allowed, timeout,
             what=f"tcp {ip}:{port} {'allowed' if allowed else 'dropped'}", interval=0.3)


def wait_ping(vm: Any, ip: str, allowed: bool = True, timeout: float = 15.0) -> None:
    wait_for(lambda: vm.ping(ip, timeout=1) is allowed, timeout,
             what=f"ping {ip} {'answered' if allowed else 'dropped'}", interval=0.3)


class Pinger:
    """``count`` pings from ``vm`` to ``ip`` every ``interval`` seconds, in the background;
    ``lost()`` waits for the end and returns (lost, sent); ``unanswered`` then holds when
    (``time.time()``) each lost one was found missing, to place a gap among other events."""

    def __init__(self, vm: Any, ip: str, count: int, interval: float = 0.1) -> None:
        self.interval = interval
        self.unanswered: list[tuple[float, int]] = []
        self._proc = subprocess.Popen(
            ["ip", "netns", "exec", vm.netns, "ping", "-n", "-D", "-O", "-i", str(interval),
             "-c", str(count), "-W", "1", ip],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def stop(self) -> tuple[int, int]:
        """End the pings now (SIGINT: ping prints its summary) and return (lost, sent), the
        last ping left out when its answer was still on its way at the stop."""
        self._proc.send_signal(signal.SIGINT)
        out = self._proc.communicate(timeout=10)[0]
        answered = {int(seq) for seq in re.findall(r"icmp_seq=(\d+) ttl=", out)}
        found = re.search(r"(\d+) packets transmitted", out)
        assert found, out
        sent = int(found.group(1))
        if sent and sent not in answered:
            sent -= 1  # in flight, not lost
        self.unanswered = [(float(t), int(seq)) for t, seq in re.findall(
            r"\[(\d+\.\d+)\] no answer yet for icmp_seq=(\d+)", out) if int(seq) <= sent]
        return len(set(range(1, sent + 1)) - answered), sent

    def lost(self) -> tuple[int, int]:
        out = self._proc.communicate(timeout=120)[0]
        self.unanswered = [(float(t), int(seq)) for t, seq in re.findall(
            r"\[(\d+\.\d+)\] no answer yet for icmp_seq=(\d+)", out)]
        found = re.search(r"(\d+) packets transmitted, (\d+) received", out)
        assert found, out
        sent, received = int(found.group(1)), int(found.group(2))
        return sent - received, sent

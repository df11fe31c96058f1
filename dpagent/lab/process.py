"""Running lab commands and watching the daemons they leave behind.

Every lab component shells out to real tools (ovs-vsctl, ip, rabbitmqctl).
A failing tool must say which command failed and what it printed, so a red
functional test can be read without re-running it by hand: ``run`` raises
``LabCommandError`` carrying both.

Daemons started with ``--detach`` are re-parented to PID 1, which on this
machine class reaps lazily: a dead daemon can linger as a zombie.  ``pid_alive``
therefore treats a zombie as dead.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence


class LabError(Exception):
    """A lab component could not reach the state it promised."""


class LabCommandError(LabError):
    """A command exited non-zero (or timed out); carries argv and stderr."""

    def __init__(self, argv: Sequence[str], returncode: int | None, stdout: str, stderr: str):
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        status = "timed out" if returncode is None else f"exited {returncode}"
        detail = stderr.strip() or stdout.strip() or "(no output)"
        super().__init__(f"`{shlex.join(self.argv)}` {status}: {detail}")


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float = 30.0,
) -> str:
    """Run ``argv`` to completion and return its stdout.

    ``env`` replaces the environment entirely when given (callers pass a copy
    of ``os.environ`` with their additions), so a sandbox never inherits a
    stray ``OVS_RUNDIR`` pointing at the system OVS.
    """
    try:
        proc = subprocess.run(
            list(argv),
            input=input,
            capture_output=True,
            text=True,
            env=dict(env) if env is not None else None,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise LabCommandError(argv, None, _text(exc.stdout), _text(exc.stderr)) from exc
    if proc.returncode != 0:
        raise LabCommandError(argv, proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # The state letter follows the parenthesised command name, which may
    # itself contain spaces or parentheses: split at the last ')'.
    state = stat.rpartition(")")[2].split()[0]
    return state not in ("Z", "X")


def read_pidfile(path: str | os.PathLike[str]) -> int:
    with open(path) as f:
        return int(f.read().strip())


def terminate_pid(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM ``pid``, wait up to ``timeout``, then SIGKILL and wait again."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if wait_until(lambda: not pid_alive(pid), timeout):
            return
    raise LabError(f"process {pid} survived SIGKILL")


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate()`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def free_tcp_port(low: int = 20000, high: int = 30000, exclude: Sequence[int] = ()) -> int:
    """A TCP port on 127.0.0.1 that is free right now, from ``[low, high)``.

    The range stays below the kernel's ephemeral ports (32768+) so that a
    port derived from it (RabbitMQ's CLI uses dist port + 10000) stays valid.
    """
    rng = int.from_bytes(os.urandom(2), "big")
    for i in range(high - low):
        port = low + (rng + i) % (high - low)
        if port in exclude:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise LabError(f"no free TCP port in [{low}, {high})")


def tcp_port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` after the command name (state, ppid, pgrp, session, ...); None
    for a process that is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()
    except OSError:
        return None


def pids_in_group(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = stat_fields(int(entry))
        if fields is not None and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            found.append(int(entry))
    return found


def terminate_group(pgid: int, timeout: float = 30.0) -> None:
    """SIGTERM a process group, wait for all of it, then SIGKILL stragglers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        if wait_until(lambda: not pids_in_group(pgid), timeout, interval=0.1):
            return
    raise LabError(f"process group {pgid} survived SIGKILL")

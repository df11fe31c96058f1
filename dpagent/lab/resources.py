"""What the lab leaves on the machine, so a run can prove it left nothing.

Two kinds of leftovers outlive a crashed test: processes (detached OVS
daemons, the broker, epmd, TCP helpers) and network namespaces.  The check
must name only what *this* run created -- a developer may be running another
suite on the same machine -- so:

* ``mark_session()`` puts ``DPAGENT_LAB_SESSION=<id>`` into the environment;
  every process the run starts, and everything those start, inherits it and
  can be found through ``/proc/<pid>/environ``;
* namespaces are created through ``add_netns`` which records their names.
"""

from __future__ import annotations

import os
import signal
import uuid
from dataclasses import dataclass

from dpagent.lab import process

SESSION_ENV = "DPAGENT_LAB_SESSION"

_namespaces: set[str] = set()


def add_netns(name: str) -> None:
    process.run(["ip", "netns", "add", name])
    _namespaces.add(name)


def netns_exists(name: str) -> bool:
    return os.path.exists(f"/run/netns/{name}")


def del_netns(name: str) -> None:
    """Delete namespace ``name`` if it exists (its veths and taps go with it)."""
    if netns_exists(name):
        process.run(["ip", "netns", "del", name])
    _namespaces.discard(name)


def mark_session() -> str:
    """Tag this process's future children with a new session id, returned.

    Always a new id: a run started from inside another (tagged) run must not
    count the outer run's processes as its own.
    """
    session = uuid.uuid4().hex
    os.environ[SESSION_ENV] = session
    return session


def _ancestors() -> set[int]:
    pids = set()
    pid = os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rpartition(")")[2].split()[1])
        except OSError:
            break
    return pids


@dataclass(frozen=True)
class Leftovers:
    processes: tuple[tuple[int, str], ...]  # (pid, command line)
    namespaces: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.processes or self.namespaces)

    def describe(self) -> str:
        lines = [f"process {pid}: {cmd}" for pid, cmd in self.processes]
        lines += [f"network namespace {name}" for name in self.namespaces]
        return "\n".join(lines)


def find_leftovers(session: str) -> Leftovers:
    """Live processes tagged with ``session`` and namespaces still present."""
    marker = f"{SESSION_ENV}={session}".encode()
    ours = _ancestors()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in ours:
            continue
        pid = int(entry)
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                tagged = marker in f.read().split(b"\0")
            if not tagged or not process.pid_alive(pid):
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue  # exited meanwhile, or not ours to read
        found.append((pid, cmd))
    namespaces = tuple(sorted(n for n in _namespaces if netns_exists(n)))
    return Leftovers(tuple(sorted(found)), namespaces)


def remove_leftovers(leftovers: Leftovers) -> None:
    """SIGKILL the processes and delete the namespaces (after reporting them)."""
    for pid, _ in leftovers.processes:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for name in leftovers.namespaces:
        del_netns(name)

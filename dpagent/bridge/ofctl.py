"""A :class:`~dpagent.bridge.transport.FlowTransport` that drives ``ovs-ofctl``.

Simple and always available, but every call costs a process and ~20 ms of ovs-ofctl's own
bundle handshake; :mod:`dpagent.bridge.openflow` speaks OpenFlow directly and is the default.
Kept for operators who want to see the exact commands (they are logged at debug level) and as a
second implementation the tests compare against.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence

from dpagent.bridge.transport import BundleRejected, FlowMod, InstalledFlow, Op, SwitchError

LOG = logging.getLogger(__name__)
_LINE_ERROR = re.compile(r"-:(\d+): (.*)")
_COOKIE_ERROR = re.compile(r"cookie:(0x[0-9a-f]+)")
# ovs-ofctl leaves out cookie=0x0, table=0 and priority=32768 of a flow that has them
_DUMP_COOKIE = re.compile(r"\bcookie=(0x[0-9a-f]+)")
_DUMP_TABLE = re.compile(r"\btable=(\d+)")
_DUMP_PRIORITY = re.compile(r"\bpriority=(\d+)")


class OfctlTransport:
    """Bundles through ``ovs-ofctl -O OpenFlow15 --bundle add-flows BRIDGE -``."""

    def __init__(self, bridge: str, env: Mapping[str, str] | None = None,
                 timeout: float = 120.0) -> None:
        self.bridge = bridge
        self.env = dict(env) if env is not None else dict(os.environ)
        self.timeout = timeout

    def _ofctl(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(["ovs-ofctl", "-O", "OpenFlow15", *args], input=input,
                                  capture_output=True, text=True, env=self.env,
                                  timeout=self.timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SwitchError(f"ovs-ofctl {' '.join(args)}: {exc}") from exc

    def apply(self, mods: Sequence[FlowMod],
              before_commit: Callable[[], object] | None = None) -> None:
        if before_commit is not None:
            before_commit()  # ovs-ofctl sends and commits in one go: as late as we can
        if not mods:
            return
        lines = [_line(mod) for mod in mods]
        result = self._ofctl("--bundle", "add-flows", self.bridge, "-",
                             input="\n".join(lines) + "\n")
        if result.returncode == 0:
            return
        error = result.stderr.strip()
        found = _LINE_ERROR.search(error)
        if found and 1 <= int(found.group(1)) <= len(mods):
            raise BundleRejected(found.group(2), mods[int(found.group(1)) - 1])
        named = _COOKIE_ERROR.search(error)  # errors at commit quote the flow-mod
        if named:
            cookie = int(named.group(1), 16)
            mod = next((m for m in mods if m.cookie == cookie and m.op is Op.ADD), None)
            if mod is not None:
                raise BundleRejected(error.splitlines()[0], mod)
        if "is not a bridge" in error or "failed to connect" in error or "No such file" in error:
            raise SwitchError(error)
        raise BundleRejected(error or f"ovs-ofctl exited {result.returncode}")

    def configure_switch(self) -> None:
        result = self._ofctl("set-frags", self.bridge, "nx-match")
        if result.returncode != 0:
            raise SwitchError(result.stderr.strip() or "set-frags failed")

    def dump(self, cookie: int, mask: int) -> list[InstalledFlow]:
        result = self._ofctl("--no-stats", "dump-flows", self.bridge,
                             f"cookie={cookie:#x}/{mask:#x}")
        if result.returncode != 0:
            raise SwitchError(result.stderr.strip() or f"dump-flows exited {result.returncode}")
        installed = []
        for line in result.stdout.splitlines():
            if "actions=" not in line:
                continue  # the reply's header
            head = line.split("actions=")[0]
            found, table = _DUMP_COOKIE.search(head), _DUMP_TABLE.search(head)
            priority = _DUMP_PRIORITY.search(head)
            installed.append(InstalledFlow(int(found.group(1), 16) if found else 0,
                                           int(table.group(1)) if table else 0,
                                           int(priority.group(1)) if priority else 32768))
        return installed


def _line(mod: FlowMod) -> str:
    if mod.op is Op.ADD and mod.flow is not None:
        return f"add {mod.flow.render()}"
    if mod.flow is not None:  # a purge: the flows of a table matching a selector
        match = mod.flow.match_text()
        return (f"delete table={mod.flow.table},cookie={mod.cookie:#x}/-1"
                + (f",{match}" if match else ""))
    return f"delete cookie={mod.cookie:#x}/-1"

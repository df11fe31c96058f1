"""The switch's own tools, for the operator's questions: ``ovs-appctl`` (``ofproto/trace``,
``dpif/show``) and ``ovs-ofctl dump-flows`` (flow counters).

Asked only when an operator asks (``dpagent-ctl trace``/``rules``, a metrics scrape), never on
the agent's own path; a private OVS is found only through its run directory (``OVS_RUNDIR``).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

from flows import cookies

COMMAND_TIMEOUT = 10.0


class SwitchCommandError(RuntimeError):
    """The switch's tool failed; the message has its words."""


def vswitchd_appctl(rundir: str) -> Callable[[list[str]], str]:
    """``ovs-appctl`` aimed at the ovs-vswitchd of ``rundir`` (its pid file names its control
    socket; a private instance may have a fixed one)."""
    def run(args: list[str]) -> str:
        target = os.path.join(rundir, "ovs-vswitchd.ctl")
        if not os.path.exists(target):
            with open(os.path.join(rundir, "ovs-vswitchd.pid")) as pidfile:
                target = os.path.join(rundir, f"ovs-vswitchd.{pidfile.read().strip()}.ctl")
        return _run(["ovs-appctl", "-t", target, *args], rundir)
    return run


def dump_flows_of_kinds(rundir: str, bridge: str, kinds: list[cookies.Kind]) -> str:
    """``ovs-ofctl dump-flows`` of dpagent's flows of these owner kinds (cookie-selected, so
    the switch sends no other flow), their counters included."""
    mask = cookies.COOKIE_MASK | (0xFF << 40)
    return "".join(
        _run(["ovs-ofctl", "-O", "OpenFlow15", "dump-flows", bridge,
              f"cookie={cookies.COOKIE_VALUE | (kind << 40):#x}/{mask:#x}"], rundir)
        for kind in kinds)


def _run(argv: list[str], rundir: str) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
                              env=dict(os.environ, OVS_RUNDIR=rundir), check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SwitchCommandError(f"{argv[0]} {argv[-1] if len(argv) < 4 else argv[3]}: "
                                 f"{exc}") from exc
    if done.returncode != 0:
        raise SwitchCommandError(f"{argv[0]}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout

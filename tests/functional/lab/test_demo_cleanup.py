"""The demo leaves nothing behind: ``--stop`` removes a kept run from its state file alone, and
an interrupted demo cleans up after itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from dpagent.lab import process, resources
from dpagent.lab.demo.rig import STATE_FILE, Rig, stop_run_dir


def _gone(state: dict, pids: list[int]) -> list[str]:
    """What of a run's state still exists."""
    left = [f"netns {n}" for n in state["namespaces"] if resources.netns_exists(n)]
    left += [f"dir {d}" for d in state["directories"] if Path(d).exists()]
    left += [f"pid {p}" for p in pids if process.pid_alive(p)]
    left += [f"pid {p}: {c}" for p, c in resources.find_leftovers(state["session"]).processes]
    return left


def test_stop_removes_a_run_from_its_state_file(monkeypatch):
    session = uuid.uuid4().hex  # not the test session's: --stop kills by this tag
    monkeypatch.setenv(resources.SESSION_ENV, session)
    rig = Rig(session)
    stopped = False
    try:
        rig.start_switch(["br-phys"])
        vm = rig.plug("ext", bridge="br-phys", mac="fa:16:3e:00:00:99", cidr="10.99.0.9/24")
        vm.tcp_listen(80)
        state = json.loads((rig.run_dir / STATE_FILE).read_text())
        pids = [rig.sandbox.ovsdb_pid, rig.sandbox.vswitchd_pid]
        assert vm.netns in state["namespaces"] and str(rig.sandbox.directory) in \
            state["directories"]
        assert len(resources.find_leftovers(session).processes) >= 3  # OVS x2, the listener

        removed = stop_run_dir(rig.run_dir)
        stopped = True
        assert f"network namespace {vm.netns}" in removed
        assert _gone(state, pids) == []
    finally:
        if not stopped:
            rig.close()


def test_an_interrupted_demo_removes_everything_it_started():
    demo = subprocess.Popen([sys.executable, "-m", "dpagent.lab.demo"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert demo.stdout is not None
    lines = []
    run_dir = None
    state = None
    deadline = time.monotonic() + 90
    try:
        for line in demo.stdout:
            lines.append(line)
            if "run directory " in line and run_dir is None:
                run_dir = Path(line.split("run directory ")[1].split()[0])
            if "dpagent up" in line:  # everything runs now: OVS, broker, controller, agent
                assert run_dir is not None
                state = json.loads((run_dir / STATE_FILE).read_text())
                demo.send_signal(signal.SIGINT)
                break
            assert time.monotonic() < deadline, "".join(lines)
        rest, _ = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    output = "".join(lines) + rest
    assert state is not None, output
    assert demo.returncode == 130, output
    assert "cleaning up" in output
    assert set(state["process_groups"]) == {"dpagent", "dpagent-controller"}
    pids = list(state["process_groups"].values())
    assert _gone(state, pids) == [], output
    assert not os.path.exists(run_dir)

"""``dpagent-controller`` as the demo runs it, and the few API calls the demo makes.

The controller is a subprocess with an oslo.config file in the run directory (SQLite database,
topology file, log file there too) and its neutron-shaped HTTP API on a free local port. The
demo reads ports and agents from that API and changes the agent's administrative state with
``dpagent-ctl``, the operator's tool, so what it prints is what an operator would type.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from dpagent.lab import process
from dpagent.lab.process import LabError

AGENT_TYPE = "Open vSwitch agent"


def controller_command() -> list[str]:
    """The ``dpagent-controller`` console script of this Python environment."""
    beside = Path(sys.executable).with_name("dpagent-controller")
    found = str(beside) if beside.exists() else shutil.which("dpagent-controller")
    if found is None:
        raise LabError("dpagent-controller is not installed in this environment "
                       "(pip install -e . registers it)")
    return [found]


def ctl_command() -> list[str]:
    """``dpagent-ctl`` of this Python environment (run as a module: always present)."""
    return [sys.executable, "-m", "dpagent.cmd.ctl"]


class Controller:
    """The controller subprocess (its own session: Ctrl-C in the terminal is the demo's to
    handle) and a small client of its API."""

    def __init__(self, run_dir: Path, transport_url: str, topology: Path) -> None:
        self.run_dir = run_dir
        self.port = process.free_tcp_port()
        self.api_url = f"http://127.0.0.1:{self.port}"
        self.config = run_dir / "controller.conf"
        self.log = run_dir / "controller.log"
        self.config.write_text(
            "[DEFAULT]\n"
            f"transport_url = {transport_url}\n"
            f"log_file = {self.log}\n"
            "[controller]\n"
            f"database = {run_dir / 'controller.sqlite'}\n"
            f"topology = {topology}\n"
            "api_host = 127.0.0.1\n"
            f"api_port = {self.port}\n"
        )
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = 30.0) -> None:
        with open(self.run_dir / "controller.out", "ab") as out:
            self._proc = subprocess.Popen(
                [*controller_command(), "--config-file", str(self.config)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        proc = self._proc
        if not process.wait_until(lambda: proc.poll() is not None or self._answers(), timeout,
                                  interval=0.1) or proc.poll() is not None:
            raise LabError(f"dpagent-controller did not serve {self.api_url} within {timeout} s "
                           f"(exit {proc.poll()}):\n{self.tail()}")

    def stop(self) -> None:
        if self._proc is not None:
            process.terminate_group(self._proc.pid, timeout=10)
            self._proc.wait()
            self._proc = None

    def tail(self, lines: int = 20) -> str:
        text = ""
        for path in (self.run_dir / "controller.out", self.log):
            if path.exists():
                text += path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    # -- API -----------------------------------------------------------------------------------

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.api_url + path, timeout=5) as reply:
            return json.load(reply)

    def _answers(self) -> bool:
        try:
            self.get("/v2.0/agents")
        except (OSError, ValueError):
            return False
        return True

    def ports(self) -> dict[str, dict[str, Any]]:
        """Ports by name."""
        return {p["name"]: p for p in self.get("/v2.0/ports")["ports"]}

    def networks(self) -> dict[str, dict[str, Any]]:
        """Networks by id."""
        return {n["id"]: n for n in self.get("/v2.0/networks")["networks"]}

    def agent(self, host: str) -> dict[str, Any] | None:
        for agent in self.get("/v2.0/agents")["agents"]:
            if agent.get("host") == host and agent.get("agent_type") == AGENT_TYPE:
                return dict(agent)
        return None

    def ctl(self, *args: str) -> tuple[list[str], str]:
        """Run ``dpagent-ctl --api-url URL ARGS``; the command as shown and its output."""
        shown = ["dpagent-ctl", "--api-url", self.api_url, *args]
        result = subprocess.run([*ctl_command(), "--api-url", self.api_url, *args],
                                capture_output=True, text=True, timeout=30, check=False,
                                env=dict(os.environ))
        if result.returncode != 0:
            raise LabError(f"`{' '.join(shown)}` exited {result.returncode}: "
                           f"{result.stderr.strip() or result.stdout.strip()}")
        return shown, result.stdout

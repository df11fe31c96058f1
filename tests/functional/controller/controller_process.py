"""dpagent-controller as operators run it, for the functional tests: a process with a config
file, a real broker and an SQLite file; its API spoken to with a real HTTP client."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ControllerProcess:
    def __init__(self, directory: Path, transport_url: str, *, topology: dict | None = None,
                 agent_down_time: int = 75, fault_rate: float = 0.0,
                 fault_seed: int = 1) -> None:
        self.directory = directory
        self.database = directory / "controller.sqlite"
        self.topology_file = directory / "topology.yaml"
        self.log_file = directory / "controller.log"
        self.port = free_port()
        if topology is not None:
            self.write_topology(topology)
        self.config = directory / "controller.conf"
        self.config.write_text(f"""
[DEFAULT]
transport_url = {transport_url}
debug = true
log_file = {self.log_file}

[controller]
database = {self.database}
{f'topology = {self.topology_file}' if topology is not None else ''}
api_port = {self.port}
agent_down_time = {agent_down_time}
rpc_fault_rate = {fault_rate}
rpc_fault_seed = {fault_seed}
""")
        self.proc: subprocess.Popen[str] | None = None

    def write_topology(self, topology: dict) -> None:
        self.topology_file.write_text(yaml.safe_dump(topology))

    def start(self, timeout: float = 30.0) -> ControllerProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dpagent.cmd.controller", "--config-file", str(self.config)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the controller exited {self.proc.returncode}: "
                                     f"{self.proc.stderr.read() if self.proc.stderr else ''}")
            try:
                if self.request("GET", "/v2.0/agents")[0] == 200:
                    return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError("the controller's API did not come up")

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def reload(self) -> None:
        """SIGHUP: the topology file is applied again."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=None if body is None else json.dumps(body),
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            data = response.read()
            if response.getheader("Content-Type") == "application/yaml":
                return response.status, yaml.safe_load(data)
            return response.status, json.loads(data) if data else None
        finally:
            conn.close()

    def get(self, path: str) -> Any:
        status, body = self.request("GET", path)
        assert status == 200, body
        return body

    def ports(self) -> dict[str, dict[str, Any]]:
        return {p["name"]: p for p in self.get("/v2.0/ports")["ports"]}

    def agent(self, host: str) -> dict[str, Any] | None:
        found = self.get(f"/v2.0/agents?host={host}")["agents"]
        return found[0] if found else None

    def log(self) -> str:
        return self.log_file.read_text() if self.log_file.exists() else ""

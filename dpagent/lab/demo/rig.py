"""Everything the demo runs, in one place that can take it all down again.

The rig owns a run directory (configuration files, logs, the SQLite database, the agent's
status socket and ``state.json``), a private OVS (br-int is created by the agent, br-phys by
the rig as an operator would), a private RabbitMQ node, the controller and the agent
subprocesses, and the namespace VMs.

``state.json`` is rewritten whenever something is created: the lab session id (every process
the demo starts carries it in its environment), the namespaces and the directories. With it,
``stop_run_dir`` removes a run that was left running with ``--keep`` -- or one whose demo
process was killed before it could clean up.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from dpagent.daemon.status import query
from dpagent.lab import process, resources
from dpagent.lab.demo.controller import Controller
from dpagent.lab.netns import NetnsVM
from dpagent.lab.ovs_sandbox import OVSSandbox
from dpagent.lab.process import LabError
from dpagent.lab.rabbit import RabbitBroker

INTEGRATION_BRIDGE = "br-int"
STATE_FILE = "state.json"


class Rig:
    def __init__(self, session: str) -> None:
        self.session = session
        self.run_dir = Path(tempfile.mkdtemp(prefix="dpa-demo-"))
        self.sandbox = OVSSandbox()
        self.broker = RabbitBroker()
        self.controller: Controller | None = None
        self.agent: subprocess.Popen[bytes] | None = None
        self.vms: dict[str, NetnsVM] = {}
        self._save()

    # -- start ---------------------------------------------------------------------------------

    def start_switch(self, physical_bridges: list[str]) -> None:
        """The private OVS and the physical bridges (standalone, as an operator leaves them)."""
        self.sandbox.start()
        self._save()
        for name in physical_bridges:
            self.sandbox.vsctl("--may-exist", "add-br", name, "--", "set", "Bridge", name,
                               "datapath_type=netdev")

    def start_broker(self) -> str:
        self.broker.start()
        self._save()
        return self.broker.transport_url

    def start_controller(self, transport_url: str, topology: Path) -> Controller:
        copy = self.run_dir / "topology.yaml"
        shutil.copyfile(topology, copy)
        self.controller = Controller(self.run_dir, transport_url, copy)
        try:
            self.controller.start()
        finally:
            self._save()
        return self.controller

    def start_agent(self, transport_url: str, host: str, bridge_mappings: dict[str, str]) -> None:
        conf = self.agent_config
        mappings = ",".join(f"{k}:{v}" for k, v in sorted(bridge_mappings.items()))
        conf.write_text(
            "[DEFAULT]\n"
            f"transport_url = {transport_url}\n"
            "rpc_response_timeout = 10\n"
            f"log_file = {self.run_dir / 'dpagent.log'}\n"
            "[agent]\n"
            f"host = {host}\n"
            "report_interval = 2\n"
            f"status_socket = {self.status_socket}\n"
            "[ovs]\n"
            f"integration_bridge = {INTEGRATION_BRIDGE}\n"
            "datapath_type = netdev\n"
            f"ovsdb_connection = {self.sandbox.db_connection}\n"
            f"bridge_mappings = {mappings}\n"
            "of_interface = native\n"
        )
        with open(self.run_dir / "dpagent.out", "ab") as out:
            # Its own session, as under systemd; the sandbox's OVS_RUNDIR lets the native
            # OpenFlow transport find br-int's management socket.
            self.agent = subprocess.Popen(
                [sys.executable, "-m", "dpagent.cmd.agent", "--config-file", str(conf)],
                env=self.sandbox.env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)
        self._save()
        agent = self.agent
        if not process.wait_until(lambda: agent.poll() is not None or self._status_answers(),
                                  30, interval=0.1) or agent.poll() is not None:
            raise LabError(f"dpagent did not answer on {self.status_socket} (exit "
                           f"{agent.poll()}):\n{self.agent_log_tail()}")

    def plug(self, name: str, *, bridge: str = INTEGRATION_BRIDGE, mac: str, cidr: str,
             iface_id: str | None = None) -> NetnsVM:
        """A namespace VM, plugged like a Nova VIF (``iface_id`` given) or as a plain port."""
        vm = NetnsVM(self.sandbox, bridge, name, mac, ipv4=[cidr], iface_id=iface_id,
                     vif=iface_id is not None)
        self.vms[name] = vm
        self._save()
        return vm

    # -- state ---------------------------------------------------------------------------------

    @property
    def agent_config(self) -> Path:
        return self.run_dir / "dpagent.conf"

    @property
    def status_socket(self) -> Path:
        return self.run_dir / "status.sock"

    def agent_pid(self) -> int | None:
        return self.agent.pid if self.agent is not None else None

    def status(self) -> dict[str, Any]:
        return query(str(self.status_socket))

    def trace(self, request: dict[str, Any]) -> dict[str, Any]:
        """What ``dpagent-ctl trace`` asks the agent."""
        return query(str(self.status_socket), timeout=30.0, request=request)

    def _status_answers(self) -> bool:
        try:
            self.status()
        except (OSError, ValueError):
            return False
        return True

    def agent_log_tail(self, lines: int = 20) -> str:
        text = ""
        for name in ("dpagent.out", "dpagent.log"):
            path = self.run_dir / name
            if path.exists():
                text += path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def _save(self) -> None:
        directories = [str(self.run_dir)]
        if self.sandbox.ovsdb_pid is not None:
            directories.append(str(self.sandbox.directory))
        broker_dir = self.broker.directory
        if broker_dir is not None:
            directories.append(str(broker_dir))
        namespaces = [self.sandbox.netns] + [vm.netns for vm in self.vms.values()]
        groups = {name: pid for name, pid in (("dpagent", self.agent_pid()), (
            "dpagent-controller", self.controller.pid if self.controller else None)) if pid}
        state = {"session": self.session, "process_groups": groups, "namespaces": namespaces,
                 "directories": directories}
        tmp = self.run_dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state, indent=1) + "\n")
        tmp.replace(self.run_dir / STATE_FILE)

    # -- stop ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop everything, in the reverse order of start; keeps going past failures."""
        steps: list[Callable[[], None]] = [
            self._stop_daemons, *[vm.destroy for vm in reversed(self.vms.values())],
            self.sandbox.stop, self.broker.close, self._remove_run_dir]
        errors = []
        for step in steps:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - the rest must still be cleaned up
                errors.append(str(exc))
        self.vms.clear()
        if errors:
            raise LabError("cleanup failed: " + "; ".join(errors))

    def _remove_run_dir(self) -> None:
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def _stop_daemons(self) -> None:
        """The agent and the controller at once: each may take seconds to say goodbye."""
        with ThreadPoolExecutor(max_workers=2) as pool:
            for done in [pool.submit(self._stop_agent), pool.submit(self._stop_controller)]:
                done.result()

    def _stop_agent(self) -> None:
        if self.agent is not None:
            process.terminate_group(self.agent.pid, timeout=15)
            self.agent.wait()
            self.agent = None

    def _stop_controller(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def stop_run_dir(run_dir: Path) -> list[str]:
    """Remove a kept (or abandoned) run: its processes, namespaces and directories.

    Returns what was removed, one line each. Processes are found by the session tag in their
    environment, so nothing another run (or the system) started is touched.
    """
    state_file = run_dir / STATE_FILE
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError) as exc:
        raise LabError(f"{state_file}: not a demo run directory ({exc})") from exc
    removed = []
    # The agent and the controller first, while the broker is still there for their goodbyes;
    # by process group, as they rename themselves (cotyledon's process titles overwrite the
    # environment that carries the session tag).
    groups = {name: pgid for name, pgid in state.get("process_groups", {}).items()
              if process.pids_in_group(pgid)}
    with ThreadPoolExecutor(max_workers=max(1, len(groups))) as pool:
        list(pool.map(lambda pgid: process.terminate_group(pgid, timeout=15), groups.values()))
    removed += [f"{name} (process group {pgid})" for name, pgid in groups.items()]
    leftovers = resources.find_leftovers(state["session"])
    for pid, cmd in leftovers.processes:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        removed.append(f"process {pid}: {cmd[:100]}")
    pids = [pid for pid, _ in leftovers.processes]
    if not process.wait_until(lambda: not any(process.pid_alive(p) for p in pids), 15,
                              interval=0.1):
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for name in state["namespaces"]:
        if resources.netns_exists(name):
            resources.del_netns(name)
            removed.append(f"network namespace {name}")
    for directory in state["directories"]:
        if Path(directory).exists():
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(f"directory {directory}")
    return removed

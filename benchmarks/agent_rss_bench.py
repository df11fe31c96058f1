"""Memory benchmark of one real dpagent daemon while the rest of the cloud churns around it
(issue 16: "Memory of one agent with the cloud's other ports churning around it (e.g. 5,000
ports created on other hosts): RSS grows only with what the host references"). Not a test: it
prints figures.

One private RabbitMQ for the whole run. For each mode (``[agent] rpc_mode``: cache, then
legacy) a real neutron-server 29 of its own (``/opt/dpagent-test/neutron-venv``; API, RPC
server, periodic workers, MariaDB: each mode starts from an empty database, and the server's
close takes the mode's ports, groups and network with it), a few other hosts
(``other-host-<i>``) registered by one ``report_state`` each, with ``bridge_mappings
physnet1:br-phys``, so ML2 binds the cloud's ports to them (vif_type ``ovs``, bindings and
binding levels in every push), and on a private OVS (``OVSSandbox``): one
``dpagent`` daemon (the real process: ``python -m dpagent.cmd.agent``, threading backend, debug
off, report_interval 1, a physical bridge for physnet1), one provider VLAN network on physnet1
with a /16 subnet, groups ``web`` (egress all), ``db`` (egress all, ingress tcp/5432 from
remote group ``web``) and ``other`` (egress all; the host does not reference it). The host:
L ports in ``db`` bound to it, plugged as namespace VMs, ACTIVE and wired; 20 members of ``web``
on other hosts. Then, each phase timed (wall seconds of its API requests) and followed by a
settle:

  baseline  the host as above;
  create    C ports in ``other`` on the other hosts, on the host's own network (the hardest
            case for the cache's interest: a network it uses), by neutron's bulk create
            (``POST /v2.0/ports``, batches of 100);
  update    each of them once (``description``; one Port push each), 4 requests in flight;
  delete    half of them, 4 in flight;
  members   M ports more in ``web`` on the other hosts (referenced: the cache must hold them).

A settle is at least ``--settle`` seconds, then until the daemon's worker used less than 2 % of
a core over 2 s (the pushes and notifications of the phase consumed), at most 180 s. Then, for
every process of the daemon's session (cotyledon's service manager and its worker, started with
``start_new_session``): VmRSS and VmHWM (``/proc/<pid>/status``), PSS and USS (Private_Clean +
Private_Dirty of ``/proc/<pid>/smaps_rollup``); the worker (the status socket's ``pid``) apart.
The status socket gives the wired ports and, in cache mode, the cache's object counts and its
``bulk_pull`` calls. Legacy mode keeps no cache: its memory should be flat too, but it asks the
server (``security_group_info_for_devices``) for every change of a group it references.

    python benchmarks/agent_rss_bench.py [--quick] [--modes cache,legacy] [--cloud 5000]
                                         [--members 500] [--settle S]

``--quick``: C = 500, M = 50. Skips (prints why, exits 0) without root, OVS, the broker's
binaries or neutron's virtualenv (tools/neutron-server/setup.sh).
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dpagent.lab.process import stat_fields  # noqa: E402 - the work tree first
from tests.neutron.polling import wait_for  # noqa: E402

PHYSNET = "physnet1"
CIDR = "10.90.0.0/16"
PREFIXLEN = 16
LOCAL_PORTS = 4
WEB_OTHERS = 20
OTHER_HOSTS = 4
BATCH = 100
IN_FLIGHT = 4
QUIET_CPU = 0.02
"""share of a core the worker may use over QUIET_WINDOW seconds and count as settled"""
QUIET_WINDOW = 2.0
SETTLE_LIMIT = 180.0
TICK = os.sysconf("SC_CLK_TCK")
EGRESS_ALL = {"direction": "egress", "ethertype": "IPv4"}
OBJECT_KEYS = (("ports", "p"), ("networks", "n"), ("subnets", "s"), ("security_groups", "g"),
               ("rules", "r"), ("address_groups", "a"), ("tombstones", "t"))


# -- the daemon's processes: memory and CPU from /proc -----------------------------------------



def session_pids(sid: int) -> list[int]:
    """Live processes of session ``sid`` (after the command name: state, ppid, pgrp, session)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = stat_fields(int(entry))
            if fields is not None and int(fields[3]) == sid and fields[0] not in ("Z", "X"):
                found.append(int(entry))
    return sorted(found)


def cpu_seconds(pid: int) -> float:
    fields = stat_fields(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / TICK


@dataclass
class ProcMemory:
    """One process, KiB."""

    pid: int
    rss: int = 0
    hwm: int = 0
    pss: int = 0
    uss: int = 0


def _kib_fields(path: str) -> dict[str, int]:
    """``Key:   123 kB`` lines of a /proc file as key -> kB (empty if the process is gone)."""
    fields: dict[str, int] = {}
    with contextlib.suppress(OSError):
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                number = value.split()[:1]
                if number and number[0].isdigit():
                    fields[key] = int(number[0])
    return fields


def proc_memory(pid: int) -> ProcMemory:
    status, rollup = _kib_fields(f"/proc/{pid}/status"), _kib_fields(f"/proc/{pid}/smaps_rollup")
    mem = ProcMemory(pid, rss=status.get("VmRSS", 0), hwm=status.get("VmHWM", 0),
                     pss=rollup.get("Pss", 0))
    mem.uss = rollup.get("Private_Clean", 0) + rollup.get("Private_Dirty", 0)
    return mem


# -- one dpagent daemon on a private OVS --------------------------------------------------------

class Agent:
    """A dpagent daemon (``host``) of the given rpc_mode, its bridges and its VMs."""

    def __init__(self, sandbox: Any, directory: Path, transport_url: str, mode: str) -> None:
        tag = uuid.uuid4().hex[:6]
        self.sandbox, self.directory, self.mode = sandbox, directory, mode
        self.transport_url = transport_url
        self.host = f"rss-{mode}-{tag}"
        self.bridge = f"br-i{tag}"
        self.phys = f"br-p{tag}"
        self.vms: list[Any] = []
        self.process: subprocess.Popen[str] | None = None
        self.stderr: collections.deque[str] = collections.deque(maxlen=50)

    @property
    def status_socket(self) -> Path:
        return self.directory / "status.sock"

    @property
    def log(self) -> Path:
        return self.directory / "dpagent.log"

    def start(self) -> None:
        from tests.functional.daemon.test_daemon import start_daemon

        self.sandbox.vsctl("--may-exist", "add-br", self.phys, "--", "set", "Bridge", self.phys,
                           "datapath_type=netdev")
        extra = (f"\n[ovs]\nbridge_mappings = {PHYSNET}:{self.phys}\n\n"
                 f"[agent]\nrpc_mode = {self.mode}\n")
        self.process = start_daemon(self.directory, self.sandbox, self.transport_url,
                                    self.host, self.bridge, "threading", extra=extra,
                                    debug=False)
        proc = self.process
        # its stderr is a pipe: drained, so that a talkative daemon never blocks on it
        threading.Thread(target=self._drain, args=(proc,), daemon=True).start()
        wait_for(lambda: proc.poll() is not None or self.status_socket.exists(), 60,
                 "the daemon's status socket")
        if proc.poll() is not None:
            raise RuntimeError(f"dpagent exited {proc.returncode}: {''.join(self.stderr)}")
        wait_for(self._bridge_exists, 30, f"br-int {self.bridge}")

    def _drain(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.stderr.append(line)

    def _bridge_exists(self) -> bool:
        try:
            self.sandbox.vsctl("br-exists", self.bridge)
        except Exception:  # noqa: BLE001 - not yet
            return False
        return True

    def status(self) -> dict[str, Any]:
        from dpagent.daemon.status import query
        return query(str(self.status_socket), timeout=30.0)

    def plug(self, port: dict[str, Any]) -> None:
        from dpagent.lab.netns import NetnsVM

        ip = next(a["ip_address"] for a in port["fixed_ips"] if ":" not in a["ip_address"])
        self.vms.append(NetnsVM(self.sandbox, self.bridge, f"r{len(self.vms)}",
                                port["mac_address"], ipv4=[f"{ip}/{PREFIXLEN}"],
                                iface_id=port["id"]))

    def pids(self) -> list[int]:
        assert self.process is not None
        return session_pids(self.process.pid)

    def log_lines(self, level: str) -> int:
        try:
            with open(self.log, errors="replace") as f:
                return sum(1 for line in f if f" {level} " in line)
        except OSError:
            return 0

    def close(self) -> None:
        """SIGTERM (the service manager passes it to its worker), SIGKILL to what is left of
        the session, then the VMs and both bridges."""
        from dpagent.lab import process as lab_process

        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
        if proc is not None:
            for pid in session_pids(proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            lab_process.wait_until(lambda: not session_pids(proc.pid), 10, interval=0.1)
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        for vm in reversed(self.vms):
            with contextlib.suppress(Exception):
                vm.destroy()
        self.vms.clear()
        for bridge in (self.bridge, self.phys):
            with contextlib.suppress(Exception):
                self.sandbox.del_bridge(bridge)




# -- the cloud: neutron's API ------------------------------------------------------------------

def register_hosts(transport_url: str, names: list[str]) -> None:
    """One report_state each (agent_down_time is an hour): ML2 binds ports to them."""
    from oslo_config import cfg

    from dpagent import conf as dpagent_conf
    from dpagent.rpc.state_report import StateReporter, agent_configurations
    from dpagent.rpc.transport import make_transport

    conf = cfg.ConfigOpts()
    dpagent_conf.register_opts(conf)
    conf(args=[], default_config_files=[])
    conf.set_override("bridge_mappings", {PHYSNET: "br-phys"}, group="ovs")
    configs = agent_configurations(conf)
    transport = make_transport(cfg.ConfigOpts(), transport_url)
    try:
        for name in names:
            reporter = StateReporter(transport, name, interval=3600.0, timeout=60.0,
                                     configurations=configs)
            reply = reporter.report_once()
            if reply not in ("new", "alive", "revived"):
                raise RuntimeError(f"{name}: report_state failed: {reporter.status()}")
    finally:
        transport.cleanup()


def group(api: Any, name: str, *rules: dict[str, Any]) -> dict[str, Any]:
    sg: dict[str, Any] = api.create_security_group(name)
    for rule in rules:
        api.create_security_group_rule(sg["id"], **rule)
    return sg


def parallel(func: Callable[[Any], Any], items: Iterable[Any],
             workers: int = IN_FLIGHT) -> list[Any]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(func, items))


@dataclass
class Cloud:
    """What one mode creates at its server (which goes with all of it at the mode's end)."""

    api: Any
    net: dict[str, Any] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)
    ports: set[str] = field(default_factory=set)
    bulk: bool | None = None
    """None: not tried yet; False: the server refused bulk creates (single ones instead)"""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def port_body(self, host: str, sg_id: str, name: str) -> dict[str, Any]:
        return {"network_id": self.net["id"], "device_owner": "compute:nova",
                "device_id": str(uuid.uuid4()), "binding:host_id": host,
                "security_groups": [sg_id], "name": name}

    def create_ports(self, count: int, hosts: list[str], sg_id: str, prefix: str) -> list[str]:
        """``count`` ports in ``sg_id``, spread over ``hosts``: bulk creates of BATCH (single
        creates, IN_FLIGHT at a time, if the server refuses bulk)."""
        from dpagent.lab.neutron_server import NeutronAPIError

        bodies = [self.port_body(hosts[i % len(hosts)], sg_id, f"{prefix}-{i}")
                  for i in range(count)]
        made: list[str] = []
        while bodies and self.bulk is not False:
            batch, bodies = bodies[:BATCH], bodies[BATCH:]
            try:
                reply = self.api.post("/v2.0/ports", {"ports": batch})
            except NeutronAPIError as exc:
                if self.bulk:  # it worked before: a real failure
                    raise
                print(f"  (bulk port create refused: {exc}; single creates instead)")
                self.bulk, bodies = False, batch + bodies
                break
            self.bulk = True
            ids = [p["id"] for p in reply["ports"]]
            self._made(ids)
            made += ids
        if bodies:
            def one(body: dict[str, Any]) -> str:
                port_id: str = self.api.post("/v2.0/ports", {"port": body})["port"]["id"]
                self._made([port_id])
                return port_id
            made += parallel(one, bodies)
        return made

    def _made(self, ids: list[str]) -> None:
        with self.lock:
            self.ports.update(ids)

    def update_ports(self, ids: list[str]) -> None:
        parallel(lambda port_id: self.api.update_port(port_id, description="churned"), ids)

    def delete_ports(self, ids: list[str]) -> None:
        def one(port_id: str) -> None:
            self.api.delete_port(port_id)
            with self.lock:
                self.ports.discard(port_id)
        parallel(one, ids)


# -- one mode ----------------------------------------------------------------------------------

@dataclass
class Sample:
    """The daemon after one phase and its settle."""

    phase: str
    wall: float
    settle: float
    worker: ProcMemory
    processes: list[ProcMemory]
    wired: int
    objects: dict[str, int] | None
    bulk_pulls: int | None

    @property
    def total_rss(self) -> int:
        return sum(p.rss for p in self.processes)

    @property
    def total_pss(self) -> int:
        return sum(p.pss for p in self.processes)


@dataclass
class Run:
    mode: str
    samples: list[Sample] = field(default_factory=list)
    setup: float = 0.0
    teardown: float = 0.0
    bulk: bool | None = None
    log_errors: int = 0
    log_warnings: int = 0
    failure: str | None = None


def settle(agent: Agent, minimum: float) -> float:
    """Seconds until the worker is quiet (see the module's docstring)."""
    started = time.monotonic()
    time.sleep(minimum)
    worker = int(agent.status()["pid"])
    before = cpu_seconds(worker)
    while time.monotonic() - started < SETTLE_LIMIT:
        time.sleep(QUIET_WINDOW)
        now = cpu_seconds(worker)
        if now - before < QUIET_CPU * QUIET_WINDOW:
            break
        before = now
    return time.monotonic() - started


def sample(agent: Agent, phase: str, wall: float, minimum: float) -> Sample:
    waited = settle(agent, minimum)
    status = agent.status()
    worker_pid = int(status["pid"])
    processes = [proc_memory(pid) for pid in agent.pids()]
    worker = next((p for p in processes if p.pid == worker_pid),
                  max(processes, key=lambda p: p.rss))
    resources = status.get("resources") or {}
    return Sample(phase, wall, waited, worker, processes,
                  int((status.get("ports") or {}).get("wired", 0)),
                  resources.get("objects"), resources.get("bulk_pulls"))


def run_mode(server: Any, sandbox: Any, others: list[str], mode: str,
             args: argparse.Namespace, run: Run) -> None:
    """One agent of ``mode`` through the phases; ``run`` filled as it goes."""
    import tempfile

    from dpagent.lab.neutron_server import NeutronAPI

    api = NeutronAPI(server.api_url, timeout=600.0)
    tag = uuid.uuid4().hex[:6]
    cloud = Cloud(api)
    with contextlib.ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dpa-rss-")))
        agent = Agent(sandbox, directory, server.transport_url, mode)

        def teardown() -> None:
            started = time.monotonic()
            agent.close()
            run.teardown = time.monotonic() - started
        stack.callback(teardown)

        started = time.monotonic()
        agent.start()
        wait_for(lambda: any(a["alive"] and a["agent_type"] == "Open vSwitch agent"
                             for a in api.list_agents(host=agent.host)), 60,
                 f"agent {agent.host} alive at the server")
        cloud.net = api.create_network(f"rss-{tag}", "vlan", PHYSNET)
        api.create_subnet(cloud.net["id"], CIDR)
        web = group(api, f"web-{tag}", EGRESS_ALL)
        cloud.groups.append(web["id"])
        db = group(api, f"db-{tag}", EGRESS_ALL,
                   {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                    "port_range_min": 5432, "port_range_max": 5432,
                    "remote_group_id": web["id"]})
        cloud.groups.append(db["id"])
        other = group(api, f"other-{tag}", EGRESS_ALL)
        cloud.groups.append(other["id"])

        local = []
        for i in range(LOCAL_PORTS):
            port = api.create_port(cloud.net["id"], host=agent.host, security_groups=[db["id"]],
                                   name=f"local-{i}")
            cloud.ports.add(port["id"])
            if port.get("binding:vif_type") != "ovs":
                raise RuntimeError(f"local port not bound: {port.get('binding:vif_type')!r}")
            local.append(port)
            agent.plug(port)
        wait_for(lambda: all(api.show_port(p["id"])["status"] == "ACTIVE" for p in local), 120,
                 "the host's ports ACTIVE", interval=0.5)
        wait_for(lambda: (agent.status().get("ports") or {}).get("wired") == LOCAL_PORTS, 60,
                 f"{LOCAL_PORTS} ports wired")
        cloud.create_ports(WEB_OTHERS, others, web["id"], f"web0-{tag}")
        run.setup = time.monotonic() - started
        run.samples.append(sample(agent, "baseline", 0.0, args.settle))

        churn = step("create", lambda: cloud.create_ports(args.cloud, others, other["id"],
                                                          f"cloud-{tag}"),
                     agent, run, args, args.cloud)
        run.bulk = cloud.bulk
        step("update", lambda: cloud.update_ports(churn), agent, run, args, len(churn))
        half = churn[: len(churn) // 2]
        step("delete", lambda: cloud.delete_ports(half), agent, run, args, len(half))
        step("members", lambda: cloud.create_ports(args.members, others, web["id"],
                                                   f"web1-{tag}"),
             agent, run, args, args.members)
        run.log_errors, run.log_warnings = agent.log_lines("ERROR"), agent.log_lines("WARNING")


def step(name: str, action: Callable[[], Any], agent: Agent, run: Run,
         args: argparse.Namespace, count: int) -> Any:
    """``action`` timed, then the daemon sampled; what the action returned."""
    started = time.monotonic()
    result = action()
    wall = time.monotonic() - started
    run.samples.append(sample(agent, f"{name} {count}", wall, args.settle))
    return result


# -- report ------------------------------------------------------------------------------------

def mib(kib: int) -> str:
    return f"{kib / 1024:6.1f}"


def delta(kib: int, base: int) -> str:
    return f"{(kib - base) / 1024:+6.1f}"


def objects(counts: dict[str, int] | None) -> str:
    if counts is None:
        return "(no cache)"
    return " ".join(f"{short}{counts.get(key, 0)}" for key, short in OBJECT_KEYS)


HEADER = (f"  {'mode':<6} {'phase':<13} {'wall s':>7} {'settle':>6}  {'worker RSS':>10} "
          f"{'(delta)':>7} {'PSS':>6} {'USS':>6} {'HWM':>6}  {'total RSS':>9} {'(delta)':>7} "
          f"{'PSS':>6} {'procs':>5}  {'wired':>5} {'pulls':>5}  cache objects")


def print_run(run: Run) -> None:
    if not run.samples:
        return
    base = run.samples[0]
    for s in run.samples:
        w = s.worker
        print(f"  {run.mode:<6} {s.phase:<13} {s.wall:7.1f} {s.settle:6.1f}  {mib(w.rss):>10} "
              f"{delta(w.rss, base.worker.rss):>7} {mib(w.pss)} {mib(w.uss)} {mib(w.hwm)}  "
              f"{mib(s.total_rss):>9} {delta(s.total_rss, base.total_rss):>7} "
              f"{mib(s.total_pss)} {len(s.processes):>5}  {s.wired:>5} "
              f"{'-' if s.bulk_pulls is None else s.bulk_pulls:>5}  {objects(s.objects)}")


def conclusion(run: Run, cloud: int, members: int) -> str:
    by_phase = {s.phase.split()[0]: s for s in run.samples}
    if not {"baseline", "delete", "members"} <= set(by_phase):
        return f"{run.mode}: incomplete ({run.failure or 'no samples'})"
    base, churned, grown = by_phase["baseline"], by_phase["delete"], by_phase["members"]
    peak = max(s.worker.rss for s in run.samples)
    churn_kib = churned.worker.rss - base.worker.rss
    member_kib = grown.worker.rss - churned.worker.rss
    text = (f"{run.mode}: the worker's RSS went {base.worker.rss / 1024:.1f} -> "
            f"{churned.worker.rss / 1024:.1f} MiB through the churn of {cloud} unreferenced "
            f"ports (created, updated, half deleted: {churn_kib / 1024:+.1f} MiB, "
            f"{churn_kib * 1024 / max(1, cloud):+.0f} B per churned port; peak "
            f"{peak / 1024:.1f} MiB, VmHWM {max(s.worker.hwm for s in run.samples) / 1024:.1f}"
            f" MiB), then {member_kib / 1024:+.1f} MiB for {members} referenced members "
            f"({member_kib / max(1, members):+.2f} KiB each; USS "
            f"{(grown.worker.uss - churned.worker.uss) / max(1, members):+.2f} KiB each)")
    if base.objects is not None and churned.objects is not None and grown.objects is not None:
        text += (f"; cached ports {base.objects.get('ports')} -> "
                 f"{churned.objects.get('ports')} after the churn -> "
                 f"{grown.objects.get('ports')} with the members, tombstones "
                 f"{churned.objects.get('tombstones')}, bulk_pulls {base.bulk_pulls} -> "
                 f"{grown.bulk_pulls}")
    return text + "."


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 cloud ports, 50 members")
    parser.add_argument("--modes", default="cache,legacy", help="default cache,legacy")
    parser.add_argument("--cloud", type=int, help="ports churned on other hosts (default 5000)")
    parser.add_argument("--members", type=int, help="members added to web (default 500)")
    parser.add_argument("--settle", type=float, default=5.0,
                        help="shortest settle after each phase, seconds (default 5)")
    args = parser.parse_args()
    args.cloud = args.cloud if args.cloud is not None else (500 if args.quick else 5000)
    args.members = args.members if args.members is not None else (50 if args.quick else 500)
    modes = [m.strip() for m in args.modes.split(",")]
    if any(m not in ("legacy", "cache") for m in modes) or args.cloud < 2 or args.members < 1:
        parser.error("--modes: cache and/or legacy; --cloud >= 2; --members >= 1")

    sys.path.insert(0, str(ROOT))  # tests.functional.daemon: the daemon as the tests start it
    from dpagent.lab.neutron_server import start_bench
    from dpagent.lab.ovs_sandbox import REQUIRED_BINARIES as OVS_BINARIES
    if not start_bench("agent RSS benchmark", [*OVS_BINARIES, "ip"]):
        return 0
    from dpagent.lab import resources
    from dpagent.lab.neutron_server import NeutronServer
    from dpagent.lab.ovs_sandbox import OVSSandbox
    from dpagent.lab.rabbit import RabbitBroker
    session = resources.mark_session()

    started = time.monotonic()
    runs: list[Run] = []
    others = [f"other-host-{i}" for i in range(OTHER_HOSTS)]
    print("agent RSS benchmark: one dpagent daemon (real process, private OVS) against "
          "neutron-server 29 while the cloud churns around it")
    print(f"  host: {LOCAL_PORTS} ports in db (tcp/5432 from remote group web), {WEB_OTHERS}"
          f" web members elsewhere; cloud: {args.cloud} ports in group other on "
          f"{OTHER_HOSTS} other hosts, same network; then {args.members} web members; "
          f"modes {', '.join(modes)}")
    with RabbitBroker.from_env() as broker:
        for mode in modes:
            run = Run(mode)
            runs.append(run)
            mode_started = time.monotonic()
            try:
                # a server of its own per mode: each starts from an empty database, and its
                # close takes every port, group and network of the mode with it
                with NeutronServer(broker, agent_down_time=3600) as server, \
                        OVSSandbox() as sandbox:
                    print(f"  {mode}: neutron-server and OVS up in "
                          f"{time.monotonic() - mode_started:.1f} s ({server.timings})")
                    register_hosts(server.transport_url, others)
                    run_mode(server, sandbox, others, mode, args, run)
            except Exception as exc:  # noqa: BLE001 - report what did fit
                run.failure = f"{type(exc).__name__}: {exc}"
                print(f"  {mode}: failed: {run.failure}")
            print(f"  {mode}: set-up {run.setup:.1f} s, daemon stopped {run.teardown:.1f} s, "
                  f"{time.monotonic() - mode_started:.0f} s in all; port creates "
                  f"{'bulk' if run.bulk else 'single' if run.bulk is False else '-'}; "
                  f"daemon log: {run.log_errors} ERROR, {run.log_warnings} WARNING lines")
    leftovers = resources.find_leftovers(session)
    if leftovers:
        resources.remove_leftovers(leftovers)

    print("\nthe daemon after each phase and its settle (MiB; delta: against the baseline)")
    print(HEADER)
    for run in runs:
        print_run(run)
    print("  wall: the phase's API requests; settle: until the worker was quiet; worker: the "
          "status socket's pid; total: every process of the daemon's session;\n"
          "  HWM: the worker's VmHWM (peak RSS so far); pulls: the cache's bulk_pull calls so "
          "far; objects: p ports, n networks, s subnets, g groups, r rules,\n"
          "  a address groups, t tombstones (revision marks of deleted or passed-over objects)")
    print()
    for run in runs:
        print("  " + conclusion(run, args.cloud, args.members))
        if run.failure:
            print(f"  {run.mode}: stopped at {run.failure}")
    print(f"  left behind: {leftovers.describe() if leftovers else 'nothing'}")
    print(f"\n  ({time.monotonic() - started:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

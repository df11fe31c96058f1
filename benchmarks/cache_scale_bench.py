"""Scale benchmark of ``[agent] rpc_mode`` (issue: "N simulated hosts registered with the real
server; for one member change and one rule change: calls neutron-server receives, its CPU
seconds, time until every host applied it; cache mode against legacy mode"). Not a test: it
prints figures.

One private RabbitMQ and one real neutron-server 29 (``/opt/dpagent-test/neutron-venv``: API
under uWSGI, ``neutron-rpc-server``, ``neutron-periodic-workers``, MariaDB; one worker each) for
the whole run, one provider VLAN network on physnet1 with a subnet. For each N (hosts) and each
mode, legacy then cache, a fresh pair of groups -- ``web`` (egress all) and ``db`` (egress all,
ingress tcp/5432 from remote group ``web``) -- and N simulated hosts, each with a host name of
its own, registered by one ``report_state`` (:meth:`StateReporter.report_once`, configurations
from :func:`agent_configurations` with ``bridge_mappings physnet1:br-phys``, so ML2 openvswitch
binds ports to it) and with 2 ports in ``db`` bound to it (``binding:host_id``, answered with
vif_type ``ovs``). So every host's rules name remote group ``web``.

A simulated host is the agent's control-plane side only, in this process:

* legacy: consumes ``q-agent-notifier-security_group-update``; a ``security_groups_member_
  updated`` for a group its rules name, or a ``security_groups_rule_updated`` for a group of
  its ports, marks the host dirty, and the host's worker (a pool thread; notifications that
  arrive meanwhile coalesce into one more call, as the agent core's work queue does) calls
  :meth:`PluginApi.security_group_info_for_devices` for its ports -- as the agent core does;
  its start: one such call.
* cache: a :class:`CacheControlPlane` over a :class:`ResourcesApi` of its own (its
  ``bulk_pull`` calls counted), filled at start by ``get_devices_details`` and
  ``security_group_info`` of its ports, then kept by a :class:`ResourcePushes` of its own;
  the agent stub's ``security_groups_member_updated`` / ``_rule_updated`` re-derive
  ``security_group_info`` from the cache (a server call only for a gap).

One of the N hosts is real (unless ``--no-real-host``): a ``dpagent`` daemon in the run's
mode on a private OVS (netdev), with its 2 ports plugged as namespace VMs, registered by its
own ``report_state`` (no further heartbeat in the run); it converged when the change's flow is
on its br-int (``ovs-ofctl dump-flows`` every 20 ms). Its server calls are in ``rx`` (the
broker's count), not in ``calls`` (the simulated hosts' own count).

Either way, the host converged at the first reply (legacy) or derivation (cache) that shows
the change. Consumers are shared: one RPC server per topic (legacy: the security-group topic;
cache: every ``neutron-vo-<Type>-<version>`` of :data:`PUSHED`) for all hosts of a run, its
handler fanning each message out to every host in-process (the pushes one host after the
other on the topic's consumer thread). What the server does for a fanout cast is one publish
to the fanout exchange whatever the number of consumers (the broker copies it to every queue),
so sharing changes nothing it sees; the hosts' calls are theirs, each from its own client,
concurrently (hosts spread over transports of ``--hosts-per-transport`` hosts, each
transport with its reply queue). No heartbeats: the server is started with
``agent_down_time`` of an hour, so one report keeps a host alive all run and no
``report_state`` lands in a measured window (real hosts would add N / report_interval calls a
second, in either mode).

Two changes per (N, mode), each timed from the moment the API request is sent (the expected
result chosen beforehand, so a host can recognise it even before the API answers):

  member  a new port in ``web`` with a chosen fixed IP, bound to the run's first host: done
          when that IP is among ``sg_member_ips[web]``;
  rule    ``db`` gets ingress tcp/22 from ``web``: done when the rule is in
          ``security_groups[db]``.

The change window lasts until every host converged (or ``--timeout``), no host's call is in
flight and none started or ended for 0.5 s (a later notification's calls count too), and at
least ``--window`` seconds passed; then an idle window of the same length (nothing sent) is
measured, which also lets the server settle before the next change. In both windows:

  calls     server calls the simulated hosts made (client side: security_group_info_for_
            devices in legacy, bulk_pull in cache: every one goes to the server);
  rx        messages that entered the ``q-plugin`` queue, the broker's count (the classic
            queue's ``next_seq_id``, by ``rabbitmqctl eval`` before and after): the server's
            side of the same;
  sql       statements MariaDB executed (``Questions``), the server's database work;
  pushes    OVO pushes the API process sent (its "Pushing event" log lines), either mode;
  CPU       utime + stime (``/proc/<pid>/stat``) of every neutron process -- API (uWSGI
            master and worker), RPC server (parent and workers), periodic workers -- summed,
            then the RPC server alone, the API alone and MariaDB, each with the idle window's
            figure in parentheses; 10 ms clock ticks;
  p50/p99/max  convergence over the N hosts (p99 interpolated: at N < 100 it lies between
            the two slowest hosts), and how many converged.

The simulated hosts share this process (and the 2 cores) with the server: their own CPU
(legacy: the replies' checks; cache: N parses of each push and N derivations) is in the
convergence times, not in the server's figures. neutron's debug logging (the lab server's
``debug = true``) is part of its CPU in both modes.

    python benchmarks/cache_scale_bench.py [--quick] [--hosts 10,50] [--modes legacy,cache]
                                           [--window S] [--timeout S]

Default N = 10 and 50 (``--quick``: 5 and 10). Skips (prints why, exits 0) without root, the
broker's binaries or neutron's virtualenv (tools/neutron-server/setup.sh).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dpagent.lab.process import stat_fields  # noqa: E402 - the work tree first

PHYSNET = "physnet1"
PORTS_PER_HOST = 2
CIDR = "10.80.0.0/16"
MEMBER_IPS = (f"10.80.250.{i}" for i in range(1, 250))
RULE_PORT = 22
QUIET = 0.5
"""seconds without a host's call starting or ending before a change window may end"""
FLOW_POLL = 0.02
"""how often the real host's br-int is dumped, seconds"""
TICK = os.sysconf("SC_CLK_TCK")
CPU_CLASSES = ("api", "rpc", "periodic", "db")
NEUTRON = ("api", "rpc", "periodic")
CPU_NAMES = {"uwsgi": "api", "neutron-rpc-server": "rpc", "neutron-periodic-workers": "periodic",
             "mariadbd": "db"}


# -- the server's side: CPU from /proc, messages from its logs ---------------------------------



def _cmd(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class ServerCpu:
    """CPU seconds of the server's processes by class: every process whose working directory
    is under the server's (NeutronServer starts them there; MariaDB moves to its data
    directory below it), classed by its process group's leader (each server process is
    started in a session of its own)."""

    def __init__(self, directory: Path) -> None:
        self.directory = str(directory)

    def processes(self) -> dict[int, str]:
        found: dict[int, str] = {}
        leaders: dict[int, str] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                continue
            if not (cwd == self.directory or cwd.startswith(self.directory + "/")):
                continue
            fields = stat_fields(pid)
            if fields is None:
                continue
            pgid = int(fields[2])
            if pgid not in leaders:
                cmd = _cmd(pgid) or _cmd(pid)
                leaders[pgid] = next((c for name, c in CPU_NAMES.items() if name in cmd),
                                     "other")
            found[pid] = leaders[pgid]
        return found

    def sample(self) -> dict[int, tuple[str, float]]:
        """pid -> (class, CPU seconds so far)."""
        result = {}
        for pid, kind in self.processes().items():
            fields = stat_fields(pid)
            if fields is not None:  # utime, stime: fields 14 and 15 of stat
                result[pid] = (kind, (int(fields[11]) + int(fields[12])) / TICK)
        return result

    @staticmethod
    def delta(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
              ) -> dict[str, float]:
        """CPU seconds per class between two samples (a process new since: all of its)."""
        spent = dict.fromkeys(CPU_CLASSES, 0.0)
        for pid, (kind, seconds) in after.items():
            spent[kind] = spent.get(kind, 0.0) + seconds - before.get(pid, (kind, 0.0))[1]
        return spent


_PUSHED = re.compile(r"Pushing event \w+ for resources: \{'(\w+)'")


class BrokerCounts:
    """Messages that entered the server's queues so far, as the broker counts them: the
    classic queue's ``next_seq_id`` (every message published to it, delivered straight to a
    waiting consumer or not), read with ``rabbitmqctl eval``. None with an external broker."""

    QUEUES = ("q-plugin", "q-reports-plugin")

    def __init__(self, broker: Any, vhost: str) -> None:
        self.broker, self.vhost = broker, vhost

    def sample(self) -> dict[str, int] | None:
        if self.broker.external_url is not None:
            return None
        names = ", ".join(f'<<"{q}">>' for q in self.QUEUES)
        expression = (
            "lists:flatmap(fun(N) -> case rabbit_amqqueue:lookup(rabbit_misc:r("
            f'<<"{self.vhost}">>, queue, N)) of {{ok, Q}} -> [{{N, proplists:get_value('
            "next_seq_id, proplists:get_value(backing_queue_status, rabbit_amqqueue:info(Q, "
            f"[backing_queue_status])))}}]; _ -> [] end end, [{names}]).")
        try:
            out = self.broker.eval(expression)
        except Exception:  # noqa: BLE001 - the figure is left out
            return None
        return {name: int(n) for name, n in re.findall(r'<<"([^"]+)">>,(\d+)', out)}

    @staticmethod
    def delta(before: dict[str, int] | None, after: dict[str, int] | None) -> int | None:
        if before is None or after is None or "q-plugin" not in after:
            return None
        return after["q-plugin"] - before.get("q-plugin", 0)


class SqlCounts:
    """Statements MariaDB executed so far (``Questions``; each sample costs 2: the client's
    start-up query and the SHOW)."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def sample(self) -> int | None:
        try:
            out = subprocess.run(
                ["mariadb", "--no-defaults", f"--socket={self.socket}", "-uroot", "-N", "-e",
                 "SHOW GLOBAL STATUS LIKE 'Questions'"], capture_output=True, text=True,
                timeout=30, check=True).stdout
            return int(out.split()[-1])
        except (OSError, subprocess.SubprocessError, ValueError, IndexError):
            return None

    @staticmethod
    def delta(before: int | None, after: int | None) -> int | None:
        return None if before is None or after is None else after - before - 2


class LogCounter:
    """Counts lines of a log file matching ``pattern`` (by its first group), from where the
    file ended at the previous ``poll``."""

    def __init__(self, path: Path, pattern: re.Pattern[str]) -> None:
        self.path = path
        self.pattern = pattern
        self.offset = path.stat().st_size if path.exists() else 0
        self.total: Counter[str] = Counter()
        self._partial = b""

    def poll(self) -> Counter[str]:
        """What was added since the last poll (complete lines only)."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return Counter()
        self.offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        found: Counter[str] = Counter()
        for line in lines:
            match = self.pattern.search(line.decode(errors="replace"))
            if match:
                found[match.group(1)] += 1
        self.total.update(found)
        return found


# -- what a host must see ----------------------------------------------------------------------

@dataclass
class Probe:
    """One change being watched: which hosts saw it, how long after ``started``."""

    kind: str
    expected: Callable[[dict[str, Any]], bool]
    hosts: int
    started: float | None = None
    seen: dict[str, float] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, host: str, info: dict[str, Any]) -> None:
        if self.started is not None and host not in self.seen and self.expected(info):
            self.record(host)

    def record(self, host: str) -> None:
        started = self.started
        if started is None or host in self.seen:
            return
        elapsed = time.monotonic() - started
        with self.lock:
            self.seen.setdefault(host, elapsed)
            if len(self.seen) >= self.hosts:
                self.done.set()


def member_shown(web: str, ip: str) -> Callable[[dict[str, Any]], bool]:
    def shown(info: dict[str, Any]) -> bool:
        members = (info.get("sg_member_ips") or {}).get(web) or {}
        return any(entry and entry[0] == ip for entry in members.get("IPv4") or [])
    return shown


def rule_shown(db: str, web: str, port: int) -> Callable[[dict[str, Any]], bool]:
    def shown(info: dict[str, Any]) -> bool:
        rules = (info.get("security_groups") or {}).get(db) or []
        return any(r.get("direction") == "ingress" and r.get("protocol") in ("tcp", "6")
                   and r.get("port_range_min") == port and r.get("remote_group_id") == web
                   for r in rules)
    return shown


class Bench:
    """What the simulated hosts of one run share: the probe being watched, the call count."""

    def __init__(self) -> None:
        self.probe: Probe | None = None
        self.lock = threading.Lock()
        self.calls = 0
        self.inflight = 0
        self.last_activity = time.monotonic()
        """when a call of a host last started or ended"""
        self.errors: Counter[str] = Counter()

    def check(self, host: str, info: dict[str, Any]) -> None:
        probe = self.probe
        if probe is not None:
            probe.check(host, info)

    @contextlib.contextmanager
    def calling(self) -> Any:
        with self.lock:
            self.calls += 1
            self.inflight += 1
            self.last_activity = time.monotonic()
        try:
            yield
        finally:
            with self.lock:
                self.inflight -= 1
                self.last_activity = time.monotonic()

    def error(self, what: str) -> None:
        with self.lock:
            self.errors[what] += 1


class LegacyHost:
    """A host of ``rpc_mode = legacy``: refetch the security-group info of its ports when a
    notification names a group it uses, one call at a time, notifications coalescing."""

    def __init__(self, bench: Bench, name: str, plugin: Any, ports: list[str],
                 pool: concurrent.futures.Executor) -> None:
        self.bench, self.name, self.plugin, self.ports, self.pool = bench, name, plugin, ports, pool
        self.groups: set[str] = set()
        self.remote_groups: set[str] = set()
        self._lock = threading.Lock()
        self._busy = False
        self._again = False

    def fetch(self) -> dict[str, Any]:
        with self.bench.calling():
            info: dict[str, Any] = self.plugin.security_group_info_for_devices(self.ports).info
        return info

    def start(self) -> None:
        info = self.fetch()
        self.groups = {sg for d in info["devices"].values() for sg in d["security_groups"]}
        self.remote_groups = set(info["sg_member_ips"])

    def rule_updated(self, sg_ids: Iterable[str]) -> None:
        if self.groups & set(sg_ids):
            self._kick()

    def member_updated(self, sg_ids: Iterable[str]) -> None:
        if self.remote_groups & set(sg_ids):
            self._kick()

    def _kick(self) -> None:
        with self._lock:
            if self._busy:
                self._again = True
                return
            self._busy = True
        self.pool.submit(self._work)

    def _work(self) -> None:
        while True:
            with self._lock:
                self._again = False
            try:
                info = self.fetch()
            except Exception as exc:  # noqa: BLE001 - counted, the host carries on
                self.bench.error(f"{type(exc).__name__}: {exc}"[:120])
            else:
                self.bench.check(self.name, info)
            with self._lock:
                if not self._again:
                    self._busy = False
                    return


class RealHost:
    """The one host of a run that is the whole agent: a ``dpagent`` daemon in the run's mode on
    the lab's private OVS (its own br-int and physical bridge), its ports plugged as namespace
    VMs. Converged when its br-int holds the change's flow: ``ovs-ofctl dump-flows`` every
    :data:`FLOW_POLL` s on a thread of its own (so its times are late by up to that much)."""

    def __init__(self, lab: Lab, bench: Bench, name: str, mode: str) -> None:
        from tests.functional.daemon.test_daemon import start_daemon

        tag = uuid.uuid4().hex[:6]
        self.lab, self.bench, self.name = lab, bench, name
        self.bridge, self.phys = f"br-i{tag}", f"br-p{tag}"
        self.directory = lab.directory / name
        self.directory.mkdir()
        self.vms: list[Any] = []
        self.expected: dict[str, str] = {}
        """probe kind -> a text the change's flow has"""
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="real-host", daemon=True)
        sandbox = lab.sandbox
        sandbox.vsctl("--may-exist", "add-br", self.phys, "--", "set", "Bridge", self.phys,
                      "datapath_type=netdev")
        extra = f"\n[ovs]\nbridge_mappings = {PHYSNET}:{self.phys}\n" \
                f"\n[agent]\nrpc_mode = {mode}\n"
        # heartbeats: one at start, then none in the run (the server's agent_down_time is long)
        self.process = start_daemon(self.directory, sandbox, lab.server.transport_url, name,
                                    self.bridge, "threading", extra=extra, debug=False,
                                    report_interval=3000, rpc_timeout=60)

    def wait_registered(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.lab.api.list_agents(host=self.name):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"real host {self.name} did not register "
                                   f"(exit {self.process.poll()})")
            time.sleep(0.2)

    def plug(self, ports: list[dict[str, Any]], timeout: float = 60.0) -> None:
        """Plug VMs for ``ports`` and wait until they are ACTIVE with their flows."""
        from dpagent.lab.netns import NetnsVM

        for i, port in enumerate(ports):
            ip = port["fixed_ips"][0]["ip_address"]
            self.vms.append(NetnsVM(self.lab.sandbox, self.bridge, f"rh{i}",
                                    port["mac_address"], ipv4=[f"{ip}/16"],
                                    iface_id=port["id"]))
        deadline = time.monotonic() + timeout
        while any(self.lab.api.show_port(p["id"])["status"] != "ACTIVE" for p in ports):
            if time.monotonic() > deadline:
                raise RuntimeError(f"real host {self.name}: ports not ACTIVE in {timeout} s")
            time.sleep(0.3)
        self._watcher.start()

    def _watch(self) -> None:
        while not self._stop.wait(FLOW_POLL):
            probe = self.bench.probe
            if probe is None or probe.started is None or self.name in probe.seen:
                continue
            text = self.expected.get(probe.kind)
            try:
                flows = self.lab.sandbox.ofctl("dump-flows", self.bridge)
            except Exception:  # noqa: BLE001 - a dump that failed is tried again
                self.bench.error("real host: dump-flows failed")
                continue
            if text is not None and text in flows:
                probe.record(self.name)

    def close(self) -> None:
        self._stop.set()
        if self._watcher.is_alive():
            self._watcher.join()
        for vm in reversed(self.vms):
            vm.destroy()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for bridge in (self.bridge, self.phys):
            self.lab.sandbox.del_bridge(bridge)


class LegacyFanout:
    """The security-group topic's handler for every legacy host of the run."""

    def __init__(self, hosts: list[LegacyHost]) -> None:
        self.hosts = hosts
        self.received: Counter[str] = Counter()

    def on_security_groups_rule_updated(self, sg_ids: list[str]) -> None:
        self.received["security_groups_rule_updated"] += 1
        for host in self.hosts:
            host.rule_updated(sg_ids)

    def on_security_groups_member_updated(self, sg_ids: list[str]) -> None:
        self.received["security_groups_member_updated"] += 1
        for host in self.hosts:
            host.member_updated(sg_ids)


class CacheHost:
    """A host of ``rpc_mode = cache``: its own cache, filled by bulk_pull, kept by pushes; the
    agent stub re-derives the security-group info of its ports on every change."""

    def __init__(self, bench: Bench, name: str, resources: Any, ports: list[str]) -> None:
        from dpagent.resources.control_plane import CacheControlPlane, ResourcePushes

        self.bench, self.name, self.resources, self.ports = bench, name, resources, ports
        self.control = CacheControlPlane(resources, None, name)
        self.pushes = ResourcePushes(self.control, self)
        self.derived = 0

    def start(self) -> None:
        details, failed = self.control.get_devices_details(self.ports)
        if failed or len(details) != len(self.ports):
            raise RuntimeError(f"{self.name}: no details from the cache for {failed}")
        self.control.security_group_info(self.ports)

    def _derive(self) -> None:
        self.derived += 1
        try:  # a gap would be pulled here: those calls count (CountingResources)
            info = self.control.security_group_info(self.ports)
        except Exception as exc:  # noqa: BLE001 - counted, the host carries on
            self.bench.error(f"{type(exc).__name__}: {exc}"[:120])
            return
        self.bench.check(self.name, info)

    # the agent core's side of ResourcePushes
    def security_groups_rule_updated(self, sg_ids: list[str]) -> None:
        self._derive()

    def security_groups_member_updated(self, sg_ids: list[str]) -> None:
        self._derive()

    def port_updated(self, port_id: str) -> None:
        pass

    def port_deleted(self, port_id: str) -> None:
        pass


class CountingResources:
    """A ResourcesApi whose calls count in the run's total as they are made (in flight too)."""

    def __init__(self, api: Any, bench: Bench) -> None:
        self.api, self.bench = api, bench

    @property
    def calls(self) -> int:
        calls: int = self.api.calls
        return calls

    def bulk_pull(self, resource_type: str, **filters: list[str]) -> Any:
        with self.bench.lock:
            self.bench.inflight += 1
            self.bench.last_activity = time.monotonic()
        before = self.api.calls
        try:
            return self.api.bulk_pull(resource_type, **filters)
        finally:
            with self.bench.lock:
                self.bench.inflight -= 1
                self.bench.calls += self.api.calls - before
                self.bench.last_activity = time.monotonic()


class PushFanout:
    """Every push topic's handler for every cache host of the run."""

    def __init__(self, hosts: list[CacheHost]) -> None:
        self.hosts = hosts
        self.received: Counter[str] = Counter()

    def on_resource_push(self, resource_type: str, event_type: str,
                         resource_list: list[Any]) -> None:
        self.received[resource_type] += 1
        for host in self.hosts:
            try:
                host.pushes.on_resource_push(resource_type, event_type, resource_list)
            except Exception as exc:  # noqa: BLE001 - one host's failure is counted
                host.bench.error(f"push: {type(exc).__name__}: {exc}"[:120])


# -- one run: N hosts in one mode ---------------------------------------------------------------

@dataclass
class Window:
    seconds: float
    calls: int
    rx: int | None
    """messages into q-plugin (the broker's count)"""
    sql: int | None
    pushes: Counter[str]
    cpu: dict[str, float]


@dataclass
class Row:
    change: str
    hosts: int
    mode: str
    api: float
    change_window: Window
    idle: Window
    times: list[float]
    never: list[str]
    errors: Counter[str]
    real: float | None = None
    """the real host's time to the change's flow on its br-int (None: none, or it never)"""


@dataclass
class Setup:
    hosts: int
    mode: str
    register: float
    ports: float
    fetch: float
    fetch_calls: int
    teardown: float = 0.0
    received: Counter[str] = field(default_factory=Counter)


@dataclass
class Lab:
    api: Any
    server: Any
    cpu: ServerCpu
    broker: BrokerCounts
    sql: SqlCounts
    api_log: Path
    net: dict[str, Any]
    subnet: dict[str, Any]
    args: argparse.Namespace
    sandbox: Any = None
    """the private OVS of the real host (None: ``--no-real-host``)"""
    directory: Path = Path()
    """where the real hosts' configs and logs go"""


def new_transport(url: str) -> Any:
    from oslo_config import cfg

    from dpagent.rpc.transport import make_transport
    return make_transport(cfg.ConfigOpts(), url)


def configurations() -> dict[str, Any]:
    """What a dpagent host with ``bridge_mappings = physnet1:br-phys`` reports."""
    from oslo_config import cfg

    from dpagent import conf as dpagent_conf
    from dpagent.rpc.state_report import agent_configurations

    conf = cfg.ConfigOpts()
    dpagent_conf.register_opts(conf)
    conf(args=[], default_config_files=[])
    conf.set_override("bridge_mappings", {PHYSNET: "br-phys"}, group="ovs")
    configs = agent_configurations(conf)
    configs["devices"] = PORTS_PER_HOST
    return configs


def group(api: Any, name: str, *rules: dict[str, Any]) -> dict[str, Any]:
    sg: dict[str, Any] = api.create_security_group(name)
    for rule in rules:
        api.create_security_group_rule(sg["id"], **rule)
    return sg


EGRESS_ALL = {"direction": "egress", "ethertype": "IPv4"}


def parallel(func: Callable[[Any], Any], items: list[Any], workers: int) -> list[Any]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(func, items))


def measure(lab: Lab, bench: Bench, probe: Probe | None, action: Callable[[], Any] | None,
            minimum: float, timeout: float) -> tuple[Window, float]:
    """One window: ``action`` (the API request) at its start, until ``probe`` is done (or
    ``timeout``), the hosts' calls and the server quiet, and at least ``minimum`` s; or, with
    no action, exactly ``minimum`` s. The window and how long the action took."""
    broker_before, sql_before = lab.broker.sample(), lab.sql.sample()
    pushes = LogCounter(lab.api_log, _PUSHED)
    calls_before = bench.calls
    cpu_before = lab.cpu.sample()
    started = time.monotonic()
    api_time = 0.0
    if action is not None:
        assert probe is not None
        probe.started = started
        bench.probe = probe
        action()
        api_time = time.monotonic() - started
        deadline = started + timeout
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            if probe.done.is_set() and now - started >= minimum and bench.inflight == 0 \
                    and now - bench.last_activity >= QUIET:
                break
            time.sleep(0.05)
    else:
        time.sleep(minimum)
    elapsed = time.monotonic() - started
    cpu_after = lab.cpu.sample()
    calls = bench.calls - calls_before
    broker_after, sql_after = lab.broker.sample(), lab.sql.sample()
    pushes.poll()
    return Window(elapsed, calls, BrokerCounts.delta(broker_before, broker_after),
                  SqlCounts.delta(sql_before, sql_after), pushes.total,
                  ServerCpu.delta(cpu_before, cpu_after)), api_time


def run_one(lab: Lab, hosts: int, mode: str) -> tuple[Setup, list[Row]]:
    from dpagent.rpc import topics
    from dpagent.rpc.consumers import NotificationConsumers
    from dpagent.rpc.notifications import CONSUMED, resource_push_catalog
    from dpagent.rpc.plugin_api import PluginApi
    from dpagent.rpc.state_report import StateReporter

    api, args = lab.api, lab.args
    tag = uuid.uuid4().hex[:6]
    bench = Bench()
    rows: list[Row] = []
    setup = Setup(hosts, mode, 0.0, 0.0, 0.0, 0)
    with contextlib.ExitStack() as stack:
        # transports: the consumers' own, then one per --hosts-per-transport hosts
        transports: list[Any] = []

        def cleanup_transports() -> None:
            for transport in transports:
                transport.cleanup()
        stack.callback(cleanup_transports)
        url = lab.server.transport_url
        transports.append(new_transport(url))
        per = max(1, args.hosts_per_transport)
        for _ in range(math.ceil(hosts / per)):
            transports.append(new_transport(url))
        names = [f"bench-{mode[0]}{hosts}-{tag}-{i:03d}" for i in range(hosts)]
        host_transport = {name: transports[1 + i // per] for i, name in enumerate(names)}

        made_ports: list[str] = []
        made_groups: list[str] = []

        def delete_everything() -> None:
            started = time.monotonic()
            for port_id in reversed(made_ports):
                with contextlib.suppress(Exception):
                    api.delete_port(port_id)
            for sg_id in reversed(made_groups):
                with contextlib.suppress(Exception):
                    api.delete(f"/v2.0/security-groups/{sg_id}")
            for agent in api.list_agents():
                if agent["host"].startswith(f"bench-{mode[0]}{hosts}-{tag}-"):
                    with contextlib.suppress(Exception):
                        api.delete_agent(agent["id"])
            setup.teardown = time.monotonic() - started
        stack.callback(delete_everything)

        web = group(api, f"web-{tag}", EGRESS_ALL)
        made_groups.append(web["id"])
        db = group(api, f"db-{tag}", EGRESS_ALL,
                   {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                    "port_range_min": 5432, "port_range_max": 5432,
                    "remote_group_id": web["id"]})
        made_groups.append(db["id"])

        # the real host (the last name) registers itself; the simulated ones: one report each
        started = time.monotonic()
        real: RealHost | None = None
        if lab.sandbox is not None:
            real = RealHost(lab, bench, names[-1], mode)
            stack.callback(real.close)
        simulated = names[:-1] if real is not None else names
        configs = configurations()

        def register(name: str) -> None:
            reporter = StateReporter(host_transport[name], name, interval=3600.0, timeout=60.0,
                                     configurations=configs)
            reply = reporter.report_once()
            if reply not in ("new", "alive", "revived"):
                raise RuntimeError(f"{name}: report_state failed: {reporter.status()}")
        parallel(register, simulated, min(hosts, 10))
        if real is not None:
            real.wait_registered()
        register_time = time.monotonic() - started

        # 2 ports each in db, bound to it (the API answers one request at a time)
        started = time.monotonic()
        ports: dict[str, list[str]] = {}
        real_ports: list[dict[str, Any]] = []
        for name in names:
            ports[name] = []
            for _ in range(PORTS_PER_HOST):
                port = api.create_port(lab.net["id"], host=name, security_groups=[db["id"]],
                                       fixed_ips=[{"subnet_id": lab.subnet["id"]}])
                made_ports.append(port["id"])
                if port.get("binding:vif_type") != "ovs":
                    raise RuntimeError(f"port of {name} not bound: binding:vif_type "
                                       f"{port.get('binding:vif_type')!r}")
                ports[name].append(port["id"])
                if real is not None and name == real.name:
                    real_ports.append(port)
        if real is not None:
            real.plug(real_ports)
        ports_time = time.monotonic() - started

        # the hosts, and their consumers (started before the first fetch, as the agent does)
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, hosts),
                                                     thread_name_prefix="bench-host")
        consumers: NotificationConsumers
        sims: list[Any]
        if mode == "legacy":
            legacy = [LegacyHost(bench, name,
                                 PluginApi(host_transport[name], name, timeout=120.0),
                                 ports[name], pool)
                      for name in simulated]
            sims = legacy
            fanout: LegacyFanout | PushFanout = LegacyFanout(legacy)
            consumers = NotificationConsumers(
                transports[0], f"bench-legacy-{tag}", fanout,
                topics=[topics.SECURITY_GROUP_UPDATE],
                catalog={topics.SECURITY_GROUP_UPDATE: CONSUMED[topics.SECURITY_GROUP_UPDATE]})
        else:
            from dpagent.resources.control_plane import PUSHED, ResourcesApi, push_topic
            cached = [CacheHost(bench, name, CountingResources(
                ResourcesApi(host_transport[name], timeout=120.0), bench), ports[name])
                for name in simulated]
            sims = cached
            fanout = PushFanout(cached)
            consumers = NotificationConsumers(
                transports[0], f"bench-cache-{tag}", fanout,
                catalog=resource_push_catalog({t: push_topic(t) for t in PUSHED}))
        stack.callback(pool.shutdown, wait=True)
        stack.callback(consumers.stop)  # first: nothing reaches the hosts while all goes
        consumers.start()

        started = time.monotonic()
        parallel(lambda sim: sim.start(), sims, min(hosts, 10))
        fetch_time = time.monotonic() - started
        if mode == "legacy":
            bad = [s.name for s in legacy if web["id"] not in s.remote_groups]
        else:
            bad = [s.name for s in cached
                   if web["id"] not in s.control.cache.interest.remote_groups]
        if bad:
            raise RuntimeError(f"hosts not using remote group web: {bad[:5]}")
        setup.register, setup.ports, setup.fetch = register_time, ports_time, fetch_time
        setup.fetch_calls = bench.calls
        time.sleep(args.settle)  # the port creations' notifications and pushes go by

        member_ip = next(MEMBER_IPS)
        if real is not None:
            real.expected = {"member": f"nw_src={member_ip}",
                             "rule": f"tp_dst={RULE_PORT}"}
        changes: list[tuple[str, Probe, Callable[[], Any]]] = [
            ("member", Probe("member", member_shown(web["id"], member_ip), hosts),
             lambda: made_ports.append(api.create_port(
                 lab.net["id"], host=names[0], security_groups=[web["id"]],
                 fixed_ips=[{"subnet_id": lab.subnet["id"], "ip_address": member_ip}])["id"])),
            ("rule", Probe("rule", rule_shown(db["id"], web["id"], RULE_PORT), hosts),
             lambda: api.create_security_group_rule(
                 db["id"], "ingress", protocol="tcp", port_range_min=RULE_PORT,
                 port_range_max=RULE_PORT, remote_group_id=web["id"])),
        ]
        for change, probe, action in changes:
            errors_before = Counter(bench.errors)
            window, api_time = measure(lab, bench, probe, action, args.window, args.timeout)
            bench.probe = None
            idle, _ = measure(lab, bench, None, None, window.seconds, args.timeout)
            never = sorted(set(names) - set(probe.seen))
            rows.append(Row(change, hosts, mode, api_time, window, idle,
                            sorted(probe.seen.values()), never, bench.errors - errors_before,
                            probe.seen.get(real.name) if real is not None else None))
        setup.received = Counter(fanout.received)
    return setup, rows


# -- report ----------------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between the closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


def cpu(window: Window, idle: Window, kinds: tuple[str, ...]) -> str:
    busy = sum(window.cpu.get(k, 0.0) for k in kinds)
    quiet = sum(idle.cpu.get(k, 0.0) for k in kinds)
    return f"{busy:5.2f} ({quiet:4.2f})"


def count(value: int | None) -> str:
    return "-" if value is None else str(value)


HEADER = (f"  {'change':<6} {'N':>3} {'mode':<6} {'calls':>5} {'rx':>4} {'sql':>5} "
          f"{'push':>4}  {'neutron CPU s':>13} {'rpc-server':>11} {'api':>11} "
          f"{'mariadb':>11}  {'api ms':>6} {'p50 ms':>6} {'p99 ms':>6} {'max ms':>6} "
          f"{'hosts':>7} {'window s':>8}")


def print_row(row: Row) -> None:
    w, idle = row.change_window, row.idle
    print(f"  {row.change:<6} {row.hosts:>3} {row.mode:<6} {w.calls:>5} "
          f"{count(w.rx):>4} {count(w.sql):>5} {sum(w.pushes.values()):>4}  "
          f"{cpu(w, idle, NEUTRON):>13} {cpu(w, idle, ('rpc',)):>11} "
          f"{cpu(w, idle, ('api',)):>11} {cpu(w, idle, ('db',)):>11}  "
          f"{ms(row.api):>6} {ms(percentile(row.times, 0.5)):>6} "
          f"{ms(percentile(row.times, 0.99)):>6} {ms(max(row.times, default=None)):>6} "
          f"{len(row.times):>3}/{row.hosts:<3} {w.seconds:8.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 and 10 hosts instead of 10, 50")
    parser.add_argument("--hosts", help="comma-separated host counts (default 10,50)")
    parser.add_argument("--modes", default="legacy,cache", help="default legacy,cache")
    parser.add_argument("--window", type=float, default=3.0,
                        help="shortest change window, seconds (default 3)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="longest wait for every host to converge (default 30)")
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds waited after a run's set-up (default 3)")
    parser.add_argument("--no-real-host", action="store_true",
                        help="every host simulated (default: one is a dpagent daemon on OVS)")
    parser.add_argument("--hosts-per-transport", type=int, default=10,
                        help="simulated hosts sharing one oslo.messaging transport (default 10)")
    args = parser.parse_args()
    sizes = [int(n) for n in (args.hosts or ("5,10" if args.quick else "10,50")).split(",")]
    modes = [m.strip() for m in args.modes.split(",")]
    if any(m not in ("legacy", "cache") for m in modes) or any(n < 1 for n in sizes):
        parser.error("--modes: legacy and/or cache; --hosts: positive counts")

    sys.path.insert(0, str(ROOT))
    from dpagent.lab.neutron_server import start_bench
    from dpagent.lab.ovs_sandbox import REQUIRED_BINARIES as OVS_BINARIES
    if not start_bench("cache scale benchmark", [*OVS_BINARIES, "ip"]):
        return 0
    from dpagent.lab import resources
    from dpagent.lab.neutron_server import NeutronServer
    from dpagent.lab.rabbit import RabbitBroker
    session = resources.mark_session()

    started = time.monotonic()
    setups: list[Setup] = []
    rows: list[Row] = []
    failure: str | None = None
    with contextlib.ExitStack() as stack:
        broker = stack.enter_context(RabbitBroker.from_env())
        server = stack.enter_context(NeutronServer(broker, agent_down_time=3600))
        api = server.api
        assert server.directory is not None
        up = time.monotonic() - started
        net = api.create_network(f"bench-{uuid.uuid4().hex[:6]}", "vlan", PHYSNET)
        subnet = api.create_subnet(net["id"], CIDR)
        assert server.vhost is not None
        lab = Lab(api, server, ServerCpu(server.directory),
                  BrokerCounts(broker, server.vhost.name),
                  SqlCounts(server.directory / "mysql.sock"),
                  server.directory / "log" / "neutron-api.out", net, subnet, args)
        if not args.no_real_host:
            from dpagent.lab.ovs_sandbox import OVSSandbox
            lab.sandbox = stack.enter_context(OVSSandbox())
            lab.directory = Path(stack.enter_context(
                tempfile.TemporaryDirectory(prefix="dpagent-scale-")))
        kinds = Counter(lab.cpu.processes().values())
        print("cache scale benchmark: N simulated hosts (the agent's control-plane side, in "
              "this process) against neutron-server 29")
        print(f"  set-up: broker and neutron-server {up:.1f} s ({server.timings}); server "
              "processes: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
        print(f"  each host: {PORTS_PER_HOST} ports in db (tcp/5432 from remote group web), "
              f"bound to it; hosts {', '.join(map(str, sizes))}; modes {', '.join(modes)}")
        if lab.sandbox is not None:
            print("  of each run's N hosts one is real: a dpagent daemon in the run's mode on a "
                  "private OVS, its ports plugged as namespace VMs (converged: the change's "
                  f"flow on its br-int, polled every {FLOW_POLL * 1000:.0f} ms)")
        for hosts in sizes:
            for mode in modes:
                try:
                    setup, got = run_one(lab, hosts, mode)
                except Exception as exc:  # noqa: BLE001 - report what did fit
                    failure = f"N={hosts} {mode}: {type(exc).__name__}: {exc}"
                    print(f"  {failure}")
                    break
                setups.append(setup)
                rows.extend(got)
                print(f"  N={hosts:<3} {mode:<6}: registered {setup.register:.1f} s, "
                      f"{hosts * PORTS_PER_HOST} ports bound {setup.ports:.1f} s, first fetch "
                      f"{setup.fetch:.1f} s ({setup.fetch_calls} calls), torn down "
                      f"{setup.teardown:.1f} s; received: "
                      + ", ".join(f"{k} {v}" for k, v in sorted(setup.received.items())))
            if failure:
                break
    leftovers = resources.find_leftovers(session)
    if leftovers:
        resources.remove_leftovers(leftovers)

    print("\none member change (a new port in web) and one rule change (db: tcp/22 from web); "
          "CPU seconds in the change window (idle window of the same length)")
    print(HEADER)
    for change in ("member", "rule"):
        for row in rows:
            if row.change == change:
                print_row(row)
    print("  calls: the hosts' server calls (legacy security_group_info_for_devices, cache "
          "bulk_pull); rx: messages into q-plugin (the broker's count);\n"
          "  sql: statements MariaDB ran; push: OVO pushes the API sent; neutron CPU: API + RPC "
          "server + periodic workers; api ms: the API request's answer;\n"
          "  p50/p99/max: convergence over the hosts, from the request sent")
    for row in rows:
        pushed = ", ".join(f"{k} {v}" for k, v in sorted(row.change_window.pushes.items()))
        note = f"  {row.change} N={row.hosts} {row.mode}: pushes [{pushed or 'none'}]; " \
               f"idle window: calls {row.idle.calls}, rx {count(row.idle.rx)}, sql " \
               f"{count(row.idle.sql)}, pushes {sum(row.idle.pushes.values())}"
        if row.real is not None:
            note += f"; the real host's flow in {ms(row.real)} ms"
        if row.never:
            note += f"; never converged: {len(row.never)} ({', '.join(row.never[:3])}...)"
        if row.errors:
            note += f"; errors: {dict(row.errors)}"
        print(note)
    if failure:
        print(f"  stopped at {failure}")
    print(f"  left behind: {leftovers.describe() if leftovers else 'nothing'}")
    print(f"\n  ({time.monotonic() - started:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

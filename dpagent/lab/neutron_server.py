"""A real neutron-server (PyPI ``neutron``, 29.x) run privately, to test dpagent as a drop-in.

neutron 29 has no ``neutron-server`` binary: the server is the WSGI app
``neutron.wsgi.api:application`` under uWSGI (it also casts the fanout notifications),
``neutron-rpc-server`` (q-plugin, q-reports-plugin, trunk, ...) and
``neutron-periodic-workers``.  ``NeutronServer`` runs those three plus a private
``mariadbd`` (PostgreSQL fails one of neutron's migrations) in a temporary directory, on
free ports, against a vhost of the lab's RabbitMQ, with ``auth_strategy = noauth``.

Migrating an empty database (``neutron-db-manage upgrade heads``) takes about a minute, so
the migrated data directory is cached under ``DPAGENT_NEUTRON_CACHE`` keyed by the
migration heads of the installed neutron and the MariaDB version, and copied next time.

Every process inherits this process's environment, so the lab's session tag
(``dpagent.lab.resources``) finds any it leaves behind; each runs in its own process group
and ``close()`` ends the groups.  ``NeutronAPI`` is a small REST client (urllib, JSON).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from dpagent.lab import process
from dpagent.lab.process import LabError
from dpagent.lab.rabbit import REQUIRED_BINARIES as RABBIT_BINARIES
from dpagent.lab.rabbit import TRANSPORT_URL_ENV, RabbitBroker, RabbitVhost

VENV_ENV = "DPAGENT_NEUTRON_VENV"
DEFAULT_VENV = "/opt/dpagent-test/neutron-venv"
CACHE_ENV = "DPAGENT_NEUTRON_CACHE"
DEFAULT_CACHE = "/var/cache/dpagent-test"
MARIADB_BINARIES = ("/usr/sbin/mariadbd", "mariadb-install-db", "mysqladmin")
_HOST = "127.0.0.1"
RPC_QUEUES = ("q-plugin", "q-reports-plugin")
DEFAULT_PHYSNET = "physnet1"
TUNNELLED_TYPES = ("vxlan", "geneve", "gre")

# Tunnelled types and l2population too, so that overlay traffic (tunnel_sync, tunnel_update,
# the l2pop fdb casts) can be seen from a real server (tools/record_overlay_contract.py).
# l2population answers only for agents reporting a tunneling_ip and segments of their
# tunnel_types: VLAN and flat ports are left alone.
ML2_CONF = """\
[ml2]
type_drivers = flat,vlan,vxlan,geneve,gre
tenant_network_types = vxlan
mechanism_drivers = openvswitch,sriovnicswitch,l2population
extension_drivers = port_security
overlay_ip_version = 4

[ml2_type_flat]
flat_networks = *

[ml2_type_vlan]
network_vlan_ranges = physnet1:100:200

[ml2_type_vxlan]
vni_ranges = 5001:6000

[ml2_type_geneve]
vni_ranges = 7001:8000
max_header_size = 38

[ml2_type_gre]
tunnel_id_ranges = 9001:10000

[securitygroup]
firewall_driver = openvswitch
enable_security_group = true
"""

# Live migration (POST /ports/<id>/bindings, PUT .../activate) is for the service role by
# default; the test server lets anyone do it.
POLICY = """\
"get_port_binding": ""
"create_port_binding": ""
"delete_port_binding": ""
"activate": ""
"""

# neutron's api-paste.ini, noauth pipeline as shipped (the healthcheck's disable file moved).
API_PASTE = """\
[composite:neutron]
use = egg:Paste#urlmap
/: neutronversions_composite
/healthcheck: healthcheck
/v2.0: neutronapi_v2_0

[composite:neutronapi_v2_0]
use = call:neutron.auth:pipeline_factory
noauth = cors http_proxy_to_wsgi request_id fake_project_id catch_errors osprofiler extensions
    neutronapiapp_v2_0
keystone = cors http_proxy_to_wsgi request_id catch_errors osprofiler authtoken keystonecontext
    extensions neutronapiapp_v2_0

[composite:neutronversions_composite]
use = call:neutron.auth:pipeline_factory
noauth = cors http_proxy_to_wsgi neutronversions
keystone = cors http_proxy_to_wsgi neutronversions

[filter:request_id]
paste.filter_factory = oslo_middleware:RequestId.factory

[filter:catch_errors]
paste.filter_factory = oslo_middleware:CatchErrors.factory

[filter:cors]
paste.filter_factory = oslo_middleware.cors:filter_factory
oslo_config_project = neutron

[filter:project_id]
paste.filter_factory = neutron.api.extensions:ProjectIdMiddleware.factory
oslo_config_project = neutron

[filter:fake_project_id]
paste.filter_factory = neutron.auth:NoauthFakeProjectId.factory

[filter:http_proxy_to_wsgi]
paste.filter_factory = oslo_middleware.http_proxy_to_wsgi:HTTPProxyToWSGI.factory

[filter:keystonecontext]
paste.filter_factory = neutron.auth:NeutronKeystoneContext.factory

[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory

[filter:extensions]
paste.filter_factory = neutron.api.extensions:plugin_aware_extension_middleware_factory

[app:neutronversions]
paste.app_factory = neutron.pecan_wsgi.app:versions_factory

[app:neutronapiapp_v2_0]
paste.app_factory = neutron.api.v2.router:APIRouter.factory

[filter:osprofiler]
paste.filter_factory = osprofiler.web:WsgiMiddleware.factory

[app:healthcheck]
paste.app_factory = oslo_middleware:Healthcheck.app_factory
backends = disable_by_file
disable_by_file_path = /nonexistent/dpagent-healthcheck-disable
"""


def venv_path() -> Path:
    return Path(os.environ.get(VENV_ENV) or DEFAULT_VENV)


def missing_requirements(venv: Path | None = None) -> list[str]:
    """What this machine lacks to run the server (empty: all there)."""
    venv = venv or venv_path()
    missing = [b for b in MARIADB_BINARIES if shutil.which(b) is None]
    for tool in ("uwsgi", "neutron-rpc-server", "neutron-periodic-workers", "neutron-db-manage"):
        if not (venv / "bin" / tool).exists():
            missing.append(str(venv / "bin" / tool))
    return missing


def bench_requirements(binaries: Sequence[str] = ()) -> list[str]:
    """What this machine lacks to run a benchmark against a real neutron-server (root, the
    broker's binaries unless an external one is given, neutron's virtualenv and what the
    server needs) and ``binaries`` of the benchmark's own; empty: all there."""
    problems = [] if os.geteuid() == 0 else ["root"]
    wanted = [*binaries, *(() if os.environ.get(TRANSPORT_URL_ENV) else RABBIT_BINARIES)]
    problems += [b for b in wanted if shutil.which(b) is None]
    venv = venv_path()
    if not venv.exists():
        problems.append(f"neutron's virtualenv {venv} (tools/neutron-server/setup.sh)")
    else:
        problems += missing_requirements(venv)  # MariaDB, uwsgi, neutron's servers
    return problems


def start_bench(title: str, binaries: Sequence[str] = (), *, quiet_logs: bool = True) -> bool:
    """The start of a benchmark against a real neutron-server: eventlet's deprecation warning
    silenced, what this machine lacks said (``"<title> skipped: needs ..."``; False: do not
    run), and, with ``quiet_logs``, only errors logged."""
    warnings.filterwarnings("ignore", message=r"(?s).*[Ee]ventlet")
    problems = bench_requirements(binaries)
    if problems:
        print(f"{title} skipped: needs {', '.join(problems)}")
        return False
    if quiet_logs:
        logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    return True


class NeutronServer:
    """API, RPC and periodic workers of neutron with a private MariaDB.

    ``api`` (a ``NeutronAPI``) and ``transport_url`` (the vhost the server consumes on; an
    agent pointed there is one of its agents) are valid between ``start()`` and ``close()``.
    ``agent_down_time``: seconds of heartbeat silence after which the server counts an agent
    dead (its next report is answered ``revived``).
    """

    def __init__(self, broker: RabbitBroker, *, agent_down_time: int = 75,
                 venv: Path | None = None, cache_dir: Path | None = None,
                 start_timeout: float = 120.0, dpagent_extension: bool = True) -> None:
        self.broker = broker
        self.agent_down_time = agent_down_time
        self.dpagent_extension = dpagent_extension
        """load neutron-dpagent (``service_plugins = ...,dpagent``), as a dpagent cloud does"""
        self.venv = venv or venv_path()
        self.cache_dir = cache_dir or Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)
        self.start_timeout = start_timeout
        self.directory: Path | None = None
        self.api_port = 0
        self.db_port = 0
        self.vhost: RabbitVhost | None = None
        self.timings: dict[str, float] = {}  # step -> seconds, for the curious
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    # -- public ---------------------------------------------------------------------------

    @property
    def transport_url(self) -> str:
        assert self.vhost is not None, "not started"
        return self.vhost.transport_url

    @property
    def api_url(self) -> str:
        return f"http://{_HOST}:{self.api_port}"

    @property
    def api(self) -> NeutronAPI:
        return NeutronAPI(self.api_url)

    def log_path(self, name: str) -> Path:
        assert self.directory is not None
        return self.directory / "log" / f"{name}.log"

    def log_tail(self, name: str, chars: int = 3000) -> str:
        try:
            return self.log_path(name).read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def start(self) -> NeutronServer:
        missing = missing_requirements(self.venv)
        if missing:
            raise LabError(f"neutron server needs {', '.join(missing)} "
                           "(tools/neutron-server/setup.sh installs them)")
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop every process (API first, MariaDB last), delete the vhost and the directory."""
        for name in reversed(list(self._procs)):
            proc = self._procs.pop(name)
            # a test server: no need to wait for graceful worker shutdowns
            process.terminate_group(proc.pid, timeout=2 if name != "mariadbd" else 30)
            proc.wait()
        if self.vhost is not None:
            self.vhost.delete()
            self.vhost = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def __enter__(self) -> NeutronServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- start-up -------------------------------------------------------------------------

    def _start(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="dpa-neutron-"))
        for sub in ("log", "state", "lock", "etc"):
            (self.directory / sub).mkdir()
        self.db_port = process.free_tcp_port()
        self.api_port = process.free_tcp_port(exclude=[self.db_port])
        self.vhost = self.broker.new_vhost()
        self._write_config()
        self._timed("database", self._start_database)
        bin_ = self.venv / "bin"
        conf = ["--config-file", str(self._etc / "neutron.conf"),
                "--config-file", str(self._etc / "ml2_conf.ini")]
        self._spawn("neutron-api", [str(bin_ / "uwsgi"), "--ini", str(self._etc / "uwsgi.ini")])
        for name in ("neutron-rpc-server", "neutron-periodic-workers"):
            self._spawn(name, [str(bin_ / name), *conf, "--log-file", str(self.log_path(name))])
        self._timed("api", self._wait_api)
        if self.broker.external_url is None:
            self._timed("rpc", self._wait_rpc_consumers)

    def _timed(self, step: str, func: Any) -> None:
        started = time.monotonic()
        func()
        self.timings[step] = round(time.monotonic() - started, 1)

    @property
    def _etc(self) -> Path:
        assert self.directory is not None
        return self.directory / "etc"

    @property
    def _db_url(self) -> str:
        return f"mysql+pymysql://root@{_HOST}:{self.db_port}/neutron?charset=utf8mb4"

    def _write_config(self) -> None:
        d = self.directory
        assert d is not None
        (self._etc / "neutron.conf").write_text(f"""\
[DEFAULT]
core_plugin = ml2
service_plugins = {'trunk,dpagent' if self.dpagent_extension else 'trunk'}
auth_strategy = noauth
transport_url = {self.transport_url}
control_exchange = neutron
api_paste_config = {self._etc / 'api-paste.ini'}
state_path = {d / 'state'}
allow_overlapping_ips = true
api_workers = 1
rpc_workers = 1
rpc_state_report_workers = 1
agent_down_time = {self.agent_down_time}
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
debug = true
use_stderr = true

[database]
connection = {self._db_url}

[oslo_concurrency]
lock_path = {d / 'lock'}

[oslo_messaging_rabbit]
rabbit_quorum_queue = false

[quotas]
# one project (noauth) for a whole test session
quota_network = -1
quota_subnet = -1
quota_port = -1
quota_security_group = -1
quota_security_group_rule = -1

[oslo_policy]
policy_file = {self._etc / 'policy.yaml'}
""")
        (self._etc / "ml2_conf.ini").write_text(ML2_CONF)
        (self._etc / "policy.yaml").write_text(POLICY)
        (self._etc / "api-paste.ini").write_text(API_PASTE)
        (self._etc / "uwsgi.ini").write_text(f"""\
[uwsgi]
module = neutron.wsgi.api:application
http-socket = {_HOST}:{self.api_port}
env = OS_NEUTRON_CONFIG_DIR={self._etc}
env = OS_NEUTRON_CONFIG_FILES=neutron.conf;ml2_conf.ini
master = true
processes = 1
threads = 1
enable-threads = true
lazy-apps = true
die-on-term = true
exit-on-reload = false
buffer-size = 65535
add-header = Connection: close
hook-master-start = unix_signal:15 gracefully_kill_them_all
worker-reload-mercy = 10
""")

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        assert self.directory is not None
        with open(self.directory / "log" / f"{name}.out", "ab") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, cwd=self.directory,
                                    start_new_session=True)  # close() ends its whole group
        self._procs[name] = proc
        return proc

    def _fail(self, name: str, what: str) -> LabError:
        assert self.directory is not None
        logs = [p for p in (self.directory / "log").glob(f"{name}.*") if p.is_file()]
        tails = "\n".join(f"--- {p}:\n{p.read_text(errors='replace')[-3000:]}" for p in logs)
        return LabError(f"{what}\n{tails}")

    # -- MariaDB --------------------------------------------------------------------------

    def _start_database(self) -> None:
        assert self.directory is not None
        datadir = self.directory / "mysql"
        cached = self.cache_dir / f"neutron-db-{self._cache_key()}"
        if cached.is_dir():
            shutil.copytree(cached, datadir, symlinks=True)
            self._start_mariadbd(datadir)
            return
        process.run(["mariadb-install-db", "--no-defaults", f"--datadir={datadir}",
                     "--user=root", "--skip-test-db", "--auth-root-authentication-method=normal"],
                    timeout=120)
        self._start_mariadbd(datadir)
        self._mysql("CREATE DATABASE neutron CHARACTER SET utf8mb4")
        started = time.monotonic()
        log = self.directory / "log" / "db-manage.log"
        with open(log, "wb") as out:
            result = subprocess.run(
                [str(self.venv / "bin" / "neutron-db-manage"),
                 "--config-file", str(self._etc / "neutron.conf"),
                 "--config-file", str(self._etc / "ml2_conf.ini"), "upgrade", "heads"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=False,
                timeout=900)
        if result.returncode != 0:
            raise self._fail("db-manage", f"neutron-db-manage upgrade heads exited "
                             f"{result.returncode}")
        self.timings["migrate"] = round(time.monotonic() - started, 1)
        # A clean shutdown, then a copy of the data directory: next time is a copy away.
        self._stop("mariadbd")
        tmp = cached.with_name(cached.name + f".tmp-{uuid.uuid4().hex[:6]}")
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            shutil.copytree(datadir, tmp, symlinks=True)
            tmp.rename(cached)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # another run won the race, or no space
        self._start_mariadbd(datadir)

    def _cache_key(self) -> str:
        versions = list(self.venv.glob(
            "lib/python3*/site-packages/neutron/db/migration/alembic_migrations/versions"))
        if not versions:
            raise LabError(f"no neutron migrations under {self.venv}")
        heads = [(versions[0] / f).read_text().strip() for f in ("CONTRACT_HEAD", "EXPAND_HEAD")]
        mariadb = process.run(["/usr/sbin/mariadbd", "--version"]).split()[2]
        return "-".join([*heads, mariadb])

    def _start_mariadbd(self, datadir: Path) -> None:
        assert self.directory is not None
        sock = self.directory / "mysql.sock"
        proc = self._spawn("mariadbd", [
            "/usr/sbin/mariadbd", "--no-defaults", f"--datadir={datadir}", "--user=root",
            f"--socket={sock}", f"--port={self.db_port}", f"--bind-address={_HOST}",
            f"--pid-file={self.directory / 'mysql.pid'}", "--skip-grant-tables",
            "--skip-name-resolve", "--innodb-flush-log-at-trx-commit=0",
            "--innodb-buffer-pool-size=64M", "--skip-log-bin",
        ])
        if not process.wait_until(
                lambda: process.tcp_port_open(_HOST, self.db_port) or proc.poll() is not None,
                60, interval=0.1) or proc.poll() is not None:
            raise self._fail("mariadbd", f"mariadbd did not listen on {_HOST}:{self.db_port}")

    def _mysql(self, sql: str) -> None:
        assert self.directory is not None
        process.run(["mariadb", "--no-defaults", f"--socket={self.directory / 'mysql.sock'}",
                     "-uroot", "-e", sql])

    def _stop(self, name: str) -> None:
        proc = self._procs.pop(name)
        process.terminate_group(proc.pid, timeout=60)
        proc.wait()

    # -- readiness ------------------------------------------------------------------------

    def _check_alive(self) -> None:
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                raise self._fail(name, f"{name} exited {proc.returncode} during start-up")

    def _wait_api(self) -> None:
        def answers() -> bool:
            self._check_alive()
            try:
                self.api.get("/v2.0/networks")
                return True
            except (OSError, NeutronAPIError):
                return False
        if not process.wait_until(answers, self.start_timeout, interval=0.3):
            raise self._fail("neutron-api", f"the neutron API did not answer on {self.api_url}")

    def _wait_rpc_consumers(self) -> None:
        assert self.vhost is not None
        vhost = self.vhost.name

        def consuming() -> bool:
            self._check_alive()
            out = self.broker.rabbitmqctl("list_queues", "-p", vhost, "name", "consumers")
            counts = dict(line.split()[:2] for line in out.splitlines() if len(line.split()) > 1)
            return all(counts.get(q, "0") not in ("0", "consumers") for q in RPC_QUEUES)
        if not process.wait_until(consuming, self.start_timeout, interval=1.0):
            raise self._fail("neutron-rpc-server", "neutron-rpc-server did not consume on "
                             f"{', '.join(RPC_QUEUES)} in vhost {vhost}")


class NeutronAPIError(Exception):
    """A non-2xx answer: ``status`` and the response ``body``."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        self.status = status
        self.body = body
        super().__init__(f"{method} {path} -> {status}: {body[:2000]}")


class NeutronAPI:
    """neutron's REST API with noauth: no X-Project-Id header, so every call is admin.

    Resource helpers take neutron's own attribute names as keyword arguments and return the
    resource dict as the server answers it.
    """

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                text = resp.read().decode()
        except urllib.error.HTTPError as exc:
            raise NeutronAPIError(method, path, exc.code,
                                  exc.read().decode(errors="replace")) from None
        return json.loads(text) if text else None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("POST", path, body)

    def put(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.request("PUT", path, body)

    def delete(self, path: str) -> None:
        self.request("DELETE", path)

    # -- resources ------------------------------------------------------------------------

    def create_network(self, name: str, network_type: str = "vlan",
                       physical_network: str | None = DEFAULT_PHYSNET,
                       segmentation_id: int | None = None, **attrs: Any) -> dict[str, Any]:
        """A provider network; ``segmentation_id`` None: the server picks one of its ranges.

        Tunnelled types (``vxlan``, ``geneve``, ``gre``) have no physical network: the
        default ``physical_network`` is not sent for them.
        """
        body: dict[str, Any] = {"name": name, "provider:network_type": network_type, **attrs}
        if network_type in TUNNELLED_TYPES and physical_network == DEFAULT_PHYSNET:
            physical_network = None
        if physical_network is not None:
            body["provider:physical_network"] = physical_network
        if segmentation_id is not None:
            body["provider:segmentation_id"] = segmentation_id
        return _member(self.post("/v2.0/networks", {"network": body}), "network")

    def create_subnet(self, network_id: str, cidr: str, **attrs: Any) -> dict[str, Any]:
        body = {"network_id": network_id, "cidr": cidr, "ip_version": 4,
                "enable_dhcp": False, **attrs}
        return _member(self.post("/v2.0/subnets", {"subnet": body}), "subnet")

    def create_security_group(self, name: str, *, default_rules: bool = False,
                              **attrs: Any) -> dict[str, Any]:
        """A group; unless ``default_rules``, without neutron's two default egress rules."""
        group = _member(self.post("/v2.0/security-groups",
                                  {"security_group": {"name": name, **attrs}}), "security_group")
        if not default_rules:
            for rule in group["security_group_rules"]:
                self.delete_security_group_rule(rule["id"])
            group = _member(self.get(f"/v2.0/security-groups/{group['id']}"), "security_group")
        return group

    def create_security_group_rule(self, security_group_id: str, direction: str = "ingress",
                                   ethertype: str = "IPv4", **attrs: Any) -> dict[str, Any]:
        body = {"security_group_id": security_group_id, "direction": direction,
                "ethertype": ethertype, **attrs}
        return _member(self.post("/v2.0/security-group-rules",
                         {"security_group_rule": body}), "security_group_rule")

    def delete_security_group_rule(self, rule_id: str) -> None:
        self.delete(f"/v2.0/security-group-rules/{rule_id}")

    def create_port(self, network_id: str, *, host: str | None = None,
                    device_owner: str = "compute:nova", device_id: str | None = None,
                    **attrs: Any) -> dict[str, Any]:
        """A port bound to ``host`` (``binding:host_id``) as Nova creates it for a VM."""
        body: dict[str, Any] = {"network_id": network_id, "device_owner": device_owner,
                                "device_id": device_id or str(uuid.uuid4()), **attrs}
        if host is not None:
            body["binding:host_id"] = host
        return _member(self.post("/v2.0/ports", {"port": body}), "port")

    def show_port(self, port_id: str) -> dict[str, Any]:
        return _member(self.get(f"/v2.0/ports/{port_id}"), "port")

    def update_port(self, port_id: str, **attrs: Any) -> dict[str, Any]:
        return _member(self.put(f"/v2.0/ports/{port_id}", {"port": attrs}), "port")

    def delete_port(self, port_id: str) -> None:
        self.delete(f"/v2.0/ports/{port_id}")

    def list_agents(self, **filters: str) -> list[dict[str, Any]]:
        query = "&".join(f"{k}={v}" for k, v in filters.items())
        return _listed(self.get("/v2.0/agents" + (f"?{query}" if query else "")), "agents")

    def delete_agent(self, agent_id: str) -> None:
        self.delete(f"/v2.0/agents/{agent_id}")

    def update_agent(self, agent_id: str, **attrs: Any) -> dict[str, Any]:
        return _member(self.put(f"/v2.0/agents/{agent_id}", {"agent": attrs}), "agent")

    def create_port_binding(self, port_id: str, host: str, **attrs: Any) -> dict[str, Any]:
        """An inactive binding on ``host`` (live migration's first step)."""
        return _member(self.post(f"/v2.0/ports/{port_id}/bindings",
                         {"binding": {"host": host, **attrs}}), "binding")

    def activate_port_binding(self, port_id: str, host: str) -> dict[str, Any]:
        reply = self.put(f"/v2.0/ports/{port_id}/bindings/{host}/activate")
        return dict(reply.get("binding", reply))  # neutron 29 answers the binding unwrapped

    def list_port_bindings(self, port_id: str) -> list[dict[str, Any]]:
        return _listed(self.get(f"/v2.0/ports/{port_id}/bindings"), "bindings")

    def delete_port_binding(self, port_id: str, host: str) -> None:
        self.delete(f"/v2.0/ports/{port_id}/bindings/{host}")


def _member(reply: Any, key: str) -> dict[str, Any]:
    """``reply[key]``, an object of neutron's API answer."""
    value: dict[str, Any] = reply[key]
    return value


def _listed(reply: Any, key: str) -> list[dict[str, Any]]:
    """``reply[key]``, a list of objects of neutron's API answer."""
    value: list[dict[str, Any]] = reply[key]
    return value

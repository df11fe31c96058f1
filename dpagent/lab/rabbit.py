"""A RabbitMQ broker for tests and the demo, private unless one is given.

The agent's control plane is oslo.messaging over RabbitMQ, and its failure
handling (broker down for a minute, then back) must be tested against a real
broker.  ``RabbitBroker`` either uses the broker named by
``DPAGENT_TEST_TRANSPORT_URL`` or runs Debian's ``rabbitmq-server`` as a
private node: own node name, ports, data/log/config directory, Erlang cookie
(``HOME``) and its own ``epmd`` on a private port (an ``epmd`` that Erlang
starts by itself outlives the broker).  The system broker is never touched.

Each user of the broker gets a vhost and user of its own (``new_vhost()``),
so tests cannot see each other's queues and exchanges.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from types import TracebackType

from dpagent.lab import process
from dpagent.lab.process import LabError

TRANSPORT_URL_ENV = "DPAGENT_TEST_TRANSPORT_URL"
RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")  # not /usr/sbin: that wrapper su's to rabbitmq
REQUIRED_BINARIES = (str(RABBITMQ_BIN / "rabbitmq-server"), str(RABBITMQ_BIN / "rabbitmqctl"),
                     "epmd")
_HOST = "127.0.0.1"


class RabbitVhost:
    """A vhost plus a user allowed only there; ``delete()`` removes both."""

    def __init__(self, broker: RabbitBroker, name: str, user: str, password: str) -> None:
        self.broker = broker
        self.name = name
        self.user = user
        self.password = password

    @property
    def transport_url(self) -> str:
        if self.broker.external_url is not None:
            return self.broker.external_url
        return f"rabbit://{self.user}:{self.password}@{_HOST}:{self.broker.port}/{self.name}"

    def delete(self) -> None:
        if self.broker.external_url is None and self.broker.running:
            self.broker.eval(
                f'ok = rabbit_vhost:delete(<<"{self.name}">>, <<"dpagent-lab">>), '
                f'ok = rabbit_auth_backend_internal:delete_user(<<"{self.user}">>, '
                '<<"dpagent-lab">>).'
            )


class RabbitBroker:
    """A RabbitMQ node the lab owns, or an external broker by URL.

    ``start()`` starts the node (first call: creates its directory and
    epmd), ``stop()`` stops only the node -- data, port and epmd stay, so a
    later ``start()`` brings the same broker back on the same port, as after
    a broker outage.  ``close()`` removes everything.  With an external URL,
    ``start``/``close`` do nothing and ``stop`` raises: the lab does not own
    that broker, and tests that need an outage must skip.
    """

    def __init__(self, external_url: str | None = None, *, start_timeout: float = 60.0) -> None:
        self.external_url = external_url
        self.start_timeout = start_timeout
        self._dir: Path | None = None
        self._epmd: subprocess.Popen[bytes] | None = None
        self._server: subprocess.Popen[bytes] | None = None
        self.node = f"dpa-{uuid.uuid4().hex[:8]}@localhost"
        self.port = 0
        self._dist_port = 0
        self._epmd_port = 0
        self._password = uuid.uuid4().hex

    @classmethod
    def from_env(cls) -> RabbitBroker:
        """The broker ``DPAGENT_TEST_TRANSPORT_URL`` names, else a private one."""
        return cls(os.environ.get(TRANSPORT_URL_ENV) or None)

    @property
    def directory(self) -> Path | None:
        """The private node's data, logs and configuration (None: not prepared, or external)."""
        return self._dir

    @property
    def running(self) -> bool:
        return self.external_url is not None or self._server is not None

    @property
    def pids(self) -> list[int]:
        """Processes the lab started (the server script's group, and epmd)."""
        pids = process.pids_in_group(self._server.pid) if self._server else []
        return pids + ([self._epmd.pid] if self._epmd else [])

    @property
    def transport_url(self) -> str:
        """URL of the broker's admin user on vhost ``/``."""
        if self.external_url is not None:
            return self.external_url
        return f"rabbit://dpagent:{self._password}@{_HOST}:{self.port}/"

    def start(self) -> RabbitBroker:
        if self.external_url is not None:
            return self  # already running, and not ours
        if self._server is not None:
            raise LabError("broker already running")
        if self._dir is None:
            self._prepare()
        try:
            self._start_server()
        except BaseException:
            self.close()
            raise
        return self

    def stop(self) -> None:
        """Stop the node (and every process of its group); keep its data."""
        if self.external_url is not None:
            raise LabError(f"the broker at {TRANSPORT_URL_ENV} is not the lab's to stop")
        if self._server is not None:
            process.terminate_group(self._server.pid)
            self._server.wait()
            self._server = None

    def close(self) -> None:
        """Stop the node and epmd, remove the directory (idempotent)."""
        if self.external_url is not None:
            return
        self.stop()
        if self._epmd is not None:
            process.terminate_group(self._epmd.pid)
            self._epmd.wait()
            self._epmd = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> RabbitBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def new_vhost(self) -> RabbitVhost:
        """A fresh vhost and user; with an external broker, its URL as is."""
        tag = uuid.uuid4().hex[:8]
        vhost = RabbitVhost(self, f"dpa-{tag}", f"dpa-{tag}", uuid.uuid4().hex)
        if self.external_url is None:
            # One rabbitmqctl call instead of three: each costs ~0.5 s of
            # Erlang VM start-up.
            self.eval(
                f'ok = rabbit_vhost:add(<<"{vhost.name}">>, <<"dpagent-lab">>), '
                f'ok = rabbit_auth_backend_internal:add_user(<<"{vhost.user}">>, '
                f'<<"{vhost.password}">>, <<"dpagent-lab">>), '
                f'ok = rabbit_auth_backend_internal:set_permissions(<<"{vhost.user}">>, '
                f'<<"{vhost.name}">>, <<".*">>, <<".*">>, <<".*">>, <<"dpagent-lab">>).'
            )
        return vhost

    def rabbitmqctl(self, *args: str) -> str:
        return process.run([str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.node, "-q", *args],
                           env=self._env(), timeout=60)

    def eval(self, expression: str) -> str:
        return self.rabbitmqctl("eval", expression)

    # -- private node ----------------------------------------------------

    def _prepare(self) -> None:
        missing = [b for b in REQUIRED_BINARIES if shutil.which(b) is None]
        if missing:
            raise LabError(f"missing binaries: {', '.join(missing)}")
        self._dir = Path(tempfile.mkdtemp(prefix="dpa-rabbit-"))
        self.port = process.free_tcp_port()
        self._dist_port = process.free_tcp_port(exclude=[self.port])
        self._epmd_port = process.free_tcp_port(exclude=[self.port, self._dist_port])
        (self._dir / "enabled_plugins").write_text("[].\n")
        (self._dir / "rabbitmq-env.conf").write_text("")  # not /etc/rabbitmq's
        (self._dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = {_HOST}:{self.port}\n"
            "default_user = dpagent\n"
            f"default_pass = {self._password}\n"
            "log.console = false\n"
            "log.file.level = info\n"
        )
        self._epmd = subprocess.Popen(
            ["epmd", "-address", _HOST, "-port", str(self._epmd_port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        if not process.wait_until(lambda: process.tcp_port_open(_HOST, self._epmd_port), 10):
            raise LabError(f"epmd did not listen on port {self._epmd_port}")

    def _start_server(self) -> None:
        assert self._dir is not None
        with open(self._dir / "server.log", "ab") as log:
            self._server = subprocess.Popen(
                [str(RABBITMQ_BIN / "rabbitmq-server")], env=self._env(),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: stop() signals all of it
            )
        server = self._server
        # The AMQP listener opens at the end of boot, so an accepting port
        # means clients (and rabbitmqctl) can go ahead.
        if not process.wait_until(
            lambda: process.tcp_port_open(_HOST, self.port) or server.poll() is not None,
            self.start_timeout, interval=0.2,
        ) or server.poll() is not None:
            tail = (self._dir / "server.log").read_text(errors="replace")[-2000:]
            raise LabError(f"rabbitmq-server {self.node} did not start:\n{tail}")

    def _env(self) -> dict[str, str]:
        assert self._dir is not None
        d = self._dir
        env = dict(os.environ)
        env.update(
            HOME=str(d),  # the Erlang cookie lives in $HOME
            ERL_EPMD_PORT=str(self._epmd_port),
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self._dist_port),
            RABBITMQ_MNESIA_BASE=str(d / "mnesia"),
            RABBITMQ_LOG_BASE=str(d / "log"),
            RABBITMQ_CONFIG_FILE=str(d / "rabbitmq"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(d / "enabled_plugins"),
            RABBITMQ_CONF_ENV_FILE=str(d / "rabbitmq-env.conf"),
            RABBITMQ_PID_FILE=str(d / "rabbitmq.pid"),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
        )
        return env

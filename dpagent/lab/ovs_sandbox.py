"""A private Open vSwitch: its own ovsdb-server and userspace ovs-vswitchd.

Functional tests, benchmarks and the demo need a real switch, but must never
touch a system-wide OVS or the host's network.  ``OVSSandbox`` therefore

* keeps the database, sockets, pid files and logs in one temporary directory
  and points ``OVS_RUNDIR``/``OVS_DBDIR``/``OVS_LOGDIR`` there, so no tool
  falls back to ``/var/run/openvswitch``;
* runs ``ovs-vswitchd --disable-system`` (userspace ``netdev`` datapath only)
  inside a network namespace of its own (``dpa-ovs-*``): the tap devices the
  netdev datapath creates for internal ports, and the switch ends of the VM
  veths, live there instead of in the host namespace.

The OVS command-line tools talk to the daemons over unix sockets, so they work
from the host namespace unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from dpagent.diagnose.ofproto_trace import TraceVerdict, parse_dpif_show, parse_trace
from dpagent.lab import process, resources
from dpagent.lab.process import LabError

OVS_SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
REQUIRED_BINARIES = ("ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl",
                     "ovs-appctl", "ip")


class OVSSandbox:
    """ovsdb-server + ovs-vswitchd in a temp dir and a private namespace.

    Use as a context manager, or call ``start()``/``stop()``.  ``stop()`` is
    idempotent and always leaves no process, namespace or directory behind.
    Bridges are created with the netdev datapath; ports are numbered as
    OpenFlow ports (``ofport``), which is what flows and traces speak.
    """

    def __init__(self, *, timeout: float = 10.0, prefix: str = "dpa-ovs-") -> None:
        self.timeout = timeout
        self._prefix = prefix
        self._dir: Path | None = None
        self.netns = f"{prefix}{uuid.uuid4().hex[:8]}"
        self.ovsdb_pid: int | None = None
        self.vswitchd_pid: int | None = None

    # -- lifecycle -------------------------------------------------------

    def start(self) -> OVSSandbox:
        if self._dir is not None:
            raise LabError("sandbox already started")
        missing = [b for b in REQUIRED_BINARIES if shutil.which(b) is None]
        if missing:
            raise LabError(f"missing binaries: {', '.join(missing)}")
        self._dir = Path(tempfile.mkdtemp(prefix=self._prefix))
        try:
            resources.add_netns(self.netns)
            process.run(["ip", "-n", self.netns, "link", "set", "lo", "up"])
            process.run(["ovsdb-tool", "create", str(self.directory / "conf.db"), str(OVS_SCHEMA)])
            self._start_ovsdb()
            self.vsctl("--no-wait", "init")
            self._start_vswitchd()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Kill both daemons, wait for them, delete the namespace and dir."""
        for pid in (self.vswitchd_pid, self.ovsdb_pid):
            if pid is not None:
                process.terminate_pid(pid)
        self.vswitchd_pid = self.ovsdb_pid = None
        resources.del_netns(self.netns)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> OVSSandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def restart_vswitchd(self) -> None:
        """Kill ovs-vswitchd and start it again on the same database.

        This is what an agent sees when OVS is upgraded or crashes: ports and
        bridges come back from OVSDB, the OpenFlow tables come back empty.
        Returns once the new daemon has applied the database.
        """
        self.stop_vswitchd()
        self.start_vswitchd()

    def stop_vswitchd(self) -> None:
        """Kill ovs-vswitchd (OVS is down: nothing forwards, no bridge can be programmed);
        the database stays. :meth:`start_vswitchd` brings it back."""
        if self.vswitchd_pid is None:
            raise LabError("ovs-vswitchd is not running")
        process.terminate_pid(self.vswitchd_pid)
        self.vswitchd_pid = None

    def start_vswitchd(self) -> None:
        """Start ovs-vswitchd again after :meth:`stop_vswitchd`; returns once it has applied
        the database (its flow tables are empty)."""
        if self.vswitchd_pid is not None:
            raise LabError("ovs-vswitchd is already running")
        self._start_vswitchd()

    def restart_ovsdb(self, offline_transaction: list[object] | None = None) -> None:
        """Kill ovsdb-server and start it again on the same database file.

        Every OVSDB client (ovs-vswitchd, the agent) loses its connection and reconnects.
        ``offline_transaction`` (OVSDB JSON-RPC operations, without the database name) is
        applied to the file with ``ovsdb-tool transact`` while no server runs: a change the
        clients cannot see as an event, e.g. a VIF unplugged while they were disconnected.
        Returns once ovs-vswitchd has applied the restarted database.
        """
        if self.ovsdb_pid is None:
            raise LabError("sandbox not started")
        process.terminate_pid(self.ovsdb_pid)
        self.ovsdb_pid = None
        if offline_transaction:
            process.run(["ovsdb-tool", "transact", str(self.directory / "conf.db"),
                         json.dumps(["Open_vSwitch", *offline_transaction])],
                        timeout=self.timeout)
        self._start_ovsdb()
        self._sync()

    def _start_ovsdb(self) -> None:
        d = self.directory
        process.run(
            ["ovsdb-server", str(d / "conf.db"), f"--remote=punix:{self.db_socket}",
             f"--pidfile={d / 'ovsdb-server.pid'}", f"--unixctl={d / 'ovsdb-server.ctl'}",
             f"--log-file={d / 'ovsdb-server.log'}", "-vconsole:off", "--detach"],
            env=self.env, timeout=self.timeout,
        )
        self.ovsdb_pid = process.read_pidfile(d / "ovsdb-server.pid")

    def _start_vswitchd(self) -> None:
        d = self.directory
        # --detach returns once the daemon is initialised and has written its
        # pid file; it stays in the namespace it was started in.
        process.run(
            ["ip", "netns", "exec", self.netns, "ovs-vswitchd", f"unix:{self.db_socket}",
             "--disable-system", f"--pidfile={d / 'ovs-vswitchd.pid'}",
             f"--unixctl={self._vswitchd_ctl}", f"--log-file={d / 'ovs-vswitchd.log'}",
             "-vconsole:off", "--detach"],
            env=self.env, timeout=self.timeout,
        )
        self.vswitchd_pid = process.read_pidfile(d / "ovs-vswitchd.pid")
        self._sync()

    def _sync(self) -> None:
        # A write without --no-wait makes ovs-vsctl wait until ovs-vswitchd
        # has caught up with the database (cur_cfg == next_cfg), i.e. until
        # every bridge and port in it exists again.
        self.vsctl("set", "Open_vSwitch", ".", f"external_ids:dpagent-lab-sync={uuid.uuid4().hex}")

    # -- locations -------------------------------------------------------

    @property
    def directory(self) -> Path:
        if self._dir is None:
            raise LabError("sandbox not started")
        return self._dir

    @property
    def db_socket(self) -> Path:
        return self.directory / "db.sock"

    @property
    def db_connection(self) -> str:
        """OVSDB connection string, as ``[ovs] ovsdb_connection`` expects."""
        return f"unix:{self.db_socket}"

    @property
    def _vswitchd_ctl(self) -> Path:
        return self.directory / "ovs-vswitchd.ctl"

    @property
    def env(self) -> dict[str, str]:
        """Environment for subprocesses that must use this sandbox."""
        d = str(self.directory)
        env = dict(os.environ)
        env.update(OVS_RUNDIR=d, OVS_DBDIR=d, OVS_LOGDIR=d, OVS_SYSCONFDIR=d,
                   OVS_PKGDATADIR=str(OVS_SCHEMA.parent))
        return env

    # -- raw tools -------------------------------------------------------

    def vsctl(self, *args: str) -> str:
        return process.run(
            ["ovs-vsctl", f"--db={self.db_connection}", f"--timeout={int(self.timeout)}", *args],
            env=self.env, timeout=self.timeout + 5,
        )

    def ofctl(self, *args: str, input: str | None = None) -> str:
        """Run ovs-ofctl; pass ``"-O", "OpenFlow15"`` first for bundles."""
        return process.run(["ovs-ofctl", f"--timeout={int(self.timeout)}", *args],
                           env=self.env, input=input, timeout=self.timeout + 5)

    def appctl(self, *args: str) -> str:
        """Run ovs-appctl against this sandbox's ovs-vswitchd."""
        return process.run(
            ["ovs-appctl", "-t", str(self._vswitchd_ctl), f"--timeout={int(self.timeout)}", *args],
            env=self.env, timeout=self.timeout + 5,
        )

    # -- bridges and ports -----------------------------------------------

    def add_bridge(self, name: str, fail_mode: str = "secure") -> None:
        """Add a netdev bridge; in-band control off so no hidden flows exist."""
        self.vsctl("add-br", name, "--", "set", "Bridge", name, "datapath_type=netdev",
                   f"fail_mode={fail_mode}", "other_config:disable-in-band=true")

    def del_bridge(self, name: str) -> None:
        self.vsctl("--if-exists", "del-br", name)

    def add_port(
        self,
        bridge: str,
        name: str,
        *,
        type: str | None = None,
        ofport_request: int | None = None,
        external_ids: Mapping[str, str] | None = None,
        options: Mapping[str, str] | None = None,
    ) -> int:
        """Add a port (one interface of the same name) and return its ofport."""
        settings = []
        if type is not None:
            settings.append(f"type={type}")
        if ofport_request is not None:
            settings.append(f"ofport_request={ofport_request}")
        settings += [f'external_ids:{k}="{v}"' for k, v in (external_ids or {}).items()]
        settings += [f'options:{k}="{v}"' for k, v in (options or {}).items()]
        cmd = ["add-port", bridge, name]
        if settings:
            cmd += ["--", "set", "Interface", name, *settings]
        self.vsctl(*cmd)
        return self.ofport(name)

    def del_port(self, name: str) -> None:
        self.vsctl("--if-exists", "del-port", name)

    def ofport(self, name: str) -> int:
        """OpenFlow port number of interface ``name``.

        Raises with OVS's own ``error`` column when the interface could not
        be opened (ofport -1), e.g. a missing device.
        """
        ofport = int(self.vsctl("get", "Interface", name, "ofport").strip() or -1)
        if ofport <= 0:
            error = self.vsctl("get", "Interface", name, "error").strip()
            raise LabError(f"interface {name} has no ofport ({ofport}): {error}")
        return ofport

    # -- flows -------------------------------------------------------------

    def dump_flows(self, bridge: str, cookie: str | None = None) -> list[str]:
        """Flows as ovs-ofctl prints them without statistics, one per item.

        ``cookie`` is ``"0x1f"`` (exact) or ``"0x1f/0xff"`` (masked).
        """
        args = ["--no-stats", "dump-flows", bridge]
        if cookie is not None:
            args.append(f"cookie={cookie}" if "/" in cookie else f"cookie={cookie}/-1")
        lines = self.ofctl(*args).splitlines()
        return [line.strip() for line in lines if line.strip() and "reply" not in line]

    def replace_flows(self, bridge: str, text: str) -> None:
        """Make ``text`` (one flow per line) the bridge's whole flow table.

        One OpenFlow 1.5 bundle: the switch never shows a half-applied table. Fragments are
        handled "nx-match", as the agent's programmer sets it (in OVS's default mode a first
        fragment's ports and ICMP type read 0, and dpagent's flows would mistake it).

        Returns once the revalidators have been through the datapath's cached flows: until
        then a packet may still take a datapath flow made from the old table (the bundle's
        reply does not wait for that), and a test's next packet must meet the new table.
        """
        self.ofctl("set-frags", bridge, "nx-match")
        self.ofctl("-O", "OpenFlow15", "--bundle", "replace-flows", bridge, "-", input=text)
        self.appctl("revalidator/wait")

    def trace(self, bridge: str, flow: str, ct_next: Sequence[str] | None = None) -> TraceVerdict:
        """Trace ``flow`` through ``bridge``; see ``TraceVerdict``.

        ``ct_next`` gives the conntrack state for each ``ct()`` recirculation
        in order (e.g. ``["trk,new"]``, or ``["trk,est", "trk,est"]`` for two
        ct() passes); OVS assumes ``trk,new`` for recirculations not given.
        """
        args = ["ofproto/trace", bridge, flow]
        for state in ct_next or ():
            args += ["--ct-next", state]
        raw = self.appctl(*args)
        return parse_trace(raw, parse_dpif_show(self.appctl("dpif/show"), bridge))

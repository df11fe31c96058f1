"""dpagent against a real neutron-server 29 (PyPI ``neutron``): fixtures.

``neutron_server`` (session): a private neutron (API, RPC and periodic workers, MariaDB) on a
vhost of the session's RabbitMQ, with ``agent_down_time = AGENT_DOWN_TIME``.  ``neutron_api``:
its REST client.  ``neutron_agent``: a factory starting ``dpagent`` daemons against it, each a
host of its own with its own br-int and a physical bridge for physnet1; ``agent.plug(port)``
plugs a namespace VM for a neutron port as os-vif does.  ``overlay_rig`` (module): two such
hosts, each with an OVS of its own on one underlay (``dpagent.lab.underlay``), carrying tenant
overlay networks (VXLAN, Geneve) with l2population and the ARP responder.

Like tests/functional these need root (and tools/neutron-server/setup.sh): they skip without,
and fail under CI.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dpagent.lab.netns import NetnsVM
from dpagent.lab.neutron_server import (
    MARIADB_BINARIES,
    NeutronAPI,
    NeutronServer,
    missing_requirements,
    venv_path,
)
from dpagent.lab.ovs_sandbox import REQUIRED_BINARIES as OVS_BINARIES
from dpagent.lab.ovs_sandbox import OVSSandbox
from dpagent.lab.rabbit import REQUIRED_BINARIES as RABBIT_BINARIES
from dpagent.lab.rabbit import RabbitBroker
from dpagent.lab.underlay import Underlay
from tests.conftest import _require
from tests.functional.daemon.test_daemon import start_daemon
from tests.neutron.polling import wait_agent_alive, wait_for

AGENT_DOWN_TIME = 12  # short, so a frozen agent is declared dead within a test
PHYSNET = "physnet1"
OVERLAY_TUNNEL_TYPES = ("vxlan", "geneve")
# Appended after write_config's [agent] and [ovs] and NeutronAgent's [ovs] bridge_mappings:
# oslo.config merges sections of one name, so the host keeps datapath_type = netdev (which br-tun
# is made with too), its own OVSDB and br-int, and gets its tunnel endpoint.
OVERLAY_CONF = """
[agent]
tunnel_types = {tunnel_types}
l2_population = {l2_population}
arp_responder = {arp_responder}

[ovs]
local_ip = {local_ip}
"""


@pytest.fixture(scope="session")
def neutron_server(rabbit_broker: RabbitBroker) -> Iterator[NeutronServer]:
    """A private neutron-server 29; ``.api``, ``.transport_url``, ``.log_tail(name)``."""
    venv = venv_path()
    tools = [str(venv / "bin" / t) for t in ("uwsgi", "neutron-rpc-server")]
    _require("a real neutron-server", [*RABBIT_BINARIES, *MARIADB_BINARIES, *tools])
    assert not missing_requirements(venv), missing_requirements(venv)
    with NeutronServer(rabbit_broker, agent_down_time=AGENT_DOWN_TIME) as server:
        print(f"\nneutron-server up: {server.timings}")
        yield server


@pytest.fixture
def neutron_api(neutron_server: NeutronServer) -> NeutronAPI:
    return neutron_server.api


class NeutronAgent:
    """One dpagent daemon (a host) and the VMs plugged into its br-int.

    ``host``, ``bridge`` (br-int), ``phys_bridge`` (mapped to physnet1), ``directory`` (its
    config, ``dpagent.log`` and status socket), ``process`` (the daemon's Popen).
    """

    def __init__(self, sandbox: OVSSandbox, server: NeutronServer, directory: Path,
                 name: str, options: dict[str, Any], started: bool = True) -> None:
        tag = uuid.uuid4().hex[:6]
        self.sandbox, self.server, self.directory = sandbox, server, directory
        self.host = f"{name}-{tag}"
        self.bridge = f"br-i{tag}"
        self.phys_bridge = f"br-p{tag}"
        self.options = options
        self.vms: list[NetnsVM] = []
        self.process: subprocess.Popen[str] | None = None
        sandbox.vsctl("--may-exist", "add-br", self.phys_bridge, "--", "set", "Bridge",
                      self.phys_bridge, "datapath_type=netdev")  # standalone, as operators leave it
        if started:
            self.start()

    @property
    def log(self) -> Path:
        return self.directory / "dpagent.log"

    @property
    def status_socket(self) -> Path:
        return self.directory / "status.sock"

    def start(self) -> None:
        """Start the daemon (again) and wait until it answers on its status socket."""
        options = dict(self.options)
        extra = f"\n[ovs]\nbridge_mappings = {PHYSNET}:{self.phys_bridge}\n" + options.pop(
            "extra", "")
        rpc_mode = options.pop("rpc_mode", None) or os.environ.get("DPAGENT_TEST_RPC_MODE")
        if rpc_mode:  # [agent] rpc_mode: the tier runs in either (the env var: all of it)
            extra += f"\n[agent]\nrpc_mode = {rpc_mode}\n"
        self.process = start_daemon(self.directory, self.sandbox, self.server.transport_url,
                                    self.host, self.bridge, "threading", extra=extra, **options)
        proc = self.process
        wait_for(lambda: proc.poll() is not None or self.status_socket.exists(), 30,
                 what=f"dpagent {self.host} status socket")
        if proc.poll() is not None:
            raise AssertionError(f"dpagent exited {proc.returncode}:\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Signal the daemon and wait for it; returns its exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.status_socket.exists():
            self.status_socket.unlink()
        return self.process.returncode

    def signal(self, sig: int) -> None:
        """Signal the daemon's whole process group (its service manager and workers: a
        SIGSTOP to the parent alone would leave the worker heartbeating)."""
        assert self.process is not None
        os.killpg(self.process.pid, sig)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def plug(self, port: dict[str, Any], name: str | None = None,
             prefixlen: int = 24) -> NetnsVM:
        """A namespace VM for ``port``, plugged into br-int as os-vif does (iface-id = port id,
        attached-mac = its MAC, eth0 with its MAC and first fixed IP)."""
        ips = [f"{ip['ip_address']}/{prefixlen}" for ip in port["fixed_ips"]
               if ":" not in ip["ip_address"]]
        vm = NetnsVM(self.sandbox, self.bridge, name or f"v{len(self.vms)}",
                     port["mac_address"], ipv4=ips[:1], iface_id=port["id"])
        self.vms.append(vm)
        return vm

    def close(self) -> None:
        for vm in reversed(self.vms):
            vm.destroy()
        self.vms.clear()
        if self.process is not None:
            self.stop(signal.SIGKILL)
        for bridge in (self.bridge, self.phys_bridge):
            self.sandbox.del_bridge(bridge)


@pytest.fixture
def own_sandbox() -> Iterator[OVSSandbox]:
    """A switch of the test's own, for tests that stop its ovs-vswitchd or run neutron's agent
    (which serves OpenFlow to it on 127.0.0.1:6633 inside its namespace). Ask for it before
    ``neutron_agent``, so that it outlives the agents' clean-up."""
    with OVSSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def neutron_agent(tmp_path: Path, ovs_sandbox: OVSSandbox,
                  neutron_server: NeutronServer) -> Iterator[Callable[..., NeutronAgent]]:
    """Factory: ``neutron_agent(name="compute", **options)`` -> a started ``NeutronAgent``.

    ``options`` are ``write_config``'s (``report_interval`` defaults to 1, ``rpc_timeout``,
    ``debug``, ``extra`` config sections) and ``rpc_mode`` (``cache``/``legacy``; default:
    ``$DPAGENT_TEST_RPC_MODE``, else the agent's); ``sandbox`` another OVS than the session's;
    ``started=False``: bridges made, daemon not started.  Every agent, its VMs and bridges go
    afterwards.
    """
    agents: list[NeutronAgent] = []

    def make(name: str = "compute", sandbox: OVSSandbox | None = None, started: bool = True,
             **options: Any) -> NeutronAgent:
        directory = tmp_path / f"agent{len(agents)}"
        directory.mkdir()
        options.setdefault("report_interval", 1)
        agent = NeutronAgent(sandbox or ovs_sandbox, neutron_server, directory, name, options,
                             started)
        agents.append(agent)
        return agent

    yield make
    for agent in reversed(agents):
        agent.close()


EXTERNAL_ADDRESSES = 15
"""Addresses below a test subnet's broadcast that neutron never allocates (see vlan_network)."""


@pytest.fixture
def vlan_network(neutron_api: NeutronAPI) -> Iterator[Callable[..., dict[str, Any]]]:
    """Factory: ``vlan_network("10.20.0.0/24", vlan=None)`` -> the network (with ``subnet``)
    of a provider VLAN network on physnet1 (``vlan`` None: the server picks one of 100-200).
    Deleted afterwards with its ports."""
    made: list[dict[str, Any]] = []

    def make(cidr: str, vlan: int | None = None, **attrs: Any) -> dict[str, Any]:
        net = neutron_api.create_network(f"net-{uuid.uuid4().hex[:6]}", "vlan", PHYSNET,
                                         vlan, **attrs)
        made.append(net)
        # the last addresses below broadcast stay out of the allocation pool: the tests'
        # external hosts (behind the physical bridge, not neutron ports) use them (.250 of a
        # /24), and a port given the same address would answer in their place
        subnet = ipaddress.ip_network(cidr)
        pool = {"start": str(subnet.network_address + 2), "end": str(subnet.broadcast_address
                                                                    - EXTERNAL_ADDRESSES - 1)}
        net["subnet"] = neutron_api.create_subnet(net["id"], cidr, allocation_pools=[pool])
        return net

    yield make
    for net in made:
        for port in neutron_api.get(f"/v2.0/ports?network_id={net['id']}")["ports"]:
            neutron_api.delete_port(port["id"])
        neutron_api.delete(f"/v2.0/networks/{net['id']}")


@dataclass
class OverlayRig:
    """Two hosts on one underlay: ``hosts[i]`` is a :class:`NeutronAgent` (``compute1-<tag>``,
    ``compute2-<tag>``) on an OVS of its own, whose ``br-phy`` holds ``underlay.local_ip(i)``."""

    underlay: Underlay
    hosts: list[NeutronAgent]
    setup_seconds: float

    def local_ip(self, index: int) -> str:
        return self.underlay.local_ip(index)


def _stop_hosts(hosts: list[NeutronAgent]) -> None:
    """SIGTERM to every daemon, then close: close()'s SIGKILL alone reaches the service manager
    only, whose worker would go on for seconds beside its bridges being deleted."""
    running = [h for h in hosts if h.process is not None and h.process.poll() is None]
    for host in running:
        assert host.process is not None
        host.process.send_signal(signal.SIGTERM)
    for host in running:
        assert host.process is not None
        with contextlib.suppress(subprocess.TimeoutExpired):
            host.process.wait(timeout=15)
    for host in reversed(hosts):
        host.close()


@pytest.fixture(scope="module")
def overlay_rig(neutron_server: NeutronServer,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[OverlayRig]:
    """Two dpagent hosts carrying tenant overlays between them (``OVERLAY_CONF``), both alive
    at the server; shared by a module's tests (each should leave no port behind)."""
    _require("a two-host overlay rig", [*OVS_BINARIES, "ethtool", "ping", "tcpdump"])
    with contextlib.ExitStack() as stack:
        started = time.monotonic()
        sandboxes = [stack.enter_context(OVSSandbox()) for _ in range(2)]
        underlay = stack.enter_context(Underlay(sandboxes))
        base = tmp_path_factory.mktemp("overlay")
        hosts: list[NeutronAgent] = []
        stack.callback(_stop_hosts, hosts)
        for index, sandbox in enumerate(sandboxes):
            directory = base / f"host{index + 1}"
            directory.mkdir()
            extra = OVERLAY_CONF.format(
                l2_population="true", arp_responder="true",
                tunnel_types=", ".join(OVERLAY_TUNNEL_TYPES), local_ip=underlay.local_ip(index))
            hosts.append(NeutronAgent(sandbox, neutron_server, directory, f"compute{index + 1}",
                                      {"report_interval": 1, "extra": extra}))
        for host in hosts:
            wait_agent_alive(neutron_server.api, host.host)
        elapsed = time.monotonic() - started
        print(f"\ntwo-host overlay rig (OVS, underlay, 2 dpagents alive) in {elapsed:.1f} s")
        yield OverlayRig(underlay, hosts, elapsed)

"""neutron's own ``neutron-openvswitch-agent`` (from the neutron 29 venv), for the in-place
migration test: an operator's host as neutron's agent leaves it.

It runs as root with ``root_helper = env`` (privsep through ``env privsep-helper``), the
openvswitch firewall, native OpenFlow and ``datapath_type = netdev``, inside the sandbox's
network namespace: its os-ken OpenFlow controller listens on ``tcp:127.0.0.1:6633`` and sets
br-int's controller there, which ovs-vswitchd (in that namespace) must reach. The broker on the
host's loopback is reached through a :class:`~dpagent.lab.netns_forward.LoopbackForward`.

Given a ``local_ip`` it also carries tenant overlays as an operator's compute host does:
``[agent] tunnel_types`` (vxlan), ``l2_population`` and ``arp_responder`` on, its tunnel bridge
(``br-tun``) and ``[ovs] local_ip``; its ``validate_local_ip`` passes because it runs in the
namespace where the host's ``br-phy`` holds that address (``dpagent.lab.underlay``).
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from urllib.parse import urlparse

from dpagent.lab.netns_forward import LoopbackForward
from dpagent.lab.neutron_server import NeutronServer, venv_path
from dpagent.lab.ovs_sandbox import OVSSandbox

BINARY = "neutron-openvswitch-agent"


class StockOvsAgent:
    """One ``neutron-openvswitch-agent`` for ``host`` on ``bridge`` (br-int) with
    ``physnet:phys_bridge`` mapped; ``start()``, ``stop()``, ``log_tail()``.  With
    ``local_ip``: tunnels of ``tunnel_types`` from that address through ``tunnel_bridge``, with
    l2population and the ARP responder as asked."""

    def __init__(self, sandbox: OVSSandbox, server: NeutronServer, directory: Path, host: str,
                 bridge: str, bridge_mappings: dict[str, str], *, local_ip: str | None = None,
                 tunnel_types: tuple[str, ...] = ("vxlan",), l2_population: bool = True,
                 arp_responder: bool = True, tunnel_bridge: str = "br-tun") -> None:
        self.sandbox, self.server, self.directory = sandbox, server, directory
        self.host, self.bridge = host, bridge
        self.bridge_mappings = bridge_mappings
        self.local_ip, self.tunnel_types = local_ip, tunnel_types
        self.l2_population, self.arp_responder = l2_population, arp_responder
        self.tunnel_bridge = tunnel_bridge
        self.process: subprocess.Popen[bytes] | None = None
        self._forward: LoopbackForward | None = None

    @property
    def log(self) -> Path:
        return self.directory / "neutron-openvswitch-agent.log"

    def _write_config(self) -> Path:
        mappings = ",".join(f"{p}:{b}" for p, b in sorted(self.bridge_mappings.items()))
        config = self.directory / "openvswitch_agent.ini"
        agent_tunnels = ovs_tunnels = ""
        if self.local_ip is not None:
            agent_tunnels = (f"tunnel_types = {', '.join(self.tunnel_types)}\n"
                             f"l2_population = {self.l2_population}\n"
                             f"arp_responder = {self.arp_responder}\n")
            ovs_tunnels = (f"local_ip = {self.local_ip}\n"
                           f"tunnel_bridge = {self.tunnel_bridge}\n")
        config.write_text(f"""[DEFAULT]
host = {self.host}
transport_url = {self.server.transport_url}
state_path = {self.directory / "state"}
log_file = {self.log}
debug = true

[agent]
report_interval = 2
polling_interval = 1
root_helper = env
{agent_tunnels}
[ovs]
integration_bridge = {self.bridge}
bridge_mappings = {mappings}
{ovs_tunnels}datapath_type = netdev
ovsdb_connection = {self.sandbox.db_connection}
of_listen_address = 127.0.0.1
of_listen_port = 6633

[securitygroup]
firewall_driver = openvswitch
""")
        return config

    def start(self) -> None:
        config = self._write_config()
        self._forward = LoopbackForward(self.sandbox.netns,
                                        urlparse(self.server.transport_url).port or 5672)
        self._forward.start()
        venv = venv_path()
        env = dict(self.sandbox.env, PATH=f"{venv / 'bin'}:{os.environ['PATH']}")
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", self.sandbox.netns, str(venv / "bin" / BINARY),
             "--config-file", str(config)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, as ``systemctl stop`` sends; SIGKILL (the whole group: privsep helpers too)
        if it has not gone after ``timeout`` seconds -- systemd would, after its own."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
        if self._forward is not None:
            self._forward.close()
            self._forward = None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

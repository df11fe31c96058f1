"""A host with physical networks, on the sandbox: an integration bridge (the ``bridge`` fixture),
physical bridges, "external hosts" plugged into them as the NIC would be, br-int flows compiled
from networks with uplinks, and packet captures on the wire."""

from __future__ import annotations

import os
import select
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dpagent.agent.ovsdb import Ovsdb
from dpagent.bridge.ofctl import OfctlTransport
from dpagent.bridge.openflow.transport import OpenFlowTransport
from dpagent.bridge.programmer import BridgeProgrammer
from dpagent.lab import process
from dpagent.lab.netns import NetnsVM
from dpagent.lab.ovs_sandbox import OVSSandbox
from dpagent.physnet import PhysicalNetworks
from flows import compile_sg_info
from flows.model import Uplink

OPEN = [{"direction": "ingress", "ethertype": "IPv4", "stateful": True},
        {"direction": "egress", "ethertype": "IPv4", "stateful": True}]


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def phys_bridges(ovs_sandbox: OVSSandbox) -> Iterator[Callable[[str], str]]:
    """Factory: ``phys_bridges("br-phys1")`` adds a netdev bridge; all are deleted afterwards."""
    made: list[str] = []

    def make(name: str) -> str:
        ovs_sandbox.vsctl("--may-exist", "add-br", name, "--", "set", "Bridge", name,
                          "datapath_type=netdev")  # standalone, as an operator leaves it
        made.append(name)
        return name

    yield make
    for name in made:
        ovs_sandbox.del_bridge(name)


class Host:
    """The agent's view: the integration bridge, its programmer and the physnet manager."""

    def __init__(self, sandbox: OVSSandbox, ovsdb: Ovsdb, integration: str) -> None:
        self.sandbox, self.ovsdb, self.integration = sandbox, ovsdb, integration
        self.br_int = BridgeProgrammer(OfctlTransport(integration, env=sandbox.env))
        self.programmers: dict[str, list[BridgeProgrammer]] = {}
        self.uplink_changes: list[frozenset[str]] = []
        self.managers: list[PhysicalNetworks] = []

    def programmer_for(self, bridge: str) -> BridgeProgrammer:
        # the daemon's default transport (native OpenFlow 1.5): NORMAL and all
        programmer = BridgeProgrammer(
            OpenFlowTransport(str(self.sandbox.directory / f"{bridge}.mgmt")))
        self.programmers.setdefault(bridge, []).append(programmer)
        return programmer

    def physnets(self, mappings: dict[str, str], **kwargs: Any) -> PhysicalNetworks:
        kwargs.setdefault("retry_interval", 3600.0)  # only OVSDB events may wire a new bridge
        manager = PhysicalNetworks(self.ovsdb, mappings, self.integration, self.programmer_for,
                                   netns=self.sandbox.netns,
                                   on_uplinks_changed=self.uplink_changes.append, **kwargs)
        self.managers.append(manager)
        return manager

    def program(self, ports: list[tuple[NetnsVM, str]],
                networks: dict[str, tuple[int, Uplink | None]]) -> None:
        """Compile and install br-int's flows: ``ports`` (VM, network id), ``networks`` network
        id -> (local VLAN, uplink), as the agent does with the compiler's output."""
        devices = {vm.name: {"mac_address": vm.mac, "fixed_ips": [vm.ip4], "network_id": net,
                             "security_groups": ["open"], "port_security_enabled": True,
                             "ofport": vm.ofport, "local_vlan": networks[net][0]}
                   for vm, net in ports}
        nets = {net: {"local_vlan": vlan,
                      "uplink": None if up is None else {"ofport": up.ofport, "vlan": up.vlan}}
                for net, (vlan, up) in networks.items()}
        result = compile_sg_info({"devices": devices, "security_groups": {"open": OPEN},
                                  "sg_member_ips": {}, "networks": nets})
        assert not result.errors, result.errors
        self.br_int.replace_all(result.owners)
        report = self.br_int.reconcile("test")
        assert not report.rejected, report.rejected


@pytest.fixture
def host(ovs_sandbox: OVSSandbox, ovsdb: Ovsdb, bridge: str,
         phys_bridges: Callable[[str], str]) -> Iterator[Host]:
    """Stopped before the bridges go (``phys_bridges`` is torn down after it)."""
    the_host = Host(ovs_sandbox, ovsdb, bridge)
    yield the_host
    for manager in the_host.managers:
        manager.stop()


class Wire:
    """The cable from a physical bridge's NIC to a top-of-rack switch, and hosts behind it.

    The NIC is a veth end (``nic-<bridge>``) plugged into the physical bridge as its uplink
    port; the other end is a trunk port of a standalone OVS bridge playing the ToR switch, whose
    access ports hold the external hosts (this kernel has no 802.1Q module, so a host cannot
    terminate a VLAN itself; the ToR does it, as in a rack). A capture on the NIC shows the
    frames exactly as they are on the wire.
    """

    def __init__(self, sandbox: OVSSandbox, bridge: str, make_vm: Callable[..., NetnsVM]) -> None:
        self.sandbox, self.bridge, self._make_vm = sandbox, bridge, make_vm
        self.nic = f"nic-{bridge}"[:15]
        self.tor_port = f"tor-{bridge}"[:15]
        self.tor = f"tor{bridge}"[:15]
        ns = ["ip", "-n", sandbox.netns]
        sandbox.vsctl("add-br", self.tor, "--", "set", "Bridge", self.tor,
                      "datapath_type=netdev")
        process.run([*ns, "link", "add", self.nic, "type", "veth", "peer", "name",
                     self.tor_port])
        for dev in (self.nic, self.tor_port):
            process.run([*ns, "link", "set", dev, "up"])
            process.run(["ip", "netns", "exec", sandbox.netns, "ethtool", "-K", dev, "tx", "off"])
        sandbox.add_port(self.tor, self.tor_port)
        self.plug()

    def plug(self) -> None:
        """(Re)plug the NIC into the physical bridge (after the bridge was re-created)."""
        self.sandbox.vsctl("--may-exist", "add-port", self.bridge, self.nic)

    @property
    def nic_ofport(self) -> int:
        return self.sandbox.ofport(self.nic)

    def host(self, name: str, cidr: str, vlan: int | None = None) -> NetnsVM:
        """An external host on the ToR: on VLAN ``vlan`` (an access port) or untagged."""
        vm = self._make_vm(name, bridge=self.tor, ipv4=[cidr])
        if vlan is not None:
            self.sandbox.vsctl("set", "Port", vm.tap, f"tag={vlan}")
        return vm

    def remove(self) -> None:
        self.sandbox.del_bridge(self.tor)
        self.sandbox.del_port(self.nic)
        try:
            process.run(["ip", "-n", self.sandbox.netns, "link", "del", self.nic])
        except process.LabCommandError:
            pass


@pytest.fixture
def wire(ovs_sandbox: OVSSandbox,
         netns_vm: Callable[..., NetnsVM]) -> Iterator[Callable[[str], Wire]]:
    """Factory: ``wire("br-phys1")`` cables the bridge's NIC to a ToR switch."""
    made: list[Wire] = []

    def make(bridge: str) -> Wire:
        made.append(Wire(ovs_sandbox, bridge, netns_vm))
        return made[-1]

    yield make
    for cable in made:
        cable.remove()


class Capture:
    """tcpdump on one interface of a namespace; :meth:`stop` returns the frames it printed
    (link-level headers included, so 802.1Q tags are visible)."""

    def __init__(self, netns: str, iface: str) -> None:
        self._proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, "tcpdump", "-i", iface, "-e", "-n", "-l", "-U"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self._proc.stderr is not None
        seen = ""
        deadline = time.monotonic() + 5
        while "listening on" not in seen and time.monotonic() < deadline:
            if select.select([self._proc.stderr], [], [], 0.1)[0]:
                chunk = os.read(self._proc.stderr.fileno(), 4096).decode()
                if not chunk:
                    break
                seen += chunk
        if "listening on" not in seen:
            self.stop()
            raise AssertionError(f"tcpdump did not start: {seen}")

    def stop(self) -> list[str]:
        time.sleep(0.2)  # let the last frames be printed
        self._proc.terminate()
        out, _ = self._proc.communicate(timeout=5)
        return out.splitlines()


@pytest.fixture
def capture(ovs_sandbox: OVSSandbox) -> Iterator[Callable[..., Capture]]:
    """Factory: ``capture(wire.nic)`` starts tcpdump on a device of the switch's namespace."""
    started: list[Capture] = []

    def start(iface: str) -> Capture:
        cap = Capture(ovs_sandbox.netns, iface)
        started.append(cap)
        return cap

    yield start
    for cap in started:
        if cap._proc.poll() is None:
            cap.stop()

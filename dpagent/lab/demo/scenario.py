"""The demo's story, step by step, on a :class:`~dpagent.lab.demo.rig.Rig`.

1. Start a private OVS (with a physical bridge per physnet), RabbitMQ, ``dpagent-controller``
   with the topology, and ``dpagent``.
2. Plug four VMs like Nova VIFs and an external host behind the physical bridge; wait until
   the controller reports the VMs' ports ACTIVE (the agent wired them); print the matrix.
3. Set the agent administratively down through the API, plug ``late``: it stays isolated (the
   agent holds it back, the port stays DOWN) while the others keep working; print the matrix.
4. Set the agent up again: ``late`` is wired without a restart; print the matrix.
5. Ask the agent why, with ``dpagent-ctl trace``: one allowed and one dropped cell per stage
   (ingress rules through a remote group, a stateless reply, anti-spoofing, the provider
   network's way out); each verdict must agree with the real traffic of step 4.

Every wait polls observable state (port status, the agent's status socket); the only timeouts
are deadlines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dpagent.lab import process
from dpagent.lab.demo import expected, matrix
from dpagent.lab.demo.layout import Layout
from dpagent.lab.demo.rig import INTEGRATION_BRIDGE, Rig
from dpagent.lab.process import LabError

T = TypeVar("T")
WIRE_TIMEOUT = 45.0


@dataclass
class Outcome:
    phases: list[tuple[str, list[matrix.Cell]]] = field(default_factory=list)

    @property
    def mismatches(self) -> list[matrix.Cell]:
        return [c for _, cells in self.phases for c in matrix.mismatches(cells)]


class Story:
    def __init__(self, rig: Rig, layout: Layout, out: Callable[[str], None] = print) -> None:
        self.rig = rig
        self.layout = layout
        self.out = out
        self.started = time.monotonic()
        self.ports: dict[str, dict[str, Any]] = {}
        self.addresses: dict[str, str] = {}
        self.sources: dict[str, matrix.Source] = {}
        self.outcome = Outcome()
        self.agent_id = ""

    def say(self, text: str) -> None:
        self.out(f"[{time.monotonic() - self.started:5.1f} s] {text}")

    # -- 1. processes --------------------------------------------------------------------------

    def start(self, topology: Any) -> None:
        rig, layout = self.rig, self.layout
        bridges = sorted(layout.bridge_mappings.values())
        self.say(f"run directory {rig.run_dir} (configuration, logs, database, state)")
        rig.start_switch(bridges)
        self.say(f"private OVS up (userspace datapath, switch namespace {rig.sandbox.netns}); "
                 f"physical bridge(s): {', '.join(bridges)}")
        url = rig.start_broker()
        self.say(f"private RabbitMQ up on port {rig.broker.port}")
        controller = rig.start_controller(url, topology)
        self.say(f"dpagent-controller up: API {controller.api_url}, topology {topology}")
        rig.start_agent(url, layout.host, layout.bridge_mappings)
        self.say(f"dpagent up as host {layout.host} (bridge_mappings "
                 f"{', '.join(f'{k}:{v}' for k, v in layout.bridge_mappings.items())})")
        agent = self.wait(lambda: controller.agent(layout.host), 30,
                          f"the controller to list agent {layout.host}")
        self.agent_id = agent["id"]
        self.ports = self.wait(lambda: self._all_ports(), 10, "the topology's ports in the API")

    def _all_ports(self) -> dict[str, dict[str, Any]] | None:
        assert self.rig.controller is not None
        ports = self.rig.controller.ports()
        return ports if all(name in ports for name in expected.VMS) else None

    # -- 2. VMs --------------------------------------------------------------------------------

    def plug_vm(self, name: str) -> None:
        port = self.ports[name]
        ip = port["fixed_ips"][0]["ip_address"]
        network = self.network_name(port)
        vm = self.rig.plug(name, mac=port["mac_address"], iface_id=port["id"],
                           cidr=f"{ip}/{self.layout.prefix_len[network]}")
        self._serve(vm)
        self.addresses[name] = ip
        self.sources[name] = matrix.Source(vm)

    def plug_external(self) -> None:
        ext = expected.EXTERNAL
        physnet = self.layout.physnet[ext.network]
        assert physnet is not None
        bridge = self.layout.bridge_mappings[physnet]
        vm = self.rig.plug(ext.name, bridge=bridge, mac="fa:16:3e:ee:00:99", cidr=ext.cidr)
        vlan = self.layout.vlan[ext.network]
        if vlan is not None:
            self.rig.sandbox.vsctl("set", "Port", vm.tap, f"tag={vlan}")
        self._serve(vm)
        self.addresses[ext.name] = ext.cidr.split("/")[0]
        self.sources[ext.name] = matrix.Source(vm)
        self.say(f"external host {ext.name} {ext.cidr} on {bridge}, "
                 + (f"access port of VLAN {vlan}" if vlan is not None else "untagged"))

    def add_spoofer(self) -> None:
        spoof = expected.SPOOFER
        vm = self.sources[spoof.vm].vm
        result = vm.exec(["ip", "addr", "add", f"{spoof.address}/32", "dev", "eth0"])
        if result.returncode != 0:
            raise LabError(f"adding {spoof.address} to {spoof.vm}: {result.stderr.strip()}")
        self.sources[spoof.label] = matrix.Source(vm, spoof.address)

    def _serve(self, vm: Any) -> None:
        for port in expected.TCP_PORTS.values():
            vm.tcp_listen(port)

    def network_name(self, port: dict[str, Any]) -> str:
        assert self.rig.controller is not None
        return str(self.rig.controller.networks()[port["network_id"]]["name"])

    def wait_active(self, names: list[str]) -> None:
        assert self.rig.controller is not None
        controller = self.rig.controller

        def active() -> bool:
            ports = controller.ports()
            return all(ports[n]["status"] == "ACTIVE" for n in names)
        try:
            self.wait(active, WIRE_TIMEOUT, f"ports {', '.join(names)} ACTIVE")
        except LabError:
            ports = controller.ports()
            states = ", ".join(f"{n} {ports[n]['status']}" for n in names)
            raise LabError(f"ports not ACTIVE after {WIRE_TIMEOUT:.0f} s: {states}; agent "
                           f"status {self.rig.status()}\n{self.rig.agent_log_tail()}") from None

    # -- phases --------------------------------------------------------------------------------

    def phase_wired(self) -> None:
        self.out("\n== 1. four VMs and an external host, wired by the agent")
        first = [n for n in expected.VMS if n != expected.LATE]
        assert self.rig.controller is not None
        before = self.rig.controller.ports()
        if any(before[n]["status"] == "ACTIVE" for n in first):
            raise LabError("the controller reports ports ACTIVE before any VIF is plugged: "
                           + ", ".join(f"{n} {before[n]['status']}" for n in first))
        for name in first:
            self.plug_vm(name)
        self.add_spoofer()
        self.say(f"plugged {', '.join(first)} into {INTEGRATION_BRIDGE} like Nova VIFs "
                 "(external_ids iface-id = port id, attached-mac); their ports were "
                 f"{'/'.join(sorted({before[n]['status'] for n in first}))}")
        self.plug_external()
        self.wait_active(first)
        self.say(f"the controller reports {', '.join(first)} ACTIVE (the agent wired them)")
        self.show_ctl("agents", "list")
        self.show_vlan_proof()
        self.probe("wired", [*first, expected.SPOOFER.label, expected.EXTERNAL.name],
                   [*first, expected.EXTERNAL.name])

    def phase_cordoned(self) -> None:
        self.out("\n== 2. agent administratively down: a newly plugged VM stays isolated")
        assert self.rig.controller is not None
        self.show_ctl("agents", "set", "--admin-down", self.agent_id)
        self.wait(lambda: self.rig.status()["admin_state_up"] is False, 20,
                  "the agent to learn it is administratively down")
        self.say("the agent is cordoned (agent_updated over RabbitMQ)")
        self.plug_vm(expected.LATE)
        self.wait(lambda: self.rig.status()["ports"].get("admin-down") == 1, 20,
                  f"the agent to hold {expected.LATE} back")
        late = self.rig.controller.ports()[expected.LATE]
        self.say(f"plugged {expected.LATE}; the agent holds it back, its port is "
                 f"{late['status']}:")
        self.show(["dpagent-ctl", "status", "--socket", str(self.rig.status_socket)],
                  self._ctl_status())
        if late["status"] == "ACTIVE":
            raise LabError(f"{expected.LATE} is ACTIVE although the agent is down")
        everyone = list(expected.VMS)
        self.probe("cordoned", [*everyone, expected.EXTERNAL.name],
                   [*everyone, expected.EXTERNAL.name], isolated=[expected.LATE])

    def phase_uncordoned(self) -> None:
        self.out("\n== 3. agent administratively up again: the held VM is wired, no restart")
        self.show_ctl("agents", "set", "--admin-up", self.agent_id)
        self.wait_active([expected.LATE])
        self.say(f"{expected.LATE} is ACTIVE; same agent process (pid {self.rig.agent_pid()})")
        everyone = list(expected.VMS)
        self.probe("uncordoned", [*everyone, expected.EXTERNAL.name],
                   [*everyone, expected.EXTERNAL.name])

    def phase_traced(self) -> None:
        """``dpagent-ctl trace`` on cells of the last matrix: the switch's own verdict, in the
        operator's words, must agree with what real packets did."""
        self.out("\n== 4. why: dpagent-ctl trace asks the switch, the answer names the rule")
        observed = {(c.source, c.destination, c.service): c.observed  # the latest of each
                    for _, cells in self.outcome.phases for c in cells}
        spoof = expected.SPOOFER
        Trace = tuple[str, str, str, dict[str, Any]]
        cases: list[tuple[tuple[str, str, str], list[Trace]]] = [
            # (cell, traces whose verdicts together make the cell's)
            (("web1", "db1", expected.PG), [("web1", "db1", "tcp/5432", {})]),
            (("mon1", "db1", expected.PG), [("mon1", "db1", "tcp/5432", {})]),
            (("mon1", "web1", expected.HTTP), [("mon1", "web1", "tcp/80", {}),
                                                ("web1", "mon1", "tcp/80", {"state": "reply"})]),
            ((spoof.label, "web1", expected.PING),
             [(spoof.vm, "web1", "icmp", {"src_ip": spoof.address})]),
            (("web2", expected.EXTERNAL.name, expected.HTTP),
             [("web2", expected.EXTERNAL.name, "tcp/80", {})]),
        ]
        disagree = []
        for (source, destination, service), traces in cases:
            verdicts = [self.trace(*t) for t in traces]
            real = observed.get((source, destination, service))
            agreed = real is not None and real == all(verdicts)
            self.say(f"{source} -> {destination} {service}: trace "
                     f"{'ALLOWED' if all(verdicts) else 'DROPPED'}, real traffic "
                     f"{'reachable' if real else 'blocked'}: "
                     + ("agree" if agreed else "DISAGREE"))
            if not agreed:
                disagree.append(f"{source} -> {destination} {service}")
        if disagree:
            raise LabError(f"dpagent-ctl trace disagrees with real traffic: "
                           f"{', '.join(disagree)}")

    def trace(self, source: str, destination: str, service: str,
              extra: dict[str, Any]) -> bool:
        """Show one ``dpagent-ctl trace`` (by address) and return whether it was allowed."""
        from dpagent.cmd.ctl import render_trace  # the text dpagent-ctl trace prints
        src, dst = self.addresses[source], self.addresses[destination]
        request = {"command": "trace", "from": src, "to": dst, "service": service, **extra}
        answer = self.rig.trace(request)
        if "error" in answer:
            raise LabError(f"dpagent-ctl trace {source} -> {destination} {service}: "
                           f"{answer['error']}")
        options = "".join(f" --{k.replace('_', '-')} {v}" for k, v in extra.items())
        self.show(["dpagent-ctl", "trace", "--socket", str(self.rig.status_socket), "--from",
                   src, "--to", dst, service + options], render_trace(answer))
        return bool(answer["verdict"] == "ALLOWED")

    # -- helpers -------------------------------------------------------------------------------

    def probe(self, phase: str, sources: list[str], destinations: list[str],
              isolated: list[str] | None = None) -> None:
        cells = matrix.plan(sources, destinations, isolated or ())
        started = time.monotonic()
        observed = matrix.observe(cells, self.sources, self.addresses)
        bad = matrix.mismatches(observed)
        self.say(f"{len(observed)} probes in {time.monotonic() - started:.1f} s: "
                 + ("all as expected" if not bad else f"{len(bad)} MISMATCH(ES)"))
        self.out(matrix.render(observed, sources, destinations))
        self.outcome.phases.append((phase, observed))

    def show_ctl(self, *args: str) -> None:
        assert self.rig.controller is not None
        shown, output = self.rig.controller.ctl(*args)
        self.show(shown, output)

    def show(self, shown: list[str], output: str) -> None:
        self.out("$ " + " ".join(shown))
        self.out("\n".join("  " + line for line in output.rstrip().splitlines()))

    def _ctl_status(self) -> str:
        from dpagent.cmd.ctl import render  # the same text dpagent-ctl status prints
        return render(self.rig.status())

    def show_vlan_proof(self) -> None:
        """br-phys's MAC table: web2's MAC learned on the provider VLAN, from the patch port."""
        ext = expected.EXTERNAL
        physnet = self.layout.physnet[ext.network]
        vlan = self.layout.vlan[ext.network]
        if physnet is None or vlan is None:
            return
        bridge = self.layout.bridge_mappings[physnet]
        macs = {self.ports[n]["mac_address"]: n for n in expected.VMS
                if self.network_name(self.ports[n]) == ext.network and n in self.sources}
        self.sources[ext.name].vm.exec(["ping", "-c", "1", "-W", "1",
                                        self.addresses[next(iter(macs.values()))]])
        sandbox = self.rig.sandbox
        names = {str(sandbox.ofport(n)): n for n in sandbox.vsctl("list-ifaces", bridge).split()}
        for line in self.rig.sandbox.appctl("fdb/show", bridge).splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 3 and fields[2] in macs and fields[1] == str(vlan):
                self.say(f"{bridge} learned {macs[fields[2]]}'s MAC {fields[2]} on VLAN "
                         f"{vlan} from port {names.get(fields[0], fields[0])}: the frames "
                         "crossed the patch port tagged")

    def wait(self, predicate: Callable[[], T | None], timeout: float, what: str) -> T:
        result: list[T] = []

        def check() -> bool:
            value = predicate()
            if value:
                result.append(value)
            return bool(value)
        if not process.wait_until(check, timeout, interval=0.1):
            raise LabError(f"timed out after {timeout:.0f} s waiting for {what}")
        return result[-1]


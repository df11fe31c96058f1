"""Benchmark of trunk subports on OVS ports (issue: "time from add_subports to the subport
passing traffic; flow-mods per subport added"). Not a test: it prints figures.

One host, as tests/neutron/test_trunk.py's ``trunk_rig`` builds it but without pytest: a
private RabbitMQ, a real neutron-server 29 with its trunk plugin
(``/opt/dpagent-test/neutron-venv``), a private Open vSwitch, one ``dpagent`` daemon with a
physical bridge for physnet1, alive at the server. A trunk whose parent is on VLAN network A,
bound to the host after the trunk is made, and its VM (:class:`dpagent.lab.trunk_vm.TrunkVM`)
with the untagged interface, pinging a peer VM on A.

Then K subports are added one at a time (``PUT /v2.0/trunks/<id>/add_subports``), each on a
VLAN network of its own that already has a peer VM on br-int (so the network is known on the
host: only the subport is new), each subport's VM sub-interface made before the add. The two
ends know each other's MAC (static neighbour entries), so the first reply is not held back by
the kernel's ARP retries (1 s apart); from just before the request the sub-interface pings the
peer every 10 ms (``ping -D``: the reply's receive time). Measured from the moment the request
is sent (wall clock, which ``ping -D`` uses too):

  api     the add_subports call returned;
  spi     the ``spi-<port>`` patch port exists on br-int (``ovs-vsctl wait-until``);
  peer    it is connected to its trunk-bridge end (``options:peer``) and has an ofport;
  ping    the first echo reply;
  ACTIVE  the trunk is ACTIVE again at the server (the call sets it DOWN; polled every 50 ms).

Flow-mods per subport: br-int's flows (``ovs-ofctl -O OpenFlow15 --no-stats dump-flows``,
counters stripped) right before the add and once it has settled (ACTIVE, ping passing, then
``--settle`` seconds), compared as text: added, removed, and modified (same table, priority and
match, other actions or cookie). Each of them is "about" the new subport if it names the
subport's ofport on br-int (``in_port=N``, ``output:N``, ``reg5=0xN`` or ``N->reg5``: reg5 is
the pipeline's port register), its MAC, its IP, or its network's local VLAN (the spi port's
tag in OVSDB: ``reg6``, ``dl_vlan``, ``vlan_tci``, ``mod_vlan_vid``, ``->vlan_vid``,
``zone=``); else "other". The goal is other == 0. The physical bridge's flows are compared
too (``phys``: flows changed there). The same for a ``remove_subports`` of the last subport.

    python benchmarks/trunk_bench.py [--quick] [--subports K] [--settle S] [--show-flows]
                                     [--log-dir DIR]

``--show-flows`` prints every br-int flow each operation changed (by default only the "other"
ones, five at most); ``--log-dir`` keeps the daemon's log.

Skips (prints why, exits 0) without root, the binaries, or neutron's virtualenv.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PING_INTERVAL = 0.01
FIRST_VLAN = 10  # the VM-side VLAN of subport 1 (then 11, 12, ...)
STATUS_POLL = 0.05


# -- flows ------------------------------------------------------------------------------------

_STATS = re.compile(r"\s*\b(duration|n_packets|n_bytes|idle_age|hard_age)=[^,\s]*,?")
_COOKIE = re.compile(r"\bcookie=0x[0-9a-f]+,?\s*")
_NUMBER = r"(0x[0-9a-f]+|\d+)"


def dump(sandbox: Any, bridge: str) -> list[str]:
    """A bridge's flows as text, counters and durations stripped, sorted."""
    out = sandbox.ofctl("-O", "OpenFlow15", "--no-stats", "dump-flows", bridge)
    flows = []
    for line in out.splitlines():
        line = line.strip()
        if not line or "reply" in line:
            continue
        flows.append(_STATS.sub(" ", line).strip().replace("  ", " "))
    return sorted(flows)


def flow_key(text: str) -> str:
    """A flow's table, priority and match (what identifies it in the switch)."""
    return _COOKIE.sub("", text).partition(" actions=")[0].strip()


@dataclass
class FlowDiff:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    modified: list[tuple[str, str]] = field(default_factory=list)
    """(before, after), same key"""

    @property
    def changed(self) -> list[str]:
        """Every flow text that differs (a modified flow's after and before)."""
        return self.added + self.removed + [t for pair in self.modified for t in pair]


def diff(before: list[str], after: list[str]) -> FlowDiff:
    gone = sorted(set(before) - set(after))
    new = sorted(set(after) - set(before))
    by_key_gone: dict[str, list[str]] = {}
    for text in gone:
        by_key_gone.setdefault(flow_key(text), []).append(text)
    result = FlowDiff()
    for text in new:
        olds = by_key_gone.get(flow_key(text))
        if olds:
            result.modified.append((olds.pop(0), text))
        else:
            result.added.append(text)
    result.removed = [t for olds in by_key_gone.values() for t in olds]
    return result


def _int(value: str) -> int:
    return int(value, 16) if value.startswith("0x") else int(value)


def port_refs(text: str) -> set[int]:
    """The ofports a flow names: in_port, output, and the pipeline's port register (reg5)."""
    refs = {_int(v) for v in re.findall(rf"\bin_port={_NUMBER}\b", text)}
    refs |= {_int(v) for v in re.findall(rf"\boutput:{_NUMBER}\b", text)}
    refs |= {_int(v) for v in re.findall(rf"\boutput\(port={_NUMBER}\b", text)}
    refs |= {_int(v) for v in re.findall(rf"\breg5={_NUMBER}(?![/0-9a-fx])", text)}
    refs |= {_int(v) for v in re.findall(rf"\b{_NUMBER}->reg5\b", text)}
    refs |= {_int(v) for v in re.findall(rf"\bload:{_NUMBER}->NXM_NX_REG5\[", text)}
    return refs


def vlan_refs(text: str) -> set[int]:
    """The VLANs a flow names: the network register (reg6), 802.1Q fields, conntrack zones."""
    refs = {_int(v) for v in re.findall(rf"\breg6={_NUMBER}(?![/0-9a-fx])", text)}
    refs |= {_int(v) for v in re.findall(rf"\b{_NUMBER}->reg6\b", text)}
    refs |= {_int(v) for v in re.findall(rf"\bload:{_NUMBER}->NXM_NX_REG6\[", text)}
    refs |= {_int(v) for v in re.findall(rf"\bdl_vlan={_NUMBER}\b", text)}
    refs |= {_int(v) for v in re.findall(rf"\bmod_vlan_vid:{_NUMBER}\b", text)}
    refs |= {_int(v) & 0xFFF for v in re.findall(rf"\bvlan_tci={_NUMBER}", text)}
    refs |= {_int(v) & 0xFFF for v in re.findall(rf"\b{_NUMBER}->vlan_vid\b", text)}
    refs |= {_int(v) for v in re.findall(rf"\bzone={_NUMBER}\b", text)}
    return refs


@dataclass(frozen=True)
class Subject:
    """What names a subport in br-int's flows."""

    ofport: int
    mac: str
    ip: str
    vlan: int | None

    def names_port(self, text: str) -> bool:
        """Whether the flow names the subport itself: its ofport, MAC or IP."""
        lowered = text.lower()
        if self.mac.lower() in lowered:
            return True
        if re.search(rf"(?<![\d.]){re.escape(self.ip)}(?![\d])", text):
            return True
        return self.ofport in port_refs(lowered)

    def about(self, text: str) -> bool:
        return self.names_port(text) or (self.vlan is not None and
                                         self.vlan in vlan_refs(text.lower()))


@dataclass
class Judged:
    diff: FlowDiff
    about: int
    """flow changes about the subport (a modified flow counts once)"""
    vlan_only: int
    """of which about it only through its network's local VLAN"""
    others: int
    """the other flow changes"""
    other: list[str]
    """their texts (a modified flow's before and after)"""
    phys: int
    """flows changed on the physical bridge"""


def judge(change: FlowDiff, subject: Subject, phys: FlowDiff) -> Judged:
    units = [[t] for t in change.added + change.removed] + [list(p) for p in change.modified]
    other_units = [unit for unit in units if not any(subject.about(t) for t in unit)]
    vlan_only = sum(1 for unit in units if any(subject.about(t) for t in unit)
                    and not any(subject.names_port(t) for t in unit))
    return Judged(change, len(units) - len(other_units), vlan_only, len(other_units),
                  [t for unit in other_units for t in unit], len(phys.changed))


# -- the rig ----------------------------------------------------------------------------------

def stop_agent(agent: Any) -> None:
    """SIGTERM, wait (then SIGKILL), any process left in its group killed; then its VMs
    and bridges go."""
    if agent.process is not None:
        agent.stop(signal.SIGTERM, timeout=15)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(agent.process.pid, signal.SIGKILL)  # its own session: only its workers
        if agent.process.stderr is not None:
            agent.process.stderr.close()
    agent.close()


def static_neighbours(a: Any, b: Any) -> None:
    """Each VM knows the other's MAC: no ARP, whose retries are 1 s apart."""
    for here, there in ((a, b), (b, a)):
        subprocess.run(["ip", "-n", here.netns, "neigh", "replace", there.ip4, "lladdr",
                        there.mac, "dev", "eth0", "nud", "permanent"], check=True)


class FirstReply:
    """Pings from ``vm`` to ``ip`` every PING_INTERVAL in the background; ``first`` is the
    receive time (``ping -D``, wall clock) of the first reply."""

    _REPLY = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+)")

    def __init__(self, vm: Any, ip: str, deadline: int = 120) -> None:
        self.first: float | None = None
        self.replies = 0
        self.got = threading.Event()
        self._proc = subprocess.Popen(
            ["ip", "netns", "exec", vm.netns, "ping", "-n", "-D", "-O", "-i", str(PING_INTERVAL),
             "-W", "1", "-w", str(deadline), ip],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            found = self._REPLY.match(line)
            if found:
                self.replies += 1
                if self.first is None:
                    self.first = float(found.group(1))
                    self.got.set()

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._thread.join(5)
        if self._proc.stdout is not None:
            self._proc.stdout.close()


class PortWaiter:
    """``ovs-vsctl wait-until`` in the background: ``at`` is when its conditions held."""

    def __init__(self, sandbox: Any, *condition: str, timeout: int = 60) -> None:
        self.at: float | None = None
        self._proc = subprocess.Popen(
            ["ovs-vsctl", f"--db={sandbox.db_connection}", f"--timeout={timeout}",
             "wait-until", *condition], env=sandbox.env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        self._thread = threading.Thread(target=self._wait, daemon=True)
        self._thread.start()

    def _wait(self) -> None:
        if self._proc.wait() == 0:
            self.at = time.time()

    def result(self, timeout: float = 5.0) -> float | None:
        """When the conditions held (None: not within ``timeout`` more seconds); the
        waiter is ended either way."""
        self._thread.join(timeout)
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._thread.join(1)
        return self.at


@dataclass
class Rig:
    api: Any
    agent: Any
    sandbox: Any
    trunk: dict[str, Any]
    tvm: Any
    ping_group: dict[str, Any]
    settle: float
    subports: list[dict[str, Any]] = field(default_factory=list)


def trunk_status(api: Any, trunk_id: str) -> str:
    status: str = api.get(f"/v2.0/trunks/{trunk_id}")["trunk"]["status"]
    return status


def first_ip(port: dict[str, Any]) -> str:
    ip: str = port["fixed_ips"][0]["ip_address"]
    return ip


def vlan_network(api: Any, cidr: str) -> dict[str, Any]:
    import uuid

    from tests.neutron.conftest import PHYSNET
    net: dict[str, Any] = api.create_network(f"bench-{uuid.uuid4().hex[:6]}", "vlan", PHYSNET)
    net["subnet"] = api.create_subnet(net["id"], cidr)
    return net


def build(stack: contextlib.ExitStack, settle: float,
          log_dir: Path | None) -> tuple[Rig, dict[str, float]]:
    from dpagent.lab.neutron_server import NeutronServer
    from dpagent.lab.ovs_sandbox import OVSSandbox
    from dpagent.lab.rabbit import RabbitBroker
    from dpagent.lab.trunk_vm import TrunkVM, trunk_bridge
    from tests.neutron.conftest import NeutronAgent
    from tests.neutron.polling import wait_agent_alive, wait_for, wait_ping
    from tests.neutron.test_neutron_server import EGRESS_ALL, ICMP_IN, group, plugged

    timings: dict[str, float] = {}
    started = time.monotonic()
    broker = stack.enter_context(RabbitBroker.from_env())
    server = stack.enter_context(NeutronServer(broker))
    timings["broker and neutron-server"] = time.monotonic() - started
    sandbox = stack.enter_context(OVSSandbox())
    directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="trunk-bench-")))
    mark = time.monotonic()
    agent = NeutronAgent(sandbox, server, directory, "trunkbench", {"report_interval": 1},
                         started=False)
    if log_dir is not None:  # after the daemon stopped, before its directory goes
        log_dir.mkdir(parents=True, exist_ok=True)
        stack.callback(lambda: agent.log.exists() and shutil.copy(agent.log, log_dir))
    stack.callback(stop_agent, agent)
    agent.start()
    api = server.api
    wait_agent_alive(api, agent.host)
    timings["dpagent alive"] = time.monotonic() - mark

    mark = time.monotonic()
    net_a = vlan_network(api, "10.70.0.0/24")
    ping = group(api, "ping", ICMP_IN, EGRESS_ALL)
    parent = api.create_port(net_a["id"], security_groups=[ping["id"]])
    trunk = api.post("/v2.0/trunks", {"trunk": {"port_id": parent["id"],
                                                "sub_ports": []}})["trunk"]
    parent = api.update_port(parent["id"], **{"binding:host_id": agent.host})
    if parent["binding:vif_details"].get("bridge_name") != trunk_bridge(trunk["id"]):
        raise RuntimeError(f"the server did not name the trunk bridge: {parent}")
    (_,), (peer_a,) = plugged(api, agent, net_a, [[ping]], ["pa"])
    tvm = TrunkVM(sandbox, trunk["id"], parent["id"], parent["mac_address"])
    stack.callback(tvm.destroy)
    untagged = tvm.interface(None, parent["mac_address"], [f"{first_ip(parent)}/24"])
    wait_for(lambda: trunk_status(api, trunk["id"]) == "ACTIVE", 30, what="trunk ACTIVE",
             interval=0.1)
    wait_ping(untagged, peer_a.ip4)
    timings["trunk ACTIVE, parent pinging"] = time.monotonic() - mark
    return Rig(api, agent, sandbox, trunk, tvm, ping, settle), timings


# -- one subport ------------------------------------------------------------------------------

@dataclass
class Added:
    index: int
    vlan: int
    api: float
    spi: float | None
    peer: float | None
    ping: float | None
    active: float | None
    put_status: str
    early_reply: bool
    judged: Judged


def spi_name(port_id: str) -> str:
    from dpagent.trunk.naming import SUBPORT_PREFIX, integration_side
    return integration_side(SUBPORT_PREFIX, port_id)


def subject_of(rig: Rig, port: dict[str, Any]) -> Subject:
    name = spi_name(port["id"])
    tag = rig.sandbox.vsctl("get", "Port", name, "tag").strip()
    return Subject(rig.sandbox.ofport(name), port["mac_address"], first_ip(port),
                   int(tag) if tag.isdigit() else None)


def wait_settled(rig: Rig, started: float, pinger: FirstReply | None,
                 timeout: float = 30.0) -> float | None:
    """Polls until the trunk is ACTIVE and (with ``pinger``) a reply came; when it was
    ACTIVE (seconds from ``started``), None if it was not within ``timeout``."""
    active = None
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if active is None and trunk_status(rig.api, rig.trunk["id"]) == "ACTIVE":
            active = time.time() - started
        if active is not None and (pinger is None or pinger.got.is_set()):
            break
        time.sleep(STATUS_POLL)
    return active


def add_one(rig: Rig, index: int) -> Added:
    from tests.neutron.test_neutron_server import plugged
    from tests.neutron.test_trunk import subport

    api, sandbox, agent = rig.api, rig.sandbox, rig.agent
    net = vlan_network(api, f"10.{70 + index}.0.0/24")
    port = subport(api, net["id"], [rig.ping_group])
    (_,), (peer,) = plugged(api, agent, net, [[rig.ping_group]], [f"p{index}"])
    vlan = FIRST_VLAN + index - 1
    vm = rig.tvm.interface(vlan, port["mac_address"], [f"{first_ip(port)}/24"],
                           name=f"s{index}")
    static_neighbours(vm, peer)
    time.sleep(rig.settle)  # the peer's wiring, and its report, done
    before, phys_before = dump(sandbox, agent.bridge), dump(sandbox, agent.phys_bridge)
    name = spi_name(port["id"])
    spi = PortWaiter(sandbox, "Port", name)
    trunk_end = name.replace("spi", "spt", 1)
    peer_end = PortWaiter(sandbox, "Interface", name, f"options:peer={trunk_end}", "ofport>0")
    pinger = FirstReply(vm, peer.ip4)
    spi_at = peer_at = None
    try:
        time.sleep(0.05)  # the pinger under way
        started = time.time()
        reply = api.put(f"/v2.0/trunks/{rig.trunk['id']}/add_subports", {"sub_ports": [
            {"port_id": port["id"], "segmentation_type": "vlan", "segmentation_id": vlan}]})
        returned = time.time() - started
        active = wait_settled(rig, started, pinger)
        pinger.got.wait(20)
        time.sleep(rig.settle)
        after, phys_after = dump(sandbox, agent.bridge), dump(sandbox, agent.phys_bridge)
    finally:
        pinger.stop()
        spi_at, peer_at = spi.result(), peer_end.result()
    rig.subports.append({"port": port, "vlan": vlan, "vm": vm, "peer": peer})

    def since(at: float | None) -> float | None:
        return None if at is None else at - started
    subject = subject_of(rig, port)
    return Added(index, vlan, returned, since(spi_at), since(peer_at),
                 since(pinger.first), active, str((reply or {}).get("status", "?")),
                 pinger.first is not None and pinger.first < started,
                 judge(diff(before, after), subject, diff(phys_before, phys_after)))


@dataclass
class Removed:
    api: float
    gone: float | None
    active: float | None
    judged: Judged
    port: dict[str, Any]
    """the removed subport's port as the server shows it afterwards"""


def remove_last(rig: Rig) -> Removed:
    api, sandbox, agent = rig.api, rig.sandbox, rig.agent
    last = rig.subports[-1]
    port = last["port"]
    subject = subject_of(rig, port)
    name = spi_name(port["id"])
    before, phys_before = dump(sandbox, agent.bridge), dump(sandbox, agent.phys_bridge)
    started = time.time()
    api.put(f"/v2.0/trunks/{rig.trunk['id']}/remove_subports",
            {"sub_ports": [{"port_id": port["id"]}]})
    returned = time.time() - started
    gone = None
    end = time.monotonic() + 30
    while time.monotonic() < end:
        if name not in sandbox.vsctl("list-ports", agent.bridge).split():
            gone = time.time() - started
            break
        time.sleep(0.01)
    active = wait_settled(rig, started, None)
    time.sleep(rig.settle)
    after, phys_after = dump(sandbox, agent.bridge), dump(sandbox, agent.phys_bridge)
    return Removed(returned, gone, active,
                   judge(diff(before, after), subject, diff(phys_before, phys_after)),
                   api.show_port(port["id"]))


# -- report -----------------------------------------------------------------------------------

def sec(value: float | None) -> str:
    return "  -  " if value is None else f"{value:5.2f}"


def summary(values: list[float | None]) -> tuple[str, str]:
    got = [v for v in values if v is not None]
    if not got:
        return "  -  ", "  -  "
    return sec(statistics.median(got)), sec(max(got))


HEADER = (f"  {'#':>3} {'vlan':>4}   {'api':>5} {'spi':>5} {'peer':>5} {'ping':>5} "
          f"{'ACTIVE':>6}   {'added':>5} {'removed':>7} {'modified':>8} {'about':>5} "
          f"{'(vlan)':>6} {'other':>5} {'phys':>4}")


def flows_columns(judged: Judged) -> str:
    d = judged.diff
    return (f"{len(d.added):>5} {len(d.removed):>7} {len(d.modified):>8} {judged.about:>5} "
            f"{judged.vlan_only:>6} {judged.others:>5} {judged.phys:>4}")


def show(title: str, judged: Judged, limit: int | None) -> None:
    if not judged.other:
        return
    shown = judged.other if limit is None else judged.other[:limit]
    print(f"  {title}: flows classified \"other\" ({judged.others}; "
          f"{len(shown)} of {len(judged.other)} texts shown):")
    for text in shown:
        print(f"      {text}")


def show_all(title: str, judged: Judged) -> None:
    d = judged.diff
    print(f"  {title}: every br-int flow changed")
    for text in d.added:
        print(f"      + {text}")
    for text in d.removed:
        print(f"      - {text}")
    for old, new in d.modified:
        print(f"      ~ {old}\n        -> {new}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 subports instead of 10")
    parser.add_argument("--subports", type=int, help="subports added one at a time (default 10)")
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds waited before each flow dump (default 1.0)")
    parser.add_argument("--log-dir", type=Path,
                        help="copy the daemon's log (dpagent.log) there before clean-up")
    parser.add_argument("--show-flows", action="store_true",
                        help="print every br-int flow each operation changed")
    args = parser.parse_args()
    count = args.subports or (3 if args.quick else 10)
    if not 1 <= count <= 90:
        parser.error("--subports: 1 to 90 (one VLAN network each, of the server's 100-200)")

    sys.path.insert(0, str(ROOT))
    from dpagent.lab.neutron_server import start_bench
    from dpagent.lab.ovs_sandbox import REQUIRED_BINARIES as OVS_BINARIES
    if not start_bench("trunk benchmark", [*OVS_BINARIES, "ethtool", "ping"], quiet_logs=False):
        return 0
    from dpagent.lab import resources
    session = resources.mark_session()

    started = time.monotonic()
    added: list[Added] = []
    removed: Removed | None = None
    with contextlib.ExitStack() as stack:
        rig, timings = build(stack, args.settle, args.log_dir)
        print(f"trunk benchmark: one dpagent host against neutron-server 29 (trunk plugin); "
              f"{count} subports added one at a time, then one removed")
        print("  set-up: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
        print(f"  br-int: {len(dump(rig.sandbox, rig.agent.bridge))} flows with the parent "
              "and its peer wired")
        for index in range(1, count + 1):
            added.append(add_one(rig, index))
        removed = remove_last(rig)
    leftovers = resources.find_leftovers(session)
    if leftovers:
        resources.remove_leftovers(leftovers)

    print("\n1. add_subports, one subport each (its network has a peer VM on br-int already)")
    print("   seconds from the request sent: api returned, spi port on br-int, connected, "
          "first ping reply, trunk ACTIVE; br-int flows changed")
    print(HEADER)
    for a in added:
        print(f"  {a.index:>3} {a.vlan:>4}   {sec(a.api)} {sec(a.spi)} {sec(a.peer)} "
              f"{sec(a.ping)} {sec(a.active):>6}   {flows_columns(a.judged)}"
              f"{'  (a reply before the request!)' if a.early_reply else ''}")
    for label, pick in (("median", 0), ("max", 1)):
        cols = [summary([getattr(a, k) for a in added])[pick]
                for k in ("api", "spi", "peer", "ping", "active")]
        print(f"  {label:>8}   {cols[0]} {cols[1]} {cols[2]} {cols[3]} {cols[4]:>6}")
    totals = [sum(len(a.judged.diff.added) for a in added),
              sum(len(a.judged.diff.removed) for a in added),
              sum(len(a.judged.diff.modified) for a in added),
              sum(a.judged.about for a in added), sum(a.judged.vlan_only for a in added),
              sum(a.judged.others for a in added),
              sum(a.judged.phys for a in added)]
    print(f"  {'total':>8}   {'':>33}{totals[0]:>5} {totals[1]:>7} {totals[2]:>8} "
          f"{totals[3]:>5} {totals[4]:>6} {totals[5]:>5} {totals[6]:>4}")
    statuses = sorted({a.put_status for a in added})
    print(f"   the trunk's status in the add_subports answer: {', '.join(statuses)}; "
          f"ping every {PING_INTERVAL * 1000:.0f} ms, static neighbours; flows dumped "
          f"{args.settle:.1f} s after ACTIVE and the first reply")
    assert removed is not None
    print("\n2. remove_subports of the last subport")
    print(f"  {'api':>5} {'gone':>5} {'ACTIVE':>6}   {'added':>5} {'removed':>7} "
          f"{'modified':>8} {'about':>5} {'(vlan)':>6} {'other':>5} {'phys':>4}")
    print(f"  {sec(removed.api)} {sec(removed.gone)} {sec(removed.active):>6}   "
          f"{flows_columns(removed.judged)}")
    shown = removed.port
    print("   gone: its spi port no longer on br-int (ovs-vsctl list-ports every 10 ms); the port "
          f"afterwards: {shown.get('status')}, binding:host_id "
          f"{shown.get('binding:host_id')!r}, device_owner {shown.get('device_owner')!r}")
    print("   about: names the subport's ofport, MAC or IP, or its network's local VLAN; (vlan): "
          "of which only the VLAN; phys: flows changed on the physical bridge")

    limit = None if args.show_flows else 5
    print()
    for a in added:
        if args.show_flows:
            show_all(f"subport {a.index}", a.judged)
        show(f"subport {a.index}", a.judged, limit)
    if args.show_flows:
        show_all("remove", removed.judged)
    show("remove", removed.judged, limit)
    print(f"  left behind: {leftovers.describe() if leftovers else 'nothing'}")
    print(f"\n  ({time.monotonic() - started:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark of the agent (issue: daemon). Not a test: it prints figures.

A workload's ports are plugged into a private OVS one after another (an internal port with
``external_ids:iface-id``, as Nova plugs a VIF); a local in-process control plane answers from
the workload (details, SG info, device list). Two runs, each in a fresh process:
  * `medium` (the 200 ports neutron's firewall needed 139 s for): latency from the VIF's OVSDB
    row committed to its flows committed and the port reported up, p50/p99 over all 200 ports;
    then a cold start: all 200 VIFs plugged, br-int empty, a new agent wires them all;
  * `large`, 1,000 ports: the same latency over the first 200, RSS of the process once all
    1,000 are wired (agent + its caches + the harness), and the flow-mods and latency of one
    remote-group member change;
  * `large --ahead`: the same, each port's binding told before its VIF is plugged, as
    neutron does (``port_update`` with ``binding:host_id``, then Nova boots the VM and plugs
    the VIF): the agent installs the port's remote groups' member flows then, and the VIF's
    latency is that of its own flows.

    python benchmarks/agent_bench.py                       # the three runs
    python benchmarks/agent_bench.py --preset large [--ahead] [--ports 1000] [--latency-ports 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dpagent.agent.agent import Agent, Settings  # noqa: E402
from dpagent.agent.dataplane import Dataplane  # noqa: E402
from dpagent.agent.ovsdb import Ovsdb  # noqa: E402
from dpagent.bridge.openflow.transport import OpenFlowTransport  # noqa: E402
from dpagent.bridge.programmer import BridgeProgrammer  # noqa: E402
from dpagent.bridge.transport import FlowMod  # noqa: E402
from dpagent.lab.ovs_sandbox import OVSSandbox  # noqa: E402
from flows.flow import Flow  # noqa: E402
from flows.pipeline import Table  # noqa: E402


class WorkloadControlPlane:
    """Answers the agent's three calls from a workload file (neutron's shapes)."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.up_at: dict[str, float] = {}
        self.changed = threading.Condition()

    def get_devices_details(self, devices):
        details = []
        for device in devices:
            port = self.info["devices"][device]
            details.append({"device": device, "port_id": device,
                            "network_id": port["network_id"], "mac_address": port["mac_address"],
                            "network_type": "vxlan", "segmentation_id": 1,
                            "physical_network": None, "admin_state_up": True,
                            "fixed_ips": [{"ip_address": ip} for ip in port["fixed_ips"]]})
        return details, []

    def security_group_info(self, devices):
        devices = {d: self.info["devices"][d] for d in devices}
        groups = {sg for d in devices.values() for sg in d["security_groups"]}
        remote = {r[k] for sg in groups for r in self.info["security_groups"][sg]
                  for k in ("remote_group_id", "remote_address_group_id") if r.get(k)}
        return {"devices": devices,
                "security_groups": {sg: self.info["security_groups"][sg] for sg in groups},
                # fresh lists, as a reply off the wire would be
                "sg_member_ips": {g: {f: list(m) for f, m in self.info["sg_member_ips"][g].items()}
                                  for g in remote if g in self.info["sg_member_ips"]}}

    def update_device_list(self, up, down):
        now = time.perf_counter()
        with self.changed:
            for device in up:
                self.up_at.setdefault(device, now)
            self.changed.notify_all()

    def wait_up(self, device: str, timeout: float = 60.0) -> float:
        with self.changed:
            if not self.changed.wait_for(lambda: device in self.up_at, timeout):
                raise TimeoutError(f"{device} never came up")
            return self.up_at[device]


def start_agent(sandbox: OVSSandbox, bridge: str, control_plane: WorkloadControlPlane
                ) -> tuple[Agent, Ovsdb, BridgeProgrammer]:
    """The agent as the daemon builds it: OVSDB events of ``bridge``, native OpenFlow."""
    ovsdb = Ovsdb(sandbox.db_connection, 30)
    ovsdb.ensure_bridge(bridge, "netdev")
    programmer = BridgeProgrammer(OpenFlowTransport(str(sandbox.directory / f"{bridge}.mgmt")))
    agent = Agent(Settings(integration_bridge=bridge), ovsdb, control_plane,
                  Dataplane(programmer))
    ovsdb.watch(agent.vif_event, lambda: agent.resync("ovsdb reconnect"), bridge)
    agent.start()
    return agent, ovsdb, programmer


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", choices=("medium", "large"))
    parser.add_argument("--ports", type=int, default=1000)
    parser.add_argument("--latency-ports", type=int, default=200)
    parser.add_argument("--ahead", action="store_true",
                        help="tell each port's binding before plugging its VIF")
    args = parser.parse_args()
    if args.preset is None:  # the runs, each in a process of its own (RSS is per process)
        for preset, ahead in (("medium", []), ("large", []), ("large", ["--ahead"])):
            done = subprocess.run([sys.executable, __file__, "--preset", preset,
                                   "--ports", str(args.ports),
                                   "--latency-ports", str(args.latency_ports), *ahead])
            if done.returncode:
                return done.returncode
        return 0
    preset = args.preset
    gen = ROOT / "tests" / "workloads" / "gen.py"
    with tempfile.TemporaryDirectory() as tmp, OVSSandbox() as sandbox:
        subprocess.run([sys.executable, str(gen), "--preset", preset, "--seed", "1",
                        "--out-dir", tmp], check=True, stdout=subprocess.DEVNULL)
        info = json.loads((Path(tmp) / f"{preset}.json").read_text())
        control_plane = WorkloadControlPlane(info)
        bridge = "br-bench"
        agent, ovsdb, programmer = start_agent(sandbox, bridge, control_plane)
        while not agent.synced_once:
            time.sleep(0.05)
        base_rss = rss_mib()
        port_ids = sorted(info["devices"])[:args.ports]
        latencies = []
        for i, port_id in enumerate(port_ids):
            mac = info["devices"][port_id]["mac_address"]
            name = f"tap{i:05d}"
            if args.ahead:  # bound here: the VM boots meanwhile (prepared before it plugs)
                agent.port_bound(port_id, here=True)
                if i < args.latency_ports:
                    wait_prepared(agent)
            sandbox.vsctl("add-port", bridge, name, "--", "set", "Interface", name,
                          "type=internal", f"external_ids:iface-id={port_id}",
                          f"external_ids:attached-mac={mac}",
                          "external_ids:iface-status=active")
            plugged = time.perf_counter()  # ovs-vsctl returned: the row is committed
            if i < args.latency_ports:
                latencies.append(control_plane.wait_up(port_id) - plugged)
        for port_id in port_ids:
            control_plane.wait_up(port_id, timeout=300)
        time.sleep(1)
        status = agent.status()
        latencies.sort()
        print(f"agent benchmark: {preset} preset, {len(port_ids)} ports plugged one after another"
              + (", each port's binding told before its VIF is plugged" if args.ahead else ""))
        print(f"  VIF in OVSDB -> flows committed and reported up, first {len(latencies)} ports: "
              f"p50 {statistics.median(latencies) * 1000:.1f} ms, "
              f"p99 {latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000:.1f} ms, "
              f"max {latencies[-1] * 1000:.1f} ms")
        print(f"  wired: {status['ports']}, flows installed: {status['flows_installed']}")
        print(f"  RSS with {len(port_ids)} ports wired: {rss_mib():.0f} MiB "
              f"(process at start, agent idle: {base_rss:.0f} MiB)")

        time.sleep(SETTLE)
        group = max(info["sg_member_ips"], key=lambda g: len(info["sg_member_ips"][g]["IPv4"]))
        members = info["sg_member_ips"][group]["IPv4"]
        for what in ("added to", "removed from"):
            mods, took = [], []
            for i in range(MEMBER_CHANGES):
                entry = [f"10.250.0.{i + 1}", None]
                before = programmer.flow_mods_sent
                if what == "added to":
                    members.append(entry)
                else:
                    members.remove(entry)
                start = time.perf_counter()
                agent.security_groups_member_updated([group])
                while programmer.flow_mods_sent == before and time.perf_counter() - start < 30:
                    time.sleep(0.0002)
                took.append(time.perf_counter() - start)
                mods.append(programmer.flow_mods_sent - before)
                time.sleep(0.05)
            print(f"  one member {what} the largest remote group ({MEMBER_CHANGES} times, "
                  f"{SETTLE:.0f} s after the last port was wired): {min(mods)}-{max(mods)} "
                  f"flow-mods, notification -> committed p50 {statistics.median(took) * 1000:.1f}"
                  f" ms, max {max(took) * 1000:.1f} ms (includes the SG-info fetch from the "
                  "in-process server)")
        switch = switch_alone(programmer)
        print(f"  the switch alone, meanwhile: one flow-mod and its barrier (as a member change "
              f"sends it, straight through the transport) p50 {statistics.median(switch):.1f} ms, "
              f"max {max(switch):.1f} ms")
        agent.stop()
        ovsdb.stop()
        if preset == "medium":
            cold_start(sandbox, bridge, info, len(port_ids))
    return 0


SETTLE = 5.0
"""Seconds between the last port wired and the member changes: ovs-vswitchd is still busy with
the last ports plugged (a member change's bundle took 8 ms then, 0.3 ms on a quiet switch)."""
MEMBER_CHANGES = 10


def switch_alone(programmer: BridgeProgrammer, times: int = MEMBER_CHANGES) -> list[float]:
    """Milliseconds the switch takes for one flow-mod now (a member flow's shape, a
    cookie outside dpagent's mark, deleted again): what a member change cannot go below."""
    took = []
    for i in range(times):
        probe = Flow(int(Table.INGRESS_RULES), 60, (("ip", ""), ("nw_src", f"10.251.0.{i + 1}")),
                     ("conjunction(12345,2/2)",), 0x5EED0000 + i)
        start = time.perf_counter()
        programmer.transport.apply([FlowMod.add(probe)])
        took.append((time.perf_counter() - start) * 1000)
        programmer.transport.apply([FlowMod.delete(probe.cookie)])
        time.sleep(0.05)
    return took


def wait_prepared(agent: Agent, timeout: float = 60.0) -> None:
    """Until the agent has prepared the port whose binding it was just told."""
    end = time.monotonic() + timeout
    while agent.status()["expected"] < 1:
        if time.monotonic() > end:
            raise TimeoutError("the binding was never prepared")
        time.sleep(0.002)


def cold_start(sandbox: OVSSandbox, bridge: str, info: dict[str, Any], ports: int) -> None:
    """An agent starting on a host whose VIFs are all plugged and whose br-int is empty (a
    new agent, or one after drop_flows_on_start): the time to wire every port, as neutron's
    firewall was measured wiring the medium workload's 200 ports."""
    sandbox.ofctl("del-flows", bridge)
    control_plane = WorkloadControlPlane(info)
    start = time.perf_counter()
    agent, ovsdb, programmer = start_agent(sandbox, bridge, control_plane)
    for port_id in sorted(info["devices"])[:ports]:
        control_plane.wait_up(port_id, timeout=300)
    elapsed = time.perf_counter() - start
    status = agent.status()
    print(f"  cold start with {ports} VIFs plugged and br-int empty: from connecting to OVSDB "
          f"to all wired and reported up {elapsed:.2f} s, {programmer.flow_mods_sent} flow-mods, "
          f"{status['flows_installed']} flows")
    agent.stop()
    ovsdb.stop()


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark of the bridge programmer (issue: bridge programming). Not a test: it prints figures.

On a private ovs-vswitchd (userspace datapath), with the `large` workload compiled:
  1. raw:        ``ovs-ofctl -O OpenFlow15 --bundle add-flows`` of the flow file on an empty
                 bridge, the switch's practical limit;
  2. programmer: BridgeProgrammer.reconcile of the same flows on an empty bridge, per transport;
  3. latency from one remote-group member change handed to the programmer (the changed owner's
     flows) to the bundle committed, median and p99 of 100 changes, per transport;
  4. an agent restart: reconcile against the full bridge (nothing to change).

    python benchmarks/programmer_bench.py [--preset large] [--transports openflow,ofctl]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dpagent.bridge.ofctl import OfctlTransport  # noqa: E402
from dpagent.bridge.programmer import BridgeProgrammer  # noqa: E402
from dpagent.lab.ovs_sandbox import OVSSandbox  # noqa: E402
from flows import compile_sg_info  # noqa: E402
from flows.offline import with_local_facts  # noqa: E402
from flows.remote_groups import member_flow, owner_of_member  # noqa: E402


def transports(sandbox, bridge, names):
    made = {}
    for name in names:
        if name == "ofctl":
            made[name] = OfctlTransport(bridge, env=sandbox.env)
        elif name == "openflow":
            try:
                from dpagent.bridge.openflow.transport import OpenFlowTransport
            except ImportError as exc:
                print(f"  (openflow transport unavailable: {exc})")
                continue
            made[name] = OpenFlowTransport(str(sandbox.directory / f"{bridge}.mgmt"))
    return made


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="large")
    parser.add_argument("--transports", default="openflow,ofctl")
    parser.add_argument("--changes", type=int, default=100)
    args = parser.parse_args()
    gen = ROOT / "tests" / "workloads" / "gen.py"
    with tempfile.TemporaryDirectory() as tmp, OVSSandbox() as sandbox:
        subprocess.run([sys.executable, str(gen), "--preset", args.preset, "--seed", "1",
                        "--out-dir", tmp], check=True, stdout=subprocess.DEVNULL)
        info = with_local_facts(json.loads((Path(tmp) / f"{args.preset}.json").read_text()))
        start = time.perf_counter()
        result = compile_sg_info(info)
        compiled = time.perf_counter() - start
        lines = result.flow_lines()
        rendered = time.perf_counter() - start - compiled
        flow_file = Path(tmp) / "flows.txt"
        flow_file.write_text("\n".join(lines) + "\n")
        n = len(lines)
        print(f"programmer benchmark, preset {args.preset}: {n} flows")

        sandbox.add_bridge("br-raw")
        start = time.perf_counter()
        sandbox.ofctl("-O", "OpenFlow15", "--bundle", "add-flows", "br-raw", str(flow_file))
        raw = time.perf_counter() - start
        print(f"  raw ovs-ofctl --bundle add-flows: {raw:.2f} s = {n / raw:,.0f} flows/s")
        print(f"  compile {compiled:.2f} s ({compiled / raw:.2f}x raw; goal <= 1x), rendered "
              f"as text {rendered:.2f} s (the programmer encodes instead)")
        sandbox.del_bridge("br-raw")

        for name in args.transports.split(","):
            bridge = f"br-{name}"[:15]
            sandbox.add_bridge(bridge)
            transport = transports(sandbox, bridge, [name]).get(name)
            if transport is None:
                continue
            programmer = BridgeProgrammer(transport)
            programmer.replace_all(result.owners)
            start = time.perf_counter()
            report = programmer.reconcile("benchmark")
            full = time.perf_counter() - start
            assert not report.rejected, report.rejected
            print(f"  {name}: full install {full:.2f} s = {n / full:,.0f} flows/s "
                  f"({100 * raw / full:.0f}% of raw)")

            member_owner_base = next(o for o in result.owners if o.startswith("member:"))
            _, direction, family, _ = member_owner_base.split(":", 3)
            conj_ids = [int(a.split("(")[1].split(",")[0])
                        for a in result.owners[member_owner_base][0].actions]
            from flows.model import Direction
            latencies = []
            for i in range(args.changes):
                address = f"10.250.{i // 250}.{i % 250 + 1}"
                owner = owner_of_member(Direction(direction), int(family), address)
                flow = member_flow(Direction(direction), int(family), address, conj_ids)
                start = time.perf_counter()
                programmer.set_flows(owner, [flow])
                applied = programmer.apply()
                latencies.append(time.perf_counter() - start)
                assert applied.flow_mods == 1
            latencies.sort()
            print(f"  {name}: one member added -> bundle committed: median "
                  f"{statistics.median(latencies) * 1000:.2f} ms, p99 "
                  f"{latencies[int(len(latencies) * 0.99) - 1] * 1000:.2f} ms "
                  f"(1 flow-mod each)")

            restarted = BridgeProgrammer(transport)
            restarted.replace_all(programmer_owners(programmer))
            start = time.perf_counter()
            again = restarted.reconcile("restart")
            print(f"  {name}: agent restart against the full bridge: {again.flow_mods} "
                  f"flow-mods, {time.perf_counter() - start:.2f} s")
            sandbox.del_bridge(bridge)
    return 0


def programmer_owners(programmer: BridgeProgrammer):
    return {owner: list(flows) for owner, flows in programmer._desired.items()
            if owner != "canary"}


if __name__ == "__main__":
    sys.exit(main())

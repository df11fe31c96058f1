"""Benchmark of the security-group compiler (issue: compiler). Not a test: it prints figures.

For the small/medium/large workload presets of tests/workloads/gen.py (a copy of
../shared/workloads/gen.py): compile time, time to
render the flow text, peak RSS of a process that only compiles, flow count and flows per port;
then the flow-mods each churn step costs (one member added, removed, ...), measured as the diff of
two full compiles; then neutron's own bad cases side by side with the goals.

    python benchmarks/compiler_bench.py [--presets small,medium,large] [--repeat 3]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flows import compile_sg_info  # noqa: E402
from flows.compiler import HostCompiler  # noqa: E402
from flows.diff import diff  # noqa: E402
from flows.offline import with_local_facts  # noqa: E402
from flows.parse import parse_host  # noqa: E402

GEN_CANDIDATES = [ROOT / "tests" / "workloads" / "gen.py",
                  ROOT.parent / "shared" / "workloads" / "gen.py"]


def generate(out_dir: Path) -> None:
    gen = next((p for p in GEN_CANDIDATES if p.exists()), None)
    if gen is None:
        sys.exit("workload generator tests/workloads/gen.py not found")
    subprocess.run([sys.executable, str(gen), "--preset", "all", "--seed", "1",
                    "--out-dir", str(out_dir)], check=True, stdout=subprocess.DEVNULL)


def load(out_dir: Path, preset: str) -> dict:
    return with_local_facts(json.loads((out_dir / f"{preset}.json").read_text()))


def peak_rss_mib(path: Path) -> float:
    """Peak RSS of a fresh interpreter that loads the preset and compiles it."""
    code = ("import json,resource,sys; sys.path.insert(0, sys.argv[2]);"
            "from flows import compile_sg_info; from flows.offline import with_local_facts;"
            "r = compile_sg_info(with_local_facts(json.load(open(sys.argv[1]))));"
            "lines = r.flow_lines();"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, str(path), str(ROOT)], check=True,
                         capture_output=True, text=True).stdout
    return int(out.strip()) / 1024


def bench_preset(out_dir: Path, preset: str, repeat: int) -> dict:
    info = load(out_dir, preset)
    compile_times, render_times = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        result = compile_sg_info(info)
        compile_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        lines = result.flow_lines()
        render_times.append(time.perf_counter() - start)
    ports = len(info["devices"])
    return {"preset": preset, "ports": ports, "compile_s": min(compile_times),
            "render_s": min(render_times), "flows": len(lines),
            "flows_per_port": len(lines) / ports, "errors": len(result.errors),
            "peak_rss_mib": peak_rss_mib(out_dir / f"{preset}.json")}


def churn(out_dir: Path, preset: str) -> list[dict]:
    info = load(out_dir, preset)
    steps = json.loads((out_dir / f"{preset}.churn.json").read_text())
    before = compile_sg_info(info).flows()
    incremental = HostCompiler()
    incremental.compile(parse_host(info))
    rows = []
    for step in steps["steps"]:
        for group, by_family in step.get("add", {}).items():
            for family, entries in by_family.items():
                info["sg_member_ips"].setdefault(group, {}).setdefault(family, []).extend(entries)
        for group, by_family in step.get("remove", {}).items():
            for family, entries in by_family.items():
                gone = {tuple(e) for e in entries}
                members = info["sg_member_ips"][group][family]
                info["sg_member_ips"][group][family] = [m for m in members
                                                        if tuple(m) not in gone]
        model = parse_host(info)
        previous = incremental.model  # freed after the timing: the agent's models share their
        # parsed parts from one change to the next, this loop parses the workload anew
        start = time.perf_counter()
        changes = incremental.update(model, members=step["security_groups"])
        update_s = time.perf_counter() - start
        del previous
        start = time.perf_counter()
        after = compile_sg_info(info).flows()
        recompile = time.perf_counter() - start
        change = diff(before, after)
        assert len(changes) == change.flow_mods, (changes, change)
        rows.append({"preset": preset, "step": step["name"], "flow_mods": change.flow_mods,
                     "ports_referencing_group": steps.get("ports_referencing_group"),
                     "full_recompile_s": recompile, "update_ms": update_s * 1000})
        before = after
    return rows


def rule(direction, ethertype="IPv4", **fields):
    return {"direction": direction, "ethertype": ethertype, "stateful": True, **fields}


def neutron_cases() -> list[tuple[str, int, str]]:
    def port(i, ips, groups):
        return {"mac_address": f"fa:16:3e:00:00:{i:02x}", "fixed_ips": ips, "network_id": "n",
                "security_groups": groups, "port_security_enabled": True, "ofport": i,
                "local_vlan": 1}

    base = len(compile_sg_info({"devices": {}, "security_groups": {}}).flows())
    rows = []
    recipe = [rule("ingress", protocol="tcp", port_range_min=3000 + i, port_range_max=3000 + i)
              for i in range(1001)]
    result = compile_sg_info({"devices": {"p": port(1, ["10.0.0.1"], ["sg"])},
                              "security_groups": {"sg": recipe}})
    rule_flows = [f for f in result.flows() if f.table in (13, 32) and f.priority >= 60]
    rows.append(("neutron scale recipe (tcp 3000..4000 as 1001 rules): rule flows", len(rule_flows),
                 "neutron ~13,200; goal <= 20"))
    default = [rule("egress"), rule("egress", "IPv6"),
               rule("ingress", remote_group_id="default"),
               rule("ingress", "IPv6", remote_group_id="default")]
    members = {"default": {"IPv4": [["10.0.0.1", None]], "IPv6": [["fd00::1", None]]}}
    result = compile_sg_info({"devices": {"p": port(1, ["10.0.0.1", "fd00::1"], ["default"])},
                              "security_groups": {"default": default}, "sg_member_ips": members})
    rows.append(("default group, one dual-stack port: flows added by the port",
                 len(result.flows()) - base, "neutron 63; goal <= 35"))
    devices = {f"p{i}": port(i, [f"10.0.0.{i}"], ["default"]) for i in range(1, 11)}
    members = {"default": {"IPv4": [[f"10.0.0.{i}", None] for i in range(1, 11)]}}
    info = {"devices": devices, "security_groups": {"default": default[::2]},
            "sg_member_ips": members}
    before = compile_sg_info(info).flows()
    grown = copy.deepcopy(info)
    grown["sg_member_ips"]["default"]["IPv4"].append(["10.0.9.9", None])
    rows.append(("one member added to a group used by 10 local ports: flow-mods",
                 diff(before, compile_sg_info(grown).flows()).flow_mods,
                 "neutron 1,344; goal <= 4"))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presets", default="small,medium,large")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    presets = args.presets.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(tmp)
        generate(out_dir)
        print(f"compiler benchmark on {os.cpu_count()} cores, Python {sys.version.split()[0]}")
        print(f"{'preset':8} {'ports':>6} {'compile s':>10} {'render s':>9} {'flows':>8} "
              f"{'flows/port':>10} {'peak RSS MiB':>13} {'errors':>7}")
        for preset in presets:
            row = bench_preset(out_dir, preset, args.repeat)
            print(f"{row['preset']:8} {row['ports']:>6} {row['compile_s']:>10.3f} "
                  f"{row['render_s']:>9.3f} {row['flows']:>8} {row['flows_per_port']:>10.1f} "
                  f"{row['peak_rss_mib']:>13.1f} {row['errors']:>7}")
        print("\nchurn (remote group referenced by the most local ports), flow-mods per step:")
        for preset in presets:
            for row in churn(out_dir, preset):
                print(f"  {row['preset']:8} {row['step']:24} flow-mods {row['flow_mods']:>3} "
                      f"(group used by {row['ports_referencing_group']} local ports; "
                      f"incremental update {row['update_ms']:.2f} ms; full recompile "
                      f"{row['full_recompile_s']:.2f} s)")
    print("\nneutron's bad cases:")
    for name, value, goal in neutron_cases():
        print(f"  {name}: {value}   ({goal})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m dpagent.lab.demo [--keep] [--topology FILE] | --stop RUN_DIR`` (as root).

Exit status: 0 when every observed cell matched the expected one and nothing was left
behind; 1 on a mismatch, a failure or a leftover; 2 on bad usage; 130 when interrupted.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from dpagent.lab import resources
from dpagent.lab.demo import matrix
from dpagent.lab.demo.layout import DEFAULT_TOPOLOGY, Layout, LayoutError, load
from dpagent.lab.demo.rig import INTEGRATION_BRIDGE, Rig, stop_run_dir
from dpagent.lab.demo.scenario import Story
from dpagent.lab.process import LabError

BUDGET = 120.0
"""The demo promises to finish within two minutes on the CI machine class."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dpagent.lab.demo",
        description="dpagent end to end on one machine: private OVS, RabbitMQ, "
                    "dpagent-controller, the agent and namespace VMs.")
    parser.add_argument("--keep", action="store_true",
                        help="leave everything running and print how to explore and stop it")
    parser.add_argument("--topology", type=Path, default=DEFAULT_TOPOLOGY,
                        help="topology YAML for the controller (default: the embedded sample; "
                             "it must define the ports the demo plugs)")
    parser.add_argument("--stop", type=Path, metavar="RUN_DIR",
                        help="remove a run left running with --keep")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("the demo creates network namespaces and needs root", file=sys.stderr)
        return 2
    if args.stop is not None:
        try:
            removed = stop_run_dir(args.stop)
        except LabError as exc:
            print(f"demo --stop: {exc}", file=sys.stderr)
            return 2
        print("\n".join(["removed:", *removed]) if removed else "nothing left to remove")
        return 0
    try:
        layout = load(args.topology)
    except LayoutError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    return run(args.topology.resolve(), layout, keep=args.keep)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(topology: Path, layout: Layout, *, keep: bool) -> int:
    started = time.monotonic()
    session = resources.mark_session()
    signal.signal(signal.SIGTERM, _interrupt)
    print("dpagent demo: private OVS + RabbitMQ + dpagent-controller + dpagent, "
          "namespaces as VMs")
    rig = Rig(session)
    story = Story(rig, layout)
    failure: str | None = None
    interrupted = False
    try:
        story.start(topology)
        story.phase_wired()
        story.phase_cordoned()
        story.phase_uncordoned()
        story.phase_traced()
    except KeyboardInterrupt:
        interrupted = True
        failure = "interrupted"
    except LabError as exc:
        failure = str(exc)
    except BaseException:
        _clean(rig, session)
        raise
    mismatches = story.outcome.mismatches
    print("\n== result")
    for cell in mismatches:
        print(f"MISMATCH {matrix.describe(cell)}")
    if interrupted:
        print("interrupted")
    elif failure:
        print(f"FAILED: {failure}")
    if keep and not interrupted:
        print(exploration(rig, story))
    else:
        print("cleaning up (processes, namespaces, bridges, directories)")
        problem = _clean(rig, session)
        if problem:
            print(f"FAILED: {problem}")
            failure = failure or problem
    elapsed = time.monotonic() - started
    cells = sum(len(c) for _, c in story.outcome.phases)
    verdict = "OK" if not (mismatches or failure) else "FAILED"
    verdict = "INTERRUPTED" if interrupted else verdict
    print(f"demo: {verdict}: {cells} cells in {len(story.outcome.phases)} matrices, "
          f"{len(mismatches)} mismatch(es); {elapsed:.1f} s"
          + (f" (over the {BUDGET:.0f} s budget)" if elapsed > BUDGET else ""))
    if interrupted:
        return 130
    return 0 if verdict == "OK" else 1


def _clean(rig: Rig, session: str) -> str | None:
    """Remove everything; returns a failure text if cleanup failed or left anything behind."""
    # finish cleaning up first: a second Ctrl-C (or a SIGTERM) must not leave half of it
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        problem = None
        try:
            rig.close()
        except LabError as exc:
            problem = str(exc)
        leftovers = resources.find_leftovers(session)
        if leftovers:
            resources.remove_leftovers(leftovers)
            problem = "left behind (now removed):\n" + leftovers.describe()
        return problem
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def exploration(rig: Rig, story: Story) -> str:
    """How to look around a kept run, and how to stop it."""
    box = rig.sandbox.directory
    unixctl = box / "ovs-vswitchd.ctl"
    beside = Path(sys.executable).with_name("dpagent-ctl")
    ctl = str(beside) if beside.exists() else "dpagent-ctl"
    api = rig.controller.api_url if rig.controller else "http://127.0.0.1:9696"
    lines = [f"\nThe demo is still running; run directory {rig.run_dir}",
             "Explore (as root):",
             f"  export OVS_RUNDIR={box}",
             f"  ovs-vsctl --db=unix:{box / 'db.sock'} show",
             f"  ovs-ofctl -O OpenFlow15 dump-flows {INTEGRATION_BRIDGE}",
             f"  {ctl} --api-url {api} agents list",
             f"  {ctl} status --socket {rig.status_socket}",
             f"  curl -s {api}/v2.0/ports"]
    mon1, db1_ip = story.addresses.get("mon1"), story.addresses.get("db1")
    if mon1 and db1_ip:
        lines += [f"  {ctl} trace --socket {rig.status_socket} --from {mon1} --to {db1_ip} "
                  "tcp/5432 --verbose   # why mon1 cannot reach db1:5432, flow by flow",
                  f"  {ctl} rules --socket {rig.status_socket} --port db1   # packets per rule"]
    trace = trace_example(story)
    if trace:
        lines += [f"  ovs-appctl -t {unixctl} ofproto/trace {INTEGRATION_BRIDGE} '{trace}'",
                  "      # mon1 -> db1 tcp/5432 (the last line says drop: mon1 is not in web)"]
    web1, db1 = story.sources.get("web1"), story.addresses.get("db1")
    if web1 is not None and db1 is not None:
        lines.append(f"  ip netns exec {web1.vm.netns} python3 -c 'import socket; "
                     f"socket.create_connection((\"{db1}\", 5432), 2)'   # web1 -> db1:5432")
    lines.append("  namespaces: " + ", ".join(f"{n}={s.vm.netns}" for n, s in story.sources.items()
                                              if "@" not in n))
    lines += [f"  logs: {rig.run_dir / 'dpagent.log'}, {rig.run_dir / 'controller.log'}",
              "Stop it and remove everything:",
              f"  {sys.executable} -m dpagent.lab.demo --stop {rig.run_dir}"]
    return "\n".join(lines)


def trace_example(story: Story) -> str | None:
    src, dst = story.sources.get("mon1"), story.sources.get("db1")
    if src is None or dst is None:
        return None
    return (f"in_port={src.vm.ofport},tcp,dl_src={src.vm.mac},dl_dst={dst.vm.mac},"
            f"nw_src={story.addresses['mon1']},nw_dst={story.addresses['db1']},"
            "tp_src=40000,tp_dst=5432")

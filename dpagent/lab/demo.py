"""PARTIAL demo: two namespace VMs on a private OVS, pinging each other.

    python -m dpagent.lab.demo        (as root; tools/demo.sh sets it up)

This shows only the lab rig the real demo stands on: a private
ovsdb-server/ovs-vswitchd, a br-int with one L2 flow (NORMAL), two VMs
plugged like Nova VIFs, and traffic between them.  No agent runs yet -- the
controller issue replaces the NORMAL flow with the agent's compiled security
groups and completes this demo.  Prints expected vs observed for every check
and exits 1 on any mismatch (or if anything is left behind).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from dpagent.lab import resources
from dpagent.lab.netns import NetnsVM
from dpagent.lab.ovs_sandbox import OVSSandbox

BRIDGE = "br-int"


def _checks(a: NetnsVM, b: NetnsVM) -> list[tuple[str, bool, Callable[[], bool]]]:
    """(description, expected, probe) for each observation."""
    return [
        (f"vm-a -> vm-b ping {b.ip4}", True, lambda: a.ping(b.ip4)),
        (f"vm-b -> vm-a ping {a.ip4}", True, lambda: b.ping(a.ip4)),
        (f"vm-a -> vm-b ping {b.ip6}", True, lambda: a.ping(b.ip6)),
        (f"vm-a -> vm-b tcp {b.ip4}:8080", True, lambda: a.tcp_connect(b.ip4, 8080)),
        (f"vm-a -> vm-b tcp {b.ip4}:8081 (closed)", False,
         lambda: a.tcp_connect(b.ip4, 8081, timeout=1.0)),
        ("vm-a -> 10.60.0.99 ping (no such host)", False, lambda: a.ping("10.60.0.99")),
    ]


def run() -> int:
    session = resources.mark_session()
    mismatches = 0
    print("dpagent demo (PARTIAL: lab rig only; the agent joins with the controller issue)")
    with OVSSandbox() as sandbox:
        sandbox.add_bridge(BRIDGE)
        sandbox.replace_flows(BRIDGE, "priority=0,actions=NORMAL\n")
        print(f"private OVS in {sandbox.directory}, switch namespace {sandbox.netns}")
        with NetnsVM(sandbox, BRIDGE, "vm-a", "fa:16:3e:00:00:0a", ["10.60.0.1/24"],
                     ["fd00:60::1/64"], ofport_request=1) as a, \
             NetnsVM(sandbox, BRIDGE, "vm-b", "fa:16:3e:00:00:0b", ["10.60.0.2/24"],
                     ["fd00:60::2/64"], ofport_request=2) as b:
            b.tcp_listen(8080)
            print(f"{'check':45} {'expected':>9} {'observed':>9}")
            for description, expected, probe in _checks(a, b):
                observed = probe()
                mark = "" if observed == expected else "   <-- MISMATCH"
                mismatches += observed != expected
                print(f"{description:45} {_word(expected):>9} {_word(observed):>9}{mark}")
    leftovers = resources.find_leftovers(session)
    if leftovers:
        print("left behind:\n" + leftovers.describe())
        resources.remove_leftovers(leftovers)
        mismatches += 1
    print("demo: OK" if not mismatches else f"demo: {mismatches} MISMATCH(ES)")
    return 1 if mismatches else 0


def _word(ok: bool) -> str:
    return "pass" if ok else "blocked"


def main() -> int:
    if os.geteuid() != 0:
        print("the demo creates network namespaces and needs root", file=sys.stderr)
        return 2
    return run()


if __name__ == "__main__":
    sys.exit(main())

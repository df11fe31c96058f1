"""``dpagent-ctl``: the operator's tool.

    dpagent-ctl status [--socket PATH] [--json]

(``agents list/set/delete`` against the controller's API come with the controller.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from dpagent.daemon.status import query

DEFAULT_SOCKET = "/var/run/dpagent/status.sock"


def _age(timestamp: float | None) -> str:
    if not timestamp:
        return "never"
    return f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(timestamp))} " \
           f"({time.time() - timestamp:.0f} s ago)"


def render(status: dict[str, Any]) -> str:
    heartbeat = status.get("heartbeat") or {}
    ports = status.get("ports") or {}
    lines = [
        f"admin state:     {'UP' if status.get('admin_state_up') else 'DOWN (cordoned)'}",
        f"heartbeat:       {heartbeat.get('last_result') or 'none yet'} at "
        f"{_age(heartbeat.get('last_time'))}"
        + (f", last error: {heartbeat['last_error']}" if heartbeat.get("last_error") else ""),
        "ports:           " + (", ".join(f"{n} {s}" for s, n in sorted(ports.items()))
                               or "none"),
        f"flows installed: {status.get('flows_installed', 0)}",
        f"last full sync:  {_age(status.get('last_sync'))}",
    ]
    for port_id, reason in sorted((status.get("failed") or {}).items()):
        lines.append(f"  failed {port_id}: {reason}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dpagent-ctl")
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status", help="the local daemon's state")
    status.add_argument("--socket", default=DEFAULT_SOCKET)
    status.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        snapshot = query(args.socket)
    except OSError as exc:
        print(f"dpagent-ctl: cannot reach the agent at {args.socket}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(snapshot, indent=1) if args.json else render(snapshot))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``dpagent-ctl``: the operator's tool.

    dpagent-ctl status [--socket PATH] [--json]
    dpagent-ctl trace --from PORT --to PORT|IP SERVICE [--state new|established|reply|invalid]
                      [-6] [--vlan VID] [--src-ip IP] [--src-mac MAC] [--dst-mac MAC]
                      [--verbose] [--json]
    dpagent-ctl rules [--port PORT] [--group GROUP] [--json]
    dpagent-ctl [--api-url URL] agents list [--host H] [--json]
    dpagent-ctl [--api-url URL] agents show ID [--json]
    dpagent-ctl [--api-url URL] agents set (--admin-down | --admin-up) ID
    dpagent-ctl [--api-url URL] agents delete ID

``status`` asks the local daemon through its socket; ``trace`` asks it to trace a packet through
the switch (``ofproto/trace``) and say whether it passes, where it stops and which
security-group rules let it through; ``rules`` shows packets and bytes per security-group rule
of the wired ports, from the switch's counters; ``agents`` talks to the controller's
agents API (neutron's ``/v2.0/agents``, so it works against neutron-server too, given a
token-less endpoint).  Exit status: 0 done, 1 the API refused (its message is printed),
2 the daemon or API could not be reached; ``trace``: 0 allowed, 3 dropped, 1 the daemon could
not trace it (its message is printed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from dpagent.daemon.status import query

DEFAULT_SOCKET = "/var/run/dpagent/status.sock"
DEFAULT_API_URL = "http://127.0.0.1:9696"


def _age(timestamp: float | None) -> str:
    if not timestamp:
        return "never"
    return f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(timestamp))} " \
           f"({time.time() - timestamp:.0f} s ago)"


def render(status: dict[str, Any]) -> str:
    heartbeat = status.get("heartbeat") or {}
    ports = status.get("ports") or {}
    switch = status.get("switch") or {}
    lines = [
        f"admin state:     {'UP' if status.get('admin_state_up') else 'DOWN (cordoned)'}",
        "switch:          " + ("ok" if switch.get("healthy", True) else
                               f"{switch.get('problem')} since {_age(switch.get('since'))}"),
        f"heartbeat:       {heartbeat.get('last_result') or 'none yet'} at "
        f"{_age(heartbeat.get('last_time'))}"
        + (f", last error: {heartbeat['last_error']}" if heartbeat.get("last_error") else "")
        + (f", withheld: {heartbeat['withheld']}" if heartbeat.get("withheld") else ""),
        "ports:           " + (", ".join(f"{n} {s}" for s, n in sorted(ports.items()))
                               or "none"),
        f"flows installed: {status.get('flows_installed', 0)}",
        f"last full sync:  {_age(status.get('last_sync'))}",
    ]
    if status.get("waiting_for"):
        lines.insert(0, f"waiting for:     {status['waiting_for']}")
    for port_id, reason in sorted((status.get("failed") or {}).items()):
        lines.append(f"  failed {port_id}: {reason}")
    return "\n".join(lines)


TRACE_DROPPED = 3


def render_trace(answer: dict[str, Any], verbose: bool = False) -> str:
    """The verdict in a few lines: what was traced, ALLOWED or DROPPED and where, the rules."""
    lines = [f"from {answer['from']}", f"  to {answer['to']}", f"  {answer['packet']}"]
    lines += [f"  note: {note}" for note in answer.get("notes", [])]
    if answer["verdict"] == "ALLOWED":
        lines.append(f"ALLOWED: {answer['reason']}")
    else:
        lines.append(f"DROPPED at {answer['stage']}: {answer['reason']}")
    if answer.get("rules"):
        heading = "allowed by" if answer["verdict"] == "ALLOWED" else "rules passed"
        lines.append(f"  {heading}:")
        lines += [f"    {rule}" for rule in answer["rules"]]
    if verbose:
        lines.append("steps (table: flow -- what it is):")
        for step in answer.get("steps", []):
            port = f" of port {step['port']}" if step.get("port") else ""
            lines.append(f"  {step['bridge']} {step['table']:>3} {step['stage']}{port}: "
                         f"{step['flow']} -- {step['meaning'] or '?'} ({step['cookie']})")
        lines.append(f"ovs-appctl ofproto/trace br-int '{answer['flow']}' "
                     + " ".join(answer.get("ct_next", [])))
        if answer.get("raw"):
            lines += ["", answer["raw"].rstrip()]
    return "\n".join(lines)


def _ask(socket_path: str, request: dict[str, Any]) -> dict[str, Any] | int:
    """The daemon's answer, or the exit status after saying why there is none."""
    try:
        answer = query(socket_path, timeout=30.0, request=request)
    except OSError as exc:
        print(f"dpagent-ctl: cannot reach the agent at {socket_path}: {exc}", file=sys.stderr)
        return 2
    if "error" in answer:
        print(f"dpagent-ctl: {answer['error']}", file=sys.stderr)
        return 1
    return answer


def _trace(args: argparse.Namespace) -> int:
    request = {"command": "trace", "from": args.source, "to": args.to,
               "service": args.service, "state": args.state, "ipv6": args.ipv6,
               "vlan": args.vlan, "src_ip": args.src_ip, "src_mac": args.src_mac,
               "dst_mac": args.dst_mac, "verbose": args.verbose}
    answer = _ask(args.socket, request)
    if isinstance(answer, int):
        return answer
    print(json.dumps(answer, indent=1) if args.json else render_trace(answer, args.verbose))
    return 0 if answer["verdict"] == "ALLOWED" else TRACE_DROPPED


def render_rules(answer: dict[str, Any]) -> str:
    """One line per port and rule, like ``openstack security group rule list``, with counts."""
    names = answer.get("names") or {}

    def name(obj_id: str) -> str:
        return names.get(obj_id) or obj_id

    def words(text: str) -> str:
        for obj_id, obj_name in names.items():
            text = text.replace(f"group {obj_id}", f"group {obj_name}")
        return text

    rows = [("PORT", "GROUP", "RULE", "DIRECTION", "MATCHES", "PACKETS", "BYTES", "")]
    notes = {}
    for r in sorted(answer["rules"], key=lambda r: (name(r["port"]), name(r["group"]),
                                                    r["direction"], r["description"])):
        if r["shared"]:
            notes[r["shared"]] = f"{r['shared']}: every port and rule of its remote group, " \
                                 "direction and IP version"
        note = "shared" if r["shared"] else "" if r["flows"] else "no flow"
        rows.append((name(r["port"]), name(r["group"]), r["rule"], r["direction"],
                     words(r["description"]), str(r["packets"]), str(r["bytes"]), note))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines += [f"shared = counted at {text}" for text in sorted(notes.values())]
    return "\n".join(lines)


def _rules(args: argparse.Namespace) -> int:
    request = {"command": "rules", "port": args.port, "group": args.group}
    answer = _ask(args.socket, request)
    if isinstance(answer, int):
        return answer
    print(json.dumps(answer, indent=1) if args.json else render_rules(answer))
    return 0


def render_agents(agents: list[dict[str, Any]]) -> str:
    """A table like ``openstack network agent list``."""
    rows = [("ID", "Agent Type", "Host", "Alive", "State", "Binary")]
    for a in agents:
        rows.append((a["id"], a["agent_type"], a["host"], ":-)" if a["alive"] else "XXX",
                     "UP" if a["admin_state_up"] else "DOWN", a["binary"]))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


class ApiFailure(Exception):
    def __init__(self, message: str, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def api_request(base: str, method: str, path: str, body: Any = None,
                timeout: float = 10.0) -> Any:
    """One JSON request to the API; the decoded answer (None for 204)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base.rstrip('/')}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = response.read()
    except urllib.error.HTTPError as exc:
        text = exc.read().decode("utf-8", "replace")
        try:
            message = json.loads(text)["NeutronError"]["message"]
        except (ValueError, KeyError, TypeError):
            message = text.strip() or exc.reason
        raise ApiFailure(f"{exc.code}: {message}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ApiFailure(f"cannot reach the API at {base}: {exc}", unreachable=True) from exc
    return json.loads(payload) if payload else None


def _agents(args: argparse.Namespace) -> int:
    base = args.api_url
    if args.agents_command == "list":
        query = f"?host={urllib.parse.quote(args.host)}" if args.host else ""
        agents = api_request(base, "GET", f"/v2.0/agents{query}")["agents"]
        print(json.dumps(agents, indent=1) if args.json else render_agents(agents))
    elif args.agents_command == "show":
        agent = api_request(base, "GET", f"/v2.0/agents/{args.id}")["agent"]
        print(json.dumps(agent, indent=1) if args.json else "\n".join(
            f"{k:20} {json.dumps(v) if isinstance(v, dict | list) else v}"
            for k, v in sorted(agent.items())))
    elif args.agents_command == "set":
        up = bool(args.admin_up)
        agent = api_request(base, "PUT", f"/v2.0/agents/{args.id}",
                            {"agent": {"admin_state_up": up}})["agent"]
        print(f"agent {agent['id']} ({agent['agent_type']} on {agent['host']}): admin state "
              f"{'UP' if agent['admin_state_up'] else 'DOWN'}")
    else:
        api_request(base, "DELETE", f"/v2.0/agents/{args.id}")
        print(f"agent {args.id} deleted (a live agent registers again with its next "
              "heartbeat)")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="dpagent-ctl")
    top.add_argument("--api-url", default=DEFAULT_API_URL,
                     help=f"the controller's API (default {DEFAULT_API_URL})")
    commands = top.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status", help="the local daemon's state")
    status.add_argument("--socket", default=DEFAULT_SOCKET)
    status.add_argument("--json", action="store_true")
    trace = commands.add_parser(
        "trace", help="trace a packet through the switch: allowed or dropped, where, which "
                      "security-group rule",
        description="A PORT is a port id (or a unique prefix of one), its interface name, MAC "
                    "or fixed IP. SERVICE is tcp/PORT, udp/PORT, sctp/PORT, icmp[/TYPE[/CODE]] "
                    "or ip[/PROTOCOL]. Exit status: 0 allowed, 3 dropped.")
    trace.add_argument("--socket", default=DEFAULT_SOCKET)
    trace.add_argument("--from", dest="source", required=True, metavar="PORT",
                       help="the sending port (on this host)")
    trace.add_argument("--to", required=True, metavar="PORT|IP",
                       help="a port on this host, or an address (elsewhere: the packet takes "
                            "the network's way out)")
    trace.add_argument("service", metavar="SERVICE")
    trace.add_argument("--state", default="new",
                       choices=("new", "established", "reply", "invalid"),
                       help="the connection's conntrack state (default new); reply: the packet "
                            "answers a connection the destination opened (ports swapped)")
    trace.add_argument("--vlan", type=int, metavar="VID",
                       help="send the frame VLAN-tagged (a VM's tagged frames are dropped)")
    trace.add_argument("-6", "--ipv6", action="store_true",
                       help="use the ports' IPv6 addresses (implied by an IPv6 --to)")
    trace.add_argument("--src-ip", help="another source address (e.g. a spoofed one)")
    trace.add_argument("--src-mac", help="another source MAC")
    trace.add_argument("--dst-mac", help="the destination MAC for an address elsewhere "
                                         "(default a unicast MAC no local port has)")
    trace.add_argument("--verbose", "-v", action="store_true",
                       help="every flow the packet hit, and the raw trace")
    trace.add_argument("--json", action="store_true")
    rules = commands.add_parser(
        "rules", help="packets and bytes per security-group rule (the switch's counters)",
        description="Every rule of the wired ports' groups, with what the switch counted for "
                    "it; the counters live in the switch and survive the agent's restart.")
    rules.add_argument("--socket", default=DEFAULT_SOCKET)
    rules.add_argument("--port", help="one port (id, a prefix of it, or its name)")
    rules.add_argument("--group", help="one security group (id, a prefix of it, or its name)")
    rules.add_argument("--json", action="store_true")
    agents = commands.add_parser("agents", help="agents known to the controller")
    sub = agents.add_subparsers(dest="agents_command", required=True)
    listing = sub.add_parser("list", help="every agent, with liveness and admin state")
    listing.add_argument("--host")
    listing.add_argument("--json", action="store_true")
    show = sub.add_parser("show", help="one agent, with its reported configurations")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    setter = sub.add_parser("set", help="set an agent's administrative state")
    state = setter.add_mutually_exclusive_group(required=True)
    state.add_argument("--admin-down", action="store_true",
                       help="cordon: wired ports keep working, new ports are not wired")
    state.add_argument("--admin-up", action="store_true")
    setter.add_argument("id")
    delete = sub.add_parser("delete", help="forget an agent (a live one comes back)")
    delete.add_argument("id")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "agents":
        try:
            return _agents(args)
        except ApiFailure as exc:
            print(f"dpagent-ctl: {exc}", file=sys.stderr)
            return 2 if exc.unreachable else 1
    if args.command == "trace":
        return _trace(args)
    if args.command == "rules":
        return _rules(args)
    try:
        snapshot = query(args.socket)
    except OSError as exc:
        print(f"dpagent-ctl: cannot reach the agent at {args.socket}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(snapshot, indent=1) if args.json else render(snapshot))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A trace's flows, read back as the operator's verdict: allowed or dropped, where, by which rule.

Every flow dpagent installs carries a cookie the compiler can explain (the port, the security-
group rule, the remote group, the member address behind it, :mod:`flows.cookies`). A trace hits
flows table by table; the table says which stage of the pipeline the packet was in
(:class:`flows.pipeline.Table`), the cookie says on whose behalf. The last flow a dropped packet
hit is why it was dropped. Pure: the trace text and the compiler's state in, the answer out.

A remote group's rule is a conjunction: the trace shows the ``conj_id`` flow it matched, which
stands for the group, not the rule. The rule(s) are the port's flows in that table that feed
this conjunction and match the packet; :func:`flow_matches` picks them out of the port's flows.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dpagent.diagnose.ofproto_trace import (
    DatapathPort,
    Hit,
    TracePass,
    output_tokens,
    split_top_level,
)
from flows import cookies
from flows.flow import Flow, MatchItem
from flows.pipeline import Table

Meaning = str | tuple[str, str]

STAGES: dict[int, str] = {
    Table.CLASSIFY: "classification",
    Table.EGRESS_SPOOF: "anti-spoofing",
    Table.EGRESS_BASE: "egress base",
    Table.EGRESS_CT: "egress conntrack",
    Table.EGRESS_RULES: "egress rules",
    Table.EGRESS_ACCEPT: "egress accept",
    Table.FORWARD: "forwarding",
    Table.INGRESS_BASE: "ingress base",
    Table.INGRESS_CT: "ingress conntrack",
    Table.INGRESS_RULES: "ingress rules",
    Table.INGRESS_ACCEPT: "ingress accept",
}
EGRESS_TABLES = frozenset({Table.EGRESS_SPOOF, Table.EGRESS_BASE, Table.EGRESS_CT,
                           Table.EGRESS_RULES, Table.EGRESS_ACCEPT})
RULE_TABLES = frozenset({Table.EGRESS_RULES, Table.INGRESS_RULES})
CT_TABLES = frozenset({Table.EGRESS_CT, Table.INGRESS_CT})
_REG5 = re.compile(r"set_field:(0x[0-9a-f]+|\d+)->reg5")
_CONJ_ID = re.compile(r"conj_id=(\d+)")


@dataclass(frozen=True)
class HostView:
    """What the agent knows that a trace cannot show: what each cookie means, each port's own
    flows (for the conjunctions), and which port holds an OpenFlow port number or a name."""

    meanings: Mapping[int, Meaning]
    port_flows: Mapping[str, tuple[Flow, ...]]
    ports_by_ofport: Mapping[int, str]
    ports_by_name: Mapping[str, str]
    bridge: str = "br-int"


@dataclass(frozen=True)
class Step:
    bridge: str
    table: int
    stage: str
    port: str | None
    flow: str
    meaning: str
    cookie: int

    def as_dict(self) -> dict[str, Any]:
        return {"bridge": self.bridge, "table": self.table, "stage": self.stage,
                "port": self.port, "flow": self.flow, "meaning": self.meaning,
                "cookie": f"{self.cookie:#x}"}


@dataclass(frozen=True)
class Explanation:
    allowed: bool
    stage: str
    """Where the verdict fell: ``egress rules of port X``, ``delivered``..."""
    reason: str
    rules: tuple[str, ...] = ()
    """The security-group rules that let it through (or the blocked connection's last)."""
    outputs: tuple[str, ...] = ()
    steps: tuple[Step, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": "ALLOWED" if self.allowed else "DROPPED", "stage": self.stage,
                "reason": self.reason, "rules": list(self.rules),
                "outputs": list(self.outputs), "steps": [s.as_dict() for s in self.steps]}


def explain(passes: list[TracePass], view: HostView, dp_ports: Mapping[int, DatapathPort],
            destination_port: str | None = None) -> Explanation:
    """The verdict of a trace of one packet (unicast: its last pass decides)."""
    steps: list[Step] = []
    rules: list[str] = []
    reg5: int | None = None
    for trace_pass in passes:
        reg5 = _field_int(parse_flow(trace_pass.flow), "reg5") or reg5
        fields = parse_flow(trace_pass.flow)
        for hit in trace_pass.hits:
            port = view.ports_by_ofport.get(reg5) if reg5 is not None else None
            if hit.bridge != view.bridge or hit.table in (Table.CLASSIFY, Table.FORWARD):
                port = None
            step = _step(hit, port, view)
            steps.append(step)
            if hit.bridge == view.bridge and hit.table in RULE_TABLES and not hit.drops:
                fields["reg5"] = str(reg5 or 0)
                rules.extend(_rules_of(hit, port, view, fields))
            for action in hit.actions:
                found = _REG5.search(action)
                if found:
                    reg5 = int(found.group(1), 0)
    last = passes[-1]
    outputs = _outputs(passes, dp_ports, view)
    delivered = [o for o in outputs if destination_port is None or destination_port in o]
    if delivered:
        where = "delivered to " + ", ".join(delivered)
        return Explanation(True, "delivered", where, tuple(dict.fromkeys(rules)),
                           tuple(outputs), tuple(steps))
    decisive = steps[-1] if steps else None
    if decisive is None or not last.hits:
        return Explanation(False, "unknown", "the trace matched no flow", (), tuple(outputs),
                           tuple(steps))
    stage, reason = _drop_reason(decisive, last.hits[-1], decisive.bridge == view.bridge)
    if outputs:
        reason += f" (it went to {', '.join(outputs)} instead)"
    return Explanation(False, stage, reason, tuple(dict.fromkeys(rules)), tuple(outputs),
                       tuple(steps))


# -- the steps -------------------------------------------------------------------------------------

def _step(hit: Hit, port: str | None, view: HostView) -> Step:
    meaning = view.meanings.get(hit.cookie)
    text = " ".join(meaning) if isinstance(meaning, tuple) else (meaning or "")
    if not cookies.is_dpagent_cookie(hit.cookie):
        text = text or "not dpagent's flow"
    stage = STAGES.get(hit.table, f"table {hit.table}") if hit.bridge == view.bridge \
        else f"{hit.bridge} table {hit.table}"
    flow = f"{hit.match}, priority {hit.priority}" if hit.match else f"priority {hit.priority}"
    return Step(hit.bridge, hit.table, stage, port, flow, text, hit.cookie)


def _of(stage: str, port: str | None) -> str:
    return f"{stage} of port {port}" if port else stage


def _drop_reason(step: Step, hit: Hit, on_integration: bool) -> tuple[str, str]:
    """The stage and the operator's words for a drop at ``hit``."""
    port, match = step.port, hit.match
    if not on_integration:
        return step.stage, f"dropped on {step.bridge} (table {hit.table}, {step.flow})" + (
            f": {step.meaning}" if step.meaning else "")
    table = hit.table
    if table == Table.CLASSIFY:
        return step.stage, ("the frame is no untagged frame of a port this agent wired: a VM's "
                            "VLAN-tagged frames are dropped, and a port not wired (held, "
                            "failed, unknown) has no flows")
    if table == Table.EGRESS_SPOOF:
        return _of(step.stage, port), ("the source MAC or IP address is not one of the port's "
                                       "(fixed IPs and allowed address pairs)")
    if table == Table.EGRESS_BASE:
        return _of(step.stage, port), (f"a packet no rule can allow ({match}): an upper-layer "
                                       "header the switch cannot see, a router advertisement "
                                       "or redirect, a DHCP server reply from a VM")
    if table in CT_TABLES:
        if "+inv" in match:
            return _of(step.stage, port), "conntrack says the packet is invalid"
        return _of("blocked connection", port), (
            "a reply or related packet of a connection that no rule allows any more "
            "(conntrack marks it blocked)")
    if table in RULE_TABLES:
        direction = "egress" if table in EGRESS_TABLES else "ingress"
        if "+est" in match:
            return _of("blocked connection", port), (
                f"an established connection that no {direction} rule allows any more: marked "
                "blocked, its replies are dropped too")
        return _of(step.stage, port), f"no {direction} rule of the port allows it"
    if table == Table.FORWARD:
        return step.stage, ("no port on the network has the destination MAC, and the network "
                            "has no way out of this host")
    if table == Table.INGRESS_BASE:
        return _of(step.stage, port), "a port's own packet is not sent back to it (hairpin)"
    return _of(step.stage, port), f"dropped in table {table} ({step.flow})" + (
        f": {step.meaning}" if step.meaning else "")


# -- rules -----------------------------------------------------------------------------------------

def _rules_of(hit: Hit, port: str | None, view: HostView, fields: Mapping[str, str]
              ) -> list[str]:
    meaning = view.meanings.get(hit.cookie)
    kind = cookies.kind_of(hit.cookie)
    if kind == cookies.Kind.RULE and isinstance(meaning, tuple):
        return _origins(meaning[1])
    conj = _CONJ_ID.search(hit.match)
    if kind == cookies.Kind.REMOTE_GROUP and conj and port is not None:
        feeding = f"conjunction({conj.group(1)},"
        found: list[str] = []
        for flow in view.port_flows.get(port, ()):
            if flow.table == hit.table and any(a.startswith(feeding) for a in flow.actions) \
                    and flow_matches(flow.match, fields):
                rule = view.meanings.get(flow.cookie)
                if isinstance(rule, tuple):
                    found.extend(_origins(rule[1]))
        group = " ".join(meaning) if isinstance(meaning, tuple) else (meaning or "")
        return [f"{r} (through {group.split(' (')[0]})" for r in found] or [group]
    return []


def _origins(rule_meaning: str) -> list[str]:
    """``ingress: security group G rule R; security group G rule S`` -> the rules."""
    _, _, origins = rule_meaning.partition(": ")
    return [o.strip() for o in (origins or rule_meaning).split(";") if o.strip()]


# -- outputs ---------------------------------------------------------------------------------------

def _outputs(passes: list[TracePass], dp_ports: Mapping[int, DatapathPort],
             view: HostView) -> list[str]:
    found: list[str] = []
    for trace_pass in passes:
        vlan = None
        for action in split_top_level(trace_pass.datapath_actions):
            if action.startswith("push_vlan("):
                vlan = re.search(r"vid=(\d+)", action)
            elif action.startswith("pop_vlan"):
                vlan = None
            for token in output_tokens(action):
                found.append(_describe_output(token, dp_ports, view,
                                              vlan.group(1) if vlan else None))
    return list(dict.fromkeys(found))


def _describe_output(token: str, dp_ports: Mapping[int, DatapathPort], view: HostView,
                     vlan: str | None) -> str:
    if token == "userspace":
        return "the switch's userspace (a controller action)"
    if token.startswith("tnl_push("):
        dst = re.search(r"ipv[46]\([^)]*?dst=([0-9a-f.:]+)", token)  # not eth(dst=MAC)
        return f"a tunnel to {dst.group(1) if dst else '?'}"
    port = dp_ports.get(int(token))
    if port is None:
        return f"datapath port {token}"
    tag = f" (VLAN {vlan})" if vlan else ""
    port_id = view.ports_by_name.get(port.name)
    if port_id is not None and port.bridge == view.bridge:
        return f"port {port_id} ({port.name}){tag}"
    return f"{port.bridge} port {port.name}{tag}"


# -- matching a flow against the traced packet ----------------------------------------------

SHORTHANDS: dict[str, tuple[int, int | None]] = {
    "ip": (0x0800, None), "ipv6": (0x86DD, None), "arp": (0x0806, None),
    "tcp": (0x0800, 6), "udp": (0x0800, 17), "sctp": (0x0800, 132), "icmp": (0x0800, 1),
    "tcp6": (0x86DD, 6), "udp6": (0x86DD, 17), "sctp6": (0x86DD, 132), "icmp6": (0x86DD, 58),
}
_INT_FIELDS = frozenset({"tp_src", "tp_dst", "reg5", "reg6", "reg7", "icmp_type", "icmp_code",
                         "in_port", "ct_mark", "nw_proto"})
_ADDRESS_FIELDS = frozenset({"nw_src", "nw_dst", "ipv6_src", "ipv6_dst", "arp_spa", "arp_tpa"})


def parse_flow(text: str) -> dict[str, str]:
    """A trace's ``Flow:`` text as fields; protocol shorthands under ``""``."""
    fields: dict[str, str] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if not sep:
            if name in SHORTHANDS:
                fields[""] = name
            continue
        fields[name] = value
    return fields


def flow_matches(match: tuple[MatchItem, ...], fields: Mapping[str, str]) -> bool:
    """Whether a flow's match holds for the traced packet. A field this does not know counts
    as matching: it only narrows the candidates the trace already found."""
    eth_type, proto = SHORTHANDS.get(fields.get("", ""), (0, None))
    if "nw_proto" in fields:
        proto = int(fields["nw_proto"], 0)
    for name, value in match:
        if not value:
            want_type, want_proto = SHORTHANDS.get(name, (eth_type, None))
            if want_type != eth_type or (want_proto is not None and want_proto != proto):
                return False
        elif name == "nw_proto":
            if proto != int(value, 0):
                return False
        elif name in _INT_FIELDS:
            have = _field_int(fields, name) or 0
            wanted, _, mask = value.partition("/")
            bits = int(mask, 0) if mask else ~0
            if have & bits != int(wanted, 0) & bits:
                return False
        elif name in _ADDRESS_FIELDS:
            if name not in fields:
                return False
            try:
                if ipaddress.ip_address(fields[name]) not in \
                        ipaddress.ip_network(value, strict=False):
                    return False
            except ValueError:
                return False
        elif name == "nw_frag":
            frag = fields.get("nw_frag", "no")
            if not {"no": frag == "no", "yes": frag != "no", "first": frag == "first",
                    "later": frag == "later", "not_later": frag != "later"}.get(value, True):
                return False
    return True


def _field_int(fields: Mapping[str, str], name: str) -> int | None:
    value = fields.get(name)
    if value is None:
        return None
    try:
        return int(value, 0)
    except ValueError:
        return None

"""The br-int pipeline: every table dpagent uses, declared once as data.

The README's "Pipeline" section is generated from :data:`TABLES` (``python -m flows tables``),
so the documentation cannot drift from the numbers the compiler emits.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Table(enum.IntEnum):
    """OpenFlow table numbers of br-int."""

    CLASSIFY = 0
    EGRESS_SPOOF = 10
    EGRESS_BASE = 11
    EGRESS_CT = 12
    EGRESS_RULES = 13
    EGRESS_ACCEPT = 14
    FORWARD = 20
    INGRESS_BASE = 30
    INGRESS_CT = 31
    INGRESS_RULES = 32
    INGRESS_ACCEPT = 33
    CANARY = 250


@dataclass(frozen=True, slots=True)
class TableSpec:
    table: Table
    purpose: str
    miss: str


TABLES: tuple[TableSpec, ...] = (
    TableSpec(Table.CLASSIFY,
              "Where did the frame enter? An untagged frame of a VM port starts its egress "
              "filter (PORT, NETWORK and FLAGS loaded), or goes straight to FORWARD without port "
              "security; a VM's tagged frame is dropped; an uplink maps its VLAN to the network "
              "and goes to FORWARD.", "drop"),
    TableSpec(Table.EGRESS_SPOOF,
              "Anti-spoofing: source MAC and IP (ARP sha/spa) must belong to the port; DHCP "
              "discover from 0.0.0.0 and DAD from :: are let through.", "drop"),
    TableSpec(Table.EGRESS_BASE,
              "Verdicts that no rule can change: packets whose upper-layer header OVS cannot "
              "see, RA, redirects and DHCP server replies from a VM are dropped, NA targets "
              "checked; ARP, ND, MLD and DHCP clients pass. Other IP goes to conntrack (stateful "
              "ports) or to the rules (stateless).", "drop"),
    TableSpec(Table.EGRESS_CT,
              "After conntrack: invalid dropped; replies and related of allowed connections "
              "pass; replies of blocked connections dropped.", "EGRESS_RULES"),
    TableSpec(Table.EGRESS_RULES,
              "The port's egress rules: direct flows and conjunctions (remote groups).",
              "drop (an established connection is marked blocked first)"),
    TableSpec(Table.EGRESS_ACCEPT,
              "Allowed: commit new connections, unblock revived ones.", "FORWARD"),
    TableSpec(Table.FORWARD,
              "L2 by (network, destination MAC): a local port's ingress filter, flooding for "
              "multicast/broadcast, the uplink for anything else.", "drop"),
    TableSpec(Table.INGRESS_BASE,
              "Towards a VM: hairpin guard; ARP, ND, RA, MLD and DHCP replies pass; other IP goes "
              "to conntrack (stateful) or to the rules (stateless).", "drop"),
    TableSpec(Table.INGRESS_CT,
              "After conntrack, as EGRESS_CT.", "INGRESS_RULES"),
    TableSpec(Table.INGRESS_RULES,
              "The port's ingress rules: direct flows and conjunctions (remote groups).",
              "drop (an established connection is marked blocked first)"),
    TableSpec(Table.INGRESS_ACCEPT,
              "Allowed: commit new connections, unblock revived ones, output to the port.",
              "output to the port"),
    TableSpec(Table.CANARY,
              "Never reached by a packet: holds the programmer's canary flow, whose absence "
              "means the switch lost its flows (ovs-vswitchd restarted, bridge re-created).",
              "drop"),
)


def table_markdown() -> str:
    """The pipeline as a Markdown table, for the README."""
    lines = ["| table | name | purpose | on miss |", "|---|---|---|---|"]
    for spec in TABLES:
        lines.append(f"| {int(spec.table)} | {spec.table.name} | {spec.purpose} | {spec.miss} |")
    return "\n".join(lines)

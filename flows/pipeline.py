"""The pipelines of br-int and br-tun: every table dpagent uses, declared once as data.

The README's "Pipeline" section is generated from :data:`TABLES` and :data:`TUNNEL_TABLES`
(``python -m flows tables [--bridge tun]``), so the documentation cannot drift from the numbers
the compilers emit. br-tun's numbers are neutron's (``neutron_lib`` ``ovs_constants``): an
operator's ``ofproto/trace`` reads as it did under neutron's agent, and an in-place swap from
that agent changes no table a packet walks through.
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


class TunnelTable(enum.IntEnum):
    """OpenFlow table numbers of br-tun (neutron's)."""

    LOCAL_SWITCHING = 0
    PATCH_LV_TO_TUN = 2
    GRE_TUN_TO_LV = 3
    VXLAN_TUN_TO_LV = 4
    GENEVE_TUN_TO_LV = 6
    LEARN_FROM_TUN = 10
    UCAST_TO_TUN = 20
    ARP_RESPONDER = 21
    FLOOD_TO_TUN = 22
    CANARY = 250


@dataclass(frozen=True, slots=True)
class TableSpec:
    table: enum.IntEnum
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


TUNNEL_TABLES: tuple[TableSpec, ...] = (
    TableSpec(TunnelTable.LOCAL_SWITCHING,
              "Where did the frame enter? From br-int (patch-int, tagged with the network's local "
              "VLAN) to PATCH_LV_TO_TUN; from a tunnel port to its type's TUN_TO_LV table.",
              "drop"),
    TableSpec(TunnelTable.PATCH_LV_TO_TUN,
              "From br-int: broadcast ARP to ARP_RESPONDER (with the ARP responder), unicast to "
              "UCAST_TO_TUN, multicast and broadcast to FLOOD_TO_TUN.", "drop"),
    TableSpec(TunnelTable.GRE_TUN_TO_LV,
              "From a GRE tunnel: the tunnel key of a network on this host becomes its local "
              "VLAN, then LEARN_FROM_TUN.", "drop (a key no local network has)"),
    TableSpec(TunnelTable.VXLAN_TUN_TO_LV,
              "From a VXLAN tunnel: VNI to local VLAN, as GRE_TUN_TO_LV.",
              "drop (a VNI no local network has)"),
    TableSpec(TunnelTable.GENEVE_TUN_TO_LV,
              "From a Geneve tunnel: VNI to local VLAN, as GRE_TUN_TO_LV.",
              "drop (a VNI no local network has)"),
    TableSpec(TunnelTable.LEARN_FROM_TUN,
              "Learn the sender's MAC behind the tunnel it came through (a flow in UCAST_TO_TUN, "
              "300 s), then to br-int.", "(none: one flow matches everything)"),
    TableSpec(TunnelTable.UCAST_TO_TUN,
              "Unicast towards a remote MAC: l2population's entries (priority 2), then learned "
              "ones (priority 1); the VLAN becomes the tunnel key and the frame leaves through "
              "that endpoint's tunnel.", "FLOOD_TO_TUN"),
    TableSpec(TunnelTable.ARP_RESPONDER,
              "ARP requests for a remote port's IP (told by l2population) are answered here and "
              "sent back to br-int; nothing crosses the tunnel.", "FLOOD_TO_TUN"),
    TableSpec(TunnelTable.FLOOD_TO_TUN,
              "A network's broadcast, multicast and unknown unicast: to every endpoint with "
              "ports on the network (l2population), or to every endpoint of its type.",
              "drop (a VLAN no tunnelled network has)"),
    TableSpec(TunnelTable.CANARY,
              "Never reached by a packet: the programmer's canary flow, as on br-int.", "drop"),
)


def table_markdown(specs: tuple[TableSpec, ...] = TABLES) -> str:
    """A pipeline as a Markdown table, for the README."""
    lines = ["| table | name | purpose | on miss |", "|---|---|---|---|"]
    for spec in specs:
        lines.append(f"| {int(spec.table)} | {spec.table.name} | {spec.purpose} | {spec.miss} |")
    return "\n".join(lines)

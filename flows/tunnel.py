"""br-tun's flows: tenant overlay networks (VXLAN, Geneve, GRE) in neutron's shape.

Pure builders, one per owner of the bridge's flows (see :mod:`dpagent.overlay`): the base
pipeline, a tunnel port, a network, one remote MAC, one remote IP. Each owner is small and
independent of every other, so one l2population change is a handful of flow-mods whatever the
number of networks and endpoints on the host.

The shapes are neutron's OVS agent's (``br_tun.py``, tables of ``neutron_lib`` ``ovs_constants``)
so that a trace reads as operators know it, and an in-place swap from that agent walks the same
tables; they differ in two deliberate ways:

* the ARP responder answers only requests (``arp_op=1``); neutron answers any ARP for the IP,
  turning a VM's own broadcast reply (a gratuitous ARP) into a reply sent back to it;
* learned flows carry :data:`flows.cookies.LEARNED_COOKIE`, which the programmer never
  compares or deletes (they belong to the traffic, not to dpagent's desired state).

From br-int every frame arrives tagged with its network's local VLAN (br-int's uplink for a
tunnelled network pushes it), and frames for br-int leave tagged the same way.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from flows import actions
from flows.cookies import LEARNED_COOKIE, Kind
from flows.flow import Flow, MatchItem, flow
from flows.pipeline import TunnelTable

TUNNEL_TYPES = ("gre", "vxlan", "geneve")
TUN_TO_LV = {"gre": TunnelTable.GRE_TUN_TO_LV, "vxlan": TunnelTable.VXLAN_TUN_TO_LV,
             "geneve": TunnelTable.GENEVE_TUN_TO_LV}
LEARN_HARD_TIMEOUT = 300
"""Seconds a learned MAC stays behind its tunnel without being seen again (neutron's)."""

UNICAST = ("dl_dst", "00:00:00:00:00:00/01:00:00:00:00:00")
MULTICAST = ("dl_dst", "01:00:00:00:00:00/01:00:00:00:00:00")
BROADCAST_ARP: tuple[MatchItem, ...] = (("arp", ""), ("dl_dst", "ff:ff:ff:ff:ff:ff"))

PRIO_FDB = 2
"""UCAST_TO_TUN: l2population's entries, above what the switch learned (priority 1)."""
PRIO_LEARNED = 1


@dataclass(frozen=True, slots=True, order=True)
class TunnelNetwork:
    """A tunnelled network on this host: its type, its segmentation id (the VNI or GRE key)
    and the local VLAN br-int tags its frames with."""

    network_id: str
    network_type: str
    segmentation_id: int
    local_vlan: int


def base_flows(patch_int_ofport: int, arp_responder: bool) -> tuple[Flow, ...]:
    """The pipeline without any network: frames from br-int dispatched by destination, table
    misses dropped, learning from tunnels."""
    frames_from_int = (("in_port", str(patch_int_ofport)),)
    result = [
        flow(TunnelTable.LOCAL_SWITCHING, 1, frames_from_int,
             (actions.goto(TunnelTable.PATCH_LV_TO_TUN),), Kind.BASE),
        flow(TunnelTable.LOCAL_SWITCHING, 0, (), actions.DROP, Kind.BASE),
        flow(TunnelTable.PATCH_LV_TO_TUN, 0, (UNICAST,),
             (actions.goto(TunnelTable.UCAST_TO_TUN),), Kind.BASE),
        flow(TunnelTable.PATCH_LV_TO_TUN, 0, (MULTICAST,),
             (actions.goto(TunnelTable.FLOOD_TO_TUN),), Kind.BASE),
        flow(TunnelTable.LEARN_FROM_TUN, 1, (), (_learn(), actions.output(patch_int_ofport)),
             Kind.BASE),
        flow(TunnelTable.UCAST_TO_TUN, 0, (), (actions.goto(TunnelTable.FLOOD_TO_TUN),),
             Kind.BASE),
        flow(TunnelTable.FLOOD_TO_TUN, 0, (), actions.DROP, Kind.BASE),
    ]
    result += [flow(table, 0, (), actions.DROP, Kind.BASE) for table in TUN_TO_LV.values()]
    if arp_responder:
        result += [
            flow(TunnelTable.PATCH_LV_TO_TUN, 1, BROADCAST_ARP,
                 (actions.goto(TunnelTable.ARP_RESPONDER),), Kind.BASE),
            flow(TunnelTable.ARP_RESPONDER, 0, (), (actions.goto(TunnelTable.FLOOD_TO_TUN),),
                 Kind.BASE),
        ]
    return tuple(sorted(result))


def tunnel_port_flows(network_type: str, ofport: int) -> tuple[Flow, ...]:
    """What arrives through a tunnel port goes to its type's TUN_TO_LV table."""
    return (flow(TunnelTable.LOCAL_SWITCHING, 1, (("in_port", str(ofport)),),
                 (actions.goto(TUN_TO_LV[network_type]),), Kind.TUNNEL),)


def network_flows(network: TunnelNetwork, flood_ofports: Iterable[int]) -> tuple[Flow, ...]:
    """A network's two flows: its segmentation id in from the tunnels becomes its local VLAN;
    its broadcast, multicast and unknown unicast go out to ``flood_ofports`` (no flood flow
    without any: the table's miss drops them)."""
    into_int = flow(TUN_TO_LV[network.network_type], 1,
                    (("tun_id", f"{network.segmentation_id:#x}"),),
                    (actions.push_vlan(network.local_vlan),
                     actions.goto(TunnelTable.LEARN_FROM_TUN)), Kind.NETWORK)
    ports = sorted(set(flood_ofports))
    if not ports:
        return (into_int,)
    flood = flow(TunnelTable.FLOOD_TO_TUN, 1, (("dl_vlan", str(network.local_vlan)),),
                 (*_into_tunnel(network), *(actions.output(p) for p in ports)), Kind.NETWORK)
    return (into_int, flood)


def unicast_flow(network: TunnelNetwork, mac: str, ofport: int) -> Flow:
    """Frames for a remote port's MAC leave through its endpoint's tunnel."""
    return flow(TunnelTable.UCAST_TO_TUN, PRIO_FDB,
                (("dl_vlan", str(network.local_vlan)), ("dl_dst", mac.lower())),
                (*_into_tunnel(network), actions.output(ofport)), Kind.FDB)


def arp_responder_flow(network: TunnelNetwork, ip: str, mac: str) -> Flow:
    """An ARP request for a remote port's IPv4 address is answered on br-tun: the request
    becomes the reply (``mac`` has ``ip``) and goes back to br-int, still tagged."""
    address = str(ipaddress.IPv4Address(ip))
    mac = mac.lower()
    return flow(TunnelTable.ARP_RESPONDER, 1,
                (("arp", ""), ("dl_vlan", str(network.local_vlan)), ("arp_op", "1"),
                 ("arp_tpa", address)),
                ("set_field:2->arp_op",
                 "move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[]",
                 "move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[]",
                 f"set_field:{mac}->arp_sha",
                 f"set_field:{address}->arp_spa",
                 "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]",
                 f"set_field:{mac}->eth_src",
                 "IN_PORT"), Kind.FDB)


def learned_of(local_vlan: int | None) -> Flow:
    """Names what the switch learned for a local VLAN (None: for every VLAN), for a non-strict
    delete (``BridgeProgrammer.purge``): a network leaving the host takes them along, or a
    network given its VLAN next would send to the MACs of the one that left, under its VNI
    (neutron's ``reclaim_local_vlan`` deletes them too). The learned match is the VLAN id's
    12 bits."""
    match = () if local_vlan is None else (("vlan_tci", f"{local_vlan:#06x}/0x0fff"),)
    return Flow(int(TunnelTable.UCAST_TO_TUN), 0, match, (), LEARNED_COOKIE)


def _into_tunnel(network: TunnelNetwork) -> tuple[str, str]:
    return (actions.strip_vlan(), f"set_field:{network.segmentation_id:#x}->tun_id")


def _learn() -> str:
    """Remember the sender's MAC behind the tunnel it came from: a UCAST_TO_TUN flow for (local
    VLAN, MAC) that strips the tag, sets the tunnel key and outputs to the tunnel port."""
    return (f"learn(table={int(TunnelTable.UCAST_TO_TUN)},priority={PRIO_LEARNED},"
            f"hard_timeout={LEARN_HARD_TIMEOUT},cookie={LEARNED_COOKIE:#x},"
            "NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],"
            "load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],"
            "output:NXM_OF_IN_PORT[])")

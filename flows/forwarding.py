"""Where frames enter and where they go: classification, L2 forwarding, flooding, uplinks.

dpagent does its own forwarding instead of relying on the NORMAL action, so that every frame
towards a VM, flooded ones included, passes that VM's ingress filter: a frame for a local MAC goes
to the owner's ingress pipeline; multicast and broadcast visit every port of the network (each
through its own filter) and the uplink; anything else leaves through the uplink.
"""

from __future__ import annotations

from flows import actions, fields, matches
from flows.cookies import Kind
from flows.flow import Flow, MatchItem, flow
from flows.model import Network, Port, Uplink
from flows.pipeline import Table

PRIO_PORT = 100
PRIO_UNICAST = 50
PRIO_FLOOD = 40
PRIO_TO_UPLINK = 10
PRIO_GUARD = 200


def port_flags(stateful: bool) -> int:
    return fields.FLAG_STATEFUL if stateful else 0


UNTAGGED = ("vlan_tci", "0x0000/0x1fff")
"""No 802.1Q/802.1ad header at all (OVS sets the CFI bit, 0x1000, whenever there is one, also for
a priority tag with VID 0)."""


def classify_flow(port: Port, stateful: bool, kind: Kind) -> Flow:
    """Frames sent by the VM: start its egress filter (or go straight on without port security).

    Only untagged frames: OVS matches ``ip``/``arp`` on the ethertype inside one VLAN tag, so a
    VM's tagged frame would pass every later check with its tag on, reach other VMs tagged and
    leave through the uplink with the network's VLAN pushed on top (a double tag chosen by the
    VM). A VM port without a trunk sends nothing tagged; the table's miss drops the rest."""
    match = (("in_port", str(port.ofport)), UNTAGGED)
    if not port.port_security:
        return flow(Table.CLASSIFY, PRIO_PORT, match,
                    (actions.load(port.local_vlan, fields.NETWORK), actions.goto(Table.FORWARD)),
                    kind)
    return flow(Table.CLASSIFY, PRIO_PORT, match,
                (actions.load(port.ofport, fields.PORT),
                 actions.load(port.local_vlan, fields.NETWORK),
                 actions.load(port_flags(stateful), fields.FLAGS),
                 actions.goto(Table.EGRESS_SPOOF)), kind)


def delivery_actions(port: Port, stateful: bool, *, returning: bool) -> tuple[str, ...]:
    """How a frame reaches the VM: through its ingress filter, or directly without port security.

    ``returning`` is for flooding, where the next destination's actions follow.
    """
    if not port.port_security:
        return (actions.output(port.ofport),)
    enter = actions.resubmit(Table.INGRESS_BASE) if returning else actions.goto(Table.INGRESS_BASE)
    return (actions.load(port.ofport, fields.PORT),
            actions.load(port_flags(stateful), fields.FLAGS), enter)


def unicast_flows(port: Port, stateful: bool, kind: Kind) -> list[Flow]:
    acts = delivery_actions(port, stateful, returning=False)
    return [flow(Table.FORWARD, PRIO_UNICAST,
                 (matches.network(port.local_vlan), ("dl_dst", mac)), acts, kind)
            for mac in port.macs]


def hairpin_guard(port: Port, kind: Kind) -> Flow:
    """A flooded frame is not sent back to the port it came from (OVS skips ``output`` to the
    input port by itself, but the ingress filter would still run and touch conntrack)."""
    return flow(Table.INGRESS_BASE, PRIO_GUARD,
                (("in_port", str(port.ofport)), matches.port(port.ofport)), actions.DROP, kind)


def uplink_actions(uplink: Uplink) -> tuple[str, ...]:
    if uplink.vlan is None:
        return (actions.output(uplink.ofport),)
    return (actions.push_vlan(uplink.vlan), actions.output(uplink.ofport))


def network_flows(network: Network, members: list[tuple[Port, bool]], kind: Kind) -> list[Flow]:
    """Flooding, unknown unicast and uplink classification of one network."""
    net = matches.network(network.local_vlan)
    flood: list[str] = []
    for port, stateful in sorted(members, key=lambda m: m[0].ofport):
        flood.extend(delivery_actions(port, stateful, returning=True))
    flows = []
    if network.uplink is not None:
        up = uplink_actions(network.uplink)
        flood.extend(up)
        flows.append(flow(Table.FORWARD, PRIO_TO_UPLINK, (net,), up, kind))
        flows.append(_uplink_classify(network, kind))
    if flood:
        flows.append(flow(Table.FORWARD, PRIO_FLOOD, (net, matches.MULTICAST_MAC), tuple(flood),
                          kind))
    return flows


def _uplink_classify(network: Network, kind: Kind) -> Flow:
    uplink = network.uplink
    assert uplink is not None
    into = (actions.load(network.local_vlan, fields.NETWORK), actions.goto(Table.FORWARD))
    match: tuple[MatchItem, ...]
    if uplink.vlan is None:
        match = (("in_port", str(uplink.ofport)), UNTAGGED)
        return flow(Table.CLASSIFY, PRIO_PORT, match, into, kind)
    match = (("in_port", str(uplink.ofport)), ("dl_vlan", str(uplink.vlan)))
    return flow(Table.CLASSIFY, PRIO_PORT, match, (actions.strip_vlan(), *into), kind)

"""The flows dpagent keeps on a physical bridge: an allow-list at its patch port.

A physical bridge is the operator's: its NIC may carry the host's own traffic (management,
storage), so the bridge keeps switching with NORMAL. dpagent adds one rule set at ``phy-<bridge>``,
the patch port from br-int: only the VLANs of networks present on this host (and untagged frames,
if a flat network is present) pass, to NORMAL; anything else coming from br-int is dropped. The
other direction (from the wire into br-int) is guarded by br-int itself, whose CLASSIFY table
drops every frame of the uplink that no network claims.

The bridge has a single table. Flows are :class:`flows.Flow` values with dpagent content cookies,
so the bridge's :class:`~dpagent.bridge.programmer.BridgeProgrammer` diffs and sweeps only
dpagent's flows and never touches an operator's.
"""

from __future__ import annotations

from collections.abc import Iterable

from dpagent.physnet.segments import WireVlan
from flows.cookies import Kind
from flows.flow import Flow, MatchItem, finished

TABLE = 0
PRIO_ALLOW = 20
"""Above the guard: a present network's VLAN from br-int goes on."""
PRIO_GUARD = 10
"""Above NORMAL: whatever else br-int sends is dropped."""
PRIO_NORMAL = 0
"""The operator's own traffic on the NIC and the bridge's local port: plain L2 switching."""
NORMAL = "NORMAL"
UNTAGGED = ("vlan_tci", "0x0000/0x1fff")
"""No 802.1Q header (or a priority tag with VLAN 0), as the br-int compiler matches it."""

GUARD_OWNER = "physnet:guard"
ALLOW_OWNER = "physnet:allow"


def guard_flows(phy_ofport: int) -> tuple[Flow, ...]:
    """What must be in place before the patch ports are connected: drop all of br-int's
    frames, switch everything else as before."""
    return (_flow(PRIO_GUARD, (("in_port", str(phy_ofport)),), (), Kind.BASE),
            _flow(PRIO_NORMAL, (), (NORMAL,), Kind.BASE))


def allow_flows(phy_ofport: int, vlans: Iterable[WireVlan]) -> tuple[Flow, ...]:
    """Let the frames of the present networks (VLAN id, or None for untagged) out to the wire."""
    port = ("in_port", str(phy_ofport))
    flows = []
    for vlan in sorted(set(vlans), key=lambda v: -1 if v is None else v):
        match = (port, UNTAGGED) if vlan is None else (port, ("dl_vlan", str(vlan)))
        flows.append(_flow(PRIO_ALLOW, match, (NORMAL,), Kind.NETWORK))
    return tuple(flows)


def _flow(priority: int, match: tuple[MatchItem, ...], actions: tuple[str, ...],
          kind: Kind) -> Flow:
    draft = Flow(TABLE, priority, match, actions, 0)
    return finished(draft, kind, draft.render_body())

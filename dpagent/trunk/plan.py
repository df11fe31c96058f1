"""What a trunk bridge should hold, what it holds, and the difference. Pure.

A trunk's wiring is one patch-port pair per port: the parent's (untagged: its trunk-bridge end
is an access port of VLAN 0) and one per subport (its trunk-bridge end an access port of the
subport's VLAN, so the trunk bridge's NORMAL switching hands the VM's frames tagged with that
VLAN to it, untagged, and tags what comes back). Frames the VM tags with any other VLAN reach
no port there and are dropped. The br-int end of each pair carries the port's iface-id: the
agent core wires and filters it like any VIF, on its own network's local VLAN.

Validation refuses, alone, a subport the trunk bridge cannot carry (a second subport on a VLAN,
a segmentation type other than ``vlan``, the parent as its own subport); the others are wired.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dpagent.rpc.trunks import SEGMENTATION_VLAN, TRUNK_ACTIVE, TRUNK_DEGRADED, SubPort, Trunk
from dpagent.trunk.naming import (
    PARENT_PREFIX,
    SUBPORT_PREFIX,
    integration_side,
    is_service_port,
    is_subport_side,
    trunk_side,
)

PATCH = "patch"
UNTAGGED = 0
"""The parent's trunk-bridge end: an access port of VLAN 0 (neutron's tag 0)."""


@dataclass(frozen=True)
class ObservedPort:
    """One port (with its one interface) as OVSDB shows it."""

    name: str
    type: str = ""
    peer: str | None = None
    tag: int | None = None
    vlan_mode: str | None = None
    external_ids: Mapping[str, str] = field(default_factory=dict)

    @property
    def iface_id(self) -> str | None:
        return self.external_ids.get("iface-id") or None


@dataclass(frozen=True)
class BridgeView:
    """A trunk bridge's ports, and the br-int ports that bear its pairs' names."""

    name: str
    ports: Mapping[str, ObservedPort]
    integration: Mapping[str, ObservedPort]
    """br-int's ports that are (or were) this trunk's ends: named as the wanted pairs' ends,
    as the peers of this bridge's ports, or in the parent's recorded subports"""

    def parent(self) -> ObservedPort | None:
        """The VM's port: the one that is no service port and carries an iface-id (os-vif's
        tap). Several: the first by name (neutron takes any)."""
        vm = [p for name, p in sorted(self.ports.items())
              if not is_service_port(name) and p.iface_id]
        return vm[0] if vm else None

    def subport_sides(self) -> dict[str, ObservedPort]:
        """The subports' trunk-bridge ends present, by name."""
        return {n: p for n, p in self.ports.items() if is_subport_side(n)}


@dataclass(frozen=True)
class PatchPair:
    """One port's pair: ``integration`` on br-int (iface-id ``port_id``, attached-mac
    ``mac``) and ``trunk`` on the trunk bridge, an access port of VLAN ``tag``."""

    port_id: str
    integration: str
    trunk: str
    tag: int
    mac: str

    @classmethod
    def parent(cls, port_id: str, mac: str) -> PatchPair:
        return cls(port_id, integration_side(PARENT_PREFIX, port_id),
                   trunk_side(PARENT_PREFIX, port_id), UNTAGGED, mac)

    @classmethod
    def subport(cls, port_id: str, vlan: int, mac: str) -> PatchPair:
        return cls(port_id, integration_side(SUBPORT_PREFIX, port_id),
                   trunk_side(SUBPORT_PREFIX, port_id), vlan, mac)

    def external_ids(self) -> dict[str, str]:
        """What neutron's driver writes on both ends (``get_patch_peer_attrs``)."""
        ids = {"iface-id": self.port_id}
        if self.mac:
            ids["attached-mac"] = self.mac
        return ids


def check_subports(trunk: Trunk, wired: Mapping[str, int]) -> tuple[list[SubPort],
                                                                      dict[str, str]]:
    """The subports that can be carried, and the others with why (port id -> reason).

    ``wired``: subport -> VLAN of the pairs in place. Of two subports on one VLAN the one
    already wired there keeps it; if neither is, neither gets it (which is the VM's is
    unknowable: when in doubt, drop)."""
    refused: dict[str, str] = {}
    by_vlan: dict[int, list[SubPort]] = defaultdict(list)
    seen: set[str] = set()
    for sub in trunk.sub_ports:
        if sub.port_id in seen:
            continue
        seen.add(sub.port_id)
        where = f"subport {sub.port_id} of trunk {trunk.id}"
        if sub.port_id == trunk.port_id:
            refused[sub.port_id] = f"{where}: it is the trunk's parent"
        elif sub.segmentation_type != SEGMENTATION_VLAN:
            refused[sub.port_id] = (f"{where}: segmentation type {sub.segmentation_type!r}; "
                                    "an OVS trunk bridge carries only 'vlan'")
        else:
            by_vlan[sub.segmentation_id].append(sub)
    accepted = []
    for vlan, claims in sorted(by_vlan.items()):
        if len(claims) == 1:
            accepted.append(claims[0])
            continue
        holder = [s for s in claims if wired.get(s.port_id) == vlan]
        names = ", ".join(sorted(s.port_id for s in claims))
        for sub in claims:
            if holder and sub is holder[0]:
                accepted.append(sub)
                continue
            why = (f"VLAN {vlan} is already subport {holder[0].port_id}'s" if holder
                   else f"VLAN {vlan} is claimed by subports {names}")
            refused[sub.port_id] = f"subport {sub.port_id} of trunk {trunk.id}: {why}"
    return accepted, refused


@dataclass
class Changes:
    """What to do to one trunk bridge and br-int: ports to delete first, pairs to create
    (unconnected, then connected), trunk-side ends to re-tag, external_ids to correct, and
    the parent's trunk metadata."""

    delete: list[str] = field(default_factory=list)
    create: list[PatchPair] = field(default_factory=list)
    retag: dict[str, int] = field(default_factory=dict)
    relabel: dict[str, dict[str, str]] = field(default_factory=dict)
    metadata: tuple[str, dict[str, str]] | None = None
    """(the parent's interface, its external_ids with the trunk recorded)"""

    def __bool__(self) -> bool:
        return bool(self.delete or self.create or self.retag or self.relabel
                    or self.metadata is not None)


def pair_state(pair: PatchPair, view: BridgeView) -> str:
    """``right``, ``missing`` (neither end), ``retag``/``relabel`` (ends right but for the
    tag / the ids), or ``broken`` (recreate it)."""
    trunk_end, int_end = view.ports.get(pair.trunk), view.integration.get(pair.integration)
    if trunk_end is None and int_end is None:
        return "missing"
    if trunk_end is None or int_end is None or trunk_end.type != PATCH or \
            int_end.type != PATCH or trunk_end.peer != pair.integration or \
            int_end.peer != pair.trunk:
        return "broken"
    if trunk_end.tag != pair.tag or trunk_end.vlan_mode != "access":
        return "retag"
    if int_end.iface_id != pair.port_id:
        return "relabel"
    return "right"


def plan(view: BridgeView, parent_id: str, pairs: Iterable[PatchPair],
         trunk_id: str) -> Changes:
    """The changes that make ``view`` hold exactly ``pairs`` (the parent's first) and record
    the trunk on the parent's interface. A pair that is right is not touched: a restart on a
    right bridge changes nothing."""
    wanted = list(pairs)
    changes = Changes()
    names = {p.trunk for p in wanted} | {p.integration for p in wanted}
    for pair in wanted:
        state = pair_state(pair, view)
        if state == "broken":
            changes.delete += [n for n in (pair.trunk, pair.integration)
                               if n in view.ports or n in view.integration]
        if state in ("broken", "missing"):
            changes.create.append(pair)
        elif state == "retag":
            changes.retag[pair.trunk] = pair.tag
        elif state == "relabel":
            changes.relabel[pair.integration] = pair.external_ids()
    for name in sorted(view.ports):  # trunk-side ends of pairs no longer wanted
        if not is_service_port(name) or name == view.name or name in names:
            continue
        changes.delete.append(name)
    changes.delete += [n for n in sorted(view.integration)  # br-int ends no longer wanted
                       if n not in names and n not in changes.delete]
    parent = view.ports.get(_parent_name(view, parent_id))
    if parent is not None:
        subports = sorted(p.port_id for p in wanted if p.port_id != parent_id)
        ids = trunk_metadata(view.name, trunk_id, subports)
        if any(parent.external_ids.get(k) != v for k, v in ids.items()
               if k != "subport_ids") or \
                set(parse_subport_ids(parent.external_ids)) != set(subports):
            changes.metadata = (parent.name, {**parent.external_ids, **ids})
    return changes


def _parent_name(view: BridgeView, parent_id: str) -> str:
    parent = view.parent()
    return parent.name if parent is not None and parent.iface_id == parent_id else ""


def trunk_metadata(bridge: str, trunk_id: str, subport_ids: Iterable[str]) -> dict[str, str]:
    """What neutron's driver records on the parent's interface (``_set_trunk_metadata``), so
    that whichever agent sees the VM go knows what to remove."""
    return {"bridge_name": bridge, "trunk_id": trunk_id,
            "subport_ids": json.dumps(sorted(subport_ids))}


def parse_subport_ids(external_ids: Mapping[str, str]) -> list[str]:
    """The parent's recorded subports ([] if none or unreadable)."""
    try:
        ids = json.loads(external_ids.get("subport_ids", "[]"))
    except ValueError:
        return []
    return [i for i in ids if isinstance(i, str)] if isinstance(ids, list) else []


SETTLED_OK = frozenset({"wired", "port-down"})
"""Agent-core states in which a trunk's port counts as carried (an administratively down
subport is down on purpose)."""
SETTLED_FAILED = frozenset({"failed", "unbound", "deleted"})


def trunk_status(states: Mapping[str, str], parent_id: str, expected: Iterable[str],
                 refused: Mapping[str, str]) -> tuple[str | None, list[str]]:
    """(status to report, or None while some port is still being wired; the reasons).

    ``states``: the agent core's state of each port on br-int (absent: not seen yet)."""
    reasons = [refused[p] for p in sorted(refused)]
    for port_id in [parent_id, *sorted(set(expected) - {parent_id})]:
        state = states.get(port_id)
        if state in SETTLED_FAILED:
            role = "parent" if port_id == parent_id else "subport"
            reasons.append(f"{role} {port_id}: {state} on the integration bridge")
        elif state not in SETTLED_OK:
            return None, reasons
    return (TRUNK_DEGRADED if reasons else TRUNK_ACTIVE), reasons

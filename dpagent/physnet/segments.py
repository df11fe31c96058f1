"""Which networks leave through which physical bridge, and with what VLAN on the wire.

Pure functions over what the control plane says about a network (``network_type``,
``physical_network``, ``segmentation_id``): no OVSDB, no flows. A VLAN network's frames carry
its segmentation id on the wire; a flat network's frames are untagged. Local and tunnelled
networks have no physical uplink here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

FLAT = "flat"
VLAN = "vlan"
LOCAL = "local"
TUNNELLED = ("vxlan", "gre", "geneve")
MIN_VLAN, MAX_VLAN = 1, 4094

WireVlan = int | None
"""The VLAN id on the wire; None = untagged (a flat network)."""
PresentNetwork = tuple[str, str, int | str | None]
"""(physical_network, network_type, segmentation_id) of a network with ports on this host."""


class NoSegment(ValueError):
    """A network that has no physical segment on this host; the message says why."""


@dataclass(frozen=True, slots=True)
class Segment:
    """Where a provider network meets the wire: its physnet and its VLAN (None: untagged)."""

    physical_network: str
    vlan: WireVlan


def segment_of(network_type: str, physical_network: str | None,
               segmentation_id: int | str | None) -> Segment:
    """The wire segment of a provider network; :class:`NoSegment` (with the reason) if none.

    ``segmentation_id`` may be text, as neutron's agent records it in a port's other_config.
    """
    kind = (network_type or "").lower()
    if kind == LOCAL:
        raise NoSegment("a local network never leaves this host")
    if kind in TUNNELLED:
        raise NoSegment(f"{kind} networks are tunnelled, not carried by a physical bridge")
    if kind not in (FLAT, VLAN):
        raise NoSegment(f"unknown network type {network_type!r}")
    if not physical_network:
        raise NoSegment(f"a {kind} network needs a physical network")
    if kind == FLAT:
        return Segment(physical_network, None)
    vlan = _vlan_id(segmentation_id)
    if vlan is None:
        raise NoSegment(f"VLAN network on {physical_network} has an invalid segmentation id "
                        f"{segmentation_id!r} (must be {MIN_VLAN}-{MAX_VLAN})")
    return Segment(physical_network, vlan)


def wire_vlans(present: Iterable[PresentNetwork]) -> dict[str, frozenset[WireVlan]]:
    """physnet -> the VLANs (None for untagged) that networks on this host use on it.

    Networks without a physical segment (local, tunnelled, malformed) are left out: their
    traffic has no business on a physical bridge.
    """
    vlans: dict[str, set[WireVlan]] = {}
    for physical_network, network_type, segmentation_id in present:
        try:
            segment = segment_of(network_type, physical_network, segmentation_id)
        except NoSegment:
            continue
        vlans.setdefault(segment.physical_network, set()).add(segment.vlan)
    return {physnet: frozenset(found) for physnet, found in vlans.items()}


def recorded_networks(port_configs: Mapping[str, Mapping[str, str]]) -> list[PresentNetwork]:
    """The networks recorded in br-int ports' ``other_config`` (name -> other_config) by the
    previous run -- ours or neutron's agent, which record the same keys.

    At start, before the first sync knows the networks, a physical bridge's allow-list must
    already let these out: the ports still use them, and br-int keeps forwarding for them
    until the first sync, so anything less cuts uplink traffic across a restart.
    """
    found = {(c["physical_network"], c.get("network_type", ""), c.get("segmentation_id"))
             for c in port_configs.values()
             if c.get("physical_network") and c.get("net_uuid")}
    return sorted(found, key=repr)


def _vlan_id(value: int | str | None) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = int(value) if value.strip().isdigit() else None
    if isinstance(value, int) and MIN_VLAN <= value <= MAX_VLAN:
        return value
    return None

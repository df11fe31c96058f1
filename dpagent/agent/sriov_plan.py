"""What one direct port wants of its VF, from the control plane's data: pure functions.

A VF passes the VM's tagged frames through as they are -- it cannot translate VLANs -- so it
carries a trunk's subport only if the VLAN the VM tags it with is its network's VLAN on the VF's
physnet (the subport's own device details say which, once it is bound here); any other subport
is refused, alone (see :func:`carried_vlan`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeGuard

from dpagent.rpc.trunks import SEGMENTATION_INHERIT, SubPort, Trunk


class RefusedSubport(NamedTuple):
    """A subport its parent's VF does not carry; ``reason`` names it and the VLANs."""

    port_id: str
    reason: str


@dataclass(frozen=True)
class VfPlan:
    """What one direct port wants of its VF."""

    port_id: str
    mac: str
    pci_slot: str | None
    physnet: str | None = None  # the port's physical network; must be its VF's PF's
    vlan: int = 0  # port VLAN the NIC tags/strips; 0: none (flat network, or a trunk parent)
    trunk_vlans: frozenset[int] | None = None  # the VLANs carried tagged; None: not a trunk
    spoof_check: bool = True
    link_up: bool = True
    refused_subports: tuple[RefusedSubport, ...] = ()  # never on the VF


class PlanError(ValueError):
    """The control plane's data for a port cannot be turned into a VF configuration."""


def _is_vlan(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 4094


def carried_vlan(sub: SubPort, details: Mapping[str, Any] | None, physnet: str | None) -> int:
    """The VLAN on which a VF on ``physnet`` carries subport ``sub``, given the subport's own
    device details: its network's VLAN there, which must also be the VLAN the VM tags it with
    (``segmentation_id``; with ``inherit``, the network's own segmentation id by definition).
    A VF passes tagged frames through unchanged, so a subport tagged 10 by the VM on a network
    whose VLAN is 110 would leave on VLAN 10, outside its network. Pure; raises PlanError
    naming the subport and both VLANs when it cannot be carried."""
    inherit = sub.segmentation_type == SEGMENTATION_INHERIT
    vm_side = "its network's VLAN (inherit)" if inherit else f"VM-side VLAN {sub.segmentation_id}"
    name = f"subport {sub.port_id} of trunk {sub.trunk_id} ({vm_side})"
    if details is None or "network_id" not in details:
        raise PlanError(f"{name}: the server gave no binding of it on this host, so its "
                        "network's VLAN is unknown")
    network_type, segment = details.get("network_type"), details.get("segmentation_id")
    network_physnet = details.get("physical_network")
    if network_type != "vlan" or network_physnet != physnet or not _is_vlan(segment):
        raise PlanError(f"{name}: its network is {network_type} {segment!r} on physical "
                        f"network {network_physnet}, not a VLAN network on the VF's {physnet}")
    vm_vlan = segment if inherit else sub.segmentation_id
    if vm_vlan != segment:
        raise PlanError(f"{name}: its network is VLAN {segment} on {physnet}; a VF cannot "
                        f"translate VLANs, so traffic tagged {vm_vlan} would leave outside "
                        "its network")
    return segment


def plan_for(details: dict[str, Any], trunk: Trunk | None,
             subports: Mapping[str, Mapping[str, Any]] | None = None) -> VfPlan:
    """The VF configuration a port's device details (and its trunk, if it is a parent, with
    the subports' device details by port id) ask for. Pure; raises PlanError naming the port
    and the field. Subports that cannot be carried are left off the VF and listed in
    ``refused_subports``; the others are carried all the same."""
    port_id = str(details.get("device") or details.get("port_id"))
    profile = details.get("profile") or {}
    if not isinstance(profile, dict):
        raise PlanError(f"port {port_id}: binding profile is not an object: {profile!r}")
    pci_slot = profile.get("pci_slot")
    if pci_slot is not None and not isinstance(pci_slot, str):
        raise PlanError(f"port {port_id}: binding profile pci_slot {pci_slot!r} is not a string")
    mac = details.get("mac_address")
    if not isinstance(mac, str):
        raise PlanError(f"port {port_id}: no mac_address in its details")
    network_type = details.get("network_type")
    vlan = 0
    if network_type == "vlan":
        segment = details.get("segmentation_id")
        if not isinstance(segment, int) or isinstance(segment, bool) or not 1 <= segment <= 4094:
            raise PlanError(f"port {port_id}: VLAN segmentation_id {segment!r} is outside "
                            "1-4094")
        vlan = segment
    elif network_type not in ("flat", None):
        raise PlanError(f"port {port_id}: network type {network_type!r} cannot be carried "
                        "by a VF (only vlan and flat)")
    raw_physnet = details.get("physical_network")
    physnet = raw_physnet if isinstance(raw_physnet, str) else None
    trunk_vlans = None
    refused: list[RefusedSubport] = []
    if trunk is not None:
        # The VM tags subport traffic itself: the VF carries those VLANs tagged and has no
        # port VLAN (a NIC cannot both tag everything and pass tagged frames through).
        carried: set[int] = set()
        for sub in trunk.sub_ports:
            try:
                carried.add(carried_vlan(sub, (subports or {}).get(sub.port_id), physnet))
            except PlanError as exc:
                refused.append(RefusedSubport(sub.port_id, str(exc)))
        trunk_vlans = frozenset(carried) if trunk.admin_state_up else frozenset()
        vlan = 0
    return VfPlan(port_id, mac.lower(), pci_slot, physnet, vlan, trunk_vlans,
                  spoof_check=bool(details.get("port_security_enabled", True)),
                  link_up=bool(details.get("admin_state_up", True)),
                  refused_subports=tuple(refused))

"""The uplinks of br-int, by network type: physical bridges for flat and VLAN networks,
br-tun for tunnelled ones. One object for the agent core, so that it knows neither."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

from dpagent.agent.agent import Segment
from flows.model import Uplink
from flows.tunnel import TunnelNetwork

LOG = logging.getLogger(__name__)

TUNNELLED = ("vxlan", "geneve", "gre")


class PhysicalUplinks(Protocol):
    def uplink(self, network_type: str, physical_network: str | None,
               segmentation_id: int | str | None) -> Uplink | None:
        ...

    def set_networks(self, present: list[tuple[str, str, int | str | None]]) -> None:
        ...

    def take_over_deferred(self) -> None:
        ...


class TunnelUplinks(Protocol):
    def uplink(self, network_type: str, local_vlan: int) -> Uplink | None:
        ...

    def set_networks(self, networks: Mapping[str, TunnelNetwork]) -> None:
        ...

    def take_over_deferred(self) -> None:
        ...

    def refresh_tunnels(self) -> bool:
        ...


class HostUplinks:
    """:class:`dpagent.agent.agent.Uplinks` over physical networks and, if configured, the
    overlay. A tunnelled network without an overlay has no uplink: its ports work on this
    host only (the server does not bind them here: the heartbeat has no tunnel types)."""

    def __init__(self, physical: PhysicalUplinks, overlay: TunnelUplinks | None) -> None:
        self.physical = physical
        self.overlay = overlay

    def uplink(self, network_id: str, local_vlan: int, segment: Segment) -> Uplink | None:
        network_type, physical_network, segmentation_id = segment
        if network_type in TUNNELLED:
            return None if self.overlay is None else self.overlay.uplink(network_type,
                                                                          local_vlan)
        return self.physical.uplink(network_type, physical_network, segmentation_id)

    def set_networks(self, networks: Mapping[str, tuple[Segment, int]]) -> None:
        self.physical.set_networks(sorted(
            ((physnet, kind, seg) for (kind, physnet, seg), _ in networks.values()
             if physnet), key=repr))
        if self.overlay is not None:
            self.overlay.set_networks(tunnelled(networks))

    def take_over_deferred(self) -> None:
        self.physical.take_over_deferred()
        if self.overlay is not None:
            self.overlay.take_over_deferred()

    def refresh_tunnels(self) -> bool:
        return self.overlay is not None and self.overlay.refresh_tunnels()


def tunnelled(networks: Mapping[str, tuple[Segment, int]]) -> dict[str, TunnelNetwork]:
    """The tunnelled networks among ``networks``, with a usable segmentation id."""
    found = {}
    for network_id, ((kind, _, segmentation_id), vlan) in networks.items():
        if kind not in TUNNELLED:
            continue
        try:
            vni = int(segmentation_id)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            LOG.error("%s network %s has no usable segmentation id (%r)", kind, network_id,
                      segmentation_id)
            continue
        found[network_id] = TunnelNetwork(network_id, kind, vni, vlan)
    return found


def recorded_segments(port_configs: Mapping[str, Mapping[str, str]]
                      ) -> dict[str, tuple[Segment, int]]:
    """network -> (segment, local VLAN) as the previous run (ours or neutron's agent)
    recorded them in br-int ports' ``other_config``."""
    found: dict[str, tuple[Segment, int]] = {}
    for config in port_configs.values():
        network, tag = config.get("net_uuid"), config.get("tag", "")
        if not network or not tag.isdigit():
            continue
        segment: Segment = (config.get("network_type", ""),
                            config.get("physical_network") or None,
                            config.get("segmentation_id") or None)
        found.setdefault(network, (segment, int(tag)))
    return found

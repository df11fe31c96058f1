"""Migration from the veth interconnection of old agents to patch ports.

Old agents could join br-int to a physical bridge with a veth pair (``use_veth_interconnection``)
instead of patch ports. dpagent only uses patch ports: they live inside ovs-vswitchd, so a frame
crosses them without leaving the datapath (no kernel device, no extra copy, no second upcall), and
they can be created unconnected, which a veth pair cannot. A host still wired with veths is
converted in place at start-up: both OVS ports are removed, the veth is deleted (pyroute2), and
the patch ports are created by the normal wiring, the br-int one with the veth's old ofport so
that flows computed for it stay right.

Found as a veth interconnection of a mapped bridge:

* a veth pair with one end a port of the integration bridge and the other a port of the mapped
  bridge, whatever its names;
* ports named like the patch ports (``int-<bridge>``, ``phy-<bridge>``) that are not patch ports
  (a veth whose other end is already gone, for instance).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from dpagent.physnet.naming import PatchPair
from dpagent.physnet.patch_ports import PATCH, InterfaceInfo, PatchPorts

LOG = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class VethInterconnect:
    """What joins the integration bridge to ``bridge`` today instead of patch ports."""

    bridge: str
    int_port: str | None
    """The br-int side (None if only the physical side was found)."""
    phy_port: str | None
    int_ofport: int | None
    """The br-int side's ofport, for the patch port that replaces it."""


def veth_peers(netns: str | None) -> dict[str, str]:
    """veth name -> its peer's name, for pairs with both ends in the namespace ``netns``
    (None: this process's namespace), where ovs-vswitchd opens its system ports."""
    with IPRoute(netns=netns) if netns else IPRoute() as ipr:
        links = list(ipr.get_links())
    names = {link["index"]: link.get("IFLA_IFNAME") for link in links}
    peers = {}
    for link in links:
        info = link.get("IFLA_LINKINFO")
        if info is None or info.get("IFLA_INFO_KIND") != "veth":
            continue
        if link.get("IFLA_LINK_NETNSID") is not None:
            continue  # the other end is in another namespace: not an interconnection
        peer = names.get(link.get("IFLA_LINK"))
        if peer:
            peers[link.get("IFLA_IFNAME")] = peer
    return peers


def migrate(ports: PatchPorts, integration_bridge: str, pairs: Iterable[PatchPair],
            netns: str | None) -> dict[str, int | None]:
    """Remove every veth interconnection of the mapped bridges; bridge -> the br-int ofport the
    patch port should take over (None if unknown). A failure is logged, never raised: the
    wiring then replaces whatever still holds the patch ports' names."""
    try:
        found = find_veth_interconnects(ports, integration_bridge, pairs, netns)
    except Exception:  # noqa: BLE001 - a failed scan must not stop the wiring
        LOG.exception("looking for veth interconnections failed")
        return {}
    migrated = {}
    for veth in found:
        try:
            remove_veth_interconnect(ports, veth, netns)
        except Exception:  # noqa: BLE001
            LOG.exception("removing the veth interconnection of %s failed", veth.bridge)
            continue
        migrated[veth.bridge] = veth.int_ofport
    return migrated


def find_veth_interconnects(ports: PatchPorts, integration_bridge: str,
                            pairs: Iterable[PatchPair], netns: str | None
                            ) -> list[VethInterconnect]:
    """The veth interconnections between the integration bridge and the mapped bridges that
    exist now."""
    pairs = [p for p in pairs if ports.bridge_exists(p.bridge)]
    if not pairs:
        return []
    int_ports = ports.ports_of(integration_bridge)
    peers = veth_peers(netns)
    found = []
    for pair in pairs:
        phy_ports = ports.ports_of(pair.bridge)
        by_name = ports.interfaces([pair.int_port, pair.phy_port])
        int_side = next((name for name in sorted(int_ports)
                         if peers.get(name) in phy_ports), None)
        phy_side = peers.get(int_side) if int_side else None
        if int_side is None and _not_patch(by_name, pair.int_port, int_ports):
            int_side = pair.int_port
        if phy_side is None and _not_patch(by_name, pair.phy_port, phy_ports):
            phy_side = pair.phy_port
        if int_side is None and phy_side is None:
            continue
        info = ports.interfaces([int_side]).get(int_side) if int_side else None
        ofport = info.ofport if info is not None and info.ofport > 0 else None
        found.append(VethInterconnect(pair.bridge, int_side, phy_side, ofport))
    return found


def remove_veth_interconnect(ports: PatchPorts, veth: VethInterconnect,
                             netns: str | None) -> None:
    """Remove both OVS ports, then the veth devices (deleting one end deletes the pair)."""
    names = [n for n in (veth.int_port, veth.phy_port) if n]
    LOG.warning("migrating the interconnection of %s from veth (%s) to patch ports",
                veth.bridge, " <-> ".join(names))
    ports.delete_ports(names)
    with IPRoute(netns=netns) if netns else IPRoute() as ipr:
        for name in names:
            index = ipr.link_lookup(ifname=name)
            if index:
                try:
                    ipr.link("del", index=index[0])
                except NetlinkError as exc:  # the other end's deletion took it already
                    LOG.debug("deleting %s: %s", name, exc)


def _not_patch(by_name: dict[str, InterfaceInfo], name: str, on_bridge: set[str]) -> bool:
    info = by_name.get(name)
    return name in on_bridge and info is not None and info.type != PATCH

"""What the demo reads from the topology file itself, before the controller has it.

The controller owns the topology's meaning; the demo only needs the host the VM ports are
bound to (the agent's ``[agent] host``), a bridge per physical network (``[ovs]
bridge_mappings``), each network's IPv4 prefix length (for the VMs' addresses) and the VLAN of
the external host's network. A topology that lacks what the demo plugs is rejected here, naming
the missing item, rather than failing later with a timeout.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dpagent.lab.demo import expected

DEFAULT_TOPOLOGY = Path(__file__).with_name("topology.yaml")


class LayoutError(Exception):
    """The topology cannot carry the demo; the message names the offending item."""


@dataclass(frozen=True)
class Layout:
    host: str
    bridge_mappings: dict[str, str]  # physnet -> bridge
    prefix_len: dict[str, int]       # network name -> IPv4 prefix length
    vlan: dict[str, int | None]      # network name -> VLAN on the wire (None: untagged)
    physnet: dict[str, str | None]   # network name -> physical network (None: internal)


def bridge_for(physnet: str) -> str:
    return f"br-{physnet}"[:15]


def load(path: Path) -> Layout:
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise LayoutError(f"{path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise LayoutError(f"{path}: not a topology (a mapping with networks and ports)")
    networks = {str(n.get("name")): n for n in _items(doc, "networks", path)}
    ports = {str(p.get("name")): p for p in _items(doc, "ports", path)}
    missing = [name for name in expected.VMS if name not in ports]
    if missing:
        raise LayoutError(f"{path}: the demo plugs ports {', '.join(missing)}, "
                          "which the topology does not define")
    hosts = {ports[name].get("host") for name in expected.VMS}
    if len(hosts) != 1 or None in hosts:
        raise LayoutError(f"{path}: ports {', '.join(expected.VMS)} must all be bound to one "
                          f"host (they have host: {sorted(map(str, hosts))})")
    prefix_len: dict[str, int] = {}
    vlan: dict[str, int | None] = {}
    physnet: dict[str, str | None] = {}
    for name, net in networks.items():
        v4 = [s for s in net.get("subnets") or () if ":" not in str(s.get("cidr", ":"))]
        if v4:
            prefix_len[name] = ipaddress.ip_network(v4[0]["cidr"], strict=False).prefixlen
        physnet[name] = net.get("physnet")
        vlan[name] = net.get("segmentation_id") if net.get("type") == "vlan" else None
    for name in expected.VMS:
        if ports[name].get("network") not in prefix_len:
            raise LayoutError(f"{path}: port {name}'s network {ports[name].get('network')!r} "
                              "has no IPv4 subnet")
    ext = expected.EXTERNAL
    if not physnet.get(ext.network):
        raise LayoutError(f"{path}: the external host sits on network {ext.network}, which "
                          "must exist and have a physnet (a provider network)")
    mappings = {p: bridge_for(p) for p in physnet.values() if p}
    return Layout(str(hosts.pop()), mappings, prefix_len, vlan, physnet)


def _items(doc: dict[str, Any], key: str, path: Path) -> list[dict[str, Any]]:
    items = doc.get(key) or []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise LayoutError(f"{path}: {key} must be a list of mappings")
    return items

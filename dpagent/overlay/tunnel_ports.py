"""The OVSDB side of the overlay: br-tun's tunnel ports (ovsdbapp).

Ports are found by what they are -- an Interface of a tunnel type on br-tun with a
``remote_ip`` -- not by dpagent's own marks, so the ports neutron's agent made are found and
reused (same name, same ofport, so the flows that name them stay right across a swap). A port
whose options differ from what dpagent would write is re-optioned in place, keeping its ofport.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dpagent.overlay.naming import tunnel_interface, tunnel_port_name

KIND_OF_TYPE = {"vxlan": "vxlan", "geneve": "geneve", "gre": "gre", "ip6gre": "gre"}
"""OVS interface type -> the tunnel type neutron and dpagent call it."""


@dataclass(frozen=True, slots=True)
class TunnelPort:
    name: str
    network_type: str
    remote_ip: str
    ofport: int
    options: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class PortSpec:
    """How dpagent makes a tunnel port (see :func:`~dpagent.overlay.naming.tunnel_interface`)."""

    local_ip: str
    vxlan_udp_port: int
    dont_fragment: bool
    csum: bool

    def interface(self, network_type: str, remote_ip: str) -> tuple[str, str, dict[str, str]]:
        kind, options = tunnel_interface(network_type, self.local_ip, remote_ip,
                                         vxlan_udp_port=self.vxlan_udp_port,
                                         dont_fragment=self.dont_fragment, csum=self.csum)
        return tunnel_port_name(network_type, remote_ip), kind, options


class TunnelPorts:
    def __init__(self, api: Any, bridge: str, spec: PortSpec) -> None:
        self.api = api
        self.bridge = bridge
        self.spec = spec

    def inventory(self) -> dict[tuple[str, str], TunnelPort]:
        """The bridge's tunnel ports by (type, remote IP); re-optioned where they differ."""
        names = list(self.api.list_ports(self.bridge).execute(check_error=True))
        if not names:
            return {}
        rows = self.api.db_list("Interface", names, columns=["name", "type", "options", "ofport"],
                                if_exists=True).execute(check_error=True)
        found = {}
        for row in rows:
            kind = KIND_OF_TYPE.get(row["type"] or "")
            options = dict(row["options"] or {})
            remote = options.get("remote_ip")
            if kind is None or not remote:
                continue
            name, wanted_type, wanted = self.spec.interface(kind, remote)
            if name != row["name"]:
                continue  # not a name neutron or dpagent would give: an operator's port
            if options != wanted or row["type"] != wanted_type:
                self.api.db_set("Interface", name, ("type", wanted_type),
                                ("options", wanted)).execute(check_error=True)
            found[(kind, remote)] = TunnelPort(name, kind, remote, _ofport(row["ofport"]),
                                               wanted)
        return found

    def create(self, endpoints: list[tuple[str, str]]) -> dict[tuple[str, str], TunnelPort]:
        """Make tunnel ports to ``endpoints`` in one transaction; their ofports (0 for a port
        OVS could not open: its Interface error says why)."""
        if not endpoints:
            return {}
        specs = {e: self.spec.interface(*e) for e in endpoints}
        with self.api.transaction(check_error=True) as txn:
            for name, kind, options in specs.values():
                txn.add(self.api.add_port(self.bridge, name, may_exist=True, type=kind,
                                          options=options))
        rows = self.api.db_list("Interface", [s[0] for s in specs.values()],
                                columns=["name", "ofport", "error"],
                                if_exists=True).execute(check_error=True)
        by_name = {row["name"]: row for row in rows}
        made = {}
        for endpoint, (name, _, options) in specs.items():
            row = by_name.get(name)
            made[endpoint] = TunnelPort(name, endpoint[0], endpoint[1],
                                        _ofport(row["ofport"]) if row else 0, options)
        return made

    def errors(self, names: list[str]) -> dict[str, str]:
        rows = self.api.db_list("Interface", names, columns=["name", "error"],
                                if_exists=True).execute(check_error=True)
        return {row["name"]: _scalar(row["error"]) or "" for row in rows}

    def delete(self, names: list[str]) -> None:
        if not names:
            return
        with self.api.transaction(check_error=True) as txn:
            for name in names:
                txn.add(self.api.del_port(name, bridge=self.bridge, if_exists=True))


def _scalar(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _ofport(value: Any) -> int:
    ofport = _scalar(value)
    return ofport if isinstance(ofport, int) and ofport > 0 else 0

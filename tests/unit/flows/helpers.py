"""Small builders for compiler inputs in the RPC shape, so tests read as scenarios."""

from __future__ import annotations

from typing import Any


def rule(direction: str = "ingress", ethertype: str = "IPv4", stateful: bool = True,
         **fields: Any) -> dict[str, Any]:
    return {"direction": direction, "ethertype": ethertype, "stateful": stateful, **fields}


def port(ofport: int, *, ips: tuple[str, ...] = (), groups: tuple[str, ...] = ("sg",),
         mac: str | None = None, vlan: int = 1, network: str = "net1",
         port_security: bool = True, pairs: tuple[dict[str, str], ...] = ()) -> dict[str, Any]:
    return {
        "mac_address": mac or f"fa:16:3e:00:00:{ofport:02x}",
        "fixed_ips": list(ips or (f"10.0.0.{ofport}",)),
        "network_id": network, "security_groups": list(groups),
        "port_security_enabled": port_security, "allowed_address_pairs": list(pairs),
        "ofport": ofport, "local_vlan": vlan,
    }


def sg_info(devices: dict[str, dict[str, Any]], groups: dict[str, list[dict[str, Any]]],
            members: dict[str, dict[str, list[list[Any]]]] | None = None,
            networks: dict[str, Any] | None = None) -> dict[str, Any]:
    info: dict[str, Any] = {"devices": devices, "security_groups": groups,
                            "sg_member_ips": members or {}}
    if networks is not None:
        info["networks"] = networks
    return info


def flows_of(result: Any, ofport: int) -> list[str]:
    """Every flow line that mentions the port's ofport as a match (in_port or reg5)."""
    marks = (f"in_port={ofport},", f"reg5={ofport:#x},")
    return [line for line in result.flow_lines() if any(mark in line for mark in marks)]

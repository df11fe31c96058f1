"""neutron's shapes of the controller's model: RPC replies, casts and API resources (pure).

Every function returns a fresh structure in the exact form neutron-server 29 sends
(CONTRACT.md and ``contract/rpc/*.json``), so the agent's validators see realistic input.
The lab's control-plane double builds its replies with the same helpers
(:func:`sg_info_rule`, :func:`dhcp_provider_rules`, :func:`member_ips`), so the two cannot
drift apart.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable, Mapping
from typing import Any

from dpagent.controller.model import (
    AgentRecord,
    Network,
    Port,
    Rule,
    SecurityGroup,
    SubPort,
    Topology,
    Trunk,
)

PROJECT = "fake_project_id"
API_TIME = "%Y-%m-%d %H:%M:%S"
OVO_NAMESPACE = "versionedobjects"


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def api_time(timestamp: float | None) -> str | None:
    """neutron's API time format (UTC, no zone), or None."""
    if not timestamp:
        return None
    return time.strftime(API_TIME, time.gmtime(timestamp))


# -- shared with the lab double -------------------------------------------------------------

def sg_info_rule(rule: Mapping[str, Any], stateful: bool) -> dict[str, Any]:
    """An API-form rule as SG_INFO 1.3 shows it: remote_ip_prefix becomes
    source_ip_prefix (ingress) or dest_ip_prefix (egress); ``stateful`` on every rule."""
    out: dict[str, Any] = {"direction": rule["direction"], "ethertype": rule["ethertype"],
                           "stateful": stateful}
    for key in ("protocol", "port_range_min", "port_range_max", "remote_group_id",
                "remote_address_group_id"):
        if rule.get(key) is not None:
            out[key] = rule[key]
    if rule.get("remote_ip_prefix"):
        prefix = str(ipaddress.ip_network(rule["remote_ip_prefix"], strict=False))
        out["source_ip_prefix" if rule["direction"] == "ingress" else "dest_ip_prefix"] = prefix
    return out


def dhcp_provider_rules(addresses: Iterable[str]) -> list[dict[str, Any]]:
    """The DHCP rules neutron adds to each port's ``security_group_rules`` (rpc/10)."""
    rules: list[dict[str, Any]] = []
    for address in addresses:
        if ipaddress.ip_address(address).version == 4:
            for dest in (f"{address}/32", "255.255.255.255/32"):
                rules.append({"direction": "ingress", "ethertype": "IPv4", "protocol": "udp",
                              "source_port_range_min": 67, "source_port_range_max": 67,
                              "port_range_min": 68, "port_range_max": 68,
                              "dest_ip_prefix": dest})
    rules.append({"direction": "ingress", "ethertype": "IPv6", "protocol": "udp",
                  "source_port_range_min": 547, "source_port_range_max": 547,
                  "port_range_min": 546, "port_range_max": 546, "dest_ip_prefix": "fe80::/64"})
    return rules


def member_ips(members: Iterable[tuple[Iterable[str], Iterable[tuple[str, str | None]]]]
               ) -> dict[str, list[tuple[str, str | None]]]:
    """Remote-group members from (fixed IPs, address pairs with their MAC) of each port:
    ``[ip, None]`` for a fixed IP, ``[ip, mac]`` for a pair, sorted, by ethertype."""
    found: dict[str, set[tuple[str, str | None]]] = {"IPv4": set(), "IPv6": set()}
    for fixed, pairs in members:
        entries: list[tuple[str, str | None]] = [(ip, None) for ip in fixed] + list(pairs)
        for ip, mac in entries:
            version = ipaddress.ip_network(ip, strict=False).version
            found["IPv4" if version == 4 else "IPv6"].add((ip, mac))
    return {e: sorted(found[e], key=lambda m: (m[0], m[1] or "")) for e in found}


# -- API resources ----------------------------------------------------------------------------

def rule_dict(rule: Rule, group: SecurityGroup) -> dict[str, Any]:
    return {"id": rule.id, "security_group_id": group.id, "direction": rule.direction,
            "ethertype": rule.ethertype, "protocol": rule.protocol,
            "port_range_min": rule.port_range_min, "port_range_max": rule.port_range_max,
            "remote_ip_prefix": rule.remote_ip_prefix, "remote_group_id": rule.remote_group_id,
            "remote_address_group_id": rule.remote_address_group_id,
            "normalized_cidr": rule.remote_ip_prefix, "description": "",
            "belongs_to_default_sg": False, "project_id": PROJECT, "tenant_id": PROJECT}


def security_group_dict(group: SecurityGroup) -> dict[str, Any]:
    return {"id": group.id, "name": group.name, "stateful": group.stateful,
            "description": "", "shared": False, "tags": [],
            "security_group_rules": [rule_dict(r, group) for r in group.rules],
            "project_id": PROJECT, "tenant_id": PROJECT}


def network_dict(net: Network) -> dict[str, Any]:
    return {
        "id": net.id, "name": net.name, "admin_state_up": True, "mtu": net.mtu,
        "status": "ACTIVE", "subnets": [s.id for s in net.subnets], "shared": False,
        "provider:network_type": net.network_type,
        "provider:physical_network": net.physical_network,
        "provider:segmentation_id": net.segmentation_id,
        "port_security_enabled": True, "router:external": False,
        "project_id": PROJECT, "tenant_id": PROJECT, "tags": [],
    }


def _vif_type(port: Port) -> str:
    if not port.host:
        return "unbound"
    return "hw_veb" if port.vnic_type == "direct" else "ovs"


def _vif_details(port: Port, network: Network | None) -> dict[str, Any]:
    if not port.host:
        return {}
    if port.vnic_type == "direct":
        return {"connectivity": "l2", "port_filter": False,
                "vlan": str(network.segmentation_id or 0) if network else "0"}
    return {"bound_drivers": {"0": "openvswitch"}, "bridge_name": "br-int",
            "connectivity": "l2", "datapath_type": "system", "ovs_create_tap": True,
            "ovs_hybrid_plug": False, "port_filter": True}


def binding_profile(port: Port) -> dict[str, Any]:
    """``binding:profile``: the VF's PCI address for a direct port (as nova sets it)."""
    return {"pci_slot": port.pci_slot} if port.pci_slot else {}


def trunk_details(topology: Topology, trunk: Trunk) -> dict[str, Any]:
    return {"trunk_id": trunk.id, "sub_ports": [
        {"segmentation_id": s.segmentation_id, "segmentation_type": s.segmentation_type,
         "port_id": s.port_id, "mac_address": topology.ports[s.port_id].mac_address}
        for s in trunk.sub_ports if s.port_id in topology.ports]}


def port_dict(topology: Topology, port: Port, status: str) -> dict[str, Any]:
    """The port as neutron's API, ``port_update`` and the trunk RPC show it."""
    out: dict[str, Any] = {
        "id": port.id, "name": port.name, "network_id": port.network_id,
        "mac_address": port.mac_address, "admin_state_up": port.admin_state_up,
        "status": status, "device_id": "", "device_owner": port.device_owner,
        "fixed_ips": [{"subnet_id": f.subnet_id, "ip_address": f.ip_address}
                      for f in port.fixed_ips],
        "allowed_address_pairs": [{"ip_address": a.ip_address,
                                   "mac_address": a.mac_address or port.mac_address}
                                  for a in port.allowed_address_pairs],
        "security_groups": list(port.security_groups),
        "port_security_enabled": port.port_security_enabled,
        "binding:host_id": port.host or "", "binding:profile": binding_profile(port),
        "binding:vif_type": _vif_type(port), "binding:vnic_type": port.vnic_type,
        "binding:vif_details": _vif_details(port, topology.networks.get(port.network_id)),
        "project_id": PROJECT, "tenant_id": PROJECT, "extra_dhcp_opts": [], "tags": [],
        "description": "", "revision_number": 1,
    }
    trunk = topology.trunk_of_parent(port.id)
    if trunk is not None:
        out["trunk_details"] = trunk_details(topology, trunk)
    return out


def agent_dict(agent: AgentRecord, alive: bool) -> dict[str, Any]:
    """An agent as ``GET /v2.0/agents`` shows it."""
    return {
        "id": agent.id, "agent_type": agent.agent_type, "binary": agent.binary,
        "host": agent.host, "topic": agent.topic, "admin_state_up": agent.admin_state_up,
        "alive": alive, "configurations": agent.configurations,
        "resource_versions": agent.resource_versions, "description": None,
        "availability_zone": None, "resources_synced": None,
        "created_at": api_time(agent.created_at), "started_at": api_time(agent.started_at),
        "heartbeat_timestamp": api_time(agent.heartbeat_at),
    }


# -- RPC replies ------------------------------------------------------------------------------

def device_details(topology: Topology, device: str, host: str) -> dict[str, Any]:
    """One entry of get_devices_details_list_and_failed_devices (CONTRACT.md 1.2).

    A trunk subport shows its own network's segment (rpc/24); a direct port carries its
    PCI slot in ``profile``.
    """
    port = topology.ports.get(device)
    if port is None or not port.host:
        return {"device": device}
    if port.host != host:
        if port.device_owner.startswith("compute:"):
            return {"device": device, "no_active_binding": True}
        return {"device": device}
    net = topology.networks[port.network_id]
    return {
        "device": device, "port_id": port.id, "network_id": net.id,
        "mac_address": port.mac_address, "admin_state_up": port.admin_state_up,
        "network_type": net.network_type, "physical_network": net.physical_network,
        "segmentation_id": net.segmentation_id, "mtu": net.mtu,
        "fixed_ips": [{"subnet_id": f.subnet_id, "ip_address": f.ip_address}
                      for f in port.fixed_ips],
        "device_owner": port.device_owner,
        "allowed_address_pairs": [{"ip_address": a.ip_address,
                                   "mac_address": a.mac_address or port.mac_address}
                                  for a in port.allowed_address_pairs],
        "port_security_enabled": port.port_security_enabled,
        "qos_policy_id": None, "qos_network_policy_id": None,
        "profile": binding_profile(port), "propagate_uplink_status": False,
    }


def group_member_ips(topology: Topology, group_id: str
                     ) -> dict[str, list[tuple[str, str | None]]]:
    """Members of a security group (its ports' addresses) or of an address group."""
    address_group = topology.address_groups.get(group_id)
    if address_group is not None:
        return member_ips([(address_group.addresses, ())])
    return member_ips(
        ([f.ip_address for f in p.fixed_ips],
         [(a.ip_address, a.mac_address or p.mac_address) for a in p.allowed_address_pairs])
        for p in topology.ports.values() if group_id in p.security_groups)


def security_group_info(topology: Topology, devices: Iterable[str], call_version: str | None,
                        statuses: Mapping[str, str]) -> dict[str, Any]:
    """SG_INFO (CONTRACT.md 1.3); the 1.2 plain-IP member form unless call_version >= 1.3.

    Address groups are answered like remote groups: their addresses under
    ``sg_member_ips[address_group_id]`` (with a None MAC), which is where dpagent looks.
    """
    info: dict[str, Any] = {"devices": {}, "security_groups": {}, "sg_member_ips": {}}
    remote: dict[str, set[str]] = {}
    for device in devices:
        port = topology.ports.get(device)
        if port is None:
            continue
        entry = port_dict(topology, port, statuses.get(port.id, "DOWN"))
        entry.update(device=port.id, fixed_ips=[f.ip_address for f in port.fixed_ips],
                     security_group_rules=dhcp_provider_rules(
                         f.ip_address for f in port.fixed_ips),
                     security_group_source_groups=[],
                     security_group_remote_address_groups=[])
        for sg_id in port.security_groups:
            group = topology.security_groups[sg_id]
            info["security_groups"][sg_id] = [
                sg_info_rule(rule_dict(r, group), group.stateful) for r in group.rules]
            for rule in group.rules:
                for gid, key in ((rule.remote_group_id, "security_group_source_groups"),
                                 (rule.remote_address_group_id,
                                  "security_group_remote_address_groups")):
                    if gid:
                        remote.setdefault(gid, set()).add(rule.ethertype)
                        if gid not in entry[key]:
                            entry[key].append(gid)
        info["devices"][port.id] = entry
    legacy = call_version is None or version_tuple(call_version) < (1, 3)
    for gid, ethertypes in remote.items():
        members = group_member_ips(topology, gid)
        if legacy:
            info["sg_member_ips"][gid] = {e: [ip for ip, _ in members[e]]
                                          for e in ("IPv4", "IPv6")}
        else:
            info["sg_member_ips"][gid] = {e: [list(m) for m in members[e]]
                                          for e in sorted(ethertypes)}
    return info


# -- versioned objects (trunks) ---------------------------------------------------------------

def _ovo(name: str, version: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"versioned_object.data": data, "versioned_object.name": name,
            "versioned_object.namespace": OVO_NAMESPACE, "versioned_object.version": version}


def subport_primitive(trunk_id: str, sub: SubPort) -> dict[str, Any]:
    return _ovo("SubPort", "1.0", {"port_id": sub.port_id,
                                   "segmentation_id": sub.segmentation_id,
                                   "segmentation_type": sub.segmentation_type,
                                   "trunk_id": trunk_id})


def trunk_primitive(trunk: Trunk, status: str) -> dict[str, Any]:
    """Trunk 1.1 as ``pull`` (rpc/21) and the ``neutron-vo-Trunk-1.1`` push show it."""
    return _ovo("Trunk", "1.1", {
        "admin_state_up": True, "description": "", "id": trunk.id, "name": trunk.name,
        "port_id": trunk.port_id, "project_id": PROJECT, "revision_number": 0,
        "status": status,
        "sub_ports": [subport_primitive(trunk.id, s) for s in trunk.sub_ports]})

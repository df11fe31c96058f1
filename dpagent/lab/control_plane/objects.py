"""The double's objects as neutron-server 29 shows them to a cache-backed agent: versioned-
object primitives (Port 1.11, Network 1.3, Subnet 1.2, SecurityGroup 1.6, SecurityGroupRule
1.3; CONTRACT.md 1.5, ``contract/rpc/13-20``) and ``bulk_pull``'s filters. Pure functions over
the model's records."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from typing import Any

from dpagent.controller.objects import pull_filter
from dpagent.lab.control_plane.model import ControlPlaneModel, Network, Port, SecurityGroup


def ovo(name: str, version: str, data: dict[str, Any]) -> dict[str, Any]:
    """A primitive; None fields are left out, as neutron leaves them out."""
    return {"versioned_object.name": name, "versioned_object.namespace": "versionedobjects",
            "versioned_object.version": version,
            "versioned_object.data": {k: v for k, v in data.items() if v is not None}}


def segment(net: Network) -> dict[str, Any]:
    return ovo("NetworkSegment", "1.0", {
        "id": f"segment-{net.id}", "network_id": net.id, "network_type": net.network_type,
        "physical_network": net.physical_network, "segmentation_id": net.segmentation_id,
        "segment_index": 0, "is_dynamic": False, "hosts": [], "revision_number": 0})


def port_object(port: Port, net: Network) -> dict[str, Any]:
    host = port.host or ""
    details = {"connectivity": "l2", "port_filter": True, "ovs_hybrid_plug": False,
               "datapath_type": "system", "bridge_name": "br-int"}
    binding = ovo("PortBinding", "1.0", {
        "port_id": port.id, "host": host, "profile": "{}", "status": "ACTIVE",
        "vif_type": "ovs" if host else "unbound",
        "vif_details": json.dumps(details) if host else "{}", "vnic_type": "normal"})
    levels = [ovo("PortBindingLevel", "1.1", {
        "port_id": port.id, "host": host, "level": 0, "driver": "openvswitch",
        "segment": segment(net), "segment_id": f"segment-{net.id}"})] if host else []
    return ovo("Port", "1.11", {
        "id": port.id, "name": port.name, "revision_number": port.revision,
        "network_id": port.network_id, "mac_address": port.mac_address,
        "admin_state_up": port.admin_state_up, "status": port.status,
        "device_owner": port.device_owner, "device_id": port.device_id,
        "project_id": "fake_project_id", "security_group_ids": sorted(port.security_groups),
        "fixed_ips": [ovo("IPAllocation", "1.0", {
            "port_id": port.id, "network_id": port.network_id, "subnet_id": f["subnet_id"],
            "ip_address": f["ip_address"]}) for f in port.fixed_ips],
        "allowed_address_pairs": [ovo("AllowedAddressPair", "1.1", {
            "port_id": port.id, "ip_address": a["ip_address"],
            "mac_address": a.get("mac_address") or port.mac_address})
            for a in port.allowed_address_pairs],
        "security": ovo("PortSecurity", "1.0", {
            "id": port.id, "port_security_enabled": port.port_security_enabled}),
        "bindings": [binding], "binding_levels": levels})


def deleted_port(port: Port) -> dict[str, Any]:
    """What a port delete pushes (CONTRACT.md 2.2: the id, little else)."""
    return ovo("Port", "1.11", {"id": port.id, "qos_policy_id": None,
                                "security_group_ids": None})


def network_object(net: Network) -> dict[str, Any]:
    return ovo("Network", "1.3", {
        "id": net.id, "name": net.name, "revision_number": net.revision, "mtu": net.mtu,
        "admin_state_up": net.admin_state_up, "status": "ACTIVE", "shared": False,
        "project_id": "fake_project_id", "segments": [segment(net)]})


def subnet_object(net: Network) -> dict[str, Any]:
    return ovo("Subnet", "1.2", {
        "id": net.subnet_id, "network_id": net.id, "cidr": net.cidr, "revision_number": 0,
        "ip_version": ipaddress.ip_network(net.cidr).version, "project_id": "fake_project_id"})


def rule_object(sg_id: str, rule: dict[str, Any]) -> dict[str, Any]:
    prefix = rule.get("remote_ip_prefix")
    return ovo("SecurityGroupRule", "1.3", {
        "id": rule["id"], "security_group_id": sg_id, "revision_number": 0,
        "direction": rule["direction"], "ethertype": rule["ethertype"],
        "protocol": rule.get("protocol"), "port_range_min": rule.get("port_range_min"),
        "port_range_max": rule.get("port_range_max"), "remote_ip_prefix": prefix,
        "normalized_cidr": str(ipaddress.ip_network(prefix, strict=False)) if prefix else None,
        "remote_group_id": rule.get("remote_group_id"),
        "remote_address_group_id": rule.get("remote_address_group_id"),
        "belongs_to_default_sg": False, "project_id": "fake_project_id"})


def group_object(group: SecurityGroup) -> dict[str, Any]:
    return ovo("SecurityGroup", "1.6", {
        "id": group.id, "revision_number": group.revision, "stateful": group.stateful,
        "project_id": "fake_project_id", "is_default": False,
        "rules": [rule_object(group.id, r) for r in group.rules]})


def bulk_pull(model: ControlPlaneModel, resource_type: str,
              filters: dict[str, Iterable[str]]) -> list[dict[str, Any]]:
    """``bulk_pull`` over the model with the filters neutron's agent uses (CONTRACT.md 1.5)."""
    matches = pull_filter(filters)
    with model.lock:
        if resource_type == "Port":
            return [port_object(p, model.networks[p.network_id]) for p in model.ports.values()
                    if matches({"id": p.id, "security_group_ids": p.security_groups,
                                "network_id": p.network_id})]
        if resource_type == "Network":
            return [network_object(n) for n in model.networks.values()
                    if matches({"id": n.id})]
        if resource_type == "Subnet":
            return [subnet_object(n) for n in model.networks.values()
                    if matches({"id": n.subnet_id, "network_id": n.id})]
        if resource_type == "SecurityGroup":
            return [group_object(g) for g in model.groups.values() if matches({"id": g.id})]
        if resource_type == "SecurityGroupRule":
            return [rule_object(g.id, r) for g in model.groups.values() for r in g.rules
                    if matches({"id": r["id"], "security_group_id": g.id})]
        return []  # AddressGroup and others: the double has none

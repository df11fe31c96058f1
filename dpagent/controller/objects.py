"""The topology as neutron-server 29 shows it to a cache-backed agent: versioned-object
primitives (Port 1.11, Network 1.3, Subnet 1.2, SecurityGroup 1.6, SecurityGroupRule 1.3,
AddressGroup 1.2; CONTRACT.md 1.5), ``bulk_pull``'s filters, and the OVO pushes of a change
(2.2: ``neutron-vo-<Type>-<version>``, method ``push``). Pure.

Revisions: neutron numbers each object's changes; the controller gives an object the
generation of the topology that last changed it (:class:`Revisions`: microseconds since the
epoch, strictly increasing, so they keep growing across the controller's restarts).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from dpagent.controller.model import (
    AddressGroup,
    Network,
    Port,
    Rule,
    SecurityGroup,
    Topology,
)
from dpagent.controller.notifier import PUSH_VERSION, Cast
from dpagent.controller.views import PROJECT, binding_profile

VERSIONS: Final = {"Port": "1.11", "Network": "1.3", "Subnet": "1.2", "SecurityGroup": "1.6",
                   "SecurityGroupRule": "1.3", "AddressGroup": "1.2"}


def ovo(name: str, data: dict[str, Any]) -> dict[str, Any]:
    """A primitive; None fields are left out, as neutron leaves them out."""
    return {"versioned_object.name": name, "versioned_object.namespace": "versionedobjects",
            "versioned_object.version": VERSIONS.get(name, "1.0"),
            "versioned_object.data": {k: v for k, v in data.items() if v is not None}}


class Revisions:
    """Each object's revision: the generation of the topology that last changed it."""

    def __init__(self) -> None:
        self.of: dict[str, int] = {}
        self._last = 0
        self.generation_now = 0
        """the generation of the last change: deletions carry it as their revision"""

    def generation(self) -> int:
        self._last = max(self._last + 1, time.time_ns() // 1000)
        return self._last

    def advance(self, old: Topology | None, new: Topology) -> int:
        """Give every object of ``new`` that is new or changed (and every one, the first
        time) a new revision; the generation used."""
        generation = self.generation()
        for kind, objects in new.by_kind().items():
            before = old.by_kind()[kind] if old is not None else {}
            for obj_id, obj in objects.items():
                if obj_id not in self.of or before.get(obj_id) != obj:
                    self.of[obj_id] = generation
        old_rules = {r.id: r for g in (old.security_groups.values() if old else ())
                     for r in g.rules}
        for rule in (r for g in new.security_groups.values() for r in g.rules):
            if rule.id not in self.of or old_rules.get(rule.id) != rule:
                self.of[rule.id] = generation
        self.generation_now = generation
        return generation

    def bump(self, obj_id: str) -> int:
        self.of[obj_id] = self.generation()
        return self.of[obj_id]


def _segment(net: Network) -> dict[str, Any]:
    return ovo("NetworkSegment", {
        "id": f"segment-{net.id}", "network_id": net.id, "network_type": net.network_type,
        "physical_network": net.physical_network, "segmentation_id": net.segmentation_id,
        "segment_index": 0, "is_dynamic": False, "hosts": [], "revision_number": 0})


def port_object(topology: Topology, port: Port, status: str, revision: int) -> dict[str, Any]:
    net = topology.networks.get(port.network_id)
    host = port.host or ""
    vif_type = "unbound" if not host else ("hw_veb" if port.vnic_type == "direct" else "ovs")
    binding = ovo("PortBinding", {
        "port_id": port.id, "host": host, "status": "ACTIVE", "vif_type": vif_type,
        "vnic_type": port.vnic_type, "profile": json.dumps(binding_profile(port)),
        "vif_details": "{}"})
    levels = [ovo("PortBindingLevel", {
        "port_id": port.id, "host": host, "level": 0,
        "driver": "sriovnicswitch" if port.vnic_type == "direct" else "openvswitch",
        "segment": _segment(net), "segment_id": f"segment-{net.id}"})] \
        if host and net is not None else []
    return ovo("Port", {
        "id": port.id, "name": port.name, "revision_number": revision,
        "network_id": port.network_id, "mac_address": port.mac_address,
        "admin_state_up": port.admin_state_up, "status": status,
        "device_owner": port.device_owner, "device_id": "", "project_id": PROJECT,
        "security_group_ids": sorted(port.security_groups),
        "fixed_ips": [ovo("IPAllocation", {
            "port_id": port.id, "network_id": port.network_id, "subnet_id": f.subnet_id,
            "ip_address": f.ip_address}) for f in port.fixed_ips],
        "allowed_address_pairs": [ovo("AllowedAddressPair", {
            "port_id": port.id, "ip_address": a.ip_address,
            "mac_address": a.mac_address or port.mac_address})
            for a in port.allowed_address_pairs],
        "security": ovo("PortSecurity", {"id": port.id,
                                         "port_security_enabled": port.port_security_enabled}),
        "bindings": [binding], "binding_levels": levels})


def network_object(net: Network, revision: int) -> dict[str, Any]:
    return ovo("Network", {"id": net.id, "name": net.name, "revision_number": revision,
                           "mtu": net.mtu, "admin_state_up": True, "status": "ACTIVE",
                           "project_id": PROJECT, "segments": [_segment(net)]})


def subnet_objects(net: Network) -> list[dict[str, Any]]:
    return [ovo("Subnet", {"id": s.id, "network_id": net.id, "cidr": s.cidr,
                           "gateway_ip": s.gateway_ip, "revision_number": 0,
                           "project_id": PROJECT}) for s in net.subnets]


def rule_object(group_id: str, rule: Rule, revision: int) -> dict[str, Any]:
    return ovo("SecurityGroupRule", {
        "id": rule.id, "security_group_id": group_id, "revision_number": revision,
        "direction": rule.direction, "ethertype": rule.ethertype, "protocol": rule.protocol,
        "port_range_min": rule.port_range_min, "port_range_max": rule.port_range_max,
        "remote_ip_prefix": rule.remote_ip_prefix, "normalized_cidr": rule.remote_ip_prefix,
        "remote_group_id": rule.remote_group_id,
        "remote_address_group_id": rule.remote_address_group_id,
        "belongs_to_default_sg": False, "project_id": PROJECT})


def group_object(group: SecurityGroup, revisions: Revisions) -> dict[str, Any]:
    return ovo("SecurityGroup", {
        "id": group.id, "name": group.name, "revision_number": revisions.of.get(group.id, 0),
        "stateful": group.stateful, "project_id": PROJECT, "is_default": False,
        "rules": [rule_object(group.id, r, revisions.of.get(r.id, 0)) for r in group.rules]})


def address_group_object(ag: AddressGroup, revision: int) -> dict[str, Any]:
    return ovo("AddressGroup", {
        "id": ag.id, "name": ag.name, "revision_number": revision, "project_id": PROJECT,
        "addresses": [ovo("AddressAssociation", {"address": a, "address_group_id": ag.id})
                      for a in ag.addresses]})


def pull_filter(filters: Mapping[str, Iterable[str]]) -> Callable[[Mapping[str, Any]], bool]:
    """Whether an object's fields match ``bulk_pull``'s ``filter_kwargs`` as neutron matches
    them: every key, a scalar among the values, a list (``security_group_ids``) sharing one."""
    wanted = {key: set(values) for key, values in filters.items()}

    def matches(values: Mapping[str, Any]) -> bool:
        for key, allowed in wanted.items():
            value = values.get(key)
            if isinstance(value, tuple | list | set | frozenset):
                if not set(value) & allowed:
                    return False
            elif value not in allowed:
                return False
        return True
    return matches


def bulk_pull(topology: Topology, revisions: Revisions, statuses: Mapping[str, str],
              resource_type: str, filters: Mapping[str, Iterable[str]]) -> list[dict[str, Any]]:
    """``bulk_pull`` with the filters neutron's agent uses (CONTRACT.md 1.5)."""
    matches = pull_filter(filters)
    rev = revisions.of
    if resource_type == "Port":
        return [port_object(topology, p, statuses.get(p.id, "DOWN"), rev.get(p.id, 0))
                for p in topology.ports.values()
                if matches({"id": p.id, "security_group_ids": p.security_groups,
                            "network_id": p.network_id})]
    if resource_type == "Network":
        return [network_object(n, rev.get(n.id, 0)) for n in topology.networks.values()
                if matches({"id": n.id})]
    if resource_type == "Subnet":
        return [s for n in topology.networks.values() for s in subnet_objects(n)
                if matches({"id": s["versioned_object.data"]["id"], "network_id": n.id})]
    if resource_type == "SecurityGroup":
        return [group_object(g, revisions) for g in topology.security_groups.values()
                if matches({"id": g.id})]
    if resource_type == "SecurityGroupRule":
        return [rule_object(g.id, r, rev.get(r.id, 0)) for g in topology.security_groups.values()
                for r in g.rules if matches({"id": r.id, "security_group_id": g.id})]
    if resource_type == "AddressGroup":
        return [address_group_object(a, rev.get(a.id, 0))
                for a in topology.address_groups.values() if matches({"id": a.id})]
    return []


def _push(resource_type: str, event: str, objects: list[dict[str, Any]]) -> Cast:
    return Cast(f"neutron-vo-{resource_type}-{VERSIONS[resource_type]}", "push", PUSH_VERSION,
                {"resource_list": objects, "event_type": event})


def _ports_view(port: Port) -> Port:
    return dataclasses.replace(port, name="")


def pushes(old: Topology, new: Topology, revisions: Revisions, statuses: Mapping[str, str]
           ) -> list[Cast]:
    """The OVO pushes of the change from ``old`` to ``new`` (one object each, as the server
    sends them), after ``revisions.advance``."""
    casts: list[Cast] = []
    rev = revisions.of
    gone = revisions.generation_now  # the deletions' revision: a re-creation comes later
    for net_id, net in sorted(new.networks.items()):
        if old.networks.get(net_id) != net:
            casts.append(_push("Network", "updated", [network_object(net, rev[net_id])]))
    for group_id, group in sorted(new.security_groups.items()):
        before = old.security_groups.get(group_id)
        if before is not None and before.stateful != group.stateful:
            casts.append(_push("SecurityGroup", "updated", [group_object(group, revisions)]))
        old_rules = {r.id: r for r in before.rules} if before is not None else {}
        for rule in group.rules:
            if old_rules.get(rule.id) != rule:
                casts.append(_push("SecurityGroupRule", "updated",
                                   [rule_object(group_id, rule, rev.get(rule.id, 0))]))
        for rule_id in sorted(set(old_rules) - {r.id for r in group.rules}):
            casts.append(_push("SecurityGroupRule", "deleted", [ovo("SecurityGroupRule", {
                "id": rule_id, "belongs_to_default_sg": False, "revision_number": gone})]))
    for ag_id, ag in sorted(new.address_groups.items()):
        if old.address_groups.get(ag_id) != ag:
            casts.append(_push("AddressGroup", "updated",
                               [address_group_object(ag, rev[ag_id])]))
    for port_id, port in sorted(new.ports.items()):
        before_port = old.ports.get(port_id)
        if before_port is None or _ports_view(before_port) != _ports_view(port):
            casts.append(_push("Port", "updated", [port_object(
                new, port, statuses.get(port_id, "DOWN"), rev[port_id])]))
    for port_id in sorted(set(old.ports) - set(new.ports)):
        casts.append(_push("Port", "deleted", [ovo("Port", {
            "id": port_id, "security_group_ids": None, "revision_number": gone})]))
    for group_id in sorted(set(old.security_groups) - set(new.security_groups)):
        casts.append(_push("SecurityGroup", "deleted", [ovo("SecurityGroup", {
            "id": group_id, "revision_number": gone})]))
    for ag_id in sorted(set(old.address_groups) - set(new.address_groups)):
        casts.append(_push("AddressGroup", "deleted", [ovo("AddressGroup", {
            "id": ag_id, "revision_number": gone})]))
    for net_id in sorted(set(old.networks) - set(new.networks)):
        casts.append(_push("Network", "deleted", [ovo("Network", {
            "id": net_id, "revision_number": gone})]))
    return casts

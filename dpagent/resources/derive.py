"""The server's two answers the agent core works from, derived from the cache with the meaning
neutron-server 29 gives them (``ml2/rpc.py`` ``get_device_details``; ``SecurityGroupInfoAPIMixin
.security_group_info_for_ports`` as neutron's agent-side shim runs it over its cache). Pure.

* device details: ``{'device': id}`` for a port unknown or not bound (no bound segment);
  ``{'device': id, 'no_active_binding': True}`` for a Nova port whose active binding is on
  another host; else the entry with its segment (the deepest binding level of the active
  binding's host), MTU, fixed IPs, address pairs, port security, profile;
* security-group info (SG_INFO 1.3): the devices (trusted ``network:*`` ports left out), each
  group of theirs with its rules in the server's form (``remote_ip_prefix`` as
  ``source_ip_prefix`` / ``dest_ip_prefix`` by direction, the normalised CIDR if there is one,
  ``stateful`` from the group) and, for each remote group a rule names, its members' addresses
  (fixed IPs and address pairs, with their MACs) under the ethertypes the rules use it with;
  an address group's addresses likewise. Each rule carries its ``id``, which the server's
  reply leaves out. Two keys the server's reply does not have: ``member_networks`` (remote
  group -> member address -> the networks of the ports holding it) and ``network_subnets``
  (the devices' networks -> their CIDRs), with which the compiler keeps a member's address
  from matching on a network where it cannot legitimately arrive
  (:mod:`flows.remote_groups`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dpagent.resources.cache import ResourceCache
from dpagent.resources.objects import PortObject, RuleObject

COMPUTE_PREFIX = "compute:"
TRUSTED_PREFIX = "network:"
DIRECTION_IP_PREFIX = {"ingress": "source_ip_prefix", "egress": "dest_ip_prefix"}


def device_details(cache: ResourceCache, port_id: str, host: str) -> dict[str, Any]:
    port = cache.ports.get(port_id)
    if port is None:
        return {"device": port_id}
    binding = port.active_binding()
    segment = port.segment_on(binding.host) if binding is not None else None
    if binding is None or segment is None:
        return {"device": port_id}
    if port.device_owner.startswith(COMPUTE_PREFIX) and binding.host != host:
        return {"device": port_id, "no_active_binding": True}
    network = cache.networks.get(port.network_id)
    return {
        "device": port_id,
        "network_id": port.network_id,
        "port_id": port.id,
        "mac_address": port.mac_address,
        "admin_state_up": port.admin_state_up,
        "network_type": segment.network_type,
        "segmentation_id": segment.segmentation_id,
        "physical_network": segment.physical_network,
        "mtu": network.mtu if network is not None else None,
        "fixed_ips": [{"subnet_id": subnet, "ip_address": ip} for ip, subnet in port.fixed_ips],
        "device_owner": port.device_owner,
        "allowed_address_pairs": [{"ip_address": ip, "mac_address": mac or port.mac_address}
                                  for ip, mac in port.address_pairs],
        "port_security_enabled": port.port_security_enabled,
        "qos_policy_id": port.qos_policy_id,
        "qos_network_policy_id": network.qos_policy_id if network is not None else None,
        "profile": dict(binding.profile),
        "security_groups": sorted(port.security_group_ids),
    }


def _rule_dict(rule: RuleObject) -> dict[str, Any]:
    """A rule as ``security_group_info_for_ports`` writes it (``stateful`` added later), with
    its ``id``, which the server's reply leaves out: a trace or an error can then name it."""
    entry: dict[str, Any] = {"id": rule.id, "direction": rule.direction,
                             "ethertype": rule.ethertype}
    if rule.protocol is not None:
        entry["protocol"] = rule.protocol
    if rule.port_range_min is not None:
        entry["port_range_min"] = rule.port_range_min
    if rule.port_range_max is not None:
        entry["port_range_max"] = rule.port_range_max
    if rule.remote_ip_prefix is not None:
        entry[DIRECTION_IP_PREFIX[rule.direction]] = rule.normalized_cidr or rule.remote_ip_prefix
    if rule.remote_group_id is not None:
        entry["remote_group_id"] = rule.remote_group_id
    if rule.remote_address_group_id is not None:
        entry["remote_address_group_id"] = rule.remote_address_group_id
    return entry


def _device(port: PortObject) -> dict[str, Any]:
    return {
        "id": port.id, "device": port.id, "network_id": port.network_id,
        "mac_address": port.mac_address, "admin_state_up": port.admin_state_up,
        "device_owner": port.device_owner,
        "fixed_ips": [ip for ip, _ in port.fixed_ips],
        "allowed_address_pairs": [{"ip_address": ip, "mac_address": mac or port.mac_address}
                                  for ip, mac in port.address_pairs],
        "security_groups": sorted(port.security_group_ids),
        "port_security_enabled": port.port_security_enabled,
        "security_group_rules": [],
        "security_group_source_groups": [],
        "security_group_remote_address_groups": [],
    }


def _member_addresses(port: PortObject) -> list[tuple[str, str]]:
    return [(ip, port.mac_address) for ip, _ in port.fixed_ips] + \
        [(ip, mac or port.mac_address) for ip, mac in port.address_pairs]


def _ethertype(address: str) -> str:
    """The cache's addresses were checked when they came in (an address or network of either
    family): in that form only IPv6 has a colon. Parsing each member's address again cost
    milliseconds per 5,000-member group."""
    return "IPv6" if ":" in address else "IPv4"


def remote_group_members(cache: ResourceCache, remote: Mapping[str, Iterable[str]]
                         ) -> tuple[dict[str, dict[str, list[list[str | None]]]],
                                    dict[str, dict[str, list[str]]]]:
    """``sg_member_ips`` and ``member_networks`` of the remote groups in ``remote`` (group ->
    the ethertypes its rules use it with), as :func:`security_group_info` gives them."""
    members: dict[str, dict[str, list[list[str | None]]]] = {}
    member_networks: dict[str, dict[str, list[str]]] = {}
    for group_id, ethertypes in remote.items():
        found: dict[str, set[tuple[str, str | None]]] = {e: set() for e in ethertypes}
        origins: dict[str, set[str]] = {}
        ports = cache.ports
        for port_id in cache.members.get(group_id, ()):  # sorted below: any order here
            member = ports[port_id]
            network = member.network_id
            for ip, mac in _member_addresses(member):
                family = found.get("IPv6" if ":" in ip else "IPv4")
                if family is not None:
                    family.add((ip, mac))
                    held = origins.get(ip)
                    if held is None:
                        origins[ip] = {network}
                    else:
                        held.add(network)
        members[group_id] = {e: [list(p) for p in sorted(v)] for e, v in found.items()}
        member_networks[group_id] = {ip: sorted(n) if len(n) > 1 else list(n)
                                     for ip, n in sorted(origins.items())}
    return members, member_networks


def members_of(cache: ResourceCache, group_ids: Iterable[str]) -> dict[str, Any]:
    """Only the members of ``group_ids`` (a member change): the keys of
    :func:`security_group_info` that hold them, for the remote groups the local ports' rules
    name, under the ethertypes they name them with -- what the full answer would say of them,
    without its devices and rules."""
    wanted = set(group_ids)
    remote: dict[str, set[str]] = {}
    used = {sg for port_id in cache.interest.local_ports
            if (port := cache.ports.get(port_id)) is not None
            and not port.device_owner.startswith(TRUSTED_PREFIX)
            for sg in port.security_group_ids}
    for sg_id in used:
        for rule in cache.rules_in(sg_id):
            if rule.remote_group_id in wanted:
                remote.setdefault(rule.remote_group_id, set()).add(rule.ethertype)
    members, member_networks = remote_group_members(cache, remote)
    return {"sg_member_ips": members, "member_networks": member_networks}


def security_group_info(cache: ResourceCache, port_ids: Iterable[str]) -> dict[str, Any]:
    devices: dict[str, dict[str, Any]] = {}
    for port_id in port_ids:
        port = cache.ports.get(port_id)
        if port is None or port.device_owner.startswith(TRUSTED_PREFIX):
            continue
        devices[port_id] = _device(port)
    groups: dict[str, list[dict[str, Any]]] = {}
    remote: dict[str, set[str]] = {}
    address: dict[str, set[str]] = {}
    for device in devices.values():
        for sg_id in device["security_groups"]:
            rules = groups.setdefault(sg_id, [])
            for rule in cache.rules_in(sg_id):
                if rule.remote_group_id is not None:
                    if rule.remote_group_id not in device["security_group_source_groups"]:
                        device["security_group_source_groups"].append(rule.remote_group_id)
                    remote.setdefault(rule.remote_group_id, set()).add(rule.ethertype)
                elif rule.remote_address_group_id is not None:
                    ags = device["security_group_remote_address_groups"]
                    if rule.remote_address_group_id not in ags:
                        ags.append(rule.remote_address_group_id)
                    address.setdefault(rule.remote_address_group_id, set()).add(rule.ethertype)
                entry = _rule_dict(rule)
                if entry not in rules:
                    rules.append(entry)
    for sg_id, rules in groups.items():
        group = cache.groups.get(sg_id)
        stateful = group.stateful if group is not None else True
        for entry in rules:
            entry["stateful"] = stateful
    members, member_networks = remote_group_members(cache, remote)
    for ag_id, ethertypes in address.items():
        found: dict[str, set[tuple[str, str | None]]] = {e: set() for e in ethertypes}
        ag = cache.address_groups.get(ag_id)
        for ip in (ag.addresses if ag is not None else ()):
            if _ethertype(ip) in found:
                found[_ethertype(ip)].add((ip, None))
        members[ag_id] = {e: [list(p) for p in sorted(v, key=lambda x: x[0])]
                          for e, v in found.items()}
    subnets = {network_id: sorted(cache.subnets[s].cidr
                                  for s in cache.subnets_of.get(network_id, ()))
               for network_id in sorted({d["network_id"] for d in devices.values()})}
    return {"devices": devices, "security_groups": groups, "sg_member_ips": members,
            "member_networks": member_networks, "network_subnets": subnets}

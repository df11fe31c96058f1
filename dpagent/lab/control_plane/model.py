"""The double's state: networks, ports, security groups, agents -- and neutron's views of them.

Each view (``device_details``, ``security_group_info``, ``port_dict``...) builds the exact
shape neutron-server 29 sends (CONTRACT.md, ``contract/rpc/*.json``), so the agent's
validators and the flows parser see realistic input.
"""

from __future__ import annotations

import copy
import ipaddress
import itertools
import os
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dpagent.controller.agents import heartbeat_result
from dpagent.controller.views import (
    dhcp_provider_rules,
    member_ips,
    sg_info_rule,
    version_tuple,
)
from dpagent.rpc import topics


def new_id() -> str:
    return str(uuid.uuid4())


def random_mac() -> str:
    return "fa:16:3e:" + ":".join(f"{b:02x}" for b in os.urandom(3))


# -- model -------------------------------------------------------------------------------------

@dataclass
class Network:
    id: str
    name: str
    cidr: str
    subnet_id: str
    network_type: str = "vlan"
    physical_network: str | None = "physnet1"
    segmentation_id: int | None = None
    mtu: int = 1500
    admin_state_up: bool = True
    revision: int = 1


@dataclass
class Port:
    id: str
    network_id: str
    mac_address: str
    fixed_ips: list[dict[str, str]]
    host: str | None = None
    security_groups: list[str] = field(default_factory=list)
    admin_state_up: bool = True
    port_security_enabled: bool = True
    allowed_address_pairs: list[dict[str, str]] = field(default_factory=list)
    device_owner: str = "compute:nova"
    device_id: str = ""
    status: str = "DOWN"
    name: str = ""
    revision: int = 1


@dataclass
class SecurityGroup:
    id: str
    stateful: bool = True
    rules: list[dict[str, Any]] = field(default_factory=list)  # API form, with "id"
    revision: int = 1


@dataclass
class AgentRecord:
    agent_type: str
    host: str
    admin_state_up: bool = True
    heartbeats: list[float] = field(default_factory=list)
    started_at: float | None = None
    state: dict[str, Any] = field(default_factory=dict)  # the last STATE reported
    resource_versions: dict[str, str] | None = None


@dataclass
class ReceivedCall:
    topic: str
    method: str
    version: str
    namespace: str | None
    kwargs: dict[str, Any]
    context: dict[str, Any]
    at: float
    reply: Any = None
    error: str | None = None


class ControlPlaneModel:
    """The state behind the replies.  All methods take the model's lock."""

    def __init__(self, agent_down_time: float = 75.0) -> None:
        self.lock = threading.RLock()
        self.agent_down_time = agent_down_time
        self.networks: dict[str, Network] = {}
        self.ports: dict[str, Port] = {}
        self.groups: dict[str, SecurityGroup] = {}
        self.agents: dict[tuple[str, str], AgentRecord] = {}
        self._vlans = itertools.count(100)

    # -- building -----------------------------------------------------------------------------

    def add_network(self, name: str = "", *, cidr: str | None = None, **fields: Any) -> Network:
        with self.lock:
            n = len(self.networks)
            net = Network(id=fields.pop("id", new_id()), name=name or f"net{n}",
                          cidr=cidr or f"10.{n // 250}.{n % 250}.0/24", subnet_id=new_id(),
                          **fields)
            if net.segmentation_id is None and net.network_type == "vlan":
                net.segmentation_id = next(self._vlans)
            self.networks[net.id] = net
            return net

    def add_security_group(self, *, stateful: bool = True, sg_id: str | None = None
                           ) -> SecurityGroup:
        with self.lock:
            group = SecurityGroup(sg_id or new_id(), stateful)
            self.groups[group.id] = group
            return group

    def add_port(self, network_id: str, *, ip: str | None = None, **fields: Any) -> Port:
        with self.lock:
            net = self.networks[network_id]
            used = {f["ip_address"] for p in self.ports.values() for f in p.fixed_ips}
            if ip is None:
                hosts = ipaddress.ip_network(net.cidr).hosts()
                ip = next(str(a) for a in itertools.islice(hosts, 1, None) if str(a) not in used)
            port = Port(id=fields.pop("id", new_id()), network_id=network_id,
                        mac_address=fields.pop("mac_address", random_mac()),
                        fixed_ips=[{"subnet_id": net.subnet_id, "ip_address": ip}], **fields)
            self.ports[port.id] = port
            return port

    # -- neutron's views ----------------------------------------------------------------------

    def port_dict(self, port: Port) -> dict[str, Any]:
        """The port as neutron's API (and port_update) shows it."""
        return {
            "id": port.id, "name": port.name, "network_id": port.network_id,
            "mac_address": port.mac_address, "admin_state_up": port.admin_state_up,
            "status": port.status, "device_id": port.device_id,
            "device_owner": port.device_owner, "fixed_ips": copy.deepcopy(port.fixed_ips),
            "allowed_address_pairs": copy.deepcopy(port.allowed_address_pairs),
            "security_groups": list(port.security_groups),
            "port_security_enabled": port.port_security_enabled,
            "binding:host_id": port.host or "", "binding:profile": {},
            "binding:vif_type": "ovs" if port.host else "unbound",
            "binding:vnic_type": "normal",
            "binding:vif_details": {"bridge_name": "br-int", "connectivity": "l2",
                                    "datapath_type": "system", "ovs_hybrid_plug": False,
                                    "port_filter": True} if port.host else {},
            "project_id": "fake_project_id", "tenant_id": "fake_project_id",
            "extra_dhcp_opts": [], "tags": [], "description": "", "revision_number": 1,
        }

    def network_dict(self, net: Network) -> dict[str, Any]:
        return {
            "id": net.id, "name": net.name, "admin_state_up": net.admin_state_up,
            "mtu": net.mtu, "status": "ACTIVE", "subnets": [net.subnet_id], "shared": False,
            "provider:network_type": net.network_type,
            "provider:physical_network": net.physical_network,
            "provider:segmentation_id": net.segmentation_id,
            "port_security_enabled": True, "router:external": False,
            "project_id": "fake_project_id", "tenant_id": "fake_project_id", "tags": [],
        }

    def device_details(self, device: str, host: str) -> dict[str, Any]:
        """One entry of get_devices_details_list_and_failed_devices (CONTRACT.md 1.2)."""
        with self.lock:
            port = self.ports.get(device)
            if port is None or not port.host:
                return {"device": device}
            if port.host != host:
                if port.device_owner.startswith("compute:"):
                    return {"device": device, "no_active_binding": True}
                return {"device": device}
            net = self.networks[port.network_id]
            # the real server's side effect on every fetch, ACTIVE ports included
            port.status = "BUILD" if port.admin_state_up else "DOWN"
            return {
                "device": device, "port_id": port.id, "network_id": net.id,
                "mac_address": port.mac_address, "admin_state_up": port.admin_state_up,
                "network_type": net.network_type, "physical_network": net.physical_network,
                "segmentation_id": net.segmentation_id, "mtu": net.mtu,
                "fixed_ips": copy.deepcopy(port.fixed_ips), "device_owner": port.device_owner,
                "allowed_address_pairs": copy.deepcopy(port.allowed_address_pairs),
                "port_security_enabled": port.port_security_enabled,
                "qos_policy_id": None, "qos_network_policy_id": None, "profile": {},
                "propagate_uplink_status": False,
            }

    def security_group_info(self, devices: Iterable[str], call_version: str | None
                            ) -> dict[str, Any]:
        """SG_INFO (CONTRACT.md 1.3); the 1.2 plain-IP member form unless call_version>=1.3."""
        with self.lock:
            info: dict[str, Any] = {"devices": {}, "security_groups": {}, "sg_member_ips": {}}
            remote: dict[str, set[str]] = {}
            for device in devices:
                port = self.ports.get(device)
                if port is None:
                    continue
                entry = self.port_dict(port)
                entry.update(device=port.id, fixed_ips=[f["ip_address"] for f in port.fixed_ips],
                             security_group_rules=dhcp_provider_rules(
                                 f["ip_address"] for f in port.fixed_ips),
                             security_group_source_groups=[],
                             security_group_remote_address_groups=[])
                for sg_id in port.security_groups:
                    group = self.groups[sg_id]
                    info["security_groups"][sg_id] = [sg_info_rule(r, group.stateful)
                                                      for r in group.rules]
                    for rule in group.rules:
                        gid = rule.get("remote_group_id")
                        if gid:
                            remote.setdefault(gid, set()).add(rule["ethertype"])
                            if gid not in entry["security_group_source_groups"]:
                                entry["security_group_source_groups"].append(gid)
                info["devices"][port.id] = entry
            legacy = call_version is None or version_tuple(call_version) < (1, 3)
            for gid, ethertypes in remote.items():
                members = self.member_ips(gid)
                if legacy:
                    info["sg_member_ips"][gid] = {
                        e: [ip for ip, _ in members[e]] for e in ("IPv4", "IPv6")}
                else:
                    info["sg_member_ips"][gid] = {
                        e: [list(m) for m in members[e]] for e in sorted(ethertypes)}
            return info

    def member_ips(self, group_id: str) -> dict[str, list[tuple[str, str | None]]]:
        """[ip, None] for fixed IPs and [ip, mac] for address pairs of the group's ports."""
        with self.lock:
            return member_ips(
                ([f["ip_address"] for f in p.fixed_ips],
                 [(a["ip_address"], a.get("mac_address") or p.mac_address)
                  for a in p.allowed_address_pairs])
                for p in self.ports.values() if group_id in p.security_groups)

    def set_device_status(self, device: str, host: str, up: bool) -> dict[str, Any] | None:
        with self.lock:
            port = self.ports.get(device)
            if port is not None and port.host == host:
                port.status = "ACTIVE" if up else "DOWN"
                port.revision += 1
            return None if up else {"device": device, "exists": True}

    def heartbeat(self, state: dict[str, Any], now: float) -> str:
        """Record a report; 'new', 'alive' or 'revived' as neutron's agents_db decides."""
        with self.lock:
            key = (state["agent_type"], state["host"])
            agent = self.agents.get(key)
            if agent is None:
                agent = self.agents[key] = AgentRecord(state["agent_type"], state["host"])
                result = "new"
            else:  # an agent without heartbeats yet counts as long dead
                result = heartbeat_result(agent.heartbeats[-1] if agent.heartbeats else
                                          float("-inf"), now, self.agent_down_time)
            agent.heartbeats.append(now)
            agent.state = copy.deepcopy(state)
            if state.get("start_flag"):
                agent.started_at = now
            if "resource_versions" in state:
                agent.resource_versions = dict(state["resource_versions"])
            return result

    def agent(self, host: str, agent_type: str = topics.AGENT_TYPE_OVS) -> AgentRecord | None:
        with self.lock:
            return self.agents.get((agent_type, host))


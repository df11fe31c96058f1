"""An in-process control plane for agent tests that need no broker: answers the three calls the
agent makes with neutron's reply shapes, computed from a small model, and keeps each port's
status as neutron-server 29 does (a details fetch moves it to BUILD -- or DOWN when the port is
administratively down -- and only the agent's report makes it ACTIVE)."""

from __future__ import annotations

import copy
import threading
from typing import Any


class FakeControlPlane:
    def __init__(self) -> None:
        self.networks: dict[str, dict[str, Any]] = {}
        self.ports: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, list[dict[str, Any]]] = {}
        self.extra_members: dict[str, list[str]] = {}
        self.up: list[str] = []
        self.down: list[str] = []
        self.calls: list[str] = []
        self.status: dict[str, str] = {}
        self.available = True
        self.fail_next: dict[str, list[bool]] = {}
        """method -> outcomes of its next calls (True: that call fails), consumed in order"""
        self.lock = threading.Lock()

    def add_port(self, port_id: str, network: str, mac: str, ips: list[str],
                 groups: list[str], **extra: Any) -> None:
        self.ports[port_id] = {"id": port_id, "device": port_id, "network_id": network,
                               "mac_address": mac, "fixed_ips": ips,
                               "security_groups": groups, "port_security_enabled": True,
                               "allowed_address_pairs": [], "admin_state_up": True, **extra}

    def _check(self, name: str) -> None:
        from dpagent.agent.reporting import ControlPlaneUnavailable
        self.calls.append(name)
        if not self.available:
            raise ControlPlaneUnavailable("fake control plane is down")
        plan = self.fail_next.get(name)
        if plan and plan.pop(0):
            raise ControlPlaneUnavailable(f"fake control plane fails this {name}")

    def get_devices_details(self, devices):
        self._check("get_devices_details")
        details = []
        for device in devices:
            port = self.ports.get(device)
            if port is None or not port.get("bound", True):
                details.append({"device": device})
                continue
            self.status[device] = "BUILD" if port["admin_state_up"] else "DOWN"
            details.append({"device": device, "port_id": device, "network_id": port["network_id"],
                            "mac_address": port["mac_address"],
                            "admin_state_up": port["admin_state_up"],
                            "network_type": "vxlan", "segmentation_id": 100,
                            "physical_network": None,
                            "fixed_ips": [{"subnet_id": "s", "ip_address": ip}
                                          for ip in port["fixed_ips"]],
                            "port_security_enabled": port["port_security_enabled"]})
        return details, []

    def security_group_info(self, devices):
        self._check("security_group_info")
        with self.lock:
            info: dict[str, Any] = {"devices": {}, "security_groups": {}, "sg_member_ips": {}}
            for device in devices:
                port = self.ports.get(device)
                if port is None:
                    continue
                info["devices"][device] = copy.deepcopy(port)
                for sg in port["security_groups"]:
                    rules = self.groups.get(sg, [])
                    info["security_groups"][sg] = copy.deepcopy(rules)
                    for rule in rules:
                        remote = rule.get("remote_group_id")
                        if remote:
                            family = rule["ethertype"]
                            v6 = family == "IPv6"
                            members = [[ip, None] for p in self.ports.values()
                                       if remote in p["security_groups"]
                                       for ip in p["fixed_ips"] if (":" in ip) == v6]
                            members += [[ip, None] for ip in self.extra_members.get(remote, [])]
                            info["sg_member_ips"].setdefault(remote, {})[family] = members
            return info

    def update_device_list(self, up, down):
        self._check("update_device_list")
        self.up.extend(up)
        self.down.extend(down)
        self.status.update({p: "ACTIVE" for p in up if p in self.ports})
        self.status.update({p: "DOWN" for p in down if p in self.ports})

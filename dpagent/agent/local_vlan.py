"""Local VLANs: each network on this host gets one VLAN id on br-int (also its conntrack zone).

The allocation is written into each port's ``other_config`` (``net_uuid``, ``tag`` and the
segment, as neutron's OVS agent does), so that a restarted agent finds the same VLANs and the
flows it computes are the ones already installed: a restart changes nothing on the switch.
"""

from __future__ import annotations

from collections.abc import Mapping

DEAD_VLAN = 4095
"""Ports the agent does not (or may not) wire are tagged with this VLAN: nothing forwards it."""
FIRST, LAST = 1, 4094


class VlanExhausted(Exception):
    """All 4094 local VLANs are in use."""


class LocalVlans:
    """network id -> local VLAN, and which ports hold each network on this host."""

    def __init__(self) -> None:
        self._vlan_of: dict[str, int] = {}
        self._ports: dict[str, set[str]] = {}
        self._network_of_port: dict[str, str] = {}

    def restore(self, port_configs: Mapping[str, Mapping[str, str]]) -> None:
        """Adopt the allocations recorded on ports (name -> other_config) by a previous run."""
        for config in port_configs.values():
            network, tag = config.get("net_uuid"), config.get("tag")
            if network and tag and tag.isdigit() and FIRST <= int(tag) <= LAST:
                if network not in self._vlan_of and int(tag) not in self._vlan_of.values():
                    self._vlan_of[network] = int(tag)

    def vlan_of(self, network_id: str) -> int | None:
        return self._vlan_of.get(network_id)

    def acquire(self, network_id: str, port_id: str) -> int:
        """The network's VLAN (allocated if new), now also held by ``port_id``."""
        previous = self._network_of_port.get(port_id)
        if previous is not None and previous != network_id:
            self.release(port_id)
        vlan = self._vlan_of.get(network_id)
        if vlan is None:
            used = set(self._vlan_of.values())
            vlan = next((v for v in range(FIRST, LAST + 1) if v not in used), None)
            if vlan is None:
                raise VlanExhausted(f"no local VLAN left for network {network_id}")
            self._vlan_of[network_id] = vlan
        self._ports.setdefault(network_id, set()).add(port_id)
        self._network_of_port[port_id] = network_id
        return vlan

    def release(self, port_id: str) -> str | None:
        """``port_id`` left; returns the network whose VLAN was freed, if it was the last."""
        network = self._network_of_port.pop(port_id, None)
        if network is None:
            return None
        holders = self._ports.get(network, set())
        holders.discard(port_id)
        if holders:
            return None
        self._ports.pop(network, None)
        self._vlan_of.pop(network, None)
        return network

    def forget_unused(self) -> None:
        """Drop restored allocations no port claimed after a full sync."""
        for network in [n for n in self._vlan_of if not self._ports.get(n)]:
            del self._vlan_of[network]

    def networks(self) -> dict[str, int]:
        return dict(self._vlan_of)

"""Adapters between the RPC layer and the agent core (so neither knows the other's types)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from dpagent.agent.agent import Agent
from dpagent.agent.reporting import ControlPlaneUnavailable
from dpagent.agent.sriov_ports import SriovPorts
from dpagent.resources.control_plane import CacheControlPlane
from dpagent.rpc.errors import ServerUnavailable
from dpagent.rpc.plugin_api import PluginApi
from dpagent.rpc.trunks import SubPort, Trunk, TrunkApi

LOG = logging.getLogger(__name__)


@contextlib.contextmanager
def _retry_later() -> Iterator[None]:
    """A server that cannot be reached is the agent's cue to keep the work and retry."""
    try:
        yield
    except ServerUnavailable as exc:
        raise ControlPlaneUnavailable(str(exc)) from exc


class RpcControlPlane:
    """The agent's :class:`~dpagent.agent.agent.ControlPlane` over neutron's plugin RPC."""

    def __init__(self, api: PluginApi) -> None:
        self.api = api

    def get_devices_details(self, devices: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
        with _retry_later():
            details = self.api.get_devices_details_list_and_failed_devices(devices)
        for port_id, reason in details.failed.items():
            LOG.warning("no usable details for port %s: %s", port_id, reason)
        return details.devices, sorted(details.failed)

    def security_group_info(self, devices: list[str]) -> dict[str, Any]:
        with _retry_later():
            info = self.api.security_group_info_for_devices(devices)
        for port_id, reason in info.failed.items():
            LOG.warning("no usable security group info for port %s: %s", port_id, reason)
        return info.info

    def update_device_list(self, up: list[str], down: list[str], *,
                           refresh_tunnels: bool = False) -> None:
        with _retry_later():
            result = self.api.update_device_list(up, down, refresh_tunnels=refresh_tunnels)
        if result.failed_devices_up or result.failed_devices_down:
            LOG.warning("the server could not update ports up %s / down %s",
                        result.failed_devices_up, result.failed_devices_down)


class RpcCacheControlPlane(CacheControlPlane):
    """``rpc_mode = cache``: the cache-backed control plane, a server out of reach being the
    agent's cue to keep the work and retry (as with :class:`RpcControlPlane`)."""

    fetch_moves_to_build = False
    """Details come from the cache: the server moves no port to BUILD, so a port already
    reported up is not reported again."""

    def get_devices_details(self, devices: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
        with _retry_later():
            return super().get_devices_details(devices)

    def security_group_info(self, devices: list[str]) -> dict[str, Any]:
        with _retry_later():
            return super().security_group_info(devices)

    def member_info(self, group_ids: list[str]) -> dict[str, Any] | None:
        with _retry_later():
            return super().member_info(group_ids)


class RpcTrunkControl:
    """neutron's trunk RPC for both trunk drivers: the OVS side's
    :class:`~dpagent.trunk.manager.TrunkControl` and the SR-IOV side's trunk calls."""

    def __init__(self, trunks: TrunkApi) -> None:
        self.trunks = trunks

    def trunk_of(self, port_id: str) -> Trunk | None:
        with _retry_later():
            return self.trunks.trunk_of(port_id)

    def update_subport_bindings(self, subports: list[SubPort]) -> dict[str, Any]:
        with _retry_later():
            return self.trunks.update_subport_bindings(subports)

    def update_trunk_status(self, trunk_id: str, status: str) -> None:
        with _retry_later():
            self.trunks.update_trunk_status(trunk_id, status)


class RpcSriovControlPlane(RpcControlPlane, RpcTrunkControl):
    """The SR-IOV side's :class:`~dpagent.agent.sriov_ports.SriovControlPlane`: the OVS side's
    device calls plus direct ports and neutron's trunk RPC."""

    def __init__(self, api: PluginApi, trunks: TrunkApi) -> None:
        RpcControlPlane.__init__(self, api)
        RpcTrunkControl.__init__(self, trunks)

    def direct_ports(self) -> list[dict[str, Any]]:
        with _retry_later():
            return self.api.get_ports_by_vnic_type_and_host("direct")


class AgentNotificationHandler:
    """Turns the server's notifications into work for the agent (never blocks).

    With SR-IOV enabled, port updates and deletions also reach the SR-IOV side, which keeps
    the direct ports bound to ``host``."""

    def __init__(self, agent: Agent, sriov: SriovPorts | None = None, host: str = "") -> None:
        self.agent = agent
        self.sriov = sriov
        self.host = host

    def on_security_groups_rule_updated(self, sg_ids: list[str]) -> None:
        self.agent.security_groups_rule_updated(sg_ids)

    def on_security_groups_member_updated(self, sg_ids: list[str]) -> None:
        self.agent.security_groups_member_updated(sg_ids)

    def on_port_update(self, port: dict[str, Any], network_type: str | None,
                       segmentation_id: int | None, physical_network: str | None) -> None:
        port_id = port.get("id")
        if isinstance(port_id, str):
            self.agent.port_updated(port_id)
            host = port.get("binding:host_id")
            if host and port.get("binding:vnic_type", "normal") == "normal":
                # bound to a host (neutron tells nothing when it is unbound again)
                self.agent.port_bound(port_id, here=host == self.host)
            if self.sriov is not None:
                self.sriov.port_updated(port, self.host)

    def on_port_delete(self, port_id: str) -> None:
        """Cut the port off at once, as neutron's agent does: its VIF may stay plugged a while
        (the VM not destroyed yet) and must not keep its network access; a direct port's VF is
        released."""
        self.agent.port_deleted(port_id)
        if self.sriov is not None:
            self.sriov.port_deleted(port_id)

    def on_binding_deactivate(self, port_id: str, host: str, network_id: str) -> None:
        """Live migration, source side: the VM runs on another host now."""
        if host == self.host:
            self.agent.binding_deactivated(port_id)

    def on_binding_activate(self, port_id: str, host: str) -> None:
        """Live migration, destination side: the VIF plugged here with an inactive binding is
        wired now (its details are fetched again)."""
        if host == self.host:
            self.agent.port_updated(port_id)

    def on_network_update(self, network: dict[str, Any]) -> None:
        """Nothing of a network's API attributes changes br-int's flows."""

    def on_network_delete(self, network_id: str) -> None:
        """Ports go first; nothing left to do."""

    def on_agent_updated(self, admin_state_up: bool) -> None:
        self.agent.set_admin_state(admin_state_up)
        if self.sriov is not None:
            self.sriov.set_admin_state(admin_state_up)

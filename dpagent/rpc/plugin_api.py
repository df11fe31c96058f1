"""The agent's calls to the server, with the topics, versions and kwargs neutron expects.

Every method blocks for at most about ``timeout`` seconds (per chunk for
:meth:`PluginApi.update_device_list`) and raises only
:class:`~dpagent.rpc.errors.ServerUnavailable` (try later) or
:class:`~dpagent.rpc.errors.ServerError` / ``InvalidReply`` (the server answered, uselessly).
Replies are validated (:mod:`dpagent.rpc.replies`): one bad device fails that device only.
Methods are safe to call from several threads at once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, NamedTuple

import oslo_messaging
from oslo_config import cfg

from dpagent.rpc import topics
from dpagent.rpc.api_objects import check_network, check_port
from dpagent.rpc.errors import InvalidReply
from dpagent.rpc.l2pop import parse_tunnel_sync_reply
from dpagent.rpc.replies import (
    DeviceDetails,
    SecurityGroupInfo,
    check_device_details,
    check_security_group_info,
)
from dpagent.rpc.transport import call, rpc_client
from dpagent.rpc.validation import PayloadError, expect_bool, expect_ids, expect_list, require

LOG = logging.getLogger(__name__)

DEVICE_LIST_CHUNK = 20
"""Devices per ``update_device_list`` call, as neutron's agent (RPC_RES_PROCESSING_STEP):
each call is one server transaction per device, so big lists would run into the timeout."""


class DeviceListResult(NamedTuple):
    """The merged replies of ``update_device_list`` (``devices_down``: ``{device, exists}``)."""

    devices_up: list[str]
    failed_devices_up: list[str]
    devices_down: list[dict[str, Any]]
    failed_devices_down: list[str]


class PluginApi:
    """Calls to ``q-plugin`` and ``q-reports-plugin`` on behalf of ``host``."""

    def __init__(self, transport: oslo_messaging.Transport, host: str, *, timeout: float,
                 agent_id: str | None = None) -> None:
        self.host = host
        self.agent_id = agent_id or f"{topics.BINARY}-{host}"
        self.timeout = timeout
        self._plugin = rpc_client(transport, topics.PLUGIN, "1.0", timeout)
        self._reports = rpc_client(transport, topics.REPORTS, topics.REPORTS_VERSION, timeout)

    @classmethod
    def from_conf(cls, transport: oslo_messaging.Transport, conf: cfg.ConfigOpts) -> PluginApi:
        """Host from ``[agent] host``, timeout from ``[DEFAULT] rpc_response_timeout``."""
        return cls(transport, conf.agent.host, timeout=conf.rpc_response_timeout)

    def has_alive_neutron_server(self) -> bool:
        reply = call(self._reports, "has_alive_neutron_server")
        try:
            return expect_bool(reply, "reply")
        except PayloadError as exc:
            raise InvalidReply(f"has_alive_neutron_server: {exc}") from exc

    def get_devices_details_list_and_failed_devices(self, devices: Sequence[str]
                                                    ) -> DeviceDetails:
        """Binding details of ``devices`` (port ids); see :class:`DeviceDetails`.

        Side effect on a neutron server: each bound, admin-up port goes DOWN -> BUILD.
        """
        if not devices:
            return DeviceDetails([], {})
        reply = call(self._plugin, "get_devices_details_list_and_failed_devices",
                     version=topics.DEVICE_DETAILS_VERSION, devices=list(devices),
                     agent_id=self.agent_id, host=self.host)
        return check_device_details(reply, devices)

    def security_group_info_for_devices(self, devices: Sequence[str]) -> SecurityGroupInfo:
        """SG_INFO 1.3 for ``devices``.  ``call_version='1.3'`` is what makes the server
        send members as ``[ip, mac]`` pairs; without it, it falls back to plain IPs."""
        if not devices:
            return SecurityGroupInfo({"devices": {}, "security_groups": {},
                                      "sg_member_ips": {}}, {}, [])
        reply = call(self._plugin, "security_group_info_for_devices",
                     version=topics.SECURITY_GROUP_INFO_VERSION, devices=list(devices),
                     call_version=topics.SECURITY_GROUP_INFO_VERSION)
        return check_security_group_info(reply, devices)

    def update_device_list(self, devices_up: Sequence[str], devices_down: Sequence[str], *,
                           refresh_tunnels: bool = False) -> DeviceListResult:
        """Report ports up (wired) and down, :data:`DEVICE_LIST_CHUNK` of each per call.

        A chunk whose reply is malformed counts its devices as failed.  If a chunk cannot
        be sent, the error is raised and later chunks are not sent; the calls are
        idempotent, so the caller simply reports everything again later.
        """
        result = DeviceListResult([], [], [], [])
        up, down = list(devices_up), list(devices_down)
        for start in range(0, max(len(up), len(down)), DEVICE_LIST_CHUNK):
            chunk_up = up[start:start + DEVICE_LIST_CHUNK]
            chunk_down = down[start:start + DEVICE_LIST_CHUNK]
            reply = call(self._plugin, "update_device_list", version=topics.DEVICE_LIST_VERSION,
                         devices_up=chunk_up, devices_down=chunk_down, agent_id=self.agent_id,
                         host=self.host, refresh_tunnels=refresh_tunnels)
            try:
                _merge_device_list(result, reply)
            except PayloadError as exc:
                LOG.warning("update_device_list: invalid reply (%s); %d device(s) count as "
                            "failed", exc, len(chunk_up) + len(chunk_down))
                result.failed_devices_up.extend(chunk_up)
                result.failed_devices_down.extend(chunk_down)
        return result

    def get_ports_by_vnic_type_and_host(self, vnic_type: str) -> list[dict[str, Any]]:
        """The ports of ``vnic_type`` (e.g. ``direct``: SR-IOV VFs) bound to this host, as the
        API shows them (``binding:profile`` carries the VF's ``pci_slot``). A malformed entry
        is logged and left out; the others are returned."""
        reply = call(self._plugin, "get_ports_by_vnic_type_and_host",
                     version=topics.PORTS_BY_VNIC_TYPE_VERSION, vnic_type=vnic_type,
                     host=self.host)
        try:
            entries = expect_list(reply, "reply")
        except PayloadError as exc:
            raise InvalidReply(f"get_ports_by_vnic_type_and_host: {exc}") from exc
        ports = []
        for i, entry in enumerate(entries):
            try:
                ports.append(check_port(entry, f"reply[{i}]"))
            except PayloadError as exc:
                LOG.warning("get_ports_by_vnic_type_and_host: port left out: %s", exc)
        return ports

    def tunnel_sync(self, tunnel_ip: str, tunnel_type: str) -> list[str]:
        """Register this host's tunnel endpoint of ``tunnel_type``; the IPs of every endpoint
        of that type the server knows (this host's too). The server casts ``tunnel_update``
        to every agent. A malformed endpoint is logged and left out."""
        reply = call(self._plugin, "tunnel_sync", version=topics.TUNNEL_SYNC_VERSION,
                     tunnel_ip=tunnel_ip, tunnel_type=tunnel_type, host=self.host)
        if not isinstance(reply, dict) or not isinstance(reply.get("tunnels"), list):
            raise InvalidReply(f"tunnel_sync: expected {{'tunnels': [...]}}, got {reply!r:.80}")
        ips, problems = parse_tunnel_sync_reply(reply)
        for problem in problems:
            LOG.warning("tunnel_sync (%s): endpoint left out: %s", tunnel_type, problem)
        return ips

    def get_network_details(self, network_id: str) -> dict[str, Any]:
        """The network as the API shows it (``provider:*`` keys, ``mtu``...)."""
        reply = call(self._plugin, "get_network_details", version=topics.NETWORK_DETAILS_VERSION,
                     network=network_id, agent_id=self.agent_id, host=self.host)
        try:
            return check_network(reply, "reply")
        except PayloadError as exc:
            raise InvalidReply(f"get_network_details: {exc}") from exc


def _merge_device_list(result: DeviceListResult, reply: Any) -> None:
    if not isinstance(reply, dict):
        raise PayloadError("reply", f"expected an object, got {type(reply).__name__}")
    up = expect_ids(require(reply, "devices_up", "reply"), "reply.devices_up")
    failed_up = expect_ids(require(reply, "failed_devices_up", "reply"),
                           "reply.failed_devices_up")
    down = expect_list(require(reply, "devices_down", "reply"), "reply.devices_down")
    for i, entry in enumerate(down):
        if not isinstance(entry, dict) or not isinstance(entry.get("device"), str):
            raise PayloadError(f"reply.devices_down[{i}]", f"expected {{device, exists}}, "
                               f"got {entry!r}")
    failed_down = expect_ids(require(reply, "failed_devices_down", "reply"),
                             "reply.failed_devices_down")
    result.devices_up.extend(up)
    result.failed_devices_up.extend(failed_up)
    result.devices_down.extend(down)
    result.failed_devices_down.extend(failed_down)

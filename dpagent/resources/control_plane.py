"""The agent core's control plane from the resource cache (``[agent] rpc_mode = cache``), as
neutron's own agent runs (``CacheBackedPluginApi`` and ``SecurityGroupServerAPIShim``).

Device details and security-group info are derived locally (:mod:`dpagent.resources.derive`);
the server is asked only for what the cache lacks -- a gap, pulled once with ``bulk_pull``:
the host's new ports (by id), their networks and subnets, their groups (with rules), the
member ports of the remote groups their rules name (by ``security_group_ids``) and the address
groups they name. From then on the OVO pushes keep it all current
(:class:`ResourcePushes`), and a change costs the server nothing: no call per change, the
port reports (``update_device_list``), heartbeats, tunnel and trunk calls excepted.

The interest (what is kept) follows the host's ports: a port the agent forgets
(:meth:`CacheControlPlane.forget`) takes with it whatever only it needed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from typing import Any, Final

import oslo_messaging

from dpagent.resources.cache import Change, Interest, ResourceCache
from dpagent.resources.derive import device_details, members_of, security_group_info
from dpagent.resources.objects import PARSERS, VERSIONS, ResourceObject, data_of, object_id
from dpagent.rpc import topics
from dpagent.rpc.errors import InvalidReply
from dpagent.rpc.replies import check_device_details, check_security_group_info
from dpagent.rpc.transport import call, rpc_client
from dpagent.rpc.validation import PayloadError, expect_list

LOG = logging.getLogger(__name__)

PULL_VERSION: Final = "1.1"  # ResourcesPullRpcCallback
PULL_CHUNK: Final = 500
"""ids per ``bulk_pull`` (the filter is an SQL IN list)."""


class ResourcesApi:
    """``bulk_pull`` on ``q-plugin`` (CONTRACT.md 1.5)."""

    def __init__(self, transport: oslo_messaging.Transport, *, timeout: float) -> None:
        self._client = rpc_client(transport, topics.PLUGIN, PULL_VERSION, timeout)
        self.calls = 0

    def bulk_pull(self, resource_type: str, **filters: list[str]) -> list[ResourceObject]:
        """The objects of ``resource_type`` matching the one filter (``id=[...]``, ...); a
        bad object is logged and left out (the others are kept)."""
        if len(filters) != 1:
            raise ValueError(f"bulk_pull takes one filter, got {sorted(filters)}")
        found: list[ResourceObject] = []
        for key, values in filters.items():
            wanted = sorted(set(values))
            for start in range(0, len(wanted), PULL_CHUNK):
                self.calls += 1
                reply = call(self._client, "bulk_pull", arguments={
                    "resource_type": resource_type, "version": VERSIONS[resource_type],
                    "filter_kwargs": {key: wanted[start:start + PULL_CHUNK]}})
                try:
                    items = expect_list(reply, "reply")
                except PayloadError as exc:
                    raise InvalidReply(f"bulk_pull {resource_type}: {exc}") from exc
                found += parse_objects(resource_type, items, f"bulk_pull {resource_type}")
        return found


def parse_objects(resource_type: str, items: Iterable[Any], what: str) -> list[ResourceObject]:
    parsed = []
    for i, item in enumerate(items):
        try:
            parsed.append(PARSERS[resource_type](item, f"{what}[{i}]"))
        except PayloadError as exc:
            LOG.error("%s: object ignored: %s", what, exc)
    return parsed


class CacheControlPlane:
    """The :class:`~dpagent.agent.agent.ControlPlane` of ``rpc_mode = cache``.

    ``reports`` makes the calls that stay calls (``update_device_list``); the cache is
    shared with :class:`ResourcePushes` under :attr:`lock`."""

    def __init__(self, resources: ResourcesApi, reports: Any, host: str) -> None:
        self.resources = resources
        self.reports = reports
        self.host = host
        self.cache = ResourceCache(Interest())
        self.lock = threading.RLock()
        self._complete_groups: set[str] = set()
        """remote groups whose members were pulled (pushes keep them current since)"""
        self._networks_pulled: set[str] = set()

    def names(self, ids: Iterable[str]) -> dict[str, str]:
        """The names of the ports and security groups among ``ids`` that the cache holds and
        that have one (for ``dpagent-ctl trace``'s words)."""
        with self.lock:
            found: dict[str, str] = {}
            for obj_id in ids:
                obj = self.cache.ports.get(obj_id) or self.cache.groups.get(obj_id)
                if obj is not None and obj.name:
                    found[obj_id] = obj.name
            return found

    # -- the agent core's calls -------------------------------------------------------------

    def get_devices_details(self, devices: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
        with self.lock:
            interest = self.cache.interest
            new = [d for d in devices if d not in interest.local_ports]
            interest.local_ports.update(devices)
            missing = [d for d in devices if d not in self.cache.ports]
        if new or missing:
            self._pull_ports(sorted(set(new) | set(missing)))
        with self.lock:
            networks = {p.network_id for d in devices if (p := self.cache.ports.get(d))}
            # what the cache lacks, not what the interest lacks: a push between the port's
            # pull and here may have put the network in the interest already
            unknown = sorted(networks - set(self.cache.networks) - self._networks_pulled)
            self._networks_pulled |= set(unknown)  # once: a network the server lacks too
            self.cache.interest.networks |= networks
        if unknown:
            self._pull("Network", id=unknown)
            self._pull("Subnet", network_id=unknown)
        with self.lock:
            reply = {"devices": [device_details(self.cache, d, self.host) for d in devices],
                     "failed_devices": []}
        LOG.debug("device details from the cache: %s", reply["devices"])
        checked = check_device_details(reply, devices)
        return checked.devices, sorted(checked.failed)

    def security_group_info(self, devices: list[str]) -> dict[str, Any]:
        self._fill_groups(devices)
        with self.lock:
            reply = security_group_info(self.cache, devices)
        return check_security_group_info(reply, devices).info

    def expect(self, port_ids: list[str]) -> None:
        """Ports bound to this host whose VIFs are not plugged yet: follow them as local
        ports (their groups and remote groups come into the interest), so that
        :meth:`security_group_info` can answer for them; :meth:`forget` lets them go."""
        with self.lock:
            new = [p for p in port_ids if p not in self.cache.interest.local_ports]
            self.cache.interest.local_ports.update(port_ids)
            missing = [p for p in port_ids if p not in self.cache.ports]
        if new or missing:
            self._pull_ports(sorted(set(new) | set(missing)))

    def member_info(self, group_ids: list[str]) -> dict[str, Any] | None:
        """The members of remote groups whose membership changed, from the cache alone; None
        if one of them was never pulled whole (then ask :meth:`security_group_info`)."""
        with self.lock:
            if not set(group_ids) <= self._complete_groups:
                return None
            return members_of(self.cache, group_ids)

    def update_device_list(self, up: list[str], down: list[str], *,
                           refresh_tunnels: bool = False) -> None:
        self.reports.update_device_list(up, down, refresh_tunnels=refresh_tunnels)

    def forget(self, port_ids: Iterable[str]) -> None:
        """The agent knows these VIFs no more: keep only what the others need."""
        with self.lock:
            self.cache.interest.local_ports.difference_update(port_ids)
            self._recompute_interest()
            self.cache.forget_unwanted()  # the forgotten ports themselves

    def resync(self) -> None:
        """Forget everything (the server may have changed while its pushes were lost): the
        next calls pull it all again."""
        with self.lock:
            local = set(self.cache.interest.local_ports)
            self.cache = ResourceCache(Interest(local_ports=local))
            self._complete_groups.clear()
            self._networks_pulled.clear()

    # -- filling gaps ------------------------------------------------------------------------

    def _pull(self, resource_type: str, **filters: list[str]) -> Change:
        objects = self.resources.bulk_pull(resource_type, **filters)
        LOG.debug("bulk_pull %s %s: %s", resource_type, filters,
                  [(o.id, o.revision) for o in objects])
        change = Change()
        with self.lock:
            for obj in objects:
                change.merge(self.cache.put(obj))
        return change

    def _pull_ports(self, port_ids: Sequence[str]) -> None:
        self._pull("Port", id=list(port_ids))

    def _fill_groups(self, devices: Sequence[str]) -> None:
        with self.lock:
            ports = [p for d in devices if (p := self.cache.ports.get(d))]
            groups = {sg for p in ports for sg in p.security_group_ids}
            unknown = sorted(groups - set(self.cache.groups))
            self.cache.interest.groups |= groups
        if unknown:
            self._pull("SecurityGroup", id=unknown)
        with self.lock:
            self._recompute_interest()
            remote = sorted(self.cache.interest.remote_groups - self._complete_groups)
            address = sorted(a for a in self.cache.interest.address_groups
                             if a not in self.cache.address_groups)
        if remote:
            members = self.resources.bulk_pull("Port", security_group_ids=remote)
            with self.lock:  # complete only what is still named as the members go in
                named = set(remote) & self.cache.interest.remote_groups
                for member in members:
                    self.cache.put(member)
                self._complete_groups |= named
        if address:
            self._pull("AddressGroup", id=address)

    def _recompute_interest(self) -> None:
        """Groups, remote groups, networks and address groups from the local ports; what
        no local port refers to any more leaves the cache at once (see
        :meth:`ResourceCache.narrow`), and is pulled again if it is named again."""
        cache = self.cache
        local = [cache.ports[p] for p in cache.interest.local_ports if p in cache.ports]
        groups = {sg for p in local for sg in p.security_group_ids}
        rules = [r for sg in groups for r in cache.rules_in(sg)]
        cache.narrow(groups=groups,
                     remote_groups={r.remote_group_id for r in rules if r.remote_group_id},
                     networks={p.network_id for p in local},
                     address_groups={r.remote_address_group_id for r in rules
                                     if r.remote_address_group_id})
        self._complete_groups &= cache.interest.remote_groups
        self._networks_pulled &= cache.interest.networks

    def status(self) -> dict[str, Any]:
        with self.lock:
            return {"mode": "cache", "objects": self.cache.sizes(),
                    "bulk_pulls": self.resources.calls,
                    "local_ports": len(self.cache.interest.local_ports),
                    "remote_groups": len(self.cache.interest.remote_groups)}


PUSHED: Final = ("Port", "Network", "Subnet", "SecurityGroup", "SecurityGroupRule",
                 "AddressGroup")
"""The pushes the cache lives on (``neutron-vo-<Type>-<version>``, method ``push``)."""


def push_topic(resource_type: str) -> str:
    return f"neutron-vo-{resource_type}-{VERSIONS[resource_type]}"


class ResourcePushes:
    """Folds OVO pushes into the cache and tells the agent core what changed, as neutron's
    agent turns them into its handlers: a local port changed (``port_updated``) or deleted
    (``port_deleted``), a group's rules (``security_groups_rule_updated``), a remote group's
    members (``security_groups_member_updated``)."""

    def __init__(self, control: CacheControlPlane, agent: Any) -> None:
        self.control = control
        self.agent = agent
        self.received: dict[str, int] = {}

    def on_resource_push(self, resource_type: str, event_type: str,
                         resource_list: list[Any]) -> None:
        self.received[resource_type] = self.received.get(resource_type, 0) + 1
        change = Change()
        deleted_local: list[str] = []
        with self.control.lock:
            cache = self.control.cache
            for i, item in enumerate(resource_list):
                where = f"push {resource_type} {event_type}[{i}]"
                try:
                    kind, obj_id, revision = object_id(item, where)
                    LOG.debug("push %s %s %s revision %s", resource_type, event_type, obj_id,
                              revision)
                    if event_type == "deleted":
                        if kind == "Port" and obj_id in cache.interest.local_ports:
                            deleted_local.append(obj_id)
                        change.merge(cache.delete(kind, obj_id, revision))
                    else:
                        data_of(item, where, resource_type)
                        change.merge(cache.put(PARSERS[resource_type](item, where)))
                except PayloadError as exc:
                    LOG.error("%s: ignored: %s", where, exc)
            if change.rule_groups or change.ports:
                self.control._recompute_interest()
        self._tell(change, deleted_local)

    def _tell(self, change: Change, deleted_local: list[str]) -> None:
        for port_id in sorted(change.ports - set(deleted_local)):
            self.agent.port_updated(port_id)
        for port_id in deleted_local:
            self.agent.port_deleted(port_id)
        if change.rule_groups:
            self.agent.security_groups_rule_updated(sorted(change.rule_groups))
        if change.member_groups:
            self.agent.security_groups_member_updated(sorted(change.member_groups))

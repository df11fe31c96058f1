"""The controller's state and everything it answers: one object the RPC and HTTP edges share.

Readers take the current :class:`~dpagent.controller.model.Topology` snapshot (immutable);
changes -- a topology reload, a port status, an agent's admin state -- take the lock, write
the store first and then swap the in-memory value, so what was answered was persisted.
Casts go out after the lock is released, in the order the changes were made.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from dpagent.controller import views
from dpagent.controller.agents import AGENT_TYPE_FOR_VNIC, AgentRegistry
from dpagent.controller.changes import Change, diff
from dpagent.controller.model import AgentRecord, Topology
from dpagent.controller.notifier import Cast, agent_updated, render
from dpagent.controller.objects import Revisions, bulk_pull, pushes
from dpagent.controller.store import Store
from dpagent.controller.topology import TopologyError, parse_topology

LOG = logging.getLogger(__name__)

REPORT_TIME = "%Y-%m-%dT%H:%M:%S.%f"
TRUNK_STATUSES = ("ACTIVE", "DOWN", "BUILD", "DEGRADED", "ERROR")


class BindingRefused(TopologyError):
    """A port would be bound to a host whose agent is administratively down."""


class CallbackNotFound(Exception):
    """``pull`` of a resource type the controller does not provide (neutron's name)."""


class ControllerState:
    """The topology, statuses and agents, and neutron's answers over them."""

    def __init__(self, store: Store, agent_down_time: float,
                 send: Callable[[list[Cast]], None] | None = None) -> None:
        self.store = store
        self.agents = AgentRegistry(store, agent_down_time)
        self.topology: Topology = store.load_topology()
        self.revisions = Revisions()
        self.revisions.advance(None, self.topology)
        self._statuses = store.statuses()
        self._lock = threading.RLock()
        self.send: Callable[[list[Cast]], None] = (
            send if send is not None else (lambda casts: None))
        self.started_at = time.time()

    def status_of(self, resource_id: str) -> str:
        return self._statuses.get(resource_id, "DOWN")

    # -- topology ---------------------------------------------------------------------------

    def apply(self, doc: Mapping[str, Any]) -> list[Change]:
        """Make ``doc`` the topology: store it, then send the difference's notifications.

        Raises :class:`TopologyError` (nothing changed) when it is invalid, or when it binds
        a port anew to a host whose agent is administratively down (:class:`BindingRefused`).
        """
        with self._lock:
            old = self.topology
            new = parse_topology(doc, old)
            self._check_bindings(old, new)
            rebound = {p for p, port in new.ports.items()
                       if p in old.ports and old.ports[p].host != port.host}
            self.store.save_topology(new)
            statuses = {k: ("DOWN" if k in rebound else v) for k, v in self._statuses.items()
                        if k in new.ports or k in new.trunks}
            if statuses != self._statuses:
                self.store.set_statuses({k: v for k, v in statuses.items()
                                         if self._statuses.get(k) != v})
            self.topology, self._statuses = new, statuses
            changes = diff(old, new)
            self.revisions.advance(old, new)
            # the OVO pushes first: a cache-backed agent's cache is current before the
            # legacy casts make it look
            casts = pushes(old, new, self.revisions, statuses) + [
                c for change in changes for c in render(change, old, new, statuses)]
            self.send(casts)
        if changes:
            LOG.info("topology applied: %s", ", ".join(
                f"{c.kind}({len(c.ids)})" for c in changes))
        return changes

    def _check_bindings(self, old: Topology, new: Topology) -> None:
        for port in new.ports.values():
            before = old.ports.get(port.id)
            if not port.host or (before is not None and before.host == port.host):
                continue
            agent = self.agents.find(AGENT_TYPE_FOR_VNIC[port.vnic_type], port.host)
            if agent is not None and not agent.admin_state_up:
                raise BindingRefused(
                    f"ports[{port.name}].host",
                    f"cannot bind to {port.host}: its {agent.agent_type} {agent.id} is "
                    f"administratively down (dpagent-ctl agents set --admin-up {agent.id})")

    # -- status -----------------------------------------------------------------------------

    def _set_statuses(self, changes: Mapping[str, str]) -> None:
        with self._lock:
            changed = {k: v for k, v in changes.items() if self._statuses.get(k) != v}
            if changed:
                self.store.set_statuses(changed)
                self._statuses = {**self._statuses, **changed}

    # -- agents (RPC and API) ---------------------------------------------------------------

    def report_state(self, agent_state: Mapping[str, Any], sent_at: str) -> str | None:
        """``report_state``: None when the report predates the controller (neutron drops
        those), else 'new', 'alive' or 'revived'."""
        state = agent_state["agent_state"]  # KeyError -> RemoteError, as on neutron
        for key in ("binary", "host", "topic", "agent_type", "configurations"):
            if key not in state:
                raise KeyError(key)
        sent = datetime.datetime.strptime(sent_at, REPORT_TIME).replace(
            tzinfo=datetime.UTC).timestamp()
        if sent < self.started_at - 1.0:
            return None
        return self.agents.report(state)

    def agent_views(self, filters: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        now = time.time()
        found = []
        for agent in self.agents.all():
            shown = views.agent_dict(agent, self.agents.is_alive(agent, now))
            if all(str(shown.get(k)).lower() == str(v).lower()
                   for k, v in (filters or {}).items()):
                found.append(shown)
        return found

    def agent_view(self, agent_id: str) -> dict[str, Any]:
        agent = self.agents.get(agent_id)
        return views.agent_dict(agent, self.agents.is_alive(agent))

    def set_agent_admin_state(self, agent_id: str, up: bool) -> dict[str, Any]:
        """Persist it, then tell the agent's host (``agent_updated``)."""
        agent: AgentRecord = self.agents.set_admin_state(agent_id, up)
        self.send([agent_updated(agent.host, up)])
        return views.agent_dict(agent, self.agents.is_alive(agent))

    def delete_agent(self, agent_id: str) -> None:
        """Forget it; a live agent comes back as 'new' with its next heartbeat."""
        self.agents.delete(agent_id)

    # -- ports (RPC) ------------------------------------------------------------------------

    def devices_details(self, devices: Iterable[str], host: str) -> list[dict[str, Any]]:
        """Details of ``devices``; side effect as neutron 29's: every port bound here goes to
        BUILD (ACTIVE ones too), or DOWN if it is administratively down -- the agent's report
        is what makes it ACTIVE again."""
        topology = self.topology
        entries = [views.device_details(topology, d, host) for d in devices]
        building = {e["device"]: "BUILD" if e["admin_state_up"] else "DOWN" for e in entries
                    if "network_id" in e}
        self._set_statuses(building)
        return entries

    def update_devices(self, up: Iterable[str], down: Iterable[str], host: str
                       ) -> dict[str, Any]:
        """``update_device_list``: ports of this host go ACTIVE or DOWN (others: nothing)."""
        topology = self.topology
        up, down = list(up), list(down)
        changes = {}
        for device, status in [(d, "ACTIVE") for d in up] + [(d, "DOWN") for d in down]:
            port = topology.ports.get(device)
            if port is not None and port.host == host:
                changes[device] = status
        self._set_statuses(changes)
        return {"devices_up": up, "failed_devices_up": [],
                "devices_down": [{"device": d, "exists": True} for d in down],
                "failed_devices_down": []}

    def network_details(self, network_id: str) -> dict[str, Any]:
        net = self.topology.networks.get(network_id)
        if net is None:
            raise LookupError(f"network {network_id} could not be found")
        return views.network_dict(net)

    def security_group_info(self, devices: Iterable[str], call_version: str | None
                            ) -> dict[str, Any]:
        return views.security_group_info(self.topology, devices, call_version, self._statuses)

    def security_group_rules(self, devices: Iterable[str]) -> dict[str, Any]:
        """The legacy ``security_group_rules_for_devices`` (1.1): rules expanded per port,
        remote groups resolved to one /32 (/128) prefix per member address."""
        topology = self.topology
        out: dict[str, Any] = {}
        for device in devices:
            port = topology.ports.get(device)
            if port is None:
                continue
            entry = views.port_dict(topology, port, self.status_of(port.id))
            entry.update(device=port.id, fixed_ips=[f.ip_address for f in port.fixed_ips],
                         security_group_remote_address_groups=[])
            rules = []
            for sg_id in port.security_groups:
                group = topology.security_groups[sg_id]
                for rule in group.rules:
                    base = views.sg_info_rule(views.rule_dict(rule, group), group.stateful)
                    base.pop("stateful")
                    base["security_group_id"] = sg_id
                    remote = rule.remote_group_id or rule.remote_address_group_id
                    if not remote:
                        rules.append(base)
                        continue
                    base.pop("remote_group_id", None)
                    base.pop("remote_address_group_id", None)
                    key = "source_ip_prefix" if rule.direction == "ingress" else "dest_ip_prefix"
                    for ip, _mac in views.group_member_ips(topology, remote)[rule.ethertype]:
                        bits = 32 if rule.ethertype == "IPv4" else 128
                        rules.append({**base, key: ip if "/" in ip else f"{ip}/{bits}"})
            entry["security_group_rules"] = rules + views.dhcp_provider_rules(
                f.ip_address for f in port.fixed_ips)
            out[port.id] = entry
        return out

    def ports_by_vnic_type_and_host(self, vnic_type: str, host: str) -> list[dict[str, Any]]:
        topology = self.topology
        return [views.port_dict(topology, p, self.status_of(p.id))
                for p in topology.ports.values() if p.host == host and p.vnic_type == vnic_type]

    # -- trunks (RPC) -----------------------------------------------------------------------

    def bulk_pull(self, resource_type: str, filter_kwargs: Mapping[str, Iterable[str]]
                  ) -> list[dict[str, Any]]:
        """``bulk_pull`` (CONTRACT.md 1.5) for a cache-backed agent."""
        with self._lock:
            return bulk_pull(self.topology, self.revisions, self._statuses, resource_type,
                             filter_kwargs)

    def pull(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        """``pull``: only ``Trunk`` by its parent port's id (what agents ask), as neutron."""
        if resource_type != "Trunk":
            raise CallbackNotFound(f"Callback for {resource_type} not found")
        trunk = self.topology.trunk_of_parent(resource_id)
        return None if trunk is None else views.trunk_primitive(trunk,
                                                                 self.status_of(trunk.id))

    def update_subport_bindings(self, subports: Iterable[Mapping[str, Any]]
                                ) -> dict[str, list[dict[str, Any]]]:
        """Bind subports where their parent is (the topology already says so) and answer
        their port dicts per trunk; each subport's binding is announced by ``port_update``."""
        topology = self.topology
        out: dict[str, list[dict[str, Any]]] = {}
        updated = []
        for i, sub in enumerate(subports):
            port_id, trunk_id = sub.get("port_id"), sub.get("trunk_id")
            found = topology.trunk_of_subport(str(port_id))
            if found is None or found[0].id != trunk_id:
                raise LookupError(f"subports[{i}]: port {port_id} is not a subport of "
                                  f"trunk {trunk_id}")
            port = topology.ports[str(port_id)]
            out.setdefault(str(trunk_id), []).append(
                views.port_dict(topology, port, self.status_of(port.id)))
            updated.append(port.id)
        casts = [c for p in updated for c in render(
            Change("port_update", (p,)), topology, topology, self._statuses)]
        self.send(casts)
        return out

    def update_trunk_status(self, trunk_id: str, status: str) -> None:
        if trunk_id not in self.topology.trunks:
            raise LookupError(f"trunk {trunk_id} could not be found")
        if status not in TRUNK_STATUSES:
            raise ValueError(f"status {status!r} is not one of {', '.join(TRUNK_STATUSES)}")
        self._set_statuses({trunk_id: status})

    # -- API (read-only resources) -----------------------------------------------------------

    def port_views(self) -> list[dict[str, Any]]:
        topology = self.topology
        return [views.port_dict(topology, p, self.status_of(p.id))
                for p in topology.ports.values()]

    def network_views(self) -> list[dict[str, Any]]:
        return [views.network_dict(n) for n in self.topology.networks.values()]

    def security_group_views(self) -> list[dict[str, Any]]:
        return [views.security_group_dict(g) for g in self.topology.security_groups.values()]


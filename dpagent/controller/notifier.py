"""Casts from the controller to the agents, exactly as neutron-server sends them.

:func:`render` turns a :class:`~dpagent.controller.changes.Change` into :class:`Cast`
values (topic, method, message version, kwargs -- pure, so tests can compare them with the
recorded contract); :class:`Notifier` sends them over oslo.messaging.  A cast that cannot be
published is logged and dropped: fanouts are best effort in neutron too, and agents resync
on their heartbeat's ``revived``/``new`` replies and after broker outages.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import oslo_messaging

from dpagent.controller import changes, views
from dpagent.controller.changes import Change
from dpagent.controller.model import Topology
from dpagent.rpc import topics
from dpagent.rpc.transport import request_context, rpc_client

LOG = logging.getLogger(__name__)

PUSH_VERSION = "1.1"
TRUNK_TOPIC = "neutron-vo-Trunk-1.1"
SUBPORT_TOPIC = "neutron-vo-SubPort-1.0"


@dataclass(frozen=True)
class Cast:
    """One cast; ``server`` None is a fanout, else ``<topic>.<server>``."""

    topic: str
    method: str
    version: str
    kwargs: dict[str, Any] = field(hash=False)
    server: str | None = None


def render(change: Change, old: Topology, new: Topology, statuses: Mapping[str, str]
           ) -> list[Cast]:
    """The casts of one change (``old``/``new``: the topologies before and after it)."""
    kind, ids = change.kind, change.ids
    if kind in (changes.RULES_UPDATED, changes.MEMBERS_UPDATED):
        return [Cast(topics.SECURITY_GROUP_UPDATE, kind, topics.SECURITY_GROUP_UPDATE_VERSION,
                     {"security_groups": list(ids)})]
    if kind == changes.PORT_UPDATE:
        port = new.ports[ids[0]]
        net = new.networks[port.network_id]
        return [Cast(topics.PORT_UPDATE, "port_update", "1.0", {
            "port": views.port_dict(new, port, statuses.get(port.id, "DOWN")),
            "network_type": net.network_type, "segmentation_id": net.segmentation_id,
            "physical_network": net.physical_network})]
    if kind == changes.PORT_DELETE:
        return [Cast(topics.PORT_DELETE, "port_delete", "1.0", {"port_id": ids[0]})]
    if kind == changes.NETWORK_UPDATE:
        return [Cast(topics.NETWORK_UPDATE, "network_update", "1.4",
                     {"network": views.network_dict(new.networks[ids[0]])})]
    if kind == changes.NETWORK_DELETE:
        return [Cast(topics.NETWORK_DELETE, "network_delete", "1.0", {"network_id": ids[0]})]
    if kind in (changes.TRUNK_CREATED, changes.TRUNK_DELETED):
        created = kind == changes.TRUNK_CREATED
        trunk = (new if created else old).trunks[ids[0]]
        return [Cast(TRUNK_TOPIC, "push", PUSH_VERSION, {
            "resource_list": [views.trunk_primitive(trunk, statuses.get(trunk.id, "DOWN"))],
            "event_type": "created" if created else "deleted"})]
    if kind in (changes.SUBPORTS_CREATED, changes.SUBPORTS_DELETED):
        return [Cast(SUBPORT_TOPIC, "push", PUSH_VERSION, {
            "resource_list": [views.subport_primitive(ids[0], s) for s in change.sub_ports],
            "event_type": "created" if kind == changes.SUBPORTS_CREATED else "deleted"})]
    raise ValueError(f"no cast for change {kind!r}")


def agent_updated(host: str, admin_state_up: bool) -> Cast:
    """dpagent's own: the operator set the agent's administrative state (to its host only)."""
    return Cast(topics.AGENT, "agent_updated", topics.AGENT_VERSION,
                {"payload": {"admin_state_up": admin_state_up}}, server=host)


class Notifier:
    """Sends casts over ``transport``; never raises."""

    def __init__(self, transport: oslo_messaging.Transport, timeout: float = 10.0) -> None:
        self.transport = transport
        self.timeout = timeout
        self.sent: list[Cast] = []  # the last casts sent, for tests and the status log

    def send(self, casts: Iterable[Cast]) -> None:
        for cast in casts:
            client = rpc_client(self.transport, cast.topic, cast.version, self.timeout)
            prepared = (client.prepare(fanout=True) if cast.server is None
                        else client.prepare(server=cast.server))
            try:
                prepared.cast(request_context(), cast.method, **cast.kwargs)
            except Exception:  # noqa: BLE001 - agents resync; the controller goes on
                LOG.exception("could not send %s on %s", cast.method, cast.topic)
                continue
            LOG.debug("sent %s on %s", cast.method, cast.topic)
            self.sent = [*self.sent[-999:], cast]

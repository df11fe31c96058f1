"""The server's casts to the agent: validated, then handed to an :class:`AgentNotifications`.

neutron-server 29 still sends the legacy ML2 fanouts (CONTRACT.md section 2.1), and they
are all an agent that pulls details needs.  Each endpoint method here

* checks its keyword arguments (required keys, types, ids) and, on any problem, logs the
  offending field with the request id and drops the message -- it never raises into
  oslo.messaging, whose only reaction would be a traceback in the log;
* logs unknown keyword arguments and ignores them (a later minor version may add optional
  arguments; the endpoint's version caps what the server may send);
* calls the handler, and logs (never propagates) whatever the handler raises.

Handlers run on the consumer's thread, one message at a time per topic (see
:mod:`dpagent.rpc.consumers`), so a handler must return quickly: the agent core only
*marks* work (ports or groups dirty, resync wanted) and its worker thread does the rest.
Order is kept within a topic, not across topics -- handlers must not rely on, say, a
``port_update`` arriving before the ``security_groups_member_updated`` of the same change.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import oslo_messaging

from dpagent.rpc import topics
from dpagent.rpc.api_objects import check_network, check_port
from dpagent.rpc.l2pop import (
    FdbNetwork,
    IpChange,
    parse_chg_ip,
    parse_fdb_entries,
    parse_tunnel_notice,
)
from dpagent.rpc.observers import RpcObserver
from dpagent.rpc.trunks import SubPort, Trunk, parse_subport, parse_trunk
from dpagent.rpc.validation import (
    PayloadError,
    expect_bool,
    expect_ids,
    expect_list,
    expect_mapping,
    expect_optional_int,
    expect_optional_str,
    expect_str,
    require,
    unknown_keys,
)

LOG = logging.getLogger(__name__)


class AgentNotifications(Protocol):
    """What the agent core does with the server's notifications.  Must not block long."""

    def on_security_groups_rule_updated(self, sg_ids: list[str]) -> None:
        """Rules of these groups changed: refetch the group info of ports using them."""

    def on_security_groups_member_updated(self, sg_ids: list[str]) -> None:
        """Membership of these groups changed: refetch remote-group members."""

    def on_port_update(self, port: dict[str, Any], network_type: str | None,
                       segmentation_id: int | None, physical_network: str | None) -> None:
        """A port changed (bound, admin state, groups, address pairs) -- maybe not ours."""

    def on_port_delete(self, port_id: str) -> None:
        """A port was deleted (maybe not ours)."""

    def on_binding_deactivate(self, port_id: str, host: str, network_id: str) -> None:
        """Live migration: the port's binding to ``host`` is no longer the active one."""

    def on_binding_activate(self, port_id: str, host: str) -> None:
        """Live migration: the port's binding to ``host`` is now the active one."""

    def on_network_update(self, network: dict[str, Any]) -> None:
        """A network changed (name, MTU, ...)."""

    def on_network_delete(self, network_id: str) -> None:
        """A network was deleted."""

    def on_agent_updated(self, admin_state_up: bool) -> None:
        """The operator set this agent's administrative state."""


class OverlayNotifications(Protocol):
    """What the overlay does with tunnel and l2population casts.  Must not block long."""

    def on_tunnel_update(self, tunnel_ip: str, tunnel_type: str) -> None:
        """A host (maybe this one) registered its endpoint of ``tunnel_type``."""

    def on_tunnel_delete(self, tunnel_ip: str, tunnel_type: str) -> None:
        """An endpoint went away (its host took another IP)."""

    def on_fdb_add(self, networks: list[FdbNetwork]) -> None:
        """Forwarding entries to add (maybe for networks not on this host)."""

    def on_fdb_remove(self, networks: list[FdbNetwork]) -> None:
        """Forwarding entries to remove."""

    def on_fdb_ip_change(self, changes: list[IpChange]) -> None:
        """Remote ports' fixed IPs changed."""


class ResourcePushNotifications(Protocol):
    """What the resource cache does with OVO pushes (``neutron-vo-<Type>-<version>``)."""

    def on_resource_push(self, resource_type: str, event_type: str,
                         resource_list: list[Any]) -> None:
        """Objects of ``resource_type`` were created, updated or deleted (unparsed)."""


class TrunkNotifications(Protocol):
    """What the SR-IOV side does with trunk pushes (``neutron-vo-Trunk/SubPort``)."""

    def on_trunks(self, event_type: str, trunks: list[Trunk]) -> None:
        """Trunks were created, updated or deleted (maybe not ours)."""

    def on_subports(self, event_type: str, subports: list[SubPort]) -> None:
        """Subports were added to (``created``) or removed from (``deleted``) trunks."""


class NotificationStats:
    """Counts per method of delivered and dropped messages, for a status page; each message
    handled is told to ``observer`` too (the daemon's metrics, see dpagent.rpc.observers)."""

    def __init__(self, observer: RpcObserver | None = None) -> None:
        self.observer = observer
        self._lock = threading.Lock()
        self.delivered: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.handler_errors: Counter[str] = Counter()

    def count(self, table: Counter[str], method: str) -> None:
        with self._lock:
            table[method] += 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {"delivered": dict(self.delivered), "dropped": dict(self.dropped),
                    "handler_errors": dict(self.handler_errors)}


# -- payloads -----------------------------------------------------------------------------------

def _kwargs(kwargs: Mapping[str, Any], method: str, known: tuple[str, ...]) -> None:
    for key in known:
        require(kwargs, key, "")
    extra = unknown_keys(kwargs, frozenset(known))
    if extra:
        LOG.warning("%s: ignoring unknown argument(s) %s", method, ", ".join(extra))


def parse_security_groups(kwargs: Mapping[str, Any], method: str) -> tuple[list[str]]:
    _kwargs(kwargs, method, ("security_groups",))
    return (expect_ids(kwargs["security_groups"], "security_groups"),)


def parse_port_update(kwargs: Mapping[str, Any], method: str
                      ) -> tuple[dict[str, Any], str | None, int | None, str | None]:
    _kwargs(kwargs, method, ("port", "network_type", "segmentation_id", "physical_network"))
    return (check_port(kwargs["port"]),
            expect_optional_str(kwargs["network_type"], "network_type"),
            expect_optional_int(kwargs["segmentation_id"], "segmentation_id", low=0),
            expect_optional_str(kwargs["physical_network"], "physical_network"))


def parse_port_delete(kwargs: Mapping[str, Any], method: str) -> tuple[str]:
    _kwargs(kwargs, method, ("port_id",))
    return (expect_str(kwargs["port_id"], "port_id"),)


def parse_binding_deactivate(kwargs: Mapping[str, Any], method: str) -> tuple[str, str, str]:
    _kwargs(kwargs, method, ("port_id", "host", "network_id"))
    return (expect_str(kwargs["port_id"], "port_id"), expect_str(kwargs["host"], "host"),
            expect_str(kwargs["network_id"], "network_id"))


def parse_binding_activate(kwargs: Mapping[str, Any], method: str) -> tuple[str, str]:
    _kwargs(kwargs, method, ("port_id", "host"))
    return (expect_str(kwargs["port_id"], "port_id"), expect_str(kwargs["host"], "host"))


def parse_network_update(kwargs: Mapping[str, Any], method: str) -> tuple[dict[str, Any]]:
    _kwargs(kwargs, method, ("network",))
    return (check_network(kwargs["network"]),)


def parse_network_delete(kwargs: Mapping[str, Any], method: str) -> tuple[str]:
    _kwargs(kwargs, method, ("network_id",))
    return (expect_str(kwargs["network_id"], "network_id"),)


def parse_agent_updated(kwargs: Mapping[str, Any], method: str) -> tuple[bool]:
    _kwargs(kwargs, method, ("payload",))
    payload = expect_mapping(kwargs["payload"], "payload")
    up = expect_bool(require(payload, "admin_state_up", "payload"), "payload.admin_state_up")
    extra = unknown_keys(payload, frozenset({"admin_state_up"}))
    if extra:
        LOG.warning("%s: ignoring unknown payload field(s) %s", method, ", ".join(extra))
    return (up,)


def parse_tunnel_cast(kwargs: Mapping[str, Any], method: str) -> tuple[str, str]:
    extra = unknown_keys(kwargs, frozenset({"tunnel_ip", "tunnel_type", "tunnel_id"}))
    if extra:
        LOG.warning("%s: ignoring unknown argument(s) %s", method, ", ".join(extra))
    return parse_tunnel_notice(kwargs)


def _partial(parse: Callable[[Any, str], tuple[list[Any], list[str]]]
             ) -> Callable[[Mapping[str, Any], str], tuple[list[Any]]]:
    """A parser of ``fdb_entries`` that keeps the good items and logs the bad ones."""
    def parse_kwargs(kwargs: Mapping[str, Any], method: str) -> tuple[list[Any]]:
        extra = unknown_keys(kwargs, frozenset({"fdb_entries", "host"}))
        if extra:
            LOG.warning("%s: ignoring unknown argument(s) %s", method, ", ".join(extra))
        items, problems = parse(require(kwargs, "fdb_entries", ""), "fdb_entries")
        for problem in problems:
            LOG.warning("%s: left out %s", method, problem)
        return (items,)
    return parse_kwargs


parse_fdb_cast = _partial(parse_fdb_entries)
parse_chg_ip_cast = _partial(parse_chg_ip)

PUSH_EVENTS = frozenset({"created", "updated", "deleted"})


def _parse_push(item: Callable[[Any, str], Any]
                ) -> Callable[[Mapping[str, Any], str], tuple[str, list[Any]]]:
    def parse(kwargs: Mapping[str, Any], method: str) -> tuple[str, list[Any]]:
        _kwargs(kwargs, method, ("resource_list", "event_type"))
        event = expect_str(kwargs["event_type"], "event_type")
        if event not in PUSH_EVENTS:
            raise PayloadError("event_type", f"expected one of {sorted(PUSH_EVENTS)}, "
                               f"got {event!r}")
        resources = expect_list(kwargs["resource_list"], "resource_list")
        return event, [item(r, f"resource_list[{i}]") for i, r in enumerate(resources)]
    return parse


parse_trunk_push = _parse_push(parse_trunk)
parse_raw_push = _parse_push(lambda item, field: item)
"""A push whose objects are parsed by its consumer, one by one (a bad one alone refused)."""
parse_subport_push = _parse_push(parse_subport)


# -- endpoints -------------------------------------------------------------------------------------

class _Endpoint:
    """Validate, then deliver; never raise into oslo.messaging."""

    target: oslo_messaging.Target

    def __init__(self, handler: Any, stats: NotificationStats | None = None) -> None:
        """``handler``: an :class:`AgentNotifications` (or :class:`TrunkNotifications` for the
        push endpoints)."""
        self.handler = handler
        self.stats = stats or NotificationStats()

    def _handle(self, ctxt: Any, method: str, kwargs: Mapping[str, Any],
                parse: Callable[[Mapping[str, Any], str], tuple[Any, ...]],
                deliver: Callable[..., None]) -> None:
        started = time.monotonic()
        error = self._deliver(ctxt, method, kwargs, parse, deliver)
        if self.stats.observer is not None:
            self.stats.observer.notification_done(method, time.monotonic() - started, error)

    def _deliver(self, ctxt: Any, method: str, kwargs: Mapping[str, Any],
                 parse: Callable[[Mapping[str, Any], str], tuple[Any, ...]],
                 deliver: Callable[..., None]) -> str | None:
        """None if delivered, else what went wrong: ``invalid`` or ``handler``."""
        request = ctxt.get("request_id") if isinstance(ctxt, Mapping) else None
        try:
            args = parse(kwargs, method)
        except PayloadError as exc:
            LOG.warning("dropped %s (request %s): invalid field %s: %s", method, request,
                        exc.field, exc.problem)
            self.stats.count(self.stats.dropped, method)
            return "invalid"
        self.stats.count(self.stats.delivered, method)
        try:
            deliver(*args)
        except Exception:  # noqa: BLE001 - a handler bug must not kill the consumer
            LOG.exception("handler of %s (request %s) failed", method, request)
            self.stats.count(self.stats.handler_errors, method)
            return "handler"
        return None


class SecurityGroupUpdateEndpoint(_Endpoint):
    target = oslo_messaging.Target(version=topics.SECURITY_GROUP_UPDATE_VERSION)

    def security_groups_rule_updated(self, ctxt: Any, /, **kwargs: Any) -> None:
        self._handle(ctxt, "security_groups_rule_updated", kwargs, parse_security_groups,
                     self.handler.on_security_groups_rule_updated)

    def security_groups_member_updated(self, ctxt: Any, /, **kwargs: Any) -> None:
        self._handle(ctxt, "security_groups_member_updated", kwargs, parse_security_groups,
                     self.handler.on_security_groups_member_updated)


class PortUpdateEndpoint(_Endpoint):
    target = oslo_messaging.Target(version=topics.L2_NOTIFICATION_VERSION)

    def port_update(self, ctxt: Any, /, **kwargs: Any) -> None:
        self._handle(ctxt, "port_update", kwargs, parse_port_update, self.handler.on_port_update)


class PortDeleteEndpoint(_Endpoint):
    target = oslo_messaging.Target(version=topics.L2_NOTIFICATION_VERSION)

    def port_delete(self, ctxt: Any, /, **kwargs: Any) -> None:
        self._handle(ctxt, "port_delete", kwargs, parse_port_delete, self.handler.on_port_delete)


class BindingDeactivateEndpoint(_Endpoint):
    target = oslo_messaging.Target(version=topics.L2_NOTIFICATION_VERSION)

    def binding_deactivate(self, ctxt: Any, /, **kwargs: Any) -> None:
        self._handle(ctxt, "binding_deactivate", kwargs, parse_binding_deactivate,
                     self.handler.on_binding_deactivate)


class BindingActivateEndpoint(_Endpoint):
    target = oslo_messaging.Target(version=topics.L2_NOTIFICATION_VERSION)

    def binding_activate(self, ctxt: Any, /, **kwargs: Any) -> None:
        self._handle(ctxt, "binding_activate", kwargs, parse_binding_activate,
                     self.handler.on_binding_activate)


class NetworkUpdateEndpoint(_Endpoint):
    target = oslo_messaging.Target(version=topics.L2_NOTIFICATION_VERSION)

    def network_update(self, ctxt: Any, /, **kwargs: Any) -> None:
        self._handle(ctxt, "network_update", kwargs, parse_network_update,
                     self.handler.on_network_update)


class NetworkDeleteEndpoint(_Endpoint):
    target = oslo_messaging.Target(version=topics.L2_NOTIFICATION_VERSION)

    def network_delete(self, ctxt: Any, /, **kwargs: Any) -> None:
        self._handle(ctxt, "network_delete", kwargs, parse_network_delete,
                     self.handler.on_network_delete)


class AgentEndpoint(_Endpoint):
    """dpagent's own topic: ``agent_updated(payload={'admin_state_up': bool})``."""

    target = oslo_messaging.Target(version=topics.AGENT_VERSION)

    def agent_updated(self, ctxt: Any, /, **kwargs: Any) -> None:
        self._handle(ctxt, "agent_updated", kwargs, parse_agent_updated,
                     self.handler.on_agent_updated)


class TrunkPushEndpoint(_Endpoint):
    """``push`` of Trunk objects (ResourcesPushRpcCallback 1.1; no namespace on the wire)."""

    target = oslo_messaging.Target(version=topics.RESOURCE_PUSH_VERSION)

    def push(self, ctxt: Any, /, **kwargs: Any) -> None:
        self._handle(ctxt, "push Trunk", kwargs, parse_trunk_push, self.handler.on_trunks)


class SubPortPushEndpoint(_Endpoint):
    target = oslo_messaging.Target(version=topics.RESOURCE_PUSH_VERSION)

    def push(self, ctxt: Any, /, **kwargs: Any) -> None:
        self._handle(ctxt, "push SubPort", kwargs, parse_subport_push,
                     self.handler.on_subports)


def resource_push_endpoint(resource_type: str) -> type[_Endpoint]:
    """The endpoint of ``neutron-vo-<resource_type>-<version>``: ``push`` delivered to
    ``handler.on_resource_push(resource_type, event_type, resource_list)``."""

    class ResourcePushEndpoint(_Endpoint):
        target = oslo_messaging.Target(version=topics.RESOURCE_PUSH_VERSION)

        def push(self, ctxt: Any, /, **kwargs: Any) -> None:
            self._handle(ctxt, f"push {resource_type}", kwargs, parse_raw_push,
                         lambda event, items: self.handler.on_resource_push(
                             resource_type, event, items))

    ResourcePushEndpoint.__name__ = ResourcePushEndpoint.__qualname__ = \
        f"{resource_type}PushEndpoint"
    return ResourcePushEndpoint


def resource_push_catalog(topics_by_type: Mapping[str, str]
                          ) -> dict[str, tuple[type[_Endpoint], bool]]:
    """topic -> (endpoint, fanout) for the resource cache's pushes (type -> topic)."""
    return {topic: (resource_push_endpoint(kind), True) for kind, topic in
            sorted(topics_by_type.items())}


class TunnelUpdateEndpoint(_Endpoint):
    target = oslo_messaging.Target(version=topics.L2_NOTIFICATION_VERSION)

    def tunnel_update(self, ctxt: Any, /, **kwargs: Any) -> None:
        self._handle(ctxt, "tunnel_update", kwargs, parse_tunnel_cast,
                     self.handler.on_tunnel_update)


class TunnelDeleteEndpoint(_Endpoint):
    target = oslo_messaging.Target(version=topics.L2_NOTIFICATION_VERSION)

    def tunnel_delete(self, ctxt: Any, /, **kwargs: Any) -> None:
        self._handle(ctxt, "tunnel_delete", kwargs, parse_tunnel_cast,
                     self.handler.on_tunnel_delete)


class L2populationEndpoint(_Endpoint):
    """l2population's casts (fanout, or ``<topic>.<host>`` for a host's full table)."""

    target = oslo_messaging.Target(version=topics.L2_NOTIFICATION_VERSION)

    def add_fdb_entries(self, ctxt: Any, /, **kwargs: Any) -> None:
        self._handle(ctxt, "add_fdb_entries", kwargs, parse_fdb_cast, self.handler.on_fdb_add)

    def remove_fdb_entries(self, ctxt: Any, /, **kwargs: Any) -> None:
        self._handle(ctxt, "remove_fdb_entries", kwargs, parse_fdb_cast,
                     self.handler.on_fdb_remove)

    def update_fdb_entries(self, ctxt: Any, /, **kwargs: Any) -> None:
        self._handle(ctxt, "update_fdb_entries", kwargs, parse_chg_ip_cast,
                     self.handler.on_fdb_ip_change)


def overlay_catalog(l2_population: bool) -> dict[str, tuple[type[_Endpoint], bool]]:
    """What the overlay consumes (an OverlayNotifications handler): the tunnel casts, and
    l2population's only when it is on (neutron's agent ignores tunnel_update then, but still
    listens; so does dpagent, the handler knows)."""
    catalog: dict[str, tuple[type[_Endpoint], bool]] = {
        topics.TUNNEL_UPDATE: (TunnelUpdateEndpoint, True),
        topics.TUNNEL_DELETE: (TunnelDeleteEndpoint, True),
    }
    if l2_population:
        catalog[topics.L2POP_UPDATE] = (L2populationEndpoint, True)
    return catalog


# what the SR-IOV side consumes (a TrunkNotifications handler)
TRUNK_PUSHES: dict[str, tuple[type[_Endpoint], bool]] = {
    topics.TRUNK_PUSH: (TrunkPushEndpoint, True),
    topics.SUBPORT_PUSH: (SubPortPushEndpoint, True),
}

# topic -> (endpoint class, fanout): what the agent consumes
CONSUMED: dict[str, tuple[type[_Endpoint], bool]] = {
    topics.SECURITY_GROUP_UPDATE: (SecurityGroupUpdateEndpoint, True),
    topics.PORT_UPDATE: (PortUpdateEndpoint, True),
    topics.PORT_DELETE: (PortDeleteEndpoint, True),
    topics.BINDING_DEACTIVATE: (BindingDeactivateEndpoint, True),
    topics.BINDING_ACTIVATE: (BindingActivateEndpoint, True),
    topics.NETWORK_UPDATE: (NetworkUpdateEndpoint, True),
    topics.NETWORK_DELETE: (NetworkDeleteEndpoint, True),
    topics.AGENT: (AgentEndpoint, False),
}

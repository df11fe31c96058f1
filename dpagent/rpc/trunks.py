"""Trunks as neutron's trunk service shows them to agents: versioned-object primitives in,
typed and validated values out, and the calls an agent makes about them.

neutron-server tells agents about trunks only through versioned objects (CONTRACT.md 1.5, 1.6,
2.2): ``pull`` of a ``Trunk`` by its parent port (``q-plugin``, 1.1), pushes of ``Trunk`` and
``SubPort`` objects on ``neutron-vo-Trunk-1.1`` / ``neutron-vo-SubPort-1.0``, and the trunk
topic's ``update_subport_bindings`` / ``update_trunk_status`` (namespace ``trunk``, 1.0).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, NamedTuple

import oslo_messaging

from dpagent.rpc import topics
from dpagent.rpc.errors import InvalidReply
from dpagent.rpc.transport import call, rpc_client
from dpagent.rpc.validation import (
    PayloadError,
    expect_int,
    expect_list,
    expect_mapping,
    expect_str,
    require,
)

TRUNK_TOPIC: Final = "trunk"
TRUNK_NAMESPACE: Final = "trunk"
TRUNK_VERSION: Final = "1.0"
PULL_VERSION: Final = "1.1"  # ResourcesPullRpcCallback
TRUNK_OBJECT_VERSION: Final = "1.1"
SUBPORT_OBJECT_VERSION: Final = "1.0"

# update_trunk_status values (neutron_lib.services.trunk.constants)
TRUNK_ACTIVE: Final = "ACTIVE"
TRUNK_DEGRADED: Final = "DEGRADED"  # some subports could not be wired
TRUNK_ERROR: Final = "ERROR"  # the parent could not be wired

# SubPort segmentation types (neutron_lib.services.trunk.constants)
SEGMENTATION_VLAN: Final = "vlan"
SEGMENTATION_INHERIT: Final = "inherit"  # the VM tags it with its network's own segmentation id


class SubPort(NamedTuple):
    """One subport: a port the VM reaches through its trunk's parent, tagging its frames with
    VLAN ``segmentation_id`` (the VM-side VLAN; with ``inherit``, its network's own
    segmentation id). That is not, in general, its network's VLAN on the wire: the subport's
    network segment is in its own device details."""

    port_id: str
    trunk_id: str
    segmentation_type: str
    segmentation_id: int

    def as_dict(self) -> dict[str, Any]:
        """The shape ``update_subport_bindings`` takes."""
        return self._asdict()


class Trunk(NamedTuple):
    """A trunk: its parent port and its subports (sorted by VLAN, for stable comparisons)."""

    id: str
    port_id: str
    sub_ports: tuple[SubPort, ...]
    admin_state_up: bool = True


def _object_data(value: Any, field: str, name: str) -> dict[str, Any]:
    primitive = expect_mapping(value, field)
    found = primitive.get("versioned_object.name")
    if found != name:
        raise PayloadError(f"{field}.versioned_object.name", f"expected {name!r}, got {found!r}")
    return dict(expect_mapping(require(primitive, "versioned_object.data", field),
                               f"{field}.versioned_object.data"))


def parse_subport(value: Any, field: str = "subport") -> SubPort:
    """A ``SubPort`` primitive (1.0): segmentation type ``vlan`` or ``inherit``, id 1-4094."""
    data = _object_data(value, field, "SubPort")
    where = f"{field}.versioned_object.data"
    kind = expect_str(require(data, "segmentation_type", where), f"{where}.segmentation_type")
    if kind not in (SEGMENTATION_VLAN, SEGMENTATION_INHERIT):
        raise PayloadError(f"{where}.segmentation_type",
                           f"expected 'vlan' or 'inherit', got {kind!r}")
    return SubPort(expect_str(require(data, "port_id", where), f"{where}.port_id"),
                   expect_str(require(data, "trunk_id", where), f"{where}.trunk_id"),
                   kind,
                   expect_int(require(data, "segmentation_id", where),
                              f"{where}.segmentation_id", low=1, high=4094))


def parse_trunk(value: Any, field: str = "trunk") -> Trunk:
    """A ``Trunk`` primitive (1.1) with its embedded subports."""
    data = _object_data(value, field, "Trunk")
    where = f"{field}.versioned_object.data"
    subs = [parse_subport(s, f"{where}.sub_ports[{i}]")
            for i, s in enumerate(expect_list(data.get("sub_ports", []), f"{where}.sub_ports"))]
    admin = data.get("admin_state_up", True)
    if not isinstance(admin, bool):
        raise PayloadError(f"{where}.admin_state_up", f"expected a boolean, got {admin!r}")
    return Trunk(expect_str(require(data, "id", where), f"{where}.id"),
                 expect_str(require(data, "port_id", where), f"{where}.port_id"),
                 tuple(sorted(subs, key=lambda s: (s.segmentation_id, s.port_id))), admin)


class TrunkApi:
    """The agent's trunk calls on behalf of ``host``."""

    def __init__(self, transport: oslo_messaging.Transport, host: str, *,
                 timeout: float) -> None:
        self.host = host
        self._plugin = rpc_client(transport, topics.PLUGIN, PULL_VERSION, timeout)
        self._trunk = rpc_client(transport, TRUNK_TOPIC, TRUNK_VERSION, timeout,
                                 namespace=TRUNK_NAMESPACE)

    def trunk_of(self, parent_port_id: str) -> Trunk | None:
        """The trunk whose parent is ``parent_port_id``, or None (most ports have none)."""
        reply = call(self._plugin, "pull", arguments={
            "resource_type": "Trunk", "version": TRUNK_OBJECT_VERSION,
            "resource_id": parent_port_id})
        if reply is None:
            return None
        try:
            trunk = parse_trunk(reply, "reply")
        except PayloadError as exc:
            raise InvalidReply(f"pull Trunk of port {parent_port_id}: {exc}") from exc
        if trunk.port_id != parent_port_id:
            raise InvalidReply(f"pull Trunk of port {parent_port_id}: the server answered "
                               f"with trunk {trunk.id} of port {trunk.port_id}")
        return trunk

    def update_subport_bindings(self, subports: Iterable[SubPort]) -> dict[str, Any]:
        """Bind the subports to this host (what neutron's trunk drivers do once wired)."""
        reply = call(self._trunk, "update_subport_bindings",
                     subports=[s.as_dict() for s in subports])
        if not isinstance(reply, dict):
            raise InvalidReply(f"update_subport_bindings: expected an object, got {reply!r}")
        return reply

    def update_trunk_status(self, trunk_id: str, status: str) -> None:
        call(self._trunk, "update_trunk_status", trunk_id=trunk_id, status=status)

"""The OVSDB side of an interconnection: bridges, patch ports and their peers (ovsdbapp).

Every write is an ovsdbapp transaction of the Open_vSwitch schema, which returns only once
ovs-vswitchd has applied it (like ``ovs-vsctl`` without ``--no-wait``): after
:meth:`PatchPorts.prepare` new ports have their ofports, after :meth:`PatchPorts.connect`
the ports forward.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

LOG = logging.getLogger(__name__)

PATCH = "patch"
UNCONNECTED_PEER = "nonexistent-peer"
"""The peer a new patch port names until its flows are installed: no interface has this name,
so OVS gives the port an ofport but connects it to nothing (neutron uses the same value)."""


@dataclass(frozen=True, slots=True)
class NewPatchPort:
    bridge: str
    name: str
    ofport_request: int | None = None


@dataclass(frozen=True, slots=True)
class InterfaceInfo:
    name: str
    type: str
    """"patch", "" (a system device such as a veth), "internal", ..."""
    peer: str | None
    ofport: int
    """-1 or 0 while OVS has not (or could not) open it."""


class PatchPorts:
    """Reads and writes the rows an interconnection is made of, through an ovsdbapp API."""

    def __init__(self, api: Any) -> None:
        self.api = api

    # -- reads --------------------------------------------------------------------------------

    def bridge_exists(self, bridge: str) -> bool:
        return bool(self.api.br_exists(bridge).execute(check_error=True))

    def bridge_column(self, bridge: str, column: str) -> str:
        value = self.api.db_get("Bridge", bridge, column).execute(check_error=True)
        return _scalar(value) or ""

    def ports_of(self, bridge: str) -> set[str]:
        return set(self.api.list_ports(bridge).execute(check_error=True))

    def interfaces(self, names: list[str]) -> dict[str, InterfaceInfo]:
        """The named Interface rows that exist, by name."""
        rows = self.api.db_list("Interface", names, columns=["name", "type", "options", "ofport"],
                                if_exists=True).execute(check_error=True)
        found = {}
        for row in rows:
            ofport = _scalar(row["ofport"])
            found[row["name"]] = InterfaceInfo(
                row["name"], row["type"] or "", (row["options"] or {}).get("peer"),
                ofport if isinstance(ofport, int) else -1)
        return found

    # -- writes -------------------------------------------------------------------------------

    def prepare(self, secure: str | None, create: Sequence[NewPatchPort]) -> dict[str, int]:
        """In one transaction: make bridge ``secure`` fail_mode secure (None: leave it) and add
        the ``create`` patch ports unconnected; returns every created port's ofport.

        OVS flushes a bridge's flows when its fail mode changes, so this must come before
        dpagent installs any flow there.
        """
        if secure is None and not create:
            return {}
        with self.api.transaction(check_error=True) as txn:
            if secure is not None:
                txn.add(self.api.set_fail_mode(secure, "secure"))
            for port in create:
                attrs: dict[str, Any] = {"type": PATCH, "options": {"peer": UNCONNECTED_PEER}}
                if port.ofport_request is not None:
                    attrs["ofport_request"] = port.ofport_request
                txn.add(self.api.add_port(port.bridge, port.name, may_exist=False, **attrs))
        found = self.interfaces([port.name for port in create])
        ofports = {name: info.ofport for name, info in found.items() if info.ofport > 0}
        missing = [port.name for port in create if port.name not in ofports]
        if missing:
            raise RuntimeError(f"OVS gave the patch ports {', '.join(missing)} no ofport")
        return ofports

    def ensure_pair(self, first: NewPatchPort, second: NewPatchPort,
                    secure: str | None = None) -> tuple[int, int, bool]:
        """Both ports of a pair exist as patch ports on their bridges: (first's ofport,
        second's ofport, whether they already name each other as peers).

        A patch port already on its bridge is reused with its ofport; whatever else holds a
        name (a port on another bridge, a veth left behind) is deleted and the patch port
        created unconnected, in the transaction that makes ``secure`` fail_mode secure (see
        :meth:`prepare`)."""
        existing = self.interfaces([first.name, second.name])
        ofports: dict[str, int] = {}
        create = []
        for port in (first, second):
            info = existing.get(port.name)
            if info is not None and info.type == PATCH and info.ofport > 0 and \
                    port.name in self.ports_of(port.bridge):
                ofports[port.name] = info.ofport
                continue
            if info is not None:
                LOG.warning("replacing interface %s (type %r) by a patch port on %s",
                            port.name, info.type, port.bridge)
                self.delete_ports([port.name])
            create.append(port)
        ofports.update(self.prepare(secure, create))
        connected = (not create and existing[first.name].peer == second.name
                     and existing[second.name].peer == first.name)
        return ofports[first.name], ofports[second.name], connected

    def connect(self, first: str, second: str) -> None:
        """Name each port as the other's peer, in one transaction: they forward from now on."""
        with self.api.transaction(check_error=True) as txn:
            txn.add(self.api.db_set("Interface", first, ("options", {"peer": second})))
            txn.add(self.api.db_set("Interface", second, ("options", {"peer": first})))

    def delete_ports(self, names: list[str]) -> None:
        if not names:
            return
        with self.api.transaction(check_error=True) as txn:
            for name in names:
                txn.add(self.api.del_port(name, if_exists=True))


def _scalar(value: Any) -> Any:
    """An optional OVSDB column comes back as ``[]`` or ``[value]``."""
    if isinstance(value, list):
        return value[0] if value else None
    return value

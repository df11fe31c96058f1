"""The OVSDB side of trunk bridges (ovsdbapp): what a trunk bridge holds, and the writes that
wire it to br-int.

Every write is an ovsdbapp transaction, which returns once ovs-vswitchd has applied it. Pairs
are made unconnected first -- each end names a peer that does not exist, as physical bridges'
pairs are (:mod:`dpagent.physnet.patch_ports`) -- with their tags, iface-ids and the parent's
trunk metadata in the same transaction, then connected in a second one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from dpagent.physnet.patch_ports import UNCONNECTED_PEER
from dpagent.trunk.naming import SUBPORT_PREFIX, integration_side, is_trunk_bridge
from dpagent.trunk.plan import PATCH, BridgeView, Changes, ObservedPort, parse_subport_ids

LOG = logging.getLogger(__name__)


def _scalar(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else None
    return value


class TrunkSwitch:
    """Reads and writes trunk bridges through an ovsdbapp Open_vSwitch API."""

    def __init__(self, api: Any, integration_bridge: str) -> None:
        self.api = api
        self.integration_bridge = integration_bridge

    def trunk_bridges(self) -> list[str]:
        return sorted(b for b in self.api.list_br().execute(check_error=True)
                      if is_trunk_bridge(b))

    def _ports(self, names: Iterable[str]) -> dict[str, ObservedPort]:
        wanted = sorted(set(names))
        if not wanted:
            return {}
        ports = {row["name"]: row for row in self.api.db_list(
            "Port", wanted, columns=["name", "tag", "vlan_mode"], if_exists=True
        ).execute(check_error=True)}
        found = {}
        for row in self.api.db_list("Interface", wanted,
                                    columns=["name", "type", "options", "external_ids"],
                                    if_exists=True).execute(check_error=True):
            port = ports.get(row["name"], {})
            tag = _scalar(port.get("tag"))
            found[row["name"]] = ObservedPort(
                row["name"], row["type"] or "", (row["options"] or {}).get("peer"),
                tag if isinstance(tag, int) else None, _scalar(port.get("vlan_mode")),
                dict(row["external_ids"] or {}))
        return found

    def view(self, bridge: str, candidates: Iterable[str] = ()) -> BridgeView | None:
        """The bridge's ports and the br-int ports among ``candidates``, the peers its ports
        name and the ends of the subports its parent records; None if there is no bridge."""
        if not self.api.br_exists(bridge).execute(check_error=True):
            return None
        ports = self._ports(self.api.list_ports(bridge).execute(check_error=True))
        names = set(candidates)
        for port in ports.values():
            if port.peer:
                names.add(port.peer)
            names.update(integration_side(SUBPORT_PREFIX, sub)
                         for sub in parse_subport_ids(port.external_ids))
        on_int = set(self.api.list_ports(self.integration_bridge).execute(check_error=True))
        return BridgeView(bridge, ports, self._ports(names & on_int))

    def apply(self, bridge: str, changes: Changes) -> None:
        """Delete, create (unconnected), re-tag, re-label and record in one transaction; then
        connect the new pairs in another."""
        api = self.api
        with api.transaction(check_error=True) as txn:
            for name in changes.delete:
                txn.add(api.del_port(name, if_exists=True))
            for pair in changes.create:
                ids = pair.external_ids()
                txn.add(api.add_port(self.integration_bridge, pair.integration,
                                     may_exist=False, type=PATCH,
                                     options={"peer": UNCONNECTED_PEER}, external_ids=ids))
                txn.add(api.add_port(bridge, pair.trunk, may_exist=False, type=PATCH,
                                     options={"peer": UNCONNECTED_PEER}, external_ids=ids))
                txn.add(api.db_set("Port", pair.trunk, ("vlan_mode", "access"),
                                   ("tag", pair.tag)))
            for name, tag in sorted(changes.retag.items()):
                txn.add(api.db_set("Port", name, ("vlan_mode", "access"), ("tag", tag)))
            for name, ids in sorted(changes.relabel.items()):
                txn.add(api.db_set("Interface", name, ("external_ids", ids)))
            if changes.metadata is not None:
                parent, ids = changes.metadata
                txn.add(api.db_set("Interface", parent, ("external_ids", ids)))
        if changes.create:
            with api.transaction(check_error=True) as txn:
                for pair in changes.create:
                    txn.add(api.db_set("Interface", pair.integration,
                                       ("options", {"peer": pair.trunk})))
                    txn.add(api.db_set("Interface", pair.trunk,
                                       ("options", {"peer": pair.integration})))

    def delete_ports(self, names: Iterable[str]) -> None:
        wanted = sorted(set(names))
        if not wanted:
            return
        with self.api.transaction(check_error=True) as txn:
            for name in wanted:
                txn.add(self.api.del_port(name, if_exists=True))

    def dispose(self, view: BridgeView) -> None:
        """Remove a trunk bridge and the br-int ends of its pairs (``dispose_trunk``)."""
        with self.api.transaction(check_error=True) as txn:
            for name in sorted(view.integration):
                txn.add(self.api.del_port(name, self.integration_bridge, if_exists=True))
            txn.add(self.api.del_br(view.name, if_exists=True))

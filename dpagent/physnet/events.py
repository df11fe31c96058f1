"""OVSDB Bridge row events for the bridges the interconnection depends on.

A mapped bridge created (missing at start, or deleted and re-created while the agent runs) or
deleted, and the integration bridge re-created, are pushed by ovsdb-server; the handler only
marks the bridge for re-wiring (the work happens on the manager's own thread, never on ovsdbapp's
notification thread, which also delivers the VIF events).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from ovsdbapp.backend.ovs_idl import event


class BridgeRowEvent(event.RowEvent):  # type: ignore[misc]
    """Calls ``on_bridge(event_name, bridge_name)`` for Bridge rows named in ``names``."""

    def __init__(self, names: Collection[str], on_bridge: Callable[[str, str], None]) -> None:
        super().__init__((self.ROW_CREATE, self.ROW_DELETE), "Bridge", None)
        self.names = frozenset(names)
        self.on_bridge = on_bridge
        self.event_name = "DpagentPhysicalBridgeEvent"

    def match_fn(self, event_name: str, row: Any, old: Any) -> bool:
        return getattr(row, "name", None) in self.names

    def run(self, event_name: str, row: Any, old: Any) -> None:
        self.on_bridge(event_name, row.name)

"""Taking a bridge over from another agent's controller.

ovs-vswitchd flushes a bridge's flows when its last controller goes (connmgr), so the
controller neutron's agent leaves is removed just before the commit of the bundle that brings
every flow dpagent wants there: the bundle refills the bridge at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class ControllerTable(Protocol):
    def controllers(self, bridge: str) -> list[str]:
        ...

    def drop_controllers(self, bridge: str) -> list[str]:
        ...


def controller_hand_over(switch: ControllerTable,
                         bridge: str) -> Callable[[], object] | None:
    """The ``before_commit`` hook that removes ``bridge``'s controllers, or None if it has
    none. A hook means the bundle must flush and bring every flow (the removal flushes)."""
    if not switch.controllers(bridge):
        return None
    return lambda: switch.drop_controllers(bridge)

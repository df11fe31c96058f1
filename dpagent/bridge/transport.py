"""How dpagent talks to a bridge: atomic bundles of flow-mods and dumps of its own flows.

Flows are identified by their content cookie (:mod:`flows.cookies`): adding installs a
:class:`flows.Flow`, deleting names a cookie. A delete by exact cookie touches only that one flow,
never an operator's flow, and needs no knowledge of how the switch prints matches.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from flows import Flow


class Op(enum.Enum):
    ADD = "add"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class FlowMod:
    """One change: add ``flow`` (ADD), or delete the flows whose cookie is ``cookie`` (DELETE;
    with a ``flow``, only those of its table that match it: see :meth:`purge`)."""

    op: Op
    cookie: int
    flow: Flow | None = None

    @staticmethod
    def add(flow: Flow) -> FlowMod:
        return FlowMod(Op.ADD, flow.cookie, flow)

    @staticmethod
    def delete(cookie: int) -> FlowMod:
        return FlowMod(Op.DELETE, cookie)

    @staticmethod
    def purge(selector: Flow) -> FlowMod:
        """Delete every flow of ``selector``'s table whose cookie is ``selector.cookie`` and
        whose match is at least ``selector.match`` (a non-strict delete): flows the switch
        made itself (learned), which no owner holds and no content cookie names one by one."""
        return FlowMod(Op.DELETE, selector.cookie, selector)


@dataclass(frozen=True, slots=True)
class InstalledFlow:
    """A dpagent flow as read back from the switch: enough to compare and to delete it."""

    cookie: int
    table: int
    priority: int


class SwitchError(Exception):
    """The switch could not be reached or answered something unexpected."""


class BundleRejected(SwitchError):
    """The switch refused a bundle; nothing of it was applied.

    ``mod`` is the flow-mod the switch named (None if it named none), ``reason`` its words.
    """

    def __init__(self, reason: str, mod: FlowMod | None = None) -> None:
        self.reason = reason
        self.mod = mod
        what = f" at {mod.flow.render() if mod and mod.flow else mod}" if mod else ""
        super().__init__(f"bundle rejected{what}: {reason}")


class FlowTransport(Protocol):
    """The switch side of a :class:`dpagent.bridge.programmer.BridgeProgrammer`."""

    def apply(self, mods: Sequence[FlowMod],
              before_commit: Callable[[], object] | None = None) -> None:
        """Apply all of ``mods`` in one atomic bundle, in order (deletes before adds).

        ``before_commit`` is called once the switch holds the whole bundle, right before the
        commit (as late as the transport can): for a change that flushes the switch, so that
        the bundle refills it at once.

        Raises :class:`BundleRejected` naming the offending flow-mod; then the switch's flows
        are exactly as before the call.
        """

    def dump(self, cookie: int, mask: int) -> list[InstalledFlow]:
        """Every flow whose cookie matches ``cookie``/``mask``, in any table."""

    def configure_switch(self) -> None:
        """Settings the flows rely on: IP fragments handled "nx-match", so a first fragment
        keeps its ports (the default zeroes them, and a stateless port rule would drop it).
        Not kept by OVS across an ovs-vswitchd restart, hence set on every reconcile."""

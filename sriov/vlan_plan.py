"""From a VF's current VLANs to the desired ones: the fewest writes, no flap (pure).

A VF carries either one port VLAN (tagged and stripped by the NIC), or a trunk (a set of VLANs
the VF uses tagged), or neither.  The plan:

* towards a trunk: clear the port VLAN if one is set, then ``add`` what is missing, then ``rem``
  what is extra -- adding first so a trunk that changes never passes through empty (on i40e an
  empty trunk turns ``allow_untagged`` back on) and a VLAN that stays is never touched;
* towards a port VLAN or untagged: empty the trunk, then set the port VLAN if it differs.

At most one ``add`` and one ``rem`` (each a batch); nothing at all when the VF is already right.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sriov.vlans import check_vlan, check_vlans, format_range_list

StepKind = Literal["port_vlan", "trunk_add", "trunk_rem"]


@dataclass(frozen=True)
class VlanIntent:
    """The VLANs a VF should carry: ``port_vlan`` (0 = none) or ``trunk``, not both."""

    port_vlan: int = 0
    trunk: frozenset[int] = frozenset()

    def check(self) -> None:
        """ValueError (:class:`~sriov.vlans.VlanRangeError`) naming the offending VLAN."""
        if self.port_vlan:
            check_vlan(self.port_vlan)
        check_vlans(self.trunk)
        if self.port_vlan and self.trunk:
            raise ValueError(f"port VLAN {self.port_vlan} and trunk "
                             f"{format_range_list(self.trunk)} together: a VF carries one or "
                             "the other")

    def describe(self) -> str:
        if self.trunk:
            return f"trunk {format_range_list(self.trunk)}"
        return f"port VLAN {self.port_vlan}" if self.port_vlan else "untagged"


@dataclass(frozen=True)
class VlanStep:
    """One write: set the port VLAN to ``vlans[0]`` (0 clears), or add/remove trunk VLANs."""

    kind: StepKind
    vlans: frozenset[int]

    def describe(self) -> str:
        if self.kind == "port_vlan":
            return f"port VLAN {next(iter(self.vlans))}"
        verb = "add" if self.kind == "trunk_add" else "rem"
        return f"trunk {verb} {format_range_list(self.vlans)}"


def plan_vlans(port_vlan: int, trunk: frozenset[int], intent: VlanIntent) -> tuple[VlanStep, ...]:
    """The steps from (``port_vlan``, ``trunk``) to ``intent``, in order."""
    steps: list[VlanStep] = []
    if intent.trunk:
        if port_vlan:
            steps.append(VlanStep("port_vlan", frozenset({0})))
        if intent.trunk - trunk:
            steps.append(VlanStep("trunk_add", intent.trunk - trunk))
        if trunk - intent.trunk:
            steps.append(VlanStep("trunk_rem", trunk - intent.trunk))
        return tuple(steps)
    if trunk:
        steps.append(VlanStep("trunk_rem", trunk))
    if port_vlan != intent.port_vlan:
        steps.append(VlanStep("port_vlan", frozenset({intent.port_vlan})))
    return tuple(steps)


def apply_step(port_vlan: int, trunk: frozenset[int],
               step: VlanStep) -> tuple[int, frozenset[int]]:
    """What a step does to (port VLAN, trunk) -- the model the plan is checked against."""
    if step.kind == "port_vlan":
        return next(iter(step.vlans)), trunk
    if step.kind == "trunk_add":
        return port_vlan, trunk | step.vlans
    return port_vlan, trunk - step.vlans


def undo_step(port_vlan: int, trunk: frozenset[int], step: VlanStep) -> VlanStep:
    """The step that reverts ``step`` taken from (``port_vlan``, ``trunk``)."""
    if step.kind == "port_vlan":
        return VlanStep("port_vlan", frozenset({port_vlan}))
    if step.kind == "trunk_add":
        return VlanStep("trunk_rem", step.vlans - trunk)
    return VlanStep("trunk_add", step.vlans & trunk)

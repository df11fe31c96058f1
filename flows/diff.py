"""The difference between two flow sets: what the switch must be told to go from one to the other.

A flow is identified by (table, priority, match); a flow whose identity stays but whose actions or
cookie change is a modification (one flow-mod), not a delete plus an add.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from flows.flow import Flow


@dataclass(frozen=True)
class FlowDiff:
    add: tuple[Flow, ...]
    modify: tuple[Flow, ...]
    delete: tuple[Flow, ...]

    @property
    def flow_mods(self) -> int:
        return len(self.add) + len(self.modify) + len(self.delete)

    def __bool__(self) -> bool:
        return bool(self.flow_mods)


def diff(old: Iterable[Flow], new: Iterable[Flow]) -> FlowDiff:
    before = {f.key: f for f in old}
    after = {f.key: f for f in new}
    add = tuple(f for key, f in sorted(after.items()) if key not in before)
    delete = tuple(f for key, f in sorted(before.items()) if key not in after)
    modify = tuple(f for key, f in sorted(after.items())
                   if key in before and before[key] != f)
    return FlowDiff(add, modify, delete)

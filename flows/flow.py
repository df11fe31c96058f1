"""The value the compiler produces: one OpenFlow flow, rendered to text only at the edge."""

from __future__ import annotations

from dataclasses import dataclass

from flows.pipeline import Table

MatchItem = tuple[str, str]
"""One match field: ``("nw_src", "10.0.0.0/8")``; a protocol shorthand has an empty value
(``("tcp", "")``)."""


@dataclass(frozen=True, slots=True, order=True)
class Flow:
    """One flow of br-int.

    ``table``, ``priority`` and ``match`` identify the flow on the switch (two flows with the same
    identity cannot coexist); ``actions`` and ``cookie`` are its content. Flows order by table,
    then priority, then match, which is the order :func:`render` lines are printed in.
    """

    table: int
    priority: int
    match: tuple[MatchItem, ...]
    actions: tuple[str, ...]
    cookie: int

    @property
    def key(self) -> tuple[int, int, tuple[MatchItem, ...]]:
        """The flow's identity on the switch."""
        return (self.table, self.priority, self.match)

    def match_text(self) -> str:
        return ",".join(f"{name}={value}" if value else name for name, value in self.match)

    def render(self) -> str:
        """The flow in ``ovs-ofctl add-flows`` syntax."""
        match = self.match_text()
        head = f"table={self.table},priority={self.priority},cookie={self.cookie:#x}"
        actions = ",".join(self.actions) if self.actions else "drop"
        return f"{head},{match},actions={actions}" if match else f"{head},actions={actions}"


def flow(table: Table, priority: int, match: tuple[MatchItem, ...], actions: tuple[str, ...],
         cookie: int) -> Flow:
    """Build a flow; the one place that turns a :class:`Table` into its number."""
    return Flow(int(table), priority, match, actions, cookie)

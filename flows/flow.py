"""The value the compiler produces: one OpenFlow flow, rendered to text only at the edge."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from flows import cookies

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
    body: str = field(default="", compare=False, repr=False)
    """The rendered flow without its cookie, if a caller keeps it; the compiler does not: at
    `large` the texts of 78,000 flows held 10 MiB, and the agent's OpenFlow transport encodes
    from ``match`` and ``actions`` (rendering again costs 0.2 s, only for text output)."""

    @property
    def key(self) -> tuple[int, int, tuple[MatchItem, ...]]:
        """The flow's identity on the switch."""
        return (self.table, self.priority, self.match)

    def match_text(self) -> str:
        return ",".join(f"{name}={value}" if value else name for name, value in self.match)

    def render_body(self) -> str:
        """What the flow matches and does, without table, priority and cookie."""
        if self.body:
            return self.body
        match = self.match_text()
        actions = ",".join(self.actions) if self.actions else "drop"
        return f"{match},actions={actions}" if match else f"actions={actions}"

    def content(self) -> str:
        """Everything but the cookie: the text a content cookie is the hash of."""
        return f"table={self.table},priority={self.priority},{self.render_body()}"

    def render(self) -> str:
        """The flow in ``ovs-ofctl add-flows`` syntax."""
        return (f"table={self.table},priority={self.priority},cookie={self.cookie:#x},"
                f"{self.render_body()}")


def flow(table: enum.IntEnum, priority: int, match: tuple[MatchItem, ...], actions: tuple[str, ...],
         kind: cookies.Kind) -> Flow:
    """Build a flow with its content cookie (see :mod:`flows.cookies`)."""
    draft = Flow(int(table), priority, match, actions, 0)
    return finished(draft, kind, draft.render_body())


def finished(draft: Flow, kind: cookies.Kind, body: str) -> Flow:
    """``draft`` with the content cookie of its ``kind`` (``body`` is its rendered text)."""
    cookie = cookies.content_cookie(kind, f"{draft.table},{draft.priority},{body}")
    return Flow(draft.table, draft.priority, draft.match, draft.actions, cookie)

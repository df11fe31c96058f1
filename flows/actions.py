"""Action constructors: the only place flow actions are spelled.

Each returns the text of one action in ``ovs-ofctl`` syntax; a flow's actions are a tuple of
these. Keeping them here means feature modules say *what* (``goto(Table.FORWARD)``) rather than
how OVS writes it.
"""

from __future__ import annotations

import enum
from functools import lru_cache

from flows import fields
from flows.pipeline import Table

DROP: tuple[str, ...] = ()
"""An empty action list: the packet is dropped."""


def goto(table: enum.IntEnum) -> str:
    return f"goto_table:{int(table)}"


def resubmit(table: Table) -> str:
    """Run ``table`` and come back: used where one packet visits several ports (flooding)."""
    return f"resubmit(,{int(table)})"


def load(value: int, register: fields.Register) -> str:
    return f"load:{value:#x}->{register.nxm}"


def output(ofport: int) -> str:
    return f"output:{ofport}"


def output_to_port_register() -> str:
    return f"output:{fields.PORT.nxm}"


def push_vlan(vid: int) -> str:
    """Tag the frame with ``vid`` (``mod_vlan_vid`` pushes a tag on an untagged frame)."""
    return f"mod_vlan_vid:{vid}"


def strip_vlan() -> str:
    return "strip_vlan"


def conntrack(table: Table) -> str:
    """Send the packet through conntrack in its network's zone and continue in ``table``.

    OVS forks here: the tracked copy resumes in ``table`` while the original continues untracked
    with the next actions, which is what lets a flood action filter each destination on its own.
    """
    return f"ct(table={int(table)},zone={fields.ZONE})"


def commit() -> str:
    """Commit the connection (ct_mark of a new connection starts at 0)."""
    return f"ct(commit,zone={fields.ZONE})"


def commit_with_blocked(blocked: bool) -> str:
    """Commit and set or clear the connection's blocked bit."""
    return (f"ct(commit,zone={fields.ZONE},"
            f"exec(load:{int(blocked):#x}->{fields.CT_MARK_BLOCKED_NXM}))")


@lru_cache(maxsize=65536)
def conjunction(conj_id: int, clause: int, n_clauses: int) -> str:
    return f"conjunction({conj_id},{clause}/{n_clauses})"

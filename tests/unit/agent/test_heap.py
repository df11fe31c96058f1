"""heap.settle: what lives after a burst is frozen out of the collector's full passes, and
what a previous settle froze is collected again first (a cycle dropped since does not leak)."""

from __future__ import annotations

import gc
import weakref

from dpagent.agent import heap


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_settle_freezes_the_living_and_collects_what_an_earlier_settle_froze():
    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle: only the cyclic collector frees it
    gone = weakref.ref(a)
    try:
        heap.settle()
        assert gc.get_freeze_count() > 0
        del a, b
        gc.collect()
        assert gone() is not None  # frozen: the collector's passes skip it
        heap.settle()
        assert gone() is None  # the next settle collects it
    finally:
        gc.unfreeze()

"""The compiler and the bridge programmer joined: a model change in, committed flows out."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dpagent.agent.sg_cache import Changed
from dpagent.bridge.programmer import BridgeProgrammer
from flows.compiler import HostCompiler
from flows.model import HostModel

LOG = logging.getLogger(__name__)
PORT_OWNER_PREFIX = "port:"


@dataclass
class SyncReport:
    failed: dict[str, str] = field(default_factory=dict)
    """port id -> why it has no flows (bad input, or the switch refused them)."""
    flow_mods: int = 0
    seconds: float = 0.0


class Dataplane:
    """Keeps br-int's flows equal to the compiled model."""

    def __init__(self, programmer: BridgeProgrammer) -> None:
        self.programmer = programmer
        self.compiler = HostCompiler()

    def full_sync(self, model: HostModel, reason: str, flush: bool = False,
                  sweep: bool = False,
                  before_commit: Callable[[], object] | None = None) -> SyncReport:
        """Compile everything and reconcile with what the switch holds (start, resync);
        ``sweep``: delete every flow that is not ours too (the first sync);
        ``before_commit``: see :meth:`BridgeProgrammer.reconcile`."""
        start = time.perf_counter()
        result = self.compiler.compile(model)
        self.programmer.replace_all(result.owners)
        applied = self.programmer.reconcile(reason, flush=flush, sweep=sweep,
                                            before_commit=before_commit)
        return self._report(applied, start)

    def update(self, model: HostModel, changed: Changed) -> SyncReport:
        """Recompute what ``changed`` touches and send only that."""
        start = time.perf_counter()
        changes = self.compiler.update(model, ports=changed.ports, groups=changed.groups,
                                       members=changed.members, expected=changed.expected)
        for owner, flows in changes.items():
            if flows is None:
                self.programmer.remove(owner)
            else:
                self.programmer.set_flows(owner, flows)
        applied = self.programmer.apply()
        return self._report(applied, start)

    def repair(self, reason: str) -> SyncReport:
        """Re-read the switch and put back whatever is missing or extra."""
        start = time.perf_counter()
        return self._report(self.programmer.reconcile(reason), start)

    def _report(self, applied, start: float) -> SyncReport:  # type: ignore[no-untyped-def]
        failed = {e.port_id: e.message for e in self.compiler.errors.values()}
        for owner, reason in applied.rejected.items():
            if owner.startswith(PORT_OWNER_PREFIX):
                failed[owner[len(PORT_OWNER_PREFIX):]] = f"the switch refused its flows: {reason}"
            else:
                LOG.error("the switch refused the flows of %s: %s", owner, reason)
        return SyncReport(failed, applied.flow_mods, time.perf_counter() - start)

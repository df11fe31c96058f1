"""Desired state in, minimal atomic changes out: the bridge programmer.

Owners (a port, a network, the base pipeline, one remote-group member, ...) hand in their complete
desired flows; the programmer remembers what the switch holds (by content cookie), and
:meth:`BridgeProgrammer.apply` sends only the difference, in one atomic bundle. If the switch
refuses a flow, the owner that brought it is set aside (its previous flows stay installed and it
is reported), and the bundle is sent again without it, so one bad port never blocks the others.

:meth:`BridgeProgrammer.reconcile` reads what the switch really holds and repairs any difference:
at start (hitless: flows already right are left alone), after ovs-vswitchd came back empty (seen
by the canary flow), and periodically as an audit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from dpagent.bridge.transport import (
    BundleRejected,
    FlowMod,
    FlowTransport,
    Op,
    SwitchError,
)
from flows import Flow
from flows.cookies import COOKIE_MASK, COOKIE_VALUE, Kind, is_dpagent_cookie, is_learned_cookie
from flows.flow import flow
from flows.pipeline import Table

LOG = logging.getLogger(__name__)
CANARY_OWNER = "canary"


def canary_flow() -> Flow:
    """A flow no packet ever reaches (nothing leads to its table), whose absence means the
    switch lost its flows: ovs-vswitchd restarted or the bridge was re-created."""
    return flow(Table.CANARY, 0, (), (), Kind.BASE)


@dataclass
class ApplyReport:
    """What one apply or reconcile did."""

    added: int = 0
    deleted: int = 0
    rejected: dict[str, str] = field(default_factory=dict)
    """owner -> the switch's reason, for owners whose update was refused (previous flows kept)."""
    seconds: float = 0.0
    swept: int = 0
    """How many of the deleted cookies were foreign (another agent's flows)."""

    @property
    def flow_mods(self) -> int:
        return self.added + self.deleted


class ProgrammerObserver(Protocol):
    """Told what a programmer did to its switch (the daemon's metrics); called on the
    programmer's thread: must be quick and must not raise."""

    def bundle_committed(self, flow_mods: int, seconds: float) -> None:
        """A bundle of ``flow_mods`` was committed; sending it took ``seconds``."""

    def bundle_rejected(self) -> None:
        """The switch refused a bundle (nothing of it was applied)."""

    def switch_reset(self) -> None:
        """The switch lost the flows this programmer had installed (the canary is gone)."""


class BridgeProgrammer:
    """Keeps one bridge's dpagent flows equal to the desired flows of all owners."""

    def __init__(self, transport: FlowTransport,
                 observer: ProgrammerObserver | None = None) -> None:
        self.transport = transport
        self.observer = observer
        self._desired: dict[str, tuple[Flow, ...]] = {}
        """owner -> its flows, one per cookie (a tuple: at `large` 28,000 owners hold one
        flow each, and a dict per owner cost 5 MiB)"""
        self._owner_of: dict[int, str] = {}
        self._pending: dict[str, tuple[Flow, ...] | None] = {
            CANARY_OWNER: _by_cookie([canary_flow()])}
        self._installed: set[int] = set()
        self._purges: list[FlowMod] = []
        self.flow_mods_sent = 0
        self.bundles_sent = 0

    # -- desired state ------------------------------------------------------------------------

    def set_flows(self, owner: str, flows: Iterable[Flow]) -> None:
        """``flows`` is everything ``owner`` wants installed from now on."""
        self._pending[owner] = _by_cookie(flows)

    def purge(self, selector: Flow) -> None:
        """Delete, in the next bundle, the flows ``selector`` names (see
        :meth:`~dpagent.bridge.transport.FlowMod.purge`): what the switch learned for a
        network that is gone, say, in the bundle that takes the network's own flows away."""
        self._purges.append(FlowMod.purge(selector))

    def remove(self, owner: str) -> None:
        if owner in self._desired or owner in self._pending:
            self._pending[owner] = None

    def replace_all(self, owners: Mapping[str, Iterable[Flow]]) -> None:
        """The complete desired state: owners not named are removed."""
        for owner in list(self._desired) + list(self._pending):
            if owner not in owners and owner != CANARY_OWNER:
                self._pending[owner] = None
        for owner, flows in owners.items():
            self.set_flows(owner, flows)

    def owners(self) -> list[str]:
        return sorted(self._desired)

    def desired_flows(self) -> list[Flow]:
        return [f for flows in self._desired.values() for f in flows]

    @property
    def installed_count(self) -> int:
        return len(self._installed)

    # -- switch -------------------------------------------------------------------------------

    def apply(self) -> ApplyReport:
        """Send the changes of the owners updated since the last apply."""
        return self._commit(full=False)

    def reconcile(self, reason: str, flush: bool = False, sweep: bool = False,
                  before_commit: Callable[[], object] | None = None) -> ApplyReport:
        """Read the switch and make it hold exactly the desired flows.

        ``flush`` replaces every dpagent flow even if already right (``drop_flows_on_start``).
        ``sweep`` also deletes every flow that is not dpagent's, in the same bundle (so no
        packet sees a half-swept table): at the first sync of a bridge taken over from another
        agent -- neutron's leftover flows would otherwise keep deciding verdicts beside ours.
        Later audits leave foreign flows alone (an operator's debugging flow, say).
        ``before_commit`` runs once, when the switch holds the bundle and only its commit is
        left: a change that flushes the switch (removing its last controller) goes there,
        with ``flush`` so that the bundle brings every flow back.
        """
        self.transport.configure_switch()
        report = self._commit(full=True, flush=flush, sweep=sweep,
                              before_commit=_once(before_commit))
        if report.flow_mods or report.rejected:
            LOG.info("reconcile (%s): %d flows added, %d removed (%d foreign), %d owners "
                     "rejected in %.3f s", reason, report.added, report.deleted,
                     report.swept, len(report.rejected), report.seconds)
        return report

    def holds_foreign_flows(self) -> bool:
        """Whether the switch holds any flow that is not dpagent's (another agent's)."""
        return any(not is_dpagent_cookie(f.cookie) for f in self.transport.dump(0, 0))

    def probe(self) -> None:
        """Ask the switch something (our canary); raises SwitchError while it cannot answer."""
        self.switch_was_reset()

    def switch_was_reset(self) -> bool:
        """True when the canary flow is gone: the switch no longer holds what we installed."""
        cookie = canary_flow().cookie
        reset = not self.transport.dump(cookie, (1 << 64) - 1)
        if reset and cookie in self._installed:
            # the switch does not hold it any more: forget it too, so one reset counts once
            self._installed.discard(cookie)
            if self.observer is not None:
                self.observer.switch_reset()
        return reset

    # -- internals ----------------------------------------------------------------------------

    def _plan(self, pending: Mapping[str, tuple[Flow, ...] | None], installed: set[int],
              full: bool, flush: bool) -> tuple[list[FlowMod], dict[int, str]]:
        """The flow-mods that take the switch from ``installed`` to the desired state, and which
        owner each added cookie belongs to (to blame an owner for a rejected flow).

        An incremental plan looks only at the pending owners: its cost is the size of the
        change, not of the table."""
        wanted: dict[int, Flow] = {}
        owner_of: dict[int, str] = {}
        owners = self._desired.keys() | pending.keys() if full else pending.keys()
        for owner in owners:
            flows = pending[owner] if owner in pending else self._desired[owner]
            for f in flows or ():
                wanted[f.cookie] = f
                owner_of[f.cookie] = owner
        if full:
            stale = set(installed) if flush else installed - wanted.keys()
            adds = list(wanted) if flush else [c for c in wanted if c not in installed]
        else:
            stale = {f.cookie for owner in pending for f in self._desired.get(owner, ())
                     if f.cookie not in wanted and f.cookie in installed
                     and self._owner_of.get(f.cookie, owner) in pending}
            adds = [c for c in wanted if c not in installed]
        mods = [FlowMod.delete(c) for c in sorted(stale)]
        mods += [FlowMod.add(wanted[c]) for c in sorted(adds, key=lambda c: wanted[c].key)]
        return mods, owner_of

    def _commit(self, full: bool, flush: bool = False, sweep: bool = False,
                before_commit: _Once | None = None) -> ApplyReport:
        start = time.perf_counter()
        report = ApplyReport()
        pending = dict(self._pending)
        self._pending.clear()
        purges, self._purges = self._purges, []
        try:
            report = self._send(pending, purges, report, start, full, flush, sweep,
                                before_commit)
            if before_commit is not None:
                before_commit()  # a no-op unless every bundle attempt was refused before it
            return report
        except SwitchError:
            # the switch is away: nothing was committed, the changes wait for the next try
            self._pending = {**pending, **self._pending}
            self._purges = purges + self._purges
            raise

    def _send(self, pending: dict[str, tuple[Flow, ...] | None], purges: list[FlowMod],
              report: ApplyReport,
              start: float, full: bool, flush: bool, sweep: bool,
              before_commit: _Once | None) -> ApplyReport:
        foreign: list[FlowMod] = []
        # flows the switch learned under dpagent's mark (br-tun's learn()) are neither ours
        # to compare nor foreign to sweep: they belong to the traffic
        if full and sweep:
            everything = {f.cookie for f in self.transport.dump(0, 0)
                          if not is_learned_cookie(f.cookie)}
            self._installed = {c for c in everything if is_dpagent_cookie(c)}
            foreign = [FlowMod.delete(c) for c in sorted(everything - self._installed)]
        elif full:
            self._installed = {f.cookie for f in self.transport.dump(COOKIE_VALUE, COOKIE_MASK)
                               if not is_learned_cookie(f.cookie)}
        swept = len(foreign)
        foreign += purges
        while True:
            mods, owner_of = self._plan(pending, self._installed, full, flush)
            mods = foreign + mods
            sent = time.perf_counter()
            try:
                self.transport.apply(mods, before_commit)
            except BundleRejected as exc:
                if self.observer is not None:
                    self.observer.bundle_rejected()
                culprit = owner_of.get(exc.mod.cookie) if exc.mod is not None else None
                if culprit is None or culprit not in pending:
                    # Cannot tell whose flow it was: every previous flow stays, all are reported.
                    report.rejected.update((o, exc.reason) for o in pending or ["switch"])
                    LOG.error("switch refused an update of %s: %s", sorted(pending), exc)
                    break
                LOG.error("switch refused the flows of %s, keeping its previous flows: %s",
                          culprit, exc)
                report.rejected[culprit] = exc.reason
                del pending[culprit]
                continue
            self._record(pending, mods[len(foreign):])
            report.swept = swept
            self.bundles_sent += bool(mods)
            self.flow_mods_sent += len(mods)
            if mods and self.observer is not None:
                self.observer.bundle_committed(len(mods), time.perf_counter() - sent)
            report.added = sum(m.op is Op.ADD for m in mods)
            report.deleted = len(mods) - report.added
            break
        report.seconds = time.perf_counter() - start
        return report

    def _record(self, pending: Mapping[str, tuple[Flow, ...] | None],
                mods: list[FlowMod]) -> None:
        """The bundle was committed: the pending owners are now desired and installed."""
        for owner, flows in pending.items():
            for f in self._desired.pop(owner, ()):
                if self._owner_of.get(f.cookie) == owner:
                    del self._owner_of[f.cookie]
            if flows is not None:
                self._desired[owner] = flows
                self._owner_of.update((f.cookie, owner) for f in flows)
        for mod in mods:
            if mod.op is Op.ADD:
                self._installed.add(mod.cookie)
            else:
                self._installed.discard(mod.cookie)


def _by_cookie(flows: Iterable[Flow]) -> tuple[Flow, ...]:
    """One flow per cookie (the same cookie is the same flow), in the given order."""
    flows = tuple(flows)
    if len(flows) < 2:
        return flows
    return tuple({f.cookie: f for f in flows}.values())


class _Once:
    """A callable that calls ``func`` the first time only (a bundle retried without a refused
    owner must not flush the switch again)."""

    def __init__(self, func: Callable[[], object]) -> None:
        self._func: Callable[[], object] | None = func

    def __call__(self) -> None:
        func, self._func = self._func, None
        if func is not None:
            func()


def _once(func: Callable[[], object] | None) -> _Once | None:
    return None if func is None else _Once(func)

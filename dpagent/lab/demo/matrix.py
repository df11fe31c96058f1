"""The connectivity matrix: expected vs observed, from real pings and TCP connects.

Rows are sources, columns destinations, each split into the services (ping, tcp/80,
tcp/5432). A cell reads ``expected/observed`` with ``+`` for reachable and ``-`` for blocked,
and ends in ``!`` when the two differ. Probes run in parallel (a blocked probe costs its whole
timeout), each as the kernel of the source namespace sends it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from dpagent.lab.demo import expected
from dpagent.lab.netns import NetnsVM

PING_ARGS = ("-n", "-q", "-c", "2", "-i", "0.2", "-W", "1")
"""Two echo requests 0.2 s apart, one second for the last reply: reachable if any comes
back, so one lost first packet (ARP, a slow upcall) does not read as blocked."""
TCP_TIMEOUT = 1.5
"""Long enough for the kernel to retransmit a lost SYN once (after 1 s)."""
WORKERS = 8
CORNER = "from \\ to"


@dataclass(frozen=True)
class Cell:
    source: str
    destination: str
    service: str
    expected: bool
    observed: bool | None = None

    @property
    def mismatch(self) -> bool:
        return self.observed is not None and self.observed != self.expected

    def text(self) -> str:
        """``e/o`` with ``+``/``-``, and ``!`` on a mismatch."""
        observed = "?" if self.observed is None else _sign(self.observed)
        return f"{_sign(self.expected)}/{observed}" + ("!" if self.mismatch else "")


@dataclass(frozen=True)
class Source:
    """Who sends: a VM, optionally from an address that is not its own."""

    vm: NetnsVM
    address: str | None = None


def plan(sources: Sequence[str], destinations: Sequence[str],
         isolated: Iterable[str] = ()) -> list[Cell]:
    """The cells to probe, with the topology's intent as expectation; any cell that involves
    an ``isolated`` endpoint (a VM the agent has not wired) is expected blocked."""
    held = set(isolated)
    cells = []
    for source in sources:
        for destination in destinations:
            for service in expected.SERVICES:
                meant = expected.intent(source, destination, service)
                if meant is None:
                    continue
                if held & {source, destination, source.split("@")[0]}:
                    meant = False
                cells.append(Cell(source, destination, service, meant))
    return cells


def observe(cells: Sequence[Cell], sources: Mapping[str, Source],
            addresses: Mapping[str, str]) -> list[Cell]:
    """Probe every cell (in parallel) and return them with ``observed`` filled in.

    ``addresses`` maps a destination to its IPv4 address.
    """
    def probe(cell: Cell) -> Cell:
        source = sources[cell.source]
        ip = addresses[cell.destination]
        if cell.service == expected.PING:
            via = ("-I", source.address) if source.address else ()
            ok = source.vm.exec(["ping", "-4", *PING_ARGS, *via, ip]).returncode == 0
        else:
            ok = source.vm.tcp_connect(ip, expected.TCP_PORTS[cell.service], TCP_TIMEOUT)
        return replace(cell, observed=ok)

    pool = ThreadPoolExecutor(max_workers=WORKERS)
    try:
        return list(pool.map(probe, cells))
    finally:  # on Ctrl-C, do not start the probes still queued
        pool.shutdown(wait=True, cancel_futures=True)


def render(cells: Sequence[Cell], sources: Sequence[str], destinations: Sequence[str]) -> str:
    """The matrix as text, with a legend and a note for each cell that has a story."""
    by_key = {(c.source, c.destination, c.service): c for c in cells}
    sub = 5  # "+/-! "
    group = sub * len(expected.SERVICES)
    label = max(len(CORNER), *(len(s) for s in sources)) + 2
    lines = [" " * label + "".join(f"{d:^{group}}" for d in destinations),
             f"{CORNER:<{label}}" + "".join(
                 "".join(f"{_short(s):<{sub}}" for s in expected.SERVICES)
                 for _ in destinations)]
    for source in sources:
        row = f"{source:<{label}}"
        for destination in destinations:
            for service in expected.SERVICES:
                cell = by_key.get((source, destination, service))
                row += f"{cell.text() if cell else '.':<{sub}}"
        lines.append(row.rstrip())
    lines.append("+ reachable, - blocked; cells are expected/observed, ! marks a mismatch; "
                 ". not probed (itself, or another network: no router)")
    notes = [(c, why) for key, why in expected.WHY.items() if (c := by_key.get(key))]
    for cell, why in notes:
        lines.append(f"  {cell.source} -> {cell.destination} {cell.service}: {cell.text()}  "
                     f"{why}")
    return "\n".join(lines)


def mismatches(cells: Iterable[Cell]) -> list[Cell]:
    return [c for c in cells if c.mismatch]


def describe(cell: Cell) -> str:
    return (f"{cell.source} -> {cell.destination} {cell.service}: expected "
            f"{_word(cell.expected)}, observed {_word(cell.observed)}")


def _word(ok: bool | None) -> str:
    return "reachable" if ok else "blocked"


def _sign(ok: bool) -> str:
    return "+" if ok else "-"


def _short(service: str) -> str:
    return service.removeprefix("tcp/")

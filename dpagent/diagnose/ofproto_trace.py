"""Read ``ovs-appctl ofproto/trace`` text: the passes, the flows each hit, where the packet went.

Two readers use it: ``dpagent-ctl trace`` (:mod:`dpagent.diagnose.explain` turns the flows hit
into the operator's words) and the tests (:func:`parse_trace`'s verdict). A security-group test
wants to say "this packet reaches port 2" or "this
packet is dropped" without matching trace prose.  The trace ends each pass
through the pipeline with a ``Datapath actions:`` line; a ``ct()`` action
recirculates and the trace prints another pass, so one trace may hold several.
Datapath actions name *datapath* port numbers, which differ from OpenFlow port
numbers; ``ovs-appctl dpif/show`` gives the mapping.

The parsing is pure (text in, value out) so it is unit-tested on recorded
traces; ``OVSSandbox.trace`` runs the commands.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

_DPIF_BRIDGE = re.compile(r"^  (\S+):$")
_DPIF_PORT = re.compile(r"^    (\S+) (\d+)/(\d+|none):")
_BRIDGE = re.compile(r'^bridge\("([^"]+)"\)$')
_HIT = re.compile(r"^ *(\d+)\. (.*?),? ?priority (\d+)(?:, cookie (0x[0-9a-f]+))?$")
_NO_MATCH = re.compile(r"^ *(\d+)\. No match\.?$")


@dataclass(frozen=True)
class Hit:
    """One flow a pass matched: its bridge, table, match text, priority, cookie (0 if none)
    and the actions the trace printed under it (without its ``->`` remarks)."""

    bridge: str
    table: int
    match: str
    priority: int
    cookie: int
    actions: tuple[str, ...]

    @property
    def drops(self) -> bool:
        """The flow's only action is drop (or it has none, or no flow matched)."""
        return all(a == "drop" for a in self.actions)


@dataclass(frozen=True)
class TracePass:
    """One pass through the pipeline: the packet's fields at its start (``Flow:``), the flows
    it hit in order and its datapath actions (a ``ct()`` recirculation starts another)."""

    flow: str
    hits: tuple[Hit, ...]
    datapath_actions: str


@dataclass(frozen=True)
class DatapathPort:
    bridge: str
    name: str
    ofport: int


def parse_passes(raw: str) -> list[TracePass]:
    """Every pass of a trace, in order; ``ValueError`` if the text holds none."""
    passes: list[TracePass] = []
    flow = ""
    bridge = ""
    hits: list[Hit] = []
    current: tuple[str, int, str, int, int] | None = None
    actions: list[str] = []

    def close_hit() -> None:
        nonlocal current
        if current is not None:
            hits.append(Hit(*current, tuple(actions)))
            current = None
        actions.clear()

    for line in raw.splitlines():
        if line.startswith("Flow:") and not hits and current is None:
            flow = line.partition(":")[2].strip()
            continue
        if line.startswith("Datapath actions:"):
            close_hit()
            passes.append(TracePass(flow, tuple(hits), line.partition(":")[2].strip()))
            hits.clear()
            flow = ""
            continue
        if line.startswith(("Final flow:", "Megaflow:")):
            close_hit()
            continue
        header = _BRIDGE.match(line)
        if header:
            close_hit()
            bridge = header.group(1)
            continue
        hit = _HIT.match(line)
        if hit and bridge:
            close_hit()
            current = (bridge, int(hit.group(1)), hit.group(2).rstrip(","), int(hit.group(3)),
                       int(hit.group(4), 16) if hit.group(4) else 0)
            continue
        missed = _NO_MATCH.match(line)
        if missed and bridge:
            close_hit()
            current = (bridge, int(missed.group(1)), "", -1, 0)
            continue
        text = line.strip()
        if current is not None and text and not text.startswith(("->", ">>")) \
                and line.startswith("    "):
            actions.append(text)
    if not passes:
        raise ValueError(f"no 'Datapath actions:' line in trace:\n{raw}")
    return passes


def parse_dpif_ports(text: str) -> dict[int, DatapathPort]:
    """Map datapath port number -> the bridge, name and OpenFlow number of that port, for every
    bridge ``ovs-appctl dpif/show`` lists."""
    ports: dict[int, DatapathPort] = {}
    current = ""
    for line in text.splitlines():
        header = _DPIF_BRIDGE.match(line)
        if header:
            current = header.group(1)
            continue
        port = _DPIF_PORT.match(line)
        if port and current and port.group(3) != "none":
            ports[int(port.group(3))] = DatapathPort(current, port.group(1), int(port.group(2)))
    return ports


def output_tokens(actions: str) -> list[str]:
    """The datapath outputs of one pass's actions: port numbers, ``userspace`` and, for a
    tunnel, ``tnl_push(...)`` whole."""
    found: list[str] = []
    for action in split_top_level(actions):
        if action.startswith("tnl_push("):
            found.append(action)
        else:
            found.extend(_output_tokens(action))
    return found


@dataclass(frozen=True)
class TraceVerdict:
    """Where a traced packet ends up.

    ``output_ports`` is the sorted, de-duplicated union of the OpenFlow ports
    that any pass outputs to (a port output before a recirculation is a real
    output too, so no pass is ignored).  ``dropped`` is true when no pass
    outputs the packet anywhere: no port and no controller/userspace action.
    ``datapath_actions`` keeps each pass's ``Datapath actions:`` text and
    ``final_flow`` the last pass's ``Final flow:`` for failure messages.
    """

    dropped: bool
    output_ports: tuple[int, ...]
    raw: str
    datapath_actions: tuple[str, ...] = ()
    final_flow: str = ""


def parse_dpif_show(text: str, bridge: str) -> dict[int, int]:
    """Map datapath port number -> OpenFlow port number for ``bridge``."""
    return {dp: port.ofport for dp, port in parse_dpif_ports(text).items()
            if port.bridge == bridge}


def parse_trace(raw: str, dp_to_ofport: Mapping[int, int]) -> TraceVerdict:
    """Build the verdict from trace text and a datapath->OpenFlow port map.

    Raises ``ValueError`` when the text holds no ``Datapath actions:`` line or
    names a datapath port the map does not know (e.g. a port of another
    bridge reached through a patch port): a verdict that silently forgot an
    output would make a leak look like a drop.
    """
    actions: list[str] = []
    final_flow = ""
    for line in raw.splitlines():
        if line.startswith("Datapath actions:"):
            actions.append(line.partition(":")[2].strip())
        elif line.startswith("Final flow:"):
            final_flow = line.partition(":")[2].strip()
    if not actions:
        raise ValueError(f"no 'Datapath actions:' line in trace:\n{raw}")

    ports: set[int] = set()
    to_userspace = False
    for text in actions:
        for token in _output_tokens(text):
            if token == "userspace":
                to_userspace = True
            elif int(token) in dp_to_ofport:
                ports.add(dp_to_ofport[int(token)])
            else:
                raise ValueError(
                    f"datapath port {token} is not on the traced bridge "
                    f"(known: {dict(dp_to_ofport)}):\n{raw}"
                )
    return TraceVerdict(
        dropped=not ports and not to_userspace,
        output_ports=tuple(sorted(ports)),
        raw=raw,
        datapath_actions=tuple(actions),
        final_flow=final_flow,
    )


def _output_tokens(actions: str) -> Iterator[str]:
    """Yield datapath output port numbers (and 'userspace') in ``actions``.

    Outputs are bare numbers at the top level or inside ``clone(...)``;
    everything else (ct, recirc, set, push_vlan, ...) does not send the packet
    anywhere by itself.
    """
    for action in split_top_level(actions):
        if action.isdigit():
            yield action
        elif action.startswith("userspace("):
            yield "userspace"
        elif action.startswith("clone(") and action.endswith(")"):
            yield from _output_tokens(action[len("clone(") : -1])


def split_top_level(actions: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(actions):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(actions[start:i].strip())
            start = i + 1
    parts.append(actions[start:].strip())
    return [p for p in parts if p]

"""Turn ``ovs-appctl ofproto/trace`` text into a verdict a test can assert on.

A security-group test wants to say "this packet reaches port 2" or "this
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
    mapping: dict[int, int] = {}
    current = None
    for line in text.splitlines():
        header = _DPIF_BRIDGE.match(line)
        if header:
            current = header.group(1)
            continue
        port = _DPIF_PORT.match(line)
        if port and current == bridge and port.group(3) != "none":
            mapping[int(port.group(3))] = int(port.group(2))
    return mapping


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
    for action in _split_top_level(actions):
        if action.isdigit():
            yield action
        elif action.startswith("userspace("):
            yield "userspace"
        elif action.startswith("clone(") and action.endswith(")"):
            yield from _output_tokens(action[len("clone(") : -1])


def _split_top_level(actions: str) -> list[str]:
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

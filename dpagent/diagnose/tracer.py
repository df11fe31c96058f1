"""``dpagent-ctl trace`` inside the daemon: find the ports, trace the packet, explain it.

The daemon is where the answer's parts are: which VIF a port id, address or interface name
means, each port's state (a held or failed port has no flows, and the trace alone cannot say
why), what each cookie stands for (the compiler's meanings), and the switch to trace on. The
trace itself is the switch's own ``ofproto/trace`` on br-int, which follows patch ports into the
physical and tunnel bridges, so the verdict is the switch's, not a model of it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dpagent.diagnose.explain import HostView, explain
from dpagent.diagnose.ofproto_trace import parse_dpif_ports, parse_passes
from dpagent.diagnose.packet import (
    UNKNOWN_MAC,
    IPAddress,
    Packet,
    PacketError,
    check_state,
    parse_address,
    parse_service,
)
from dpagent.diagnose.switch import SwitchCommandError
from flows.compiler import port_owner
from flows.model import Port

if TYPE_CHECKING:
    from dpagent.agent.agent import Agent

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalPort:
    """A VIF of this host as the trace needs it: its OVSDB facts, the agent's state of it and,
    when it is wired, the compiler's model of it."""

    port_id: str
    name: str
    mac: str
    ofport: int
    state: str
    reason: str
    model: Port | None

    def addresses(self) -> list[IPAddress]:
        return list(self.model.fixed_ips) if self.model is not None else []

    def describe(self) -> str:
        return f"{self.port_id} ({self.name}, {self.state})"


@dataclass(frozen=True)
class Snapshot:
    """The agent's state at the moment of the question (read from the worker's objects without
    stopping it: each is replaced, not changed in place, or copied)."""

    ports: tuple[LocalPort, ...]
    view: HostView
    names: Mapping[str, str] = field(default_factory=dict)
    """port or security group id -> its name, where the control plane told it"""


Appctl = Callable[[list[str]], str]
"""``ovs-appctl`` of the switch: arguments in, its output out (see dpagent.diagnose.switch)."""


def snapshot_of(agent: Agent,
                names_of: Callable[[Iterable[str]], dict[str, str]] | None = None) -> Snapshot:
    """The trace's view of the agent, from the status socket's thread: each dict is copied in
    one C-level step, the model is replaced (never changed) by the worker. ``names_of`` gives
    the names of ports and groups (the resource cache knows them; neutron's SG info does not)."""
    compiler = agent.dataplane.compiler
    model = compiler.model
    records = agent.ports.copy()
    owners = compiler.owners.copy()
    ports = tuple(LocalPort(port_id, r.vif.name, r.vif.mac, r.vif.ofport, r.state, r.reason,
                            model.ports.get(port_id))
                  for port_id, r in sorted(records.items()))
    view = HostView(meanings=compiler.meanings.copy(),
                    port_flows={p.port_id: owners.get(port_owner(p.port_id), ())
                                for p in ports},
                    ports_by_ofport={p.ofport: p.port_id for p in ports},
                    ports_by_name={p.name: p.port_id for p in ports},
                    bridge=agent.settings.integration_bridge)
    ids = {p.port_id for p in ports} | set(model.groups) | set(model.members)
    return Snapshot(ports, view, names_of(ids) if names_of is not None else {})


class TraceError(Exception):
    """The question cannot be answered as asked; the message says why."""


def find_port(ports: tuple[LocalPort, ...], wanted: str, version: int | None = None
              ) -> LocalPort:
    """A port by id, unique id prefix, interface name, MAC or fixed IP."""
    wanted_l = wanted.lower()
    address = parse_address(wanted)
    matches = [p for p in ports if wanted_l in (p.port_id, p.name, p.mac)]
    if not matches and address is not None:
        matches = [p for p in ports if address in p.addresses()]
    if not matches and len(wanted_l) >= 4:
        matches = [p for p in ports if p.port_id.startswith(wanted_l)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        known = ", ".join(sorted(p.describe() for p in ports)) or "none"
        raise TraceError(f"no port of this host is {wanted!r} (known: {known})")
    raise TraceError(f"{wanted!r} is ambiguous: {', '.join(p.describe() for p in matches)}")


def trace(snapshot: Snapshot, appctl: Appctl, request: Mapping[str, Any]) -> dict[str, Any]:
    """Answer one ``trace`` request (see ``dpagent-ctl trace --help`` for its fields)."""
    try:
        return _trace(snapshot, appctl, request)
    except (TraceError, PacketError, SwitchCommandError) as exc:
        return {"error": str(exc)}


def _trace(snapshot: Snapshot, appctl: Appctl, request: Mapping[str, Any]) -> dict[str, Any]:
    service = parse_service(str(request.get("service", "")))
    state = check_state(str(request.get("state") or "new"))
    version = 6 if request.get("ipv6") else None
    source = find_port(snapshot.ports, str(request.get("from", "")))
    to_text = str(request.get("to", ""))
    to_address = parse_address(to_text)
    if to_address is not None:
        version = to_address.version
    destination = None
    if to_address is None or any(to_address in p.addresses() for p in snapshot.ports):
        destination = find_port(snapshot.ports, to_text)
    src_ip = _address(source, request.get("src_ip"), version, "source")
    version = src_ip.version
    dst_ip = to_address or _address(destination, None, version, "destination")
    dst_mac = str(request.get("dst_mac") or (destination.mac if destination else UNKNOWN_MAC))
    vlan = request.get("vlan")
    if vlan is not None and (not isinstance(vlan, int) or not 0 <= vlan < 4096):
        raise TraceError(f"VLAN {vlan!r}: 0-4095")
    packet = Packet(source.ofport, str(request.get("src_mac") or source.mac), dst_mac, src_ip,
                    dst_ip, service, state, vlan)
    raw = appctl(["ofproto/trace", snapshot.view.bridge, packet.flow(), *packet.ct_next()])
    dp_ports = parse_dpif_ports(appctl(["dpif/show"]))
    explanation = explain(parse_passes(raw), snapshot.view, dp_ports,
                          f"({destination.name})" if destination else None)
    answer = explanation.as_dict()
    answer.update({
        "packet": packet.describe(), "flow": packet.flow(), "ct_next": packet.ct_next(),
        "from": source.describe(), "to": destination.describe() if destination else to_text,
        "notes": _notes(source, destination),
    })
    answer = _with_names(answer, snapshot.names)
    if request.get("verbose"):
        answer["raw"] = raw
    return answer


def _with_names(answer: dict[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """``port ID`` -> ``port NAME (ID)``, ``group ID`` -> ``group NAME (ID)`` in the words."""
    if not names:
        return answer

    def named(text: str) -> str:
        for obj_id, name in names.items():
            if obj_id in text:
                text = text.replace(f"port {obj_id} (", f"port {name} ({obj_id}, ")
                for kind in ("port ", "group "):
                    text = text.replace(f"{kind}{obj_id}", f"{kind}{name} ({obj_id})")
                if text.startswith(obj_id):  # "from ID (tap..., wired)"
                    text = f"{name} {text}"
        return text

    for key in ("stage", "reason", "from", "to"):
        answer[key] = named(str(answer[key]))
    for key in ("rules", "outputs", "notes"):
        answer[key] = [named(str(item)) for item in answer[key]]
    return answer


def _address(port: LocalPort | None, given: Any, version: int | None, which: str
             ) -> IPAddress:
    if given:
        address = parse_address(str(given))
        if address is None:
            raise TraceError(f"{which} address {given!r} is not an IP address")
        return address
    assert port is not None
    candidates = [a for a in port.addresses() if version is None or a.version == version]
    if not candidates:
        family = f"IPv{version} " if version else ""
        hint = " (give --src-ip)" if which == "source" else \
            " (it is not wired: give --to ADDRESS --dst-mac MAC)" if port.model is None else ""
        raise TraceError(f"port {port.describe()} has no {family}address the agent knows"
                         f"{hint}")
    return candidates[0]


def _notes(source: LocalPort, destination: LocalPort | None) -> list[str]:
    notes = []
    for port in (source, destination):
        if port is not None and port.state != "wired":
            notes.append(f"port {port.port_id} is {port.state}" +
                         (f": {port.reason}" if port.reason else "") +
                         " -- it has no flows, so its traffic is dropped")
        elif port is not None and port.model is not None and not port.model.port_security:
            notes.append(f"port {port.port_id} has port security disabled: no anti-spoofing "
                         "and no security-group rules apply to it")
    return notes

"""Tunnel and l2population payloads, checked item by item. Pure.

The server's forwarding entries (``add_fdb_entries``/``remove_fdb_entries``: network -> its
type, segmentation id and, per remote endpoint, ``[mac, ip]`` pairs; the pair
``["00:00:00:00:00:00", "0.0.0.0"]`` is the *flooding entry*: that endpoint has ports on the
network), ``update_fdb_entries`` (``chg_ip``: a remote port's fixed IPs before and after), the
``tunnel_sync`` reply and the ``tunnel_update``/``tunnel_delete`` casts. Shapes as recorded from
neutron-server 29 (tests/unit/rpc/contract/overlay/).

One malformed item -- a network without a segmentation id, an endpoint that is not an IP, a
pair that is not ``[mac, ip]`` -- is named by its path in the payload and left out; every
other item of the same message is kept (a fanout carries many networks, and one bad entry must
not cost the others their tunnels).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dpagent.rpc.validation import (
    PayloadError,
    expect_int,
    expect_list,
    expect_mac,
    expect_mapping,
    expect_str,
    require,
)

FLOODING_ENTRY = ("00:00:00:00:00:00", "0.0.0.0")
TUNNEL_TYPES = ("vxlan", "geneve", "gre")


@dataclass(frozen=True, slots=True)
class FdbEntry:
    """One l2population entry: ``mac``/``ip`` None for the flooding entry (the endpoint has
    ports on the network and takes its broadcast, multicast and unknown unicast)."""

    network_id: str
    remote_ip: str
    mac: str | None = None
    ip: str | None = None

    @property
    def flooding(self) -> bool:
        return self.mac is None


@dataclass(frozen=True, slots=True)
class FdbNetwork:
    """The entries of one network in one message, with the segment the server says it is."""

    network_id: str
    network_type: str
    segmentation_id: int
    entries: tuple[FdbEntry, ...]


@dataclass(frozen=True, slots=True)
class IpChange:
    """``chg_ip``: a remote port's (mac, ip) pairs before and after."""

    network_id: str
    remote_ip: str
    before: tuple[tuple[str, str], ...]
    after: tuple[tuple[str, str], ...]


Problems = list[str]
"""What was left out, each naming its path in the payload."""


def parse_fdb_entries(value: Any, field: str = "fdb_entries") -> tuple[list[FdbNetwork],
                                                                        Problems]:
    problems: Problems = []
    try:
        networks = expect_mapping(value, field)
    except PayloadError as exc:
        return [], [str(exc)]
    found = []
    for network_id, body in sorted(networks.items(), key=lambda item: str(item[0])):
        where = f"{field}.{network_id}"
        try:
            found.append(_fdb_network(str(network_id), body, where, problems))
        except PayloadError as exc:
            problems.append(str(exc))
    return found, problems


def parse_chg_ip(value: Any, field: str = "fdb_entries") -> tuple[list[IpChange], Problems]:
    """``update_fdb_entries``' payload; actions other than ``chg_ip`` are named problems
    (neutron's agent raises NotImplementedError for them)."""
    problems: Problems = []
    try:
        body = expect_mapping(value, field)
    except PayloadError as exc:
        return [], [str(exc)]
    problems += [f"{field}.{action}: unsupported update (only chg_ip is)"
                 for action in sorted(map(str, body)) if action != "chg_ip"]
    if "chg_ip" not in body:
        return [], problems
    changes = []
    try:
        networks = expect_mapping(body["chg_ip"], f"{field}.chg_ip")
    except PayloadError as exc:
        return [], [*problems, str(exc)]
    for network_id, endpoints in sorted(networks.items(), key=lambda item: str(item[0])):
        where = f"{field}.chg_ip.{network_id}"
        try:
            for remote_ip, change in sorted(expect_mapping(endpoints, where).items()):
                at = f"{where}.{remote_ip}"
                try:
                    ip = _endpoint(remote_ip, at)
                    change = expect_mapping(change, at)
                    before = _pairs(change.get("before") or [], f"{at}.before", problems)
                    after = _pairs(change.get("after") or [], f"{at}.after", problems)
                except PayloadError as exc:
                    problems.append(str(exc))
                    continue
                changes.append(IpChange(str(network_id), ip, tuple(before), tuple(after)))
        except PayloadError as exc:
            problems.append(str(exc))
    return changes, problems


def parse_tunnel_sync_reply(value: Any) -> tuple[list[str], Problems]:
    """The endpoints' IPs of ``{"tunnels": [{"ip_address", "udp_port"?, "host"}]}`` (the
    caller's own included: it is the caller's to skip)."""
    try:
        tunnels = expect_list(require(expect_mapping(value, "reply"), "tunnels", "reply"),
                              "reply.tunnels")
    except PayloadError as exc:
        return [], [str(exc)]
    found, problems = [], []
    for i, tunnel in enumerate(tunnels):
        where = f"reply.tunnels[{i}]"
        try:
            found.append(_endpoint(require(expect_mapping(tunnel, where), "ip_address", where),
                                   f"{where}.ip_address"))
        except PayloadError as exc:
            problems.append(str(exc))
    return found, problems


def parse_tunnel_notice(kwargs: Mapping[str, Any]) -> tuple[str, str]:
    """``tunnel_update``/``tunnel_delete``: (tunnel IP, tunnel type); PayloadError if bad."""
    ip = _endpoint(require(kwargs, "tunnel_ip", ""), "tunnel_ip")
    kind = expect_str(require(kwargs, "tunnel_type", ""), "tunnel_type")
    if kind not in TUNNEL_TYPES:
        raise PayloadError("tunnel_type", f"{kind!r} is not a tunnel type "
                           f"({', '.join(TUNNEL_TYPES)})")
    return ip, kind


def _fdb_network(network_id: str, body: Any, where: str, problems: Problems) -> FdbNetwork:
    body = expect_mapping(body, where)
    kind = expect_str(require(body, "network_type", where), f"{where}.network_type")
    segment = expect_int(require(body, "segment_id", where), f"{where}.segment_id", low=0)
    ports = expect_mapping(require(body, "ports", where), f"{where}.ports")
    entries: list[FdbEntry] = []
    for remote_ip, pairs in sorted(ports.items(), key=lambda item: str(item[0])):
        at = f"{where}.ports.{remote_ip}"
        try:
            ip = _endpoint(remote_ip, at)
            for mac, address in _pairs(pairs, at, problems):
                if (mac, address) == FLOODING_ENTRY:
                    entries.append(FdbEntry(network_id, ip))
                else:
                    entries.append(FdbEntry(network_id, ip, mac, address))
        except PayloadError as exc:
            problems.append(str(exc))
    return FdbNetwork(network_id, kind, segment, tuple(entries))


def _pairs(value: Any, field: str, problems: Problems) -> list[tuple[str, str]]:
    """``[[mac, ip], ...]``; a bad pair is a problem, the others are kept."""
    found = []
    for i, pair in enumerate(expect_list(value, field)):
        at = f"{field}[{i}]"
        try:
            items = expect_list(pair, at)
            if len(items) < 2:
                raise PayloadError(at, f"expected [mac, ip], got {items!r}")
            mac = expect_mac(items[0], f"{at}[0]").lower()
            address = _address(items[1], f"{at}[1]")
        except PayloadError as exc:
            problems.append(str(exc))
            continue
        found.append((mac, address))
    return found


def _endpoint(value: Any, field: str) -> str:
    """A remote endpoint: one IP address, kept as the server spelt it (tunnel port names
    hash the text, see :mod:`dpagent.overlay.naming`)."""
    text = expect_str(value, field)
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise PayloadError(field, f"{text!r} is not an IP address") from None
    return text


def _address(value: Any, field: str) -> str:
    text = expect_str(value, field)
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise PayloadError(field, f"{text!r} is not an IP address") from None

"""Checks for values arriving from the wire that name the offending field when they fail.

Everything the control plane sends is untrusted input: a wrong type must not become an
``AttributeError`` deep in the agent, and the log must say *which* field of *which*
message was wrong.  Each ``expect_*`` returns the value (typed) or raises
:class:`PayloadError` with a dotted path such as ``port.fixed_ips[1].ip_address``.

Only the shapes the agent relies on are checked here; the meaning of security group
rules (protocols, port ranges, unknown rule fields) is checked by ``flows.parse``, which
fails the group and its ports with a message of its own.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
ETHERTYPES = ("IPv4", "IPv6")
_FAMILY = {"IPv4": 4, "IPv6": 6}


class PayloadError(ValueError):
    """``field`` of a message or reply is missing or has the wrong type or value."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def _got(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def expect_mapping(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PayloadError(field, f"expected an object, got {_got(value)}")
    return value


def require(container: Mapping[str, Any], key: str, field: str) -> Any:
    """``container[key]``; a missing key is a PayloadError naming ``field.key``."""
    if key not in container:
        raise PayloadError(_join(field, key), "missing")
    return container[key]


def _join(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key


def expect_str(value: Any, field: str, *, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise PayloadError(field, f"expected a string, got {_got(value)}")
    if not empty and not value:
        raise PayloadError(field, "expected a non-empty string")
    return value


def expect_optional_str(value: Any, field: str) -> str | None:
    return None if value is None else expect_str(value, field, empty=True)


def expect_bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise PayloadError(field, f"expected true or false, got {_got(value)}")
    return value


def expect_int(value: Any, field: str, *, low: int | None = None,
               high: int | None = None) -> int:
    # bool is an int to Python, never to the contract
    if not isinstance(value, int) or isinstance(value, bool):
        raise PayloadError(field, f"expected an integer, got {_got(value)}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise PayloadError(field, f"{value} is outside {low}..{high}")
    return value


def expect_optional_int(value: Any, field: str, *, low: int | None = None,
                        high: int | None = None) -> int | None:
    return None if value is None else expect_int(value, field, low=low, high=high)


def expect_list(value: Any, field: str) -> list[Any]:
    # JSON has lists only; a tuple can come from an in-process (fake://) sender
    if not isinstance(value, list | tuple):
        raise PayloadError(field, f"expected a list, got {_got(value)}")
    return list(value)


def expect_ids(value: Any, field: str) -> list[str]:
    """A list of non-empty id strings."""
    return [expect_str(item, f"{field}[{i}]") for i, item in enumerate(expect_list(value, field))]


def expect_mac(value: Any, field: str) -> str:
    text = expect_str(value, field)
    if not MAC_RE.match(text):
        raise PayloadError(field, f"{text!r} is not a MAC address")
    return text


def expect_ip(value: Any, field: str, ethertype: str | None = None) -> str:
    """An address or a network (allowed address pairs may be CIDRs) of ``ethertype``."""
    text = expect_str(value, field)
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise PayloadError(field, f"{text!r} is not an IP address or network") from None
    if ethertype is not None and network.version != _FAMILY[ethertype]:
        raise PayloadError(field, f"{text!r} is not an {ethertype} address")
    return text


def expect_fixed_ips(value: Any, field: str, *, plain: bool = False) -> None:
    """``[{subnet_id, ip_address}]``; with ``plain``, also bare address strings (SG_INFO)."""
    for i, ip in enumerate(expect_list(value, field)):
        where = f"{field}[{i}]"
        if plain and isinstance(ip, str):
            expect_ip(ip, where)
        else:
            expect_ip(require(expect_mapping(ip, where), "ip_address", where),
                      f"{where}.ip_address")


def expect_address_pairs(value: Any, field: str) -> None:
    """``[{ip_address, mac_address?}]``: the ip may be a network, the MAC defaults to the port's."""
    for i, pair in enumerate(expect_list(value, field)):
        where = f"{field}[{i}]"
        expect_ip(require(expect_mapping(pair, where), "ip_address", where),
                  f"{where}.ip_address")
        if pair.get("mac_address") is not None:
            expect_mac(pair["mac_address"], f"{where}.mac_address")


def unknown_keys(container: Mapping[str, Any], known: frozenset[str]) -> list[str]:
    return sorted(str(k) for k in container if k not in known)

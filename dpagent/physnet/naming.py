"""Names of the patch ports that join br-int to a physical bridge.

``int-<bridge>`` sits on br-int, ``phy-<bridge>`` on the physical bridge: the names neutron's OVS
agent uses, so an operator reading ``ovs-vsctl show`` sees what they know, and a host migrating
from neutron's agent (or from dpagent's old veth interconnection, which used the same names) is
recognised by name.

A name longer than 15 characters (``IFNAMSIZ`` - 1) is shortened the way neutron does it: the
prefix, the start of the bridge name and the first 6 hex digits of the SHA-1 of the whole bridge
name. Patch ports never become kernel devices, but the same names were once veth devices, and a
name that depends only on the bridge name is the same after every restart, so existing ports and
their ofports are found and reused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

INT_PREFIX = "int-"
PHY_PREFIX = "phy-"
MAX_NAME = 15
"""Longest Linux interface name (IFNAMSIZ is 16 with the terminating NUL)."""
HASH_CHARS = 6


def interface_name(prefix: str, bridge: str) -> str:
    """``prefix + bridge``, shortened deterministically to at most 15 characters."""
    name = prefix + bridge
    if len(name) <= MAX_NAME:
        return name
    keep = MAX_NAME - len(prefix) - HASH_CHARS
    if keep < 0:
        raise ValueError(f"prefix {prefix!r} leaves no room for a name")
    digest = hashlib.sha1(bridge.encode(), usedforsecurity=False).hexdigest()
    return prefix + bridge[:keep] + digest[:HASH_CHARS]


@dataclass(frozen=True, slots=True)
class PatchPair:
    """The two patch ports joining the integration bridge to ``bridge``."""

    bridge: str
    int_port: str
    """On the integration bridge; its ofport is the networks' uplink."""
    phy_port: str
    """On the physical bridge; the allow-list flows match on its ofport."""


def patch_pair(bridge: str) -> PatchPair:
    return PatchPair(bridge, interface_name(INT_PREFIX, bridge),
                     interface_name(PHY_PREFIX, bridge))

"""Address pools for the strategies: small, so that prefixes, members and fixed IPs overlap.

Random 32- or 128-bit addresses would almost never fall into a rule's prefix or a remote group;
drawing most addresses near a handful of bases makes those collisions the common case.
"""

from __future__ import annotations

import ipaddress

from hypothesis import strategies as st

V4_BASES = ("10.0.0.0", "10.0.1.0", "192.168.7.0", "172.16.0.0")
V6_BASES = ("fd00::", "fd00:0:0:1::", "2001:db8::")
_OFFSETS = (0, 1, 2, 5, 10, 11, 127, 128, 255)


def addresses(version: int) -> st.SearchStrategy[str]:
    """An address, usually from a small pool near the bases, sometimes anywhere."""
    bases = V4_BASES if version == 4 else V6_BASES
    near = st.builds(lambda base, offset: str(ipaddress.ip_address(base) + offset),
                     st.sampled_from(bases), st.sampled_from(_OFFSETS))
    if version == 4:
        anywhere = st.integers(1, 2**32 - 2).map(lambda n: str(ipaddress.IPv4Address(n)))
    else:
        anywhere = st.integers(1, 2**128 - 2).map(lambda n: str(ipaddress.IPv6Address(n)))
    return st.one_of(near, near, near, anywhere)


def prefixes(version: int) -> st.SearchStrategy[str]:
    """A normalised CIDR of any length, /0 and host routes included."""
    bits = 32 if version == 4 else 128
    usual = (0, bits, bits, bits - 1, bits - 8, 24 if version == 4 else 64,
             8 if version == 4 else 48)
    lengths = st.one_of(st.sampled_from(usual), st.integers(0, bits))
    return st.builds(lambda a, n: str(ipaddress.ip_network(f"{a}/{n}", strict=False)),
                     addresses(version), lengths)

"""dpagent's cookie space.

Every flow dpagent installs carries a cookie whose top 16 bits are :data:`DPAGENT_MARK`, so that
dpagent can dump, compare and delete its own flows (``cookie=MARK/MASK``) without ever touching an
operator's or another agent's flows. The next 8 bits say what kind of thing owns the flow, the low
40 bits identify it (a stable hash), so that a verdict seen in ``ofproto/trace`` leads back to the
rule or port through :class:`flows.compiler.CompileResult.cookies`.
"""

from __future__ import annotations

import enum
import hashlib

DPAGENT_MARK = 0xD9A6
COOKIE_MASK = 0xFFFF_0000_0000_0000
COOKIE_VALUE = DPAGENT_MARK << 48


class Kind(enum.IntEnum):
    BASE = 1
    PORT = 2
    RULE = 3
    NETWORK = 4
    REMOTE_GROUP = 5
    MEMBER = 6


def stable_hash(text: str, bits: int) -> int:
    """A hash that is the same in every process (unlike ``hash()``)."""
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & ((1 << bits) - 1)


def cookie(kind: Kind, identity: str) -> int:
    return COOKIE_VALUE | (int(kind) << 40) | stable_hash(identity, 40)


def combined_cookie(kind: Kind, first: int, second: int) -> int:
    """A cookie for a pair of identities whose stable hashes are known (e.g. port and rule):
    cheaper than hashing their joined text once per flow, and just as stable."""
    return COOKIE_VALUE | (int(kind) << 40) | ((first * 0x9E3779B1 ^ second) & ((1 << 40) - 1))


def is_dpagent_cookie(value: int) -> bool:
    return value & COOKIE_MASK == COOKIE_VALUE


def cookie_match() -> str:
    """The ``cookie=value/mask`` selector of all dpagent flows, for dump-flows/del-flows."""
    return f"{COOKIE_VALUE:#x}/{COOKIE_MASK:#x}"

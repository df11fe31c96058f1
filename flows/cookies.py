"""dpagent's cookie space.

Every flow dpagent installs carries a cookie whose top 16 bits are :data:`DPAGENT_MARK`, so that
dpagent can dump, compare and delete its own flows (``cookie=MARK/MASK``) without ever touching an
operator's or another agent's flows. The next 8 bits say what kind of thing owns the flow (base
pipeline, port, rule, network, remote group, member). The low 40 bits are a hash of the flow's
content (table, priority, match, actions): two flows with the same cookie are the same flow, so
comparing what the switch holds with what it should hold is a comparison of cookies, whatever text
or encoding the switch prints them in. :attr:`flows.compiler.CompileResult.cookies` says what each
cookie stands for (the rule, port or member), so a verdict seen in ``ofproto/trace`` leads back to
the security-group rule that allowed it.
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
    TUNNEL = 7
    """br-tun: a tunnel port's classification (table 0)."""
    FDB = 8
    """br-tun: one remote MAC (unicast) or IP (ARP responder) told by l2population."""
    LEARNED = 9
    """br-tun: flows OVS makes itself (the ``learn()`` of table 10). Reserved: never desired,
    never compared, never deleted by a reconcile -- they come and go with the traffic."""


LEARNED_COOKIE = COOKIE_VALUE | (Kind.LEARNED << 40)
"""The one cookie every learned flow carries."""


def stable_hash(text: str, bits: int) -> int:
    """A hash that is the same in every process (unlike ``hash()``)."""
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & ((1 << bits) - 1)


def content_cookie(kind: int, body: str) -> int:
    """The final cookie of a flow: its kind and a hash of everything it matches and does."""
    return COOKIE_VALUE | (kind << 40) | stable_hash(body, 40)


def is_dpagent_cookie(value: int) -> bool:
    return value & COOKIE_MASK == COOKIE_VALUE


def kind_of(value: int) -> int:
    """The owner kind of a dpagent cookie (bits 40-47)."""
    return (value >> 40) & 0xFF


def is_learned_cookie(value: int) -> bool:
    """A flow the switch learned by itself under dpagent's mark: not the programmer's."""
    return is_dpagent_cookie(value) and kind_of(value) == Kind.LEARNED


def cookie_match() -> str:
    """The ``cookie=value/mask`` selector of all dpagent flows, for dump-flows/del-flows."""
    return f"{COOKIE_VALUE:#x}/{COOKIE_MASK:#x}"

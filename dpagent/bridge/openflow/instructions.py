"""Action strings (``flows.Flow.actions``, spelled by :mod:`flows.actions`) to OF1.5 instructions.

Every action becomes what ``ovs-ofctl -O OpenFlow15`` sends for it, so the switch holds the same
actions either way: ``load`` is a Set-Field (OF1.5 has no reg_load), ``mod_vlan_vid`` is a
push_vlan (only when the frame may have no tag yet) and a Set-Field of VLAN_VID, ``strip_vlan``
is pop_vlan, ``goto_table`` is an instruction of its own after apply-actions. No actions means
no instruction at all: the packet is dropped.

Each form is matched by one small regular expression; any other text raises
:class:`ValueError`.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Sequence
from functools import lru_cache

from dpagent.bridge.openflow import protocol as ofp
from dpagent.bridge.openflow.oxm import oxm_header, oxm_tlv

_NUM = r"(0x[0-9a-fA-F]+|\d+)"
_SUBFIELD = r"(NXM_NX_REG\d+|NXM_NX_CT_MARK)\[(?:(\d+)(?:\.\.(\d+))?)?\]"
"""An NXM field with an optional bit range: ``NXM_NX_REG6[0..15]``, ``NXM_NX_CT_MARK[0]``,
``NXM_NX_REG5[]`` (the whole field)."""

_GOTO = re.compile(r"goto_table:(\d+)")
_RESUBMIT = re.compile(r"resubmit\(,(\d+)\)")
_LOAD = re.compile(rf"load:{_NUM}->{_SUBFIELD}")
_OUTPUT = re.compile(r"output:(\d+)")
_OUTPUT_REG = re.compile(rf"output:{_SUBFIELD}")
# NORMAL, output:LOCAL, in_port...: a reserved port, bare or with output:, any case
_OUTPUT_RESERVED = re.compile(r"(?:output:)?(normal|in_port|flood|all|local)", re.IGNORECASE)
_MOD_VLAN_VID = re.compile(r"mod_vlan_vid:(\d+)")
_STRIP_VLAN = re.compile(r"strip_vlan")
_CONJUNCTION = re.compile(r"conjunction\((\d+),(\d+)/(\d+)\)")
_CT = re.compile(r"ct\((.*)\)")
_CT_TABLE = re.compile(r"table=(\d+)")
_CT_ZONE_FIELD = re.compile(rf"zone={_SUBFIELD}")
_CT_ZONE_VALUE = re.compile(rf"zone={_NUM}")
_CT_EXEC = re.compile(r"exec\((.*)\)")


def encode_instructions(actions: Sequence[str], tagged: Callable[[], bool]) -> bytes:
    """The instructions of a flow whose actions are ``actions``.

    ``tagged()`` says whether the flow's match guarantees an 802.1Q tag: ``mod_vlan_vid`` then
    rewrites the tag instead of pushing one (as ovs-ofctl decides from the match). It is only
    asked when the actions touch VLAN tags.
    """
    untagged, vlan_sensitive = _instructions(tuple(actions), False)
    if vlan_sensitive and tagged():
        return _instructions(tuple(actions), True)[0]
    return untagged


@lru_cache(maxsize=1 << 14)
def _instructions(actions: tuple[str, ...], tagged: bool) -> tuple[bytes, bool]:
    """(instructions, whether they depend on ``tagged``); cached: action lists repeat."""
    vlan_sensitive = any(a.startswith(("mod_vlan_vid", "strip_vlan")) for a in actions)
    goto = b""
    if actions and (found := _GOTO.fullmatch(actions[-1])):
        goto = struct.pack("!HHB3x", ofp.OFPIT_GOTO_TABLE, 8, int(found.group(1)))
        actions = actions[:-1]
    if not actions:
        return goto, vlan_sensitive
    body = encode_actions(actions, tagged)
    return (struct.pack("!HH4x", ofp.OFPIT_APPLY_ACTIONS, 8 + len(body)) + body + goto,
            vlan_sensitive)


def encode_actions(actions: Sequence[str], tagged: bool = False) -> bytes:
    """An action list (inside apply-actions or a ``ct(exec(...))``)."""
    parts = []
    depth = int(tagged)  # VLAN tags known to be on the frame at this point
    for action in actions:
        encoded, depth = _action(action, depth)
        parts.append(encoded)
    return b"".join(parts)


@lru_cache(maxsize=1 << 12)
def _action(text: str, depth: int) -> tuple[bytes, int]:
    """One action and the number of known tags after it (cached: actions repeat a lot)."""
    if found := _LOAD.fullmatch(text):
        field, size, ofs, nbits = _subfield(found.group(2), found.group(3), found.group(4))
        value = int(found.group(1), 0)
        if value >> nbits:
            raise ValueError(f"{text}: value does not fit in {nbits} bits")
        mask = ((1 << nbits) - 1) << ofs
        return _set_field(ofp.OFPXMC_NXM_1, field, size, value << ofs, mask), depth
    if found := _CONJUNCTION.fullmatch(text):
        conj_id, clause, n_clauses = (int(g) for g in found.groups())
        if not 1 <= clause <= n_clauses or not 2 <= n_clauses <= 64:
            raise ValueError(f"{text}: clause must be 1..n and n 2..64")
        # The wire clause counts from 0 (ovs-ofctl's 1/2 is clause 0 of 2).
        return _nx_action(ofp.NxAction.CONJUNCTION,
                          struct.pack("!BBI", clause - 1, n_clauses, conj_id)), depth
    if found := _OUTPUT.fullmatch(text):
        return struct.pack("!HHIH6x", ofp.OFPAT_OUTPUT, 16, int(found.group(1)), 0), depth
    if found := _OUTPUT_RESERVED.fullmatch(text):
        port = ofp.RESERVED_PORTS[found.group(1).upper()]
        return struct.pack("!HHIH6x", ofp.OFPAT_OUTPUT, 16, port, 0), depth
    if found := _OUTPUT_REG.fullmatch(text):
        field, size, ofs, nbits = _subfield(*found.groups())
        header = oxm_header(ofp.OFPXMC_NXM_1, field, size)
        # max_len 65535 as ovs-ofctl sets it; it only matters for output to the controller.
        return _nx_action(ofp.NxAction.OUTPUT_REG,
                          struct.pack("!HIH6x", (ofs << 6) | (nbits - 1), header, 0xFFFF)), depth
    if found := _RESUBMIT.fullmatch(text):
        return _nx_action(ofp.NxAction.RESUBMIT_TABLE,
                          struct.pack("!HB3x", ofp.OFPP_IN_PORT_16, int(found.group(1)))), depth
    if found := _MOD_VLAN_VID.fullmatch(text):
        vid = int(found.group(1))
        if vid > ofp.VLAN_VID_MASK:
            raise ValueError(f"{text}: not a VLAN id")
        push = b"" if depth else struct.pack("!HHH2x", ofp.OFPAT_PUSH_VLAN, 8,
                                             ofp.ETH_TYPE_VLAN_8021Q)
        set_vid = _set_field(ofp.OFPXMC_OPENFLOW_BASIC, ofp.OfbField.VLAN_VID, 2,
                             vid | ofp.OFPVID_PRESENT)
        return push + set_vid, max(depth, 1)
    if _STRIP_VLAN.fullmatch(text):
        return struct.pack("!HH4x", ofp.OFPAT_POP_VLAN, 8), max(depth - 1, 0)
    if found := _CT.fullmatch(text):
        return _ct(found.group(1)), depth
    if _GOTO.fullmatch(text):
        raise ValueError(f"{text}: goto_table must be the last action")
    raise ValueError(f"unknown action {text!r}")


def _subfield(name: str, low: str | None, high: str | None) -> tuple[int, int, int, int]:
    """(NXM_1 field number, field bytes, bit offset, bit count) of ``NXM_NX_REG6[0..15]``."""
    field = ofp.NXM_NX_CT_MARK if name == "NXM_NX_CT_MARK" else ofp.NXM_NX_REG0 + int(name[10:])
    if name != "NXM_NX_CT_MARK" and not 0 <= int(name[10:]) < 16:
        raise ValueError(f"no register {name}")
    ofs = int(low) if low is not None else 0
    end = int(high) if high is not None else (ofs if low is not None else 31)
    if not 0 <= ofs <= end <= 31:
        raise ValueError(f"bad bit range in {name}")
    return field, 4, ofs, end - ofs + 1


def _set_field(oxm_class: int, field: int, size: int, value: int, mask: int | None = None
               ) -> bytes:
    tlv = oxm_tlv(oxm_class, field, size, value, mask)
    length = 4 + len(tlv)
    return struct.pack("!HH", ofp.OFPAT_SET_FIELD, length + (-length % 8)) + tlv + bytes(
        -length % 8)


def _nx_action(subtype: int, body: bytes) -> bytes:
    """A Nicira experimenter action: type, length, vendor, subtype, then ``body``."""
    length = 10 + len(body)
    if length % 8:
        raise AssertionError(f"Nicira action {subtype} is {length} bytes, not a multiple of 8")
    return struct.pack("!HHIH", ofp.OFPAT_EXPERIMENTER, length, ofp.NX_VENDOR_ID,
                       subtype) + body


def _ct(arguments: str) -> bytes:
    """``ct(commit,table=N,zone=NXM_NX_REG6[0..15],exec(...))`` as NXAST_CT."""
    flags, table, zone_src, zone = 0, ofp.NX_CT_RECIRC_NONE, 0, 0
    nested = b""
    for argument in _split_top_level(arguments):
        if argument == "commit":
            flags |= ofp.NX_CT_F_COMMIT
        elif found := _CT_TABLE.fullmatch(argument):
            table = int(found.group(1))
        elif found := _CT_ZONE_FIELD.fullmatch(argument):
            field, size, ofs, nbits = _subfield(*found.groups())
            zone_src = oxm_header(ofp.OFPXMC_NXM_1, field, size)
            zone = (ofs << 6) | (nbits - 1)
        elif found := _CT_ZONE_VALUE.fullmatch(argument):
            zone = int(found.group(1), 0)  # an immediate zone: zone_src stays 0
        elif found := _CT_EXEC.fullmatch(argument):
            nested = encode_actions(_split_top_level(found.group(1)))
        else:
            raise ValueError(f"unknown ct argument {argument!r}")
    # flags, zone_src, zone_ofs_nbits (or zone_imm), recirc_table, pad[3], alg (none).
    return _nx_action(ofp.NxAction.CT,
                      struct.pack("!HIHB3xH", flags, zone_src, zone, table, 0) + nested)


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses: ``a,exec(b,c)`` -> ``["a", "exec(b,c)"]``."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced parentheses in {text!r}")
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth:
        raise ValueError(f"unbalanced parentheses in {text!r}")
    parts.append(text[start:])
    return [p for p in parts if p]

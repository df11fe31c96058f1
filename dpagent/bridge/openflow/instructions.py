"""Action strings (``flows.Flow.actions``, spelled by :mod:`flows.actions`) to OF1.5 instructions.

Every action becomes what ``ovs-ofctl -O OpenFlow15`` sends for it, so the switch holds the same
actions either way: ``load`` is a Set-Field (OF1.5 has no reg_load), ``move`` is OF1.5's
Copy-Field, ``mod_vlan_vid`` is a push_vlan (only when the frame may have no tag yet) and a
Set-Field of VLAN_VID, ``strip_vlan`` is pop_vlan, ``learn`` is NXAST_LEARN, ``goto_table`` is
an instruction of its own after apply-actions. No actions means no instruction at all: the
packet is dropped.

Fields are named as ovs-ofctl names them in each place: ``set_field:<value>->tun_id`` (see
:func:`~dpagent.bridge.openflow.oxm.set_field_tlv`), NXM names with bit ranges elsewhere
(:data:`~dpagent.bridge.openflow.protocol.NXM_FIELDS`). Set-Field and Copy-Field carry the
field's OXM header where it has one, the NXAST actions its NXM header, as ovs-ofctl does.

Each form is matched by one small regular expression; any other text raises
:class:`ValueError`.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import NamedTuple

from dpagent.bridge.openflow import protocol as ofp
from dpagent.bridge.openflow.oxm import oxm_header, oxm_tlv, set_field_tlv

_NUM = r"(0x[0-9a-fA-F]+|\d+)"
_SUBFIELD = r"(NXM_[A-Z0-9_]+)\[(?:(\d+)(?:\.\.(\d+))?)?\]"
"""An NXM field with an optional bit range: ``NXM_NX_REG6[0..15]``, ``NXM_NX_CT_MARK[0]``,
``NXM_NX_REG5[]`` (the whole field)."""

_GOTO = re.compile(r"goto_table:(\d+)")
_RESUBMIT = re.compile(r"resubmit\(,(\d+)\)")
_LOAD = re.compile(rf"load:{_NUM}->{_SUBFIELD}")
_SET_FIELD = re.compile(r"set_field:([^>]+)->([a-z_]+)")
_MOVE = re.compile(rf"move:{_SUBFIELD}->{_SUBFIELD}")
_LEARN = re.compile(r"learn\((.*)\)")
_LEARN_FIELD = re.compile(_SUBFIELD)
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
        dst = _subfield(found.group(2), found.group(3), found.group(4))
        value = int(found.group(1), 0)
        if value >> dst.nbits:
            raise ValueError(f"{text}: value does not fit in {dst.nbits} bits")
        mask = ((1 << dst.nbits) - 1) << dst.ofs
        return _set_field(oxm_tlv(*dst.of15_class_number, dst.field.size, value << dst.ofs,
                                  mask)), depth
    if found := _SET_FIELD.fullmatch(text):
        return _set_field(set_field_tlv(found.group(2), found.group(1))), depth
    if found := _MOVE.fullmatch(text):
        return _copy_field(_subfield(*found.groups()[:3]), _subfield(*found.groups()[3:]),
                           text), depth
    if found := _LEARN.fullmatch(text):
        return _learn(found.group(1)), depth
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
        src = _subfield(*found.groups())
        # max_len 65535 as ovs-ofctl sets it; it only matters for output to the controller.
        return _nx_action(ofp.NxAction.OUTPUT_REG,
                          struct.pack("!HIH6x", src.ofs_nbits, src.nxm_header, 0xFFFF)), depth
    if found := _RESUBMIT.fullmatch(text):
        return _nx_action(ofp.NxAction.RESUBMIT_TABLE,
                          struct.pack("!HB3x", ofp.OFPP_IN_PORT_16, int(found.group(1)))), depth
    if found := _MOD_VLAN_VID.fullmatch(text):
        vid = int(found.group(1))
        if vid > ofp.VLAN_VID_MASK:
            raise ValueError(f"{text}: not a VLAN id")
        push = b"" if depth else struct.pack("!HHH2x", ofp.OFPAT_PUSH_VLAN, 8,
                                             ofp.ETH_TYPE_VLAN_8021Q)
        set_vid = _set_field(oxm_tlv(ofp.OFPXMC_OPENFLOW_BASIC, ofp.OfbField.VLAN_VID, 2,
                                     vid | ofp.OFPVID_PRESENT))
        return push + set_vid, max(depth, 1)
    if _STRIP_VLAN.fullmatch(text):
        return struct.pack("!HH4x", ofp.OFPAT_POP_VLAN, 8), max(depth - 1, 0)
    if found := _CT.fullmatch(text):
        return _ct(found.group(1)), depth
    if _GOTO.fullmatch(text):
        raise ValueError(f"{text}: goto_table must be the last action")
    raise ValueError(f"unknown action {text!r}")


class Subfield(NamedTuple):
    """``NXM_NX_REG6[0..15]``: a field and the bits of it an action reads or writes."""

    name: str
    field: ofp.NxmField
    ofs: int
    nbits: int

    @property
    def nxm_header(self) -> int:
        """The NXM header NXAST actions (learn, output_reg, ct) name the field by."""
        return oxm_header(self.field.nxm_class, self.field.number, self.field.size)

    @property
    def of15_class_number(self) -> tuple[int, int]:
        """(OXM class, field) of the field in OF1.5 Set-Field and Copy-Field actions."""
        if self.field.oxm is None:
            return self.field.nxm_class, self.field.number
        return ofp.OFPXMC_OPENFLOW_BASIC, self.field.oxm

    @property
    def ofs_nbits(self) -> int:
        """NXAST's packed bit range: offset << 6 | (bits - 1)."""
        return (self.ofs << 6) | (self.nbits - 1)


def _subfield(name: str, low: str | None, high: str | None) -> Subfield:
    """``NXM_NX_REG6``, ``"0"``, ``"15"`` (``NXM_NX_REG6[0..15]``); no bounds: the whole field."""
    field = ofp.NXM_FIELDS.get(name)
    if field is None:
        raise ValueError(f"unknown field {name}")
    ofs = int(low) if low is not None else 0
    end = int(high) if high is not None else (ofs if low is not None else field.size * 8 - 1)
    if not 0 <= ofs <= end < field.size * 8:
        raise ValueError(f"bad bit range in {name}")
    return Subfield(name, field, ofs, end - ofs + 1)


def _set_field(tlv: bytes) -> bytes:
    """OFPAT_SET_FIELD around one OXM TLV, zero-padded to 8 bytes."""
    length = 4 + len(tlv)
    return struct.pack("!HH", ofp.OFPAT_SET_FIELD, length + (-length % 8)) + tlv + bytes(
        -length % 8)


def _copy_field(src: Subfield, dst: Subfield, text: str) -> bytes:
    """``move:src->dst`` as OF1.5 OFPAT_COPY_FIELD: n_bits, offsets, the two OXM headers."""
    if src.nbits != dst.nbits:
        raise ValueError(f"{text}: source and destination differ in width")
    body = struct.pack("!HHH2xII", dst.nbits, src.ofs, dst.ofs,
                       oxm_header(*src.of15_class_number, src.field.size),
                       oxm_header(*dst.of15_class_number, dst.field.size))
    length = 4 + len(body)
    return struct.pack("!HH", ofp.OFPAT_COPY_FIELD, length + (-length % 8)) + body + bytes(
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
            source = _subfield(*found.groups())
            zone_src, zone = source.nxm_header, source.ofs_nbits
        elif found := _CT_ZONE_VALUE.fullmatch(argument):
            zone = int(found.group(1), 0)  # an immediate zone: zone_src stays 0
        elif found := _CT_EXEC.fullmatch(argument):
            nested = encode_actions(_split_top_level(found.group(1)))
        else:
            raise ValueError(f"unknown ct argument {argument!r}")
    # flags, zone_src, zone_ofs_nbits (or zone_imm), recirc_table, pad[3], alg (none).
    return _nx_action(ofp.NxAction.CT,
                      struct.pack("!HIHB3xH", flags, zone_src, zone, table, 0) + nested)


_LEARN_SETTINGS = ("table", "priority", "idle_timeout", "hard_timeout", "fin_idle_timeout",
                   "fin_hard_timeout", "cookie")
_LEARN_LIMITS = {"table": ofp.OFPTT_ALL, "cookie": 1 << 64}
"""Exclusive bounds of the settings (table 255 is no table); the others are 16 bits."""
_NX_LEARN = struct.Struct("!HHHQHBxHH")
"""``struct nx_action_learn`` after the subtype: idle/hard timeout, priority, cookie, flags,
table, pad, fin idle/hard timeout; the flow_mod_specs follow."""


def _learn(arguments: str) -> bytes:
    """``learn(table=20,priority=1,hard_timeout=300,cookie=0x..,<specs>)`` as NXAST_LEARN.

    What is not given is ovs-ofctl's default: table 1, priority 32768, no timeouts, cookie 0.
    Each other argument is one flow_mod_spec (:func:`_learn_spec`); flags (send_flow_rem,
    delete_learned), limit and result_dst are not supported.
    """
    settings = dict.fromkeys(_LEARN_SETTINGS, 0) | {"table": 1,
                                                    "priority": ofp.OFP_DEFAULT_PRIORITY}
    specs = []
    for argument in _split_top_level(arguments):
        name, equals, value = argument.partition("=")
        if equals and name in settings:
            # ovs-ofctl reads the cookie with strtoull(0), the others as decimal (atoi).
            if (not re.fullmatch(_NUM if name == "cookie" else r"\d+", value)
                    or int(value, 0) >= _LEARN_LIMITS.get(name, 1 << 16)):
                raise ValueError(f"learn: bad {argument}")
            settings[name] = int(value, 0)
        else:
            specs.append(_learn_spec(argument))
    body = _NX_LEARN.pack(settings["idle_timeout"], settings["hard_timeout"],
                          settings["priority"], settings["cookie"], 0, settings["table"],
                          settings["fin_idle_timeout"], settings["fin_hard_timeout"])
    body += b"".join(specs)
    return _nx_action(ofp.NxAction.LEARN, body + bytes(-(10 + len(body)) % 8))


def _learn_spec(text: str) -> bytes:
    """One flow_mod_spec of a learned flow, in ovs-ofctl's three forms:

    * ``DST[..]`` / ``DST[..]=SRC[..]`` / ``DST[..]=value``: match DST on the packet's own
      DST bits (on SRC's, on a value);
    * ``load:SRC[..]->DST[..]`` / ``load:value->DST[..]``: the learned flow sets DST;
    * ``output:SRC[..]``: the learned flow outputs to the port in SRC.
    """
    if text.startswith("load:"):
        source, arrow, target = text[len("load:"):].partition("->")
        if not arrow:
            raise ValueError(f"learn: {text!r} has no ->")
        dst = _learn_field(target)
        return _flow_mod_spec(ofp.NX_LEARN_DST_LOAD, dst.nbits, _learn_source(source, dst), dst)
    if text.startswith("output:"):
        src = _learn_field(text[len("output:"):])
        return _flow_mod_spec(ofp.NX_LEARN_DST_OUTPUT, src.nbits, src, None)
    target, _, source = text.partition("=")
    dst = _learn_field(target)
    return _flow_mod_spec(ofp.NX_LEARN_DST_MATCH, dst.nbits,
                          _learn_source(source, dst) if source else dst, dst)


def _learn_field(text: str) -> Subfield:
    if not (found := _LEARN_FIELD.fullmatch(text)):
        raise ValueError(f"learn: {text!r} is not a known argument nor a field (NXM_..[..])")
    return _subfield(*found.groups())


def _learn_source(text: str, dst: Subfield) -> Subfield | int:
    """A spec's source: a field as wide as ``dst``, or a number that fits in it."""
    if text.startswith("NXM_"):
        src = _learn_field(text)
        if src.nbits != dst.nbits:
            raise ValueError(f"learn: {text} and {dst.name} differ in width")
        return src
    if not re.fullmatch(_NUM, text):
        raise ValueError(f"learn: {text!r} is neither a field nor a number")
    if (value := int(text, 0)) >> dst.nbits:
        raise ValueError(f"learn: {text} does not fit in {dst.nbits} bits")
    return value


def _flow_mod_spec(dst_type: int, nbits: int, src: Subfield | int, dst: Subfield | None
                   ) -> bytes:
    """Header (source kind | destination kind | bits), source, destination (none for output).

    A field is its NXM header and bit offset; a value is right-aligned in whole 16-bit words.
    """
    if isinstance(src, Subfield):
        spec = struct.pack("!HIH", dst_type | nbits, src.nxm_header, src.ofs)
    else:
        spec = struct.pack("!H", ofp.NX_LEARN_SRC_IMMEDIATE | dst_type | nbits) + src.to_bytes(
            2 * ((nbits + 15) // 16), "big")
    if dst is not None:
        spec += struct.pack("!IH", dst.nxm_header, dst.ofs)
    return spec


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

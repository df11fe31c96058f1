"""OpenFlow 1.5 messages dpagent sends and reads, as bytes. Pure: no sockets, no clocks.

What the switch must do with a :class:`~dpagent.bridge.transport.FlowMod` is decided here: an
ADD is an ``OFPFC_ADD`` flow-mod of the flow (its cookie, table, priority; no timeouts, no
flags), a DELETE is an ``OFPFC_DELETE`` in every table of the flows whose cookie is exactly the
mod's cookie (a content cookie names one flow, see :mod:`flows.cookies`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from dpagent.bridge.openflow import protocol as ofp
from dpagent.bridge.openflow.instructions import encode_instructions
from dpagent.bridge.openflow.oxm import encode_match
from dpagent.bridge.transport import FlowMod, InstalledFlow, Op
from flows import Flow

ALL_ONES_64 = (1 << 64) - 1
_HEADER = struct.Struct("!BBHI")
_FLOW_MOD = struct.Struct("!QQBBHHHIIIHH")
"""``struct ofp11_flow_mod`` after the header: cookie, cookie_mask, table_id, command,
idle_timeout, hard_timeout, priority, buffer_id, out_port, out_group, flags, importance."""
_BUNDLE = struct.Struct("!IHH")
"""``struct ofp14_bundle_ctrl_msg``: bundle_id, type, flags."""
_FLOW_DESC = struct.Struct("!H2xBxHHHHHQ")
"""``struct ofp15_flow_desc``: length, table_id, priority, idle/hard timeout, flags,
importance, cookie; followed by the match, the statistics and the instructions."""
_EMPTY_MATCH = struct.pack("!HH4x", ofp.OFPMT_OXM, 4)


@dataclass(frozen=True, slots=True)
class Message:
    """One received OpenFlow message: its type, xid and everything after the header."""

    type: int
    xid: int
    body: bytes


@dataclass(frozen=True, slots=True)
class OpenFlowError:
    """An ``OFPT_ERROR``: ``xid`` is the failed request's, ``data`` its first bytes."""

    xid: int
    type: int
    code: int
    data: bytes

    def describe(self) -> str:
        """``OFPBIC_BAD_TABLE_ID (BAD_INSTRUCTION 3/2)``: the switch's words, with numbers."""
        if self.type == ofp.OFPET_EXPERIMENTER:
            vendor = int.from_bytes(self.data[:4], "big")
            name = ofp.NX_ERROR_CODES.get(self.code) if vendor == ofp.NX_VENDOR_ID else None
            return f"{name or 'experimenter error'} (vendor {vendor:#x}, code {self.code})"
        name = ofp.ERROR_CODES.get(self.type, {}).get(self.code, "")
        type_name = ofp.ERROR_TYPES.get(self.type, "error")
        return f"{name or type_name} ({type_name} {self.type}/{self.code})"


# -- framing -----------------------------------------------------------------------------------


def header(msg_type: int, length: int, xid: int) -> bytes:
    return _HEADER.pack(ofp.OFP15_VERSION, msg_type, length, xid)


def message(msg_type: int, xid: int, body: bytes = b"") -> bytes:
    return header(msg_type, ofp.HEADER_LEN + len(body), xid) + body


def split_header(data: bytes | bytearray, offset: int = 0) -> tuple[int, int, int, int]:
    """(version, type, length, xid) of the message at ``offset`` in ``data``."""
    version, msg_type, length, xid = _HEADER.unpack_from(data, offset)
    return version, msg_type, length, xid


def hello(xid: int) -> bytes:
    """OFPT_HELLO offering OpenFlow 1.5 only (a version-bitmap element with bit 6 set)."""
    element = struct.pack("!HHI", ofp.OFPHET_VERSIONBITMAP, 8, 1 << ofp.OFP15_VERSION)
    return message(ofp.MsgType.HELLO, xid, element)


def hello_versions(version: int, body: bytes) -> set[int]:
    """The versions a peer's hello offers: its bitmap element, else every version up to the
    header's (OpenFlow 1.3.1 section 6.3.1)."""
    offset = 0
    while offset + 4 <= len(body):
        element_type, length = struct.unpack_from("!HH", body, offset)
        if length < 4:
            break
        if element_type == ofp.OFPHET_VERSIONBITMAP:
            bitmap = int.from_bytes(body[offset + 4:offset + length][:4], "big")
            return {v for v in range(32) if bitmap >> v & 1}
        offset += (length + 7) // 8 * 8
    return set(range(1, version + 1))


def echo_reply(xid: int, data: bytes) -> bytes:
    return message(ofp.MsgType.ECHO_REPLY, xid, data)


def barrier_request(xid: int) -> bytes:
    return message(ofp.MsgType.BARRIER_REQUEST, xid)


def set_config_fragments_nx_match(xid: int) -> bytes:
    """OFPT_SET_CONFIG: fragment handling "nx-match" (see ``ovs-ofctl set-frags``)."""
    return message(ofp.MsgType.SET_CONFIG, xid,
                   struct.pack("!HH", ofp.OFPC_FRAG_NX_MATCH, ofp.OFPCML_NO_BUFFER))


# -- flow-mods -------------------------------------------------------------------------------


def flow_mod_body(mod: FlowMod) -> bytes:
    """The flow-mod of ``mod`` without its header (so it can be framed with any xid)."""
    if mod.op is Op.DELETE and mod.flow is not None:  # a purge: table and match given
        return _FLOW_MOD.pack(mod.cookie, ALL_ONES_64, mod.flow.table, ofp.OFPFC_DELETE, 0, 0,
                              0, ofp.OFP_NO_BUFFER, ofp.OFPP_ANY, ofp.OFPG_ANY, 0, 0
                              ) + encode_match(mod.flow.match)
    if mod.op is Op.DELETE:
        return _FLOW_MOD.pack(mod.cookie, ALL_ONES_64, ofp.OFPTT_ALL, ofp.OFPFC_DELETE, 0, 0,
                              0, ofp.OFP_NO_BUFFER, ofp.OFPP_ANY, ofp.OFPG_ANY, 0, 0
                              ) + _EMPTY_MATCH
    if mod.flow is None:
        raise ValueError(f"ADD flow-mod without a flow (cookie {mod.cookie:#x})")
    return add_flow_body(mod.flow)


def add_flow_body(flow: Flow) -> bytes:
    """``OFPFC_ADD`` of ``flow``. Raises ValueError naming the flow if it cannot be encoded."""
    try:
        match = encode_match(flow.match)
        instructions = encode_instructions(flow.actions, lambda: _tagged(flow))
    except ValueError as exc:
        raise ValueError(f"cannot encode flow {flow.render()}: {exc}") from None
    return _FLOW_MOD.pack(flow.cookie, 0, flow.table, ofp.OFPFC_ADD, 0, 0, flow.priority,
                          ofp.OFP_NO_BUFFER, ofp.OFPP_ANY, ofp.OFPG_ANY, 0, 0
                          ) + match + instructions


def _tagged(flow: Flow) -> bool:
    """Whether the match guarantees an 802.1Q tag (ovs-ofctl decides ``mod_vlan_vid``'s push
    from this)."""
    for name, value in flow.match:
        if name == "dl_vlan":
            return True
        if name == "vlan_tci":
            tci, _, mask = value.partition("/")
            if int(tci, 0) & int(mask or "0xffff", 0) & ofp.OFPVID_PRESENT:
                return True
    return False


def flow_mod(mod: FlowMod, xid: int) -> bytes:
    return message(ofp.MsgType.FLOW_MOD, xid, flow_mod_body(mod))


# -- bundles ---------------------------------------------------------------------------------

BUNDLE_FLAGS = ofp.OFPBF_ATOMIC | ofp.OFPBF_ORDERED


def bundle_control(bundle_id: int, ctrl: ofp.BundleCtrl, xid: int,
                   flags: int = BUNDLE_FLAGS) -> bytes:
    return message(ofp.MsgType.BUNDLE_CONTROL, xid, _BUNDLE.pack(bundle_id, ctrl, flags))


def bundle_add(bundle_id: int, xid: int, inner_type: int, inner_body: bytes,
               flags: int = BUNDLE_FLAGS) -> bytes:
    """OFPT_BUNDLE_ADD_MESSAGE carrying one message; both headers carry ``xid``, as the
    specification requires, so an error about either names the same xid."""
    inner_length = ofp.HEADER_LEN + len(inner_body)
    return _BUNDLE_ADD.pack(ofp.OFP15_VERSION, ofp.MsgType.BUNDLE_ADD_MESSAGE,
                            ofp.HEADER_LEN + _BUNDLE.size + inner_length, xid,
                            bundle_id, 0, flags,
                            ofp.OFP15_VERSION, inner_type, inner_length, xid) + inner_body


_BUNDLE_ADD = struct.Struct("!BBHI" "IHH" "BBHI")
"""Outer header, ``ofp14_bundle_ctrl_msg``, inner header: packed at once (80k per bundle)."""


def parse_bundle_control(body: bytes) -> tuple[int, int, int]:
    """(bundle_id, type, flags) of a BUNDLE_CONTROL reply."""
    bundle_id, ctrl, flags = _BUNDLE.unpack_from(body)
    return bundle_id, ctrl, flags


# -- flow dumps ------------------------------------------------------------------------------


def flow_desc_request(cookie: int, mask: int, xid: int) -> bytes:
    """OFPMP_FLOW_DESC of every table, only flows whose cookie matches ``cookie``/``mask``."""
    request = struct.pack("!B3xII4xQQ", ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY,
                          cookie & mask, mask) + _EMPTY_MATCH
    return message(ofp.MsgType.MULTIPART_REQUEST, xid,
                   struct.pack("!HH4x", ofp.OFPMP_FLOW_DESC, 0) + request)


def parse_flow_desc_reply(body: bytes) -> tuple[list[InstalledFlow], bool]:
    """The flows in one OFPMP_FLOW_DESC reply, and whether more replies follow."""
    mp_type, flags = struct.unpack_from("!HH", body)
    if mp_type != ofp.OFPMP_FLOW_DESC:
        raise ValueError(f"multipart reply of type {mp_type}, expected flow desc")
    flows = []
    offset = 8
    while offset < len(body):
        length, table, priority, _, _, _, _, cookie = _FLOW_DESC.unpack_from(body, offset)
        if length < _FLOW_DESC.size or offset + length > len(body):
            raise ValueError(f"flow desc entry of bad length {length} at offset {offset}")
        flows.append(InstalledFlow(cookie, table, priority))
        offset += length
    return flows, bool(flags & ofp.OFPMPF_REPLY_MORE)


# -- errors ----------------------------------------------------------------------------------


def parse_error(xid: int, body: bytes) -> OpenFlowError:
    """An OFPT_ERROR body. Experimenter errors (type 0xffff) carry ``exp_code`` where the code
    is and the vendor id before the data; ``data`` then starts with the vendor id."""
    err_type, code = struct.unpack_from("!HH", body)
    return OpenFlowError(xid, err_type, code, bytes(body[4:]))


def error_inner_xid(error: OpenFlowError) -> int | None:
    """The xid in the copy of the failed message, if the error carries one."""
    data = error.data[4:] if error.type == ofp.OFPET_EXPERIMENTER else error.data
    if len(data) < ofp.HEADER_LEN:
        return None
    return split_header(data)[3]

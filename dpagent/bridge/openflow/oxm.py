"""Match items (``flows.Flow.match``) to an OpenFlow 1.5 OXM match.

Each item is one ``ovs-ofctl`` match field with its text value; the result is the ``ofp_match``
structure (type OXM, TLVs, padding) that makes ovs-vswitchd hold the same match ``ovs-ofctl``
would give it.

OVS checks each field's prerequisites as it reads it, so the protocol goes first: the match's
eth_type and ip_proto (from a shorthand such as ``tcp6``, or ``dl_type``/``nw_proto``) are
written once at the front, the other fields follow in the given order, and ``nd_target`` (which
needs ``icmpv6_type``) goes last.

Only the fields the compilers (br-int's and br-tun's) emit are known; anything else raises
:class:`ValueError`. :func:`set_field_tlv` is the same for the value of a ``set_field`` action.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Sequence
from functools import lru_cache

from dpagent.bridge.openflow import protocol as ofp

MatchItem = tuple[str, str]

_PROTOCOLS: dict[str, tuple[int, int | None]] = {
    "ip": (ofp.ETH_TYPE_IP, None), "ipv6": (ofp.ETH_TYPE_IPV6, None),
    "arp": (ofp.ETH_TYPE_ARP, None),
    "tcp": (ofp.ETH_TYPE_IP, 6), "tcp6": (ofp.ETH_TYPE_IPV6, 6),
    "udp": (ofp.ETH_TYPE_IP, 17), "udp6": (ofp.ETH_TYPE_IPV6, 17),
    "sctp": (ofp.ETH_TYPE_IP, 132), "sctp6": (ofp.ETH_TYPE_IPV6, 132),
    "icmp": (ofp.ETH_TYPE_IP, 1), "icmp6": (ofp.ETH_TYPE_IPV6, 58),
}
"""ovs-ofctl protocol shorthands: (eth_type, ip_proto)."""

_PROTOCOL_FIELDS = {"dl_type", "eth_type", "nw_proto", "ip_proto", *_PROTOCOLS}
"""Items that only say what the protocol is: written in the prefix, not where they stand."""

_PORT_FIELDS = {
    6: (ofp.OfbField.TCP_SRC, ofp.OfbField.TCP_DST),
    17: (ofp.OfbField.UDP_SRC, ofp.OfbField.UDP_DST),
    132: (ofp.OfbField.SCTP_SRC, ofp.OfbField.SCTP_DST),
}

_MATCH_HEADER = struct.Struct("!HH")
_PAD = [bytes(-n % 8) for n in range(8)]


def oxm_header(oxm_class: int, field: int, length: int, masked: bool = False) -> int:
    """The 32-bit OXM header: class, field, has-mask bit, payload length (value + mask)."""
    return (oxm_class << 16) | (field << 9) | (int(masked) << 8) | length


def oxm_tlv(oxm_class: int, field: int, size: int, value: int, mask: int | None = None) -> bytes:
    """One TLV; the mask is left out when it covers the whole field (an exact match)."""
    full = (1 << (size * 8)) - 1
    if value >> (size * 8) or mask is not None and mask >> (size * 8):
        raise ValueError(f"{value:#x}{'' if mask is None else f'/{mask:#x}'} does not fit in "
                         f"{size} bytes")
    if mask is None or mask == full:
        return struct.pack("!I", oxm_header(oxm_class, field, size)) + value.to_bytes(size, "big")
    return (struct.pack("!I", oxm_header(oxm_class, field, 2 * size, True))
            + (value & mask).to_bytes(size, "big") + mask.to_bytes(size, "big"))


def encode_match(match: Sequence[MatchItem]) -> bytes:
    """The ``ofp_match`` of ``match``: type OXM, length, TLVs, zero padding to 8 bytes."""
    eth_type, ip_proto = protocol_of(match)
    parts = [_protocol_tlvs(eth_type, ip_proto)]
    last = b""
    for name, value in match:
        if name in _PROTOCOL_FIELDS:
            if value and name in _PROTOCOLS:
                raise ValueError(f"protocol {name} takes no value")
        elif name == "nd_target":
            last = _item(name, value, eth_type, ip_proto)
        else:
            parts.append(_item(name, value, eth_type, ip_proto))
    parts.append(last)
    body = b"".join(parts)
    length = 4 + len(body)
    return _MATCH_HEADER.pack(ofp.OFPMT_OXM, length) + body + _PAD[length % 8]


def protocol_of(match: Sequence[MatchItem]) -> tuple[int | None, int | None]:
    """(eth_type, ip_proto) the match requires; ValueError if its items disagree."""
    eth_type: int | None = None
    ip_proto: int | None = None
    for name, value in match:
        if name not in _PROTOCOL_FIELDS:
            continue
        new_type: int | None
        new_proto: int | None
        if name in _PROTOCOLS:
            new_type, new_proto = _PROTOCOLS[name]
        elif name in ("dl_type", "eth_type"):
            new_type, new_proto = int(value, 0), None
        else:
            new_type, new_proto = eth_type, int(value, 0)
        if (eth_type is not None and new_type != eth_type
                or ip_proto is not None and new_proto is not None and new_proto != ip_proto):
            raise ValueError(f"{name}{'=' + value if value else ''} contradicts the protocol "
                             "given before it")
        eth_type = new_type
        ip_proto = new_proto if new_proto is not None else ip_proto
    if ip_proto is not None and eth_type not in (ofp.ETH_TYPE_IP, ofp.ETH_TYPE_IPV6):
        raise ValueError("nw_proto needs ip or ipv6")
    return eth_type, ip_proto


@lru_cache(maxsize=64)
def _protocol_tlvs(eth_type: int | None, ip_proto: int | None) -> bytes:
    tlvs = b""
    if eth_type is not None:
        tlvs += _basic(ofp.OfbField.ETH_TYPE, 2, eth_type)
    if ip_proto is not None:
        tlvs += _basic(ofp.OfbField.IP_PROTO, 1, ip_proto)
    return tlvs


@lru_cache(maxsize=1 << 12)
def _item(name: str, value: str, eth_type: int | None, ip_proto: int | None) -> bytes:
    """The TLV of one match item, given the match's protocol (cached: registers, protocols
    and ports repeat a lot; member addresses do not, and 65,536 of them held 7 MiB)."""
    if name.startswith("reg") and name[3:].isdigit() and int(name[3:]) < 16:
        return _nx(ofp.NXM_NX_REG0 + int(name[3:]), 4, *_number(value))
    encoder = _ENCODERS.get(name)
    if encoder is None:
        raise ValueError(f"unknown match field {name!r}")
    return encoder(value, eth_type, ip_proto)


def _basic(field: int, size: int, value: int, mask: int | None = None) -> bytes:
    return oxm_tlv(ofp.OFPXMC_OPENFLOW_BASIC, field, size, value, mask)


def _nx(field: int, size: int, value: int, mask: int | None = None,
        oxm_class: int = ofp.OFPXMC_NXM_1) -> bytes:
    return oxm_tlv(oxm_class, field, size, value, mask)


# -- values ----------------------------------------------------------------------------------


def _number(text: str) -> tuple[int, int | None]:
    """``0x5``, ``17``, ``0x400/0xfc00`` -> (value, mask or None)."""
    value, _, mask = text.partition("/")
    return int(value, 0), int(mask, 0) if mask else None


def _mac(text: str) -> tuple[int, int | None]:
    value, _, mask = text.partition("/")
    return _mac_int(value), _mac_int(mask) if mask else None


def _mac_int(text: str) -> int:
    octets = text.split(":")
    if len(octets) != 6 or not all(1 <= len(o) <= 2 for o in octets):
        raise ValueError(f"bad MAC address {text!r}")
    return int.from_bytes(bytes(int(o, 16) for o in octets), "big")


def _ipv4(text: str) -> tuple[int, int]:
    """``10.0.0.0/8``, ``10.0.0.1`` or ``10.0.0.0/255.0.0.0`` -> (address & mask, mask)."""
    return _ip(text, socket.AF_INET, 32)


def _ipv6(text: str) -> tuple[int, int]:
    return _ip(text, socket.AF_INET6, 128)


def _ip(text: str, family: int, bits: int) -> tuple[int, int]:
    address, _, prefix = text.partition("/")
    try:
        value = int.from_bytes(socket.inet_pton(family, address), "big")
        if not prefix:
            mask = (1 << bits) - 1
        elif prefix.isdigit() and int(prefix) <= bits:
            mask = ((1 << bits) - 1) ^ ((1 << (bits - int(prefix))) - 1)
        else:
            mask = int.from_bytes(socket.inet_pton(family, prefix), "big")
    except OSError:
        raise ValueError(f"bad address {text!r}") from None
    return value & mask, mask


def _require(what: str, ok: bool) -> None:
    if not ok:
        raise ValueError(f"{what} needs its protocol in the match")


# -- fields ----------------------------------------------------------------------------------

Encoder = Callable[[str, "int | None", "int | None"], bytes]


def _tun_id(value: str, eth_type: int | None, ip_proto: int | None) -> bytes:
    # OF1.5's tunnel_id is NXM_NX_TUN_ID (one field in OVS); ovs-ofctl sends the OXM form.
    return _basic(ofp.OfbField.TUNNEL_ID, 8, *_number(value))


def _arp_op(value: str, eth_type: int | None, ip_proto: int | None) -> bytes:
    _require("arp_op", eth_type == ofp.ETH_TYPE_ARP)
    return _basic(ofp.OfbField.ARP_OP, 2, *_exact(value))


def _exact(text: str) -> tuple[int, None]:
    """A number of a field OVS cannot mask (``arp_op``)."""
    value, mask = _number(text)
    if mask is not None:
        raise ValueError(f"{text}: this field takes no mask")
    return value, None


def _in_port(value: str, eth_type: int | None, ip_proto: int | None) -> bytes:
    return _basic(ofp.OfbField.IN_PORT, 4, int(value, 0))


def _eth_addr(field: int) -> Encoder:
    def encode(value: str, eth_type: int | None, ip_proto: int | None) -> bytes:
        return _basic(field, 6, *_mac(value))
    return encode


def _dl_vlan(value: str, eth_type: int | None, ip_proto: int | None) -> bytes:
    # A tag with this VID, any PCP: the TCI's VID and CFI ("present") bits.
    tci = (int(value, 0) & ofp.VLAN_VID_MASK) | ofp.OFPVID_PRESENT
    return _nx(ofp.NXM_OF_VLAN_TCI, 2, tci, ofp.VLAN_VID_MASK | ofp.OFPVID_PRESENT,
               oxm_class=ofp.OFPXMC_NXM_0)


def _vlan_tci(value: str, eth_type: int | None, ip_proto: int | None) -> bytes:
    # NXM_OF_VLAN_TCI carries the TCI exactly as written (0x0000/0x1fff: no tag at all), so no
    # translation to OF1.5's VLAN_VID semantics is needed.
    return _nx(ofp.NXM_OF_VLAN_TCI, 2, *_number(value), oxm_class=ofp.OFPXMC_NXM_0)


def _nw_addr(source: bool) -> Encoder:
    def encode(value: str, eth_type: int | None, ip_proto: int | None) -> bytes:
        if eth_type == ofp.ETH_TYPE_ARP:  # ovs-ofctl: nw_src/nw_dst of ARP are spa/tpa
            field = ofp.OfbField.ARP_SPA if source else ofp.OfbField.ARP_TPA
        else:
            _require("nw_src/nw_dst", eth_type == ofp.ETH_TYPE_IP)
            field = ofp.OfbField.IPV4_SRC if source else ofp.OfbField.IPV4_DST
        return _basic(field, 4, *_ipv4(value))
    return encode


def _address(field: int, want_type: int) -> Encoder:
    def encode(value: str, eth_type: int | None, ip_proto: int | None) -> bytes:
        _require(field.name if isinstance(field, ofp.OfbField) else str(field),
                 eth_type == want_type)
        if want_type == ofp.ETH_TYPE_IPV6:
            return _basic(field, 16, *_ipv6(value))
        return _basic(field, 4, *_ipv4(value))
    return encode


def _arp_hw(field: int) -> Encoder:
    def encode(value: str, eth_type: int | None, ip_proto: int | None) -> bytes:
        _require("arp_sha/arp_tha", eth_type == ofp.ETH_TYPE_ARP)
        return _basic(field, 6, *_mac(value))
    return encode


def _nw_frag(value: str, eth_type: int | None, ip_proto: int | None) -> bytes:
    _require("nw_frag", eth_type in (ofp.ETH_TYPE_IP, ofp.ETH_TYPE_IPV6))
    if value not in ofp.IP_FRAG:
        raise ValueError(f"unknown nw_frag {value!r}")
    return _nx(ofp.NXM_NX_IP_FRAG, 1, *ofp.IP_FRAG[value])


def _tp_port(source: bool) -> Encoder:
    def encode(value: str, eth_type: int | None, ip_proto: int | None) -> bytes:
        if ip_proto not in _PORT_FIELDS:
            raise ValueError("tp_src/tp_dst need tcp, udp or sctp in the match")
        return _basic(_PORT_FIELDS[ip_proto][0 if source else 1], 2, *_number(value))
    return encode


def _icmp(field: ofp.OfbField, want_proto: int) -> Encoder:
    def encode(value: str, eth_type: int | None, ip_proto: int | None) -> bytes:
        _require(field.name, ip_proto == want_proto)
        return _basic(field, 1, int(value, 0))
    return encode


def _nd_target(value: str, eth_type: int | None, ip_proto: int | None) -> bytes:
    _require("nd_target", eth_type == ofp.ETH_TYPE_IPV6 and ip_proto == 58)
    return _basic(ofp.OfbField.IPV6_ND_TARGET, 16, *_ipv6(value))


def _ct_state(value: str, eth_type: int | None, ip_proto: int | None) -> bytes:
    """``+est+trk-rpl`` (flags: + must be set, - must be clear) or ``0x22/0x22``."""
    if value[:1] not in ("+", "-"):
        return _nx(ofp.NXM_NX_CT_STATE, 4, *_number(value))
    bits = mask = 0
    for sign, flag in _flags(value):
        if flag not in ofp.CT_STATE_BITS:
            raise ValueError(f"unknown ct_state flag {flag!r}")
        mask |= ofp.CT_STATE_BITS[flag]
        bits |= ofp.CT_STATE_BITS[flag] if sign == "+" else 0
    return _nx(ofp.NXM_NX_CT_STATE, 4, bits, mask)


def _flags(text: str) -> list[tuple[str, str]]:
    """``+est-new+trk`` -> [("+", "est"), ("-", "new"), ("+", "trk")]."""
    out: list[tuple[str, str]] = []
    for char in text:
        if char in "+-":
            out.append((char, ""))
        else:
            out[-1] = (out[-1][0], out[-1][1] + char)
    return out


def _nx_number(field: int, size: int) -> Encoder:
    def encode(value: str, eth_type: int | None, ip_proto: int | None) -> bytes:
        return _nx(field, size, *_number(value))
    return encode


_ENCODERS: dict[str, Encoder] = {
    "in_port": _in_port,
    "tun_id": _tun_id, "tunnel_id": _tun_id,
    "arp_op": _arp_op,
    "dl_src": _eth_addr(ofp.OfbField.ETH_SRC), "eth_src": _eth_addr(ofp.OfbField.ETH_SRC),
    "dl_dst": _eth_addr(ofp.OfbField.ETH_DST), "eth_dst": _eth_addr(ofp.OfbField.ETH_DST),
    "dl_vlan": _dl_vlan,
    "vlan_tci": _vlan_tci,
    "nw_src": _nw_addr(source=True), "nw_dst": _nw_addr(source=False),
    "ip_src": _address(ofp.OfbField.IPV4_SRC, ofp.ETH_TYPE_IP),
    "ip_dst": _address(ofp.OfbField.IPV4_DST, ofp.ETH_TYPE_IP),
    "ipv6_src": _address(ofp.OfbField.IPV6_SRC, ofp.ETH_TYPE_IPV6),
    "ipv6_dst": _address(ofp.OfbField.IPV6_DST, ofp.ETH_TYPE_IPV6),
    "arp_spa": _address(ofp.OfbField.ARP_SPA, ofp.ETH_TYPE_ARP),
    "arp_tpa": _address(ofp.OfbField.ARP_TPA, ofp.ETH_TYPE_ARP),
    "arp_sha": _arp_hw(ofp.OfbField.ARP_SHA), "arp_tha": _arp_hw(ofp.OfbField.ARP_THA),
    "nw_frag": _nw_frag, "ip_frag": _nw_frag,
    "tp_src": _tp_port(source=True), "tp_dst": _tp_port(source=False),
    "icmp_type": _icmp(ofp.OfbField.ICMPV4_TYPE, 1),
    "icmp_code": _icmp(ofp.OfbField.ICMPV4_CODE, 1),
    "icmpv6_type": _icmp(ofp.OfbField.ICMPV6_TYPE, 58),
    "icmpv6_code": _icmp(ofp.OfbField.ICMPV6_CODE, 58),
    "nd_target": _nd_target,
    "ct_state": _ct_state,
    "ct_mark": _nx_number(ofp.NXM_NX_CT_MARK, 4),
    "conj_id": _nx_number(ofp.NXM_NX_CONJ_ID, 4),
}


# -- set_field -------------------------------------------------------------------------------

_SET_FIELDS: dict[str, tuple[ofp.OfbField, int, Callable[[str], tuple[int, int | None]]]] = {
    "tun_id": (ofp.OfbField.TUNNEL_ID, 8, _number),
    "tunnel_id": (ofp.OfbField.TUNNEL_ID, 8, _number),
    "arp_op": (ofp.OfbField.ARP_OP, 2, _exact),
    "arp_spa": (ofp.OfbField.ARP_SPA, 4, _ipv4), "arp_tpa": (ofp.OfbField.ARP_TPA, 4, _ipv4),
    "arp_sha": (ofp.OfbField.ARP_SHA, 6, _mac), "arp_tha": (ofp.OfbField.ARP_THA, 6, _mac),
    "eth_src": (ofp.OfbField.ETH_SRC, 6, _mac), "dl_src": (ofp.OfbField.ETH_SRC, 6, _mac),
    "eth_dst": (ofp.OfbField.ETH_DST, 6, _mac), "dl_dst": (ofp.OfbField.ETH_DST, 6, _mac),
}
"""Fields ``set_field:<value>->name`` may write: OXM field, bytes, how its value is written."""


def set_field_tlv(name: str, value: str) -> bytes:
    """The OXM TLV of ``set_field:value->name`` (``value/mask`` sets only the mask's bits).

    Whether the flow's match meets the field's prerequisites (an ARP field needs ``arp``) is
    checked by the switch, as for ovs-ofctl's flow-mods.
    """
    if name not in _SET_FIELDS:
        raise ValueError(f"set_field of unknown field {name!r}")
    field, size, parse = _SET_FIELDS[name]
    return _basic(field, size, *parse(value))

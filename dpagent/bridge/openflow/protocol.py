"""OpenFlow 1.5 and Nicira-extension numbers dpagent uses, each under its specification name.

Sources: OVS's ``include/openflow/openflow-common.h``, ``openflow-1.1.h``, ``openflow-1.4.h``,
``openflow-1.5.h``, ``nicira-ext.h``, ``include/openvswitch/meta-flow.h`` (field numbers),
``lib/ofp-actions.c`` (action numbers and layouts) and ``include/openvswitch/ofp-errors.h``.
Nothing else in :mod:`dpagent.bridge.openflow` spells a protocol number.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

OFP15_VERSION = 0x06
HEADER_LEN = 8
"""``struct ofp_header``: version (1), type (1), length (2), xid (4)."""


class MsgType(enum.IntEnum):
    """``enum ofp_type`` (OpenFlow 1.3 and later numbering)."""

    HELLO = 0
    ERROR = 1
    ECHO_REQUEST = 2
    ECHO_REPLY = 3
    EXPERIMENTER = 4
    SET_CONFIG = 9
    FLOW_MOD = 14
    MULTIPART_REQUEST = 18
    MULTIPART_REPLY = 19
    BARRIER_REQUEST = 20
    BARRIER_REPLY = 21
    BUNDLE_CONTROL = 33
    BUNDLE_ADD_MESSAGE = 34


OFPC_FRAG_NX_MATCH = 3
"""Switch config flag (Nicira): IP fragments keep their L4 fields for matching; first
fragments carry ports, later ones match ``nw_frag=later`` with ports 0."""
OFPCML_NO_BUFFER = 0xFFFF

OFPHET_VERSIONBITMAP = 1
"""Hello element carrying the bitmap of versions the sender speaks."""

# -- flow-mod (struct ofp11_flow_mod) --------------------------------------------------------

OFPFC_ADD = 0
OFPFC_DELETE = 3
OFPTT_ALL = 0xFF
"""All tables (delete, stats requests)."""
OFP_NO_BUFFER = 0xFFFFFFFF
OFPP_ANY = 0xFFFFFFFF
"""Wildcard port in OF1.1+ 32-bit numbering."""
OFPG_ANY = 0xFFFFFFFF
OFPP_IN_PORT_16 = 0xFFF8
"""OFPP_IN_PORT in the 16-bit numbering of Nicira actions: "keep the packet's in_port"."""
# reserved ports, as OpenFlow 1.5 numbers them (32 bits)
RESERVED_PORTS = {"IN_PORT": 0xFFFFFFF8, "NORMAL": 0xFFFFFFFA, "FLOOD": 0xFFFFFFFB,
                  "ALL": 0xFFFFFFFC, "LOCAL": 0xFFFFFFFE}
OFPMT_OXM = 1
"""``ofp_match.type``: the match is a list of OXM TLVs."""

# -- bundles (struct ofp14_bundle_ctrl_msg) --------------------------------------------------


class BundleCtrl(enum.IntEnum):
    OPEN_REQUEST = 0
    OPEN_REPLY = 1
    CLOSE_REQUEST = 2
    CLOSE_REPLY = 3
    COMMIT_REQUEST = 4
    COMMIT_REPLY = 5
    DISCARD_REQUEST = 6
    DISCARD_REPLY = 7


OFPBF_ATOMIC = 1 << 0
OFPBF_ORDERED = 1 << 1

# -- multipart -------------------------------------------------------------------------------

OFPMP_FLOW_DESC = 1
"""OF1.5 name of the flow statistics request: the reply lists ``struct ofp15_flow_desc``."""
OFPMPF_REPLY_MORE = 1 << 0
"""More replies to the same request follow."""

# -- OXM classes and fields (meta-flow.h "NXM:"/"OXM:" lines) --------------------------------

OFPXMC_NXM_0 = 0x0000
"""Nicira's original match fields (``NXM_OF_*``)."""
OFPXMC_NXM_1 = 0x0001
"""Nicira's extended match fields (``NXM_NX_*``)."""
OFPXMC_OPENFLOW_BASIC = 0x8000


class OfbField(enum.IntEnum):
    """``OXM_OF_*`` fields of the OpenFlow basic class."""

    IN_PORT = 0
    ETH_DST = 3
    ETH_SRC = 4
    ETH_TYPE = 5
    VLAN_VID = 6
    IP_PROTO = 10
    IPV4_SRC = 11
    IPV4_DST = 12
    TCP_SRC = 13
    TCP_DST = 14
    UDP_SRC = 15
    UDP_DST = 16
    SCTP_SRC = 17
    SCTP_DST = 18
    ICMPV4_TYPE = 19
    ICMPV4_CODE = 20
    ARP_OP = 21
    ARP_SPA = 22
    ARP_TPA = 23
    ARP_SHA = 24
    ARP_THA = 25
    IPV6_SRC = 26
    IPV6_DST = 27
    ICMPV6_TYPE = 29
    ICMPV6_CODE = 30
    IPV6_ND_TARGET = 31
    TUNNEL_ID = 38


NXM_OF_VLAN_TCI = 4
"""Class NXM_0: the whole 802.1Q TCI (CFI bit 0x1000 = "a tag is present")."""
NXM_NX_REG0 = 0
"""Class NXM_1: ``NXM_NX_REGn`` is field ``n`` (32 bits)."""
NXM_NX_IP_FRAG = 26
NXM_NX_CONJ_ID = 37
NXM_NX_CT_STATE = 105
NXM_NX_CT_MARK = 107


@dataclass(frozen=True, slots=True)
class NxmField:
    """A field as actions name it (``NXM_OF_ETH_SRC[]``): its NXM class, number and size, and
    the OXM basic field OVS writes instead in OpenFlow 1.5 Set-Field and Copy-Field actions
    (``None``: the field has no OXM, the NXM header is used there too). NXAST actions (learn,
    output_reg, ct's zone) always carry the NXM header."""

    nxm_class: int
    number: int
    size: int
    oxm: OfbField | None = None


NXM_FIELDS: dict[str, NxmField] = {
    "NXM_OF_IN_PORT": NxmField(OFPXMC_NXM_0, 0, 2),
    "NXM_OF_ETH_DST": NxmField(OFPXMC_NXM_0, 1, 6, OfbField.ETH_DST),
    "NXM_OF_ETH_SRC": NxmField(OFPXMC_NXM_0, 2, 6, OfbField.ETH_SRC),
    "NXM_OF_VLAN_TCI": NxmField(OFPXMC_NXM_0, NXM_OF_VLAN_TCI, 2),
    "NXM_OF_ARP_SPA": NxmField(OFPXMC_NXM_0, 16, 4, OfbField.ARP_SPA),
    "NXM_OF_ARP_TPA": NxmField(OFPXMC_NXM_0, 17, 4, OfbField.ARP_TPA),
    "NXM_NX_TUN_ID": NxmField(OFPXMC_NXM_1, 16, 8, OfbField.TUNNEL_ID),
    "NXM_NX_ARP_SHA": NxmField(OFPXMC_NXM_1, 17, 6, OfbField.ARP_SHA),
    "NXM_NX_ARP_THA": NxmField(OFPXMC_NXM_1, 18, 6, OfbField.ARP_THA),
    "NXM_NX_CT_MARK": NxmField(OFPXMC_NXM_1, NXM_NX_CT_MARK, 4),
    **{f"NXM_NX_REG{n}": NxmField(OFPXMC_NXM_1, NXM_NX_REG0 + n, 4) for n in range(16)},
}
"""meta-flow.h's "NXM:"/"OXM:" lines of the fields dpagent's actions name."""

OFPVID_PRESENT = 0x1000
"""VLAN_VID bit meaning "a tag is present" (the TCI's CFI bit)."""
VLAN_VID_MASK = 0x0FFF

CT_STATE_BITS = {"new": 1 << 0, "est": 1 << 1, "rel": 1 << 2, "rpl": 1 << 3,
                 "inv": 1 << 4, "trk": 1 << 5, "snat": 1 << 6, "dnat": 1 << 7}
"""``ct_state`` flags (lib/packets.h ``CS_STATES``)."""

IP_FRAG = {"no": (0, 3), "first": (1, 3), "later": (3, 3), "yes": (1, 1),
           "not_later": (0, 2)}
"""``nw_frag`` keyword -> (value, mask) of NXM_NX_IP_FRAG (bit 0: a fragment, bit 1: not the
first fragment), the first matching row of lib/meta-flow.c's table."""

ETH_TYPE_IP = 0x0800
ETH_TYPE_ARP = 0x0806
ETH_TYPE_IPV6 = 0x86DD
ETH_TYPE_VLAN_8021Q = 0x8100

# -- instructions and actions ----------------------------------------------------------------

OFPIT_GOTO_TABLE = 1
OFPIT_APPLY_ACTIONS = 4

OFPAT_OUTPUT = 0
OFPAT_PUSH_VLAN = 17
OFPAT_POP_VLAN = 18
OFPAT_SET_FIELD = 25
OFPAT_COPY_FIELD = 28
"""OF1.5's ``move:`` (ovs-ofctl sends it instead of NXAST_REG_MOVE from OpenFlow 1.5 on)."""
OFPAT_EXPERIMENTER = 0xFFFF
NX_VENDOR_ID = 0x00002320


class NxAction(enum.IntEnum):
    """Nicira action subtypes (``NXAST_*``)."""

    RESUBMIT_TABLE = 14
    OUTPUT_REG = 15
    LEARN = 16
    CONJUNCTION = 34
    CT = 35


NX_LEARN_SRC_IMMEDIATE = 1 << 13
"""flow_mod_spec header: the source is a value that follows (else a field and bit offset)."""
NX_LEARN_DST_MATCH = 0 << 11
NX_LEARN_DST_LOAD = 1 << 11
NX_LEARN_DST_OUTPUT = 2 << 11
OFP_DEFAULT_PRIORITY = 0x8000
"""Priority of a learned flow when ``learn()`` names none (ovs-ofctl's default; table 1)."""

NX_CT_F_COMMIT = 1 << 0
NX_CT_RECIRC_NONE = 0xFF
"""``ct`` without ``table=``: no recirculation."""

# -- errors (ofp-errors.h, OF1.5 numbering) ---------------------------------------------------

OFPET_EXPERIMENTER = 0xFFFF
OFPET_BUNDLE_FAILED = 17
OFPBFC_MSG_FAILED = 13
"""The commit's own error when one bundled message failed (that one gets an error first)."""

ERROR_TYPES = {
    0: "HELLO_FAILED", 1: "BAD_REQUEST", 2: "BAD_ACTION", 3: "BAD_INSTRUCTION", 4: "BAD_MATCH",
    5: "FLOW_MOD_FAILED", 6: "GROUP_MOD_FAILED", 7: "PORT_MOD_FAILED", 8: "TABLE_MOD_FAILED",
    9: "QUEUE_OP_FAILED", 10: "SWITCH_CONFIG_FAILED", 11: "ROLE_REQUEST_FAILED",
    12: "METER_MOD_FAILED", 13: "TABLE_FEATURES_FAILED", 14: "BAD_PROPERTY",
    15: "ASYNC_CONFIG_FAILED", 16: "FLOW_MONITOR_FAILED", 17: "BUNDLE_FAILED",
}

ERROR_CODES: dict[int, dict[int, str]] = {
    1: {0: "OFPBRC_BAD_VERSION", 1: "OFPBRC_BAD_TYPE", 2: "OFPBRC_BAD_STAT",
        3: "OFPBRC_BAD_VENDOR", 4: "OFPBRC_BAD_SUBTYPE", 5: "OFPBRC_EPERM", 6: "OFPBRC_BAD_LEN",
        9: "OFPBRC_BAD_TABLE_ID", 10: "OFPBRC_IS_SECONDARY", 11: "OFPBRC_BAD_PORT",
        18: "OFPBRC_UNKNOWN"},
    2: {0: "OFPBAC_BAD_TYPE", 1: "OFPBAC_BAD_LEN", 2: "OFPBAC_BAD_VENDOR",
        3: "OFPBAC_BAD_VENDOR_TYPE", 4: "OFPBAC_BAD_OUT_PORT", 5: "OFPBAC_BAD_ARGUMENT",
        6: "OFPBAC_EPERM", 7: "OFPBAC_TOO_MANY", 10: "OFPBAC_MATCH_INCONSISTENT",
        11: "OFPBAC_UNSUPPORTED_ORDER", 12: "OFPBAC_BAD_TAG", 13: "OFPBAC_BAD_SET_TYPE",
        14: "OFPBAC_BAD_SET_LEN", 15: "OFPBAC_BAD_SET_ARGUMENT", 16: "OFPBAC_BAD_SET_MASK"},
    3: {0: "OFPBIC_UNKNOWN_INST", 1: "OFPBIC_UNSUP_INST", 2: "OFPBIC_BAD_TABLE_ID",
        7: "OFPBIC_BAD_LEN", 8: "OFPBIC_EPERM", 9: "OFPBIC_DUP_INST"},
    4: {0: "OFPBMC_BAD_TYPE", 1: "OFPBMC_BAD_LEN", 3: "OFPBMC_BAD_DL_ADDR_MASK",
        4: "OFPBMC_BAD_NW_ADDR_MASK", 5: "OFPBMC_BAD_WILDCARDS", 6: "OFPBMC_BAD_FIELD",
        7: "OFPBMC_BAD_VALUE", 8: "OFPBMC_BAD_MASK", 9: "OFPBMC_BAD_PREREQ",
        10: "OFPBMC_DUP_FIELD", 11: "OFPBMC_EPERM"},
    5: {0: "OFPFMFC_UNKNOWN", 1: "OFPFMFC_TABLE_FULL", 2: "OFPFMFC_BAD_TABLE_ID",
        3: "OFPFMFC_OVERLAP", 4: "OFPFMFC_EPERM", 5: "OFPFMFC_BAD_TIMEOUT",
        6: "OFPFMFC_BAD_COMMAND", 7: "OFPFMFC_BAD_FLAGS", 9: "OFPFMFC_BAD_PRIORITY"},
    17: {0: "OFPBFC_UNKNOWN", 1: "OFPBFC_EPERM", 2: "OFPBFC_BAD_ID", 3: "OFPBFC_BUNDLE_EXIST",
         4: "OFPBFC_BUNDLE_CLOSED", 5: "OFPBFC_OUT_OF_BUNDLES", 6: "OFPBFC_BAD_TYPE",
         7: "OFPBFC_BAD_FLAGS", 8: "OFPBFC_MSG_BAD_LEN", 9: "OFPBFC_MSG_BAD_XID",
         10: "OFPBFC_MSG_UNSUP", 11: "OFPBFC_MSG_CONFLICT", 12: "OFPBFC_MSG_TOO_MANY",
         13: "OFPBFC_MSG_FAILED", 14: "OFPBFC_TIMEOUT", 15: "OFPBFC_BUNDLE_IN_PROGRESS"},
}
"""Names of the error codes a flow-mod bundle can meet (others print as numbers)."""

NX_ERROR_CODES = {
    2: "NXBRC_NXM_INVALID", 3: "NXBRC_NXM_BAD_TYPE", 4: "NXBRC_MUST_BE_ZERO",
    11: "NXBAC_MUST_BE_ZERO", 12: "NXFMFC_HARDWARE", 13: "NXFMFC_BAD_TABLE_ID",
    15: "NXBAC_BAD_CONJUNCTION", 42: "NXBAC_CT_DATAPATH_SUPPORT",
    43: "NXBMC_CT_DATAPATH_SUPPORT",
}
"""Nicira errors, sent in OF1.2+ as experimenter errors (type 0xffff, vendor NX_VENDOR_ID)."""

"""The OpenFlow 1.5 codec, byte by byte where the encoding can be justified from the specs.

Layouts and numbers: openflow-1.5.h / openflow-1.4.h (flow-mod, bundles, flow desc,
OFPAT_COPY_FIELD = 28), nicira-ext.h and lib/ofp-actions.c (NXAST_CONJUNCTION = 34, NXAST_CT = 35,
NXAST_OUTPUT_REG = 15, NXAST_LEARN = 16 with its flow_mod_spec layout, NX_VENDOR_ID = 0x2320),
meta-flow.h (NXM_NX_REG5 = class 1 field 5, NXM_NX_CT_MARK = class 1 field 107, NXM_NX_TUN_ID =
class 1 field 16 / OXM_OF_TUNNEL_ID = 38, OXM_OF_ARP_OP = 21). Whether the switch holds exactly
what ovs-ofctl would give it is the functional round-trip test's job. At the end, the
connection's framing against a fake switch on a unix socket (hello, echo, messages split
anywhere, hang-up).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dpagent.bridge.openflow import codec
from dpagent.bridge.openflow import protocol as ofp
from dpagent.bridge.openflow.connection import Connection, ConnectionLost
from dpagent.bridge.openflow.instructions import encode_actions, encode_instructions
from dpagent.bridge.openflow.oxm import encode_match
from dpagent.bridge.transport import FlowMod, InstalledFlow, SwitchError
from flows import compile_sg_info, tunnel
from flows.cookies import LEARNED_COOKIE
from flows.flow import Flow

GOLDEN = Path(__file__).resolve().parents[1] / "flows" / "golden" / "small_host.json"
NX = "ffff{length:04x}00002320"  # OFPAT_EXPERIMENTER, length, NX_VENDOR_ID


def hexof(data: bytes) -> str:
    return data.hex()


def untagged() -> bool:
    return False


# -- actions ---------------------------------------------------------------------------------


def test_conjunction_clause_is_counted_from_zero_on_the_wire():
    # subtype 34, clause 2/2 -> 1, n_clauses 2, id 1736118700 = 0x677b11ac
    assert hexof(encode_actions(["conjunction(1736118700,2/2)"])) == (
        NX.format(length=16) + "0022" + "01" + "02" + "677b11ac")


def test_ct_commit_carries_its_zone_register_and_nested_ct_mark_load():
    actions = ["ct(commit,zone=NXM_NX_REG6[0..15],exec(load:0x1->NXM_NX_CT_MARK[0]))"]
    assert hexof(encode_actions(actions)) == (
        NX.format(length=40) + "0023"
        + "0001"                # flags: NX_CT_F_COMMIT
        + "00010c04"            # zone_src: NXM_NX_REG6 (class 1, field 6, 4 bytes)
        + "000f"                # zone bits 0..15: ofs 0 << 6 | (16 - 1)
        + "ff" + "000000"       # no recirculation, pad
        + "0000"                # no ALG
        # nested Set-Field (type 25, 16 bytes): NXM_NX_CT_MARK masked (107 << 9 | 0x100 | 8)
        + "00190010" + "0001d708" + "00000001" + "00000001")


def test_ct_with_table_recirculates_and_does_not_commit():
    assert hexof(encode_actions(["ct(table=12,zone=NXM_NX_REG6[0..15])"])) == (
        NX.format(length=24) + "0023" + "0000" + "00010c04" + "000f" + "0c000000" + "0000")


def test_output_to_a_register_is_nxast_output_reg_of_the_whole_register():
    assert hexof(encode_actions(["output:NXM_NX_REG5[]"])) == (
        NX.format(length=24) + "000f" + "001f" + "00010a04" + "ffff" + "00" * 6)


def test_register_load_is_an_of15_set_field():
    assert hexof(encode_actions(["load:0x5->NXM_NX_REG6[]"])) == (
        "00190010" + "00010c04" + "00000005" + "00000000")


def test_resubmit_keeps_the_in_port_and_names_the_table():
    assert hexof(encode_actions(["resubmit(,30)"])) == (
        NX.format(length=16) + "000e" + "fff8" + "1e" + "000000")


def test_mod_vlan_vid_pushes_a_tag_only_when_the_frame_may_have_none():
    push = "00110008" + "8100" + "0000"
    set_vid = "00190010" + "80000c02" + "1005" + "00" * 6  # VLAN_VID 5 | OFPVID_PRESENT
    assert hexof(encode_actions(["mod_vlan_vid:5"])) == push + set_vid
    assert hexof(encode_actions(["mod_vlan_vid:5"], tagged=True)) == set_vid
    pop = "00120008" + "00000000"
    assert hexof(encode_actions(["strip_vlan", "mod_vlan_vid:5"], tagged=True)) == (
        pop + push + set_vid)
    assert hexof(encode_actions(["mod_vlan_vid:5", "output:1", "mod_vlan_vid:5"])).count(
        "00110008") == 1


def test_goto_table_is_its_own_instruction_after_apply_actions():
    assert hexof(encode_instructions(["output:7", "goto_table:20"], untagged)) == (
        "00040018" + "00000000"                          # OFPIT_APPLY_ACTIONS, 24 bytes
        + "00000010" + "00000007" + "0000" + "00" * 6    # OFPAT_OUTPUT port 7, max_len 0
        + "00010008" + "14" + "000000")                  # OFPIT_GOTO_TABLE 20


def test_drop_is_no_instruction_at_all():
    assert encode_instructions([], untagged) == b""


@pytest.mark.parametrize("actions", [["goto_table:20", "output:1"], ["ct(nat)"],
                                     ["conjunction(1,3/2)"],
                                     ["load:0x10000->NXM_NX_REG6[0..15]"]])
def test_unknown_or_invalid_actions_are_refused(actions):
    with pytest.raises(ValueError):
        encode_instructions(actions, untagged)


# -- br-tun's actions ------------------------------------------------------------------------


def test_set_field_of_the_tunnel_key_is_the_64_bit_oxm_tunnel_id():
    # OXM_OF_TUNNEL_ID: class 0x8000, field 38 (38 << 1 = 0x4c), 8 bytes; 4 + 12 -> 16
    assert hexof(encode_actions(["set_field:0x64->tun_id"])) == (
        "00190010" + "80004c08" + "0000000000000064")
    assert encode_actions(["set_field:100->tun_id"]) == encode_actions(["set_field:0x64->tun_id"])


@pytest.mark.parametrize("action, tlv", [
    ("set_field:2->arp_op", "80002a02" + "0002"),                      # OXM_OF_ARP_OP (21)
    ("set_field:fa:16:3e:00:00:05->arp_sha", "80003006" + "fa163e000005"),  # ARP_SHA (24)
    ("set_field:10.0.0.5->arp_spa", "80002c04" + "0a000005"),          # ARP_SPA (22)
    ("set_field:fa:16:3e:00:00:05->eth_src", "80000806" + "fa163e000005"),  # ETH_SRC (4)
])
def test_set_field_of_the_arp_responder_fields_is_their_oxm_padded_to_8(action, tlv):
    length = 4 + len(tlv) // 2
    assert hexof(encode_actions([action])) == (
        f"0019{length + -length % 8:04x}" + tlv + "00" * (-length % 8))


def test_move_is_an_of15_copy_field_naming_both_fields_by_their_oxm():
    # n_bits 48, src_offset 0, dst_offset 0, pad; OXM_OF_ARP_SHA, OXM_OF_ARP_THA; 20 -> 24 bytes
    assert hexof(encode_actions(["move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[]"])) == (
        "001c0018" + "0030" + "0000" + "0000" + "0000" + "80003006" + "80003206" + "00000000")
    assert hexof(encode_actions(["move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[]"]))[24:40] == (
        "80002c04" + "80002e04")
    # a bit range; a register has no OXM, so its NXM header is used (class 1, field 1)
    assert hexof(encode_actions(["move:NXM_OF_ETH_SRC[0..15]->NXM_NX_REG1[16..31]"])) == (
        "001c0018" + "0010" + "0000" + "0010" + "0000" + "80000806" + "00010204" + "00000000")


def test_move_between_fields_of_different_widths_is_refused():
    with pytest.raises(ValueError, match="differ in width"):
        encode_actions(["move:NXM_NX_ARP_SHA[]->NXM_OF_ARP_TPA[]"])


LEARN_SPECS = (
    "000c" + "00000802" + "0000" + "00000802" + "0000"  # match VLAN_TCI[0..11] on itself
    + "0030" + "00000406" + "0000" + "00000206" + "0000"  # ETH_DST[] = ETH_SRC[]
    + "2810" + "0000" + "00000802" + "0000"               # load immediate 0 (16 bits) -> TCI
    + "0840" + "00012008" + "0000" + "00012008" + "0000"  # load TUN_ID[] -> TUN_ID[]
    + "1010" + "00000002" + "0000")                       # output to IN_PORT[]
"""The flow_mod_specs of ``flows.tunnel._learn()``: header (bit 13 immediate source, bits 11-12
match/load/output, 10 bits n_bits), source NXM header and offset (or the value in whole 16-bit
words), destination NXM header and offset (none for output). NXAST always names fields by their
NXM header: NXM_OF_VLAN_TCI 0/4, NXM_OF_ETH_SRC 0/2, NXM_OF_ETH_DST 0/1, NXM_OF_IN_PORT 0/0,
NXM_NX_TUN_ID 1/16 (8 bytes)."""


def test_br_tun_learn_is_nxast_learn_with_neutron_s_specs_and_the_learned_cookie():
    (action,) = [a for f in tunnel.base_flows(1, True) for a in f.actions if a.startswith("learn")]
    encoded = hexof(encode_actions([action]))
    assert encoded == (
        NX.format(length=96) + "0010"
        + "0000" + "012c" + "0001"       # idle_timeout 0, hard_timeout 300, priority 1
        + f"{LEARNED_COOKIE:016x}"       # the cookie of every learned flow
        + "0000" + "14" + "00"           # no flags, table 20 (UCAST_TO_TUN), pad
        + "0000" + "0000"                # fin_idle_timeout, fin_hard_timeout
        + LEARN_SPECS + "00" * 4)        # 92 bytes, padded to 96


def test_learn_without_settings_takes_ovs_ofctl_s_defaults():
    # table 1, priority 32768 (OFP_DEFAULT_PRIORITY), no timeouts, cookie 0
    assert hexof(encode_actions(["learn(NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[])"])) == (
        NX.format(length=48) + "0010" + "0000" + "0000" + "8000" + "00" * 8 + "0000" + "01"
        + "00" + "0000" + "0000" + "0030" + "00000406" + "0000" + "00000206" + "0000"
        + "00" * 2)


def test_learn_immediates_are_right_aligned_in_whole_16_bit_words():
    encoded = encode_actions(["learn(NXM_OF_VLAN_TCI[0..11]=0x5,"
                              "load:0x123456789->NXM_NX_TUN_ID[],load:0x7->NXM_NX_REG1[16..18])"])
    specs = hexof(encoded[32:])  # struct nx_action_learn is 32 bytes
    assert specs == (
        "200c" + "0005" + "00000802" + "0000"                        # match 12 bits = 0x5
        + "2840" + "0000000123456789" + "00012008" + "0000"          # 64 bits: four words
        + "2803" + "0007" + "00010204" + "0010"                      # REG1 bits 16..18
        + "00" * 4)                                                  # 60 bytes -> 64


@pytest.mark.parametrize("action, named", [
    ("learn(table=1,send_flow_rem)", "send_flow_rem"),
    ("learn(limit=5,NXM_OF_ETH_DST[])", "limit"),
    ("learn(in_port=99)", "in_port"),
    ("learn(priority=0x10,NXM_OF_ETH_DST[])", "priority=0x10"),    # ovs-ofctl reads it as 0
    ("learn(table=255,NXM_OF_ETH_DST[])", "table=255"),
    ("learn(NXM_OF_ETH_DST[]=NXM_OF_VLAN_TCI[])", "differ in width"),
    ("learn(load:0x10000->NXM_OF_VLAN_TCI[])", "0x10000"),
    ("learn(load:NXM_OF_ETH_SRC[])", "->"),
    ("learn(output:5)", "'5'"),
    ("learn(NXM_OF_FOO[])", "NXM_OF_FOO"),
    ("move:NXM_NX_REG0[]->NXM_NX_REG1[0..40]", "NXM_NX_REG1"),
    ("set_field:1->nw_ttl", "nw_ttl"),
    ("set_field:1/1->arp_op", "no mask"),
    ("set_field:0x1ffffffffffffffff->tun_id", "does not fit"),
    ("set_field:zz->eth_src", "zz"),
])
def test_br_tun_actions_the_encoder_cannot_send_are_refused_by_name(action, named):
    with pytest.raises(ValueError, match=re.escape(named)):
        encode_actions([action])


def test_every_br_tun_flow_encodes():
    network = tunnel.TunnelNetwork("n", "vxlan", 100, 5)
    flows = [*tunnel.base_flows(1, arp_responder=True), *tunnel.tunnel_port_flows("geneve", 2),
             *tunnel.network_flows(network, [2, 3]),
             tunnel.unicast_flow(network, "FA:16:3E:0:0:1", 2),
             tunnel.arp_responder_flow(network, "10.0.0.1", "fa:16:3e:00:00:01")]
    for flow in flows:
        assert len(codec.flow_mod(FlowMod.add(flow), xid=1)) % 8 == 0


# -- matches ---------------------------------------------------------------------------------


def test_register_match_is_an_nxm1_tlv_masked_only_when_partial():
    assert hexof(encode_match([("reg5", "0x1")])) == "0001000c" + "00010a04" + "00000001" + \
        "00" * 4
    assert hexof(encode_match([("reg7", "0x1/0x1")])) == "00010010" + "00010f08" + \
        "00000001" + "00000001"


def test_protocol_goes_first_and_nd_target_last_whatever_the_item_order():
    match = encode_match([("nd_target", "fe80::1"), ("reg5", "0x1"), ("icmpv6_type", "136"),
                          ("icmp6", "")])
    tlvs = _tlv_fields(match)
    assert tlvs == ["OXM_OF_ETH_TYPE", "OXM_OF_IP_PROTO", "NXM_NX_REG5", "OXM_OF_ICMPV6_TYPE",
                    "OXM_OF_IPV6_ND_TARGET"]


def test_port_fields_follow_the_protocol():
    fields = {proto: _tlv_fields(encode_match([(proto, ""), ("tp_dst", "0x400/0xfc00")]))[-1]
              for proto in ("tcp", "udp6", "sctp")}
    assert fields == {"tcp": "OXM_OF_TCP_DST", "udp6": "OXM_OF_UDP_DST",
                      "sctp": "OXM_OF_SCTP_DST"}


def test_ct_state_flags_set_value_and_mask():
    # +est+trk-rpl: est (0x02) and trk (0x20) set, rpl (0x08) must be clear
    assert encode_match([("ct_state", "+est+trk-rpl")])[8:16] == struct.pack("!II", 0x22, 0x2A)


@pytest.mark.parametrize("keyword, value, mask", [("no", 0, 3), ("first", 1, 3),
                                                  ("later", 3, 3), ("yes", 1, 1),
                                                  ("not_later", 0, 2)])
def test_nw_frag_keywords(keyword, value, mask):
    # NXM_NX_IP_FRAG: class 1, field 26, masked, 1 byte + 1 byte mask; ends the 16-byte match
    match = encode_match([("ip", ""), ("nw_frag", keyword)])
    assert match[-6:] == bytes([0x00, 0x01, 26 << 1 | 1, 2, value, mask])


def test_no_vlan_is_a_tci_of_zero_with_the_vid_and_present_bits_masked():
    assert encode_match([("vlan_tci", "0x0000/0x1fff")])[4:12] == bytes.fromhex(
        "00000904" + "0000" + "1fff")
    assert encode_match([("dl_vlan", "5")])[4:12] == bytes.fromhex("00000904" + "1005" + "1fff")


def test_addresses_with_prefixes_and_masks():
    match = encode_match([("ip", ""), ("nw_src", "10.0.0.128/25"),
                          ("dl_dst", "01:00:00:00:00:00/01:00:00:00:00:00")])
    assert bytes.fromhex("80001708" + "0a000080" + "ffffff80") in match
    assert bytes.fromhex("8000070c" + "010000000000" + "010000000000") in match


def test_tun_id_is_the_oxm_tunnel_id_hex_or_decimal_with_an_optional_mask():
    assert encode_match([("tun_id", "0x64")]) == encode_match([("tun_id", "100")])
    assert hexof(encode_match([("tun_id", "0x64")])) == (
        "00010010" + "80004c08" + "0000000000000064")
    assert hexof(encode_match([("tun_id", "0x64/0xff")])) == (
        "00010018" + "80004d10" + "0000000000000064" + "00000000000000ff")


def test_arp_op_follows_arp_and_takes_no_mask():
    # OXM_OF_ARP_OP: field 21 (21 << 1 = 0x2a), 2 bytes, after eth_type 0x0806
    assert hexof(encode_match([("arp", ""), ("arp_op", "1")])) == (
        "00010010" + "80000a02" + "0806" + "80002a02" + "0001")
    with pytest.raises(ValueError, match="no mask"):
        encode_match([("arp", ""), ("arp_op", "1/1")])


def test_a_match_value_wider_than_its_field_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        encode_match([("reg5", "0x100000000")])


@pytest.mark.parametrize("match", [[("tp_dst", "80")], [("ip", ""), ("arp_sha", "0:0:0:0:0:1")],
                                   [("tcp", ""), ("udp", "")], [("ip", ""), ("nw_src", "10.0.0")],
                                   [("metadata", "0x1")], [("icmp6", ""), ("icmp_type", "8")],
                                   [("ip", ""), ("arp_op", "1")]])
def test_matches_the_switch_would_refuse_are_refused_here(match):
    with pytest.raises(ValueError):
        encode_match(match)


# -- flow-mods and bundles -------------------------------------------------------------------


def test_add_is_an_of15_flow_mod_with_cookie_table_priority_and_no_timeouts():
    flow = Flow(20, 50, (("reg6", "0x5"),), ("output:100",), 0xD9A6000000000042)
    message = codec.flow_mod(FlowMod.add(flow), xid=9)
    assert message[:8] == bytes.fromhex("060e") + struct.pack("!H", len(message)) + \
        struct.pack("!I", 9)
    cookie, cookie_mask, table, command, idle, hard, priority, buffer_id, out_port, out_group, \
        flags, importance = struct.unpack_from("!QQBBHHHIIIHH", message, 8)
    assert (cookie, cookie_mask, table, command, idle, hard, priority) == (
        0xD9A6000000000042, 0, 20, ofp.OFPFC_ADD, 0, 0, 50)
    assert (buffer_id, out_port, out_group, flags, importance) == (
        0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0, 0)


def test_delete_matches_exactly_one_cookie_in_every_table():
    assert hexof(codec.flow_mod(FlowMod.delete(0xD9A6000000000001), xid=7)) == (
        "060e0038" + "00000007"
        + "d9a6000000000001" + "ffffffffffffffff"  # cookie, cookie_mask all ones
        + "ff" + "03"                             # OFPTT_ALL, OFPFC_DELETE
        + "0000" + "0000" + "0000"                # timeouts, priority
        + "ffffffff" * 3                          # no buffer, any port, any group
        + "0000" + "0000"                         # flags, importance
        + "00010004" + "00000000")                # empty OXM match, padded


def test_bundle_add_repeats_its_xid_in_the_embedded_message():
    body = codec.flow_mod_body(FlowMod.delete(1))
    message = codec.bundle_add(bundle_id=3, xid=0x1234, inner_type=ofp.MsgType.FLOW_MOD,
                               inner_body=body)
    assert message[:16] == bytes.fromhex("0622" + f"{len(message):04x}" + "00001234"
                                         + "00000003" + "0000" + "0003")  # ATOMIC | ORDERED
    assert message[16:24] == bytes.fromhex("060e" + f"{8 + len(body):04x}" + "00001234")
    assert message[24:] == body


def test_bundle_control_open_commit_discard():
    assert hexof(codec.bundle_control(3, ofp.BundleCtrl.COMMIT_REQUEST, xid=5)) == (
        "06210010" + "00000005" + "00000003" + "0004" + "0003")


def test_unencodable_flow_is_named_in_the_error():
    flow = Flow(0, 1, (("in_port", "1"),), ("enqueue:1:2",), 0x1)
    with pytest.raises(ValueError, match="table=0,priority=1,cookie=0x1,in_port=1"):
        codec.flow_mod(FlowMod.add(flow), xid=1)


def test_every_flow_of_the_golden_host_encodes():
    result = compile_sg_info(json.loads(GOLDEN.read_text()))
    for flow in result.flows():
        message = codec.flow_mod(FlowMod.add(flow), xid=1)
        assert len(message) % 8 == 0


# -- replies ---------------------------------------------------------------------------------


def _flow_desc(table: int, priority: int, cookie: int) -> bytes:
    match = struct.pack("!HH4x", ofp.OFPMT_OXM, 4)
    stats = struct.pack("!HH", 0, 4) + bytes(4)  # an empty ofp_oxs_stat, padded
    instructions = struct.pack("!HHB3x", ofp.OFPIT_GOTO_TABLE, 8, 20)
    length = 24 + len(match) + len(stats) + len(instructions)
    return struct.pack("!H2xBxHHHHHQ", length, table, priority, 0, 0, 0, 0, cookie) + match + \
        stats + instructions


def test_flow_desc_reply_lists_cookie_table_priority_and_says_when_more_follow():
    body = struct.pack("!HH4x", ofp.OFPMP_FLOW_DESC, ofp.OFPMPF_REPLY_MORE) + \
        _flow_desc(10, 100, 0xD9A6000000000001) + _flow_desc(254, 0, 0xD9A6000000000002)
    assert codec.parse_flow_desc_reply(body) == (
        [InstalledFlow(0xD9A6000000000001, 10, 100), InstalledFlow(0xD9A6000000000002, 254, 0)],
        True)
    last = struct.pack("!HH4x", ofp.OFPMP_FLOW_DESC, 0)
    assert codec.parse_flow_desc_reply(last) == ([], False)


def test_flow_desc_request_filters_by_cookie_in_all_tables():
    request = codec.flow_desc_request(0xD9A6000000000000, 0xFFFF000000000000, xid=4)
    assert request[:16] == bytes.fromhex("06120038" + "00000004" + "0001" + "0000" + "00000000")
    assert request[16:48] == bytes.fromhex("ff000000" + "ffffffff" + "ffffffff" + "00000000"
                                           + "d9a6000000000000" + "ffff000000000000")


def test_errors_name_the_failed_xid_and_the_switch_reason():
    failed = codec.bundle_add(1, 77, ofp.MsgType.FLOW_MOD, codec.flow_mod_body(FlowMod.delete(1)))
    error = codec.parse_error(77, struct.pack("!HH", 3, 2) + failed[:64])
    assert error.describe() == "OFPBIC_BAD_TABLE_ID (BAD_INSTRUCTION 3/2)"
    assert codec.error_inner_xid(error) == 77
    nicira = codec.parse_error(5, struct.pack("!HHI", 0xFFFF, 15, ofp.NX_VENDOR_ID) + failed[:8])
    assert nicira.describe().startswith("NXBAC_BAD_CONJUNCTION")
    assert codec.error_inner_xid(nicira) == 77


def test_hello_offers_openflow_15_only_and_reads_the_peer_bitmap():
    assert hexof(codec.hello(1)) == "06000010" + "00000001" + "00010008" + "00000040"
    assert codec.hello_versions(6, struct.pack("!HHI", 1, 8, 0b1111110)) == {1, 2, 3, 4, 5, 6}
    assert codec.hello_versions(4, b"") == {1, 2, 3, 4}


def _tlv_fields(match: bytes) -> list[str]:
    names = {(0x8000, f.value): f"OXM_OF_{f.name}" for f in ofp.OfbField}
    names.update({(0x8000, ofp.OfbField.IPV6_ND_TARGET): "OXM_OF_IPV6_ND_TARGET"})
    names.update({(1, n): f"NXM_NX_REG{n}" for n in range(16)})
    _, length = struct.unpack_from("!HH", match)
    fields, offset = [], 4
    while offset < length:
        header = struct.unpack_from("!I", match, offset)[0]
        fields.append(names.get((header >> 16, header >> 9 & 0x7F), hex(header)))
        offset += 4 + (header & 0xFF)
    return fields


# -- the connection, against a fake switch on a unix socket ----------------------------------


def _read_message(sock: socket.socket) -> tuple[int, int, bytes]:
    data = b""
    while len(data) < 8 or len(data) < struct.unpack_from("!H", data, 2)[0]:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError
        data += chunk
    _, msg_type, _, xid = codec.split_header(data)
    return msg_type, xid, data[8:]


@contextlib.contextmanager
def fake_switch(tmp_path: Path, script) -> Iterator[str]:
    """A listener at ``<tmp>/br.mgmt`` whose first connection is handed to ``script``."""
    path = str(tmp_path / "br.mgmt")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    failures: list[BaseException] = []

    def serve() -> None:
        peer, _ = server.accept()
        try:
            script(peer)
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)
        finally:
            peer.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        thread.join(5)
        server.close()
    assert not failures, failures


def test_connection_answers_echoes_and_reassembles_messages_split_anywhere(tmp_path):
    echo = codec.message(ofp.MsgType.ECHO_REQUEST, 41, b"ping")
    barrier = codec.message(ofp.MsgType.BARRIER_REPLY, 42)
    seen = {}

    def switch(peer: socket.socket) -> None:
        assert _read_message(peer)[0] == ofp.MsgType.HELLO
        peer.sendall(codec.hello(1))
        stream = echo + barrier
        for piece in (stream[:5], stream[5:13], stream[13:]):
            peer.sendall(piece)
            time.sleep(0.01)
        seen["echo"] = _read_message(peer)

    with fake_switch(tmp_path, switch) as path:
        conn = Connection(path, timeout=2)
        conn.open()
        assert conn.receive() == codec.Message(ofp.MsgType.BARRIER_REPLY, 42, b"")
        with pytest.raises(ConnectionLost):  # the switch hangs up after reading our reply
            conn.receive()
    assert seen["echo"] == (ofp.MsgType.ECHO_REPLY, 41, b"ping")
    assert not conn.is_open


def test_connection_refuses_a_switch_without_openflow_15(tmp_path):
    def switch(peer: socket.socket) -> None:
        _read_message(peer)
        peer.sendall(bytes.fromhex("04000010" "00000001" "00010008" "00000010"))  # 1.0, 1.3

    with fake_switch(tmp_path, switch) as path:
        with pytest.raises(SwitchError, match="OpenFlow 1.5"):
            Connection(path, timeout=2).open()


def test_connecting_to_a_missing_socket_gives_up_after_the_timeout(tmp_path):
    start = time.monotonic()
    with pytest.raises(ConnectionLost):
        Connection(str(tmp_path / "nothing.mgmt"), timeout=0.2).open()
    assert time.monotonic() - start < 2

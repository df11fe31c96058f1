"""The bytes NetlinkLinkOps sends, pinned against the kernel's structs, and reply parsing.

pyroute2's IPBatch compiles requests without sending them, through the same ``link('set')`` path
the production code uses, so these are exactly the messages the kernel gets.
"""

from __future__ import annotations

import struct

import pytest
from pyroute2 import IPBatch
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from sriov.driver import LinkState
from sriov.netlink import NetlinkLinkOps, parse_vf_states

RTM_NEWLINK = 16
NLM_F_REQUEST_ACK = 0x1 | 0x4
IFLA_VFINFO_LIST = 22
IFLA_VF_INFO = 1
IFLA_VF_MAC, IFLA_VF_VLAN, IFLA_VF_SPOOFCHK, IFLA_VF_LINK_STATE = 1, 2, 4, 5
IFLA_VF_TRUST, IFLA_VF_VLAN_LIST = 9, 12


def sent(call):
    batch = IPBatch()
    ops = NetlinkLinkOps(batch, index_of=lambda pf: {"ens1f0": 7}[pf])
    call(ops)
    return bytes(batch.batch)


def split(message):
    """(nlmsghdr fields, ifinfomsg fields, the one IFLA_VF_* attribute: type, payload)."""
    length, msg_type, flags, _seq, _pid = struct.unpack_from("<IHHII", message, 0)
    family, _, dev_type, index, if_flags, change = struct.unpack_from("<BBHiII", message, 16)
    list_len, list_type = struct.unpack_from("<HH", message, 32)
    info_len, info_type = struct.unpack_from("<HH", message, 36)
    attr_len, attr_type = struct.unpack_from("<HH", message, 40)
    assert (list_type, info_type) == (IFLA_VFINFO_LIST, IFLA_VF_INFO)
    assert list_len == info_len + 4 == attr_len + 8 and length == 32 + list_len == len(message)
    return ((msg_type, flags), (family, dev_type, index, if_flags, change),
            (attr_type, message[44:40 + attr_len]))


def test_port_vlan_is_struct_ifla_vf_vlan_of_12_bytes_never_the_list_form():
    message = sent(lambda ops: ops.set_vf_vlan("ens1f0", 3, 100))
    header, ifinfo, (attr_type, payload) = split(message)
    assert header == (RTM_NEWLINK, NLM_F_REQUEST_ACK)
    assert ifinfo == (0, 0, 7, 0, 0)
    assert attr_type == IFLA_VF_VLAN  # not IFLA_VF_VLAN_LIST (pyroute2 packs it wrong)
    assert payload == struct.pack("<III", 3, 100, 0)  # struct ifla_vf_vlan {vf, vlan, qos}


def test_port_vlan_with_priority_and_clearing():
    _, _, (_, payload) = split(sent(lambda ops: ops.set_vf_vlan("ens1f0", 0, 4094, qos=5)))
    assert payload == struct.pack("<III", 0, 4094, 5)
    _, _, (_, payload) = split(sent(lambda ops: ops.set_vf_vlan("ens1f0", 2, 0)))
    assert payload == struct.pack("<III", 2, 0, 0)


def test_mac_is_struct_ifla_vf_mac_with_a_32_byte_address_field():
    _, _, (attr_type, payload) = split(
        sent(lambda ops: ops.set_vf_mac("ens1f0", 5, "fa:16:3e:12:34:56")))
    assert attr_type == IFLA_VF_MAC
    assert payload == struct.pack("<I", 5) + bytes.fromhex("fa163e123456") + bytes(26)


@pytest.mark.parametrize("call, attr_type, value", [
    (lambda ops: ops.set_vf_spoof_check("ens1f0", 1, True), IFLA_VF_SPOOFCHK, 1),
    (lambda ops: ops.set_vf_spoof_check("ens1f0", 1, False), IFLA_VF_SPOOFCHK, 0),
    (lambda ops: ops.set_vf_link_state("ens1f0", 1, LinkState.DISABLE), IFLA_VF_LINK_STATE, 2),
    (lambda ops: ops.set_vf_link_state("ens1f0", 1, LinkState.AUTO), IFLA_VF_LINK_STATE, 0),
    (lambda ops: ops.set_vf_trust("ens1f0", 1, True), IFLA_VF_TRUST, 1),
])
def test_two_u32_settings(call, attr_type, value):
    _, _, (sent_type, payload) = split(sent(call))
    assert sent_type == attr_type
    assert payload == struct.pack("<II", 1, value)


def test_why_the_list_form_is_avoided_pyroute2_0_9_7_packs_14_of_16_bytes():
    """If this fails, pyroute2 fixed IFLA_VF_VLAN_INFO and 802.1ad could use the list form."""
    batch = IPBatch()
    batch.link("set", index=7, vf={"vf": 0, "vlan": [{"vlan": 5, "qos": 0, "proto": 0x8100}]})
    message = bytes(batch.batch)
    vlan_list_len, vlan_list_type = struct.unpack_from("<HH", message, 40)
    info_len, _ = struct.unpack_from("<HH", message, 44)
    assert vlan_list_type == IFLA_VF_VLAN_LIST
    assert info_len - 4 == 14  # the kernel's struct ifla_vf_vlan_info is 16 bytes


def reply(*vfs):
    message = ifinfmsg()
    message["index"] = 7
    message["attrs"] = [("IFLA_IFNAME", "ens1f0"), ("IFLA_VFINFO_LIST", {"attrs": [
        ("IFLA_VF_INFO", {"attrs": attrs}) for attrs in vfs]})]
    message["header"]["type"] = RTM_NEWLINK
    message.encode()
    decoded = ifinfmsg(message.data)
    decoded.decode()
    return decoded


def test_vf_settings_are_read_back_from_the_link_reply():
    decoded = reply(
        [("IFLA_VF_MAC", {"vf": 0, "mac": "fa:16:3e:00:00:01"}),
         ("IFLA_VF_VLAN", {"vf": 0, "vlan": 100, "qos": 3}),
         ("IFLA_VF_SPOOFCHK", {"vf": 0, "spoofchk": 1}),
         ("IFLA_VF_TRUST", {"vf": 0, "trust": 0}),
         ("IFLA_VF_LINK_STATE", {"vf": 0, "link_state": 2})],
        [("IFLA_VF_MAC", {"vf": 1, "mac": "00:00:00:00:00:00"}),
         ("IFLA_VF_VLAN", {"vf": 1, "vlan": 0, "qos": 0}),
         ("IFLA_VF_SPOOFCHK", {"vf": 1, "spoofchk": 0xFFFFFFFF}),  # the kernel's "unknown"
         ("IFLA_VF_TRUST", {"vf": 1, "trust": 0xFFFFFFFF})])
    states = parse_vf_states(decoded)
    assert states[0].mac == "fa:16:3e:00:00:01"
    assert (states[0].vlan, states[0].qos, states[0].spoof_check, states[0].trust,
            states[0].link_state) == (100, 3, True, False, LinkState.DISABLE)
    assert (states[1].vlan, states[1].spoof_check, states[1].trust, states[1].link_state) == (
        0, None, None, None)


def test_a_link_without_vfs_has_no_vf_states():
    message = ifinfmsg()
    message["attrs"] = [("IFLA_IFNAME", "eth0")]
    message.encode()
    decoded = ifinfmsg(message.data)
    decoded.decode()
    assert parse_vf_states(decoded) == {}

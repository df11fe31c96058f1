"""Trace text (OVS 3.1's layout, cookies made up) read back as the operator's verdict."""

from __future__ import annotations

import ipaddress

import pytest

from dpagent.diagnose.explain import HostView, explain, flow_matches, parse_flow
from dpagent.diagnose.ofproto_trace import DatapathPort, parse_passes
from dpagent.diagnose.packet import Packet, PacketError, parse_service
from flows.cookies import COOKIE_VALUE, Kind
from flows.flow import Flow


def cookie(kind: Kind, n: int) -> int:
    return COOKIE_VALUE | (kind << 40) | n


CLASSIFY, SPOOF, RULE_WEB, CONJ, RULE_DB_5432, RULE_DB_80, BASE = (
    cookie(Kind.PORT, 1), cookie(Kind.PORT, 2), cookie(Kind.RULE, 3),
    cookie(Kind.REMOTE_GROUP, 4), cookie(Kind.RULE, 5), cookie(Kind.RULE, 6),
    cookie(Kind.BASE, 7))
VIEW = HostView(
    meanings={CLASSIFY: "port web", SPOOF: "port web",
              RULE_WEB: ("port web", "egress: security group W rule r-egress"),
              CONJ: "remote group W ingress IPv4 (conjunction 77)",
              RULE_DB_5432: ("port db", "ingress: security group D rule r-5432; "
                                        "security group D rule r-5432-dup"),
              RULE_DB_80: ("port db", "ingress: security group D rule r-80"),
              BASE: "base pipeline"},
    port_flows={"db": (
        Flow(32, 60, (("tcp", ""), ("reg5", "0x3"), ("tp_dst", "5432")),
             ("conjunction(77,1/2)",), RULE_DB_5432),
        Flow(32, 60, (("tcp", ""), ("reg5", "0x3"), ("tp_dst", "0x50/0xfff0")),
             ("conjunction(77,1/2)",), RULE_DB_80))},
    ports_by_ofport={2: "web", 3: "db"}, ports_by_name={"tapweb": "web", "tapdb": "db"})
DP_PORTS = {3: DatapathPort("br-int", "tapweb", 2), 4: DatapathPort("br-int", "tapdb", 3),
            7: DatapathPort("br-phys", "eth1", 2)}

HEAD = f"""\
Flow: tcp,in_port=2,vlan_tci=0x0000,dl_src=fa:16:3e:00:00:01,nw_src=10.0.0.2,nw_dst=10.0.0.3,\
nw_frag=no,tp_src=40000,tp_dst=5432

bridge("br-int")
----------------
 0. in_port=2,vlan_tci=0x0000/0x1fff, priority 100, cookie {CLASSIFY:#x}
    set_field:0x2->reg5
    goto_table:10
10. ip,reg5=0x2,dl_src=fa:16:3e:00:00:01,nw_src=10.0.0.2, priority 100, cookie {SPOOF:#x}
    goto_table:11
13. ip,reg5=0x2, priority 70, cookie {RULE_WEB:#x}
    goto_table:14
20. reg6=0x1,dl_dst=fa:16:3e:00:00:02, priority 50, cookie {BASE:#x}
    set_field:0x3->reg5
    goto_table:30
30. ip,reg7=0x1/0x1, priority 50, cookie {BASE:#x}
    ct(table=31,zone=NXM_NX_REG6[0..15])
    drop
     -> A clone of the packet is forked to recirculate.

Final flow: unchanged
Megaflow: recirc_id=0,eth,tcp
Datapath actions: ct(zone=1),recirc(0x8)

===============================================================================
recirc(0x8) - resume conntrack with ct_state=new|trk
===============================================================================

Flow: recirc_id=0x8,ct_state=new|trk,eth,tcp,reg5=0x3,in_port=2,nw_src=10.0.0.2,\
nw_dst=10.0.0.3,nw_frag=no,tp_src=40000,tp_dst={{port}}

bridge("br-int")
----------------
    thaw
        Resuming from table 31
31. priority 0, cookie {BASE:#x}
    goto_table:32
"""


def test_a_remote_group_rule_is_named_through_its_conjunction():
    raw = HEAD.replace("{port}", "5432") + f"""\
32. conj_id=77, priority 60, cookie {CONJ:#x}
    goto_table:33
33. ct_state=+new+trk,ip,reg7=0x1/0x1, priority 100, cookie {BASE:#x}
    ct(commit,zone=NXM_NX_REG6[0..15])
    output:NXM_NX_REG5[]
     -> output port is 3

Final flow: unchanged
Megaflow: recirc_id=0x8
Datapath actions: ct(commit,zone=1),4
"""
    answer = explain(parse_passes(raw), VIEW, DP_PORTS, "(tapdb)")
    assert answer.allowed and answer.reason == "delivered to port db (tapdb)"
    # the egress rule, then both origins of the db flow that feeds conjunction 77 and
    # matches tcp/5432 -- not the tcp/80 one
    assert answer.rules == (
        "security group W rule r-egress",
        "security group D rule r-5432 (through remote group W ingress IPv4)",
        "security group D rule r-5432-dup (through remote group W ingress IPv4)")
    stages = [(s.table, s.stage, s.port) for s in answer.steps]
    assert stages[:3] == [(0, "classification", None), (10, "anti-spoofing", "web"),
                          (13, "egress rules", "web")]
    assert (32, "ingress rules", "db") in stages


@pytest.mark.parametrize(("last", "stage", "words"), [
    (f"32. priority 0, cookie {BASE:#x}\n    drop\n", "ingress rules of port db",
     "no ingress rule of the port allows it"),
    (f"32. ct_state=+est+trk,ip,reg7=0x1/0x1, priority 10, cookie {BASE:#x}\n"
     "    ct(commit,zone=NXM_NX_REG6[0..15],exec(set_field:0x1/0x1->ct_mark))\n",
     "blocked connection of port db", "no ingress rule allows any more"),
])
def test_the_last_flow_of_a_dropped_packet_says_where_and_why(last, stage, words):
    raw = HEAD.replace("{port}", "5432") + last + "\nDatapath actions: drop\n"
    answer = explain(parse_passes(raw), VIEW, DP_PORTS, "(tapdb)")
    assert not answer.allowed
    assert answer.stage == stage and words in answer.reason
    assert answer.rules == ("security group W rule r-egress",)  # what it passed on the way


def test_spoofed_and_invalid_packets_stop_in_the_senders_stages():
    spoofed = f"""\
Flow: tcp,in_port=2

bridge("br-int")
----------------
 0. in_port=2,vlan_tci=0x0000/0x1fff, priority 100, cookie {CLASSIFY:#x}
    set_field:0x2->reg5
    goto_table:10
10. priority 0, cookie {BASE:#x}
    drop

Final flow: unchanged
Datapath actions: drop
"""
    answer = explain(parse_passes(spoofed), VIEW, DP_PORTS, "(tapdb)")
    assert (answer.allowed, answer.stage) == (False, "anti-spoofing of port web")
    invalid = spoofed.replace("10. priority 0", "12. ct_state=+inv+trk, priority 100")
    answer = explain(parse_passes(invalid), VIEW, DP_PORTS, "(tapdb)")
    assert (answer.stage, answer.reason) == ("egress conntrack of port web",
                                             "conntrack says the packet is invalid")
    tagged = spoofed.replace(f" 0. in_port=2,vlan_tci=0x0000/0x1fff, priority 100, cookie "
                             f"{CLASSIFY:#x}\n    set_field:0x2->reg5\n    goto_table:10\n"
                             "10. priority 0", " 0. priority 0")
    assert explain(parse_passes(tagged), VIEW, DP_PORTS).stage == "classification"


def test_outputs_on_other_bridges_are_named_with_their_vlan_and_tunnels_by_address():
    raw = """\
Flow: tcp,in_port=2

bridge("br-int")
----------------
 0. priority 0
    NORMAL

Final flow: unchanged
Datapath actions: push_vlan(vid=100,pcp=0),7,pop_vlan,tnl_push(tnl_port(4789),header(size=50,\
type=4,eth(dst=aa:bb:cc:dd:ee:ff),ipv4(src=192.0.2.1,dst=192.0.2.9,proto=17)),out_port(1)),3
"""
    answer = explain(parse_passes(raw), VIEW, DP_PORTS)
    assert answer.allowed
    assert answer.outputs == ("br-phys port eth1 (VLAN 100)", "a tunnel to 192.0.2.9",
                              "port web (tapweb)")


def test_flow_matches_reads_masks_prefixes_and_shorthands():
    fields = parse_flow("recirc_id=0x8,ct_state=new|trk,eth,tcp,reg5=0x3,nw_src=10.0.0.2,"
                        "nw_frag=no,tp_dst=5432")
    assert flow_matches((("tcp", ""), ("tp_dst", "0x1500/0xff00")), fields)
    assert flow_matches((("ip", ""), ("nw_src", "10.0.0.0/24"), ("reg5", "0x3")), fields)
    assert not flow_matches((("udp", ""),), fields)
    assert not flow_matches((("tcp6", ""),), fields)
    assert not flow_matches((("tcp", ""), ("tp_dst", "80")), fields)
    assert not flow_matches((("nw_src", "10.0.1.0/24"),), fields)
    assert not flow_matches((("nw_frag", "later"),), fields)


def test_packets_as_the_trace_wants_them():
    src, dst = ipaddress.ip_address("10.0.0.2"), ipaddress.ip_address("10.0.0.3")
    packet = Packet(2, "fa:16:3e:00:00:01", "fa:16:3e:00:00:02", src, dst,
                    parse_service("tcp/5432"), "reply", vlan=7)
    assert packet.flow() == ("in_port=2,dl_vlan=7,tcp,dl_src=fa:16:3e:00:00:01,"
                             "dl_dst=fa:16:3e:00:00:02,nw_src=10.0.0.2,nw_dst=10.0.0.3,"
                             "nw_ttl=64,tp_src=5432,tp_dst=40000")
    assert packet.ct_next() == ["--ct-next", "trk,est,rpl", "--ct-next", "trk,est,rpl"]
    v6 = Packet(2, "m1", "m2", ipaddress.ip_address("fd00::2"),
                ipaddress.ip_address("fd00::3"), parse_service("icmp"))
    assert "icmp6" in v6.flow() and "icmp_type=128" in v6.flow() and \
        "ipv6_src=fd00::2" in v6.flow()
    with pytest.raises(PacketError, match="different IP versions"):
        Packet(2, "m1", "m2", src, ipaddress.ip_address("fd00::3"),
               parse_service("icmp")).flow()
    for bad in ("tcp", "tcp/0", "udp/70000", "icmp/300", "gre", "tcp/x"):
        with pytest.raises(PacketError, match=repr(bad)[1:-1].split("/")[0]):
            parse_service(bad)

"""The reference evaluator against hand-written verdicts taken from docs/security-groups.md.

The differential test trusts the evaluator as the oracle; these cases keep its own bugs from
masking the compiler's. Each case names the sentence of the contract it checks.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.reference.evaluator import Evaluator
from tests.reference.model import link_local
from tests.reference.packets import OFF_HOST_MAC, REMOTE_MAC, Packet

MAC = "fa:16:3e:00:00:01"
PAIR_MAC = "fa:16:3e:00:00:bb"
LLA = link_local(MAC)


def r(direction: str = "ingress", ethertype: str = "IPv4", stateful: bool = True,
      **fields: Any) -> dict[str, Any]:
    return {"direction": direction, "ethertype": ethertype, "stateful": stateful, **fields}


def host(rules: list[dict[str, Any]], members: dict[str, Any] | None = None,
         **port: Any) -> dict[str, Any]:
    device = {"mac_address": MAC, "fixed_ips": ["10.0.0.1", "fd00::1"], "network_id": "n",
              "security_groups": ["sg"], "port_security_enabled": True, "ofport": 1,
              "local_vlan": 5,
              "allowed_address_pairs": [{"ip_address": "10.1.0.0/24", "mac_address": PAIR_MAC},
                                        {"ip_address": "fd00:2::/64"}],
              **port}
    return {"devices": {"p": device}, "security_groups": {"sg": rules},
            "sg_member_ips": members or {},
            "networks": {"n": {"local_vlan": 5, "uplink": {"ofport": 100, "vlan": None}}}}


def out(ethertype: str = "IPv4", src: str = "10.0.0.1", dst: str = "192.0.2.1",
        mac: str = MAC, **fields: Any) -> Packet:
    """Egress: from the VM."""
    return Packet("egress", "p", mac, OFF_HOST_MAC, ethertype, src, dst, **fields)


def into(ethertype: str = "IPv4", src: str = "192.0.2.1", dst: str = "10.0.0.1",
         **fields: Any) -> Packet:
    """Ingress: to the VM."""
    return Packet("ingress", "p", REMOTE_MAC, MAC, ethertype, src, dst, **fields)


def tcp(port: int, sport: int = 40000) -> dict[str, Any]:
    return {"ip_proto": 6, "l4_src": sport, "l4_dst": port}


def udp(sport: int, port: int) -> dict[str, Any]:
    return {"ip_proto": 17, "l4_src": sport, "l4_dst": port}


def icmp6(icmp_type: int, target: str | None = None) -> dict[str, Any]:
    return {"ip_proto": 58, "icmp_type": icmp_type, "icmp_code": 0, "nd_target": target}


def verdict(info: dict[str, Any], packet: Packet) -> bool:
    return Evaluator(info).evaluate(packet).allowed


ALLOW_ALL_EGRESS = [r("egress"), r("egress", "IPv6")]

# (rules, packet, allowed)
CASES = {
    # Anti-spoofing, IPv4: (eth_src, ip_src) in the set; a pair CIDR covers every address
    "fixed ip from port mac": (ALLOW_ALL_EGRESS, out(**tcp(80)), True),
    "fixed ip from pair mac": (ALLOW_ALL_EGRESS, out(mac=PAIR_MAC, **tcp(80)), False),
    "pair cidr from pair mac": (ALLOW_ALL_EGRESS, out(src="10.1.0.77", mac=PAIR_MAC,
                                                      **tcp(80)), True),
    "pair cidr last address": (ALLOW_ALL_EGRESS, out(src="10.1.0.255", mac=PAIR_MAC,
                                                     **tcp(80)), True),
    "just outside pair cidr": (ALLOW_ALL_EGRESS, out(src="10.1.1.0", mac=PAIR_MAC,
                                                     **tcp(80)), False),
    "pair cidr from port mac": (ALLOW_ALL_EGRESS, out(src="10.1.0.77", **tcp(80)), False),
    "foreign ip": (ALLOW_ALL_EGRESS, out(src="10.0.0.2", **tcp(80)), False),
    "dhcp discover from 0.0.0.0": ([], out(src="0.0.0.0", dst="255.255.255.255",
                                           **udp(68, 67)), True),
    "dhcp discover from 0.0.0.0, pair mac": ([], out(src="0.0.0.0", mac=PAIR_MAC,
                                                     **udp(68, 67)), True),
    "0.0.0.0 not dhcp": (ALLOW_ALL_EGRESS, out(src="0.0.0.0", **udp(68, 68)), False),
    "dhcp discover, foreign mac": ([], out(src="0.0.0.0", mac="fa:16:3e:99:99:99",
                                           **udp(68, 67)), False),
    # IPv6: link-local of every allowed MAC; a pair without MAC uses the port MAC
    "ipv6 fixed": (ALLOW_ALL_EGRESS, out("IPv6", "fd00::1", "2001:db8::1", **tcp(1)), True),
    "ipv6 link-local": (ALLOW_ALL_EGRESS, out("IPv6", LLA, "2001:db8::1", **tcp(1)), True),
    "ipv6 pair link-local": (ALLOW_ALL_EGRESS, out("IPv6", link_local(PAIR_MAC), "2001:db8::1",
                                                   mac=PAIR_MAC, **tcp(1)), True),
    "ipv6 pair without mac": (ALLOW_ALL_EGRESS, out("IPv6", "fd00:2::99", "2001:db8::1",
                                                    **tcp(1)), True),
    "ipv6 other's link-local": (ALLOW_ALL_EGRESS, out("IPv6", link_local(PAIR_MAC),
                                                      "2001:db8::1", **tcp(1)), False),
    "DAD NS from ::": ([], out("IPv6", "::", "ff02::1:ff00:1", **icmp6(135, "fd00::1")), True),
    "DAD MLDv2 from ::": ([], out("IPv6", "::", "ff02::16", **icmp6(143)), True),
    ":: echo": (ALLOW_ALL_EGRESS, out("IPv6", "::", "2001:db8::1", **icmp6(128)), False),
    # ARP: sha = eth_src = an allowed MAC, spa in that MAC's IPv4 set
    "arp ok": ([], Packet("egress", "p", MAC, OFF_HOST_MAC, "ARP", arp_sha=MAC,
                          arp_spa="10.0.0.1", arp_tpa="10.0.0.9"), True),
    "arp pair": ([], Packet("egress", "p", PAIR_MAC, OFF_HOST_MAC, "ARP", arp_sha=PAIR_MAC,
                            arp_spa="10.1.0.3", arp_tpa="10.0.0.9"), True),
    "arp pair ip from port mac": ([], Packet("egress", "p", MAC, OFF_HOST_MAC, "ARP",
                                             arp_sha=MAC, arp_spa="10.1.0.3"), False),
    "arp sha differs": ([], Packet("egress", "p", MAC, OFF_HOST_MAC, "ARP", arp_sha=PAIR_MAC,
                                   arp_spa="10.0.0.1"), False),
    # Egress base
    "RA from vm": (ALLOW_ALL_EGRESS, out("IPv6", LLA, "ff02::1", **icmp6(134)), False),
    "redirect from vm": (ALLOW_ALL_EGRESS, out("IPv6", LLA, "fe80::9", **icmp6(137)), False),
    "dhcp server from vm": (ALLOW_ALL_EGRESS, out(**udp(67, 68)), False),
    "dhcpv6 server from vm": (ALLOW_ALL_EGRESS, out("IPv6", LLA, "fe80::9", **udp(547, 546)),
                              False),
    "NA own target": ([], out("IPv6", LLA, "fe80::9", **icmp6(136, "fd00::1")), True),
    "NA pair target": ([], out("IPv6", LLA, "fe80::9", **icmp6(136, "fd00:2::5")), True),
    "NA link-local target": ([], out("IPv6", LLA, "fe80::9", **icmp6(136, LLA)), True),
    "NA foreign target": (ALLOW_ALL_EGRESS, out("IPv6", LLA, "fe80::9",
                                                **icmp6(136, "fd00::2")), False),
    "RS without rules": ([], out("IPv6", LLA, "ff02::2", **icmp6(133)), True),
    "MLD report without rules": ([], out("IPv6", LLA, "ff02::16", **icmp6(131)), True),
    "dhcpv6 client without rules": ([], out("IPv6", LLA, "ff02::1:2", **udp(546, 547)), True),
    "echo without rules": ([], out("IPv6", LLA, "2001:db8::1", **icmp6(128)), False),
    "MLD query from vm needs a rule": ([], out("IPv6", LLA, "ff02::1", **icmp6(130)), False),
    # Ingress base
    "ingress arp": ([], Packet("ingress", "p", REMOTE_MAC, MAC, "ARP", arp_sha=REMOTE_MAC,
                               arp_spa="10.0.0.9", arp_tpa="10.0.0.1"), True),
    "ingress RA": ([], into("IPv6", "fe80::9", "ff02::1", **icmp6(134)), True),
    "ingress MLD query": ([], into("IPv6", "fe80::9", "ff02::1", **icmp6(130)), True),
    "ingress dhcp reply": ([], into(**udp(67, 68)), True),
    "ingress dhcpv6 reply": ([], into("IPv6", "fe80::9", "fe80::1", **udp(547, 546)), True),
    "ingress dhcp request needs a rule": ([], into(**udp(68, 67)), False),
    "ingress redirect needs a rule": ([], into("IPv6", "fe80::9", LLA, **icmp6(137)), False),
    # Rules: protocol, ports, icmp, remote side
    "tcp port": ([r(protocol="tcp", port_range_min=80, port_range_max=80)], into(**tcp(80)),
                 True),
    "tcp other port": ([r(protocol="tcp", port_range_min=80, port_range_max=80)],
                       into(**tcp(81)), False),
    "max absent = min": ([r(protocol="tcp", port_range_min=80)], into(**tcp(81)), False),
    "1-65535 covers port 0": ([r(protocol="udp", port_range_min=1, port_range_max=65535)],
                              into(**udp(5, 0)), True),
    "range edges": ([r(protocol="6", port_range_min=100, port_range_max=200)],
                    into(**tcp(200)), True),
    "range edge + 1": ([r(protocol=6, port_range_min=100, port_range_max=200)],
                       into(**tcp(201)), False),
    "source ports": ([r(protocol="udp", source_port_range_min=123, source_port_range_max=123)],
                     into(**udp(123, 9)), True),
    "source ports miss": ([r(protocol="udp", source_port_range_min=123)], into(**udp(124, 9)),
                          False),
    "udp rule, tcp packet": ([r(protocol="udp")], into(**tcp(80)), False),
    "sctp": ([r(protocol="sctp", port_range_min=9)], into(ip_proto=132, l4_dst=9), True),
    "dccp with ports matches nothing": ([r(protocol="dccp", port_range_min=9)],
                                        into(ip_proto=33, l4_dst=9), False),
    "dccp without ports": ([r(protocol="dccp")], into(ip_proto=33), True),
    "dccp full range is any port": ([r(protocol="dccp", port_range_min=1,
                                       port_range_max=65535)], into(ip_proto=33), True),
    "protocol number string": ([r(protocol="47")], into(ip_proto=47), True),
    "protocol name": ([r(protocol="vrrp")], into(ip_proto=112), True),
    "icmp any": ([r(protocol="icmp")], into(ip_proto=1, icmp_type=8, icmp_code=0), True),
    "icmp type": ([r(protocol="icmp", port_range_min=8)],
                  into(ip_proto=1, icmp_type=8, icmp_code=5), True),
    "icmp wrong type": ([r(protocol="icmp", port_range_min=8)],
                        into(ip_proto=1, icmp_type=0, icmp_code=0), False),
    "icmp type code": ([r(protocol="icmp", port_range_min=3, port_range_max=1)],
                       into(ip_proto=1, icmp_type=3, icmp_code=1), True),
    "icmp wrong code": ([r(protocol="icmp", port_range_min=3, port_range_max=1)],
                        into(ip_proto=1, icmp_type=3, icmp_code=2), False),
    "icmp in ipv6 rule is icmpv6": ([r(ethertype="IPv6", protocol="icmp", port_range_min=128)],
                                    into("IPv6", "2001:db8::1", "fd00::1", **icmp6(128)), True),
    "ipv4 rule, ipv6 packet": ([r(protocol="tcp")], into("IPv6", "2001:db8::1", "fd00::1",
                                                         **tcp(1)), False),
    "source prefix": ([r(source_ip_prefix="192.0.2.0/24")], into(**tcp(1)), True),
    "source prefix miss": ([r(source_ip_prefix="192.0.3.0/24")], into(**tcp(1)), False),
    "/0": ([r(source_ip_prefix="0.0.0.0/0")], into(**tcp(1)), True),
    "dest prefix on egress": ([r("egress", dest_ip_prefix="192.0.2.1/32")], out(**tcp(1)), True),
    "dest prefix miss": ([r("egress", dest_ip_prefix="192.0.2.2/32")], out(**tcp(1)), False),
    "direction matters": ([r("egress")], into(**tcp(1)), False),
    # Stateful / stateless
    "stateful reply without rule": ([], into(ct="est_rpl", **tcp(40000, 80)), True),
    "stateful est original needs rule": ([], into(ct="est", **tcp(80)), False),
    "stateful est original with rule": ([r(protocol="tcp")], into(ct="est", **tcp(80)), True),
    "stateless reply needs a rule": ([r("egress", stateful=False)],
                                     into(ct="est_rpl", **tcp(40000, 80)), False),
    "spoofed reply still dropped": (ALLOW_ALL_EGRESS, out(src="10.0.0.9", ct="est_rpl",
                                                          **tcp(1)), False),
    "dhcp server reply dropped even as reply": ([], out(ct="est_rpl", **udp(67, 68)), False),
    # Fragments on stateless ports
    "later fragment ignores ports": ([r(protocol="udp", port_range_min=53, stateful=False)],
                                     into(ip_proto=17, fragment="later"), True),
    "later fragment keeps protocol": ([r(protocol="udp", port_range_min=53, stateful=False)],
                                      into(ip_proto=6, fragment="later"), False),
    "later fragment keeps remote": ([r(protocol="udp", source_ip_prefix="10.9.0.0/16",
                                       stateful=False)],
                                    into(ip_proto=17, fragment="later"), False),
    "later fragment ignores icmp type": ([r(protocol="icmp", port_range_min=8, stateful=False)],
                                         into(ip_proto=1, fragment="later"), True),
    "first fragment has ports": ([r(protocol="udp", port_range_min=53, stateful=False)],
                                 into(fragment="first", **udp(5, 54)), False),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_verdict(case: str) -> None:
    rules, packet, allowed = CASES[case]
    result = Evaluator(host(rules)).evaluate(packet)
    assert result.allowed is allowed, result.reason


def test_remote_group_members_and_cidrs() -> None:
    rules = [r(remote_group_id="web"), r(ethertype="IPv6", remote_address_group_id="ag")]
    members = {"web": {"IPv4": [["192.0.2.7", None], ["198.51.100.0/24", "fa:16:3e:0:0:9"]]},
               "ag": {"IPv6": [["2001:db8::/64", None]]}}
    info = host(rules, members)
    assert verdict(info, into(src="192.0.2.7", **tcp(1)))
    assert not verdict(info, into(src="192.0.2.8", **tcp(1)))
    assert verdict(info, into(src="198.51.100.255", **tcp(1)))
    assert verdict(info, into("IPv6", "2001:db8::ffff", "fd00::1", **tcp(1)))
    assert not verdict(info, into("IPv6", "2001:db9::", "fd00::1", **tcp(1)))


def test_remote_group_without_member_data_has_no_members() -> None:
    assert not verdict(host([r(remote_group_id="gone")]), into(**tcp(1)))


def test_remote_group_on_egress_is_the_destination() -> None:
    info = host([r("egress", remote_group_id="db")],
                {"db": {"IPv4": [["192.0.2.1", None]]}})
    assert verdict(info, out(dst="192.0.2.1", **tcp(5432)))
    assert not verdict(info, out(dst="192.0.2.2", **tcp(5432)))


def test_union_of_groups() -> None:
    info = host([], security_groups=["a", "b"])
    info["security_groups"] = {"a": [r(protocol="tcp", port_range_min=22)],
                               "b": [r(protocol="tcp", port_range_min=80)]}
    assert verdict(info, into(**tcp(22))) and verdict(info, into(**tcp(80)))
    assert not verdict(info, into(**tcp(443)))


def test_provider_rules_change_nothing() -> None:
    provider = [{"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                 "port_range_min": 22}]
    assert not verdict(host([], security_group_rules=provider), into(**tcp(22)))


def test_port_security_off_allows_everything() -> None:
    info = host([], port_security_enabled=False, security_groups=[])
    assert verdict(info, out(src="203.0.113.9", mac="fa:16:3e:66:66:66", **tcp(1)))
    assert verdict(info, into("IPv6", "fe80::9", "fd00::1", **icmp6(137)))


def test_fixed_ips_as_dicts() -> None:
    info = host(ALLOW_ALL_EGRESS, fixed_ips=[{"ip_address": "10.0.0.1"}])
    assert verdict(info, out(**tcp(80)))


BAD = {
    "unknown protocol": [r(protocol="tcpx")],
    "protocol 256": [r(protocol="256")],
    "bad prefix": [r(source_ip_prefix="10.0.0.300/24")],
    "family of prefix": [r(source_ip_prefix="fd00::/8")],
    "port 65536": [r(protocol="tcp", port_range_min=65536)],
    "min > max": [r(protocol="tcp", port_range_min=90, port_range_max=80)],
    "ports on gre": [r(protocol="gre", port_range_min=1)],
    "ports without protocol": [r(port_range_min=1)],
    "icmp code without type": [r(protocol="icmp", port_range_max=0)],
    "icmp code 256": [r(protocol="icmp", port_range_min=3, port_range_max=256)],
    "direction": [r(direction="sideways")],
    "ethertype": [r(ethertype="IPX")],
    "mixed statefulness": [r(protocol="tcp"), r(protocol="udp", stateful=False)],
    "max without min": [r(protocol="tcp", port_range_max=80)],
    "mixed, stateful side matching nothing": [r(protocol="dccp", port_range_min=5),
                                              r(protocol="udp", stateful=False)],
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_port_in_error_is_denied_everything(case: str) -> None:
    info = host([*BAD[case], *ALLOW_ALL_EGRESS])
    info["devices"]["q"] = dict(info["devices"]["p"], mac_address="fa:16:3e:00:00:02",
                                security_groups=["good"], ofport=2, allowed_address_pairs=[])
    info["security_groups"]["good"] = ALLOW_ALL_EGRESS
    evaluator = Evaluator(info)
    assert list(evaluator.port_errors) == ["p"]
    assert not evaluator.evaluate(out(**tcp(80))).allowed
    assert not evaluator.evaluate(into(ip_proto=6)).allowed
    arp = Packet("egress", "p", MAC, OFF_HOST_MAC, "ARP", arp_sha=MAC, arp_spa="10.0.0.1")
    assert not evaluator.evaluate(arp).allowed
    assert evaluator.evaluate(out(mac="fa:16:3e:00:00:02", **tcp(80)).replace(port_id="q"))


@pytest.mark.parametrize("field,value", [
    ("mac_address", "fa:16:3e:00:00:zz"), ("fixed_ips", ["10.0.0.256"]), ("ofport", None),
    ("local_vlan", 4095), ("security_groups", ["sg", "nowhere"]),
    ("allowed_address_pairs", [{"ip_address": "10.0.0.0/33"}]),
])
def test_bad_port_fields(field: str, value: Any) -> None:
    evaluator = Evaluator(host(ALLOW_ALL_EGRESS, **{field: value}))
    assert list(evaluator.port_errors) == ["p"]


def test_trace_flow_rendering() -> None:
    assert out(**tcp(80, 1234)).to_trace_flow(3) == (
        f"tcp,in_port=3,dl_src={MAC},dl_dst={OFF_HOST_MAC},nw_src=10.0.0.1,"
        "nw_dst=192.0.2.1,tcp_src=1234,tcp_dst=80")
    assert into("IPv6", "fe80::9", "fd00::1", **icmp6(136, "fd00::1")).to_trace_flow(100) == (
        f"icmp6,in_port=100,dl_src={REMOTE_MAC},dl_dst={MAC},ipv6_src=fe80::9,ipv6_dst=fd00::1,"
        "icmpv6_type=136,icmpv6_code=0,nd_target=fd00::1")
    assert into(ip_proto=17, fragment="later").to_trace_flow(100).endswith(
        "nw_proto=17,nw_frag=later")
    assert into("IPv6", "2001:db8::1", "fd00::1", ip_proto=132, l4_src=1,
                l4_dst=2).to_trace_flow(1).startswith("sctp6,")
    assert into(ip_proto=47).to_trace_flow(1).startswith("ip,")
    assert into(ct="est_rpl").ct_next() == ["trk,est,rpl"] and into().ct_next() is None


def test_link_local_is_eui64() -> None:
    assert link_local("fa:16:3e:00:00:01") == "fe80::f816:3eff:fe00:1"

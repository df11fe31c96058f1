# ruff: noqa: E501  (a table of cases reads best one case per line)
"""Every rule kind and anti-spoofing case, proven with ofproto/trace on a real switch.

One host is compiled and loaded once; each case traces one packet and names the port it must
reach (or None for dropped). Egress packets enter on the VM's port and, when allowed, leave on the
network's uplink (ofport 100, untagged); ingress packets enter on the uplink addressed to the VM.
"""

from __future__ import annotations

import pytest

from flows import compile_sg_info

UPLINK = 100
A, B, C, D, E = 1, 2, 3, 4, 5  # ofports
MAC = {A: "fa:16:3e:00:00:0a", B: "fa:16:3e:00:00:0b", C: "fa:16:3e:00:00:0c",
       D: "fa:16:3e:00:00:0d", E: "fa:16:3e:00:00:0e"}
PAIR_MAC = "fa:16:3e:00:00:bb"
LLA_A = "fe80::f816:3eff:fe00:a"
FAR = "02:00:00:00:00:fe"  # a MAC not on this host


def r(direction, ethertype="IPv4", stateful=True, **fields):
    return {"direction": direction, "ethertype": ethertype, "stateful": stateful, **fields}


def dev(ofport, ips, groups, **extra):
    return {"mac_address": MAC[ofport], "fixed_ips": ips, "network_id": "n1",
            "security_groups": groups, "port_security_enabled": True, "ofport": ofport,
            "local_vlan": 7, **extra}


HOST = {
    "devices": {
        "a-web": dev(A, ["10.0.0.10", "fd00::a"], ["web"]),
        "b-stateless": dev(B, ["10.0.0.11"], ["dns"], allowed_address_pairs=[
            {"ip_address": "10.0.0.128/25", "mac_address": PAIR_MAC}]),
        "c-db": dev(C, ["10.0.0.12", "fd00::c"], ["db"]),
        "d-open": dev(D, ["10.0.0.13"], [], port_security_enabled=False),
        "e-misc": dev(E, ["10.0.0.14", "fd00::e"], ["misc"]),
    },
    "security_groups": {
        "web": [r("ingress", protocol="tcp", port_range_min=80, port_range_max=80),
                r("ingress", protocol="tcp", port_range_min=1000, port_range_max=2000,
                  source_ip_prefix="10.0.0.0/8"),
                r("ingress", "IPv6", protocol="ipv6-icmp"),
                r("egress"), r("egress", "IPv6")],
        "dns": [r("ingress", stateful=False, protocol="udp", port_range_min=53,
                  port_range_max=53, source_ip_prefix="10.0.0.0/24"),
                r("egress", stateful=False, protocol="udp", port_range_min=53,
                  port_range_max=53),
                r("egress", stateful=False, protocol="tcp", port_range_min=53,
                  port_range_max=53)],
        "db": [r("ingress", protocol="tcp", port_range_min=5432, port_range_max=5432,
                 remote_group_id="web"),
               r("ingress", "IPv6", protocol="tcp", port_range_min=5432, port_range_max=5432,
                 remote_group_id="web"),
               r("ingress", protocol="tcp", port_range_min=443, port_range_max=443,
                 remote_address_group_id="office"),
               r("egress", protocol="tcp", dest_ip_prefix="192.0.2.0/24")],
        "misc": [r("ingress", protocol="icmp", port_range_min=8, port_range_max=0),
                 r("ingress", "IPv6", protocol="icmp", port_range_min=128),
                 r("ingress", protocol="47"),
                 r("ingress", protocol="sctp", port_range_min=9000, port_range_max=9000),
                 r("egress", "IPv6", protocol="udp", dest_ip_prefix="2001:db8::/32"),
                 r("ingress", protocol="udp", source_port_range_min=123,
                   source_port_range_max=123)],
    },
    "sg_member_ips": {"web": {"IPv4": [["10.0.0.10", None], ["10.9.0.0/16", None]],
                              "IPv6": [["fd00::a", None]]},
                      "office": {"IPv4": [["198.51.100.0/24", None]]}},
    "networks": {"n1": {"local_vlan": 7, "uplink": {"ofport": UPLINK, "vlan": None}}},
}

NEW, EST_REPLY, EST = ["trk,new"], ["trk,est,rpl"], ["trk,est"]


def l4_names(proto, extra):
    """ofproto/trace wants tcp_dst/udp_dst/sctp_dst where flows may say tp_dst."""
    prefix = proto.rstrip("6") if proto.rstrip("6") in ("tcp", "udp", "sctp") else "tp"
    return extra.replace(",tp_", f",{prefix}_")


def ingress(dst, proto, src, dst_ip, extra="", eth="ip"):
    key = "nw" if eth == "ip" else "ipv6"
    return f"in_port={UPLINK},{proto},dl_src={FAR},dl_dst={MAC[dst]},{key}_src={src},{key}_dst={dst_ip}{l4_names(proto, extra)}"


def egress(src_port, proto, src, dst_ip, extra="", mac=None, eth="ip"):
    key = "nw" if eth == "ip" else "ipv6"
    return (f"in_port={src_port},{proto},dl_src={mac or MAC[src_port]},dl_dst={FAR},"
            f"{key}_src={src},{key}_dst={dst_ip}{l4_names(proto, extra)}")


CASES = {
    # stateful tcp, exact port, from anywhere
    "tcp 80 to web: new allowed": (ingress(A, "tcp", "1.2.3.4", "10.0.0.10", ",tp_dst=80"), NEW, A),
    "tcp 81 to web: new dropped": (ingress(A, "tcp", "1.2.3.4", "10.0.0.10", ",tp_dst=81"), NEW, None),
    "tcp 81 to web: reply of allowed connection passes": (
        ingress(A, "tcp", "1.2.3.4", "10.0.0.10", ",tp_dst=81"), EST_REPLY, A),
    "tcp 81 to web: established original direction re-checked": (
        ingress(A, "tcp", "1.2.3.4", "10.0.0.10", ",tp_dst=81"), EST, None),
    "invalid dropped": (ingress(A, "tcp", "1.2.3.4", "10.0.0.10", ",tp_dst=80"), ["trk,inv"], None),
    # port range and prefix
    "range 1000-2000 low edge from 10/8": (
        ingress(A, "tcp", "10.200.0.1", "10.0.0.10", ",tp_dst=1000"), NEW, A),
    "range high edge": (ingress(A, "tcp", "10.200.0.1", "10.0.0.10", ",tp_dst=2000"), NEW, A),
    "range above": (ingress(A, "tcp", "10.200.0.1", "10.0.0.10", ",tp_dst=2001"), NEW, None),
    "range below": (ingress(A, "tcp", "10.200.0.1", "10.0.0.10", ",tp_dst=999"), NEW, None),
    "range from outside prefix": (ingress(A, "tcp", "11.0.0.1", "10.0.0.10", ",tp_dst=1500"), NEW, None),
    # IPv6
    "icmpv6 echo to web": (ingress(A, "icmp6", "2001:db8::1", "fd00::a", ",icmpv6_type=128", eth="ipv6"), NEW, A),
    "tcp6 80 to web: no IPv6 rule": (ingress(A, "tcp6", "2001:db8::1", "fd00::a", ",tp_dst=80", eth="ipv6"), NEW, None),
    "egress IPv6 from web": (egress(A, "tcp6", "fd00::a", "2001:db8::1", ",tp_dst=443", eth="ipv6"), NEW, UPLINK),
    "egress from web link-local": (egress(A, "udp6", LLA_A, "ff02::1:2", ",tp_dst=9", eth="ipv6"), NEW, UPLINK),
    # remote group (conjunction), remote address group
    "db from web member host": (ingress(C, "tcp", "10.0.0.10", "10.0.0.12", ",tp_dst=5432"), NEW, C),
    "db from web member CIDR": (ingress(C, "tcp", "10.9.1.2", "10.0.0.12", ",tp_dst=5432"), NEW, C),
    "db from non-member": (ingress(C, "tcp", "10.8.1.2", "10.0.0.12", ",tp_dst=5432"), NEW, None),
    "db wrong port from member": (ingress(C, "tcp", "10.0.0.10", "10.0.0.12", ",tp_dst=5433"), NEW, None),
    "db IPv6 from web member": (ingress(C, "tcp6", "fd00::a", "fd00::c", ",tp_dst=5432", eth="ipv6"), NEW, C),
    "db IPv6 from non-member": (ingress(C, "tcp6", "fd00::b", "fd00::c", ",tp_dst=5432", eth="ipv6"), NEW, None),
    "db 443 from address group": (ingress(C, "tcp", "198.51.100.7", "10.0.0.12", ",tp_dst=443"), NEW, C),
    "db 443 from outside address group": (ingress(C, "tcp", "198.51.101.7", "10.0.0.12", ",tp_dst=443"), NEW, None),
    "db egress to 192.0.2.0/24": (egress(C, "tcp", "10.0.0.12", "192.0.2.9", ",tp_dst=22"), NEW, UPLINK),
    "db egress elsewhere": (egress(C, "tcp", "10.0.0.12", "192.0.3.9", ",tp_dst=22"), NEW, None),
    "db egress udp not allowed": (egress(C, "udp", "10.0.0.12", "192.0.2.9", ",tp_dst=22"), NEW, None),
    # stateless: no conntrack, both directions need rules, fragments
    "stateless dns in from 10.0.0.0/24": (ingress(B, "udp", "10.0.0.1", "10.0.0.11", ",tp_dst=53"), None, B),
    "stateless dns in from elsewhere": (ingress(B, "udp", "10.1.0.1", "10.0.0.11", ",tp_dst=53"), None, None),
    "stateless reply without rule": (ingress(B, "udp", "10.0.0.1", "10.0.0.11", ",tp_src=53,tp_dst=5000"), None, None),
    "stateless later fragment of allowed flow": (ingress(B, "udp", "10.0.0.1", "10.0.0.11", ",nw_frag=later"), None, B),
    "stateless first fragment of allowed flow": (ingress(B, "udp", "10.0.0.1", "10.0.0.11", ",tp_dst=53,nw_frag=first"), None, B),
    "stateless first fragment to another port": (ingress(B, "udp", "10.0.0.1", "10.0.0.11", ",tp_dst=54,nw_frag=first"), None, None),
    "stateless later fragment from elsewhere": (ingress(B, "udp", "10.1.0.1", "10.0.0.11", ",nw_frag=later"), None, None),
    "stateless egress dns": (egress(B, "udp", "10.0.0.11", "8.8.8.8", ",tp_dst=53"), None, UPLINK),
    "stateless egress other": (egress(B, "udp", "10.0.0.11", "8.8.8.8", ",tp_dst=54"), None, None),
    "stateless egress tcp other port": (egress(B, "tcp", "10.0.0.11", "8.8.8.8", ",tp_dst=54,tcp_flags=0x002"), None, None),
    "stateless egress tcp any flags": (egress(B, "tcp", "10.0.0.11", "8.8.8.8", ",tp_dst=53,tcp_flags=0x0d7"), None, UPLINK),
    # ICMP type/code, protocol numbers, sctp, source ports
    "icmp echo request": (ingress(E, "icmp", "1.1.1.1", "10.0.0.14", ",icmp_type=8,icmp_code=0"), NEW, E),
    "icmp echo request wrong code": (ingress(E, "icmp", "1.1.1.1", "10.0.0.14", ",icmp_type=8,icmp_code=1"), NEW, None),
    "icmp unreachable": (ingress(E, "icmp", "1.1.1.1", "10.0.0.14", ",icmp_type=3,icmp_code=0"), NEW, None),
    "icmp under IPv6 rule means icmpv6": (ingress(E, "icmp6", "2001:db8::1", "fd00::e", ",icmpv6_type=128,icmpv6_code=5", eth="ipv6"), NEW, E),
    "gre by number": (ingress(E, "ip,nw_proto=47", "1.1.1.1", "10.0.0.14"), NEW, E),
    "esp not allowed": (ingress(E, "ip,nw_proto=50", "1.1.1.1", "10.0.0.14"), NEW, None),
    "sctp 9000": (ingress(E, "sctp", "1.1.1.1", "10.0.0.14", ",tp_dst=9000"), NEW, E),
    "udp from source port 123": (ingress(E, "udp", "1.1.1.1", "10.0.0.14", ",tp_src=123,tp_dst=40000"), NEW, E),
    "udp from source port 124": (ingress(E, "udp", "1.1.1.1", "10.0.0.14", ",tp_src=124,tp_dst=40000"), NEW, None),
    "egress IPv6 udp to 2001:db8::/32": (egress(E, "udp6", "fd00::e", "2001:db8:1::1", ",tp_dst=1", eth="ipv6"), NEW, UPLINK),
    "egress IPv4 from misc: no rule": (egress(E, "udp", "10.0.0.14", "1.1.1.1", ",tp_dst=1"), NEW, None),
    # anti-spoofing
    "spoofed source IP": (egress(A, "tcp", "10.0.0.99", "1.2.3.4", ",tp_dst=80"), NEW, None),
    "spoofed source MAC": (egress(A, "tcp", "10.0.0.10", "1.2.3.4", ",tp_dst=80", mac=MAC[C]), NEW, None),
    "allowed address pair CIDR with its MAC": (egress(B, "udp", "10.0.0.200", "8.8.8.8", ",tp_dst=53", mac=PAIR_MAC), None, UPLINK),
    "pair IP with the port MAC": (egress(B, "udp", "10.0.0.200", "8.8.8.8", ",tp_dst=53"), None, None),
    "fixed IP with the pair MAC": (egress(B, "udp", "10.0.0.11", "8.8.8.8", ",tp_dst=53", mac=PAIR_MAC), None, None),
    "ARP with good sender": (f"in_port={A},arp,dl_src={MAC[A]},dl_dst={FAR},arp_op=2,arp_sha={MAC[A]},arp_spa=10.0.0.10,arp_tpa=10.0.0.1", None, UPLINK),
    "ARP with spoofed sha": (f"in_port={A},arp,dl_src={MAC[A]},dl_dst={FAR},arp_op=2,arp_sha={MAC[B]},arp_spa=10.0.0.10,arp_tpa=10.0.0.1", None, None),
    "ARP with spoofed spa": (f"in_port={A},arp,dl_src={MAC[A]},dl_dst={FAR},arp_op=2,arp_sha={MAC[A]},arp_spa=10.0.0.11,arp_tpa=10.0.0.1", None, None),
    "ARP towards a VM always passes": (f"in_port={UPLINK},arp,dl_src={FAR},dl_dst={MAC[C]},arp_op=2,arp_sha={FAR},arp_spa=10.0.0.1,arp_tpa=10.0.0.12", None, C),
    "RA from a VM dropped": (egress(A, "icmp6", LLA_A, "ff02::1", ",icmpv6_type=134", eth="ipv6"), None, None),
    "redirect from a VM dropped": (egress(A, "icmp6", LLA_A, "fe80::1", ",icmpv6_type=137", eth="ipv6"), None, None),
    "RS from a VM passes": (egress(A, "icmp6", LLA_A, "ff02::2", ",icmpv6_type=133", eth="ipv6"), None, UPLINK),
    "NA for own address passes": (egress(A, "icmp6", LLA_A, "fe80::1", ",icmpv6_type=136,nd_target=fd00::a", eth="ipv6"), None, UPLINK),
    "NA for someone else's address dropped": (egress(A, "icmp6", LLA_A, "fe80::1", ",icmpv6_type=136,nd_target=fd00::c", eth="ipv6"), None, None),
    "DAD from :: passes": (egress(A, "icmp6", "::", "ff02::1:ff00:a", ",icmpv6_type=135,nd_target=fd00::a", eth="ipv6"), None, UPLINK),
    "DHCP discover from 0.0.0.0 passes": (egress(C, "udp", "0.0.0.0", "255.255.255.255", ",tp_src=68,tp_dst=67"), None, UPLINK),
    "DHCP server reply from a VM dropped": (egress(A, "udp", "10.0.0.10", "10.0.0.99", ",tp_src=67,tp_dst=68"), None, None),
    "DHCPv6 server reply from a VM dropped": (egress(A, "udp6", LLA_A, "fe80::1", ",tp_src=547,tp_dst=546", eth="ipv6"), None, None),
    "DHCP reply towards a VM passes": (ingress(C, "udp", "10.0.0.2", "10.0.0.12", ",tp_src=67,tp_dst=68"), None, C),
    "RA towards a VM passes": (ingress(C, "icmp6", "fe80::1", "ff02::1", ",icmpv6_type=134", eth="ipv6"), None, C),
    "non-IP from a VM dropped": (f"in_port={A},dl_src={MAC[A]},dl_dst={FAR},dl_type=0x88cc", None, None),
    # port security off: everything passes, both ways
    "open port sends anything": (egress(D, "tcp", "6.6.6.6", "1.2.3.4", ",tp_dst=1", mac="02:99:00:00:00:01"), None, UPLINK),
    "open port receives anything": (ingress(D, "tcp", "1.2.3.4", "10.0.0.13", ",tp_dst=1"), None, D),
    # local forwarding: web -> db over br-int, two filters
    "web to db 5432 locally": (f"in_port={A},tcp,dl_src={MAC[A]},dl_dst={MAC[C]},nw_src=10.0.0.10,nw_dst=10.0.0.12,tcp_dst=5432", ["trk,new", "trk,new"], C),
    "db to web 5432 locally": (f"in_port={C},tcp,dl_src={MAC[C]},dl_dst={MAC[A]},nw_src=10.0.0.12,nw_dst=10.0.0.10,tcp_dst=5432", ["trk,new", "trk,new"], None),
    "unknown MAC from uplink is not reflected": (ingress(A, "tcp", "1.2.3.4", "10.0.0.10", ",tp_dst=80").replace(MAC[A], "02:00:00:00:00:77"), NEW, None),
}


@pytest.fixture(scope="module")
def loaded_bridge(ovs_sandbox):
    name = "dpa-sgtrace"
    ovs_sandbox.add_bridge(name)
    try:
        for ofport in (A, B, C, D, E, UPLINK):
            ovs_sandbox.add_port(name, f"dpa-tr{ofport}", type="internal", ofport_request=ofport)
        result = compile_sg_info(HOST)
        assert not result.errors, result.errors
        ovs_sandbox.replace_flows(name, "\n".join(result.flow_lines()) + "\n")
        ovs_sandbox.ofctl("set-frags", name, "nx-match")  # as the bridge programmer sets it
        yield name
    finally:
        ovs_sandbox.del_bridge(name)


@pytest.mark.parametrize("case", list(CASES))
def test_verdict(ovs_sandbox, loaded_bridge, case):
    packet, ct_next, expected = CASES[case]
    verdict = ovs_sandbox.trace(loaded_bridge, packet, ct_next=ct_next)
    got = None if verdict.dropped else verdict.output_ports
    want = None if expected is None else (expected,)
    assert got == want, f"{case}: {packet}\n{verdict.raw}"

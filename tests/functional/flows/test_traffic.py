"""Real packets between network namespaces through the compiled flows on a userspace switch."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from dpagent.lab.frames import (
    ETH_P_8021AD,
    ETH_P_8021Q,
    ETH_P_IP,
    ETH_P_IPV6,
    FrameTap,
    ethernet,
    icmp_echo,
    icmpv6,
    ipv6_dstopts,
    ipv6_fragment,
    ipv6_packet,
    link_local,
)
from dpagent.lab.netns import NetnsVM
from flows import compile_sg_info

BRIDGE = "dpa-sgtraffic"
NET = "10.0.0"


def r(direction, ethertype="IPv4", stateful=True, **fields):
    return {"direction": direction, "ethertype": ethertype, "stateful": stateful, **fields}


GROUPS = {
    "web": [r("ingress", protocol="tcp", port_range_min=8080, port_range_max=8080),
            r("ingress", protocol="icmp"), r("ingress", "IPv6", protocol="ipv6-icmp"),
            r("egress"), r("egress", "IPv6")],
    "client": [r("egress"), r("egress", "IPv6")],
    # stateless: sl-a may open tcp/9000 to sl-b; replies need rules of their own
    "sl-a": [r("egress", stateful=False, protocol="tcp", port_range_min=9000,
               port_range_max=9000)],
    "sl-b": [r("ingress", stateful=False, protocol="tcp", port_range_min=9000,
               port_range_max=9000)],
}
RETURN_RULES = {
    "sl-a": [r("ingress", stateful=False, protocol="tcp", source_port_range_min=9000,
               source_port_range_max=9000)],
    "sl-b": [r("egress", stateful=False, protocol="tcp", source_port_range_min=9000,
               source_port_range_max=9000)],
}
VMS = {"web": 2, "client": 3, "sl-a": 4, "sl-b": 5}  # name -> last octet


@pytest.fixture(scope="module")
def lab(ovs_sandbox):
    ovs_sandbox.add_bridge(BRIDGE)
    vms = {}
    try:
        for name, octet in VMS.items():
            vms[name] = NetnsVM(ovs_sandbox, BRIDGE, name, f"fa:16:3e:00:01:{octet:02x}",
                                ipv4=[f"{NET}.{octet}/24"])
        yield Lab(ovs_sandbox, vms)
    finally:
        for vm in vms.values():
            vm.destroy()
        ovs_sandbox.del_bridge(BRIDGE)


class Lab:
    def __init__(self, sandbox, vms):
        self.sandbox, self.vms = sandbox, vms

    def program(self, groups, networks=None):
        devices = {name: {"mac_address": vm.mac, "fixed_ips": [vm.ip4], "network_id": "n1",
                          "security_groups": [name], "port_security_enabled": True,
                          "ofport": vm.ofport, "local_vlan": 1}
                   for name, vm in self.vms.items()}
        result = compile_sg_info({"devices": devices, "security_groups": groups,
                                  "sg_member_ips": {}, "networks": networks or {}})
        assert not result.errors, result.errors
        self.sandbox.replace_flows(BRIDGE, "\n".join(result.flow_lines()) + "\n")


@pytest.fixture
def programmed(lab):
    lab.program(GROUPS)
    return lab


@pytest.fixture(autouse=True)
def listeners(monkeypatch):
    """Listeners started by a test stop with it, so the next test may listen again."""
    started = []
    original = NetnsVM.tcp_listen

    def tracking(vm, port):
        listener = original(vm, port)
        started.append(listener)
        return listener

    monkeypatch.setattr(NetnsVM, "tcp_listen", tracking)
    yield
    for listener in started:
        listener.stop()


def test_allowed_connection_works_and_its_replies_flow(programmed):
    web, client = programmed.vms["web"], programmed.vms["client"]
    web.tcp_listen(8080)
    assert client.tcp_connect(web.ip4, 8080, timeout=3)
    assert client.ping(web.ip4)


def test_denied_connection_times_out(programmed):
    web, client = programmed.vms["web"], programmed.vms["client"]
    web.tcp_listen(8081)
    assert not client.tcp_connect(web.ip4, 8081, timeout=1.5)
    client.tcp_listen(8080)  # the client allows no new inbound connection at all
    assert not web.tcp_connect(client.ip4, 8080, timeout=1.5)
    assert not web.ping(client.ip4, timeout=1)


def test_stateless_ports_need_explicit_return_rules(lab):
    a, b = lab.vms["sl-a"], lab.vms["sl-b"]
    b.tcp_listen(9000)
    lab.program(GROUPS)
    assert not a.tcp_connect(b.ip4, 9000, timeout=1.5)
    lab.program({name: rules + RETURN_RULES.get(name, []) for name, rules in GROUPS.items()})
    assert a.tcp_connect(b.ip4, 9000, timeout=3)


def test_removing_a_rule_cuts_an_established_connection(lab):
    web, client = lab.vms["web"], lab.vms["client"]
    lab.program(GROUPS)
    web.tcp_listen(8080)
    session = client.tcp_session(web.ip4, 8080, timeout=3)
    assert session.exchange()
    without = dict(GROUPS, web=[rule for rule in GROUPS["web"]
                                if rule.get("port_range_min") != 8080])
    lab.program(without)
    assert not session.exchange(timeout=1.5)
    assert client.ping(web.ip4)  # other traffic is untouched


def test_spoofed_source_ip_is_dropped(programmed):
    web, client = programmed.vms["web"], programmed.vms["client"]
    spoofed = f"{NET}.99"
    client.exec(["ip", "addr", "add", f"{spoofed}/32", "dev", "eth0"])
    # a static neighbour entry, so only the IP check can stop the reply path
    web.exec(["ip", "neigh", "replace", spoofed, "lladdr", client.mac, "dev", "eth0"])
    ping_from = ["ping", "-c", "1", "-W", "1", "-I"]
    try:
        assert client.exec([*ping_from, client.ip4, web.ip4]).returncode == 0
        assert client.exec([*ping_from, spoofed, web.ip4]).returncode != 0
    finally:
        client.exec(["ip", "addr", "del", f"{spoofed}/32", "dev", "eth0"])


def test_spoofed_source_mac_is_dropped(programmed):
    web, client = programmed.vms["web"], programmed.vms["client"]
    assert client.ping(web.ip4)
    client.exec(["ip", "link", "set", "eth0", "address", "fa:16:3e:00:01:99"])
    try:
        client.exec(["ip", "neigh", "flush", "all"])
        assert not client.ping(web.ip4, timeout=1)
    finally:
        client.exec(["ip", "link", "set", "eth0", "address", client.mac])


ICMPV6_LISTENER = """
import socket, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.settimeout(0.2)
seen, end = set(), time.time() + float(sys.argv[1])
while time.time() < end:
    try:
        data, _ = s.recvfrom(2048)
    except socket.timeout:
        continue
    seen.add(data[0])
print(" ".join(str(t) for t in sorted(seen)))
"""
ICMPV6_SENDER = """
import socket, struct, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
index = socket.if_nametoindex("eth0")
for kind in map(int, sys.argv[1:]):
    body = struct.pack("!BBHHH", kind, 0, 0, 0, 0) + bytes(12)
    s.sendto(body, ("ff02::1", 0, 0, index))
"""


def test_router_advertisement_from_a_vm_is_dropped(programmed):
    """The client sends an RA (134) and an echo request (128) to all nodes; web hears only the
    echo request."""
    import subprocess
    import sys

    web, client = programmed.vms["web"], programmed.vms["client"]
    listener = subprocess.Popen(["ip", "netns", "exec", web.netns, sys.executable, "-c",
                                 ICMPV6_LISTENER, "3"], stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    for _ in range(3):
        client.exec([sys.executable, "-c", ICMPV6_SENDER, "134", "128"])
        time.sleep(0.2)
    seen = set(listener.communicate(timeout=10)[0].split())
    assert "128" in seen, seen
    assert "134" not in seen, seen


TAGS = {  # marker -> the VLAN headers a VM puts on its own frame
    b"802.1Q-vid100": [(ETH_P_8021Q, 100)],
    b"802.1ad+802.1Q": [(ETH_P_8021AD, 200), (ETH_P_8021Q, 100)],
    b"priority-tagged": [(ETH_P_8021Q, 0)],
}


def seen_markers(frames, markers):
    return {m for m in markers if any(m in frame for frame in frames)}


def test_a_vm_never_gets_a_tagged_frame_out_of_its_port(lab):
    """Real tagged frames with the VM's own MAC and IP: none reaches the other VM (east-west)
    or the uplink, where br-int would push the network's VLAN on top of the VM's own; the same
    frame untagged passes both ways."""
    web, client = lab.vms["web"], lab.vms["client"]
    external = NetnsVM(lab.sandbox, BRIDGE, "ext", "02:00:00:00:0e:01", ipv4=[f"{NET}.250/24"])
    try:
        lab.program(GROUPS, networks={"n1": {"local_vlan": 1, "uplink": {
            "ofport": external.ofport, "vlan": 150}}})
        with FrameTap(client.netns, "eth0") as sender, FrameTap(web.netns, "eth0") as at_web, \
                FrameTap(external.netns, "eth0") as at_uplink:
            markers = [b"untagged", *TAGS]
            for dst, dst_ip in ((web.mac, web.ip4), ("02:00:00:00:99:99", f"{NET}.99")):
                # to web: unicast east-west; to a MAC unknown here: out of the uplink
                for marker in markers:
                    payload = icmp_echo(client.ip4, dst_ip, marker)
                    sender.send(ethernet(dst, client.mac, ETH_P_IP, payload,
                                         TAGS.get(marker, ())))
            east_west = seen_markers(at_web.frames(1.0), markers)
            uplink = seen_markers(at_uplink.frames(0.2), markers)
        assert east_west == {b"untagged"}
        assert uplink == {b"untagged"}
    finally:
        external.destroy()
        lab.program(GROUPS)


def hidden_header_packets(src, dst):
    """marker -> an IPv6 packet from ``src`` whose upper-layer header (an RA, or a DHCPv6
    server reply) OVS cannot see; each carries its marker in a padding option."""
    ra = icmpv6(src, dst, 134, 0, bytes(12))
    return {
        b"chain-longer-than-fragment": ipv6_packet(src, dst, 44, ipv6_fragment(60, 0, True)
            + ipv6_dstopts(58, b"chain-longer-than-fragment", length=1024)[:600]),
        b"icmpv6-cut-after-1-byte": ipv6_packet(src, dst, 44, ipv6_fragment(60, 0, True)
            + ipv6_dstopts(58, b"icmpv6-cut-after-1-byte") + ra[:1]),
        b"udp-cut-after-2-bytes": ipv6_packet(src, dst, 44, ipv6_fragment(60, 0, True)
            + ipv6_dstopts(17, b"udp-cut-after-2-bytes") + bytes([2, 35])),
        b"behind-a-mobility-header": ipv6_packet(src, dst, 135, bytes([58, 0, 0, 0])
            + b"behind-a-mobility-header" + ra),
    }


def test_ipv6_whose_upper_layer_header_is_unseen_is_dropped_from_any_port(lab):
    """Real frames: stateless and stateful senders, a stateless receiver that takes any IPv6
    (so only the sender's egress can stop them); an ordinary echo request passes."""
    groups = dict(GROUPS, **{"sl-a": [r("egress", "IPv6", stateful=False)],
                             "sl-b": [r("ingress", "IPv6", stateful=False)]})
    lab.program(groups)
    receiver = lab.vms["sl-b"]
    dst = link_local(receiver.mac)
    try:
        for sender in (lab.vms["sl-a"], lab.vms["client"]):
            src = link_local(sender.mac)
            control = b"echo-from-" + sender.name.encode()
            packets = {control: ipv6_packet(src, dst, 58, icmpv6(src, dst, 128, 0,
                                                                  b"\0\1\0\1" + control)),
                       **hidden_header_packets(src, dst)}
            with FrameTap(sender.netns, "eth0") as out, \
                    FrameTap(receiver.netns, "eth0") as at_receiver:
                for packet in packets.values():
                    out.send(ethernet(receiver.mac, sender.mac, ETH_P_IPV6, packet))
                seen = seen_markers(at_receiver.frames(1.0), packets)
            assert seen == {control}, sender.name
    finally:
        lab.program(GROUPS)


UDP_5432 = {"protocol": "udp", "port_range_min": 5432, "port_range_max": 5432}
FRAGMENTING = dict(GROUPS, **{
    "web": [*GROUPS["web"], *(r("ingress", e, **UDP_5432) for e in ("IPv4", "IPv6"))],
    "sl-a": [*(r(d, e, stateful=False, protocol=p) for d in ("ingress", "egress")
               for e, p in (("IPv4", "icmp"), ("IPv6", "ipv6-icmp"))),
             *(r("egress", e, stateful=False, **UDP_5432) for e in ("IPv4", "IPv6"))],
    "sl-b": [*(r(d, e, stateful=False, protocol=p) for d in ("ingress", "egress")
               for e, p in (("IPv4", "icmp"), ("IPv6", "ipv6-icmp"))),
             *(r("ingress", e, stateful=False, **UDP_5432) for e in ("IPv4", "IPv6"))],
})

UDP_RECEIVE = ("import socket, sys; s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); "
               "s.bind(('::', 5432)); s.settimeout(3); print(len(s.recv(65535)))")
UDP_SEND = ("import socket, sys; s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); "
            "s.sendto(b'x' * 3000, socket.getaddrinfo(sys.argv[1], 5432)[0][4])")


@pytest.mark.parametrize("family", ["IPv4", "IPv6"])
@pytest.mark.parametrize("pair", [("client", "web"), ("sl-a", "sl-b")], ids=["stateful",
                                                                            "stateless"])
def test_allowed_fragmented_traffic_arrives_whole(lab, family, pair):
    """3,000-byte pings (three fragments each way on a 1,500-byte MTU) between ports whose
    rules allow ICMP: every one answered."""
    lab.program(FRAGMENTING)
    sender, receiver = (lab.vms[name] for name in pair)
    if family == "IPv4":
        command = ["ping", "-c", "3", "-i", "0.2", "-W", "2", "-s", "3000", receiver.ip4]
    else:
        command = ["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "-s", "3000",
                   f"{link_local(receiver.mac)}%eth0"]
        for vm in (sender, receiver):  # a fresh link-local address is tentative for ~1 s
            deadline = time.monotonic() + 5
            while vm.exec(["ip", "-6", "addr", "show", "dev", "eth0", "tentative"]).stdout:
                assert time.monotonic() < deadline, f"{vm.name}: link-local still tentative"
                time.sleep(0.1)
    result = sender.exec(command)
    assert " 0% packet loss" in result.stdout, result.stdout
    # a 3,000-byte UDP datagram to a port a rule allows: the later fragments have no port
    target = receiver.ip4 if family == "IPv4" else f"{link_local(receiver.mac)}%eth0"
    listener = subprocess.Popen(["ip", "netns", "exec", receiver.netns, sys.executable, "-c",
                                 UDP_RECEIVE], stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)
    sender.exec([sys.executable, "-c", UDP_SEND, "::ffff:" + target if family == "IPv4"
                 else target])
    assert listener.communicate(timeout=10)[0].strip() == "3000"

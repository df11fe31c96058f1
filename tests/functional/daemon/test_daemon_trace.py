"""``dpagent-ctl trace`` against the running daemon, each verdict checked with real traffic.

One host, an IPv4 and an IPv6 network, eight namespace VMs: stateful groups with a
remote-group rule (in both families), a group without egress rules, a stateless group, and a
port without port security. For each stage the
trace can name (anti-spoofing, egress rules, ingress rules, conntrack invalid, a blocked
connection, a VM's tagged frame) one packet it allows and one it drops, and the same packet
sent for real: a TCP connect or ping, or a crafted frame captured where it would arrive.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

import pytest

from dpagent.daemon.status import query
from dpagent.lab.control_plane import ControlPlaneDouble
from dpagent.lab.frames import (
    ETH_P_8021Q,
    ETH_P_IP,
    TCP_ACK,
    TCP_SYN,
    FrameTap,
    ethernet,
    icmp_echo,
    tcp_segment,
)
from tests.functional.daemon.test_daemon import clean_up, start_daemon, wait_for

CACHE_MODE = os.environ.get("DPAGENT_TEST_RPC_MODE", "cache") == "cache"


@pytest.fixture
def double(transport_url):
    with ControlPlaneDouble(transport_url) as cp:
        yield cp


def test_trace_verdicts_match_real_traffic(tmp_path, ovs_sandbox, transport_url, double,
                                           netns_vm):
    host = f"compute-{uuid.uuid4().hex[:6]}"
    bridge = f"br-t{uuid.uuid4().hex[:6]}"
    net = double.model.add_network("n1", cidr="10.6.0.0/24", network_type="vxlan",
                                   physical_network=None)
    web, db, mute = (double.model.add_security_group() for _ in range(3))
    mon = double.model.add_security_group(stateful=False)
    rule = {}
    rule["web_egress"] = double.add_rule(web.id, notify=False, direction="egress",
                                         ethertype="IPv4")
    double.add_rule(web.id, notify=False, direction="ingress", ethertype="IPv4",
                    protocol="tcp", port_range_min=80, port_range_max=80)
    rule["db_5432"] = double.add_rule(db.id, notify=False, direction="ingress",
                                      ethertype="IPv4", protocol="tcp", port_range_min=5432,
                                      port_range_max=5432, remote_group_id=web.id)
    rule["db_icmp"] = double.add_rule(db.id, notify=False, direction="ingress",
                                      ethertype="IPv4", protocol="icmp")
    double.add_rule(db.id, notify=False, direction="egress", ethertype="IPv4")
    rule["web_egress6"] = double.add_rule(web.id, notify=False, direction="egress",
                                          ethertype="IPv6")
    rule["db_5432_v6"] = double.add_rule(db.id, notify=False, direction="ingress",
                                         ethertype="IPv6", protocol="tcp", port_range_min=5432,
                                         port_range_max=5432, remote_group_id=web.id)
    double.add_rule(mute.id, notify=False, direction="ingress", ethertype="IPv4",
                    protocol="icmp")
    double.add_rule(mon.id, notify=False, direction="egress", ethertype="IPv4")
    double.add_rule(mon.id, notify=False, direction="ingress", ethertype="IPv4",
                    protocol="icmp")
    daemon = start_daemon(tmp_path, ovs_sandbox, transport_url, host, bridge, "threading")
    sock = str(tmp_path / "status.sock")
    try:
        double.wait_for_call("report_state", timeout=30)
        specs = {"web": {"security_groups": [web.id]}, "db": {"security_groups": [db.id]},
                 "mute": {"security_groups": [mute.id]}, "mon": {"security_groups": [mon.id]},
                 "open": {"security_groups": [], "port_security_enabled": False}}
        ports = {name: double.add_port(net.id, host=host, **fields)
                 for name, fields in specs.items()}
        vms = {name: netns_vm(name, bridge=bridge, mac=p.mac_address,
                              ipv4=[f"{p.fixed_ips[0]['ip_address']}/24"], iface_id=p.id)
               for name, p in ports.items()}
        net6 = double.model.add_network("n6", cidr="fd00:6::/64", network_type="vxlan",
                                        physical_network=None)
        for name, groups in (("web6", [web.id]), ("db6", [db.id]), ("mon6", [mon.id])):
            ports[name] = double.add_port(net6.id, host=host, security_groups=groups)
            vms[name] = netns_vm(name, bridge=bridge, mac=ports[name].mac_address,
                                 ipv6=[f"{ports[name].fixed_ips[0]['ip_address']}/64"],
                                 iface_id=ports[name].id)
        wait_for(lambda: all(double.model.ports[p.id].status == "ACTIVE"
                             for p in ports.values()), timeout=30, what="ports up")
        ip = {name: p.fixed_ips[0]["ip_address"] for name, p in ports.items()}
        vms["db"].tcp_listen(5432)
        vms["web"].tcp_listen(80)

        def trace(src, dst, service, **extra):
            answer = query(sock, timeout=30, request={
                "command": "trace", "from": src, "to": dst, "service": service, **extra})
            assert "error" not in answer, answer
            return answer

        def rule_named(answer, key, group):
            wanted = f"security group {group.id} rule " + (rule[key] if CACHE_MODE else "#")
            return any(r.startswith(wanted) for r in answer["rules"])

        # rules, through a remote group: allowed both ways by name, and for real
        allowed = trace(ip["web"], ip["db"], "tcp/5432")
        assert allowed["verdict"] == "ALLOWED", allowed
        assert f"delivered to port {ports['db'].id}" in allowed["reason"], allowed
        assert rule_named(allowed, "web_egress", web) and rule_named(allowed, "db_5432", db)
        assert any("through remote group" in r for r in allowed["rules"])
        assert vms["web"].tcp_connect(vms["db"].ip4, 5432)

        # IPv6: the remote-group rule of db6, and mon6's stateless group, which has no
        # IPv6 egress rule
        vms["db6"].tcp_listen(5432)
        allowed6 = trace(ip["web6"], ip["db6"], "tcp/5432")
        assert allowed6["verdict"] == "ALLOWED", allowed6
        assert rule_named(allowed6, "web_egress6", web) and \
            rule_named(allowed6, "db_5432_v6", db), allowed6
        assert vms["web6"].tcp_connect(vms["db6"].ip6, 5432)
        refused6 = trace(ip["mon6"], ip["db6"], "tcp/5432")
        assert (refused6["verdict"], refused6["stage"]) == \
            ("DROPPED", f"egress rules of port {ports['mon6'].id}"), refused6
        assert not vms["mon6"].tcp_connect(vms["db6"].ip6, 5432, timeout=1)

        # ingress rules of db: mon is no member of web
        refused = trace(ports["mon"].id, ports["db"].id, "tcp/5432")
        assert (refused["verdict"], refused["stage"]) == \
            ("DROPPED", f"ingress rules of port {ports['db'].id}"), refused
        assert not vms["mon"].tcp_connect(vms["db"].ip4, 5432, timeout=1)

        # egress rules: mute has none; web's allow the same ping
        muted = trace(ports["mute"].id[:8], ip["db"], "icmp")  # a prefix of its id
        assert (muted["verdict"], muted["stage"]) == \
            ("DROPPED", f"egress rules of port {ports['mute'].id}"), muted
        assert not vms["mute"].ping(vms["db"].ip4, timeout=1)
        ping = trace(ip["web"], ip["db"], "icmp")
        assert ping["verdict"] == "ALLOWED" and rule_named(ping, "db_icmp", db), ping
        assert vms["web"].ping(vms["db"].ip4)

        # stateless: mon's SYN goes out, web's SYN-ACK needs an ingress rule on mon
        syn = trace(ip["mon"], ip["web"], "tcp/80")
        assert syn["verdict"] == "ALLOWED", syn
        reply = trace(ip["web"], ip["mon"], "tcp/80", state="reply")
        assert (reply["verdict"], reply["stage"]) == \
            ("DROPPED", f"ingress rules of port {ports['mon'].id}"), reply
        assert not vms["mon"].tcp_connect(vms["web"].ip4, 80, timeout=1)

        # no port security: no filter on its side, db's ingress rule still applies
        free = trace(ip["open"], ip["db"], "icmp")
        assert free["verdict"] == "ALLOWED" and rule_named(free, "db_icmp", db), free
        assert any("port security disabled" in n for n in free["notes"]), free
        assert vms["open"].ping(vms["db"].ip4)

        # anti-spoofing, a tagged frame, conntrack invalid: crafted frames, seen at db or not
        web_mac, db_mac = ports["web"].mac_address, ports["db"].mac_address
        spoofed = trace(ip["web"], ip["db"], "icmp", src_ip="10.6.0.250")
        assert (spoofed["verdict"], spoofed["stage"]) == \
            ("DROPPED", f"anti-spoofing of port {ports['web'].id}"), spoofed
        tagged = trace(ip["web"], ip["db"], "icmp", vlan=7)
        assert (tagged["verdict"], tagged["stage"]) == ("DROPPED", "classification"), tagged
        invalid = trace(ip["web"], ip["db"], "tcp/5432", state="invalid")
        assert (invalid["verdict"], invalid["stage"]) == \
            ("DROPPED", f"egress conntrack of port {ports['web'].id}"), invalid
        frames = {
            "real": ethernet(db_mac, web_mac, ETH_P_IP, icmp_echo(ip["web"], ip["db"], b"real")),
            "spoofed": ethernet(db_mac, web_mac, ETH_P_IP,
                                icmp_echo("10.6.0.250", ip["db"], b"spoofed")),
            "tagged": ethernet(db_mac, web_mac, ETH_P_IP,
                               icmp_echo(ip["web"], ip["db"], b"tagged"), [(ETH_P_8021Q, 7)]),
            "syn": ethernet(db_mac, web_mac, ETH_P_IP,
                            tcp_segment(ip["web"], ip["db"], 40001, 5432, TCP_SYN)),
            # a SYN+ACK that answers no connection: conntrack calls it invalid
            "syn-ack": ethernet(db_mac, web_mac, ETH_P_IP,
                                tcp_segment(ip["web"], ip["db"], 40002, 5432,
                                            TCP_SYN | TCP_ACK)),
        }
        with FrameTap(vms["web"].netns, "eth0") as out, \
                FrameTap(vms["db"].netns, "eth0") as at_db:
            for frame in frames.values():
                out.send(frame)
            seen = at_db.frames(1.0)
        arrived = {name for name, frame in frames.items()
                   if any(frame[14:].rstrip(b"\0") in f for f in seen)}
        assert arrived == {"real", "syn"}, arrived

        # per-rule counters: exactly the packets sent, kept across the agent's restart
        def counts(port_name):
            answer = query(sock, timeout=30, request={"command": "rules",
                                                      "port": ports[port_name].id})
            assert "error" not in answer, answer
            return {(r["group"], r["rule"] if CACHE_MODE else r["description"]):
                    (r["packets"], r["bytes"], r["shared"]) for r in answer["rules"]}

        icmp_in = (db.id, rule["db_icmp"] if CACHE_MODE else "IPv4 icmp")
        web_out = (web.id, rule["web_egress"] if CACHE_MODE else "IPv4")
        before_db, before_web = counts("db"), counts("web")
        assert vms["web"].exec(["ping", "-n", "-q", "-c", "5", "-i", "0.2", "-W", "1",
                                vms["db"].ip4]).returncode == 0
        after_db, after_web = counts("db"), counts("web")
        echo = 98  # bytes of an echo request frame: 14 Ethernet + 20 IP + 8 ICMP + 56
        assert after_db[icmp_in][:2] == (before_db[icmp_in][0] + 5,
                                         before_db[icmp_in][1] + 5 * echo), (before_db, after_db)
        assert after_web[web_out][:2] == (before_web[web_out][0] + 5,
                                          before_web[web_out][1] + 5 * echo)
        five_432 = (db.id, rule["db_5432"] if CACHE_MODE else "IPv4 tcp 5432 from group "
                    + web.id)
        assert after_db[five_432][2].startswith("conjunction "), after_db  # counted shared
        assert after_db[five_432][0] > 0  # web's connects above
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=15) == 0
        daemon = start_daemon(tmp_path, ovs_sandbox, transport_url, host, bridge, "threading")
        wait_for(lambda: _synced(sock), timeout=30, what="the restarted agent's first sync")
        assert counts("db")[icmp_in] == after_db[icmp_in]  # they live in the switch

        # a blocked connection: established and allowed, then its rule goes
        session = vms["web"].tcp_session(vms["db"].ip4, 5432)
        assert session.exchange()
        established = trace(ip["web"], ip["db"], "tcp/5432", state="established")
        assert established["verdict"] == "ALLOWED", established
        double.remove_rule(db.id, rule["db_5432"])
        wait_for(lambda: trace(ip["web"], ip["db"], "tcp/5432",
                               state="established")["verdict"] == "DROPPED",
                 what="the rule's removal reached the switch")
        blocked = trace(ip["web"], ip["db"], "tcp/5432", state="established")
        assert blocked["stage"] == f"blocked connection of port {ports['db'].id}", blocked
        assert not session.exchange(timeout=1)
        session.close()

        # the command itself: words, exit status, a clear error
        env = dict(os.environ)
        shown = subprocess.run([sys.executable, "-m", "dpagent.cmd.ctl", "trace", "--socket",
                                sock, "--from", ip["web"], "--to", ip["db"], "icmp"],
                               capture_output=True, text=True, env=env, check=False)
        assert shown.returncode == 0, shown.stderr
        assert "ALLOWED: delivered to port " + ports["db"].id in shown.stdout, shown.stdout
        dropped = subprocess.run([sys.executable, "-m", "dpagent.cmd.ctl", "trace", "--socket",
                                  sock, "--from", ip["mute"], "--to", ip["db"], "icmp"],
                                 capture_output=True, text=True, env=env, check=False)
        assert dropped.returncode == 3, dropped
        assert f"DROPPED at egress rules of port {ports['mute'].id}" in dropped.stdout
        unknown = subprocess.run([sys.executable, "-m", "dpagent.cmd.ctl", "trace", "--socket",
                                  sock, "--from", "10.6.0.77", "--to", ip["db"], "icmp"],
                                 capture_output=True, text=True, env=env, check=False)
        assert unknown.returncode == 1 and "no port of this host is '10.6.0.77'" in \
            unknown.stderr, unknown
    finally:
        clean_up(daemon, ovs_sandbox, bridge)


def _synced(sock: str) -> bool:
    try:
        return bool(query(sock).get("last_sync"))
    except OSError:
        return False

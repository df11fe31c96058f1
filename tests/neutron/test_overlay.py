"""Tenant overlay networks (issue 14) against a real neutron-server 29 with l2population.

Two hosts (``overlay_rig``): each an OVS of its own whose ovs-vswitchd runs in its own
namespace, joined by one underlay cable (``dpagent.lab.underlay``), each running its own
dpagent daemon (``tunnel_types = vxlan, geneve``, ``l2_population``, ``arp_responder``,
``local_ip`` = its underlay address).  VMs are namespaces plugged as os-vif does.  The tests
share the two hosts; each makes its own networks and leaves no port behind.

Covered: both agents' tunnel endpoint at the server; ping and TCP across the hosts over VXLAN
and Geneve, the VNI on the wire; isolation of two networks of one subnet; a remote-group rule
whose member is on the other host; l2population's tunnel, flood, unicast and ARP responder
flows (and a trace and a real ARP answered on the host) coming and going; a local VLAN given
again after its network left; a restart of either agent under a 20 ms pinger.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from dpagent.daemon.status import query
from dpagent.lab.netns import NetnsVM
from dpagent.lab.neutron_server import NeutronAPI
from dpagent.lab.underlay import GENEVE_UDP_PORT, VXLAN_UDP_PORT, UnderlayCapture
from dpagent.overlay.naming import tunnel_port_name
from flows.cookies import LEARNED_COOKIE
from tests.neutron.conftest import OVERLAY_TUNNEL_TYPES, NeutronAgent, OverlayRig
from tests.neutron.polling import (
    Pinger,
    agent_records,
    wait_for,
    wait_ping,
    wait_ports_status,
    wait_tcp,
)
from tests.neutron.test_neutron_server import EGRESS_ALL, ICMP_IN, group

UDP_PORT = {"vxlan": VXLAN_UDP_PORT, "geneve": GENEVE_UDP_PORT}
TCP_IN = {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
          "port_range_min": 7000, "port_range_max": 7000}
ETH_P_ARP = 0x0806


class Tenant:
    """A test's networks, ports and VMs on the rig's hosts; :meth:`clean_up` removes them."""

    def __init__(self, api: NeutronAPI, rig: OverlayRig) -> None:
        self.api, self.rig = api, rig
        self.networks: list[dict[str, Any]] = []
        self.vms: list[tuple[NeutronAgent, NetnsVM]] = []

    def network(self, network_type: str, cidr: str) -> dict[str, Any]:
        net = self.api.create_network(f"ovl-{uuid.uuid4().hex[:6]}", network_type)
        self.networks.append(net)
        net["subnet"] = self.api.create_subnet(net["id"], cidr)
        return net

    def port(self, net: dict[str, Any], host: int, groups: list[dict[str, Any]],
             ip: str | None = None) -> dict[str, Any]:
        attrs: dict[str, Any] = {}
        if ip is not None:
            attrs["fixed_ips"] = [{"subnet_id": net["subnet"]["id"], "ip_address": ip}]
        return self.api.create_port(net["id"], host=self.rig.hosts[host].host,
                                    security_groups=[g["id"] for g in groups], **attrs)

    def vm(self, net: dict[str, Any], host: int, port: dict[str, Any], name: str) -> NetnsVM:
        """A VM for ``port`` on host ``host``, its MTU the network's (as DHCP would set it)."""
        agent = self.rig.hosts[host]
        vm = agent.plug(port, name)
        self.vms.append((agent, vm))
        vm.exec(["ip", "link", "set", "eth0", "mtu", str(net["mtu"])])
        return vm

    def vms_on(self, net: dict[str, Any], groups: list[dict[str, Any]],
               names: list[tuple[str, int]]) -> tuple[list[dict[str, Any]], list[NetnsVM]]:
        """Ports of ``groups`` on ``net``, one per (name, host), plugged; returns once all are
        ACTIVE (seconds it took: ``self.active_after``)."""
        ports = [self.port(net, host, groups) for _, host in names]
        started = time.monotonic()
        vms = [self.vm(net, host, port, name)
               for port, (name, host) in zip(ports, names, strict=True)]
        wait_ports_status(self.api, [p["id"] for p in ports], "ACTIVE", timeout=30)
        self.active_after = time.monotonic() - started
        return ports, vms

    def clean_up(self) -> None:
        """VMs, ports and networks go; then :meth:`settled` waits for the hosts to follow."""
        for agent, vm in reversed(self.vms):
            vm.destroy()
            agent.vms.remove(vm)
        for net in self.networks:
            for port in self.api.get(f"/v2.0/ports?network_id={net['id']}")["ports"]:
                self.api.delete_port(port["id"])
            self.api.delete(f"/v2.0/networks/{net['id']}")
        self.settled()

    def settled(self) -> None:
        """The next test starts from hosts without tunnels (l2population removes them)."""
        try:
            wait_for(lambda: not any(tunnel_ports(h) for h in self.rig.hosts), 15,
                     what="the tunnel ports gone")
        except AssertionError as exc:
            left = {h.host: tunnel_ports(h) for h in self.rig.hosts}
            raise AssertionError(f"{exc}: {left}") from None


@pytest.fixture
def tenant(neutron_api: NeutronAPI, overlay_rig: OverlayRig) -> Iterator[Tenant]:
    made = Tenant(neutron_api, overlay_rig)
    try:
        yield made
    finally:
        made.clean_up()


# -- reading a host's br-tun ----------------------------------------------------------------


def tunnel_ports(host: NeutronAgent) -> list[str]:
    return sorted(p for p in host.sandbox.vsctl("list-ports", "br-tun").split()
                  if p != "patch-int")


def br_tun(host: NeutronAgent) -> set[str]:
    """br-tun's flows, without what OVS learned (those belong to the traffic)."""
    learned = f"cookie={LEARNED_COOKIE:#x},"
    return {f for f in host.sandbox.dump_flows("br-tun") if not f.startswith(learned)}


def local_vlan(host: NeutronAgent, vm: NetnsVM) -> int:
    return int(host.sandbox.vsctl("get", "Port", vm.tap, "tag").strip())


def overlay_status(host: NeutronAgent) -> dict[str, Any]:
    """The status socket's ``overlay`` section ({} while the daemon is still starting)."""
    status: dict[str, Any] = query(str(host.status_socket)).get("overlay", {})
    return status


def mac_value(mac: str) -> str:
    """A MAC as ovs-ofctl prints a value loaded into a field (``0xfa163e000001``)."""
    return hex(int(mac.replace(":", ""), 16))


def into_tunnel(vni: int, ofport: int) -> str:
    """The actions of a flow sending a frame into tunnel ``ofport`` with ``vni``, as dumped."""
    return f"strip_vlan,load:{vni:#x}->NXM_NX_TUN_ID[],output:{ofport}"


def fdb_flows(host: NeutronAgent, vlan: int, mac: str, ip: str) -> dict[str, list[str]]:
    """The unicast (table 20) and ARP responder (table 21) flows of host's br-tun for a remote
    port (``mac``, ``ip``) of the network on local VLAN ``vlan``."""
    flows = br_tun(host)
    return {"unicast": [f for f in flows if "table=20," in f and f"dl_vlan={vlan}," in f
                        and f"dl_dst={mac}" in f],
            "arp": [f for f in flows if "table=21," in f and f"dl_vlan={vlan}," in f
                    and f"arp_tpa={ip}" in f]}


def flood_flow(host: NeutronAgent, vlan: int) -> list[str]:
    return [f for f in br_tun(host) if "table=22," in f and f"dl_vlan={vlan} " in f]


def learned_on(host: NeutronAgent, vlan: int) -> list[str]:
    """The flows host's br-tun learned on local VLAN ``vlan``."""
    learned = f"cookie={LEARNED_COOKIE:#x},"
    return [f for f in host.sandbox.dump_flows("br-tun") if f.startswith(learned)
            and f"vlan_tci={vlan:#06x}/0x0fff," in f]


def tenant_port_of(api: NeutronAPI, net: dict[str, Any], host: str) -> str:
    """The id of ``net``'s one port bound to ``host``."""
    (port,) = [p for p in api.get(f"/v2.0/ports?network_id={net['id']}")["ports"]
               if p["binding:host_id"] == host]
    port_id: str = port["id"]
    return port_id


def exchange(client: NetnsVM, server: NetnsVM, port: int) -> None:
    """A TCP connection from ``client`` to ``server`` carries three echoed lines."""
    listener = server.tcp_listen(port)
    try:
        session = client.tcp_session(server.ip4, port)
        assert session.connected, f"tcp {client.ip4} -> {server.ip4}:{port}"
        assert session.exchange() and session.exchange() and session.exchange()
        session.close()
    finally:
        listener.stop()


# -- the tests -------------------------------------------------------------------------------


def test_both_agents_report_their_tunnel_endpoint(neutron_api, overlay_rig):
    for index, host in enumerate(overlay_rig.hosts):
        (record,) = agent_records(neutron_api, host.host)
        config = record["configurations"]
        assert record["alive"] is True
        assert config["tunnel_types"] == list(OVERLAY_TUNNEL_TYPES), config
        assert config["tunneling_ip"] == overlay_rig.local_ip(index), config
        assert config["l2_population"] is True and config["arp_responder_enabled"] is True
        sandbox = host.sandbox
        assert sandbox.vsctl("get", "Bridge", "br-tun", "datapath_type").strip() == "netdev"
        assert sandbox.vsctl("get", "Bridge", "br-tun", "fail_mode").strip() == "secure"
        assert sandbox.vsctl("get", "Interface", "patch-int", "options:peer").strip() == \
            "patch-tun"
        assert "patch-tun" in sandbox.vsctl("list-ports", host.bridge).split()
        assert overlay_status(host)["error"] == ""


@pytest.mark.parametrize("network_type", ["vxlan", "geneve"])
def test_vms_on_both_hosts_ping_and_talk_tcp_over_the_tunnel(network_type, neutron_api,
                                                             overlay_rig, tenant):
    net = tenant.network(network_type, "10.41.0.0/24")
    vni = net["provider:segmentation_id"]
    sg = group(neutron_api, "ovl", ICMP_IN, TCP_IN, EGRESS_ALL)
    ports, (vm1, vm2) = tenant.vms_on(net, [sg], [("a1", 0), ("a2", 1)])
    print(f"\n{network_type} (VNI {vni}): 2 ports ACTIVE {tenant.active_after:.2f} s after "
          "the plug")

    capture = overlay_rig.underlay.capture(0, f"udp port {UDP_PORT[network_type]}")
    wait_ping(vm1, vm2.ip4)
    assert vm2.ping(vm1.ip4)
    exchange(vm1, vm2, 7000)
    exchange(vm2, vm1, 7000)
    packets = capture.packets()
    vms = {vm1.ip4, vm2.ip4}
    between = [p for p in packets if p.inner is not None and
               {p.inner.ip_src, p.inner.ip_dst} == vms]
    assert between, packets
    assert {p.tunnel for p in between} == {network_type}
    assert {p.udp_dst for p in between} == {UDP_PORT[network_type]}
    assert {p.vni for p in between} == {vni}, [p.vni for p in between]
    assert {p.inner.ip_proto for p in between if p.inner} >= {1, 6}  # ICMP and TCP
    ends = {overlay_rig.local_ip(0), overlay_rig.local_ip(1)}
    assert all({p.outer.ip_src, p.outer.ip_dst} == ends for p in between)
    for host in overlay_rig.hosts:
        status = overlay_status(host)
        assert status["networks"] == {net["id"]: vni}, status
        other = overlay_rig.local_ip(1 - overlay_rig.hosts.index(host))
        assert list(status["tunnels"]) == [f"{network_type}:{other}"], status
        assert tunnel_ports(host) == [tunnel_port_name(network_type, other)]
    print(f"{network_type}: {len(between)} packets on the wire, VNI {vni}; br-tun flows "
          f"{[overlay_status(h)['flows_installed'] for h in overlay_rig.hosts]}")
    # dpagent-ctl trace follows the packet through the patch port into br-tun and out of
    # the tunnel to the other host
    answer = query(str(overlay_rig.hosts[0].status_socket), timeout=30, request={
        "command": "trace", "from": ports[0]["id"], "to": vm2.ip4, "service": "tcp/7000",
        "dst_mac": vm2.mac})
    assert answer.get("verdict") == "ALLOWED", answer
    assert f"a tunnel to {overlay_rig.local_ip(1)}" in answer["outputs"], answer
    assert any(step["bridge"] == "br-tun" for step in answer["steps"]), answer["steps"]
    # a full-size packet of the network's MTU crosses without fragments
    full = vm1.exec(["ping", "-n", "-q", "-c", "1", "-W", "1", "-M", "do",
                     "-s", str(net["mtu"] - 28), vm2.ip4])
    assert full.returncode == 0, full.stdout + full.stderr


def test_a_vm_of_another_network_reaches_neither_vm_of_the_first(neutron_api, overlay_rig,
                                                                 tenant):
    """Two VXLAN networks with the same subnet: only the VNI keeps them apart."""
    sg = group(neutron_api, "ovl", ICMP_IN, EGRESS_ALL)
    net_a, net_b = tenant.network("vxlan", "10.43.0.0/24"), tenant.network("vxlan",
                                                                          "10.43.0.0/24")
    placed = {("a1", 0): (net_a, "10.43.0.11"), ("a2", 1): (net_a, "10.43.0.12"),
              ("b1", 0): (net_b, "10.43.0.21"), ("b2", 1): (net_b, "10.43.0.22")}
    ports = {name: tenant.port(net, host, [sg], ip)
             for (name, host), (net, ip) in placed.items()}
    vms = {name: tenant.vm(net, host, ports[name], name)
           for (name, host), (net, _) in placed.items()}
    wait_ports_status(neutron_api, [p["id"] for p in ports.values()], "ACTIVE", timeout=30)
    wait_ping(vms["a1"], vms["a2"].ip4)
    wait_ping(vms["b2"], vms["b1"].ip4)  # b2 is up and reaches its own network

    capture = overlay_rig.underlay.capture(0, "udp port 4789")
    for target in ("a1", "a2"):
        assert not vms["b2"].ping(vms[target].ip4, timeout=1), target
    assert not vms["a1"].ping(vms["b2"].ip4, timeout=1)
    crossing = [p for p in capture.packets() if p.inner is not None]
    vni_a, vni_b = net_a["provider:segmentation_id"], net_b["provider:segmentation_id"]
    # b2's ARP for a1 crossed under B's VNI, a1's for b2 under A's: neither was delivered
    assert {p.vni for p in crossing if p.inner and p.inner.ip_src == vms["b2"].ip4} == {vni_b}
    assert {p.vni for p in crossing if p.inner and p.inner.ip_src == vms["a1"].ip4} == {vni_a}
    for name in ("a1", "a2"):  # never answered for: at most INCOMPLETE
        assert "lladdr" not in vms[name].exec(["ip", "neigh", "show", vms["b2"].ip4]).stdout
    assert "lladdr" not in vms["b2"].exec(["ip", "neigh", "show", vms["a1"].ip4]).stdout


def test_a_remote_group_member_on_the_other_host_is_let_in(neutron_api, overlay_rig, tenant):
    """db (host 1) lets tcp/5432 in from group app only; app's member and a VM without the
    group are both on host 2: the member's address reaches host 1 through the server."""
    net = tenant.network("vxlan", "10.44.0.0/24")
    app = group(neutron_api, "app", EGRESS_ALL)
    plain = group(neutron_api, "plain", EGRESS_ALL)
    db = group(neutron_api, "db", ICMP_IN, EGRESS_ALL,
               {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                "port_range_min": 5432, "port_range_max": 5432, "remote_group_id": app["id"]})
    _, (db_vm,) = tenant.vms_on(net, [db], [("db", 0)])
    _, (cli,) = tenant.vms_on(net, [plain], [("cli", 1)])
    db_vm.tcp_listen(5432)
    wait_ping(cli, db_vm.ip4)
    assert not cli.tcp_connect(db_vm.ip4, 5432, timeout=1)

    started = time.monotonic()
    _, (member,) = tenant.vms_on(net, [app], [("app", 1)])
    wait_tcp(member, db_vm.ip4, 5432, allowed=True)
    print(f"\nremote group across hosts: member let in {time.monotonic() - started:.2f} s "
          "after its port was made")
    assert not cli.tcp_connect(db_vm.ip4, 5432, timeout=1)
    assert member.tcp_connect(db_vm.ip4, 5432)


def test_l2population_programs_the_remote_ports_and_removes_the_last(neutron_api, overlay_rig,
                                                                     tenant):
    h1, h2 = overlay_rig.hosts
    net = tenant.network("vxlan", "10.45.0.0/24")
    vni = net["provider:segmentation_id"]
    sg = group(neutron_api, "ovl", ICMP_IN, EGRESS_ALL)
    _, (x1,) = tenant.vms_on(net, [sg], [("x1", 0)])
    vlan = local_vlan(h1, x1)
    tunnel = tunnel_port_name("vxlan", overlay_rig.local_ip(1))
    assert tunnel_ports(h1) == [] and flood_flow(h1, vlan) == []  # nobody else on the network

    # the network's first port on host 2: host 1 gets a tunnel to it, floods to it, and
    # knows the port's MAC and IP
    before = br_tun(h1)
    (y_port,), (y2,) = tenant.vms_on(net, [sg], [("y2", 1)])
    active = time.monotonic()
    wait_for(lambda: all(fdb_flows(h1, vlan, y2.mac, y2.ip4).values()), 10,
             what="host 1's unicast and ARP responder flows for y2")
    programmed = time.monotonic() - active
    assert tunnel_ports(h1) == [tunnel]
    ofport = h1.sandbox.ofport(tunnel)
    flows = fdb_flows(h1, vlan, y2.mac, y2.ip4)
    assert len(flows["unicast"]) == 1 and flows["unicast"][0].endswith(
        f"actions={into_tunnel(vni, ofport)}"), flows
    assert len(flows["arp"]) == 1, flows
    assert f"load:{mac_value(y2.mac)}->NXM_NX_ARP_SHA[]" in flows["arp"][0], flows
    assert flows["arp"][0].endswith(f"mod_dl_src:{y2.mac},IN_PORT"), flows
    (flood,) = flood_flow(h1, vlan)
    assert flood.endswith(f"actions={into_tunnel(vni, ofport)}"), flood
    first = br_tun(h1)
    print(f"\nl2pop: host 1 programmed {programmed:.2f} s after y2 was ACTIVE; first remote "
          f"port: {len(first - before)} flows added, {len(before - first)} removed on host 1")

    # what host 1's br-tun does with an ARP request for y2 from the network's VLAN: answers it
    patch_int = h1.sandbox.ofport("patch-int")
    trace = h1.sandbox.appctl(
        "ofproto/trace", "br-tun",
        f"in_port={patch_int},dl_vlan={vlan},dl_src={x1.mac},dl_dst=ff:ff:ff:ff:ff:ff,arp,"
        f"arp_op=1,arp_spa={x1.ip4},arp_tpa={y2.ip4},arp_sha={x1.mac},"
        "arp_tha=00:00:00:00:00:00")
    assert f"21. arp,dl_vlan={vlan},arp_tpa={y2.ip4},arp_op=1" in trace, trace
    assert f"set_field:{y2.mac}->arp_sha" in trace and "IN_PORT" in trace, trace
    assert "tun_id" not in trace.split("21. ")[1], trace  # nothing into a tunnel
    final = trace.split("Final flow:")[1].splitlines()[0]
    assert f"dl_src={y2.mac},dl_dst={x1.mac}" in final and "arp_op=2" in final, final
    assert f"arp_sha={y2.mac},arp_tha={x1.mac}" in final, final
    assert f"-> output port is {x1.ofport}" in trace, trace  # back through br-int to x1

    # a real ARP from x1 is answered on host 1: nothing ARPs across the tunnel
    for vm in (x1, y2):
        vm.exec(["ip", "neigh", "flush", "dev", "eth0"])
    capture = overlay_rig.underlay.capture(0, "udp port 4789")
    assert x1.ping(y2.ip4)
    crossing = [p for p in capture.packets() if p.inner is not None]
    assert [p for p in crossing if p.inner and p.inner.ip_proto == 1], crossing  # the ping
    assert not [p for p in crossing if p.inner and p.inner.ethertype == ETH_P_ARP], crossing
    assert y2.mac in x1.exec(["ip", "neigh", "show", y2.ip4]).stdout

    # a second port on host 2: its MAC and IP only, two flows on host 1
    (z_port,), (z2,) = tenant.vms_on(net, [sg], [("z2", 1)])
    wait_for(lambda: all(fdb_flows(h1, vlan, z2.mac, z2.ip4).values()), 10,
             what="host 1's flows for z2")
    time.sleep(0.5)  # the server casts each entry twice: the second must change nothing
    second = br_tun(h1)
    print(f"l2pop: second remote port: {len(second - first)} flows added, "
          f"{len(first - second)} removed on host 1")
    assert (len(second - first), len(first - second)) == (2, 0), (second ^ first)
    assert x1.ping(z2.ip4)

    # removing it takes its two flows
    neutron_api.delete_port(z_port["id"])
    wait_for(lambda: not any(fdb_flows(h1, vlan, z2.mac, z2.ip4).values()), 10,
             what="host 1's flows for z2 gone")
    assert br_tun(h1) == first

    # a second network on both hosts shares the tunnel; removing the last port of the first
    # one on host 2 takes that network's flooding to host 2 and y2's flows, not the tunnel
    other = tenant.network("vxlan", "10.47.0.0/24")
    _, (u1, u2) = tenant.vms_on(other, [sg], [("u1", 0), ("u2", 1)])
    other_vlan = local_vlan(h1, u1)
    wait_for(lambda: flood_flow(h1, other_vlan), 10, what="host 1 flooding the second network")
    wait_ping(u1, u2.ip4)
    started = time.monotonic()
    neutron_api.delete_port(y_port["id"])
    wait_for(lambda: not flood_flow(h1, vlan), 10, what="host 1's flooding to host 2 gone")
    print(f"l2pop: last port of the network on host 2 deleted: host 1's flooding to it gone "
          f"after {time.monotonic() - started:.2f} s")
    assert not any(fdb_flows(h1, vlan, y2.mac, y2.ip4).values())
    assert tunnel_ports(h1) == [tunnel] and h1.sandbox.ofport(tunnel) == ofport
    assert flood_flow(h1, other_vlan)[0].endswith(
        f"actions={into_tunnel(other['provider:segmentation_id'], ofport)}")
    assert u1.ping(u2.ip4)

    # ... and once no network uses the tunnel, it goes with every flow naming it
    neutron_api.delete_port(tenant_port_of(neutron_api, other, h2.host))
    wait_for(lambda: not tunnel_ports(h1), 10, what="host 1's tunnel to host 2 gone")
    assert not [f for f in br_tun(h1) if f"output:{ofport}" in f or f"in_port={ofport}" in f]
    assert not flood_flow(h1, other_vlan) and not flood_flow(h1, vlan)
    assert overlay_status(h1)["tunnels"] == {}
    assert br_tun(h1) - before == {f for f in br_tun(h1) if "table=4," in f and
                                   f"tun_id={other['provider:segmentation_id']:#x}" in f}


def test_a_local_vlan_given_again_carries_nothing_of_the_network_that_left(
        neutron_api, overlay_rig, tenant):
    """Network A leaves host 1 (it stays on host 2, and network C keeps the tunnel between
    them); network B gets A's local VLAN on host 1. What host 1 learned of A's MACs must not
    stay behind: neutron's agent reclaims a VLAN with every UCAST_TO_TUN flow of it, learned
    ones included (``delete_unicast_to_tun(vlan, None)``). Else a frame of B's VM to one of A's
    MACs leaves host 1 under A's VNI and is delivered in A on host 2."""
    h1 = overlay_rig.hosts[0]
    sg = group(neutron_api, "ovl", ICMP_IN, EGRESS_ALL)
    net_a, net_c = tenant.network("vxlan", "10.48.0.0/24"), tenant.network("vxlan",
                                                                          "10.49.0.0/24")
    (a1_port, _), (a1, a2) = tenant.vms_on(net_a, [sg], [("a1", 0), ("a2", 1)])
    _, (c1, c2) = tenant.vms_on(net_c, [sg], [("c1", 0), ("c2", 1)])
    vlan_a = local_vlan(h1, a1)
    wait_ping(a1, a2.ip4)
    wait_ping(c1, c2.ip4)
    wait_for(lambda: learned_on(h1, vlan_a), 5, what="host 1 learning a2 from the tunnel")

    neutron_api.delete_port(a1_port["id"])  # A's last port on host 1
    wait_for(lambda: net_a["id"] not in overlay_status(h1).get("networks", {net_a["id"]: 0}),
             10, what="network A gone from host 1's overlay")
    net_b = tenant.network("vxlan", "10.48.0.0/24")
    _, (b1,) = tenant.vms_on(net_b, [sg], [("b1", 0)])
    assert local_vlan(h1, b1) == vlan_a  # the lowest free VLAN: A's
    stale = learned_on(h1, vlan_a)

    capture = overlay_rig.underlay.capture(0, "udp port 4789")
    with UnderlayCapture(a2.netns, "eth0", f"icmp and src host {b1.ip4}") as in_a2:
        b1.exec(["ip", "neigh", "replace", a2.ip4, "lladdr", a2.mac, "dev", "eth0",
                 "nud", "permanent"])
        b1.exec(["ping", "-n", "-q", "-c", "3", "-i", "0.2", "-W", "1", a2.ip4])
        received = in_a2.packets()
    leaked = [p for p in capture.packets() if p.inner is not None and
              p.inner.ip_src == b1.ip4]  # under any VNI: B's own peer is not on host 2
    assert not stale and not leaked and not received


def test_restart_of_either_agent_loses_no_ping_across_the_tunnel(neutron_api, overlay_rig,
                                                                 tenant):
    net = tenant.network("vxlan", "10.46.0.0/24")
    sg = group(neutron_api, "ovl", ICMP_IN, EGRESS_ALL)
    ports, (vm1, vm2) = tenant.vms_on(net, [sg], [("r1", 0), ("r2", 1)])
    wait_ping(vm1, vm2.ip4)
    for index, host in enumerate(overlay_rig.hosts):
        flows = br_tun(host)
        pinger = Pinger(vm1, vm2.ip4, 10_000, interval=0.02)
        time.sleep(0.5)
        started = time.monotonic()
        host.stop()
        host.start()
        wait_for(lambda h=host: overlay_status(h).get("deferred_takeover") is False, 20,
                 what=f"host {index + 1}'s br-tun taken over again")
        taken_over = time.monotonic() - started
        # the daemon's first sync (every port fetched: BUILD, then reported up) was over
        # seconds before the takeover, which waits for the forwarding entries to settle
        wait_ports_status(neutron_api, [p["id"] for p in ports], "ACTIVE", timeout=20)
        time.sleep(0.5)
        lost, sent = pinger.stop()
        after = br_tun(host)
        print(f"\nrestart of host {index + 1}: br-tun taken over {taken_over:.2f} s after the "
              f"SIGTERM; {lost}/{sent} pings lost; br-tun {len(after - flows)} flows added, "
              f"{len(flows - after)} removed")
        assert lost == 0, pinger.unanswered
        assert after == flows, after ^ flows

"""Tenant overlays *without* l2population against the real neutron-server 29 (issue 14, items
3 and 4): flood to every endpoint, learn.

Two hosts as in ``overlay_rig`` (each an OVS of its own on one underlay, each its own dpagent
daemon, ``tunnel_types = vxlan, geneve``), but with ``l2_population = false`` and
``arp_responder = false``: every tunnel endpoint the server knows gets a tunnel port (from the
agent's ``tunnel_sync`` at start and the server's ``tunnel_update`` fanout), every network of
that type floods to all of them (table 22), and what comes back through a tunnel is learned
(table 10 into table 20). A third endpoint is played by a probe calling ``tunnel_sync`` over
RPC itself, as tools/record_overlay_contract.py does, then moved to another IP, which the
server announces with ``tunnel_delete`` of the old IP (recording overlay/90); a ``gre``
endpoint, a type these hosts do not have, is announced to them and must be ignored.

What the server knows of the endpoints is read from its database (``ml2_<type>_endpoints``,
only ``tunnel_sync`` writes them); the probe's rows are deleted at the end, so that no later
agent of the session tunnels to an endpoint that never existed.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from oslo_config import cfg

from dpagent.lab.neutron_server import NeutronAPI, NeutronServer
from dpagent.lab.ovs_sandbox import REQUIRED_BINARIES as OVS_BINARIES
from dpagent.lab.ovs_sandbox import OVSSandbox
from dpagent.lab.underlay import Underlay
from dpagent.overlay.naming import tunnel_port_name
from dpagent.rpc import topics
from dpagent.rpc import transport as rpc_transport
from flows.cookies import LEARNED_COOKIE
from tests.conftest import _require
from tests.neutron.conftest import OVERLAY_CONF, NeutronAgent, OverlayRig, _stop_hosts
from tests.neutron.polling import (
    Pinger,
    agent_records,
    wait_agent_alive,
    wait_for,
    wait_ping,
    wait_ports_status,
)
from tests.neutron.test_neutron_server import EGRESS_ALL, ICMP_IN, group
from tests.neutron.test_overlay import (
    ETH_P_ARP,
    TCP_IN,
    UDP_PORT,
    Tenant,
    br_tun,
    exchange,
    flood_flow,
    learned_on,
    local_vlan,
    overlay_status,
    tunnel_ports,
)

TUNNEL_TYPES = ("vxlan", "geneve")
PROBE_IP, PROBE_NEW_IP = "192.0.2.9", "192.0.2.10"  # on the underlay's subnet, nobody there
TUN_TABLE = {"vxlan": 4, "geneve": 6}


@dataclass
class FloodingRig(OverlayRig):
    """``overlay_rig``'s two hosts without l2population. ``tunnel_after[i]``: seconds from
    host 2's daemon start until host ``i`` had its tunnel ports to the other host (one per
    type); ``before_peer[0]``: host 1's tunnel ports once its own tunnel_sync was done, just
    before host 2 started (ports to host 2's address only if the server still had it from
    an earlier rig of the session)."""

    tunnel_after: dict[int, float] = field(default_factory=dict)
    before_peer: dict[int, list[str]] = field(default_factory=dict)


def peer_ports(rig: OverlayRig, index: int) -> list[str]:
    """The tunnel ports host ``index`` should have to the other host."""
    other = rig.local_ip(1 - index)
    return sorted(tunnel_port_name(t, other) for t in TUNNEL_TYPES)


@pytest.fixture(scope="module")
def flooding_rig(neutron_server: NeutronServer,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[FloodingRig]:
    """Host 1 started first, host 2 once host 1 is up: how long each took to tunnel to the
    other is measured from host 2's start (host 2's tunnel_sync makes the server announce it
    to host 1; host 2's own tunnel_sync reply holds host 1)."""
    _require("a two-host overlay rig", [*OVS_BINARIES, "ethtool", "ping", "tcpdump"])
    with contextlib.ExitStack() as stack:
        started = time.monotonic()
        sandboxes = [stack.enter_context(OVSSandbox()) for _ in range(2)]
        underlay = stack.enter_context(Underlay(sandboxes))
        base = tmp_path_factory.mktemp("flooding")
        hosts: list[NeutronAgent] = []
        stack.callback(_stop_hosts, hosts)
        rig = FloodingRig(underlay, hosts, 0.0)
        host2_started = 0.0
        for index, sandbox in enumerate(sandboxes):
            directory = base / f"host{index + 1}"
            directory.mkdir()
            extra = OVERLAY_CONF.format(
                l2_population="false", arp_responder="false",
                tunnel_types=", ".join(TUNNEL_TYPES), local_ip=underlay.local_ip(index))
            if index == 1:
                rig.before_peer = {0: tunnel_ports(hosts[0])}
                host2_started = time.monotonic()
            hosts.append(NeutronAgent(sandbox, neutron_server, directory, f"compute{index + 1}",
                                      {"report_interval": 1, "extra": extra}))
            wait_for(lambda h=hosts[-1]: overlay_status(h).get("error") == "", 20,
                     what=f"host {index + 1}'s br-tun set up")
            if index == 0:  # its tunnel_sync done: it can learn of host 2 by tunnel_update only
                wait_for(lambda h=hosts[0]: all(
                    server_endpoints(neutron_server, t).get(underlay.local_ip(0)) == h.host
                    for t in TUNNEL_TYPES), 20, what="host 1's endpoints at the server")
        end = time.monotonic() + 20
        while len(rig.tunnel_after) < 2 and time.monotonic() < end:
            for index in range(2):
                if index not in rig.tunnel_after and \
                        set(peer_ports(rig, index)) <= set(tunnel_ports(hosts[index])):
                    rig.tunnel_after[index] = time.monotonic() - host2_started
            time.sleep(0.05)
        for host in hosts:
            wait_agent_alive(neutron_server.api, host.host)
        rig.setup_seconds = time.monotonic() - started
        print(f"\ntwo-host flooding rig (OVS, underlay, 2 dpagents alive) in "
              f"{rig.setup_seconds:.1f} s; tunnel ports to the other host "
              f"{ {i + 1: round(s, 2) for i, s in rig.tunnel_after.items()} } s after host 2 "
              f"started; host 1's before: {rig.before_peer[0]}")
        yield rig


# -- the server's side ----------------------------------------------------------------------


def server_endpoints(server: NeutronServer, tunnel_type: str) -> dict[str, str | None]:
    """IP -> host of every ``tunnel_type`` endpoint in the server's database."""
    assert server.directory is not None
    out = subprocess.run(
        ["mariadb", "--no-defaults", f"--socket={server.directory / 'mysql.sock'}", "-uroot",
         "-N", "-B", "-e", f"SELECT ip_address, host FROM neutron.ml2_{tunnel_type}_endpoints"],
        check=True, capture_output=True, text=True).stdout
    rows = (line.split("\t") for line in out.splitlines() if line.strip())
    return {ip: (None if host == "NULL" else host) for ip, host in rows}


class Probe:
    """A fake OVS agent's ``tunnel_sync`` calls to the server (exchange neutron, topic
    q-plugin, version 1.4, the stock agent's context), as the contract recorder makes them."""

    def __init__(self, server: NeutronServer) -> None:
        self.server = server
        self.transport = rpc_transport.make_transport(cfg.ConfigOpts(), server.transport_url)
        self.client = rpc_transport.rpc_client(self.transport, topics.PLUGIN, "1.0", 15)
        self.hosts: set[str] = set()

    def tunnel_sync(self, host: str, ip: str, tunnel_type: str) -> list[dict[str, Any]]:
        """Register ``host``'s endpoint; the server's list of every endpoint of the type."""
        self.hosts.add(host)
        reply = rpc_transport.call(self.client, "tunnel_sync",
                                   version=topics.TUNNEL_SYNC_VERSION, tunnel_ip=ip,
                                   tunnel_type=tunnel_type, host=host)
        tunnels: list[dict[str, Any]] = reply["tunnels"]
        return tunnels

    def forget(self) -> None:
        """Delete the probe hosts' endpoints from the server's database (no RPC does it)."""
        assert self.server.directory is not None
        hosts = ", ".join(f"'{h}'" for h in sorted(self.hosts))
        if hosts:
            sql = "; ".join(f"DELETE FROM neutron.ml2_{t}_endpoints WHERE host IN ({hosts})"
                            for t in ("vxlan", "geneve", "gre"))
            subprocess.run(["mariadb", "--no-defaults",
                            f"--socket={self.server.directory / 'mysql.sock'}", "-uroot",
                            "-e", sql], check=True, capture_output=True)

    def close(self) -> None:
        self.transport.cleanup()


@pytest.fixture(scope="module")
def probe(neutron_server: NeutronServer) -> Iterator[Probe]:
    made = Probe(neutron_server)
    try:
        yield made
    finally:
        made.close()
        made.forget()
    left = {t: [ip for ip, host in server_endpoints(neutron_server, t).items()
                if host in made.hosts] for t in ("vxlan", "geneve", "gre")}
    assert not any(left.values()), left


# -- the hosts' side ------------------------------------------------------------------------


class FloodingTenant(Tenant):
    """``test_overlay``'s Tenant; without l2population the tunnel ports stay when the
    networks go (they are the server's endpoints, not the networks')."""

    def settled(self) -> None:
        wait_for(lambda: not any(overlay_status(h).get("networks") for h in self.rig.hosts),
                 15, what="the networks gone from both overlays")


@pytest.fixture
def tenant(neutron_api: NeutronAPI, flooding_rig: FloodingRig) -> Iterator[FloodingTenant]:
    made = FloodingTenant(neutron_api, flooding_rig)
    try:
        yield made
    finally:
        made.clean_up()


def ctl_status(host: NeutronAgent) -> dict[str, Any]:
    """``dpagent-ctl status --json`` of the host's daemon."""
    ctl = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "dpagent-ctl"
    command = [str(ctl)] if ctl.exists() else ["python3", "-m", "dpagent.cmd.ctl"]
    out = subprocess.run([*command, "status", "--socket", str(host.status_socket), "--json"],
                         check=True, capture_output=True, text=True).stdout
    status: dict[str, Any] = json.loads(out)
    return status


def flood_outputs(host: NeutronAgent, vlan: int) -> list[int]:
    """The tunnel ofports the network on local VLAN ``vlan`` floods to (table 22)."""
    (flood,) = flood_flow(host, vlan)
    actions = flood.split("actions=")[1].split(",")
    return sorted(int(a.split(":")[1]) for a in actions if a.startswith("output:"))


def flows_naming(host: NeutronAgent, ofport: int) -> list[str]:
    """br-tun's flows (learned ones too) that match or output tunnel port ``ofport``."""
    return [f for f in host.sandbox.dump_flows("br-tun")
            if f"in_port={ofport}," in f or f"in_port={ofport} " in f
            or f"output:{ofport}," in f or f.endswith(f"output:{ofport}")]


def log_lines(host: NeutronAgent, *words: str) -> list[str]:
    return [line for line in host.log.read_text(errors="replace").splitlines()
            if all(w in line for w in words)]


def wait_all(hosts: list[NeutronAgent], predicate: Callable[[NeutronAgent], bool],
             timeout: float, what: str) -> float:
    """Wait until ``predicate`` holds on every host; returns the seconds it took."""
    started = time.monotonic()
    wait_for(lambda: all(predicate(h) for h in hosts), timeout, what=what, interval=0.05)
    return time.monotonic() - started


# -- the tests -------------------------------------------------------------------------------


def test_each_agent_syncs_at_start_and_tunnels_to_the_other_without_any_vm(
        neutron_server, neutron_api, flooding_rig):
    rig = flooding_rig
    for tunnel_type in TUNNEL_TYPES:  # only the agents' tunnel_sync writes these rows
        endpoints = server_endpoints(neutron_server, tunnel_type)
        for index, host in enumerate(rig.hosts):
            assert endpoints.get(rig.local_ip(index)) == host.host, (tunnel_type, endpoints)
    for index, host in enumerate(rig.hosts):
        (record,) = agent_records(neutron_api, host.host)
        config = record["configurations"]
        assert config["tunnel_types"] == list(TUNNEL_TYPES), config
        assert config["tunneling_ip"] == rig.local_ip(index), config
        assert config["l2_population"] is False, config
        assert config["arp_responder_enabled"] is False, config

        # a tunnel port per type to every endpoint the server knows but this host's own,
        # before any VM or network is here
        assert index in rig.tunnel_after, (index, tunnel_ports(host))
        wanted = {tunnel_port_name(t, ip) for t in TUNNEL_TYPES
                  for ip in server_endpoints(neutron_server, t) if ip != rig.local_ip(index)}
        assert set(peer_ports(rig, index)) <= wanted
        assert tunnel_ports(host) == sorted(wanted), tunnel_ports(host)
        sandbox = host.sandbox
        other = rig.local_ip(1 - index)
        status, ctl = overlay_status(host), ctl_status(host)["overlay"]
        assert status["error"] == "" and status["l2_population"] is False, status
        assert status["networks"] == {} and ctl["networks"] == {}, status
        flows = br_tun(host)
        for tunnel_type in TUNNEL_TYPES:
            name = tunnel_port_name(tunnel_type, other)
            assert name.startswith(f"{tunnel_type}-") and len(name.split("-")[1]) == 8
            ofport = sandbox.ofport(name)
            assert status["tunnels"][f"{tunnel_type}:{other}"] == ofport, status
            assert ctl["tunnels"][f"{tunnel_type}:{other}"] == ofport, ctl
            assert sandbox.vsctl("get", "Interface", name, "type").strip() == tunnel_type
            options = sandbox.vsctl("get", "Interface", name, "options").strip()
            for option in (f'remote_ip="{other}"', f'local_ip="{rig.local_ip(index)}"',
                           "in_key=flow", "out_key=flow"):
                assert option in options, options
            # what comes in through it is classified by type (table 0, which dumps omit;
            # an OpenFlow 1.0 dump shows goto_table as resubmit)
            table = TUN_TABLE[tunnel_type]
            assert [f for f in flows if "table=" not in f and f"in_port={ofport} " in f
                    and f.split("actions=")[1] in (f"goto_table:{table}", f"resubmit(,{table})")
                    ], flows
        assert not [f for f in flows if "table=21," in f], flows  # no ARP responder
        assert not [f for f in flows if "table=22," in f and "priority=1," in f], flows
        assert not [f for f in flows if "table=20," in f and "priority=2," in f], flows
    print(f"\nno l2population: tunnel ports to the other host "
          f"{ {i + 1: round(s, 2) for i, s in rig.tunnel_after.items()} } s after host 2 "
          f"started (host 1 had {rig.before_peer[0]} before it); br-tun flows "
          f"{[overlay_status(h)['flows_installed'] for h in rig.hosts]}")


@pytest.mark.parametrize("network_type", ["vxlan", "geneve"])
def test_a_network_floods_to_the_other_host_and_learns_its_vm(network_type, neutron_api,
                                                              flooding_rig, tenant):
    rig = flooding_rig
    h1, h2 = rig.hosts
    net = tenant.network(network_type, "10.51.0.0/24")
    vni = net["provider:segmentation_id"]
    sg = group(neutron_api, "flood", ICMP_IN, TCP_IN, EGRESS_ALL)
    before = br_tun(h1)
    _, (vm1, vm2) = tenant.vms_on(net, [sg], [("f1", 0), ("f2", 1)])
    vlans = [local_vlan(h1, vm1), local_vlan(h2, vm2)]
    for index, host in enumerate(rig.hosts):
        ofport = host.sandbox.ofport(tunnel_port_name(network_type, rig.local_ip(1 - index)))
        (flood,) = flood_flow(host, vlans[index])
        assert f"load:{vni:#x}->NXM_NX_TUN_ID[]" in flood, flood
        # every tunnel of the type: the other host's (and any other endpoint the server has)
        of_type = sorted(o for k, o in overlay_status(host)["tunnels"].items()
                         if k.startswith(f"{network_type}:"))
        assert ofport in of_type and flood_outputs(host, vlans[index]) == of_type, flood
        assert overlay_status(host)["networks"] == {net["id"]: vni}
    added = br_tun(h1) - before
    print(f"\n{network_type} (VNI {vni}) without l2population: ports ACTIVE "
          f"{tenant.active_after:.2f} s after the plug; host 1's br-tun +{len(added)} flows "
          f"(VNI in, flood out)")
    assert len(added) == 2 and len(before - br_tun(h1)) == 0, added

    for vm in (vm1, vm2):
        vm.exec(["ip", "neigh", "flush", "dev", "eth0"])
    capture = rig.underlay.capture(0, f"udp port {UDP_PORT[network_type]}")
    started = time.monotonic()
    wait_for(lambda: vm1.ping(vm2.ip4, timeout=1), 15, what=f"ping {vm2.ip4}", interval=0.3)
    first_ping = time.monotonic() - started
    assert vm2.ping(vm1.ip4)
    exchange(vm1, vm2, 7000)
    exchange(vm2, vm1, 7000)
    packets = [p for p in capture.packets() if p.inner is not None]
    # no responder: vm1's ARP request crossed the tunnel, flooded under the network's VNI
    arps = [p for p in packets if p.inner and p.inner.ethertype == ETH_P_ARP]
    assert arps and {p.vni for p in arps} == {vni}, packets
    assert [p for p in arps if p.inner and p.inner.eth_dst == "ff:ff:ff:ff:ff:ff"
            and p.inner.eth_src == vm1.mac and p.inner.ip_dst == vm2.ip4
            and (p.outer.ip_src, p.outer.ip_dst) == (rig.local_ip(0), rig.local_ip(1))], arps
    between = [p for p in packets if p.inner and {p.inner.ip_src, p.inner.ip_dst} ==
               {vm1.ip4, vm2.ip4}]
    assert {p.inner.ip_proto for p in between if p.inner} >= {1, 6}, between
    assert {p.vni for p in between} == {vni}

    # each host learned the other's VM from the tunnel: table 20, the learned cookie
    for index, (host, remote) in enumerate(((h1, vm2), (h2, vm1))):
        ofport = host.sandbox.ofport(tunnel_port_name(network_type, rig.local_ip(1 - index)))
        learned = [f for f in learned_on(host, vlans[index]) if f"dl_dst={remote.mac}" in f]
        assert len(learned) == 1, host.sandbox.dump_flows("br-tun")
        flow = learned[0]
        assert flow.startswith(f"cookie={LEARNED_COOKIE:#x},") and "table=20," in flow, flow
        assert "hard_timeout=300," in flow and "priority=1," in flow, flow
        assert f"load:{vni:#x}->NXM_NX_TUN_ID[]" in flow and flow.endswith(
            f"output:{ofport}"), flow
        flows = br_tun(host)
        assert not [f for f in flows if "table=21," in f], flows
        assert not [f for f in flows if "table=20," in f and "priority=2," in f], flows
    print(f"{network_type}: first ping {first_ping:.2f} s, {len(arps)} ARP frames flooded "
          f"across, {len(between)} ICMP/TCP packets under VNI {vni}; learned on host 1: "
          f"{len(learned_on(h1, vlans[0]))} flows")


def test_a_third_endpoint_is_flooded_to_and_goes_when_it_changes_its_ip(
        neutron_server, neutron_api, flooding_rig, tenant, probe):
    """compute9 (no OVS, no agent: the probe) registers 192.0.2.9: the server casts
    tunnel_update to both hosts; it moves to 192.0.2.10: tunnel_delete of .9, tunnel_update
    of .10 (as recorded in overlay/90)."""
    rig = flooding_rig
    hosts = rig.hosts
    h1 = hosts[0]
    compute9 = f"compute9-{uuid.uuid4().hex[:6]}"
    old, new = (tunnel_port_name("vxlan", ip) for ip in (PROBE_IP, PROBE_NEW_IP))
    net = tenant.network("vxlan", "10.52.0.0/24")
    sg = group(neutron_api, "flood", ICMP_IN, EGRESS_ALL)
    _, (vm1, vm2) = tenant.vms_on(net, [sg], [("t1", 0), ("t2", 1)])
    vlans = [local_vlan(hosts[0], vm1), local_vlan(hosts[1], vm2)]
    geneve = [[p for p in tunnel_ports(h) if p.startswith("geneve-")] for h in hosts]
    before = br_tun(h1)

    tunnels = probe.tunnel_sync(compute9, PROBE_IP, "vxlan")
    listed = {t["ip_address"]: t["host"] for t in tunnels}
    assert listed[PROBE_IP] == compute9, tunnels
    assert all(listed[rig.local_ip(i)] == h.host for i, h in enumerate(hosts)), tunnels
    assert {"host": compute9, "ip_address": PROBE_IP, "udp_port": 4789} in tunnels
    arrived = wait_all(hosts, lambda h: old in tunnel_ports(h), 10,
                       what=f"a tunnel port to {PROBE_IP} on both hosts")
    ofports = [h.sandbox.ofport(old) for h in hosts]
    flooding = wait_all(
        hosts, lambda h: ofports[hosts.index(h)] in flood_outputs(h, vlans[hosts.index(h)]),
        5, what=f"the network flooding to {PROBE_IP}")
    for index, host in enumerate(hosts):
        assert overlay_status(host)["tunnels"][f"vxlan:{PROBE_IP}"] == ofports[index]
        assert host.sandbox.vsctl("get", "Interface", old, "options:remote_ip").strip() == \
            f'"{PROBE_IP}"'
        peer = host.sandbox.ofport(tunnel_port_name("vxlan", rig.local_ip(1 - index)))
        assert {peer, ofports[index]} <= set(flood_outputs(host, vlans[index]))
    added = br_tun(h1)
    print(f"\ntunnel_update {PROBE_IP}: tunnel ports {arrived:.2f} s after the probe's "
          f"tunnel_sync returned, flooded to within {flooding:.2f} s more; host 1's br-tun "
          f"+{len(added - before)} -{len(before - added)} flows")
    # its port's classification in, the network's flood flow rewritten
    assert (len(added - before), len(before - added)) == (2, 1), added ^ before
    assert vm1.ping(vm2.ip4)  # a dead endpoint among the flooded ones changes nothing

    # compute9's local_ip changes: the server deletes its old endpoint and says so
    tunnels = probe.tunnel_sync(compute9, PROBE_NEW_IP, "vxlan")
    listed = {t["ip_address"]: t["host"] for t in tunnels}
    assert listed.get(PROBE_NEW_IP) == compute9 and PROBE_IP not in listed, tunnels
    assert PROBE_IP not in server_endpoints(neutron_server, "vxlan")
    moved = wait_all(hosts, lambda h: old not in tunnel_ports(h) and new in tunnel_ports(h),
                     10, what=f"the tunnel to {PROBE_IP} replaced by one to {PROBE_NEW_IP}")
    for index, host in enumerate(hosts):
        ofport = host.sandbox.ofport(new)
        wait_for(lambda h=host, i=index, o=ofport: o in flood_outputs(h, vlans[i]), 5,
                 what=f"host {index + 1} flooding to {PROBE_NEW_IP}")
        status = overlay_status(host)
        assert f"vxlan:{PROBE_IP}" not in status["tunnels"], status
        assert status["tunnels"][f"vxlan:{PROBE_NEW_IP}"] == ofport, status
        if ofport != ofports[index]:  # nothing names the old port any more
            assert not flows_naming(host, ofports[index]), flows_naming(host, ofports[index])
        assert [p for p in tunnel_ports(host) if p.startswith("geneve-")] == geneve[index]
    after = br_tun(h1)
    print(f"tunnel_delete {PROBE_IP} + tunnel_update {PROBE_NEW_IP}: ports replaced on both "
          f"hosts {moved:.2f} s after the call; host 1's br-tun +{len(after - added)} "
          f"-{len(added - after)} flows")
    assert (len(after - added), len(added - after)) == (2, 2), after ^ added
    assert vm1.ping(vm2.ip4) and vm2.ping(vm1.ip4)

    # the same endpoint again (an agent restarting, recording overlay/17): another
    # tunnel_update of it, which changes nothing
    ofport = h1.sandbox.ofport(new)
    probe.tunnel_sync(compute9, PROBE_NEW_IP, "vxlan")
    time.sleep(1)
    assert br_tun(h1) == after and h1.sandbox.ofport(new) == ofport


def test_a_tunnel_type_the_host_does_not_have_is_logged_and_ignored(flooding_rig, probe):
    """compute9 registers a gre endpoint (the server has gre's type driver; these hosts do
    vxlan and geneve): the server's tunnel_update of it reaches both hosts, which say so and
    make nothing; moving it casts tunnel_delete of a gre IP, ignored likewise."""
    rig = flooding_rig
    compute9 = f"compute9-{uuid.uuid4().hex[:6]}"
    ports = [tunnel_ports(h) for h in rig.hosts]
    flows = [br_tun(h) for h in rig.hosts]
    probe.tunnel_sync(compute9, PROBE_IP, "gre")
    update = (f"tunnel_update for gre tunnel {PROBE_IP}: gre is not in [agent] tunnel_types "
              "here; ignored")
    took = wait_all(rig.hosts, lambda h: bool(log_lines(h, "ERROR", update)), 10,
                    what="both hosts logging the gre tunnel_update")
    probe.tunnel_sync(compute9, PROBE_NEW_IP, "gre")
    delete = (f"tunnel_delete for gre tunnel {PROBE_IP}: gre is not in [agent] tunnel_types "
              "here; ignored")
    wait_all(rig.hosts, lambda h: bool(log_lines(h, "ERROR", delete)), 10,
             what="both hosts logging the gre tunnel_delete")
    time.sleep(0.5)
    for index, host in enumerate(rig.hosts):
        assert tunnel_ports(host) == ports[index]
        assert not [p for p in tunnel_ports(host) if p.startswith("gre-")]
        assert br_tun(host) == flows[index]
        assert not [k for k in overlay_status(host)["tunnels"] if k.startswith("gre:")]
        assert overlay_status(host)["error"] == ""
    print(f"\ngre tunnel_update logged and ignored on both hosts within {took:.2f} s: "
          f"{log_lines(rig.hosts[0], 'ERROR', update)[0]}")


def test_a_restarted_agent_keeps_its_tunnels_and_loses_no_ping(neutron_api, flooding_rig,
                                                               tenant):
    """Without l2population nothing tells a restarted agent its forwarding entries: it takes
    br-tun over once its tunnel_sync is done, keeping the tunnel ports (and their ofports)."""
    rig = flooding_rig
    host = rig.hosts[0]
    net = tenant.network("vxlan", "10.53.0.0/24")
    sg = group(neutron_api, "flood", ICMP_IN, EGRESS_ALL)
    ports, (vm1, vm2) = tenant.vms_on(net, [sg], [("r1", 0), ("r2", 1)])
    wait_ping(vm1, vm2.ip4)
    flows = br_tun(host)
    ofports = {p: host.sandbox.ofport(p) for p in tunnel_ports(host)}
    pinger = Pinger(vm1, vm2.ip4, 10_000, interval=0.02)
    time.sleep(0.5)
    started = time.monotonic()
    host.stop()
    host.start()
    wait_for(lambda: overlay_status(host).get("deferred_takeover") is False, 20,
             what="host 1's br-tun taken over again")
    taken_over = time.monotonic() - started
    wait_ports_status(neutron_api, [p["id"] for p in ports], "ACTIVE", timeout=20)
    time.sleep(0.5)
    lost, sent = pinger.stop()
    after = br_tun(host)
    learned = learned_on(host, local_vlan(host, vm1))
    print(f"\nrestart of host 1 without l2population: br-tun taken over {taken_over:.2f} s "
          f"after the SIGTERM; {lost}/{sent} pings lost; br-tun +{len(after - flows)} "
          f"-{len(flows - after)} flows; {len(learned)} learned flows on the network")
    assert lost == 0, pinger.unanswered
    assert after == flows, after ^ flows
    assert {p: host.sandbox.ofport(p) for p in tunnel_ports(host)} == ofports
    assert overlay_status(host)["error"] == ""

"""Benchmark of br-tun, the overlay (issue 14). Not a test: it prints figures.

On a private ovs-vswitchd (userspace datapath), an ``Overlay`` driven as the agent drives it but
without a broker (``setup``, ``set_networks``, then the ``on_fdb_*``/``on_tunnel_*`` handlers and
their queued jobs run on this thread), l2population and the ARP responder on:

  1. one remote port added, then removed, on one of N tunnelled networks with E remote endpoints
     (every endpoint floods every network and has one port on each):
       port          an ``[mac, ip]`` on an endpoint that already floods the network;
       new endpoint  the first port of an endpoint new to the host (its flooding entry and the
                     port, in one message), which also makes, then deletes, its tunnel port;
     flow-mods and bundles (the programmer's counters), the median time from the handler to the
     committed bundle, and the median time of the pure ``OverlayState`` part of it (the entries
     taken, the tunnel ports wanted, the changed owners' flows built);
  2. br-tun's flows for 100 networks x 50 endpoints, the time to install them all (one reconcile
     bundle on an emptied bridge), and the time to make the 50 tunnel ports;
  3. without l2population: an endpoint added (``tunnel_update``) and removed (``tunnel_delete``).

Beside each, neutron's OVS agent (neutron 29, native OpenFlow driver) for the same operations:
when its virtualenv is there, its own methods (``add_fdb_entries``, ``remove_fdb_entries``,
``tunnel_update``, ``tunnel_delete`` of ``OVSNeutronAgent`` on its ``OVSTunnelBridge``) run in a
subprocess of that virtualenv against a bridge of the same switch, each OpenFlow message they
hand to os-ken sent as os-ken's ofctl service sends it (the message, then a barrier, waiting for
the reply) and counted; only OVSDB is not done (a tunnel port gets a made-up ofport). Without the
virtualenv the counts are the ones read from its code.

    python benchmarks/overlay_bench.py [--quick] [--networks 1,10,100] [--endpoints 1,10,50]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NEUTRON_PYTHON = "/opt/dpagent-test/neutron-venv/bin/python"
LOCAL_IP = "10.0.0.1"
NEW_ENDPOINT = "10.2.0.1"
NEW_MAC, NEW_IP = "fa:16:3f:00:00:01", "172.31.0.1"
INTEGRATION = "br-int"


def endpoint_ip(j: int) -> str:
    return f"10.1.{j // 250}.{j % 250 + 1}"


def port_of(i: int, j: int) -> tuple[str, str]:
    """The (mac, ip) of endpoint j's port on network i."""
    return f"fa:16:3e:{i:02x}:{j >> 8:02x}:{j & 255:02x}", f"172.16.{j // 250}.{j % 250 + 2}"


def network_id(i: int) -> str:
    return f"net-{i:03d}"


def segment(i: int) -> int:
    return 1000 + i


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def span(values: list[int]) -> str:
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}-{high}"


# -- neutron's OVS agent, run in neutron's virtualenv -------------------------------------------

def neutron_worker() -> int:
    """Run neutron's own agent methods (see the module's notes); the spec on stdin, the
    counts on stdout as JSON."""
    import logging
    import socket
    import struct
    from types import SimpleNamespace

    from neutron.plugins.ml2.drivers.openvswitch.agent import ovs_neutron_agent, vlanmanager
    from neutron.plugins.ml2.drivers.openvswitch.agent.openflow.native import br_tun
    from neutron_lib import constants as n_const
    from os_ken.ofproto import ofproto_v1_3 as ofp
    from os_ken.ofproto import ofproto_v1_3_parser as ofpp

    logging.disable(logging.CRITICAL)
    spec = json.load(sys.stdin)
    header = struct.Struct("!BBHI")

    class Switch:
        """A bare OpenFlow 1.3 connection, used as os-ken's ofctl service uses its own."""

        def __init__(self, path: str) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(path)
            self.sock.sendall(header.pack(ofp.OFP_VERSION, ofp.OFPT_HELLO, 8, 1))
            self.buffer = b""
            self.read()
            self.xid = 10
            self.flow_mods = self.requests = 0
            self.seconds = 0.0
            self.errors: list[str] = []

        def read(self) -> tuple[int, int, bytes]:
            while len(self.buffer) < 8 or len(self.buffer) < header.unpack_from(self.buffer)[2]:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise RuntimeError("the switch closed the connection")
                self.buffer += chunk
            _, kind, length, xid = header.unpack_from(self.buffer)
            message, self.buffer = self.buffer[:length], self.buffer[length:]
            return kind, xid, message

        def request(self, msg: Any) -> None:
            start = time.perf_counter()
            msg.xid, barrier = self.xid, self.xid + 1
            self.xid += 2
            msg.serialize()
            self.sock.sendall(bytes(msg.buf) + header.pack(ofp.OFP_VERSION,
                                                           ofp.OFPT_BARRIER_REQUEST, 8, barrier))
            while True:
                kind, xid, message = self.read()
                if kind == ofp.OFPT_ERROR:
                    self.errors.append(message[8:12].hex())
                elif kind == ofp.OFPT_ECHO_REQUEST:
                    self.sock.sendall(header.pack(ofp.OFP_VERSION, ofp.OFPT_ECHO_REPLY, 8, xid))
                elif kind == ofp.OFPT_BARRIER_REPLY and xid == barrier:
                    break
            self.seconds += time.perf_counter() - start
            self.requests += 1
            self.flow_mods += msg.msg_type == ofp.OFPT_FLOW_MOD

    class TunnelBridge(br_tun.OVSTunnelBridge):
        """neutron's br-tun class; OpenFlow to the switch above, OVSDB left out."""

        def __init__(self, switch: Switch) -> None:  # no OVSDB connection, no os-ken app
            self.switch = switch
            self.br_name = "br-tun"
            self._default_cookie = 0x5EED
            self._reserved_cookies: set[int] = set()
            self._cached_dpid = 1
            self.datapath = SimpleNamespace(ofproto=ofp, ofproto_parser=ofpp, id=1)
            self.next_ofport = 100
            self.ovsdb_ops = 0

        def _get_dp(self) -> tuple[Any, Any, Any]:
            return self.datapath, ofp, ofpp

        def _send_msg(self, msg: Any, reply_cls: Any = None, reply_multi: bool = False,
                      active_bundle: Any = None) -> None:
            self.switch.request(msg)

        def add_tunnel_port(self, port_name: str, remote_ip: str, local_ip: str,
                            *args: Any, **kwargs: Any) -> int:
            self.ovsdb_ops += 1
            self.next_ofport += 1
            return self.next_ofport

        def delete_port(self, port_name: str) -> None:
            self.ovsdb_ops += 1

    switch = Switch(spec["socket"])
    bridge = TunnelBridge(switch)
    vlans = vlanmanager.LocalVlanManager()
    flood = list(n_const.FLOODING_ENTRY)

    def agent(l2pop: bool) -> Any:
        made = ovs_neutron_agent.OVSNeutronAgent.__new__(ovs_neutron_agent.OVSNeutronAgent)
        made.enable_tunneling, made.tunnel_types = True, ["vxlan"]
        made.local_ip, made.l2_pop, made.arp_responder_enabled = LOCAL_IP, l2pop, l2pop
        made.tun_br, made.vlan_manager = bridge, vlans
        made.vxlan_udp_port, made.dont_fragment, made.tunnel_csum, made.tos = 4789, True, \
            False, None
        made._reset_tunnel_ofports()
        return made

    def entries(i: int, ports: dict[str, list[list[str]]]) -> dict[str, Any]:
        return {network_id(i): {"segment_id": segment(i), "network_type": "vxlan",
                                "ports": ports}}

    def counted(method: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
        before = (switch.flow_mods, switch.requests, switch.seconds, bridge.ovsdb_ops)
        method(*args, **kwargs)
        return {"flow_mods": switch.flow_mods - before[0],
                "requests": switch.requests - before[1],
                "seconds": switch.seconds - before[2],
                "ovsdb": bridge.ovsdb_ops - before[3]}

    def build(networks: int, endpoints: int, l2pop: bool) -> tuple[Any, dict[str, float]]:
        bridge.uninstall_flows(cookie=0, cookie_mask=0)  # an empty bridge (not counted)
        vlans.mapping.clear()
        made = agent(l2pop)

        def everything() -> None:
            bridge.setup_default_table(1, l2pop, False)
            for i in range(networks):
                vlans.add(network_id(i), i + 1, "vxlan", None, segment(i))
                bridge.provision_local_vlan("vxlan", i + 1, segment(i))
            if l2pop:
                message: dict[str, Any] = {}
                for i in range(networks):
                    message.update(entries(i, {endpoint_ip(j): [flood, list(port_of(i, j))]
                                               for j in range(endpoints)}))
                made.add_fdb_entries(None, message)
            else:
                for j in range(endpoints):
                    made.tunnel_update(None, tunnel_ip=endpoint_ip(j), tunnel_type="vxlan")
        return made, counted(everything)

    result: dict[str, Any] = {"cells": {}, "static": {}}
    def port() -> dict[str, Any]:  # a fresh message each time: neutron rewrites it in place
        return entries(0, {endpoint_ip(0): [[NEW_MAC, NEW_IP]]})

    def first() -> dict[str, Any]:
        return entries(0, {NEW_ENDPOINT: [flood, [NEW_MAC, NEW_IP]]})

    for networks, endpoints in spec["cells"]:
        made, _ = build(networks, endpoints, True)
        result["cells"][f"{networks}x{endpoints}"] = {
            "port": [counted(made.add_fdb_entries, None, port()),
                     counted(made.remove_fdb_entries, None, port())],
            "endpoint": [counted(made.add_fdb_entries, None, first()),
                         counted(made.remove_fdb_entries, None, first())]}
    tunnel = {"tunnel_ip": NEW_ENDPOINT, "tunnel_type": "vxlan"}
    for networks, endpoints in spec["static"]:
        made, _ = build(networks, endpoints, False)
        result["static"][f"{networks}x{endpoints}"] = [
            counted(made.tunnel_update, None, **tunnel),
            counted(made.tunnel_delete, None, **tunnel)]
    networks, endpoints = spec["install"]
    _, result["install"] = build(networks, endpoints, True)  # left on the bridge, to count
    result["errors"] = switch.errors
    json.dump(result, sys.stdout)
    return 0


def neutron_from_code(cells: list[tuple[int, int]],
                      static: list[tuple[int, int]]) -> dict[str, Any]:
    """What ovs_neutron_agent.py and l2population_rpc.py send, read from the code: one flow-mod
    per br_tun call. A port: add_fdb_flow -> install_arp_responder + install_unicast_to_tun
    (remove: delete_arp_responder + delete_unicast_to_tun). An endpoint's first port: also
    setup_tunnel_port (its in_port flow) and install_flood_to_tun, the network's whole flood
    flow rewritten (remove: install_flood_to_tun or delete_flood_to_tun, and
    cleanup_tunnel_port). Without l2population, tunnel_update rewrites the flood flow of every
    network of the type (_setup_tunnel_flood_flow) and tunnel_delete only removes the port's
    in_port flow (the flood flows keep outputting to the port that is gone)."""
    def mods(count: int) -> dict[str, float]:
        return {"flow_mods": count}
    return {"cells": {f"{n}x{e}": {"port": [mods(2), mods(2)], "endpoint": [mods(4), mods(4)]}
                      for n, e in cells},
            "static": {f"{n}x{e}": [mods(1 + n), mods(1)] for n, e in static},
            "install": None, "errors": []}


def flat(counts: Any) -> list[dict[str, float]]:
    """A cell's counts in order: [add, remove] or {"port": [...], "endpoint": [...]}."""
    return counts if isinstance(counts, list) else counts["port"] + counts["endpoint"]


def run_neutron(python: str, socket_path: Path, cells: list[tuple[int, int]],
                static: list[tuple[int, int]], install: tuple[int, int]) -> dict[str, Any] | None:
    if not Path(python).exists():
        return None
    spec = {"socket": str(socket_path), "cells": cells, "static": static, "install": install}
    done = subprocess.run([python, __file__, "--neutron-worker"], input=json.dumps(spec),
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if done.returncode != 0:
        print(f"  (neutron's agent could not run: {done.stderr.strip().splitlines()[-1:]})")
        return None
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# -- dpagent ----------------------------------------------------------------------------------

class Rig:
    """One br-tun (an Overlay of its own) on the shared sandbox."""

    def __init__(self, sandbox: Any, ovsdb: Any, l2pop: bool) -> None:
        from dpagent.bridge.openflow.transport import OpenFlowTransport
        from dpagent.bridge.programmer import BridgeProgrammer
        from dpagent.overlay.config import OverlaySettings
        from dpagent.overlay.manager import Overlay

        tag = uuid.uuid4().hex[:5]
        self.sandbox = sandbox
        self.settings = OverlaySettings(
            tunnel_types=("vxlan",), local_ip=LOCAL_IP, bridge=f"br-t{tag}",
            int_patch_port=f"pt-{tag}", tun_patch_port=f"pi-{tag}", l2_population=l2pop,
            arp_responder=l2pop)

        def programmer_for(bridge: str) -> BridgeProgrammer:
            return BridgeProgrammer(OpenFlowTransport(str(sandbox.directory / f"{bridge}.mgmt")))
        self.overlay = Overlay(ovsdb, self.settings, INTEGRATION, "netdev", programmer_for)
        self.port_seconds: list[tuple[int, float]] = []
        create = self.overlay.tunnels.create

        def timed_create(endpoints: list[tuple[str, str]]) -> Any:
            start = time.perf_counter()
            made = create(endpoints)
            self.port_seconds.append((len(endpoints), time.perf_counter() - start))
            return made
        self.overlay.tunnels.create = timed_create  # type: ignore[method-assign]

    def settle(self) -> None:
        """Run the overlay's queued work on this thread (its thread is not started)."""
        jobs, self.overlay._jobs = self.overlay._jobs, []
        for job in jobs:
            job()

    def counted(self, action: Any) -> tuple[int, int, float]:
        """(flow-mods, bundles, seconds) of ``action`` and the queued work it leaves."""
        def sent() -> tuple[int, int]:
            programmer = self.overlay.programmer  # None before setup
            return (programmer.flow_mods_sent, programmer.bundles_sent) if programmer else (0, 0)
        mods, bundles = sent()
        start = time.perf_counter()
        action()
        self.settle()
        seconds = time.perf_counter() - start
        after = sent()
        return after[0] - mods, after[1] - bundles, seconds

    def close(self) -> None:
        self.sandbox.del_bridge(self.settings.bridge)
        self.sandbox.del_port(self.settings.int_patch_port)


def tunnel_networks(networks: int) -> dict[str, Any]:
    from flows.tunnel import TunnelNetwork
    return {network_id(i): TunnelNetwork(network_id(i), "vxlan", segment(i), i + 1)
            for i in range(networks)}


def fdb(items: dict[int, list[tuple[str, str | None, str | None]]]) -> list[Any]:
    """FdbNetworks: network index -> [(remote IP, mac, ip)], mac None for the flooding entry."""
    from dpagent.rpc.l2pop import FdbEntry, FdbNetwork
    return [FdbNetwork(network_id(i), "vxlan", segment(i),
                       tuple(FdbEntry(network_id(i), remote, mac, ip) for remote, mac, ip in got))
            for i, got in items.items()]


def everything(networks: int, endpoints: int) -> list[Any]:
    return fdb({i: [entry for j in range(endpoints) for entry in
                    ((endpoint_ip(j), None, None), (endpoint_ip(j), *port_of(i, j)))]
                for i in range(networks)})


PORT = {0: [(endpoint_ip(0), NEW_MAC, NEW_IP)]}
FIRST = {0: [(NEW_ENDPOINT, None, None), (NEW_ENDPOINT, NEW_MAC, NEW_IP)]}


def state_seconds(networks: int, endpoints: int, repeat: int) -> dict[str, list[float]]:
    """The pure part of each operation: what ``Overlay._apply`` asks of an ``OverlayState``
    (the entries, the endpoints wanted, a new tunnel's ofport, the changed owners' flows)."""
    from dpagent.overlay.state import OverlayState
    state = OverlayState(LOCAL_IP, True, True)
    state.set_patch_port(1)
    state.set_networks(tunnel_networks(networks))
    for network in everything(networks, endpoints):
        state.add_fdb(network.entries)
    for j in range(endpoints):
        state.set_ofport(("vxlan", endpoint_ip(j)), 100 + j)
    samples: dict[str, list[float]] = {}
    port, first = fdb(PORT)[0].entries, fdb(FIRST)[0].entries
    new = ("vxlan", NEW_ENDPOINT)
    for _ in range(repeat):
        for name, items, add in (("port", port, True), ("port-", port, False),
                                 ("endpoint", first, True), ("endpoint-", first, False)):
            start = time.perf_counter()
            changes = state.add_fdb(items) if add else state.remove_fdb(items)
            asked = time.perf_counter()
            wanted = {e for e in changes.endpoints if state.endpoint_wanted(e)}
            answered = time.perf_counter()
            if new in wanted and new not in state.ofports:
                changes |= state.set_ofport(new, 999)
            elif new in state.ofports and new in changes.endpoints and new not in wanted:
                changes |= state.set_ofport(new, None)
            for owner in changes.owners:
                state.flows_of(owner)
            samples.setdefault(name, []).append(time.perf_counter() - start)
            samples.setdefault(f"{name} wanted", []).append(answered - asked)
    return samples


def from_nothing(rig: Rig, networks: int, endpoints: int) -> tuple[int, int, float]:
    """setup, set_networks, then one add_fdb_entries of every entry: (flow-mods, bundles, s)."""
    def start() -> None:
        rig.overlay.setup()
        rig.overlay.set_networks(tunnel_networks(networks))
        rig.overlay.on_fdb_add(everything(networks, endpoints))
    return rig.counted(start)


def dpagent_cell(sandbox: Any, ovsdb: Any, networks: int, endpoints: int,
                 repeat: int) -> tuple[dict[str, Any], Rig]:
    """Item 1 for one cell; the rig is left for item 2 (the caller closes it)."""
    rig = Rig(sandbox, ovsdb, True)
    overlay = rig.overlay
    figures: dict[str, Any] = {"build": from_nothing(rig, networks, endpoints),
                               "ports": list(rig.port_seconds)}
    for name, items in (("port", PORT), ("endpoint", FIRST)):
        overlay.on_fdb_add(fdb(items))  # once first, not measured
        overlay.on_fdb_remove(fdb(items))
        rig.settle()
        adds, removes = [], []
        for _ in range(repeat):
            adds.append(rig.counted(lambda items=items: overlay.on_fdb_add(fdb(items))))
            removes.append(rig.counted(lambda items=items: overlay.on_fdb_remove(fdb(items))))
        figures[name] = (adds, removes)
    figures["state"] = state_seconds(networks, endpoints, max(repeat, 20))
    return figures, rig


def dpagent_static(sandbox: Any, ovsdb: Any, networks: int, endpoints: int,
                   repeat: int) -> tuple[list[tuple[int, int, float]], ...]:
    """Item 3: the endpoints from tunnel_sync, then one more added and removed."""
    rig = Rig(sandbox, ovsdb, False)
    overlay = rig.overlay
    try:
        overlay.setup()
        overlay.control = type("Server", (), {"tunnel_sync": lambda self, ip, kind: [
            endpoint_ip(j) for j in range(endpoints)]})()
        overlay.set_networks(tunnel_networks(networks))
        overlay._sync_tunnels()
        adds, removes = [], []
        for _ in range(repeat):
            adds.append(rig.counted(lambda: overlay.on_tunnel_update(NEW_ENDPOINT, "vxlan")))
            removes.append(rig.counted(lambda: overlay.on_tunnel_delete(NEW_ENDPOINT, "vxlan")))
        return adds, removes
    finally:
        rig.close()


def pair(add: str, remove: str, width: int) -> str:
    """``add / remove`` right-aligned on the slash in a column of ``width``."""
    half = (width - 3) // 2
    return f"{add:>{half}} / {remove:<{width - 3 - half}}"


def mods(samples: tuple[list[tuple[int, int, float]], list[tuple[int, int, float]]]) -> str:
    adds, removes = samples
    return pair(span([a[0] for a in adds]), span([r[0] for r in removes]), 11)


def seconds(samples: tuple[list[tuple[int, int, float]], list[tuple[int, int, float]]]) -> str:
    adds, removes = samples
    return pair(f"{median_ms([a[2] for a in adds]):.2f}",
                f"{median_ms([r[2] for r in removes]):.2f}", 13)


LABEL = "neutron (from its code)"
NEUTRON_WIDTH = len(LABEL)


def theirs(counts: list[dict[str, float]]) -> str:
    return pair(f"{counts[0]['flow_mods']:.0f}", f"{counts[1]['flow_mods']:.0f}", NEUTRON_WIDTH)


def item1(sandbox: Any, ovsdb: Any, cells: list[tuple[int, int]], repeat: int,
          neutron: dict[str, Any], install_size: tuple[int, int]
          ) -> tuple[dict[str, Any], Rig] | None:
    print("\n1. one remote port added / removed on network 1 of N, E remote endpoints "
          "(each flooding and with a port on every network)")
    print("   port: on an endpoint that floods the network already; new endpoint: its first "
          "port, with its flooding entry and tunnel port")
    print("   add / remove; flow-mods and bundles per operation (min-max over the "
          "repetitions), times medians")
    print(f"  {'N':>4} {'E':>3}  {'operation':<12} {'flow-mods':^11} {'bundles':^7} "
          f"{'end to end ms':^13} {'state us':^11} {'wanted us':^9} {LABEL}")
    largest = None
    for n, e in cells:
        figures, rig = dpagent_cell(sandbox, ovsdb, n, e, repeat)
        for name, title in (("port", "port"), ("endpoint", "new endpoint")):
            adds, removes = figures[name]
            state = figures["state"]
            pure = pair(f"{median_ms(state[name]) * 1000:.0f}",
                        f"{median_ms(state[name + '-']) * 1000:.0f}", 11)
            print(f"  {n:>4} {e:>3}  {title:<12} {mods(figures[name])} "
                  f"{span([a[1] for a in adds + removes]):^7} {seconds(figures[name])} {pure} "
                  f"{median_ms(state[name + ' wanted']) * 1000:^9.0f} "
                  f"{theirs(neutron['cells'][f'{n}x{e}'][name])}".rstrip())
        if (n, e) == install_size:
            largest = (figures, rig)
        else:
            rig.close()
    print("   state: the pure OverlayState part (entries, endpoints wanted, flows of the changed "
          "owners); wanted: of which the endpoints the change touched judged, add")
    print("   end to end: handler to committed bundle, with the tunnel port's OVSDB transaction "
          "for a new endpoint (its removal: the port deleted after the bundle)")
    print("   a new endpoint's 5: its tunnel port's flow, unicast, ARP answer and the network's "
          "flood flow replaced (a delete and an add:")
    print("   flows are named by content cookies), all in one bundle; neutron's 4: the same, the "
          "flood flow overwritten in place, one request each")
    return largest


def item2(sandbox: Any, ovsdb: Any, largest: tuple[dict[str, Any], Rig] | None,
          install_size: tuple[int, int], neutron: dict[str, Any], neutron_bridge: str,
          label: str) -> None:
    from flows.cookies import LEARNED_COOKIE
    networks, endpoints = install_size
    if largest is None:
        rig = Rig(sandbox, ovsdb, True)
        largest = ({"build": from_nothing(rig, networks, endpoints),
                    "ports": list(rig.port_seconds)}, rig)
    figures, rig = largest
    try:
        programmer = rig.overlay.programmer
        assert programmer is not None
        learned = f"cookie={LEARNED_COOKIE:#x},"
        flows = [f for f in sandbox.dump_flows(rig.settings.bridge) if not f.startswith(learned)]
        sandbox.ofctl("del-flows", rig.settings.bridge)
        start = time.perf_counter()
        report = programmer.reconcile("benchmark")
        full = time.perf_counter() - start
        assert not report.rejected, report.rejected
    finally:
        rig.close()
    build_mods, bundles, build = figures["build"]
    made, port_time = figures["ports"][0]
    print(f"\n2. br-tun for {networks} networks x {endpoints} endpoints, a port of each "
          "endpoint on each network")
    base = len(flows) - 2 * networks - endpoints - 2 * networks * endpoints
    print(f"  dpagent: {len(flows):,} flows ({base} base with the canary, 2 per network, 1 per "
          "tunnel port, 2 per remote port: unicast and ARP answer)")
    print(f"  dpagent: full install, one reconcile bundle on the emptied bridge: "
          f"{report.flow_mods:,} flow-mods in {full * 1000:.0f} ms = "
          f"{report.flow_mods / full:,.0f}/s")
    print(f"  dpagent: the {made} tunnel ports, one OVSDB transaction: {port_time * 1000:.0f} ms")
    print(f"  dpagent: from nothing (setup, set_networks, one add_fdb_entries of every entry): "
          f"{build_mods:,} flow-mods in {bundles} bundles, {build:.2f} s with br-tun, its patch "
          "and tunnel ports")
    got = neutron.get("install")
    if got:
        count = len(sandbox.dump_flows(neutron_bridge))
        print(f"  {label}: {count:,} flows; from nothing {got['flow_mods']:,.0f} flow-mods "
              f"(a network's flood flow rewritten for each of its endpoints), one request "
              f"each as os-ken sends it (the message, a barrier, wait): {got['seconds']:.2f} s "
              f"for the requests alone, and {got['ovsdb']:.0f} OVSDB transactions, one per "
              "tunnel port")


def item3(sandbox: Any, ovsdb: Any, static: list[tuple[int, int]], repeat: int,
          neutron: dict[str, Any]) -> None:
    print("\n3. without l2population: one endpoint added (tunnel_update) / removed "
          "(tunnel_delete)")
    print(f"  {'N':>4} {'E':>3}  {'flow-mods':^11} {'bundles':^7} {'end to end ms':^13} "
          f"{LABEL}")
    for n, e in static:
        samples = dpagent_static(sandbox, ovsdb, n, e, repeat)
        print(f"  {n:>4} {e:>3}  {mods(samples)} "
              f"{span([a[1] for a in samples[0] + samples[1]]):^7} {seconds(samples)} "
              f"{theirs(neutron['static'][f'{n}x{e}'])}".rstrip())
    print("   both rewrite the flood flow of every network of the type (dpagent: a delete and "
          "an add each, in one bundle);")
    print("   neutron's tunnel_delete leaves the flood flows outputting to the deleted port")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true",
                        help="a smaller matrix: 1,10 networks x 1,10 endpoints, 10x10 install")
    parser.add_argument("--networks", help="tunnelled networks (default 1,10,100)")
    parser.add_argument("--endpoints", help="remote endpoints (default 1,10,50)")
    parser.add_argument("--install", help="networks x endpoints of item 2 (default 100x50)")
    parser.add_argument("--repeat", type=int, help="repetitions of each operation (default 10)")
    parser.add_argument("--neutron-python", default=NEUTRON_PYTHON,
                        help="python of a virtualenv with neutron (absent: counts from its code)")
    parser.add_argument("--neutron-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.neutron_worker:
        return neutron_worker()
    networks = [int(n) for n in (args.networks or ("1,10" if args.quick else "1,10,100"))
                .split(",")]
    endpoints = [int(e) for e in (args.endpoints or ("1,10" if args.quick else "1,10,50"))
                 .split(",")]
    size = [int(x) for x in (args.install or ("10x10" if args.quick else "100x50")).split("x")]
    install_size = (size[0], size[1])
    repeat = args.repeat or (5 if args.quick else 10)
    cells = [(n, e) for n in networks for e in endpoints]
    static = [(n, max(endpoints)) for n in networks]

    warnings.filterwarnings("ignore", message=r"(?s).*eventlet")
    sys.path.insert(0, str(ROOT))
    from dpagent.agent.ovsdb import Ovsdb
    from dpagent.lab.ovs_sandbox import OVSSandbox

    started = time.perf_counter()
    label = LABEL
    with OVSSandbox() as sandbox:
        sandbox.add_bridge(INTEGRATION)
        neutron_bridge = "br-ntun"
        sandbox.add_bridge(neutron_bridge)
        sandbox.vsctl("set", "Bridge", neutron_bridge, "protocols=OpenFlow10,OpenFlow13")
        neutron = run_neutron(args.neutron_python, sandbox.directory / f"{neutron_bridge}.mgmt",
                              cells, static, install_size)
        if neutron is not None:
            read = neutron_from_code(cells, static)
            same = all(a["flow_mods"] == b["flow_mods"] for key in ("cells", "static")
                       for cell in read[key] for a, b in zip(
                           flat(read[key][cell]), flat(neutron[key][cell]), strict=True))
            how = (f"its agent's own methods run ({Path(args.neutron_python).parent.parent}) "
                   f"against {neutron_bridge} on the same switch, flow-mods counted as sent "
                   f"({len(neutron['errors'])} refused by the switch; "
                   f"{'' if same else 'NOT '}the counts read from its code)")
        else:
            neutron = neutron_from_code(cells, static)
            how = "read from ovs_neutron_agent.py and l2population_rpc.py, not run"
        print("overlay benchmark: br-tun, vxlan, l2population and ARP responder on; "
              f"{repeat} repetitions")
        print(f"  {label}: {how}")
        ovsdb = Ovsdb(sandbox.db_connection, 10)
        try:
            largest = item1(sandbox, ovsdb, cells, repeat, neutron, install_size)
            item2(sandbox, ovsdb, largest, install_size, neutron, neutron_bridge, label)
            item3(sandbox, ovsdb, static, repeat, neutron)
        finally:
            ovsdb.stop()
    print(f"\n  ({time.perf_counter() - started:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark of one remote-group member change in ``[agent] rpc_mode = cache``, end to end.
Not a test: it prints figures.

The ``large`` workload (1,000 local ports, 50 groups, 10 remote groups of about 5,000 members
each, 2 address groups) is turned into the server's objects as neutron 29 would hold them:
the 1,000 local ports bound to this host on the workload's networks (with their subnets),
the 50 groups with their rules (``remote_group_id``, ``remote_address_group_id``, prefixes),
the address groups, and the remote groups' members as ports bound to another host -- one port
per member of the workload's remote pool (its IPv4 address and, where the generator gave it
one, the IPv6 address of the same offset), each in every group that lists one of its
addresses; local ports are members through their own groups. A fake resources API answers
``bulk_pull`` from those objects (already parsed, as :class:`ResourcesApi` returns them).

The agent is the daemon's: :class:`RpcCacheControlPlane` over that API, the agent core on a
private OVS (``agent_bench.start_agent``: OVSDB events, native OpenFlow), a
:class:`ResourcePushes` behind the ``neutron-vo-Port-1.11`` push endpoint. The 1,000 VIFs are
plugged (internal ports with ``external_ids:iface-id``, 100 per ``ovs-vsctl``), the agent wires
them from the cache, the port reports say when all are up (should the worker sit idle 10 s
with VIFs not up that it does not know, its own ``rescan``, due every 300 s, is run at once,
and those VIFs are counted: the agent had lost them); the cache's member lists are checked
against the workload's. Then, with the agent and ovs-vswitchd idle, measured one at a time:

  * add: a push ``updated`` of a NEW port (fresh IPv4 and IPv6 addresses, bound to another
    host) in the largest remote group, as neutron 29 sends it (a Port 1.11 primitive shaped
    as the recorded ones), delivered to the push endpoint;
  * remove: the push ``deleted`` of that port (``id``, ``security_group_ids: null``, ...).

Each is timed from the push entering the endpoint to ``flow_mods_sent`` of the bridge
programmer increasing (the bundle committed on the switch; polled every 0.2 ms), 10 of each.
The flow-mods and bundles of each operation are counted (expected: one flow-mod per direction
and IP version the group is used in -- by the rules the compiler keeps: a rule whose packets
another allows is dropped, and every group here allows all egress). Methods of the agent are
wrapped with timers, as a profiler would (nothing of the agent is changed), to say where the
time goes: the push (parse, cache), the queue, ``Agent.run_once`` (the batch, from the work
taken), and in it the member list derived from the cache (``member_info``),
``SecurityGroupCache.ingest`` and ``.model``, ``HostCompiler.update`` (the compile) and
``BridgeProgrammer.apply`` with the OpenFlow bundle round trip (``transport.apply``) apart;
and the garbage collector's passes (``gc.callbacks``) until the commit, a full one costing
about 0.3 s with this heap. RSS (VmRSS) once all ports are wired, beside ``agent_bench``'s
legacy figure (the harness's server-side objects included: see the harness's own figure,
printed too, before the agent starts).

    python benchmarks/cache_member_bench.py [--repeat 10] [--ports 1000]
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from agent_bench import rss_mib, start_agent  # noqa: E402

from dpagent.daemon.wiring import RpcCacheControlPlane  # noqa: E402
from dpagent.lab.ovs_sandbox import OVSSandbox  # noqa: E402
from dpagent.resources.control_plane import PUSHED, ResourcePushes, push_topic  # noqa: E402
from dpagent.resources.derive import members_of  # noqa: E402
from dpagent.resources.objects import (  # noqa: E402
    AddressGroupObject,
    Binding,
    NetworkObject,
    PortObject,
    ResourceObject,
    RuleObject,
    SecurityGroupObject,
    Segment,
    SubnetObject,
)
from dpagent.rpc.notifications import resource_push_catalog  # noqa: E402

BRIDGE = "br-bench"
OTHER_HOST = "compute-bench-2"
"""where the remote groups' members (and the measured new ones) are bound"""
NS = uuid.UUID("6f1c2a4e-3b0d-4c55-9a0e-1d2b3c4d5e6f")
REMOTE_NET = str(uuid.uuid5(NS, "remote-network"))
REMOTE_SEGMENT = Segment("vxlan", None, 2000)
V4_POOL = ipaddress.ip_network("10.128.0.0/9")  # the generator's remote pool
V6_POOL = ipaddress.ip_network("fd80::/16")
POLL = 0.0002
PLUG_BATCH = 100


class Counted(logging.Filter):
    """The agent's warnings, but one line per VIF its rescan finds (counted instead)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("rescan found VIF")


def sid(*parts: object) -> str:
    """A stable id for what the workload names not (subnets, rules)."""
    return str(uuid.uuid5(NS, "/".join(map(str, parts))))


# -- the server's side ------------------------------------------------------------------------

class Resources:
    """``bulk_pull`` answered from parsed objects, by index (the real API returns objects
    parsed from the reply; its ``calls`` counts one per chunk of 500 ids, as here)."""

    KEYS = {("Port", "id"), ("Port", "security_group_ids"), ("SecurityGroup", "id"),
            ("Network", "id"), ("Subnet", "network_id"), ("AddressGroup", "id")}

    def __init__(self) -> None:
        self.index: dict[tuple[str, str], dict[str, list[ResourceObject]]] = {
            k: defaultdict(list) for k in self.KEYS}
        self.calls = 0
        self.pulls: list[tuple[str, str, int, int]] = []
        """(type, filter, values, objects)"""
        self.seconds = 0.0

    def add(self, kind: str, obj: ResourceObject) -> None:
        if (kind, "id") in self.index:
            self.index[(kind, "id")][obj.id].append(obj)
        if isinstance(obj, PortObject):
            for sg in obj.security_group_ids:
                self.index[("Port", "security_group_ids")][sg].append(obj)
        if isinstance(obj, SubnetObject):
            self.index[("Subnet", "network_id")][obj.network_id].append(obj)

    def bulk_pull(self, resource_type: str, **filters: list[str]) -> list[ResourceObject]:
        started = time.perf_counter()
        (key, values), = filters.items()
        wanted = sorted(set(values))
        self.calls += max(1, -(-len(wanted) // 500))
        index = self.index[(resource_type, key)]
        found: dict[str, ResourceObject] = {}
        for value in wanted:
            for obj in index.get(value, ()):
                found[obj.id] = obj
        self.pulls.append((resource_type, key, len(wanted), len(found)))
        self.seconds += time.perf_counter() - started
        return list(found.values())


def rule_object(sg: str, i: int, r: dict[str, Any]) -> RuleObject:
    """A rule of the SG-info reply (its prefix as source/dest by direction) as the object."""
    prefix = r.get("source_ip_prefix") or r.get("dest_ip_prefix")
    protocol = r.get("protocol")
    return RuleObject(sid("rule", sg, i), 1, sg, r["direction"], r["ethertype"],
                      None if protocol is None else str(protocol), r.get("port_range_min"),
                      r.get("port_range_max"), prefix, prefix, r.get("remote_group_id"),
                      r.get("remote_address_group_id"))


def pool_key(address: str) -> object:
    """The generator's remote port of an address: 10.128.0.0/9 + k and fd80::/16 + k are the
    same port's; anything else is a port of its own."""
    ip = ipaddress.ip_address(address)
    for pool in (V4_POOL, V6_POOL):
        if ip.version == pool.version and ip in pool:
            return int(ip) - int(pool.network_address)
    return address


def build_server(info: dict[str, Any], meta: dict[str, Any], host: str) -> dict[str, Any]:
    """The server's objects from the workload; what the benchmark needs to know of them."""
    resources = Resources()
    subnets: dict[str, list[tuple[Any, str]]] = {}
    for net_id, net in meta["networks"].items():
        segment = Segment(net["network_type"], net["physical_network"], net["segmentation_id"])
        resources.add("Network", NetworkObject(net_id, 1, 1500, (segment,)))
        for family in ("ipv4_cidr", "ipv6_cidr"):
            if net.get(family):
                subnet = SubnetObject(sid("subnet", net_id, family), 1, net_id, net[family])
                resources.add("Subnet", subnet)
                subnets.setdefault(net_id, []).append(
                    (ipaddress.ip_network(net[family]), subnet.id))

    def subnet_of(net_id: str, address: str) -> str:
        ip = ipaddress.ip_address(address)
        for network, subnet_id in subnets.get(net_id, ()):
            if ip.version == network.version and ip in network:
                return subnet_id
        return sid("subnet", net_id, ip.version)

    remote_groups: set[str] = set()
    address_groups: set[str] = set()
    for sg, rules in info["security_groups"].items():
        objects = tuple(rule_object(sg, i, r) for i, r in enumerate(rules))
        stateful = all(r.get("stateful", True) for r in rules)
        resources.add("SecurityGroup", SecurityGroupObject(sg, 1, stateful, objects))
        remote_groups |= {r.remote_group_id for r in objects if r.remote_group_id}
        address_groups |= {r.remote_address_group_id for r in objects
                           if r.remote_address_group_id}
    for ag in sorted(address_groups):
        addresses = sorted({a for entries in info["sg_member_ips"].get(ag, {}).values()
                            for a, _ in entries})
        resources.add("AddressGroup", AddressGroupObject(ag, 1, tuple(addresses)))

    local_address: dict[str, set[str]] = defaultdict(set)
    for port_id, d in info["devices"].items():
        net = meta["networks"][d["network_id"]]
        segment = Segment(net["network_type"], net["physical_network"], net["segmentation_id"])
        port = PortObject(
            port_id, d.get("revision_number", 1), d["network_id"], d["mac_address"],
            tuple((ip, subnet_of(d["network_id"], ip)) for ip in d["fixed_ips"]),
            tuple((p["ip_address"], p.get("mac_address"))
                  for p in d.get("allowed_address_pairs") or ()),
            frozenset(d["security_groups"]), d.get("admin_state_up", True), "ACTIVE",
            d.get("device_owner", "compute:nova"), d.get("device_id", ""),
            d.get("port_security_enabled", True),
            (Binding(host, "ACTIVE", "ovs", "normal", {}),), ((host, 0, segment),))
        resources.add("Port", port)
        for ip in d["fixed_ips"]:
            local_address[ip].add(port_id)
        for pair in d.get("allowed_address_pairs") or ():  # a VIP may be several ports'
            local_address[pair["ip_address"]].add(port_id)

    # members elsewhere: one port per remote-pool member, in every group listing it
    remote: dict[object, tuple[set[str], set[str]]] = {}
    inconsistent = 0
    for group in sorted(remote_groups):
        for entries in info["sg_member_ips"].get(group, {}).values():
            for address, _ in entries:
                holders = local_address.get(address)
                if holders:
                    inconsistent += all(group not in info["devices"][h]["security_groups"]
                                        for h in holders)
                    continue
                addresses, groups = remote.setdefault(pool_key(address), (set(), set()))
                addresses.add(address)
                groups.add(group)
    for n, key in enumerate(sorted(remote, key=str)):
        addresses, groups = remote[key]
        resources.add("Port", member_port(
            sid("member", key), sorted(addresses, key=lambda a: ":" in a),
            f"fa:16:3f:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}", groups, 1))
    return {"resources": resources, "remote_groups": remote_groups,
            "address_groups": address_groups, "members_elsewhere": len(remote),
            "inconsistent": inconsistent}


def member_port(port_id: str, addresses: list[str], mac: str, groups: set[str],
                revision: int) -> PortObject:
    return PortObject(port_id, revision, REMOTE_NET, mac,
                      tuple((a, sid("remote-subnet", ":" in a)) for a in addresses), (),
                      frozenset(groups), True, "ACTIVE", "compute:nova", sid("vm", port_id),
                      True, (Binding(OTHER_HOST, "ACTIVE", "ovs", "normal", {}),),
                      ((OTHER_HOST, 0, REMOTE_SEGMENT),))


# -- neutron 29's pushes ------------------------------------------------------------------------

def ovo(name: str, data: dict[str, Any], version: str = "1.0") -> dict[str, Any]:
    return {"versioned_object.data": data, "versioned_object.name": name,
            "versioned_object.namespace": "versionedobjects",
            "versioned_object.version": version}


def port_push(port: PortObject) -> dict[str, Any]:
    """A bound port as neutron-server 29 pushes it (``neutron-vo-Port-1.11``; the shape of the
    recorded pushes, tests/unit/rpc/contract/overlay)."""
    binding = port.bindings[0]
    segment = port.levels[0][2]
    assert segment is not None
    stamp = "2026-12-06T12:00:00Z"
    return ovo("Port", {
        "admin_state_up": port.admin_state_up, "allowed_address_pairs": [],
        "binding_levels": [ovo("PortBindingLevel", {
            "driver": "openvswitch", "host": binding.host, "level": 0, "port_id": port.id,
            "segment": ovo("NetworkSegment", {
                "created_at": stamp, "hosts": [], "id": sid("segment", port.network_id),
                "is_dynamic": False, "network_id": port.network_id,
                "network_type": segment.network_type,
                "physical_network": segment.physical_network, "revision_number": 0,
                "segment_index": 0, "segmentation_id": segment.segmentation_id,
                "updated_at": stamp}),
            "segment_id": sid("segment", port.network_id)}, "1.1")],
        "bindings": [ovo("PortBinding", {
            "host": binding.host, "port_id": port.id, "profile": "{}", "status": "ACTIVE",
            "vif_details": json.dumps({"connectivity": "l2", "port_filter": True,
                                       "ovs_hybrid_plug": False, "ovs_create_tap": True,
                                       "datapath_type": "system", "bridge_name": "br-int"}),
            "vif_type": "ovs", "vnic_type": "normal"})],
        "created_at": stamp, "data_plane_status": None, "description": "",
        "device_id": port.device_id, "device_owner": port.device_owner, "dhcp_options": [],
        "distributed_bindings": [], "dns": None,
        "fixed_ips": [ovo("IPAllocation", {"ip_address": ip, "network_id": port.network_id,
                                           "port_id": port.id, "subnet_id": subnet})
                      for ip, subnet in port.fixed_ips],
        "hints": None, "id": port.id, "mac_address": port.mac_address, "name": "",
        "network_id": port.network_id, "project_id": "bench", "pvlan_community": None,
        "pvlan_type": None, "qos_network_policy_id": None, "qos_policy_id": None,
        "revision_number": port.revision,
        "security": ovo("PortSecurity", {"id": port.id, "port_security_enabled": True}),
        "security_group_ids": sorted(port.security_group_ids), "status": port.status,
        "updated_at": stamp}, "1.11")


def port_deleted_push(port_id: str) -> dict[str, Any]:
    """What neutron 29 pushes for a deleted port (recorded: 61_delete_port_p3_down.json)."""
    primitive = ovo("Port", {"id": port_id, "qos_network_policy_id": None,
                             "qos_policy_id": None, "security_group_ids": None}, "1.11")
    primitive["versioned_object.changes"] = ["qos_policy_id", "id", "qos_network_policy_id",
                                             "security_group_ids"]
    return primitive


# -- the agent's side -----------------------------------------------------------------------------

class Reports:
    """``update_device_list``, the call that stays a call: records the ports reported up."""

    def __init__(self) -> None:
        self.up: set[str] = set()
        self.changed = threading.Condition()

    def update_device_list(self, up: list[str], down: list[str], *,
                           refresh_tunnels: bool = False) -> None:
        with self.changed:
            self.up.update(up)
            self.up.difference_update(down)
            self.changed.notify_all()


class Timers:
    """Methods wrapped with timers (on the instances, as a profiler would): seconds and calls
    per label since the last :meth:`reset`."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.taken_at = self.told_at = 0.0
        self.busy = False
        """the worker is in a batch"""
        self.args: dict[str, list[Any]] = defaultdict(list)
        """label -> the first argument of each call (see :meth:`wrap`)"""

    def reset(self) -> None:
        self.spent.clear()
        self.calls.clear()

    def wrap(self, obj: Any, name: str, label: str, record: bool = False) -> None:
        original = getattr(obj, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            if record and args:
                self.args[label].append(args[0])
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.spent[label] += time.perf_counter() - started
                self.calls[label] += 1
        setattr(obj, name, timed)

    def watch_gc(self) -> None:
        """Time in the collector's passes (whichever thread they interrupt), by generation."""
        started: list[float] = []

        def callback(phase: str, details: dict[str, int]) -> None:
            if phase == "start":
                started.append(time.perf_counter())
            elif started:
                label = f"gc{details['generation']}"
                self.spent[label] += time.perf_counter() - started.pop()
                self.calls[label] += 1
        gc.callbacks.append(callback)

    def wrap_worker(self, agent: Any) -> None:
        """``Agent.run_once`` from the moment its work is taken (its wait for work apart), and
        the wait of the work in the queue (from the agent told of the member change)."""
        take, run_once, told = agent._queue.take, agent.run_once, \
            agent.security_groups_member_updated

        def timed_told(sg_ids: Any) -> None:
            self.told_at = time.perf_counter()
            told(sg_ids)

        def timed_take(timeout: float) -> Any:
            work = take(timeout)
            self.taken_at = time.perf_counter()
            self.busy = bool(work)
            return work

        def timed_run_once(timeout: float = 0.0) -> bool:
            try:
                did = run_once(timeout)
            finally:
                self.busy = False
            if did:
                self.spent["run_once"] += time.perf_counter() - self.taken_at
                self.calls["run_once"] += 1
                if self.told_at:
                    self.spent["queued"] += self.taken_at - self.told_at
                    self.told_at = 0.0
            return did
        agent.security_groups_member_updated = timed_told
        agent._queue.take = timed_take
        agent.run_once = timed_run_once


def plug(sandbox: OVSSandbox, info: dict[str, Any], port_ids: list[str]) -> None:
    """Every VIF, ``PLUG_BATCH`` per ovs-vsctl call, without waiting for the agent."""
    commands: list[str] = []
    for i, port_id in enumerate(port_ids):
        name = f"tap{i:05d}"
        commands += ["--", "add-port", BRIDGE, name, "--", "set", "Interface", name,
                     "type=internal", f"external_ids:iface-id={port_id}",
                     f"external_ids:attached-mac={info['devices'][port_id]['mac_address']}",
                     "external_ids:iface-status=active"]
        if (i + 1) % PLUG_BATCH == 0 or i + 1 == len(port_ids):
            sandbox.vsctl(*commands[1:])
            commands = []


def wait_wired(reports: Reports, agent: Any, timers: Timers, port_ids: list[str],
               timeout: float = 300.0, idle: float = 10.0) -> set[str]:
    """Until every port is reported up. Should the worker stay idle ``idle`` seconds with
    ports not up that it does not know (OVSDB announced them), its own safety net,
    ``Agent.rescan`` (due every 300 s in the agent), is run here at once; those ports."""
    wanted = set(port_ids)
    end = time.monotonic() + timeout
    lost: set[str] = set()
    since = time.monotonic()
    while True:
        with reports.changed:
            if reports.changed.wait_for(lambda: wanted <= reports.up, 0.5):
                return lost
        if time.monotonic() > end:
            raise TimeoutError(f"{len(wanted - reports.up)} ports never came up")
        if timers.busy:
            since = time.monotonic()
        elif time.monotonic() - since > idle:
            known = agent.ports.copy()
            unknown = {p for p in wanted - reports.up if p not in known}
            if unknown:
                lost |= unknown
                agent.rescan()
            since = time.monotonic()


def switch_idle(sandbox: OVSSandbox, timeout: float = 30.0) -> float:
    """Until ovs-vswitchd uses under 5% of a CPU (it is busy a while with ports just plugged,
    and a bundle then takes ms instead of a fraction); the seconds waited."""
    started = time.monotonic()
    stat = Path(f"/proc/{sandbox.vswitchd_pid}/stat")

    def cpu() -> float:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, clock ticks

    while time.monotonic() - started < timeout:
        before = cpu()
        time.sleep(0.5)
        if cpu() - before < 0.025:
            break
    return time.monotonic() - started


def quiet(programmer: Any, still: float = 0.5, timeout: float = 60.0) -> None:
    """Until the programmer has sent nothing for ``still`` seconds."""
    end = time.monotonic() + timeout
    last, since = programmer.flow_mods_sent, time.monotonic()
    while time.monotonic() - since < still and time.monotonic() < end:
        time.sleep(0.02)
        if programmer.flow_mods_sent != last:
            last, since = programmer.flow_mods_sent, time.monotonic()


def check_members(control: Any, info: dict[str, Any], groups: set[str]) -> tuple[int, int]:
    """(groups whose member addresses derived from the cache are the workload's, groups)."""
    with control.lock:
        derived = members_of(control.cache, sorted(groups))["sg_member_ips"]
    same = 0
    for group in groups:
        want = {f: {a for a, _ in e} for f, e in info["sg_member_ips"].get(group, {}).items()}
        got = {f: {a for a, _ in e} for f, e in derived.get(group, {}).items()}
        same += want == got
    return same, len(groups)


def measure(label: str, push: Callable[[], None], programmer: Any, timers: Timers,
            settle: float) -> dict[str, float]:
    """One operation: push -> the flow-mods committed; its figures."""
    quiet(programmer, still=settle)
    timers.reset()
    timers.told_at = 0.0
    mods, bundles = programmer.flow_mods_sent, programmer.bundles_sent
    started = time.perf_counter()
    push()
    pushed = time.perf_counter()
    while programmer.flow_mods_sent == mods:
        if time.perf_counter() - started > 30:
            raise TimeoutError(f"{label}: no flow-mod in 30 s")
        time.sleep(POLL)
    done = time.perf_counter()
    collected = {k: v for k, v in timers.spent.items() if k.startswith("gc")}  # by then
    full = timers.calls.get("gc2", 0)
    quiet(programmer, still=settle)  # whatever else it sends for the change counts too
    return {**timers.spent, **collected, "gc2_calls": full,
            "e2e": done - started, "push": pushed - started,
            "flow_mods": programmer.flow_mods_sent - mods,
            "bundles": programmer.bundles_sent - bundles,
            "batches": timers.calls.get("run_once", 0)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=10, help="adds (then as many removes)")
    parser.add_argument("--ports", type=int, default=1000, help="local ports plugged")
    parser.add_argument("--settle", type=float, default=0.3,
                        help="seconds of quiet before and after each operation")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="  log: %(levelname)s %(name)s: %(message)s")
    logging.getLogger().handlers[0].addFilter(Counted())
    began = time.perf_counter()
    rss_start = rss_mib()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, str(ROOT / "tests" / "workloads" / "gen.py"),
                        "--preset", "large", "--seed", "1", "--out-dir", tmp], check=True,
                       capture_output=True)
        info = json.loads((Path(tmp) / "large.json").read_text())
        meta = json.loads((Path(tmp) / "large.meta.json").read_text())
    host = meta["host"]
    port_ids = sorted(info["devices"])[:args.ports]
    info["devices"] = {p: info["devices"][p] for p in port_ids}
    server = build_server(info, meta, host)
    resources: Resources = server["resources"]
    rss_harness = rss_mib()
    print(f"cache member benchmark: large preset, rpc_mode = cache, {len(port_ids)} local "
          f"ports on {host}")
    print(f"  server objects: {len(meta['networks'])} networks, {len(info['security_groups'])} "
          f"groups ({len(server['remote_groups'])} remote, {len(server['address_groups'])} "
          f"address groups), {server['members_elsewhere']} member ports on {OTHER_HOST}"
          + (f"; {server['inconsistent']} local member addresses outside their groups (!)"
             if server["inconsistent"] else ""))

    with OVSSandbox() as sandbox:
        reports = Reports()
        control = RpcCacheControlPlane(resources, reports, host)  # type: ignore[arg-type]
        agent, ovsdb, programmer = start_agent(sandbox, BRIDGE, control)  # type: ignore[arg-type]
        catalog = resource_push_catalog({t: push_topic(t) for t in PUSHED})
        endpoint = catalog[push_topic("Port")][0](ResourcePushes(control, agent))
        while not agent.synced_once:
            time.sleep(0.05)
        rss_idle = rss_mib()
        wiring = Timers()
        wiring.wrap(control, "get_devices_details", "details")
        wiring.wrap(control, "security_group_info", "sg_info")
        wiring.wrap(control, "forget", "forget", record=True)
        wiring.wrap(agent.switch, "set_port_vlans", "tags")
        wiring.wrap(agent.dataplane.compiler, "update", "compile")
        wiring.wrap(programmer.transport, "apply", "bundle")
        wiring.wrap_worker(agent)
        time.sleep(0.6)  # the worker's next run_once is the wrapped one
        started = time.perf_counter()
        plug(sandbox, info, port_ids)
        plugged = time.perf_counter() - started
        lost = wait_wired(reports, agent, wiring, port_ids)
        forgotten = {p for ids in wiring.args["forget"] for p in ids}
        wired = time.perf_counter() - started
        quiet(programmer, still=1.0)
        idle_after = switch_idle(sandbox)
        rss_wired = rss_mib()
        status = agent.status()
        same, groups = check_members(control, info, server["remote_groups"])
        sizes = control.status()
        print(f"  {len(port_ids)} VIFs plugged in {plugged:.1f} s ({PLUG_BATCH} per ovs-vsctl), "
              f"all reported up {wired:.1f} s after the first plug; wired: {status['ports']}, "
              f"flows installed: {status['flows_installed']}, "
              f"{programmer.flow_mods_sent} flow-mods in {programmer.bundles_sent} bundles")
        spent, calls = wiring.spent, wiring.calls
        print(f"  wiring: {calls['run_once']} worker batches, {spent['run_once']:.1f} s in them: "
              f"security_group_info from the cache {calls['sg_info']} calls "
              f"{spent['sg_info']:.1f} s, details {spent['details']:.1f} s, forget "
              f"{calls['forget']} calls {spent['forget']:.1f} s, port tags (OVSDB) "
              f"{spent['tags']:.1f} s, compile {spent['compile']:.1f} s, bundles "
              f"{spent['bundle']:.1f} s")
        if lost:
            print(f"  (!) {len(lost)} VIFs announced by OVSDB (with their ofport) were unknown "
                  f"to the agent, its worker idle 10 s: its rescan (due every 300 s) was run "
                  f"then and found them; {len(lost & forgotten)} of them had been forgotten by "
                  f"the worker (the unwire of their first OVSDB row, still without an ofport)")
        print(f"  ovs-vswitchd idle {idle_after:.1f} s after the last port was wired")
        print(f"  cache: {sizes['objects']['ports']} ports, {sizes['objects']['rules']} rules, "
              f"{sizes['remote_groups']} remote groups; {resources.calls} bulk_pull calls "
              f"({len(resources.pulls)} pulls, {resources.seconds * 1000:.0f} ms in the fake "
              f"server); member addresses derived from the cache = the workload's for "
              f"{same} of {groups} remote groups")
        print(f"  RSS: {rss_wired:.0f} MiB with {len(port_ids)} ports wired (agent idle before "
              f"the plugs: {rss_idle:.0f} MiB; the harness with the workload and the server's "
              f"objects, before the agent: {rss_harness:.0f} MiB; interpreter: "
              f"{rss_start:.0f} MiB)")

        # the largest remote group (by IPv4 members, as agent_bench picks it), and where the
        # local ports' rules use it: named by rules, and kept by the compiler as conjunctions
        # (a rule whose packets another rule allows is dropped: every group allows all egress)
        target = max(server["remote_groups"], key=lambda g: len(info["sg_member_ips"][g]["IPv4"]))
        with control.lock:
            used = {sg for p in control.cache.interest.local_ports
                    if (port := control.cache.ports.get(p)) for sg in port.security_group_ids}
            named = sorted({(r.direction, r.ethertype) for sg in used
                            for r in control.cache.rules_in(sg) if r.remote_group_id == target})
            members = len(control.cache.members.get(target, ()))
        kept = sorted(o.split(":")[1:3] for o in agent.dataplane.compiler.owners
                      if o.startswith("remote:") and o.endswith(f":{target}"))
        known = {a for entries in info["sg_member_ips"][target].values() for a, _ in entries}
        timers = Timers()
        timers.wrap(control, "member_info", "member_info")
        timers.wrap(agent.cache, "ingest", "ingest")
        timers.wrap(agent.cache, "model", "model")
        timers.wrap(agent.cache, "ports_referring_to", "ports_referring_to")
        timers.wrap(agent.dataplane.compiler, "update", "compile")
        timers.wrap(programmer, "apply", "apply")
        timers.wrap(programmer.transport, "apply", "bundle")
        timers.wrap_worker(agent)
        timers.watch_gc()
        time.sleep(1.0)  # the worker's next run_once is the wrapped one
        installed_before = agent.status()["flows_installed"]

        new_ports = []
        for i in range(args.repeat):
            v4, v6 = f"10.255.255.{i + 1}", f"fd80::1:0:0:{i + 1:x}"
            assert v4 not in known and v6 not in known
            new_ports.append(member_port(sid("new-member", i), [v4, v6],
                                         f"fa:16:3f:ff:ff:{i:02x}", {target}, 1))
        results: dict[str, list[dict[str, float]]] = {"add": [], "remove": []}
        for port in new_ports:
            primitive = port_push(port)
            results["add"].append(measure("add", lambda p=primitive: endpoint.push(
                {}, resource_list=[p], event_type="updated"), programmer, timers, args.settle))
        installed_added = agent.status()["flows_installed"]
        for port in new_ports:
            primitive = port_deleted_push(port.id)
            results["remove"].append(measure("remove", lambda p=primitive: endpoint.push(
                {}, resource_list=[p], event_type="deleted"), programmer, timers,
                args.settle))
        installed_after = agent.status()["flows_installed"]
        load = Path("/proc/loadavg").read_text().split()[0]
        dropped = sum(endpoint.stats.dropped.values())
        errors = sum(endpoint.stats.handler_errors.values())
        agent.stop()
        ovsdb.stop()

    print(f"  one member of the largest remote group ({target[:8]}, {members} member ports in "
          f"the cache) added / removed, {args.repeat} times each, one at a time; the new port "
          f"has an IPv4 and an IPv6 address")
    print(f"  the local ports' rules name the group in {len(named)} (direction, IP version): "
          f"{', '.join(f'{d}/{e}' for d, e in named)}; the compiler keeps conjunctions for "
          f"{len(kept)}: {', '.join(f'{d}/IPv{v}' for d, v in kept)} (a rule another allows "
          f"is dropped: every group allows all egress) -> {len(kept)} flow-mods expected "
          f"per operation")
    print(f"  load average over the measurements (1 min, 2 cores here, this process and OVS "
          f"included): {load}")
    print(f"  flows installed: {installed_before} before, {installed_added} with the "
          f"{args.repeat} added, {installed_after} after their removal; pushes refused: "
          f"{dropped}, handler errors: {errors}")
    rows = [
        ("end to end: push at the endpoint -> flow-mods committed", "e2e"),
        ("  push: endpoint, parse, cache, agent told (caller's thread)", "push"),
        ("  queued: agent told -> worker took the work", "queued"),
        ("  Agent.run_once (the batch, from its work taken)", "run_once"),
        ("    CacheControlPlane.member_info (members from the cache)", "member_info"),
        ("    SecurityGroupCache.ports_referring_to", "ports_referring_to"),
        ("    SecurityGroupCache.ingest", "ingest"),
        ("    SecurityGroupCache.model", "model"),
        ("    HostCompiler.update (compile)", "compile"),
        ("    BridgeProgrammer.apply (plan + bundle)", "apply"),
        ("      of which transport.apply (OpenFlow bundle, committed)", "bundle"),
        ("  agent compute: run_once less the bundle's round trip", "compute"),
        ("  garbage collector, full passes (gen 2), until committed", "gc2"),
        ("  garbage collector, young passes (gen 0, 1), until committed", "gc01"),
    ]
    for op in results.values():
        for r in op:
            r["compute"] = r.get("run_once", 0.0) - r.get("bundle", 0.0)
            r["gc01"] = r.get("gc0", 0.0) + r.get("gc1", 0.0)
    print(f"  {'ms, p50 / max over ' + str(args.repeat):58} {'add':>15} {'remove':>15}")
    for title, key in rows:
        cells = []
        for op in ("add", "remove"):
            values = sorted(r.get(key, 0.0) * 1000 for r in results[op])
            cells.append(f"{statistics.median(values):6.2f} / {values[-1]:6.2f}")
        print(f"  {title:58} {cells[0]:>15} {cells[1]:>15}")
    for key, what in (("flow_mods", "flow-mods"), ("bundles", "bundles"),
                      ("batches", "worker batches (run_once with work)"),
                      ("gc2_calls", "full garbage collections until committed")):
        cells = []
        for op in ("add", "remove"):
            values = sorted(int(r.get(key, 0)) for r in results[op])
            cells.append(f"{values[0]}" if values[0] == values[-1]
                         else f"{values[0]}-{values[-1]}")
        print(f"  {what + ' per operation (min-max)':58} {cells[0]:>15} {cells[1]:>15}")
    print(f"  ({time.perf_counter() - began:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark of the resource cache's memory (issue 16, item 3). Not a test: it prints figures.

One host's cache-backed control plane (``dpagent.resources``) with L local ports in a group
``db`` whose rules name the remote group ``web`` (M members elsewhere), fed -- as the fanout
feeds it -- by the pushes of C ports of the rest of the cloud (other hosts, other groups),
each pushed ``updated`` K times (churn: created, bound, status changes) and half of them
deleted. Pushes go through the same code as the RPC endpoint's (``ResourcePushes``), parsed
from neutron 29's primitives (Port 1.11). Measured with ``tracemalloc`` (Python heap held after
a full collection), and the cache's own counts:

  1. the host alone (L local ports, their group, M members);
  2. after the cloud's churn (C x K pushes, C/2 deletes): what grew, and by how much per
     pushed port (the bounded revision maps only; the ports are not kept);
  3. M members more in ``web`` (what a referenced member costs).

    python benchmarks/cache_memory_bench.py [--quick] [--cloud 5000] [--members 200]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dpagent.resources.control_plane import CacheControlPlane, ResourcePushes  # noqa: E402
from dpagent.resources.objects import PARSERS, data_of  # noqa: E402

HOST = "compute1"
NET = "net-1"
WEB, DB = "sg-web", "sg-db"


def ovo(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"versioned_object.name": name, "versioned_object.version": "1.0",
            "versioned_object.namespace": "versionedobjects", "versioned_object.data": data}


def port(i: int, revision: int, host: str, groups: list[str]) -> dict[str, Any]:
    port_id = f"port-{i:08d}-0000-4000-8000-000000000000"
    ip = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
    return ovo("Port", {
        "id": port_id, "revision_number": revision, "network_id": NET,
        "mac_address": f"fa:16:3e:{(i >> 16) & 255:02x}:{(i >> 8) & 255:02x}:{i & 255:02x}",
        "admin_state_up": True, "status": "ACTIVE", "device_owner": "compute:nova",
        "device_id": f"vm-{i}", "security_group_ids": groups,
        "fixed_ips": [ovo("IPAllocation", {"ip_address": ip, "subnet_id": "subnet-1"})],
        "bindings": [ovo("PortBinding", {"host": host, "status": "ACTIVE", "vif_type": "ovs",
                                         "vnic_type": "normal", "profile": "{}"})],
        "binding_levels": [ovo("PortBindingLevel", {"host": host, "level": 0, "segment": ovo(
            "NetworkSegment", {"network_type": "vlan", "physical_network": "physnet1",
                               "segmentation_id": 101})})]})


class Server:
    def __init__(self, objects: dict[str, list[Any]]) -> None:
        self.objects = objects
        self.calls = 0

    def bulk_pull(self, resource_type: str, **filters: list[str]) -> list[Any]:
        self.calls += 1
        (key, values), = filters.items()
        found = []
        for primitive in self.objects.get(resource_type, []):
            obj = PARSERS[data_of(primitive, "o")[0]](primitive, "o")
            value = getattr(obj, key, None)
            if (set(value) & set(values)) if key == "security_group_ids" else value in values:
                found.append(obj)
        return found


class Agent:
    def __getattr__(self, name: str) -> Any:
        return lambda *args: None


def heap() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cloud", type=int, default=5000)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--local", type=int, default=20)
    parser.add_argument("--churn", type=int, default=3, help="updates per cloud port")
    args = parser.parse_args()
    if args.quick:
        args.cloud, args.members = 1000, 50
    rule = ovo("SecurityGroupRule", {"id": "r1", "security_group_id": DB, "direction": "ingress",
                                     "ethertype": "IPv4", "protocol": "tcp",
                                     "port_range_min": 5432, "port_range_max": 5432,
                                     "remote_group_id": WEB})
    local = [port(i, 1, HOST, [DB]) for i in range(args.local)]
    members = [port(100_000 + i, 1, "compute2", [WEB]) for i in range(args.members)]
    server = Server({"Port": local + members, "SecurityGroup": [ovo("SecurityGroup", {
        "id": DB, "revision_number": 1, "stateful": True, "rules": [rule]})]})
    tracemalloc.start()
    base = heap()
    control = CacheControlPlane(server, reports=None, host=HOST)  # type: ignore[arg-type]
    ids = [p["versioned_object.data"]["id"] for p in local]
    control.get_devices_details(ids)
    control.security_group_info(ids)
    host_alone = heap() - base
    sizes_alone = control.cache.sizes()
    pushes = ResourcePushes(control, Agent())
    started = time.perf_counter()
    for revision in range(1, args.churn + 1):
        for i in range(args.cloud):
            pushes.on_resource_push("Port", "updated", [port(200_000 + i, revision,
                                                             f"compute{i % 97 + 3}",
                                                             ["sg-other"])])
    for i in range(0, args.cloud, 2):
        pushes.on_resource_push("Port", "deleted", [ovo("Port", {
            "id": f"port-{200_000 + i:08d}-0000-4000-8000-000000000000",
            "security_group_ids": None})])
    churn_seconds = time.perf_counter() - started
    after_churn = heap() - base
    sizes_churn = control.cache.sizes()
    for i in range(args.members):
        pushes.on_resource_push("Port", "updated", [port(300_000 + i, 1, "compute2", [WEB])])
    with_more = heap() - base
    pushed = args.cloud * args.churn + args.cloud // 2
    print(f"resource cache memory: {args.local} local ports, remote group with "
          f"{args.members} members; the cloud: {args.cloud} other ports x {args.churn} updates "
          f"+ {args.cloud // 2} deletes ({pushed} pushes, {churn_seconds:.2f} s, "
          f"{churn_seconds / pushed * 1e6:.0f} us a push)")
    print(f"  {'':34} {'heap KiB':>9} {'ports':>6} {'revisions':>10}")
    print(f"  {'1. the host alone':34} {host_alone / 1024:9.0f} {sizes_alone['ports']:6} "
          f"{sizes_alone['tombstones']:10}")
    print(f"  {'2. after the cloud churned':34} {after_churn / 1024:9.0f} "
          f"{sizes_churn['ports']:6} {sizes_churn['tombstones']:10}")
    print(f"  {'3. plus ' + str(args.members) + ' members of web':34} {with_more / 1024:9.0f} "
          f"{control.cache.sizes()['ports']:6} {control.cache.sizes()['tombstones']:10}")
    print(f"  per cloud port pushed: {(after_churn - host_alone) / args.cloud:.0f} B (a "
          f"revision remembered, capped at 20,000 entries); per referenced member: "
          f"{(with_more - after_churn) / args.members:.0f} B; bulk_pulls {server.calls}")


if __name__ == "__main__":
    main()

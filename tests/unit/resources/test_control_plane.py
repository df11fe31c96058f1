"""The cache-backed control plane: a gap pulled once, changes from pushes alone (no pull),
the agent told exactly what changed, and what the host no longer uses forgotten."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dpagent.agent.sg_cache import SecurityGroupCache
from dpagent.resources.control_plane import CacheControlPlane, ResourcePushes
from dpagent.resources.objects import (
    NetworkObject,
    PortObject,
    RuleObject,
    SecurityGroupObject,
    Segment,
    SubnetObject,
)
from flows.compiler import HostCompiler
from flows.model import Network
from tests.unit.resources.test_cache import DB, HOST, NET, WEB, group, port, rule


def primitive(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"versioned_object.name": name, "versioned_object.data": data,
            "versioned_object.version": "1.0", "versioned_object.namespace": "versionedobjects"}


def port_primitive(p: PortObject) -> dict[str, Any]:
    return primitive("Port", {
        "id": p.id, "revision_number": p.revision, "network_id": p.network_id,
        "mac_address": p.mac_address, "admin_state_up": p.admin_state_up, "status": p.status,
        "device_owner": p.device_owner, "device_id": p.device_id,
        "security_group_ids": sorted(p.security_group_ids),
        "fixed_ips": [primitive("IPAllocation", {"ip_address": ip, "subnet_id": s})
                      for ip, s in p.fixed_ips],
        "allowed_address_pairs": [],
        "bindings": [primitive("PortBinding", {"host": b.host, "status": b.status,
                                               "vif_type": b.vif_type, "profile": "{}",
                                               "vnic_type": b.vnic_type})
                     for b in p.bindings],
        "binding_levels": [primitive("PortBindingLevel", {
            "host": h, "level": lv, "segment": primitive("NetworkSegment", {
                "network_type": s.network_type, "physical_network": s.physical_network,
                "segmentation_id": s.segmentation_id})}) for h, lv, s in p.levels if s]})


def rule_primitive(r: RuleObject) -> dict[str, Any]:
    return primitive("SecurityGroupRule", {
        "id": r.id, "revision_number": r.revision, "security_group_id": r.security_group_id,
        "direction": r.direction, "ethertype": r.ethertype, "protocol": r.protocol,
        "port_range_min": r.port_range_min, "port_range_max": r.port_range_max,
        "remote_group_id": r.remote_group_id})


def group_primitive(g: SecurityGroupObject) -> dict[str, Any]:
    return primitive("SecurityGroup", {"id": g.id, "revision_number": g.revision,
                                       "stateful": g.stateful,
                                       "rules": [rule_primitive(r) for r in g.rules]})


class Server:
    """bulk_pull over a dict of objects, counted."""

    def __init__(self) -> None:
        self.objects: dict[str, list[Any]] = {"Port": [], "SecurityGroup": [], "Network": [],
                                              "Subnet": [], "AddressGroup": []}
        self.pulls: list[tuple[str, dict[str, list[str]]]] = []
        self.calls = 0

    def bulk_pull(self, resource_type: str, **filters: list[str]) -> list[Any]:
        self.pulls.append((resource_type, filters))
        (key, values), = filters.items()
        found = []
        for obj in self.objects[resource_type]:
            value = getattr(obj, key, None)
            if key == "security_group_ids":
                if set(value or ()) & set(values):
                    found.append(obj)
            elif value in values:
                found.append(obj)
        return found


class Agent:
    def __init__(self) -> None:
        self.told: list[tuple[str, object]] = []

    def port_updated(self, port_id: str) -> None:
        self.told.append(("port", port_id))

    def port_deleted(self, port_id: str) -> None:
        self.told.append(("deleted", port_id))

    def security_groups_rule_updated(self, ids: list[str]) -> None:
        self.told.append(("rules", tuple(ids)))

    def security_groups_member_updated(self, ids: list[str]) -> None:
        self.told.append(("members", tuple(ids)))


def rig() -> tuple[Server, CacheControlPlane, Agent, ResourcePushes]:
    server = Server()
    server.objects["Port"] = [port("local", sgs=frozenset({DB})),
                              port("member", host="compute2")]
    server.objects["SecurityGroup"] = [group(DB, 1, rule("r1"))]
    control = CacheControlPlane(server, reports=None, host=HOST)  # type: ignore[arg-type]
    agent = Agent()
    return server, control, agent, ResourcePushes(control, agent)


def test_a_gap_is_pulled_once_and_the_answers_come_from_the_cache():
    server, control, _, _ = rig()
    details, failed = control.get_devices_details(["local"])
    assert not failed and details[0]["network_id"] == NET
    info = control.security_group_info(["local"])
    assert info["sg_member_ips"][WEB]["IPv4"] == [["10.0.0.5", "fa:16:3e:00:00:05"]]
    kinds = [k for k, _ in server.pulls]
    assert kinds == ["Port", "Network", "Subnet", "SecurityGroup", "Port"]
    assert server.pulls[-1] == ("Port", {"security_group_ids": [WEB]})
    control.get_devices_details(["local"])
    control.security_group_info(["local"])
    assert len(server.pulls) == 5  # nothing more to pull


def test_changes_come_from_pushes_alone_and_the_agent_is_told_what_changed():
    server, control, agent, pushes = rig()
    control.get_devices_details(["local"])
    control.security_group_info(["local"])
    pulled = len(server.pulls)
    # a new member of WEB on another host
    pushes.on_resource_push("Port", "updated", [port_primitive(
        port("member2", 1, ip="10.0.0.6", host="compute3"))])
    assert agent.told[-1] == ("members", (WEB,))
    assert ["10.0.0.6", "fa:16:3e:00:00:05"] in \
        control.security_group_info(["local"])["sg_member_ips"][WEB]["IPv4"]
    # a rule added to DB
    pushes.on_resource_push("SecurityGroupRule", "updated",
                            [rule_primitive(rule("r2", port_min=22, remote=None))])
    assert agent.told[-1] == ("rules", (DB,))
    assert len(control.security_group_info(["local"])["security_groups"][DB]) == 2
    # the local port set admin down
    pushes.on_resource_push("Port", "updated", [port_primitive(
        port("local", 2, sgs=frozenset({DB}), admin=False))])
    assert ("port", "local") in agent.told
    assert control.get_devices_details(["local"])[0][0]["admin_state_up"] is False
    # a port of no interest to this host: nothing kept, nothing told
    told = len(agent.told)
    pushes.on_resource_push("Port", "updated", [port_primitive(
        port("stranger", 1, sgs=frozenset({"sg-x"}), host="compute9"))])
    assert len(agent.told) == told and "stranger" not in control.cache.ports
    # the member deleted; a bad object in a push is refused alone
    pushes.on_resource_push("Port", "deleted", [
        primitive("Port", {"id": "member2", "security_group_ids": None}),
        primitive("Port", {"security_group_ids": None})])
    assert agent.told[-1] == ("members", (WEB,))
    assert len(server.pulls) == pulled  # not one pull for all of it


def test_forgetting_the_last_port_drops_what_only_it_needed():
    _, control, _, _ = rig()
    control.get_devices_details(["local"])
    control.security_group_info(["local"])
    assert control.cache.sizes()["ports"] == 2
    control.forget(["local"])
    assert control.cache.sizes()["ports"] == 0 and not control.cache.groups


def test_the_push_endpoints_deliver_each_type_to_the_cache_and_refuse_a_bad_cast():
    from dpagent.resources.control_plane import PUSHED, push_topic
    from dpagent.rpc.notifications import resource_push_catalog

    catalog = resource_push_catalog({t: push_topic(t) for t in PUSHED})
    assert set(catalog) == {"neutron-vo-Port-1.11", "neutron-vo-Network-1.3",
                            "neutron-vo-Subnet-1.2", "neutron-vo-SecurityGroup-1.6",
                            "neutron-vo-SecurityGroupRule-1.3", "neutron-vo-AddressGroup-1.2"}
    _, control, agent, pushes = rig()
    control.get_devices_details(["local"])
    control.security_group_info(["local"])
    endpoint_cls, fanout = catalog["neutron-vo-Port-1.11"]
    assert fanout
    endpoint = endpoint_cls(pushes)
    endpoint.push({}, resource_list=[port_primitive(port("local", 5, sgs=frozenset({DB}),
                                                         admin=False))],
                  event_type="updated")
    assert ("port", "local") in agent.told
    endpoint.push({}, resource_list=[], event_type="exploded")  # refused, counted
    assert endpoint.stats.dropped == {"push Port": 1}


def test_a_remote_group_named_again_has_its_members_pulled_again():
    server, control, _, pushes = rig()
    control.get_devices_details(["local"])
    control.security_group_info(["local"])
    # DB's only rule naming WEB goes: WEB's member is no longer kept
    pushes.on_resource_push("SecurityGroupRule", "deleted",
                            [primitive("SecurityGroupRule", {"id": "r1"})])
    moved = port("member", 2, host="compute2")
    server.objects["Port"][1] = moved  # the server's state, which the push tells
    pushes.on_resource_push("Port", "updated", [port_primitive(moved)])
    assert "member" not in control.cache.ports
    pulled = len(server.pulls)
    pushes.on_resource_push("SecurityGroupRule", "updated", [rule_primitive(rule("r3"))])
    info = control.security_group_info(["local"])
    assert server.pulls[pulled:] == [("Port", {"security_group_ids": [WEB]})]
    assert info["sg_member_ips"][WEB]["IPv4"] == [["10.0.0.5", "fa:16:3e:00:00:05"]]


def test_a_group_the_local_port_left_and_rejoined_is_pulled_again_not_taken_stale():
    server, control, _, pushes = rig()
    control.get_devices_details(["local"])
    control.security_group_info(["local"])
    left = port("local", 2, sgs=frozenset({"sg-x"}))
    server.objects["Port"][0] = left
    pushes.on_resource_push("Port", "updated", [port_primitive(left)])
    assert DB not in control.cache.groups  # no longer followed, so not kept
    # a rule added to DB meanwhile: its push is of no interest now
    added = rule("r2", port_min=22, remote=None)
    server.objects["SecurityGroup"] = [group(DB, 1, rule("r1"), added)]
    pushes.on_resource_push("SecurityGroupRule", "updated", [rule_primitive(added)])
    back = port("local", 3, sgs=frozenset({DB}))
    server.objects["Port"][0] = back
    pushes.on_resource_push("Port", "updated", [port_primitive(back)])
    control.get_devices_details(["local"])
    info = control.security_group_info(["local"])
    assert sorted(r["port_range_min"] for r in info["security_groups"][DB]) == [22, 5432]


# -- random histories through the control plane ----------------------------------------------

class LiveServer:
    """The server's current state, pulled as neutron answers ``bulk_pull``."""

    def __init__(self) -> None:
        self.ports: dict[str, PortObject] = {"local": port("local", 1, sgs=frozenset({DB}))}
        self.rules: dict[str, RuleObject] = {"r0": rule("r0")}
        self.calls = 0

    def bulk_pull(self, resource_type: str, **filters: list[str]) -> list[Any]:
        (key, values), = filters.items()
        if resource_type == "Port":
            return [p for p in self.ports.values()
                    if (p.id in values if key == "id" else p.security_group_ids & set(values))]
        if resource_type == "SecurityGroup":
            return [group(sg, 1, *[r for _, r in sorted(self.rules.items())
                                   if r.security_group_id == sg]) for sg in values]
        return []


SCENARIO_GROUPS = [DB, "sg-x"]
STEPS = st.one_of(
    st.tuples(st.just("local"), st.sampled_from([frozenset({DB}), frozenset({"sg-x"}),
                                                 frozenset({DB, "sg-x"})])),
    st.tuples(st.just("add_rule"), st.sampled_from(SCENARIO_GROUPS),
              st.sampled_from([WEB, "sg-x", None])),
    st.tuples(st.just("del_rule"), st.integers(0, 20)),
    st.tuples(st.just("member"), st.sampled_from(["m1", "m2"]),
              st.sampled_from([frozenset({WEB}), frozenset({"sg-x"}), frozenset()])),
)


@settings(max_examples=1500, deadline=None)
@given(st.data())
def test_any_history_of_group_moves_and_late_pushes_ends_where_a_fresh_agent_does(data):
    """The local port moves between groups, rules come and go in groups it has left, members
    move; pushes are late, duplicated, reordered; the agent pulls what it is told changed, from
    the server's state of that moment. At the end it derives what a fresh agent derives."""
    server = LiveServer()
    control = CacheControlPlane(server, reports=None, host=HOST)  # type: ignore[arg-type]
    agent = Agent()
    pushes = ResourcePushes(control, agent)
    control.get_devices_details(["local"])
    control.security_group_info(["local"])
    pending: list[tuple[str, str, Any]] = []
    revisions = {"local": 1, "m1": 0, "m2": 0}

    def deliver(count: int) -> None:
        for _ in range(count):
            if not pending:
                return
            i = data.draw(st.integers(0, len(pending) - 1))
            kind, event, item = pending[i] if data.draw(st.booleans()) else pending.pop(i)
            pushes.on_resource_push(kind, event, [item])
        if agent.told:
            agent.told.clear()
            control.get_devices_details(["local"])
            control.security_group_info(["local"])

    for n, step in enumerate(data.draw(st.lists(STEPS, max_size=12))):
        if step[0] in ("local", "member"):
            port_id, sgs = ("local", step[1]) if step[0] == "local" else (step[1], step[2])
            revisions[port_id] += 1
            moved = port(port_id, revisions[port_id], sgs=sgs,
                         ip=f"10.0.{revisions[port_id]}.{len(port_id)}",
                         host=HOST if port_id == "local" else "compute2")
            server.ports[port_id] = moved
            pending.append(("Port", "updated", port_primitive(moved)))
        elif step[0] == "add_rule":
            added = rule(f"r{n + 1}", sg=step[1], remote=step[2], port_min=100 + n)
            server.rules[added.id] = added
            pending.append(("SecurityGroupRule", "updated", rule_primitive(added)))
        elif server.rules:
            rule_id = sorted(server.rules)[step[1] % len(server.rules)]
            del server.rules[rule_id]
            pending.append(("SecurityGroupRule", "deleted",
                            primitive("SecurityGroupRule", {"id": rule_id})))
        deliver(data.draw(st.integers(0, 2)))
    while pending:
        deliver(len(pending))

    fresh = CacheControlPlane(server, reports=None, host=HOST)  # type: ignore[arg-type]
    assert control.get_devices_details(["local"]) == fresh.get_devices_details(["local"])
    assert control.security_group_info(["local"]) == fresh.security_group_info(["local"])


def test_the_cache_tells_members_networks_and_subnets_so_a_foreign_address_is_split():
    """Overlapping addresses: WEB's member 10.0.0.5 is on net-2; net-1 (the db port's, the
    same 10.0.0.0/24) cannot see it arrive, so its member flow matches on net-2 only."""
    server = Server()
    other = replace(port("local2", sgs=frozenset({DB}), ip="10.0.0.8"), network_id="net-2")
    member = replace(port("member", host="compute2"), network_id="net-2")
    server.objects["Port"] = [port("local", sgs=frozenset({DB}), ip="10.0.0.9"), other, member]
    server.objects["SecurityGroup"] = [group(DB, 1, rule("r1"))]
    server.objects["Network"] = [NetworkObject(n, 1, 1500, (Segment("vlan", "physnet1", v),))
                                 for n, v in ((NET, 101), ("net-2", 102))]
    server.objects["Subnet"] = [SubnetObject(f"subnet-{n}", 1, n, "10.0.0.0/24")
                                for n in (NET, "net-2")]
    control = CacheControlPlane(server, reports=None, host=HOST)  # type: ignore[arg-type]
    control.get_devices_details(["local", "local2"])
    info = control.security_group_info(["local", "local2"])
    assert info["member_networks"][WEB] == {"10.0.0.5": ["net-2"]}
    assert info["network_subnets"] == {NET: ["10.0.0.0/24"], "net-2": ["10.0.0.0/24"]}

    sg_cache = SecurityGroupCache()
    sg_cache.networks.update({1: Network(NET, 1, None), 2: Network("net-2", 2, None)})
    sg_cache.ingest(info, {"local": {"ofport": 1, "local_vlan": 1},
                           "local2": {"ofport": 2, "local_vlan": 2}})
    result = HostCompiler().compile(sg_cache.model())
    (only,) = result.owners["member:ingress:4:10.0.0.5"]
    assert dict(only.match)["reg6"] == "0x2"


def test_names_are_read_from_the_objects_and_are_only_words():
    """Names (for dpagent-ctl trace) come from the pushed objects; one that is not a string
    is no name and no error."""
    from dpagent.resources.objects import parse_port, parse_security_group

    named = group_primitive(group(DB, 2, rule("r1")))
    named["versioned_object.data"]["name"] = "db"
    local = port_primitive(port("local", sgs=frozenset({DB})))
    local["versioned_object.data"]["name"] = 42
    _, control, _, _ = rig()
    control.cache.groups[DB] = parse_security_group(named)
    control.cache.ports["local"] = parse_port(local)
    assert control.names(["local", DB, "unknown"]) == {DB: "db"}


def test_a_member_change_is_answered_with_the_members_alone_as_the_full_answer_has_them():
    """What member_info says of a remote group equals the full SG info's keys for it; a group
    never pulled whole gets None (the agent then asks the full answer)."""
    server, control, _, _ = rig()
    control.get_devices_details(["local"])
    assert control.member_info([WEB]) is None  # not pulled yet
    full = control.security_group_info(["local"])
    pulls = len(server.pulls)
    members = control.member_info([WEB])
    assert members == {"sg_member_ips": {WEB: full["sg_member_ips"][WEB]},
                       "member_networks": {WEB: full["member_networks"][WEB]}}
    assert len(server.pulls) == pulls  # from the cache alone
    assert control.member_info(["not-named-by-any-rule"]) is None


def test_a_port_expected_here_is_answered_for_before_its_vif_and_let_go_after():
    """Bound here, not plugged: the cache follows the port (its groups, its remote groups'
    members) without a details call, so that the agent can install those members ahead;
    forgetting it drops what only it needed."""
    server, control, _, _ = rig()
    control.expect(["local"])
    info = control.security_group_info(["local"])
    assert set(info["devices"]) == {"local"}
    assert info["sg_member_ips"][WEB]["IPv4"] == [["10.0.0.5", "fa:16:3e:00:00:05"]]
    cache = SecurityGroupCache()
    changed = cache.ingest(info, {}, expected=["local"])
    assert changed.expected == {"local"} and not changed.ports
    assert cache.model().expected == {"local": (DB,)} and not cache.model().ports
    control.forget(["local"])
    assert control.cache.sizes()["ports"] == 0 and not control.cache.groups

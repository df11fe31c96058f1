"""The cache-backed control plane: a gap pulled once, changes from pushes alone (no pull),
the agent told exactly what changed, and what the host no longer uses forgotten."""

from __future__ import annotations

from typing import Any

from dpagent.resources.control_plane import CacheControlPlane, ResourcePushes
from dpagent.resources.objects import PortObject, RuleObject, SecurityGroupObject
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

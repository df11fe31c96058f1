"""dpagent-controller for a cache-backed agent: its objects parse as neutron's do, ``bulk_pull``
filters as neutron's, a reload pushes exactly the objects it changed with growing revisions,
and a cache fed by those pushes derives what one filled from scratch derives."""

from __future__ import annotations

import copy

from dpagent.controller.objects import Revisions, bulk_pull, pushes
from dpagent.controller.topology import parse_topology
from dpagent.resources.cache import Interest, ResourceCache
from dpagent.resources.derive import security_group_info
from dpagent.resources.objects import PARSERS, data_of
from tests.unit.controller.conftest import sample


def parsed(primitives):
    return [PARSERS[data_of(p, "p")[0]](p, "p") for p in primitives]


def reload(change):
    old = parse_topology(sample())
    revisions = Revisions()
    revisions.advance(None, old)
    before = dict(revisions.of)
    doc = copy.deepcopy(sample())
    change(doc)
    new = parse_topology(doc, old)
    revisions.advance(old, new)
    return old, new, revisions, before, pushes(old, new, revisions, {})


def names(topology, casts):
    by_id = {i.id: i.name for kind in topology.by_kind().values() for i in kind.values()}
    rules = {r.id: f"rule of {g.name}" for g in topology.security_groups.values()
             for r in g.rules}
    return [(c.topic, c.kwargs["event_type"],
             [by_id.get(o["versioned_object.data"]["id"],
                        rules.get(o["versioned_object.data"]["id"], "?"))
              for o in c.kwargs["resource_list"]]) for c in casts]


def test_every_object_parses_as_neutrons_and_pulls_filter_as_neutrons():
    topology = parse_topology(sample())
    revisions = Revisions()
    revisions.advance(None, topology)
    for kind in ("Port", "Network", "Subnet", "SecurityGroup", "SecurityGroupRule"):
        assert parsed(bulk_pull(topology, revisions, {}, kind, {"id": []})) == []
    web = next(g for g in topology.security_groups.values() if g.name == "web")
    members = parsed(bulk_pull(topology, revisions, {}, "Port",
                               {"security_group_ids": [web.id]}))
    assert members and all(web.id in p.security_group_ids for p in members)
    (group,) = parsed(bulk_pull(topology, revisions, {}, "SecurityGroup", {"id": [web.id]}))
    assert {r.id for r in group.rules} == {r.id for r in web.rules}


def test_nothing_changed_nothing_pushed():
    *_, casts = reload(lambda d: None)
    assert casts == []


def test_a_rule_added_pushes_the_rule_alone_with_a_newer_revision():
    old, new, revisions, before, casts = reload(lambda d: d["security_groups"][0]["rules"]
                                                .append({"direction": "ingress",
                                                         "protocol": "udp",
                                                         "port_range": "53"}))
    assert names(new, casts) == [("neutron-vo-SecurityGroupRule-1.3", "updated",
                                  ["rule of web"])]
    (rule,) = parsed(casts[0].kwargs["resource_list"])
    assert rule.revision > max(before.values())


def test_a_port_deleted_pushes_its_deletion_with_a_revision():
    old, new, revisions, _, casts = reload(lambda d: d["ports"].pop(1))
    (cast,) = casts
    assert cast.topic == "neutron-vo-Port-1.11" and cast.kwargs["event_type"] == "deleted"
    assert cast.kwargs["resource_list"][0]["versioned_object.data"]["revision_number"] == \
        revisions.generation_now  # so a port re-created with that id later is accepted


def test_a_cache_fed_by_the_pushes_derives_what_a_fresh_one_does():
    def change(d):
        d["ports"][1]["security_groups"] = []
        d["security_groups"][0]["rules"].append({"direction": "ingress", "protocol": "udp",
                                                 "port_range": "53"})
    old, new, revisions, before, casts = reload(change)
    before_revisions = Revisions()
    before_revisions.of = dict(before)  # what the cache was filled with, before the reload
    local = next(p for p in old.ports.values() if p.security_groups)

    def filled(topology, revs):
        port = parsed(bulk_pull(topology, revs, {}, "Port", {"id": [local.id]}))[0]
        groups = parsed(bulk_pull(topology, revs, {}, "SecurityGroup",
                                  {"id": sorted(port.security_group_ids)}))
        remote = {r.remote_group_id for g in groups for r in g.rules if r.remote_group_id}
        cache = ResourceCache(Interest(local_ports={local.id},
                                       groups=set(port.security_group_ids),
                                       remote_groups=remote, networks={port.network_id}))
        for obj in [port, *groups, *parsed(bulk_pull(topology, revs, {}, "Port",
                                                     {"security_group_ids": sorted(remote)}))]:
            cache.put(obj)
        return cache

    pushed = filled(old, before_revisions)
    for cast in casts:
        for item in cast.kwargs["resource_list"]:
            kind, data = data_of(item, "p")
            if cast.kwargs["event_type"] == "deleted":
                pushed.delete(kind, data["id"], data.get("revision_number"))
            else:
                pushed.put(PARSERS[kind](item, "p"))
    fresh = filled(new, revisions)
    assert security_group_info(pushed, [local.id]) == security_group_info(fresh, [local.id])

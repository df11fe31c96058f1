"""A reload's difference becomes the notifications neutron would send, in order."""

from __future__ import annotations

import copy

from dpagent.controller.changes import diff
from dpagent.controller.notifier import render
from dpagent.controller.topology import parse_topology
from tests.unit.controller.conftest import sample


def reload(change):
    old = parse_topology(sample())
    doc = copy.deepcopy(sample())
    change(doc)
    new = parse_topology(doc, old)
    names = {**{i.id: i.name for kind in old.by_kind().values() for i in kind.values()},
             **{i.id: i.name for kind in new.by_kind().values() for i in kind.values()}}
    changes = diff(old, new)
    casts = [c for ch in changes for c in render(ch, old, new, {})]
    return [(c.kind, [names[i] for i in c.ids]) for c in changes], casts


def test_nothing_changed_nothing_sent():
    assert reload(lambda d: None) == ([], [])


def test_rule_added_is_rule_updated_of_that_group():
    changes, casts = reload(lambda d: d["security_groups"][0]["rules"].append(
        {"direction": "ingress", "protocol": "udp", "port_range": "53"}))
    assert changes == [("security_groups_rule_updated", ["web"])]
    (cast,) = casts
    assert (cast.topic, cast.version, cast.server) == (
        "q-agent-notifier-security_group-update", "1.1", None)


def test_stateful_flag_change_is_a_rule_update():
    changes, _ = reload(lambda d: d["security_groups"][1].update(stateful=True))
    assert changes == [("security_groups_rule_updated", ["quiet"])]


def test_port_created_bound_gives_member_update_then_port_update():
    changes, casts = reload(lambda d: d["ports"].append(
        {"name": "vm9", "network": "net-a", "security_groups": ["web"], "host": "compute1"}))
    assert changes == [("security_groups_member_updated", ["web"]), ("port_update", ["vm9"])]
    port = casts[1].kwargs
    assert port["network_type"] == "flat" and port["port"]["binding:host_id"] == "compute1"


def test_port_deleted_gives_member_update_then_port_delete():
    changes, casts = reload(lambda d: d["ports"].pop(1))
    assert changes == [("security_groups_member_updated", ["web"]), ("port_delete", ["vm2"])]
    assert casts[1].kwargs == {"port_id": casts[1].kwargs["port_id"]}


def test_group_change_and_address_pairs_and_address_groups():
    def change(d):
        d["ports"][1]["security_groups"] = []
        d["ports"][0]["allowed_address_pairs"] = []
        d["address_groups"][0]["addresses"] = ["198.51.100.0/24"]
    changes, _ = reload(change)
    (kind, groups), *updates = changes
    assert (kind, sorted(groups)) == ("security_groups_member_updated", ["ops", "web"])
    assert updates == [("port_update", ["vm1"]), ("port_update", ["vm2"])]


def test_a_name_is_the_identity_so_a_rename_is_delete_and_create():
    changes, _ = reload(lambda d: d["ports"][0].update(name="renamed"))
    assert changes == [("security_groups_member_updated", ["web"]),
                       ("port_update", ["renamed"]), ("port_delete", ["vm1"])]


def test_unbind_tells_the_old_host():
    changes, casts = reload(lambda d: d["ports"][1].pop("host"))
    assert changes == [("port_update", ["vm2"])]
    assert casts[0].kwargs["port"]["binding:host_id"] == ""


def test_network_update_and_delete():
    def change(d):
        d["networks"][0]["mtu"] = 9000
        d["networks"].append({"name": "spare", "type": "flat", "physnet": "physnet9"})
    old_doc = sample()
    old_doc["networks"].append({"name": "spare", "type": "flat", "physnet": "physnet9"})
    old = parse_topology(old_doc)
    doc = copy.deepcopy(old_doc)
    doc["networks"][0]["mtu"] = 9000
    doc["networks"].pop()
    changes = diff(old, parse_topology(doc, old))
    assert [c.kind for c in changes] == ["network_update", "network_delete"]


def test_trunk_and_subport_pushes():
    def change(d):
        d["trunks"][0]["subports"] = [{"port": "vm2", "segmentation_id": 20}]
    changes, casts = reload(change)
    assert [c[0] for c in changes][-2:] == ["subports_deleted", "subports_created"]
    deleted, created = casts[-2:]
    assert (deleted.topic, deleted.method, deleted.kwargs["event_type"]) == (
        "neutron-vo-SubPort-1.0", "push", "deleted")
    data = created.kwargs["resource_list"][0]["versioned_object.data"]
    assert data["segmentation_id"] == 20 and data["segmentation_type"] == "vlan"
    changes, casts = reload(lambda d: d.update(trunks=[]))
    assert changes[-1][0] == "trunk_deleted"
    assert casts[-1].topic == "neutron-vo-Trunk-1.1"
    assert casts[-1].kwargs["event_type"] == "deleted"

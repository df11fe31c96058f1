"""The topology file: what it resolves to, ids kept across reloads, export round trip, and
refusals that name the item and field."""

from __future__ import annotations

import copy

import pytest

from dpagent.controller.topology import (
    TopologyError,
    export_topology,
    load_document,
    parse_topology,
)
from tests.unit.controller.conftest import sample


def by_name(items):
    return {i.name: i for i in items.values()}


def test_sample_resolves_names_to_ids_and_neutron_defaults():
    t = parse_topology(sample())
    nets, groups, ports = by_name(t.networks), by_name(t.security_groups), by_name(t.ports)
    assert nets["net-v"].segmentation_id == 100 and nets["net-a"].physical_network is None
    web = groups["web"]
    assert web.stateful is True and groups["quiet"].stateful is False
    assert [(r.protocol, r.port_range_min, r.port_range_max) for r in web.rules][:2] == [
        ("tcp", 80, 80), ("tcp", 5432, 5432)]
    assert web.rules[1].remote_group_id == web.id
    assert web.rules[2].remote_address_group_id == by_name(t.address_groups)["ops"].id
    assert groups["quiet"].rules[0].ethertype == "IPv4"  # neutron's default ethertype
    vm2 = ports["vm2"]
    assert vm2.mac_address.startswith("fa:16:3e:")
    assert [f.ip_address for f in vm2.fixed_ips] == ["10.10.0.2"]  # first free, not gateway
    sub = ports["vm3-sub10"]
    assert sub.device_owner == "trunk:subport" and sub.host == "compute1"  # parent's host
    assert ports["sr1"].pci_slot == "0000:00:02.1" and ports["sr1"].vnic_type == "direct"


def test_reload_keeps_ids_macs_and_allocated_addresses():
    first = parse_topology(sample())
    again = parse_topology(sample(), first)
    assert again == first
    doc = sample()
    doc["ports"].insert(0, {"name": "new", "network": "net-a"})
    third = parse_topology(doc, first)
    assert by_name(third.ports)["vm2"] == by_name(first.ports)["vm2"]
    # .2-.4 stay with vm2, vm3-sub10 and other; .11 is vm1's
    assert [f.ip_address for f in by_name(third.ports)["new"].fixed_ips] == ["10.10.0.5"]


def test_rule_ids_follow_rule_content():
    first = parse_topology(sample())
    doc = sample()
    web = doc["security_groups"][0]
    web["rules"] = list(reversed(web["rules"])) + [{"direction": "egress", "ethertype": "IPv6"}]
    second = parse_topology(doc, first)
    old = {r.content(): r.id for r in by_name(first.security_groups)["web"].rules}
    new = {r.content(): r.id for r in by_name(second.security_groups)["web"].rules}
    assert {k: new[k] for k in old} == old and len(new) == len(old) + 1


def test_default_egress_only_when_asked():
    doc = {"security_groups": [{"name": "a"}, {"name": "b", "default_egress": True}]}
    groups = by_name(parse_topology(doc).security_groups)
    assert groups["a"].rules == ()
    assert [(r.direction, r.ethertype) for r in groups["b"].rules] == [("egress", "IPv4"),
                                                                      ("egress", "IPv6")]


def test_export_round_trips():
    first = parse_topology(sample())
    exported = export_topology(first)
    assert parse_topology(exported, first) == first
    assert parse_topology(load_document(str(exported).replace("'", '"').replace(
        "None", "null").replace("True", "true").replace("False", "false")), first) == first


def _with(change):
    doc = copy.deepcopy(sample())
    change(doc)
    return doc


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(version=2), "version: this controller reads version 1, got 2"),
    (lambda d: d.update(routers=[]), "topology: unknown field(s) routers"),
    (lambda d: d["networks"][1].update(segmentation_id=4095),
     "networks[net-v].segmentation_id: expected an integer in 1..4094, got 4095"),
    (lambda d: d["networks"][1].pop("physnet"),
     "networks[net-v].physnet: a vlan network needs a physnet"),
    (lambda d: d["networks"][0].update(type="vxlan"),
     "networks[net-a].type: expected one of flat, vlan, got 'vxlan'"),
    (lambda d: d["networks"].append(dict(d["networks"][1], name="dup")),
     "networks[dup]: segment vlan physnet1 100 is already used by network 'net-v'"),
    (lambda d: d["ports"].append({"name": "vm1", "network": "net-a"}),
     "ports[vm1]: declared twice"),
    (lambda d: d["ports"][0].update(network="net-x"),
     "ports[vm1].network: no network named 'net-x'"),
    (lambda d: d["ports"][0].update(fixed_ips=["10.99.0.1"]),
     "ports[vm1].fixed_ips[0]: 10.99.0.1 is in no subnet of network 'net-a'"),
    (lambda d: d["ports"][1].update(fixed_ips=["10.10.0.11"]),
     "ports[vm2].fixed_ips[0]: 10.10.0.11 is already used by port 'vm1'"),
    (lambda d: d["ports"][0].update(security_groups=["web", "quiet"]),
     "ports[vm1].security_groups: mixes stateful and stateless groups"),
    (lambda d: d["ports"][0].update(port_security_enabled=False),
     "ports[vm1].port_security_enabled: a port without port security can have neither"),
    (lambda d: d["ports"][0].update(mac="fa:16:3e:00:00:0g"),
     "ports[vm1].mac: not a MAC address: 'fa:16:3e:00:00:0g'"),
    (lambda d: d["ports"][1].update(mac="FA:16:3E:00:00:01"),
     "ports[vm2].mac: fa:16:3e:00:00:01 is already used by port 'vm1'"),
    (lambda d: d["ports"][0].update(pci_slot="0000:00:02.1"),
     "ports[vm1].pci_slot: only a direct port has one"),
    (lambda d: d["ports"][4].update(pci_slot="02.1"),
     "ports[sr1].pci_slot: expected a PCI address like 0000:00:02.1, got '02.1'"),
    (lambda d: d["ports"][0].update(colour="red"), "ports[vm1]: unknown field(s) colour"),
    (lambda d: d["security_groups"][0]["rules"].append({"direction": "in"}),
     "security_groups[web].rules[4].direction: expected one of ingress, egress, got 'in'"),
    (lambda d: d["security_groups"][0]["rules"].append(
        {"direction": "ingress", "protocol": "tcp", "port_range": "90-80"}),
     "security_groups[web].rules[4].port_range: 90-80 is empty"),
    (lambda d: d["security_groups"][0]["rules"].append(
        {"direction": "ingress", "port_range": "80"}),
     "security_groups[web].rules[4]: a port range needs protocol tcp, udp"),
    (lambda d: d["security_groups"][0]["rules"].append(
        {"direction": "ingress", "remote_group": "nope"}),
     "security_groups[web].rules[4].remote_group: no security group named 'nope'"),
    (lambda d: d["security_groups"][0]["rules"].append(
        {"direction": "ingress", "ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"}),
     "security_groups[web].rules[4].remote_ip_prefix: 10.0.0.0/8 is not IPv6"),
    (lambda d: d["address_groups"][0].update(addresses=["300.0.0.0/8"]),
     "address_groups[ops].addresses[0]: not an IP network: '300.0.0.0/8'"),
    (lambda d: d["trunks"][0].update(parent="nope"), "trunks[trunk1].parent: no port named"),
    (lambda d: d["trunks"][0]["subports"].append(
        {"port": "vm2", "segmentation_id": 10}),
     "trunks[trunk1].subports[1].segmentation_id: VLAN 10 is already used in this trunk"),
    (lambda d: d["trunks"][0]["subports"].append({"port": "vm3", "segmentation_id": 11}),
     "trunks[trunk1].subports[1].port: port 'vm3' is already used by trunk 'trunk1'"),
])
def test_refusals_name_the_item_and_field(change, message):
    with pytest.raises(TopologyError) as caught:
        parse_topology(_with(change))
    assert str(caught.value).startswith(message)


def test_yaml_syntax_errors_name_the_source():
    with pytest.raises(TopologyError, match=r"^topo\.yaml: not valid YAML"):
        load_document("ports: [", "topo.yaml")
    with pytest.raises(TopologyError, match=r"^topo\.yaml: expected a mapping at the top"):
        load_document("- a", "topo.yaml")

"""Rule normalisation keeps what a port allows and shrinks how many flows say it."""

from flows import compile_sg_info
from flows.model import Direction
from flows.normalize import normalize
from flows.parse import parse_rule
from tests.unit.flows.helpers import port, rule, sg_info


def rule_flows(result, ofport):
    return [line for line in result.flow_lines()
            if line.startswith(("table=13,", "table=32,")) and f"reg5={ofport:#x}," in line]


def test_neutron_scale_recipe_needs_few_flows():
    """neutron's own scale recipe: tcp 3000..3000+i for i <= 1000 on one port. neutron's
    firewall makes ~13,200 flows of it; merged it is the range 3000-4000."""
    rules = [rule(protocol="tcp", port_range_min=3000 + i, port_range_max=3000 + i)
             for i in range(1001)]
    result = compile_sg_info(sg_info({"p": port(1)}, {"sg": rules}))
    flows = rule_flows(result, 1)
    assert len(flows) <= 20
    assert len(flows) == 7  # 3000-4000 as value/mask blocks


def parsed(*rules):
    return [parse_rule(r, f"r{i}") for i, r in enumerate(rules)]


def test_covered_prefixes_and_ports_are_dropped_but_remembered():
    atoms = normalize(parsed(
        rule(protocol="tcp", port_range_min=22, port_range_max=22, source_ip_prefix="10.1.0.0/16"),
        rule(protocol="tcp", port_range_min=20, port_range_max=30, source_ip_prefix="10.0.0.0/8"),
        rule(protocol="udp", source_ip_prefix="10.1.2.3/32"),
        rule(source_ip_prefix="10.1.0.0/16"),  # any protocol: covers the udp rule
    ), Direction.INGRESS)
    assert len(atoms) == 2
    by_proto = {a.protocol: a for a in atoms}
    assert by_proto[6].dst_ports == ((20, 30),) and str(by_proto[6].remote.network) == "10.0.0.0/8"
    assert set(by_proto[6].origins) == {"r0", "r1"}
    assert {"r2", "r3"} <= set(by_proto[None].origins)  # r0 is covered by r3 as well


def test_adjacent_ranges_merge_and_full_range_means_any():
    atoms = normalize(parsed(
        rule(protocol="udp", port_range_min=1, port_range_max=1000),
        rule(protocol="udp", port_range_min=1001, port_range_max=65535),
    ), Direction.INGRESS)
    assert len(atoms) == 1 and atoms[0].dst_ports is None


def test_directions_and_families_stay_apart():
    rules = parsed(rule(protocol="tcp"), rule(direction="egress", protocol="tcp"),
                   rule(ethertype="IPv6", protocol="tcp"))
    assert len(normalize(rules, Direction.INGRESS)) == 2
    assert len(normalize(rules, Direction.EGRESS)) == 1


def test_group_rules_are_not_covered_by_a_narrower_prefix():
    atoms = normalize(parsed(rule(protocol="tcp", remote_group_id="g"),
                             rule(protocol="tcp", source_ip_prefix="10.0.0.0/8")),
                      Direction.INGRESS)
    assert len(atoms) == 2
    atoms = normalize(parsed(rule(protocol="tcp", remote_group_id="g"),
                             rule(protocol="tcp", source_ip_prefix="0.0.0.0/0")),
                      Direction.INGRESS)
    assert len(atoms) == 1

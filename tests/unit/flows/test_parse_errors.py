"""Bad input: a clear error naming the port and rule; the other ports compile; the bad port gets
no flows at all, so its traffic stays dropped rather than opened."""

import pytest

from flows import compile_sg_info
from tests.unit.flows.helpers import flows_of, port, rule, sg_info

GOOD = {"good": [rule(protocol="tcp", port_range_min=22, port_range_max=22)]}

BAD_RULES = {
    "unknown protocol": (rule(protocol="tcpp"), "unknown protocol 'tcpp'"),
    "protocol number": (rule(protocol="300"), "protocol number 300 is outside 0-255"),
    "invalid prefix": (rule(source_ip_prefix="10.0.0.300/8"), "invalid source_ip_prefix"),
    "wrong family prefix": (rule(source_ip_prefix="fd00::/8"), "is not an IPv4 prefix"),
    "min > max": (rule(protocol="tcp", port_range_min=90, port_range_max=80),
                  "port_range_min 90 is greater than port_range_max 80"),
    "port out of range": (rule(protocol="udp", port_range_min=70000),
                          "port_range_min 70000 is outside 0-65535"),
    "icmp code without type": (rule(protocol="icmp", port_range_max=0),
                               "an ICMP code needs an ICMP type"),
    "ports without protocol": (rule(port_range_min=80, port_range_max=80),
                               "a port range needs a protocol"),
    "ports on gre": (rule(protocol="gre", port_range_min=80, port_range_max=80),
                     "protocol 47 has no ports"),
    "direction": (rule(direction="sideways"), "direction must be ingress or egress"),
    "ethertype": (rule(ethertype="IPX"), "ethertype must be IPv4 or IPv6"),
    "unknown field": (rule(colour="blue"), "unknown rule field(s) colour"),
    "stateful type": (rule(stateful="yes"), "stateful must be true or false"),
}


@pytest.mark.parametrize("case", sorted(BAD_RULES))
def test_bad_rule_fails_only_its_ports(case):
    bad_rule, expected = BAD_RULES[case]
    info = sg_info({"p-bad": port(1, groups=("bad",)), "p-good": port(2, groups=("good",))},
                   {"bad": [rule(protocol="icmp"), bad_rule], **GOOD})
    result = compile_sg_info(info)
    assert [e.port_id for e in result.errors] == ["p-bad"]
    message = str(result.errors[0])
    assert message.startswith("port p-bad: security group bad rule #1 ("), message
    assert expected in message
    assert flows_of(result, 1) == []
    assert any("tp_dst=22" in line for line in flows_of(result, 2))


def test_group_without_rules_data():
    result = compile_sg_info(sg_info({"p": port(1, groups=("missing",))}, {}))
    assert [str(e) for e in result.errors] == [
        "port p: security group missing has no rules data"]
    assert flows_of(result, 1) == []


def test_mixed_statefulness_is_refused_per_port():
    groups = {"sf": [rule(protocol="tcp")], "sl": [rule(protocol="udp", stateful=False)]}
    result = compile_sg_info(sg_info({"mixed": port(1, groups=("sf", "sl")),
                                      "ok": port(2, groups=("sl",))}, groups))
    assert [e.port_id for e in result.errors] == ["mixed"]
    assert "mixes stateful and stateless" in str(result.errors[0])
    assert flows_of(result, 1) == [] and flows_of(result, 2)


@pytest.mark.parametrize("field,value,expected", [
    ("mac_address", "zz:16:3e:00:00:01", "invalid MAC address"),
    ("ofport", None, "ofport must be a positive integer"),
    ("ofport", -1, "ofport must be a positive integer"),
    ("local_vlan", 4095, "local_vlan must be an integer in 1-4094"),
    ("fixed_ips", ["10.0.0.999"], "invalid fixed IP"),
    ("security_groups", "sg", "security_groups must be a list"),
    ("port_security_enabled", "no", "port_security_enabled must be true or false"),
])
def test_bad_port_fields(field, value, expected):
    bad = port(1)
    bad[field] = value
    result = compile_sg_info(sg_info({"bad": bad, "good": port(2)}, {"sg": [rule()]}))
    assert [e.port_id for e in result.errors] == ["bad"]
    assert expected in str(result.errors[0])
    assert flows_of(result, 2)


def test_same_ofport_twice_fails_the_second_port():
    result = compile_sg_info(sg_info({"a": port(1), "b": port(1, mac="fa:16:3e:00:00:77")},
                                     {"sg": [rule()]}))
    assert [str(e) for e in result.errors] == ["port b: ofport 1 is used by port a too"]


def test_unmatchable_port_range_matches_nothing_and_warns():
    result = compile_sg_info(sg_info(
        {"p": port(1)}, {"sg": [rule(protocol="dccp", port_range_min=5, port_range_max=6)]}))
    assert not result.errors
    assert any("cannot match ports" in w for w in result.warnings)
    assert not any("nw_proto=33" in line for line in result.flow_lines())


def test_port_without_port_security_needs_no_groups():
    result = compile_sg_info(sg_info({"open": port(1, groups=("nowhere",), port_security=False)},
                                     {}))
    assert not result.errors
    lines = flows_of(result, 1)
    assert lines == ["table=0,priority=100,cookie=" + lines[0].split("cookie=")[1].split(",")[0]
                     + ",in_port=1,vlan_tci=0x0000/0x1fff"
                     + ",actions=load:0x1->NXM_NX_REG6[],goto_table:20"]

"""Whole-compiler properties: determinism, flow budgets, O(1) member changes, traceability."""

import copy
import json
import random
from pathlib import Path

from flows import compile_sg_info
from flows.diff import diff
from tests.unit.flows.helpers import port, rule, sg_info

GOLDEN = Path(__file__).parent / "golden"


def default_group(stateful=True):
    """neutron's default security group: egress anywhere, ingress from the same group."""
    return [rule("egress", "IPv4", stateful), rule("egress", "IPv6", stateful),
            rule("ingress", "IPv4", stateful, remote_group_id="default"),
            rule("ingress", "IPv6", stateful, remote_group_id="default")]


def dual_stack(ofport):
    return port(ofport, ips=(f"10.0.0.{ofport}", f"fd00::{ofport:x}"), groups=("default",))


def host_with_default_group(n_ports, extra_members=()):
    devices = {f"p{i}": dual_stack(i) for i in range(1, n_ports + 1)}
    members = {"default": {
        "IPv4": [[f"10.0.0.{i}", None] for i in range(1, n_ports + 1)] + [
            [m, None] for m in extra_members if ":" not in m],
        "IPv6": [[f"fd00::{i:x}", None] for i in range(1, n_ports + 1)] + [
            [m, None] for m in extra_members if ":" in m]}}
    return sg_info(devices, {"default": default_group()}, members)


def test_same_input_same_flows_byte_for_byte():
    info = host_with_default_group(5)
    first = compile_sg_info(info).flow_lines()
    shuffled = copy.deepcopy(info)
    items = list(shuffled["devices"].items())
    random.Random(7).shuffle(items)
    shuffled["devices"] = dict(items)
    shuffled["sg_member_ips"]["default"]["IPv4"].reverse()
    assert compile_sg_info(shuffled).flow_lines() == first
    assert compile_sg_info(json.loads(json.dumps(info))).flow_lines() == first


def test_default_group_on_one_dual_stack_port_costs_at_most_35_flows():
    """neutron's firewall spends 63 flows on this port; the shared pipeline is counted apart."""
    empty = compile_sg_info(sg_info({}, {})).flows()
    result = compile_sg_info(host_with_default_group(1))
    added = set(result.flows()) - set(empty)
    assert len(added) <= 35, len(added)
    assert len(result.flows()) - len(empty) == len(added)


def test_one_member_change_is_one_flow_whatever_the_number_of_ports():
    for n_ports in (10, 100):
        before = compile_sg_info(host_with_default_group(n_ports)).flows()
        after = compile_sg_info(host_with_default_group(n_ports, ["10.9.9.9"])).flows()
        change = diff(before, after)
        assert change.flow_mods == 1, (n_ports, change)
        (added,) = change.add
        assert "nw_src=10.9.9.9" in added.render() and "conjunction(" in added.render()
        assert diff(after, before).flow_mods == 1


def test_member_in_two_groups_is_one_flow_with_two_conjunctions():
    groups = {"a": [rule(protocol="tcp", port_range_min=22, port_range_max=22,
                         remote_group_id="ga")],
              "b": [rule(protocol="tcp", port_range_min=80, port_range_max=80,
                         remote_group_id="gb")]}
    members = {"ga": {"IPv4": [["10.5.0.1", None]]},
               "gb": {"IPv4": [["10.5.0.1", None], ["10.6.0.0/24", None]]}}
    result = compile_sg_info(sg_info({"p1": port(1, groups=("a",)), "p2": port(2, groups=("b",))},
                                     groups, members))
    shared = [line for line in result.flow_lines() if "nw_src=10.5.0.1," in line]
    assert len(shared) == 1 and shared[0].count("conjunction(") == 2


def test_every_rule_flow_is_explained_by_its_cookie():
    groups = {"web": [rule(protocol="tcp", port_range_min=80, port_range_max=80)]}
    result = compile_sg_info(sg_info({"p": port(1, groups=("web",))}, groups))
    rule_flows = [f for f in result.flows() if f.table == 32 and "tp_dst" in f.match_text()]
    assert len(rule_flows) == 1
    meaning = result.explain(rule_flows[0].cookie)
    assert meaning == "port p ingress: security group web rule #0"
    assert all(f.cookie >> 48 == 0xD9A6 for f in result.flows())


def test_the_same_rule_in_two_groups_is_explained_by_each_ports_own_group():
    """Two groups with an identical rule share its flows' shape, never their meaning: each
    port's flow names its own group's rule (found by dpagent-ctl rules on the demo)."""
    groups = {"web": [rule(protocol="tcp", port_range_min=80, port_range_max=80)],
              "db": [rule(protocol="udp", port_range_min=53, port_range_max=53),
                     rule(protocol="tcp", port_range_min=80, port_range_max=80)]}
    result = compile_sg_info(sg_info({"p1": port(1, groups=("web",)),
                                      "p2": port(2, groups=("db",))}, groups))
    meanings = {result.explain(f.cookie) for f in result.flows()
                if f.table == 32 and "tp_dst=80" in f.match_text()}
    assert meanings == {"port p1 ingress: security group web rule #0",
                        "port p2 ingress: security group db rule #1"}


def test_golden_flows_of_a_small_host():
    """The exact flow text, so a change of shape shows up in review (regenerate with
    DPAGENT_REGEN_GOLDEN=1)."""
    import os
    info = json.loads((GOLDEN / "small_host.json").read_text())
    lines = "\n".join(compile_sg_info(info).flow_lines()) + "\n"
    golden = GOLDEN / "small_host.flows"
    if os.environ.get("DPAGENT_REGEN_GOLDEN"):
        golden.write_text(lines)
    assert lines == golden.read_text()

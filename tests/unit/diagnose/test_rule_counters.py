"""Counts per security-group rule from flow counters: summed per port, shared for remote
groups, every rule listed (a rule covered by another has no flow of its own)."""

from __future__ import annotations

from dpagent.diagnose.rule_counters import count_rules, describe, parse_flow_stats
from flows import cookies
from flows.compiler import HostCompiler
from flows.parse import parse_host
from tests.unit.flows.helpers import port, rule, sg_info

GROUPS = {"web": [rule("egress", id="r-out"),
                  rule(protocol="tcp", port_range_min=80, port_range_max=80, id="r-80"),
                  rule(protocol="tcp", port_range_min=80, port_range_max=80,
                       source_ip_prefix="10.1.0.0/16", id="r-80-narrow"),
                  rule(protocol="tcp", port_range_min=5432, port_range_max=5432,
                       remote_group_id="web", id="r-5432"),
                  rule(protocol="dccp", port_range_min=1, port_range_max=2, id="r-dccp")]}


def compiled():
    model = parse_host(sg_info({"p1": port(1, groups=("web",)), "p2": port(2, groups=("web",))},
                               GROUPS, {"web": {"IPv4": [["10.0.0.1", None],
                                                         ["10.0.0.2", None]]}}))
    compiler = HostCompiler()
    compiler.compile(model)
    return model, compiler


def test_parse_flow_stats_sums_per_cookie():
    text = (" cookie=0xd9a6030000000001, duration=1.0s, table=32, n_packets=3, n_bytes=300, "
            "priority=70,tcp actions=goto_table:33\n"
            " cookie=0xd9a6030000000001, duration=1.0s, table=13, n_packets=2, n_bytes=20, "
            "priority=70,ip actions=goto_table:14\nNXST_FLOW reply (xid=0x4):\n")
    assert parse_flow_stats(text) == {0xD9A6030000000001: (5, 320)}


def test_each_rule_gets_its_flows_counts_and_a_remote_group_rule_its_conjunctions():
    model, compiler = compiled()
    stats = {}
    conj_cookie = None
    for owner, flows in compiler.owners.items():
        for flow in flows:
            if owner == "port:p1" and "tp_dst=80" in flow.match_text():
                stats[flow.cookie] = (7, 700)
            if cookies.kind_of(flow.cookie) == cookies.Kind.REMOTE_GROUP:
                conj_cookie = flow.cookie
                stats[flow.cookie] = (4, 400)
    assert conj_cookie is not None
    rows = {(r.port_id, r.rule): r for r in count_rules(model, compiler.owners,
                                                        compiler.meanings, stats)}
    assert sorted(rows) == [(p, r) for p in ("p1", "p2")
                            for r in ("r-5432", "r-80", "r-80-narrow", "r-dccp", "r-out")]
    assert (rows["p1", "r-80"].packets, rows["p1", "r-80"].bytes) == (7, 700)
    assert rows["p2", "r-80"].packets == 0 and rows["p2", "r-80"].flows >= 1  # never matched
    # tcp/80 from anywhere covers the narrower rule: one flow stands for both, counts for both
    assert (rows["p1", "r-80-narrow"].flows, rows["p1", "r-80-narrow"].packets) == (1, 7)
    # the switch cannot match dccp ports: the rule allows nothing and has no flow
    assert (rows["p1", "r-dccp"].flows, rows["p1", "r-dccp"].packets) == (0, 0)
    shared = rows["p1", "r-5432"]
    assert (shared.packets, shared.shared.startswith("conjunction ")) == (4, True)
    assert rows["p2", "r-5432"].shared == shared.shared  # one count for both ports
    assert rows["p1", "r-out"].direction == "egress"


def test_a_rule_in_a_few_words():
    model, _ = compiled()
    words = [describe(r) for r in model.groups["web"]]
    assert words == ["IPv4", "IPv4 tcp 80", "IPv4 tcp 80 from 10.1.0.0/16",
                     "IPv4 tcp 5432 from group web", "IPv4 protocol 33 1-2"]

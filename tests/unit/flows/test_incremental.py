"""Incremental compilation equals a full compile of the final model, after any sequence of
changes, and touches no more owners than the change needs."""

import copy
import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from flows.compiler import HostCompiler
from flows.parse import parse_host
from tests.unit.flows.helpers import port, rule, sg_info

GROUPS = {
    "web": [rule(protocol="tcp", port_range_min=80, port_range_max=80),
            rule(protocol="tcp", port_range_min=22, port_range_max=22, remote_group_id="admin"),
            rule("egress")],
    "admin": [rule(remote_group_id="admin"), rule("egress"),
              rule("egress", "IPv6"), rule(ethertype="IPv6", remote_group_id="admin")],
    "db": [rule(protocol="tcp", port_range_min=5432, port_range_max=5432,
                remote_group_id="web"), rule("egress", protocol="udp")],
    "sl": [rule(protocol="udp", stateful=False, remote_address_group_id="office"),
           rule("egress", stateful=False)],
}


def base_info():
    devices = {f"p{i}": port(i, ips=(f"10.0.{i // 3}.{i}", f"fd00::{i:x}"),
                             groups=(list(GROUPS)[i % 4],), vlan=1 + i % 2,
                             network=f"net{1 + i % 2}") for i in range(1, 7)}
    members = {"admin": {"IPv4": [["10.0.0.3", None], ["10.9.0.0/16", None]],
                         "IPv6": [["fd00::3", None]]},
               "web": {"IPv4": [["10.0.0.1", None], ["10.0.1.5", None]]},
               "office": {"IPv4": [["192.0.2.0/24", None]]}}
    return sg_info(devices, copy.deepcopy(GROUPS), members,
                   networks={"net1": {"local_vlan": 1, "uplink": {"ofport": 100, "vlan": 10},
                                      "subnets": ["10.0.0.0/22"]},
                             "net2": {"local_vlan": 2, "uplink": None,
                                      "subnets": ["10.0.0.0/22"]}})


addresses = st.sampled_from(["10.0.0.3", "10.0.0.1", "10.7.7.7", "10.9.0.0/16", "10.0.1.5"])
mutations = st.one_of(
    st.tuples(st.just("member+"), st.sampled_from(["admin", "web", "office"]), addresses),
    st.tuples(st.just("member-"), st.sampled_from(["admin", "web", "office"]), addresses),
    st.tuples(st.just("rule"), st.sampled_from(list(GROUPS)), st.integers(1, 65535)),
    st.tuples(st.just("drop-rule"), st.sampled_from(list(GROUPS)), st.integers(0, 3)),
    st.tuples(st.just("port-"), st.integers(1, 8), st.just(None)),
    st.tuples(st.just("port+"), st.integers(7, 9), st.sampled_from(list(GROUPS))),
    st.tuples(st.just("regroup"), st.integers(1, 6), st.sampled_from(list(GROUPS))),
    # where a member lives (the resource cache tells), and the local networks' subnets
    st.tuples(st.just("origin"), st.sampled_from(["admin", "web"]),
              st.tuples(addresses, st.sampled_from([None, ["net1"], ["net2"], ["net9"],
                                                    ["net1", "net9"]]))),
    # ports bound here whose VIFs are not plugged yet (their remote groups go in ahead)
    st.tuples(st.just("expect+"), st.sampled_from(["x1", "x2", "p2"]),
              st.sampled_from(list(GROUPS) + ["missing"])),
    st.tuples(st.just("expect-"), st.sampled_from(["x1", "x2", "p2"]), st.just(None)),
    st.tuples(st.just("subnets"), st.sampled_from(["net1", "net2"]),
              st.sampled_from([[], ["10.0.0.0/22"], ["10.0.1.0/24", "10.9.3.0/24"],
                               ["10.7.0.0/16"]])),
)


def mutate(info, mutation):
    """Apply one change; return what the agent would tell the compiler."""
    kind, a, b = mutation
    if kind in ("member+", "member-"):
        entries = info["sg_member_ips"].setdefault(a, {}).setdefault("IPv4", [])
        if kind == "member+" and [b, None] not in entries:
            entries.append([b, None])
        if kind == "member-" and [b, None] in entries:
            entries.remove([b, None])
        return {"members": [a]}
    if kind == "rule":
        stateful = GROUPS[a][0]["stateful"]
        info["security_groups"][a].append(rule(protocol="tcp", port_range_min=b,
                                               port_range_max=b, stateful=stateful))
        return {"groups": [a]}
    if kind == "drop-rule":
        rules = info["security_groups"][a]
        if b < len(rules):
            del rules[b]
        return {"groups": [a]}
    if kind == "port-":
        info["devices"].pop(f"p{a}", None)
        return {"ports": [f"p{a}"]}
    if kind == "port+":
        info["devices"][f"p{a}"] = port(a, ips=(f"10.0.5.{a}",), groups=(b,))
        return {"ports": [f"p{a}"]}
    if kind == "origin":
        address, networks = b
        by_address = info.setdefault("member_networks", {}).setdefault(a, {})
        if networks is None:
            by_address.pop(address, None)
        else:
            by_address[address] = networks
        return {"members": [a]}
    if kind == "expect+":
        info.setdefault("expected", {})[a] = (b,)
        return {"expected": [a]}
    if kind == "expect-":
        info.setdefault("expected", {}).pop(a, None)
        return {"expected": [a]}
    if kind == "subnets":
        info["networks"][a]["subnets"] = b
        return {}
    if kind == "regroup" and f"p{a}" in info["devices"]:
        info["devices"][f"p{a}"]["security_groups"] = [b]
    return {"ports": [f"p{a}"]}


def model_of(info):
    """The model of ``info``, with the expected ports the steps named (not SG_INFO's)."""
    expected = info.get("expected", {})
    plain = {k: v for k, v in info.items() if k != "expected"}
    return dataclasses.replace(parse_host(plain), expected=dict(expected))


@settings(max_examples=150, deadline=None)
@given(st.lists(mutations, min_size=1, max_size=6))
def test_updates_equal_a_full_compile(steps):
    info = base_info()
    compiler = HostCompiler()
    compiler.compile(model_of(info))
    mirror = dict(compiler.owners)  # what a programmer applying the changes would hold
    for step in steps:
        what = mutate(info, step)
        changes = compiler.update(model_of(info), **what)
        for owner, flows in changes.items():
            if flows is None:
                mirror.pop(owner, None)
            else:
                mirror[owner] = flows
        full = HostCompiler().compile(model_of(info))
        assert compiler.owners == full.owners, step
        assert mirror == full.owners, step
        assert {e.port_id for e in compiler.result().errors} == {e.port_id for e in full.errors}


def test_member_change_touches_one_owner_per_direction_in_use():
    info = base_info()
    compiler = HostCompiler()
    compiler.compile(parse_host(info))
    info["sg_member_ips"]["admin"]["IPv4"].append(["10.3.3.3", None])
    changes = compiler.update(parse_host(info), members=["admin"])
    assert list(changes) == ["member:ingress:4:10.3.3.3"]


def overlap_info():
    """db (net1) lets web in on 5432; web's member 10.0.0.5 lives on net2, and net1 -- the same
    10.0.0.0/24 -- has a port of its own holding 10.0.0.5, in admin, not in web. web's member
    10.1.0.6 lives on net3, outside net1's subnets: routed traffic, it matches anywhere."""
    devices = {"db": port(1, ips=("10.0.0.9",), groups=("db",), vlan=1, network="net1"),
               "intruder": port(2, ips=("10.0.0.5",), groups=("admin",), vlan=1,
                                network="net1"),
               "member": port(3, ips=("10.0.0.5",), groups=("web",), vlan=2, network="net2")}
    members = {"web": {"IPv4": [["10.0.0.5", None], ["10.1.0.6", None]]},
               "admin": {"IPv4": [["10.0.0.5", None]]}}
    info = sg_info(devices, copy.deepcopy(GROUPS), members,
                   networks={"net1": {"local_vlan": 1, "subnets": ["10.0.0.0/24"]},
                             "net2": {"local_vlan": 2, "subnets": ["10.0.0.0/24"]}})
    info["member_networks"] = {"web": {"10.0.0.5": ["net2"], "10.1.0.6": ["net3"]},
                               "admin": {"10.0.0.5": ["net1"]}}
    return info


def member_lines(result, address):
    return sorted(f.render_body() for owner, flows in result.owners.items()
                  if owner.startswith("member:ingress:4:") and owner.endswith(f":{address}")
                  for f in flows)


def conjunction_of(result, group):
    (flow,) = result.owners[f"remote:ingress:4:{group}"]
    return dict(flow.match)["conj_id"]


def test_a_member_from_another_network_does_not_match_where_its_address_is_someone_elses():
    result = HostCompiler().compile(parse_host(overlap_info()))
    web, admin = conjunction_of(result, "web"), conjunction_of(result, "admin")
    lines = member_lines(result, "10.0.0.5")
    # on net1 (reg6=0x1) 10.0.0.5 is the intruder's, a member of admin only; on net2 web's
    assert len(lines) == 2
    on_net1 = next(line for line in lines if "reg6=0x1," in line)
    on_net2 = next(line for line in lines if "reg6=0x2," in line)
    assert f"conjunction({web}," not in on_net1 and f"conjunction({admin}," in on_net1
    assert f"conjunction({web}," in on_net2
    # a member outside net1's subnets (routed to it) stays one flow for every network
    (routed,) = member_lines(result, "10.1.0.6")
    assert "reg6=" not in routed and f"conjunction({web}," in routed


def test_without_member_networks_membership_stays_by_address_as_in_neutron():
    info = overlap_info()
    del info["member_networks"]
    result = HostCompiler().compile(parse_host(info))
    assert not any("reg6=" in line for line in member_lines(result, "10.0.0.5"))


def test_a_member_change_with_networks_still_touches_only_its_address():
    info = overlap_info()
    compiler = HostCompiler()
    compiler.compile(parse_host(info))
    info["sg_member_ips"]["web"]["IPv4"].append(["10.0.0.7", None])
    info["member_networks"]["web"]["10.0.0.7"] = ["net2"]
    changes = compiler.update(parse_host(info), members=["web"])
    assert sorted(changes) == ["member:ingress:4:10.0.0.7"]
    (only,) = changes["member:ingress:4:10.0.0.7"]  # not on net1, where it cannot come from
    assert dict(only.match)["reg6"] == "0x2"
    # a member of web holds it on both networks now: one flow for all of them again
    info["member_networks"]["web"]["10.0.0.7"] = ["net1", "net2"]
    changes = compiler.update(parse_host(info), members=["web"])
    assert sorted(changes) == ["member:ingress:4:10.0.0.7"]
    (only,) = changes["member:ingress:4:10.0.0.7"]
    assert "reg6" not in dict(only.match)


def test_an_expected_port_brings_its_remote_groups_members_and_no_flow_of_its_own():
    """A port bound here, VIF not plugged: the member flows and the conjunction flow of the
    remote groups its rules name, nothing else; the same once the port is plugged, minus
    nothing; gone again when it is no longer expected."""
    info = base_info()
    for p in [p for p, d in info["devices"].items() if "db" in d["security_groups"]]:
        del info["devices"][p]  # no port uses db: nothing names "web" as a remote group
    compiler = HostCompiler()
    compiler.compile(model_of(info))
    before = dict(compiler.owners)
    assert not [o for o in before if o.startswith("member:") and "10.0.1.5" in o]
    info["expected"] = {"x1": ("db",)}
    changes = compiler.update(model_of(info), expected=["x1"])
    assert sorted(changes) == ["member:ingress:4:10.0.0.1", "member:ingress:4:10.0.1.5",
                               "remote:ingress:4:web"]
    assert all(flows for flows in changes.values())
    info["devices"]["p9"] = port(9, ips=("10.0.5.9",), groups=("db",))
    plugged = compiler.update(model_of(info), ports=["p9"])
    assert sorted(plugged) == ["network:1", "port:p9"]  # the members were there already
    del info["expected"]
    assert compiler.update(model_of(info), expected=["x1"]) == {}  # p9 uses them now
    del info["devices"]["p9"]
    gone = compiler.update(model_of(info), ports=["p9"])
    assert set(gone) >= set(changes) and all(gone[o] is None for o in changes)

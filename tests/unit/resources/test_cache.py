"""The resource cache: revisions order updates, deletions leave tombstones, rules live on their
own, only what the host uses is kept, and -- over random sequences of pushes, duplicated and
reordered -- the cache ends up deriving exactly what a fresh cache filled from the final server
state derives (so the compiler, which is deterministic, gives the same flows)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from dpagent.resources.cache import Interest, ResourceCache
from dpagent.resources.derive import device_details, security_group_info
from dpagent.resources.objects import (
    Binding,
    NetworkObject,
    PortObject,
    RuleObject,
    SecurityGroupObject,
    Segment,
)

HOST = "compute1"
NET = "net-1"
WEB, DB = "sg-web", "sg-db"


def port(port_id: str, revision: int = 1, *, sgs: frozenset[str] = frozenset({WEB}),
         ip: str = "10.0.0.5", host: str = HOST, admin: bool = True) -> PortObject:
    segment = Segment("vlan", "physnet1", 101)
    return PortObject(port_id, revision, NET, "fa:16:3e:00:00:05", ((ip, "subnet-1"),), (),
                      sgs, admin, "ACTIVE", "compute:nova", "vm", True,
                      (Binding(host, "ACTIVE", "ovs", "normal", {}),), ((host, 0, segment),))


def rule(rule_id: str, sg: str = DB, revision: int = 0, remote: str | None = WEB,
         port_min: int | None = 5432) -> RuleObject:
    return RuleObject(rule_id, revision, sg, "ingress", "IPv4", "tcp", port_min, port_min,
                      None, None, remote, None)


def group(sg: str, revision: int, *rules: RuleObject, stateful: bool = True
          ) -> SecurityGroupObject:
    return SecurityGroupObject(sg, revision, stateful, rules)


def interest() -> Interest:
    return Interest(local_ports={"local"}, groups={DB}, remote_groups={WEB}, networks={NET})


def test_an_older_or_equal_revision_is_ignored_and_a_deleted_port_stays_deleted():
    cache = ResourceCache(interest())
    assert cache.put(port("local", 3, ip="10.0.0.7")).ports == {"local"}
    assert not cache.put(port("local", 2, ip="10.0.0.8"))  # late
    assert not cache.put(port("local", 3, ip="10.0.0.9"))  # a duplicate
    assert cache.ports["local"].fixed_ips[0][0] == "10.0.0.7"
    assert cache.delete("Port", "local").ports == {"local"}
    assert not cache.put(port("local", 3))  # the push that was overtaken by the delete
    assert "local" not in cache.ports


def test_only_what_the_host_uses_is_kept():
    cache = ResourceCache(interest())
    cache.put(port("elsewhere", sgs=frozenset({"sg-other"})))  # the fanout brings it
    assert "elsewhere" not in cache.ports
    change = cache.put(port("member", sgs=frozenset({WEB}), host="compute2"))
    assert change.member_groups == {WEB} and "member" in cache.ports
    # it leaves WEB: dropped, and WEB's members changed
    change = cache.put(port("member", 2, sgs=frozenset({"sg-other"}), host="compute2"))
    assert change.member_groups == {WEB} and "member" not in cache.ports
    assert not cache.put(NetworkObject("net-9", 1, 1500, ()))  # no local port on it
    assert not cache.put(group("sg-unused", 1, rule("r9", "sg-unused")))


def test_a_push_passed_over_before_the_port_mattered_does_not_hide_the_pulled_port():
    cache = ResourceCache(interest())
    mine = frozenset({DB})
    assert not cache.put(port("new", 3, sgs=mine))  # pushed before the agent asked for it
    assert not cache.put(port("new", 2, sgs=mine))
    cache.interest.local_ports.add("new")
    assert not cache.put(port("new", 2, sgs=mine))  # still older than what was seen
    assert cache.put(port("new", 3, sgs=mine)).ports == {"new"}  # pulled: the same revision


def test_a_member_update_that_changes_nothing_of_its_membership_is_no_member_change():
    cache = ResourceCache(interest())
    cache.put(port("member", 1, host="compute2"))
    moved = replace(port("member", 2, host="compute2"), status="DOWN")
    assert not cache.put(moved).member_groups
    assert cache.put(port("member", 3, ip="10.0.0.99", host="compute2")).member_groups == {WEB}


def test_rules_live_on_their_own_a_group_update_removes_none_and_a_group_delete_takes_them():
    cache = ResourceCache(interest())
    cache.put(group(DB, 1, rule("r1")))
    assert cache.put(rule("r2", port_min=22)).rule_groups == {DB}  # no group push for this
    cache.put(group(DB, 2, rule("r1")))  # a later update that does not list r2 yet
    assert [r.id for r in cache.rules_in(DB)] == ["r1", "r2"]
    assert cache.delete("SecurityGroupRule", "r2").rule_groups == {DB}
    assert not cache.put(rule("r2", port_min=22))  # its late duplicate
    assert [r.id for r in cache.rules_in(DB)] == ["r1"]
    cache.delete("SecurityGroup", DB)
    assert cache.rules_in(DB) == [] and not cache.put(rule("r1"))


def test_forget_unwanted_drops_what_no_local_port_refers_to():
    cache = ResourceCache(interest())
    cache.put(port("local"))
    cache.put(port("member", host="compute2"))
    cache.put(group(DB, 1, rule("r1")))
    cache.interest.local_ports.clear()
    cache.interest.groups.clear()
    cache.interest.remote_groups.clear()
    cache.interest.networks.clear()
    cache.forget_unwanted()
    assert cache.sizes() == {"ports": 0, "networks": 0, "subnets": 0, "security_groups": 0,
                             "rules": 0, "address_groups": 0, "tombstones": 0}


# -- random push sequences ------------------------------------------------------------------

MEMBERS = ["m1", "m2", "m3"]
RULES = ["r1", "r2", "r3"]


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[tuple[str, object]], dict[str, object]]:
    """A server history (each object's successive versions, maybe a final delete) and the
    pushes an agent receives of it: every event at least once, some twice, in an order that
    keeps no promise but the one neutron keeps -- nothing (pushes may be reordered)."""
    events: list[tuple[str, object]] = []
    final: dict[str, object] = {}
    for member in ["local", *MEMBERS]:
        revision = 0
        for _ in range(draw(st.integers(1, 3))):
            revision += draw(st.integers(1, 2))
            obj = port(member, revision, sgs=frozenset(draw(st.sampled_from(
                [{WEB}, {WEB, DB}, {"sg-x"}]))) if member != "local" else frozenset({DB}),
                ip=f"10.0.{revision}.{MEMBERS.index(member) + 10 if member in MEMBERS else 5}",
                host=HOST if member == "local" else "compute2")
            events.append(("put", obj))
            final[member] = obj
        if member != "local" and draw(st.booleans()):
            events.append(("delete", ("Port", member, revision)))
            final[member] = None
    events.append(("put", group(DB, 1, rule("r1"))))
    for rule_id in RULES[1:]:
        if draw(st.booleans()):
            events.append(("put", rule(rule_id, port_min=20 + RULES.index(rule_id))))
            final[rule_id] = rule(rule_id, port_min=20 + RULES.index(rule_id))
            if draw(st.booleans()):
                events.append(("delete", ("SecurityGroupRule", rule_id, 0)))
                final[rule_id] = None
    duplicated = events + draw(st.lists(st.sampled_from(events), max_size=6))
    return draw(st.permutations(duplicated)), final


def fill(cache: ResourceCache, events: list[tuple[str, object]]) -> None:
    for kind, what in events:
        if kind == "put":
            cache.put(what)  # type: ignore[arg-type]
        else:
            cache.delete(*what)  # type: ignore[misc]


@settings(max_examples=300, deadline=None)
@given(histories())
def test_any_order_of_pushes_ends_where_a_fresh_cache_of_the_final_state_does(history):
    events, final = history
    pushed = ResourceCache(interest())
    # the rule r1 comes with its group; a fresh agent pulls the group after the history
    fill(pushed, events)
    fresh = ResourceCache(interest())
    fresh.put(group(DB, 1, rule("r1"), *[r for k, r in final.items()  # type: ignore[misc]
                                        if k in RULES and r is not None]))
    for key, obj in final.items():
        if key not in RULES and obj is not None:
            fresh.put(obj)  # type: ignore[arg-type]
    assert device_details(pushed, "local", HOST) == device_details(fresh, "local", HOST)
    assert security_group_info(pushed, ["local"]) == security_group_info(fresh, ["local"])

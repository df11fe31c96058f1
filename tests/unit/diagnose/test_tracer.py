"""The daemon's side of ``dpagent-ctl trace``: which port is meant, the question put to the
switch, names in the answer (the switch is a canned ``ovs-appctl``)."""

from __future__ import annotations

import ipaddress

import pytest

from dpagent.diagnose.explain import HostView
from dpagent.diagnose.tracer import LocalPort, Snapshot, TraceError, find_port, trace
from flows.model import Port


def port(port_id: str, ofport: int, ip: str, state: str = "wired") -> LocalPort:
    model = Port(port_id, ofport, 1, "net", f"fa:16:3e:00:00:0{ofport}",
                 (ipaddress.ip_address(ip),), (), True, ("sg-web",)) if state == "wired" \
        else None
    return LocalPort(port_id, f"tap{port_id[:11]}", f"fa:16:3e:00:00:0{ofport}", ofport, state,
                     "" if state == "wired" else "agent administratively down", model)


PORTS = (port("aaaa1111-web", 2, "10.0.0.2"), port("bbbb2222-db", 3, "10.0.0.3"),
         port("aaaa3333-late", 4, "10.0.0.4", state="admin-down"))
VIEW = HostView({}, {}, {2: "aaaa1111-web", 3: "bbbb2222-db"},
                {p.name: p.port_id for p in PORTS})


@pytest.mark.parametrize("wanted", ["bbbb2222-db", "bbbb", "10.0.0.3", "tapbbbb2222-db",
                                    "fa:16:3e:00:00:03"])
def test_a_port_by_id_prefix_address_interface_or_mac(wanted):
    assert find_port(PORTS, wanted).port_id == "bbbb2222-db"


def test_an_ambiguous_or_unknown_port_is_refused_with_the_candidates():
    with pytest.raises(TraceError, match="'aaaa' is ambiguous: aaaa1111-web .*aaaa3333-late"):
        find_port(PORTS, "aaaa")
    with pytest.raises(TraceError, match=r"no port of this host is '10.0.0.9' \(known: "):
        find_port(PORTS, "10.0.0.9")


DROP = """\
Flow: tcp,in_port=2

bridge("br-int")
----------------
 0. in_port=2,vlan_tci=0x0000/0x1fff, priority 100, cookie 0xd9a6020000000001
    set_field:0x2->reg5
    goto_table:10
13. priority 0, cookie 0xd9a6010000000002
    drop

Final flow: unchanged
Datapath actions: drop
"""


def test_the_question_put_to_the_switch_and_the_answer_in_names():
    asked = []

    def appctl(args):
        asked.append(args)
        return DROP if args[0] == "ofproto/trace" else "  br-int:\n    br-int 65534/1: (tap)\n"

    snapshot = Snapshot(PORTS, VIEW, names={"aaaa1111-web": "web1", "bbbb2222-db": "db1"})
    answer = trace(snapshot, appctl, {"from": "10.0.0.2", "to": "10.0.0.3",
                                      "service": "tcp/5432", "state": "established"})
    assert asked[0] == ["ofproto/trace", "br-int",
                        "in_port=2,tcp,dl_src=fa:16:3e:00:00:02,dl_dst=fa:16:3e:00:00:03,"
                        "nw_src=10.0.0.2,nw_dst=10.0.0.3,nw_ttl=64,tp_src=40000,tp_dst=5432",
                        "--ct-next", "trk,est", "--ct-next", "trk,est"]
    assert (answer["verdict"], answer["stage"]) == (
        "DROPPED", "egress rules of port web1 (aaaa1111-web)")
    assert answer["from"] == "web1 aaaa1111-web (tapaaaa1111-we, wired)"
    assert "raw" not in answer


def test_a_held_port_is_said_to_have_no_flows_and_bad_input_is_an_error():
    def appctl(args):
        return DROP.replace(" 0. in_port", " 0. priority 0, cookie 0x1\n    drop\n 1. x") \
            if args[0] == "ofproto/trace" else ""

    answer = trace(Snapshot(PORTS, VIEW), appctl,
                   {"from": "10.0.0.2", "to": "aaaa3333-late", "service": "icmp",
                    "dst_mac": "fa:16:3e:00:00:04"})
    assert "error" in answer and "has no IPv4 address" in answer["error"]
    answer = trace(Snapshot(PORTS, VIEW), appctl,
                   {"from": "aaaa3333-late", "to": "10.0.0.3", "service": "icmp",
                    "src_ip": "10.0.0.4"})
    assert answer["notes"] == ["port aaaa3333-late is admin-down: agent administratively "
                               "down -- it has no flows, so its traffic is dropped"]
    assert trace(Snapshot(PORTS, VIEW), appctl, {"from": "10.0.0.2", "to": "10.0.0.3",
                                                 "service": "tcp/99999"}) == {
        "error": "service 'tcp/99999': tcp needs one port, 1-65535 (e.g. tcp/5432)"}

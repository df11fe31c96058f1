"""Bridges left by neutron's agent (OpenFlow 1.0-1.4 only, a TCP controller) are made fit for
dpagent: OpenFlow 1.5 added (the other versions kept, the flows untouched), every controller
removed (which flushes the flows: the agent does it right before its first bundle)."""

from __future__ import annotations

import uuid

from dpagent.agent.ovsdb import Ovsdb


def test_a_bridge_left_by_neutrons_agent_is_taken_over(ovs_sandbox):
    name = f"br-{uuid.uuid4().hex[:8]}"
    ovs_sandbox.add_bridge(name)
    try:
        ovs_sandbox.vsctl("set", "Bridge", name,
                          "protocols=OpenFlow10,OpenFlow13,OpenFlow14")
        ovs_sandbox.vsctl("set-controller", name, "tcp:127.0.0.1:6633")
        ovs_sandbox.ofctl("add-flow", name, "cookie=0x5,priority=3,actions=drop")
        ovsdb = Ovsdb(ovs_sandbox.db_connection, 10)
        try:
            ovsdb.ensure_bridge(name, "netdev")
            protocols = ovs_sandbox.vsctl("get", "Bridge", name, "protocols").strip()
            assert protocols == "[OpenFlow10, OpenFlow13, OpenFlow14, OpenFlow15]"
            assert len(ovs_sandbox.dump_flows(name)) == 1  # nothing flushed yet
            assert ovsdb.drop_controllers(name) == ["tcp:127.0.0.1:6633"]
            # the transaction returned after ovs-vswitchd applied it: flushed already
            assert ovs_sandbox.dump_flows(name) == []
            assert ovsdb.drop_controllers(name) == []
        finally:
            ovsdb.stop()
        assert ovs_sandbox.vsctl("get-controller", name).strip() == ""
        assert ovs_sandbox.vsctl("--columns=_uuid", "list", "Controller").strip() == ""
        # dpagent can program it over OpenFlow 1.5 now
        ovs_sandbox.ofctl("-O", "OpenFlow15", "dump-flows", name)
    finally:
        ovs_sandbox.del_bridge(name)

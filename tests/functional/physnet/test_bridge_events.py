"""A mapped bridge that is missing is a clear error, not a stop: the other physical networks
work, and the bridge is wired without a restart when it appears (OVSDB event), or when it is
deleted and re-created."""

from __future__ import annotations

import logging
import time

from flows.model import Uplink
from tests.functional.physnet.conftest import wait_for

SEG = 100


def test_a_missing_bridge_is_reported_and_wired_when_created(host, phys_bridges, netns_vm,
                                                             wire, ovs_sandbox, caplog):
    phys_bridges("br-phys1")
    ext1 = wire("br-phys1").host("ext1", "10.0.0.9/24", vlan=SEG)
    vm1 = netns_vm("vm1", bridge=host.integration, ipv4=["10.0.0.1/24"])
    vm2 = netns_vm("vm2", bridge=host.integration, ipv4=["10.1.0.1/24"])
    physnets = host.physnets({"physnet1": "br-phys1", "physnet2": "br-phys2"})
    with caplog.at_level(logging.ERROR, logger="dpagent.physnet"):
        physnets.setup()  # does not raise

    assert any("physnet2" in r.getMessage() and "br-phys2 does not exist" in r.getMessage()
               for r in caplog.records)
    status = physnets.status()
    assert status["physnet1"]["state"] == "wired"
    assert status["physnet2"]["state"] == "missing"
    assert "br-phys2" in status["physnet2"]["error"]
    answer = physnets.resolve("flat", "physnet2", None)
    assert answer.uplink is None and "br-phys2" in answer.reason
    unmapped = physnets.resolve("vlan", "physnet9", 5)
    assert unmapped.uplink is None and "not mapped" in unmapped.reason

    up1 = physnets.uplink("vlan", "physnet1", SEG)
    host.program([(vm1, "net-a")], {"net-a": (1, up1)})
    physnets.set_networks([("physnet1", "vlan", SEG), ("physnet2", "flat", None)])
    assert vm1.ping(ext1.ip4)

    # the operator creates the bridge: wired by the OVSDB event, the agent is told
    created = time.monotonic()
    phys_bridges("br-phys2")
    wait_for(lambda: "physnet2" in set().union(*host.uplink_changes), what="uplink change")
    latency = time.monotonic() - created
    print(f"\nbridge created -> wired and reported: {latency * 1000:.0f} ms "
          f"(wiring itself {physnets.status()['physnet2']['wire_seconds'] * 1000:.0f} ms)")
    assert latency < 2.0
    up2 = physnets.uplink("flat", "physnet2", None)
    assert up2 == Uplink(physnets.status()["physnet2"]["int_ofport"], None)
    ext2 = wire("br-phys2").host("ext2", "10.1.0.9/24")
    host.program([(vm1, "net-a"), (vm2, "net-c")], {"net-a": (1, up1), "net-c": (3, up2)})
    assert vm2.ping(ext2.ip4)
    assert physnets.status()["physnet2"]["vlans"] == [None]  # the allow-list was kept for it
    assert vm1.ping(ext1.ip4)


def test_a_bridge_deleted_and_recreated_is_rewired_without_restart(host, phys_bridges,
                                                                   netns_vm, wire, ovs_sandbox):
    phys_bridges("br-phys1")
    cable = wire("br-phys1")
    ext = cable.host("ext", "10.0.0.9/24", vlan=SEG)
    vm = netns_vm("vm1", bridge=host.integration, ipv4=["10.0.0.1/24"])
    physnets = host.physnets({"physnet1": "br-phys1"})
    physnets.setup()
    physnets.set_networks([("physnet1", "vlan", SEG)])
    before = physnets.status()["physnet1"]
    host.program([(vm, "net-a")], {"net-a": (1, physnets.uplink("vlan", "physnet1", SEG))})
    assert vm.ping(ext.ip4)

    ovs_sandbox.del_bridge("br-phys1")
    wait_for(lambda: physnets.status()["physnet1"]["state"] == "missing", what="missing")
    assert physnets.uplink("vlan", "physnet1", SEG) is None
    assert "physnet1" in set().union(*host.uplink_changes)

    phys_bridges("br-phys1")
    cable.plug()
    after = wait_for(lambda: (s := physnets.status()["physnet1"])["state"] == "wired" and s,
                     what="re-wired")
    assert after["wired_at"] > before["wired_at"]
    assert after["int_ofport"] == before["int_ofport"]  # br-int's flows stay valid
    assert ovs_sandbox.vsctl("get", "Bridge", "br-phys1", "fail_mode").strip() == "secure"
    assert after["vlans"] == [SEG]
    assert vm.ping(ext.ip4)

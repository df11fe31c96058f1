"""A host still joined to its physical bridge by a veth pair is converted to patch ports at
start-up, keeping the br-int ofport, so the flows computed for the old uplink stay right."""

from __future__ import annotations

import logging

import pytest

from dpagent.lab import process
from flows.model import Uplink

SEG = 100


def veth_names(sandbox):
    out = process.run(["ip", "-n", sandbox.netns, "-o", "link", "show", "type", "veth"])
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


@pytest.mark.parametrize(("int_side", "phy_side"), [
    ("int-br-phys1", "phy-br-phys1"),   # the old agents' names
    ("vint-phys1", "vphy-phys1"),       # any veth between br-int and the mapped bridge
])
def test_a_veth_interconnection_becomes_patch_ports(host, phys_bridges, netns_vm, wire,
                                                    ovs_sandbox, caplog, int_side, phy_side):
    phys_bridges("br-phys1")
    ns = ["ip", "-n", ovs_sandbox.netns]
    process.run([*ns, "link", "add", int_side, "type", "veth", "peer", "name", phy_side])
    for dev in (int_side, phy_side):
        process.run([*ns, "link", "set", dev, "up"])
    old_ofport = ovs_sandbox.add_port(host.integration, int_side)
    ovs_sandbox.add_port("br-phys1", phy_side)
    cable = wire("br-phys1")
    ext = cable.host("ext", "10.0.0.9/24", vlan=SEG)
    vm = netns_vm("vm1", bridge=host.integration, ipv4=["10.0.0.1/24"])
    host.program([(vm, "net-a")], {"net-a": (1, Uplink(old_ofport, SEG))})
    assert vm.ping(ext.ip4), "the old veth interconnection should work before the migration"

    physnets = host.physnets({"physnet1": "br-phys1"})
    with caplog.at_level(logging.WARNING, logger="dpagent.physnet"):
        physnets.setup()
    physnets.set_networks([("physnet1", "vlan", SEG)])

    assert any("migrating" in r.getMessage() and "veth" in r.getMessage()
               for r in caplog.records)
    status = physnets.status()["physnet1"]
    assert status["state"] == "wired" and status["migrated_from_veth"]
    assert status["int_ofport"] == old_ofport
    for name in ("int-br-phys1", "phy-br-phys1"):
        assert ovs_sandbox.vsctl("get", "Interface", name, "type").strip() == "patch"
    assert not {int_side, phy_side} & veth_names(ovs_sandbox)
    ports = set(ovs_sandbox.vsctl("list-ports", host.integration).split())
    assert int_side == "int-br-phys1" or int_side not in ports
    # br-int was not reprogrammed: the patch port took the veth's ofport
    assert vm.ping(ext.ip4)
    assert ext.ping(vm.ip4)

"""Remote groups with overlapping addresses, with real packets: a VM that holds, on its own
network, the address of a remote-group member on another network does not get the member's
access (issue 16, item 6), while the member, and a member on the filtered port's network,
keep theirs.

net1 and net2 are both 10.0.0.0/24 (local VLANs 1 and 2 of one bridge). ``db`` (net1) and
``db2`` (net2) let the group ``web`` in on tcp/5432. ``web``'s members: ``member`` (net2,
10.0.0.5) and ``friend`` (net1, 10.0.0.6). ``intruder`` (net1) holds 10.0.0.5 too, and is
not in ``web``.
"""

from __future__ import annotations

import pytest

from dpagent.lab.netns import NetnsVM
from flows import compile_sg_info

BRIDGE = "dpa-overlap"
DB_PORT = 5432


def r(direction, **fields):
    return {"direction": direction, "ethertype": "IPv4", "stateful": True, **fields}


GROUPS = {
    "db": [r("ingress", protocol="tcp", port_range_min=DB_PORT, port_range_max=DB_PORT,
             remote_group_id="web"), r("egress")],
    "web": [r("egress")],
    "other": [r("egress")],
}
VMS = {  # name -> (network, local VLAN, address, group)
    "db": ("net1", 1, "10.0.0.9", "db"),
    "intruder": ("net1", 1, "10.0.0.5", "other"),
    "friend": ("net1", 1, "10.0.0.6", "web"),
    "db2": ("net2", 2, "10.0.0.9", "db"),
    "member": ("net2", 2, "10.0.0.5", "web"),
}
NETWORKS = {"net1": {"local_vlan": 1, "subnets": ["10.0.0.0/24"]},
            "net2": {"local_vlan": 2, "subnets": ["10.0.0.0/24"]}}


@pytest.fixture(scope="module")
def lab(ovs_sandbox):
    ovs_sandbox.add_bridge(BRIDGE)
    vms = {}
    try:
        for index, (name, (_, _, address, _)) in enumerate(VMS.items(), start=1):
            vms[name] = NetnsVM(ovs_sandbox, BRIDGE, name, f"fa:16:3e:00:0a:{index:02x}",
                                ipv4=[f"{address}/24"])
        yield Lab(ovs_sandbox, vms)
    finally:
        for vm in vms.values():
            vm.destroy()
        ovs_sandbox.del_bridge(BRIDGE)


class Lab:
    def __init__(self, sandbox, vms):
        self.sandbox, self.vms = sandbox, vms

    def program(self, *, member_networks: bool) -> None:
        devices = {name: {"mac_address": vm.mac, "fixed_ips": [vm.ip4],
                          "network_id": VMS[name][0], "security_groups": [VMS[name][3]],
                          "port_security_enabled": True, "ofport": vm.ofport,
                          "local_vlan": VMS[name][1]}
                   for name, vm in self.vms.items()}
        web = [n for n, spec in VMS.items() if spec[3] == "web"]
        info = {"devices": devices, "security_groups": GROUPS, "networks": NETWORKS,
                "sg_member_ips": {"web": {"IPv4": [[VMS[n][2], self.vms[n].mac]
                                                   for n in web]}}}
        if member_networks:  # what the resource cache tells (neutron's reply does not)
            info["member_networks"] = {"web": {VMS[n][2]: [VMS[n][0]] for n in web}}
        result = compile_sg_info(info)
        assert not result.errors, result.errors
        self.sandbox.replace_flows(BRIDGE, "\n".join(result.flow_lines()) + "\n")

    def reaches(self, source: str, target: str) -> bool:
        return self.vms[source].tcp_connect(self.vms[target].ip4, DB_PORT, timeout=1.5)


@pytest.fixture(scope="module")
def listening(lab):
    listeners = [lab.vms[name].tcp_listen(DB_PORT) for name in ("db", "db2")]
    yield lab
    for listener in listeners:
        listener.stop()


def test_by_address_alone_a_non_member_holding_a_members_address_gets_in(listening):
    """What neutron's SG_INFO (no member networks) gives: membership by address."""
    listening.program(member_networks=False)
    assert listening.reaches("intruder", "db")


def test_with_member_networks_the_holder_on_another_network_is_refused(listening):
    listening.program(member_networks=True)
    assert not listening.reaches("intruder", "db")
    assert listening.reaches("friend", "db")  # a member on db's own network
    assert listening.reaches("member", "db2")  # the member, on its own network
    assert not listening.reaches("intruder", "db")  # and still not, after the others

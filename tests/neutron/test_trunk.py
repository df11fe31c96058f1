"""VLAN-aware VMs on OVS ports against a real neutron-server 29 with its trunk plugin: the
parent's trunk bridge (named by the server in its vif_details) wired to br-int with neutron's
patch-port pairs, each subport filtered by its own groups on its own network, frames of other
VLANs dropped, subports added and removed while the VM runs, the trunk's status as neutron
shows it, and an agent restart that rewires nothing and loses no ping.

The VM's VLAN sub-interfaces come from :class:`dpagent.lab.trunk_vm.TrunkVM` (this kernel may
have no 802.1Q module): its tagged frames are what a guest's driver would send."""

from __future__ import annotations

import time

import pytest

from dpagent.lab.trunk_vm import TrunkVM, trunk_bridge
from tests.neutron.polling import Pinger, wait_agent_alive, wait_for, wait_ping, wait_tcp
from tests.neutron.test_neutron_server import EGRESS_ALL, ICMP_IN, group, plugged

DB_IN = {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
         "port_range_min": 5432, "port_range_max": 5432}


def trunk_status(api, trunk_id: str) -> str:
    return api.get(f"/v2.0/trunks/{trunk_id}")["trunk"]["status"]


def wait_trunk(api, trunk_id: str, status: str = "ACTIVE", timeout: float = 20.0) -> float:
    started = time.monotonic()
    wait_for(lambda: trunk_status(api, trunk_id) == status, timeout,
             what=f"trunk {trunk_id} {status} (last: {trunk_status(api, trunk_id)})",
             interval=0.1)
    return time.monotonic() - started


def ports_of(agent, bridge: str) -> set[str]:
    return set(agent.sandbox.vsctl("list-ports", bridge).split())


def row_ids(agent, names) -> dict[str, tuple[str, str]]:
    """Interface name -> (its OVSDB row, its ofport): unchanged rows are untouched ports."""
    return {n: (agent.sandbox.vsctl("get", "Interface", n, "_uuid").strip(),
                agent.sandbox.vsctl("get", "Interface", n, "ofport").strip()) for n in names}


def subport(api, network_id: str, groups) -> dict:
    """A port for a trunk's subport: no device (the trunk plugin makes it trunk:subport)."""
    return api.post("/v2.0/ports", {"port": {"network_id": network_id,
                                             "security_groups": [g["id"] for g in groups]}}
                    )["port"]


def first_ip(port) -> str:
    return port["fixed_ips"][0]["ip_address"]


def build_trunk(api, agent, vlan_network, cidrs=("10.51", "10.52", "10.53")):
    """A trunk (parent on A, subports on B at VLAN 10 and C at VLAN 20) plugged as a VM on
    ``agent``'s host, and one peer VM on each network; a dict of it all."""
    nets = {n: vlan_network(f"{prefix}.0.0/24") for n, prefix in zip("abc", cidrs, strict=True)}
    ping = group(api, "ping", ICMP_IN, EGRESS_ALL)
    db_only = group(api, "db-only", DB_IN, EGRESS_ALL)
    parent = api.create_port(nets["a"]["id"], security_groups=[ping["id"]])
    sub_b = subport(api, nets["b"]["id"], [ping])
    sub_c = subport(api, nets["c"]["id"], [db_only])
    trunk = api.post("/v2.0/trunks", {"trunk": {"port_id": parent["id"], "sub_ports": [
        {"port_id": sub_b["id"], "segmentation_type": "vlan", "segmentation_id": 10},
        {"port_id": sub_c["id"], "segmentation_type": "vlan", "segmentation_id": 20}]}})["trunk"]
    # Nova binds the parent to the host once the trunk exists; the server names the bridge
    parent = api.update_port(parent["id"], **{"binding:host_id": agent.host})
    assert parent["binding:vif_type"] == "ovs", parent
    assert parent["binding:vif_details"]["bridge_name"] == trunk_bridge(trunk["id"])
    peers, peer_vms = {}, {}
    for name in ("a", "b", "c"):
        (port,), (vm,) = plugged(api, agent, nets[name], [[ping]], [f"peer{name}"])
        peers[name], peer_vms[name] = port, vm
    tvm = TrunkVM(agent.sandbox, trunk["id"], parent["id"], parent["mac_address"])
    agent.vms.append(tvm)  # destroyed with the agent's VMs (it has the same destroy())
    vms = {"a": tvm.interface(None, parent["mac_address"], [f"{first_ip(parent)}/24"]),
           "b": tvm.interface(10, sub_b["mac_address"], [f"{first_ip(sub_b)}/24"]),
           "c": tvm.interface(20, sub_c["mac_address"], [f"{first_ip(sub_c)}/24"])}
    return {"api": api, "agent": agent, "nets": nets, "trunk": trunk, "tvm": tvm,
            "ports": {"a": parent, "b": sub_b, "c": sub_c}, "vms": vms, "peers": peers,
            "peer_vms": peer_vms, "groups": {"ping": ping, "db_only": db_only}}


def drop_trunk(rig) -> None:
    """Unplug the VM, unbind the parent (a bound parent's trunk is in use), delete the trunk."""
    api = rig["api"]
    rig["tvm"].destroy()
    api.update_port(rig["ports"]["a"]["id"], **{"binding:host_id": ""})
    api.delete(f"/v2.0/trunks/{rig['trunk']['id']}")


@pytest.fixture
def trunk_rig(neutron_api, neutron_agent, vlan_network):
    """One dpagent host with :func:`build_trunk`'s trunk, VM and peers."""
    agent = neutron_agent("trunk")
    wait_agent_alive(neutron_api, agent.host)
    rig = build_trunk(neutron_api, agent, vlan_network)
    yield rig
    drop_trunk(rig)


def test_a_trunk_carries_each_network_on_its_vlan_with_its_own_groups(trunk_rig):
    api, agent, trunk = trunk_rig["api"], trunk_rig["agent"], trunk_rig["trunk"]
    ports, vms, peers = trunk_rig["ports"], trunk_rig["vms"], trunk_rig["peer_vms"]
    started = time.monotonic()
    took = wait_trunk(api, trunk["id"], "ACTIVE", timeout=30)
    for port in ports.values():
        assert api.show_port(port["id"])["status"] == "ACTIVE", port["id"]
    print(f"\ntrunk ACTIVE {took:.2f} s after the VM was plugged")
    bridge = trunk_bridge(trunk["id"])
    parent_id, b_id, c_id = (ports[n]["id"] for n in "abc")
    # neutron's names: tpi/spi on br-int, tpt/spt on the trunk bridge, tags 0/10/20
    assert {f"tpi-{parent_id}"[:15], f"spi-{b_id}"[:15], f"spi-{c_id}"[:15]} <= \
        ports_of(agent, agent.bridge)
    assert {f"tpt-{parent_id}"[:15], f"spt-{b_id}"[:15], f"spt-{c_id}"[:15]} <= \
        ports_of(agent, bridge)
    vsctl = agent.sandbox.vsctl
    assert vsctl("get", "Port", f"spt-{b_id}"[:15], "tag").strip() == "10"
    assert vsctl("get", "Port", f"spt-{c_id}"[:15], "tag").strip() == "20"
    assert vsctl("get", "Port", f"tpt-{parent_id}"[:15], "tag").strip() == "0"
    assert vsctl("get", "Interface", f"spi-{b_id}"[:15], "external_ids:iface-id"
                 ).strip().strip('"') == b_id
    recorded = vsctl("get", "Interface", trunk_rig["tvm"].tap, "external_ids:trunk_id")
    assert recorded.strip().strip('"') == trunk["id"]
    # each subport on br-int: on its own network's local VLAN (the peers' tag)
    for name, sub in (("b", b_id), ("c", c_id)):
        assert vsctl("get", "Port", f"spi-{sub}"[:15], "tag") == \
            vsctl("get", "Port", peers[name].tap, "tag")
    # untagged reaches A, VLAN 10 reaches B, VLAN 20 reaches C
    wait_ping(vms["a"], peers["a"].ip4)
    wait_ping(vms["b"], peers["b"].ip4)
    wait_ping(vms["c"], peers["c"].ip4)
    print(f"all three networks answer {time.monotonic() - started:.2f} s after the plug")
    assert not vms["a"].ping(peers["b"].ip4, timeout=1)  # another network, another VLAN
    # each subport's own groups: B lets ICMP in, C only tcp/5432
    assert peers["b"].ping(first_ip(ports["b"]))
    assert not peers["c"].ping(first_ip(ports["c"]), timeout=1)
    vms["c"].tcp_listen(5432)
    wait_tcp(peers["c"], first_ip(ports["c"]), 5432, allowed=True)
    vms["b"].tcp_listen(5432)
    assert not peers["b"].tcp_connect(first_ip(ports["b"]), 5432, timeout=1)


def test_frames_of_a_vlan_that_is_no_subport_are_dropped(trunk_rig):
    api, trunk, tvm = trunk_rig["api"], trunk_rig["trunk"], trunk_rig["tvm"]
    peers, ports = trunk_rig["peer_vms"], trunk_rig["ports"]
    wait_trunk(api, trunk["id"], "ACTIVE", timeout=30)
    wait_ping(trunk_rig["vms"]["b"], peers["b"].ip4)
    # a sub-interface on VLAN 30 with B's subport's own MAC and an address of B's subnet:
    # no subport is on VLAN 30, so nothing of it may reach B (or anywhere, untagged A too)
    rogue = tvm.interface(30, ports["b"]["mac_address"], ["10.52.0.250/24"], name="rogue")
    assert not rogue.ping(peers["b"].ip4, count=3, timeout=1)
    assert not peers["b"].ping("10.52.0.250", timeout=1)
    assert not rogue.ping(peers["a"].ip4, timeout=1)
    # anti-spoofing per subport: VLAN 10 may send only B's subport's own address
    vm_b = trunk_rig["vms"]["b"]
    vm_b.exec(["ip", "addr", "add", "10.52.0.251/24", "dev", "eth0"])
    spoofed = vm_b.exec(["ping", "-n", "-c", "2", "-W", "1", "-I", "10.52.0.251",
                         peers["b"].ip4])
    assert spoofed.returncode != 0, spoofed.stdout
    assert vm_b.ping(peers["b"].ip4)  # its own address still passes


def test_subports_added_and_removed_follow_and_the_rest_keeps_passing(trunk_rig,
                                                                      vlan_network):
    api, agent, trunk, tvm = (trunk_rig[k] for k in ("api", "agent", "trunk", "tvm"))
    vms, peers = trunk_rig["vms"], trunk_rig["peer_vms"]
    wait_trunk(api, trunk["id"], "ACTIVE", timeout=30)
    wait_ping(vms["b"], peers["b"].ip4)
    net_d = vlan_network("10.54.0.0/24")
    ping = trunk_rig["groups"]["ping"]
    sub_d = subport(api, net_d["id"], [ping])
    (_,), (peer_d,) = plugged(api, agent, net_d, [[ping]], ["peerd"])
    vm_d = tvm.interface(40, sub_d["mac_address"], [f"{first_ip(sub_d)}/24"], name="subd")
    untouched = row_ids(agent, [f"tpi-{trunk_rig['ports']['a']['id']}"[:15],
                                f"spi-{trunk_rig['ports']['b']['id']}"[:15]])
    keep_a = Pinger(vms["a"], peers["a"].ip4, count=10_000, interval=0.05)
    keep_b = Pinger(vms["b"], peers["b"].ip4, count=10_000, interval=0.05)
    try:
        started = time.monotonic()
        api.put(f"/v2.0/trunks/{trunk['id']}/add_subports", {"sub_ports": [
            {"port_id": sub_d["id"], "segmentation_type": "vlan", "segmentation_id": 40}]})
        wait_for(lambda: vm_d.ping(peer_d.ip4, timeout=0.5), 10, what="VLAN 40 to D",
                 interval=0.05)
        added = time.monotonic() - started
        took = wait_trunk(api, trunk["id"], "ACTIVE", timeout=10)
        print(f"\nadd_subports: VLAN 40 passes after {added:.2f} s, trunk ACTIVE "
              f"{took:.2f} s later")
        assert added < 2.0  # the bound; measured well under it
        assert api.show_port(sub_d["id"])["status"] == "ACTIVE"

        started = time.monotonic()
        api.put(f"/v2.0/trunks/{trunk['id']}/remove_subports",
                {"sub_ports": [{"port_id": sub_d["id"]}]})
        spi_d = f"spi-{sub_d['id']}"[:15]
        wait_for(lambda: spi_d not in ports_of(agent, agent.bridge), 10,
                 what="D's pair removed", interval=0.05)
        removed = time.monotonic() - started
        assert not vm_d.ping(peer_d.ip4, timeout=1)
        took = wait_trunk(api, trunk["id"], "ACTIVE", timeout=10)
        print(f"remove_subports: pair gone after {removed:.2f} s, trunk ACTIVE "
              f"{took:.2f} s later")
        assert removed < 2.0
    finally:
        lost_a, sent_a = keep_a.stop()
        lost_b, sent_b = keep_b.stop()
    print(f"meanwhile: parent lost {lost_a}/{sent_a}, subport B lost {lost_b}/{sent_b}")
    assert (lost_a, lost_b) == (0, 0)
    assert row_ids(agent, untouched) == untouched  # the others' pairs were not touched


def test_an_agent_restart_rewires_nothing_and_loses_no_ping(trunk_rig):
    api, agent, trunk = trunk_rig["api"], trunk_rig["agent"], trunk_rig["trunk"]
    vms, peers, ports = trunk_rig["vms"], trunk_rig["peer_vms"], trunk_rig["ports"]
    wait_trunk(api, trunk["id"], "ACTIVE", timeout=30)
    for name in "abc":
        wait_ping(vms[name], peers[name].ip4)
    bridge = trunk_bridge(trunk["id"])
    pairs = sorted(n for n in ports_of(agent, agent.bridge) | ports_of(agent, bridge)
                   if n[:3] in ("tpi", "tpt", "spi", "spt"))
    assert len(pairs) == 6
    before = row_ids(agent, pairs)
    pingers = [Pinger(vms[n], peers[n].ip4, count=10_000, interval=0.05) for n in "abc"]
    try:
        agent.stop()
        agent.start()
        wait_agent_alive(api, agent.host)
        wait_for(lambda: "first full synchronisation done" in agent.log_tail(20000), 30,
                 what="the restarted agent's first sync")
        took = wait_trunk(api, trunk["id"], "ACTIVE", timeout=20)
        time.sleep(1.0)  # pings after the sync, too
    finally:
        results = [p.stop() for p in pingers]
    print(f"\nrestart: trunk ACTIVE again {took:.2f} s after the sync; lost (parent, B, C) "
          f"{[r[0] for r in results]} of {[r[1] for r in results]}")
    assert [r[0] for r in results] == [0, 0, 0]
    assert row_ids(agent, pairs) == before
    for port in ports.values():
        assert api.show_port(port["id"])["status"] == "ACTIVE"


def test_the_vm_going_removes_its_pairs_and_the_server_sets_the_trunk_down(trunk_rig):
    api, agent, trunk, tvm = (trunk_rig[k] for k in ("api", "agent", "trunk", "tvm"))
    ports = trunk_rig["ports"]
    wait_trunk(api, trunk["id"], "ACTIVE", timeout=30)
    tvm.unplug()  # os-vif: the tap leaves the trunk bridge, then the bridge goes
    wait_for(lambda: not {n for n in ports_of(agent, agent.bridge)
                          if n[:3] in ("tpi", "spi")}, 10, what="the pairs' br-int ends gone")
    wait_for(lambda: api.show_port(ports["b"]["id"])["status"] == "DOWN", 10,
             what="subport B reported DOWN")
    api.update_port(ports["a"]["id"], **{"binding:host_id": ""})  # Nova unbinds the parent
    wait_trunk(api, trunk["id"], "DOWN", timeout=10)


def test_a_subport_on_a_network_the_host_cannot_carry_degrades_the_trunk_alone(trunk_rig):
    api, agent, trunk = trunk_rig["api"], trunk_rig["agent"], trunk_rig["trunk"]
    vms, peers = trunk_rig["vms"], trunk_rig["peer_vms"]
    wait_trunk(api, trunk["id"], "ACTIVE", timeout=30)
    wait_ping(vms["b"], peers["b"].ip4)
    # a flat network on a physnet this host has no bridge for: the server cannot bind it here
    net = api.create_network("unmapped", "flat", "physnet9")
    try:
        api.create_subnet(net["id"], "10.59.0.0/24")
        bad = subport(api, net["id"], [trunk_rig["groups"]["ping"]])
        keep_b = Pinger(vms["b"], peers["b"].ip4, count=10_000, interval=0.05)
        try:
            api.put(f"/v2.0/trunks/{trunk['id']}/add_subports", {"sub_ports": [
                {"port_id": bad["id"], "segmentation_type": "vlan", "segmentation_id": 50}]})
            took = wait_trunk(api, trunk["id"], "DEGRADED", timeout=10)
            print(f"\nunbindable subport: trunk DEGRADED after {took:.2f} s")
            assert f"spi-{bad['id']}"[:15] not in ports_of(agent, agent.bridge)
            log = agent.log_tail(50000)
            assert any(trunk["id"] in line and bad["id"] in line and "ERROR" in line
                       for line in log.splitlines()), log[-3000:]
            api.put(f"/v2.0/trunks/{trunk['id']}/remove_subports",
                    {"sub_ports": [{"port_id": bad["id"]}]})
            wait_trunk(api, trunk["id"], "ACTIVE", timeout=10)
        finally:
            lost, sent = keep_b.stop()
        assert lost == 0, (lost, sent)
        api.delete_port(bad["id"])
    finally:
        api.delete(f"/v2.0/networks/{net['id']}")

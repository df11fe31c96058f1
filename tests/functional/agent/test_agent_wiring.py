"""The agent end to end on a real switch: VIFs plugged into OVSDB become reachable per their
security groups, member updates change connectivity, unplugged VIFs lose their flows, an
administratively down agent leaves new VIFs isolated. Control plane: in-process fake."""

from __future__ import annotations

import contextlib
import re
import time

import pytest

from dpagent.agent.agent import Agent, Settings
from dpagent.agent.dataplane import Dataplane
from dpagent.agent.ovsdb import Ovsdb, Vif
from dpagent.agent.uplinks import HostUplinks
from dpagent.bridge.ofctl import OfctlTransport
from dpagent.bridge.openflow.transport import OpenFlowTransport
from dpagent.bridge.programmer import BridgeProgrammer
from tests.functional.agent.fake_control_plane import FakeControlPlane


def r(direction, **fields):
    return {"direction": direction, "ethertype": "IPv4", "stateful": True, **fields}


def wait_for(predicate, timeout=10.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def control_plane():
    cp = FakeControlPlane()
    cp.groups = {
        "web": [r("ingress", protocol="tcp", port_range_min=80, port_range_max=80),
                r("ingress", protocol="icmp"), r("egress")],
        "db": [r("ingress", protocol="tcp", port_range_min=5432, port_range_max=5432,
                 remote_group_id="app"), r("egress")],
        "app": [r("egress")],
        "plain": [r("egress")],
    }
    return cp


@contextlib.contextmanager
def running_agent(ovs_sandbox, bridge, control_plane, ovsdb_class=Ovsdb, **settings):
    """An agent on ``bridge`` fed by OVSDB events, stopped on the way out."""
    ovsdb = ovsdb_class(ovs_sandbox.db_connection, 10)
    programmer = BridgeProgrammer(OfctlTransport(bridge, env=ovs_sandbox.env))
    the_agent = Agent(Settings(integration_bridge=bridge, **settings), ovsdb, control_plane,
                      Dataplane(programmer))
    ovsdb.watch(the_agent.vif_event, lambda: the_agent.resync("ovsdb reconnect"), bridge)
    the_agent.start()
    try:
        yield the_agent
    finally:
        the_agent.stop()
        ovsdb.stop()


def wait_quiet(control_plane, quiet: float = 0.5, timeout: float = 10.0) -> None:
    """Until the agent has made no call to the control plane for ``quiet`` seconds."""
    end = time.monotonic() + timeout
    seen, since = len(control_plane.calls), time.monotonic()
    while time.monotonic() < end:
        time.sleep(0.05)
        if len(control_plane.calls) != seen:
            seen, since = len(control_plane.calls), time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
    raise AssertionError("the agent kept calling the control plane")


class RecordingOvsdb(Ovsdb):
    """Ovsdb that records each set_port_vlans call (one per OVSDB transaction)."""

    writes: list[dict] = []

    def set_port_vlans(self, tags):
        self.writes.append(dict(tags))
        super().set_port_vlans(tags)


@pytest.fixture
def agent(ovs_sandbox, bridge, control_plane):
    with running_agent(ovs_sandbox, bridge, control_plane) as the_agent:
        yield the_agent


def plug(netns_vm, control_plane, name, ip, groups):
    port_id = f"port-{name}"
    mac = f"fa:16:3e:00:02:{int(ip.split('.')[-1]):02x}"
    control_plane.add_port(port_id, "net-a", mac, [ip], groups)
    return netns_vm(name, mac=mac, ipv4=[f"{ip}/24"], iface_id=port_id)


def test_plugged_vifs_follow_their_groups(agent, control_plane, netns_vm, ovs_sandbox, bridge):
    web = plug(netns_vm, control_plane, "web", "10.2.0.1", ["web"])
    db = plug(netns_vm, control_plane, "db", "10.2.0.2", ["db"])
    cli = plug(netns_vm, control_plane, "cli", "10.2.0.3", ["plain"])
    wait_for(lambda: {"port-web", "port-db", "port-cli"} <= set(control_plane.up),
             what="ports reported up")
    web.tcp_listen(80)
    db.tcp_listen(5432)
    assert cli.tcp_connect(web.ip4, 80, timeout=3)
    assert cli.ping(web.ip4)
    assert not cli.tcp_connect(db.ip4, 5432, timeout=1)

    # cli joins group "app": the server announces a member update of "app"
    control_plane.ports["port-cli"]["security_groups"] = ["plain", "app"]
    agent.security_groups_member_updated(["app"])
    wait_for(lambda: cli.tcp_connect(db.ip4, 5432, timeout=1), what="db reachable from app")

    # unplug web: its flows leave the switch
    ofport = web.ofport
    web.destroy()
    wait_for(lambda: "port-web" in control_plane.down, what="web reported down")
    flows = ovs_sandbox.dump_flows(bridge)
    assert not any(f"in_port={ofport} " in f or f"reg5={ofport:#x}," in f for f in flows)


def test_admin_down_isolates_new_vifs_only(agent, control_plane, netns_vm):
    web = plug(netns_vm, control_plane, "web", "10.2.0.1", ["web"])
    cli = plug(netns_vm, control_plane, "cli", "10.2.0.3", ["plain"])
    wait_for(lambda: {"port-web", "port-cli"} <= set(control_plane.up), what="ports up")
    agent.set_admin_state(False)
    late = plug(netns_vm, control_plane, "late", "10.2.0.9", ["plain"])
    wait_for(lambda: "port-late" in control_plane.down, what="late reported down")
    assert agent.ports["port-late"].state == "admin-down"
    assert cli.ping(web.ip4)
    assert not late.ping(web.ip4, timeout=1)
    agent.set_admin_state(True)
    wait_for(lambda: "port-late" in control_plane.up, what="late wired after admin up")
    assert late.ping(web.ip4)


def test_control_plane_outage_keeps_traffic_and_pending_work(agent, control_plane, netns_vm):
    web = plug(netns_vm, control_plane, "web", "10.2.0.1", ["web"])
    cli = plug(netns_vm, control_plane, "cli", "10.2.0.3", ["plain"])
    wait_for(lambda: {"port-web", "port-cli"} <= set(control_plane.up), what="ports up")
    control_plane.available = False
    late = plug(netns_vm, control_plane, "late", "10.2.0.9", ["plain"])
    time.sleep(1.5)
    assert cli.ping(web.ip4)  # the dataplane keeps forwarding
    assert "port-late" not in control_plane.up
    control_plane.available = True
    wait_for(lambda: "port-late" in control_plane.up, timeout=20, what="pending port wired")
    assert late.ping(web.ip4)


def test_vswitchd_restart_is_repaired_without_the_control_plane(agent, control_plane, netns_vm,
                                                                 ovs_sandbox):
    web = plug(netns_vm, control_plane, "web", "10.2.0.1", ["web"])
    cli = plug(netns_vm, control_plane, "cli", "10.2.0.3", ["plain"])
    wait_for(lambda: {"port-web", "port-cli"} <= set(control_plane.up), what="ports up")
    calls = len(control_plane.calls)
    control_plane.available = False  # the repair must not need the server
    ovs_sandbox.restart_vswitchd()
    start = time.monotonic()
    wait_for(lambda: cli.ping(web.ip4, timeout=0.2), timeout=5, what="traffic back")
    assert time.monotonic() - start < 2.0
    assert len(control_plane.calls) == calls


def test_while_the_switch_is_down_work_waits_nothing_is_reported_and_the_agent_says_why(
        agent, control_plane, netns_vm, ovs_sandbox, bridge):
    web = plug(netns_vm, control_plane, "web", "10.2.0.1", ["web"])
    cli = plug(netns_vm, control_plane, "cli", "10.2.0.3", ["plain"])
    wait_for(lambda: {"port-web", "port-cli"} <= set(control_plane.up), what="ports up")
    ovs_sandbox.stop_vswitchd()
    try:
        wait_for(lambda: agent.switch_problem is not None, what="the switch problem noticed")
        status = agent.status()["switch"]
        assert status["healthy"] is False and bridge in status["problem"], status
        calls, reports = len(control_plane.calls), len(control_plane.up)
        agent.port_updated("port-web")
        time.sleep(1.5)
        # held: not fetched (which would put it in BUILD) and nothing reported meanwhile
        assert (len(control_plane.calls), len(control_plane.up)) == (calls, reports)
    finally:
        ovs_sandbox.start_vswitchd()
    wait_for(lambda: len(control_plane.up) > reports, timeout=15,
             what="web fetched and reported up once the switch is back")
    assert control_plane.status["port-web"] == "ACTIVE"
    assert agent.switch_problem is None and agent.status()["switch"]["healthy"]
    wait_for(lambda: cli.ping(web.ip4, timeout=0.2), timeout=5, what="traffic back")


def test_agent_restart_loses_no_packet_and_keeps_sessions(ovs_sandbox, bridge, control_plane,
                                                          netns_vm):
    """A new agent (new process state: new OVSDB connection, new programmer, no memory) takes
    over a wired bridge: it recomputes the same flows, sends none, and traffic never stops."""
    import subprocess

    def start_agent():
        ovsdb = Ovsdb(ovs_sandbox.db_connection, 10)
        programmer = BridgeProgrammer(
            OpenFlowTransport(str(ovs_sandbox.directory / f"{bridge}.mgmt")))
        agent = Agent(Settings(integration_bridge=bridge), ovsdb, control_plane,
                      Dataplane(programmer))
        ovsdb.watch(agent.vif_event, lambda: agent.resync("ovsdb reconnect"), bridge)
        agent.start()
        return agent, ovsdb, programmer

    first, first_db, _ = start_agent()
    web = plug(netns_vm, control_plane, "web", "10.2.0.1", ["web"])
    cli = plug(netns_vm, control_plane, "cli", "10.2.0.3", ["plain"])
    wait_for(lambda: {"port-web", "port-cli"} <= set(control_plane.up), what="ports up")
    web.tcp_listen(80)
    session = cli.tcp_session(web.ip4, 80, timeout=3)
    assert session.exchange()
    pinger = subprocess.Popen(["ip", "netns", "exec", cli.netns, "ping", "-n", "-q", "-i", "0.01",
                               "-c", "400", web.ip4], stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    first.stop()
    first_db.stop()
    second, second_db, programmer = start_agent()
    try:
        wait_for(lambda: second.synced_once, what="second agent synchronised")
        out = pinger.communicate(timeout=30)[0]
        assert programmer.flow_mods_sent == 0  # every flow, canary included, was already right
        assert " 0% packet loss" in out, out
        assert session.exchange()
    finally:
        second.stop()
        second_db.stop()


def test_vlan_provider_network_leaves_through_the_patch_port(ovs_sandbox, bridge, control_plane,
                                                            netns_vm):
    """The agent with the physical-network manager: a port on a VLAN provider network gets an
    uplink to int-<phys> tagged with the segmentation id, and the physical bridge lets exactly
    that VLAN out of phy-<phys>."""
    from dpagent.physnet import PhysicalNetworks

    phys = f"brp{bridge[-6:]}"
    ovs_sandbox.add_bridge(phys)
    ovsdb = Ovsdb(ovs_sandbox.db_connection, 10)
    physnets = PhysicalNetworks(
        ovsdb, {"physnet1": phys}, bridge,
        lambda br: BridgeProgrammer(OfctlTransport(br, env=ovs_sandbox.env)),
        netns=ovs_sandbox.netns)
    programmer = BridgeProgrammer(OfctlTransport(bridge, env=ovs_sandbox.env))
    agent = Agent(Settings(integration_bridge=bridge), ovsdb, control_plane,
                  Dataplane(programmer), uplinks=HostUplinks(physnets, None))
    ovsdb.watch(agent.vif_event, lambda: agent.resync("ovsdb reconnect"), bridge)
    physnets.setup()
    agent.start()
    original = control_plane.get_devices_details

    def vlan_details(devices):
        details, failed = original(devices)
        for entry in details:
            entry.update(network_type="vlan", physical_network="physnet1", segmentation_id=321)
        return details, failed

    control_plane.get_devices_details = vlan_details
    try:
        plug(netns_vm, control_plane, "web", "10.2.0.1", ["web"])
        wait_for(lambda: "port-web" in control_plane.up, what="port up")
        int_ofport = physnets.status()["physnet1"]["int_ofport"]
        flows = ovs_sandbox.dump_flows(bridge)
        assert any(f"mod_vlan_vid:321,output:{int_ofport}" in f for f in flows), flows
        assert any(f"in_port={int_ofport},dl_vlan=321" in f for f in flows), flows
        assert physnets.status()["physnet1"]["vlans"] == [321]
        phys_flows = ovs_sandbox.dump_flows(phys)
        assert any("dl_vlan=321" in f and "NORMAL" in f for f in phys_flows), phys_flows
    finally:
        agent.stop()
        physnets.stop()
        ovsdb.stop()
        ovs_sandbox.del_bridge(phys)


def test_rescan_finds_a_vif_whose_event_was_missed(agent, control_plane, netns_vm, ovs_sandbox,
                                                   bridge):
    web = plug(netns_vm, control_plane, "web", "10.2.0.1", ["web"])
    wait_for(lambda: "port-web" in control_plane.up, what="web up")
    # Forget the port as if its events had never arrived; the rescan must bring it back.
    with agent._queue.lock:
        record = agent.ports.pop("port-web")
    assert agent.rescan() == 1
    wait_for(lambda: agent.ports.get("port-web") is not None
             and agent.ports["port-web"].state == "wired", what="web wired again")
    assert agent.ports["port-web"].vif == record.vif
    assert agent.rescan() == 0
    web.destroy()
    wait_for(lambda: "port-web" in control_plane.down, what="web down")


def test_ovsdb_server_restart_resyncs_what_happened_meanwhile(agent, control_plane, netns_vm,
                                                              ovs_sandbox, bridge):
    """ovsdb-server restarts, and while the agent was disconnected a VIF was unplugged (an
    offline change: no row event ever reaches the agent). On reconnect the agent resyncs: the
    gone VIF's flows leave and it is reported down; the others keep working; VIFs plugged
    after the restart are wired from events again."""
    web = plug(netns_vm, control_plane, "web", "10.2.0.1", ["web"])
    cli = plug(netns_vm, control_plane, "cli", "10.2.0.3", ["plain"])
    gone = plug(netns_vm, control_plane, "gone", "10.2.0.5", ["plain"])
    wait_for(lambda: {"port-web", "port-cli", "port-gone"} <= set(control_plane.up),
             what="ports up")
    gone_ofport = gone.ofport
    port_uuid = ovs_sandbox.vsctl("get", "Port", gone.tap, "_uuid").strip()
    ovs_sandbox.restart_ovsdb(offline_transaction=[
        {"op": "mutate", "table": "Bridge", "where": [["name", "==", bridge]],
         "mutations": [["ports", "delete", ["uuid", port_uuid]]]}])

    wait_for(lambda: "port-gone" in control_plane.down, timeout=20,
             what="the VIF unplugged offline reported down after the reconnect")
    wait_for(lambda: not any(f"reg5={gone_ofport:#x}," in f or f"in_port={gone_ofport} " in f
                             for f in ovs_sandbox.dump_flows(bridge)),
             what="its flows removed")
    assert "port-gone" not in agent.ports
    assert cli.ping(web.ip4)
    late = plug(netns_vm, control_plane, "late", "10.2.0.9", ["plain"])
    wait_for(lambda: "port-late" in control_plane.up, what="a VIF plugged after the restart")
    assert late.ping(web.ip4)


def test_a_report_the_server_refused_is_told_again(agent, control_plane, netns_vm):
    """update_device_list fails with a server error (not a timeout): the port is wired, and
    the news is kept and told again instead of being lost with the failed call."""
    original = control_plane.update_device_list
    failures = [RuntimeError("the server failed: OperationalError: database is locked")]

    def flaky(up, down):
        if failures:
            raise failures.pop()
        original(up, down)

    control_plane.update_device_list = flaky
    plug(netns_vm, control_plane, "web", "10.2.0.1", ["web"])
    wait_for(lambda: "port-web" in control_plane.up, what="the refused report told again")
    assert not failures and agent.ports["port-web"].state == "wired"


def test_an_interface_with_an_iface_id_on_another_bridge_is_not_a_vif(agent, control_plane,
                                                                       netns_vm, ovs_sandbox):
    """Only br-int's interfaces are VIFs: a port on a physical bridge that carries an iface-id
    (an external host, a leftover) is neither wired nor reported."""
    other = "brx" + agent.settings.integration_bridge[-6:]
    ovs_sandbox.add_bridge(other)
    try:
        control_plane.add_port("port-stray", "net-a", "fa:16:3e:00:02:77", ["10.2.0.77"],
                               ["web"])
        ovs_sandbox.vsctl("add-port", other, "stray0", "--", "set", "Interface", "stray0",
                          "type=internal", "external_ids:iface-id=port-stray",
                          "external_ids:attached-mac=fa:16:3e:00:02:77")
        web = plug(netns_vm, control_plane, "web", "10.2.0.1", ["web"])
        wait_for(lambda: "port-web" in control_plane.up, what="the real VIF wired")
        assert agent.rescan() == 0  # the full view agrees: nothing missed
        assert "port-stray" not in agent.ports and "port-stray" not in control_plane.up
        assert web.ofport > 0
    finally:
        ovs_sandbox.del_bridge(other)


def vlan_tag(ovs_sandbox, vm):
    return ovs_sandbox.vsctl("get", "Port", vm.tap, "tag").strip()


def test_a_port_fetched_again_is_reported_up_again(agent, control_plane, netns_vm):
    """neutron moves a port to BUILD on every details fetch; the agent must bring it back."""
    web = plug(netns_vm, control_plane, "web", "10.2.0.1", ["web"])
    cli = plug(netns_vm, control_plane, "cli", "10.2.0.3", ["plain"])
    wait_for(lambda: control_plane.status.get("port-web") == "ACTIVE"
             and control_plane.status.get("port-cli") == "ACTIVE", what="ports ACTIVE")
    control_plane.ports["port-web"]["security_groups"] = ["web", "plain"]
    agent.port_updated("port-web")  # e.g. its groups changed
    wait_for(lambda: control_plane.up.count("port-web") == 2, what="web reported up again")
    assert control_plane.status["port-web"] == "ACTIVE"
    agent.resync("revived")  # every port is fetched again
    wait_for(lambda: control_plane.up.count("port-cli") == 2, what="cli reported up again")
    assert control_plane.status == {"port-web": "ACTIVE", "port-cli": "ACTIVE"}
    assert cli.ping(web.ip4)


def test_an_administratively_down_port_is_cut_off_and_reported_down(
        agent, control_plane, netns_vm, ovs_sandbox):
    web = plug(netns_vm, control_plane, "web", "10.2.0.1", ["web"])
    cli = plug(netns_vm, control_plane, "cli", "10.2.0.3", ["plain"])
    wait_for(lambda: {"port-web", "port-cli"} <= set(control_plane.up), what="ports up")
    assert cli.ping(web.ip4)
    control_plane.ports["port-cli"]["admin_state_up"] = False
    agent.port_updated("port-cli")
    wait_for(lambda: control_plane.status.get("port-cli") == "DOWN", what="cli reported down")
    assert agent.ports["port-cli"].state == "port-down"
    assert vlan_tag(ovs_sandbox, cli) == "4095"
    assert not cli.ping(web.ip4, timeout=1)
    control_plane.ports["port-cli"]["admin_state_up"] = True
    agent.port_updated("port-cli")
    wait_for(lambda: control_plane.status.get("port-cli") == "ACTIVE", what="cli ACTIVE again")
    assert cli.ping(web.ip4)


def test_a_port_deleted_on_the_server_loses_its_access_while_still_plugged(
        agent, control_plane, netns_vm, ovs_sandbox, bridge):
    web = plug(netns_vm, control_plane, "web", "10.2.0.1", ["web"])
    cli = plug(netns_vm, control_plane, "cli", "10.2.0.3", ["plain"])
    wait_for(lambda: {"port-web", "port-cli"} <= set(control_plane.up), what="ports up")
    ofport = cli.ofport
    del control_plane.ports["port-cli"]
    agent.port_deleted("port-cli")
    wait_for(lambda: agent.ports["port-cli"].state == "deleted", what="cli cut off")
    assert vlan_tag(ovs_sandbox, cli) == "4095"
    assert not cli.ping(web.ip4, timeout=1)
    flows = ovs_sandbox.dump_flows(bridge)
    assert not any(f"in_port={ofport} " in f or f"reg5={ofport:#x}," in f for f in flows)
    cli.destroy()  # nova unplugs it later: nothing to tell a server that has no such port
    wait_for(lambda: "port-cli" not in agent.ports, what="cli forgotten")
    assert "port-cli" not in control_plane.down
    assert web.ofport > 0


def test_live_migration_parks_the_source_and_wires_the_destination(
        agent, control_plane, netns_vm, ovs_sandbox):
    web = plug(netns_vm, control_plane, "web", "10.2.0.1", ["web"])
    cli = plug(netns_vm, control_plane, "cli", "10.2.0.3", ["plain"])
    wait_for(lambda: {"port-web", "port-cli"} <= set(control_plane.up), what="ports up")
    # this host is the source: its binding is deactivated, the VM runs elsewhere now
    agent.binding_deactivated("port-cli")
    wait_for(lambda: agent.ports["port-cli"].state == "unbound", what="cli parked")
    assert vlan_tag(ovs_sandbox, cli) == "4095"
    assert not cli.ping(web.ip4, timeout=1)
    # and back (the migration was rolled back): activation fetches it again and wires it
    agent.port_updated("port-cli")
    wait_for(lambda: agent.ports["port-cli"].state == "wired", what="cli wired again")
    assert cli.ping(web.ip4)


def test_an_interface_whose_iface_id_changes_becomes_the_new_port(agent, control_plane,
                                                                  netns_vm, ovs_sandbox,
                                                                  bridge):
    """The same Interface gets another iface-id (a port re-created and re-plugged with the
    same MAC): the old port is unplugged -- its flows go, it is reported down -- and the new
    one is wired with its own rules. OVSDB's update carries only the new id."""
    web = plug(netns_vm, control_plane, "web", "10.2.0.1", ["web"])
    cli = plug(netns_vm, control_plane, "cli", "10.2.0.3", ["web"])
    wait_for(lambda: {"port-web", "port-cli"} <= set(control_plane.up), what="ports up")
    web.tcp_listen(80)
    assert cli.tcp_connect(web.ip4, 80, timeout=3)
    old_cookies = {f.split(",")[0] for f in ovs_sandbox.dump_flows(bridge)}

    # the same MAC and address as port-web, which is deleted on the server
    control_plane.add_port("port-web2", "net-a", web.mac, ["10.2.0.1"], ["plain"])
    del control_plane.ports["port-web"]
    ovs_sandbox.vsctl("set", "Interface", web.tap, "external_ids:iface-id=port-web2")
    wait_for(lambda: "port-web" in control_plane.down and "port-web2" in control_plane.up,
             what="port-web down, port-web2 up")
    assert set(agent.ports) == {"port-web2", "port-cli"}
    assert agent.ports["port-web2"].state == "wired"
    assert agent.ports["port-web2"].vif.name == web.tap
    wait_for(lambda: not cli.tcp_connect(web.ip4, 80, timeout=1),
             what="web's tcp/80 rule gone with port-web")
    assert cli.ping(web.ip4, timeout=1) is False  # "plain" admits nothing in
    assert web.ping(cli.ip4)  # web2 may send (egress); cli admits ICMP
    assert {f.split(",")[0] for f in ovs_sandbox.dump_flows(bridge)} != old_cookies


def test_a_change_fetched_by_a_batch_that_then_fails_still_reaches_the_switch(
        agent, control_plane, netns_vm):
    """One batch refetches db (whose reply already brings group app's new member) and then
    fails on its next call; the retry finds the cache up to date -- the member must still be
    installed (it was lost under churn with failing replies)."""
    db = plug(netns_vm, control_plane, "db", "10.2.0.2", ["db"])
    cli = plug(netns_vm, control_plane, "cli", "10.2.0.3", ["plain"])
    wait_for(lambda: {"port-db", "port-cli"} <= set(control_plane.up), what="ports up")
    db.tcp_listen(5432)
    assert not cli.tcp_connect(db.ip4, 5432, timeout=1)

    with agent._queue.lock:  # one batch: db fetched again, then app's members
        control_plane.ports["port-cli"]["security_groups"] = ["plain", "app"]
        control_plane.fail_next["security_group_info"] = [False, True]
        agent.port_updated("port-db")
        agent.security_groups_member_updated(["app"])
    wait_for(lambda: not control_plane.fail_next["security_group_info"], what="the failure")
    wait_for(lambda: cli.tcp_connect(db.ip4, 5432, timeout=1), timeout=10,
             what="db reachable from cli, a member of app now")


def test_a_port_fetched_again_in_a_batch_that_parks_another_is_reported_up(
        agent, control_plane, netns_vm):
    """Fetching details puts a port in BUILD; parking another port of the same batch (it
    went administratively down) installs at once -- the fetched port must still be reported
    up (a draft of the agent left it BUILD: its change went into a set the park replaced)."""
    web = plug(netns_vm, control_plane, "web", "10.2.0.1", ["web"])
    cli = plug(netns_vm, control_plane, "cli", "10.2.0.3", ["plain"])
    wait_for(lambda: control_plane.status.get("port-web") == "ACTIVE"
             and control_plane.status.get("port-cli") == "ACTIVE", what="ports up")
    with agent._queue.lock:  # one batch
        control_plane.ports["port-web"]["admin_state_up"] = False
        agent.port_updated("port-web")
        agent.port_updated("port-cli")
    wait_for(lambda: control_plane.status == {"port-web": "DOWN", "port-cli": "ACTIVE"},
             what=f"web DOWN, cli ACTIVE (seen {control_plane.status})")
    assert web.ofport > 0 and not cli.ping(web.ip4, timeout=1)


def test_a_server_that_answers_some_calls_is_retried_at_the_base_pace(
        ovs_sandbox, bridge, control_plane, netns_vm):
    """Every batch gets a reply (the details) and then loses one (the rules): the server is
    there, so the wait must not double each time (0.2, 0.4 ... 3.2 s: 6.2 s before the
    sixth try; at the base pace about 1.2 s)."""
    with running_agent(ovs_sandbox, bridge, control_plane, retry_backoff=0.2) as agent:
        web = plug(netns_vm, control_plane, "web", "10.2.0.1", ["web"])
        wait_for(lambda: control_plane.status.get("port-web") == "ACTIVE", what="web up")
        control_plane.fail_next["security_group_info"] = [True] * 6
        agent.port_updated("port-web")
        wait_for(lambda: not control_plane.fail_next["security_group_info"], timeout=4,
                 what="six failed batches, each 0.2 s apart")
        wait_for(lambda: control_plane.status.get("port-web") == "ACTIVE", what="web up again")
        assert web.ofport > 0


def test_the_tags_of_a_batch_are_written_in_one_ovsdb_transaction(
        ovs_sandbox, bridge, control_plane, netns_vm):
    """Each OVSDB transaction that changes a Port makes ovs-vswitchd reconfigure the bridge:
    one per port made a cold start of 1,000 untagged VIFs take 50 s. VIFs plugged before the
    agent starts are tagged in one transaction."""
    writes = RecordingOvsdb.writes = []
    vms = [plug(netns_vm, control_plane, f"vm{i}", f"10.2.0.{i + 1}", ["web"])
           for i in range(5)]
    with running_agent(ovs_sandbox, bridge, control_plane, ovsdb_class=RecordingOvsdb):
        wait_for(lambda: all(control_plane.status.get(f"port-vm{i}") == "ACTIVE"
                             for i in range(5)), what="all five up")
        assert len(writes) == 1 and set(writes[0]) == {vm.tap for vm in vms}, writes
        tags = {vlan_tag(ovs_sandbox, vm) for vm in vms}
        assert len(tags) == 1 and tags != {"4095"} and tags != {"[]"}  # one network's VLAN
        assert vms[0].ping(vms[1].ip4)


def test_ports_parked_in_one_batch_go_in_one_ovsdb_transaction(
        ovs_sandbox, bridge, control_plane, netns_vm):
    """Three ports set administratively down at once: one dead-VLAN write for all three (and
    one bundle for their flows), each reported DOWN and cut off."""
    writes = RecordingOvsdb.writes = []
    vms = [plug(netns_vm, control_plane, f"vm{i}", f"10.2.0.{i + 1}", ["web"])
           for i in range(4)]
    with running_agent(ovs_sandbox, bridge, control_plane, ovsdb_class=RecordingOvsdb) as agent:
        wait_for(lambda: all(control_plane.status.get(f"port-vm{i}") == "ACTIVE"
                             for i in range(4)), what="all four up")
        # VIF events may still be in flight (a port fetched again): a batch already running
        # when the three are marked would park its own port on its own (seen once, loaded)
        wait_quiet(control_plane)
        writes.clear()
        with agent._queue.lock:  # one batch
            for i in range(3):
                control_plane.ports[f"port-vm{i}"]["admin_state_up"] = False
                agent.port_updated(f"port-vm{i}")
        wait_for(lambda: all(control_plane.status.get(f"port-vm{i}") == "DOWN"
                             for i in range(3)), what="three DOWN")
        dead = [w for w in writes if any(tag == 4095 for tag, _ in w.values())]
        assert len(dead) == 1 and set(dead[0]) == {vm.tap for vm in vms[:3]}, writes
        assert {vlan_tag(ovs_sandbox, vm) for vm in vms[:3]} == {"4095"}
        assert not vms[3].ping(vms[0].ip4, timeout=1)
        assert control_plane.status["port-vm3"] == "ACTIVE"


def member_flows(ovs_sandbox, bridge, address):
    """The member flows of ``address`` (the second clause of remote-group conjunctions)."""
    return [f for f in ovs_sandbox.dump_flows(bridge)
            if re.search(rf"nw_src={re.escape(address)}[ ,]", f) and "conjunction(" in f]


def test_a_port_bound_here_finds_its_remote_groups_installed_before_its_vif(
        ovs_sandbox, bridge, control_plane, netns_vm):
    """Nova binds a port, then boots the VM and plugs the VIF. Told of the binding, the agent
    installs the member flows of the port's remote groups at once (without asking for the
    port's details: neutron would move a port without a VIF to BUILD), so that the VIF has
    only its own flows to wait for. Nothing passes before the VIF is wired; all of it after."""
    with running_agent(ovs_sandbox, bridge, control_plane) as agent:
        app = plug(netns_vm, control_plane, "app", "10.2.0.3", ["app"])
        wait_for(lambda: "port-app" in control_plane.up, what="app up")
        assert not member_flows(ovs_sandbox, bridge, "10.2.0.3")  # no rule names "app" yet
        control_plane.add_port("port-db", "net-a", "fa:16:3e:00:02:02", ["10.2.0.2"], ["db"])
        agent.port_bound("port-db", here=True)
        wait_for(lambda: member_flows(ovs_sandbox, bridge, "10.2.0.3"),
                 what="app's member flow installed ahead of db's VIF")
        assert agent.status()["expected"] == 1
        assert "port-db" not in control_plane.status  # no details asked: not moved to BUILD
        ahead = member_flows(ovs_sandbox, bridge, "10.2.0.3")
        flows_before_vif = set(ovs_sandbox.dump_flows(bridge))

        db = netns_vm("db", mac="fa:16:3e:00:02:02", ipv4=["10.2.0.2/24"], iface_id="port-db")
        wait_for(lambda: "port-db" in control_plane.up, what="db up")
        assert agent.status()["expected"] == 0
        assert member_flows(ovs_sandbox, bridge, "10.2.0.3") == ahead  # not touched again
        added = set(ovs_sandbox.dump_flows(bridge)) - flows_before_vif
        assert added  # db's own flows, and nothing of app's membership
        assert not [f for f in added if "nw_src=10.2.0.3" in f or "conj_id=" in f]
        db.tcp_listen(5432)
        assert app.tcp_connect(db.ip4, 5432, timeout=3)


def test_a_port_bound_elsewhere_or_never_plugged_takes_its_member_flows_away(
        ovs_sandbox, bridge, control_plane, netns_vm):
    with running_agent(ovs_sandbox, bridge, control_plane, expect_vif_for=1.0) as agent:
        control_plane.add_port("port-app", "net-a", "fa:16:3e:00:02:03", ["10.2.0.3"], ["app"])
        control_plane.add_port("port-db", "net-a", "fa:16:3e:00:02:02", ["10.2.0.2"], ["db"])
        control_plane.add_port("port-db2", "net-a", "fa:16:3e:00:02:04", ["10.2.0.4"], ["db"])
        wait_for(lambda: agent.synced_once, what="first sync")
        agent.port_bound("port-db", here=True)
        wait_for(lambda: member_flows(ovs_sandbox, bridge, "10.2.0.3"), what="member flow")
        calls = len(control_plane.calls)
        for i in range(50):  # the cloud's other bindings (a fanout): nothing to do for them
            agent.port_bound(f"port-elsewhere-{i}", here=False)
        agent.port_bound("port-db", here=False)  # rescheduled to another host
        wait_for(lambda: not member_flows(ovs_sandbox, bridge, "10.2.0.3"),
                 what="member flow gone with the binding")
        assert agent.status()["expected"] == 0
        assert len(control_plane.calls) == calls  # no server call for any of it

        agent.port_bound("port-db2", here=True)
        wait_for(lambda: member_flows(ovs_sandbox, bridge, "10.2.0.3"), what="member flow")
        time.sleep(1.2)  # the VM never came: expect_vif_for passed
        agent.security_groups_rule_updated(["plain"])  # any work notices it
        wait_for(lambda: not member_flows(ovs_sandbox, bridge, "10.2.0.3"),
                 what="member flow gone after expect_vif_for")
        assert agent.status()["expected"] == 0
        assert not set(control_plane.status) & {"port-db", "port-db2"}


def test_a_vif_plugged_while_its_ofportless_first_row_is_being_unwired_is_wired(
        ovs_sandbox, bridge, control_plane):
    """An interface's first OVSDB row has no ofport yet: for the agent that is no VIF (an
    unplug of a port it does not know). The worker may be busy with that unplug when the row
    with the ofport arrives; the plug must not be forgotten by the unplug (it was, and the
    VIF stayed unwired until the rescan, 300 s later). Driven step by step, no worker thread."""
    ovsdb = Ovsdb(ovs_sandbox.db_connection, 10)
    programmer = BridgeProgrammer(OfctlTransport(bridge, env=ovs_sandbox.env))
    agent = Agent(Settings(integration_bridge=bridge), ovsdb, control_plane,
                  Dataplane(programmer))
    try:
        assert agent.run_once()  # the first sync
        control_plane.add_port("port-x", "net-a", "fa:16:3e:00:02:09", ["10.2.0.9"], ["plain"])
        agent.vif_event("create", Vif("tapx", "port-x", "fa:16:3e:00:02:09", -1))
        first = agent._queue.take(0)  # the worker takes the ofport-less row's batch...
        agent.vif_event("update", Vif("tapx", "port-x", "fa:16:3e:00:02:09", 7))  # ...then
        agent._process(first)
        assert "port-x" in agent.ports
        assert agent.run_once()  # the plug's batch
        assert agent.ports["port-x"].state == "wired"
        assert "port-x" in control_plane.up
        assert "get_devices_details" in control_plane.calls
        # a VIF unplugged and plugged again while the worker unwires it: wired again
        agent.vif_event("delete", Vif("tapx", "port-x", "fa:16:3e:00:02:09", 7))
        gone = agent._queue.take(0)
        agent.vif_event("update", Vif("tapx", "port-x", "fa:16:3e:00:02:09", 8))
        agent._process(gone)
        assert agent.run_once()
        assert agent.ports["port-x"].state == "wired" and agent.ports["port-x"].vif.ofport == 8
        flows = ovs_sandbox.dump_flows(bridge)
        assert any("in_port=8 " in f or "in_port=8," in f for f in flows)
    finally:
        agent.stop()
        ovsdb.stop()

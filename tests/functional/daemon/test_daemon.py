"""The dpagent daemon as operators run it: a process with a config file, a real broker, a
private OVS, real namespaces; a control-plane double speaking neutron's contract answers it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from dpagent.daemon.status import query
from dpagent.lab.control_plane import ControlPlaneDouble
from dpagent.version import version


def wait_for(predicate, timeout=20.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def double(transport_url):
    with ControlPlaneDouble(transport_url) as cp:
        yield cp


def pingable_network(double, cidr):
    """A tenant network and a group that allows ICMP in and anything out."""
    net = double.model.add_network("n1", cidr=cidr, network_type="vxlan", physical_network=None)
    sg = double.model.add_security_group()
    for rule in ({"direction": "ingress", "ethertype": "IPv4", "protocol": "icmp"},
                 {"direction": "egress", "ethertype": "IPv4"}):
        double.add_rule(sg.id, notify=False, **rule)
    return net, sg


def write_config(tmp_path, ovs_sandbox, transport_url, host, bridge, backend, *,
                 report_interval=1, debug=True, rpc_timeout=5, extra=""):
    """The daemon's config file; ``extra``: more sections appended as they are."""
    conf = tmp_path / "dpagent.conf"
    conf.write_text(f"""
[DEFAULT]
transport_url = {transport_url}
rpc_response_timeout = {rpc_timeout}
debug = {str(debug).lower()}
log_file = {tmp_path / 'dpagent.log'}

[agent]
host = {host}
report_interval = {report_interval}
status_socket = {tmp_path / 'status.sock'}
service_backend = {backend}

[ovs]
integration_bridge = {bridge}
datapath_type = netdev
ovsdb_connection = {ovs_sandbox.db_connection}
of_interface = native
""" + extra + _rpc_mode_section())
    return conf


def _rpc_mode_section() -> str:
    """``$DPAGENT_TEST_RPC_MODE`` (cache, legacy): the whole suite in that mode."""
    mode = os.environ.get("DPAGENT_TEST_RPC_MODE")
    return f"\n[agent]\nrpc_mode = {mode}\n" if mode else ""


def start_daemon(tmp_path, ovs_sandbox, transport_url, host, bridge, backend, **options):
    conf = write_config(tmp_path, ovs_sandbox, transport_url, host, bridge, backend, **options)
    env = dict(os.environ, **ovs_sandbox.env)
    # its own session, as under systemd: cotyledon passes SIGHUP on to its process group
    return subprocess.Popen([sys.executable, "-m", "dpagent.cmd.agent", "--config-file",
                             str(conf)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def clean_up(daemon, ovs_sandbox, bridge):
    """After a test, whatever it asserted: no daemon left running, its bridge gone."""
    if daemon.poll() is None:
        daemon.kill()
        daemon.wait()
    ovs_sandbox.del_bridge(bridge)


@pytest.mark.parametrize("backend", ["threading", "eventlet"])
def test_start_heartbeat_wire_and_stop(backend, tmp_path, ovs_sandbox, transport_url, double,
                                       netns_vm):
    host = f"compute-{uuid.uuid4().hex[:6]}"
    bridge = f"br-d{uuid.uuid4().hex[:6]}"
    net, sg = pingable_network(double, "10.4.0.0/24")
    daemon = start_daemon(tmp_path, ovs_sandbox, transport_url, host, bridge, backend)
    try:
        report = double.wait_for_call("report_state", timeout=30)
        state = report.kwargs["agent_state"]["agent_state"]
        assert state["host"] == host and state["agent_type"] == "Open vSwitch agent"
        assert state["start_flag"] is True
        assert state["configurations"]["integration_bridge"] == bridge
        wait_for(lambda: os.path.exists(tmp_path / "status.sock"), what="status socket")

        ports = [double.add_port(net.id, host=host, security_groups=[sg.id]) for _ in range(2)]
        vms = [netns_vm(f"d{i}", bridge=bridge, mac=p.mac_address,
                        ipv4=[f"{p.fixed_ips[0]['ip_address']}/24"], iface_id=p.id)
               for i, p in enumerate(ports)]
        wait_for(lambda: all(double.model.ports[p.id].status == "ACTIVE" for p in ports),
                 what="ports reported up")
        assert vms[0].ping(vms[1].ip4)
        status = query(str(tmp_path / "status.sock"))
        assert status["ports"] == {"wired": 2} and status["admin_state_up"] is True
        # the version, as installed, in the start's log line
        assert f"dpagent {version()} started on host {host}" in \
            (tmp_path / "dpagent.log").read_text()
        flows_before = ovs_sandbox.dump_flows(bridge)

        started = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=10) == 0
        assert time.monotonic() - started < 10
        assert ovs_sandbox.dump_flows(bridge) == flows_before  # the dataplane is left as it is
        assert vms[0].ping(vms[1].ip4)
    finally:
        clean_up(daemon, ovs_sandbox, bridge)


@pytest.mark.parametrize("backend", ["threading", "eventlet"])
def test_sighup_reloads_mutable_options_and_logging_in_place(backend, tmp_path, ovs_sandbox,
                                                             transport_url, double, netns_vm):
    """SIGHUP re-reads the configuration: a shorter report_interval and debug logging take
    effect without a restart (same worker process, no new start_flag, flows untouched)."""
    host = f"compute-{uuid.uuid4().hex[:6]}"
    bridge = f"br-d{uuid.uuid4().hex[:6]}"
    net, sg = pingable_network(double, "10.7.0.0/24")
    daemon = start_daemon(tmp_path, ovs_sandbox, transport_url, host, bridge, backend,
                          report_interval=600, debug=False)
    try:
        double.wait_for_call("report_state", timeout=30)
        wait_for(lambda: os.path.exists(tmp_path / "status.sock"), what="status socket")
        port = double.add_port(net.id, host=host, security_groups=[sg.id])
        netns_vm("h0", bridge=bridge, mac=port.mac_address,
                 ipv4=[f"{port.fixed_ips[0]['ip_address']}/24"], iface_id=port.id)
        wait_for(lambda: double.model.ports[port.id].status == "ACTIVE", what="port up")
        before = query(str(tmp_path / "status.sock"))
        flows_before = ovs_sandbox.dump_flows(bridge)
        reports_before = len(double.calls("report_state"))
        log = tmp_path / "dpagent.log"
        assert " DEBUG " not in log.read_text()

        write_config(tmp_path, ovs_sandbox, transport_url, host, bridge, backend,
                     report_interval=1, debug=True)
        daemon.send_signal(signal.SIGHUP)
        # with the old 600 s interval no further report would come for ten minutes
        wait_for(lambda: len(double.calls("report_state")) >= reports_before + 3, timeout=20,
                 what="heartbeats at the reloaded 1 s interval")
        after = query(str(tmp_path / "status.sock"))
        assert after["pid"] == before["pid"] and after["started_at"] == before["started_at"]
        assert after["ports"] == {"wired": 1}
        later = double.calls("report_state")[reports_before:]
        assert all("start_flag" not in c.kwargs["agent_state"]["agent_state"] for c in later)
        text = log.read_text()
        assert "configuration reloaded: report_interval 1 s" in text
        assert " DEBUG " in text.split("configuration reloaded")[-1]  # debug = true applied
        assert ovs_sandbox.dump_flows(bridge) == flows_before
        assert daemon.poll() is None
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=10) == 0
    finally:
        clean_up(daemon, ovs_sandbox, bridge)


@pytest.mark.parametrize("rpc_mode", ["legacy", "cache"])
def test_member_update_and_admin_state_over_the_broker(rpc_mode, tmp_path, ovs_sandbox,
                                                       transport_url, double, netns_vm):
    """Notifications from the server reach the daemon over RabbitMQ: a member update opens a
    remote-group rule; admin state down isolates a new VIF (reported down) while wired ports keep
    working; admin state up wires it without a restart. In cache mode the member update comes
    as the double's OVO push, and costs the double not one call."""
    host = f"compute-{uuid.uuid4().hex[:6]}"
    bridge = f"br-d{uuid.uuid4().hex[:6]}"
    net = double.model.add_network("n1", cidr="10.5.0.0/24", network_type="vxlan",
                                   physical_network=None)
    db, app, plain = (double.model.add_security_group() for _ in range(3))
    double.add_rule(db.id, notify=False, direction="ingress", ethertype="IPv4",
                    protocol="tcp", port_range_min=5432, port_range_max=5432,
                    remote_group_id=app.id)
    double.add_rule(db.id, notify=False, direction="ingress", ethertype="IPv4", protocol="icmp")
    for group in (db, app, plain):
        double.add_rule(group.id, notify=False, direction="egress", ethertype="IPv4")
    daemon = start_daemon(tmp_path, ovs_sandbox, transport_url, host, bridge, "threading",
                          extra=f"\n[agent]\nrpc_mode = {rpc_mode}\n")
    try:
        double.wait_for_call("report_state", timeout=30)
        wait_for(lambda: os.path.exists(tmp_path / "status.sock"), what="status socket")
        db_port = double.add_port(net.id, host=host, security_groups=[db.id])
        cli_port = double.add_port(net.id, host=host, security_groups=[plain.id])
        db_vm, cli_vm = (netns_vm(name, bridge=bridge, mac=p.mac_address,
                                  ipv4=[f"{p.fixed_ips[0]['ip_address']}/24"], iface_id=p.id)
                         for name, p in (("db", db_port), ("cli", cli_port)))
        wait_for(lambda: all(double.model.ports[p.id].status == "ACTIVE"
                             for p in (db_port, cli_port)), what="ports up")
        db_vm.tcp_listen(5432)
        assert not cli_vm.tcp_connect(db_vm.ip4, 5432, timeout=1)
        asked = {m: len(double.calls(m)) for m in (
            "security_group_info_for_devices", "get_devices_details_list_and_failed_devices",
            "bulk_pull")}

        double.update_port(cli_port.id, security_groups=[plain.id, app.id])  # member_updated
        wait_for(lambda: cli_vm.tcp_connect(db_vm.ip4, 5432, timeout=1), timeout=15,
                 what="the member update opened tcp/5432")
        calls = {m: len(double.calls(m)) - n for m, n in asked.items()}
        if rpc_mode == "cache":  # from the push alone (app is new to the host: pulled once)
            assert calls == {"security_group_info_for_devices": 0,
                             "get_devices_details_list_and_failed_devices": 0,
                             "bulk_pull": 1}, calls
        else:
            assert calls["security_group_info_for_devices"] >= 1 and not calls["bulk_pull"]

        double.set_agent_admin_state(host, False)  # agent_updated(admin_state_up=False)
        wait_for(lambda: query(str(tmp_path / "status.sock"))["admin_state_up"] is False,
                 what="admin state down")
        late_port = double.add_port(net.id, host=host, security_groups=[plain.id])
        late = netns_vm("late", bridge=bridge, mac=late_port.mac_address,
                        ipv4=[f"{late_port.fixed_ips[0]['ip_address']}/24"],
                        iface_id=late_port.id)
        wait_for(lambda: query(str(tmp_path / "status.sock"))["ports"].get("admin-down") == 1,
                 what="the new VIF held back")
        assert double.model.ports[late_port.id].status != "ACTIVE"
        assert not late.ping(db_vm.ip4, timeout=1)
        assert cli_vm.ping(db_vm.ip4)  # wired ports keep working

        double.set_agent_admin_state(host, True)
        wait_for(lambda: double.model.ports[late_port.id].status == "ACTIVE",
                 what="the held VIF wired after admin up")
        assert late.ping(db_vm.ip4)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=10) == 0
    finally:
        clean_up(daemon, ovs_sandbox, bridge)


def test_a_push_lost_with_a_deleted_queue_is_made_good_by_a_resync(
        tmp_path, ovs_sandbox, rabbit_broker, transport_url, double, netns_vm):
    """A partial broker failure: the queue of the agent's rule pushes goes (deleted here) while
    its heartbeat's connection stays up. A rule added before the consumer has declared it again
    is lost with it; the agent notices the reconnection and resyncs, so the rule is enforced
    (in cache mode nothing else would ever bring it)."""
    if rabbit_broker.external_url is not None:
        pytest.skip("needs the private broker, whose queues the test deletes")
    host = f"compute-{uuid.uuid4().hex[:6]}"
    bridge = f"br-d{uuid.uuid4().hex[:6]}"
    net = double.model.add_network("n1", cidr="10.7.0.0/24", network_type="vxlan",
                                   physical_network=None)
    db, plain = (double.model.add_security_group() for _ in range(2))
    for group in (db, plain):
        double.add_rule(group.id, notify=False, direction="egress", ethertype="IPv4")
    daemon = start_daemon(tmp_path, ovs_sandbox, transport_url, host, bridge, "threading",
                          extra="\n[agent]\nrpc_mode = cache\n")
    sock = str(tmp_path / "status.sock")
    try:
        double.wait_for_call("report_state", timeout=30)
        wait_for(lambda: os.path.exists(sock), what="status socket")
        db_port = double.add_port(net.id, host=host, security_groups=[db.id])
        cli_port = double.add_port(net.id, host=host, security_groups=[plain.id])
        db_vm, cli_vm = (netns_vm(name, bridge=bridge, mac=p.mac_address,
                                  ipv4=[f"{p.fixed_ips[0]['ip_address']}/24"], iface_id=p.id)
                         for name, p in (("ldb", db_port), ("lcli", cli_port)))
        wait_for(lambda: all(double.model.ports[p.id].status == "ACTIVE"
                             for p in (db_port, cli_port)), what="ports up")
        db_vm.tcp_listen(5432)
        assert not cli_vm.tcp_connect(db_vm.ip4, 5432, timeout=1)
        assert query(sock)["consumer_reconnects"] == 0

        vhost = transport_url.rsplit("/", 1)[1]
        queues = rabbit_broker.rabbitmqctl("list_queues", "-p", vhost, "name").split()
        (rules,) = [q for q in queues
                    if q.startswith("neutron-vo-SecurityGroupRule-") and "_fanout_" in q]
        rabbit_broker.rabbitmqctl("delete_queue", "-p", vhost, rules)
        double.add_rule(db.id, direction="ingress", ethertype="IPv4", protocol="tcp",
                        port_range_min=5432, port_range_max=5432)  # pushed into nothing
        wait_for(lambda: cli_vm.tcp_connect(db_vm.ip4, 5432, timeout=1), timeout=20,
                 what="the lost rule enforced after the resync")
        assert query(sock)["consumer_reconnects"] == 1
        assert "reconnected to the broker" in (tmp_path / "dpagent.log").read_text()
    finally:
        clean_up(daemon, ovs_sandbox, bridge)


def test_broker_outage_of_60s(tmp_path, ovs_sandbox, rabbit_broker, transport_url, double,
                              netns_vm):
    """RabbitMQ stopped for 60 s: traffic keeps flowing, the daemon stays up, a VIF plugged
    meanwhile is wired and heartbeats resume once the broker is back."""
    if rabbit_broker.external_url is not None:
        pytest.skip("needs the private broker, which the test may stop")
    host = f"compute-{uuid.uuid4().hex[:6]}"
    bridge = f"br-d{uuid.uuid4().hex[:6]}"
    net, sg = pingable_network(double, "10.6.0.0/24")
    daemon = start_daemon(tmp_path, ovs_sandbox, transport_url, host, bridge, "threading")
    try:
        double.wait_for_call("report_state", timeout=30)
        wait_for(lambda: os.path.exists(tmp_path / "status.sock"), what="status socket")
        ports = [double.add_port(net.id, host=host, security_groups=[sg.id]) for _ in range(3)]
        vms = [netns_vm(f"o{i}", bridge=bridge, mac=p.mac_address,
                        ipv4=[f"{p.fixed_ips[0]['ip_address']}/24"], iface_id=p.id)
               for i, p in enumerate(ports[:2])]
        wait_for(lambda: all(double.model.ports[p.id].status == "ACTIVE" for p in ports[:2]),
                 what="ports up")
        rabbit_broker.stop()
        outage_start = time.monotonic()
        late = netns_vm("olate", bridge=bridge, mac=ports[2].mac_address,
                        ipv4=[f"{ports[2].fixed_ips[0]['ip_address']}/24"], iface_id=ports[2].id)
        while time.monotonic() - outage_start < 60:
            assert vms[0].ping(vms[1].ip4), "traffic stopped during the broker outage"
            assert daemon.poll() is None, "the daemon died during the broker outage"
            time.sleep(5)
        reports_before = len(double.calls("report_state"))
        rabbit_broker.start()
        double.wait_for_call("report_state", timeout=60, after=reports_before)
        wait_for(lambda: double.model.ports[ports[2].id].status == "ACTIVE", timeout=60,
                 what="the VIF plugged during the outage wired")
        assert late.ping(vms[0].ip4)
        assert query(str(tmp_path / "status.sock"))["ports"] == {"wired": 3}
    finally:
        if not rabbit_broker.running:
            rabbit_broker.start()
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=15)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        ovs_sandbox.del_bridge(bridge)

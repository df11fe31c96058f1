"""``[agent] metrics_listen``: the running daemon's Prometheus endpoint, scraped over HTTP as
Prometheus would, while ports are wired, the switch drifts and resets and the server fails a
call -- each counted where it happened, and the gauges equal what ``dpagent-ctl status`` says."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
import urllib.error
import urllib.request
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dpagent.daemon.status import query
from dpagent.lab.control_plane import ControlPlaneDouble
from dpagent.rpc import topics
from dpagent.version import version
from flows.pipeline import Table
from tests.functional.daemon.test_daemon import (
    clean_up,
    pingable_network,
    start_daemon,
    wait_for,
    write_config,
)
from tests.functional.daemon.test_daemon_start import run_daemon


@pytest.fixture
def double(transport_url):
    with ControlPlaneDouble(transport_url) as cp:
        yield cp


def scrape(url):
    """{(sample name, sorted labels): value} of one scrape."""
    with urllib.request.urlopen(url, timeout=5) as reply:
        assert reply.status == 200
        assert reply.headers["Content-Type"].startswith("text/plain")
        text = reply.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def metrics_url(log):
    """The endpoint the daemon logged (it listens on port 0: any free one)."""
    found = re.findall(r"serving Prometheus metrics on (http://\S+)", log.read_text()) \
        if log.exists() else []
    return found[-1] if found else None


def test_scraped_while_the_daemon_wires_repairs_and_reports(tmp_path, ovs_sandbox,
                                                           transport_url, double, netns_vm):
    host = f"compute-{uuid.uuid4().hex[:6]}"
    bridge = f"br-m{uuid.uuid4().hex[:6]}"
    net, sg = pingable_network(double, "10.9.0.0/24")
    sock = str(tmp_path / "status.sock")
    daemon = start_daemon(tmp_path, ovs_sandbox, transport_url, host, bridge, "threading",
                          extra="\n[agent]\nmetrics_listen = 127.0.0.1:0\naudit_interval = 1\n"
                                "metrics_rule_counters = true\n")
    try:
        wait_for(lambda: metrics_url(tmp_path / "dpagent.log"), what="the metrics endpoint")
        url = metrics_url(tmp_path / "dpagent.log")
        double.wait_for_call("report_state", timeout=30)
        port = double.add_port(net.id, host=host, security_groups=[sg.id])
        first = netns_vm("m0", bridge=bridge, mac=port.mac_address,
                         ipv4=[f"{port.fixed_ips[0]['ip_address']}/24"], iface_id=port.id)
        wait_for(lambda: double.model.ports[port.id].status == "ACTIVE", what="port up")

        # a cast that fails validation, one that is delivered, a call the server fails
        double.cast(topics.PORT_DELETE, "port_delete", port_id=42)
        double.notify_agent_updated(host, True)
        double.inject("report_state", error=RuntimeError("the server broke"), times=1)
        # drift: a flow deleted by hand; the next audit (every second) puts it back
        canary_table = f"table={int(Table.CANARY)},"
        flow = next(f for f in ovs_sandbox.dump_flows(bridge) if canary_table not in f)
        cookie = re.search(r"cookie=(0x[0-9a-f]+)", flow).group(1)
        ovs_sandbox.ofctl("del-flows", bridge, f"cookie={cookie}/-1")
        wait_for(lambda: value(scrape(url), "dpagent_audit_drift_found_total",
                               bridge=bridge), what="the drift counted")
        # a reset: the switch loses every flow, as when ovs-vswitchd restarts
        ovs_sandbox.ofctl("del-flows", bridge)
        wait_for(lambda: value(scrape(url), "dpagent_switch_resets_total", bridge=bridge),
                 what="the reset counted")
        wait_for(lambda: value(scrape(url), "dpagent_rpc_call_errors_total",
                               method="report_state", error="ServerError"),
                 what="the failed report counted")

        for _ in range(50):  # the gauges of a scrape against the status of that moment
            status, samples = query(sock), scrape(url)
            if query(sock)["flows_installed"] == status["flows_installed"]:
                break
            time.sleep(0.1)
        reports = len(double.calls("report_state"))

        assert value(samples, "dpagent_info", host=host, version=version()) == 1
        assert status["ports"] == {"wired": 1}
        assert value(samples, "dpagent_ports", state="wired") == 1
        assert value(samples, "dpagent_ports", state="pending") == 0
        flows = value(samples, "dpagent_flows_installed", bridge=bridge)
        assert flows == status["flows_installed"] == len(ovs_sandbox.dump_flows(bridge)) > 0
        commits = value(samples, "dpagent_bundle_commits_total", bridge=bridge)
        # the first sync, the port, the audit's repair, the reset's
        assert commits >= 4
        assert value(samples, "dpagent_bundle_commit_duration_seconds_count",
                     bridge=bridge) == commits
        assert 0 < value(samples, "dpagent_bundle_commit_duration_seconds_sum",
                         bridge=bridge) < commits * 10
        # every flow went in at least twice: first sync and wiring, then the reset's repair
        assert value(samples, "dpagent_flow_mods_total", bridge=bridge) >= 2 * flows
        assert value(samples, "dpagent_switch_resets_total", bridge=bridge) == 1
        assert value(samples, "dpagent_audits_total", bridge=bridge) >= 1
        assert value(samples, "dpagent_audit_drift_found_total", bridge=bridge) >= 1
        assert value(samples, "dpagent_audit_flows_repaired_total", bridge=bridge) >= 1
        assert value(samples, "dpagent_bundle_rejections_total", bridge=bridge) == 0

        reported = value(samples, "dpagent_rpc_calls_total", method="report_state")
        assert 2 <= reported <= reports  # the double records a call before it answers
        assert value(samples, "dpagent_rpc_call_duration_seconds_count",
                     method="report_state") == reported
        assert value(samples, "dpagent_rpc_call_errors_total", method="report_state",
                     error="ServerError") == 1
        assert value(samples, "dpagent_rpc_notifications_total", method="agent_updated") == 1
        assert value(samples, "dpagent_rpc_notification_errors_total",
                     method="agent_updated", error="handler") is None
        assert value(samples, "dpagent_rpc_notification_errors_total", method="port_delete",
                     error="invalid") == 1
        age = value(samples, "dpagent_heartbeat_age_seconds",
                    agent_type=topics.AGENT_TYPE_OVS)
        assert 0 <= age < 3  # report_interval = 1
        assert value(samples, "process_resident_memory_bytes") > 0

        # per-rule counters (metrics_rule_counters): exactly the echo requests sent
        other = double.add_port(net.id, host=host, security_groups=[sg.id])
        receiver = netns_vm("m1", bridge=bridge, mac=other.mac_address,
                            ipv4=[f"{other.fixed_ips[0]['ip_address']}/24"], iface_id=other.id)
        wait_for(lambda: double.model.ports[other.id].status == "ACTIVE", what="m1 up")

        def ingress_packets():
            return sum(v for (name, labels), v in scrape(url).items()
                       if name == "dpagent_sg_rule_packets_total"
                       and dict(labels)["port_id"] == other.id
                       and dict(labels)["direction"] == "ingress")
        before = ingress_packets()
        assert first.ping(receiver.ip4, count=3)
        assert ingress_packets() == before + 3

        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=10) == 0
        with pytest.raises(urllib.error.URLError):
            scrape(url)  # stopped with the daemon
    finally:
        clean_up(daemon, ovs_sandbox, bridge)


def test_an_address_in_use_ends_the_daemon_with_status_2(tmp_path, ovs_sandbox, bridge):
    """Found only when the worker binds: it exits 2 naming the option, and the master with it."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        conf = write_config(tmp_path, ovs_sandbox, "rabbit://guest:guest@127.0.0.1:9/",
                            "metrics-host", bridge, "threading",
                            extra=f"\n[agent]\nmetrics_listen = {listen}\n")
        done, took = run_daemon(conf, env=dict(os.environ, **ovs_sandbox.env))
    assert done.returncode == 2, done.stderr
    log = (tmp_path / "dpagent.log").read_text()
    assert f"cannot start: [agent] metrics_listen {listen}: Address already in use" in log
    assert took < 30

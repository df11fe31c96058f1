"""The endpoint as Prometheus meets it: scraped over HTTP, one registry per agent, the event
counters the observers feed, the per-rule counters' hook; gone once stopped."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import NamedTuple

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dpagent.diagnose.rule_counters import RuleCount
from dpagent.metrics import MetricsServer
from dpagent.version import version


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=5) as reply:
        text = reply.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def server() -> Iterator[MetricsServer]:
    metrics = MetricsServer("127.0.0.1:0", lambda: {"ports": {"wired": 1}},
                            integration_bridge="br-int", host="compute1")
    metrics.start()
    yield metrics
    metrics.stop()


def test_bundles_resets_and_audits_are_counted_per_bridge(server):
    br_int, br_tun = server.bridge("br-int"), server.bridge("br-tun")
    br_int.bundle_committed(40, 0.004)
    br_int.bundle_committed(2, 0.0003)
    br_tun.bundle_rejected()
    br_int.switch_reset()
    audited = server.audits_of("br-int")
    audited(0)
    audited(3)
    samples = scrape(server.url)
    assert value(samples, "dpagent_bundle_commits_total", bridge="br-int") == 2
    assert value(samples, "dpagent_flow_mods_total", bridge="br-int") == 42
    assert value(samples, "dpagent_bundle_commit_duration_seconds_count", bridge="br-int") == 2
    assert value(samples, "dpagent_bundle_commit_duration_seconds_bucket", bridge="br-int",
                 le="0.0005") == 1
    assert value(samples, "dpagent_bundle_commit_duration_seconds_bucket", bridge="br-int",
                 le="0.005") == 2
    assert value(samples, "dpagent_bundle_rejections_total", bridge="br-tun") == 1
    assert value(samples, "dpagent_bundle_commits_total", bridge="br-tun") == 0  # there, at 0
    assert value(samples, "dpagent_switch_resets_total", bridge="br-int") == 1
    assert value(samples, "dpagent_audits_total", bridge="br-int") == 2
    assert value(samples, "dpagent_audit_drift_found_total", bridge="br-int") == 1
    assert value(samples, "dpagent_audit_flows_repaired_total", bridge="br-int") == 3


def test_rpc_calls_and_notifications_by_method_with_errors_and_latency(server):
    events = server.events
    events.call_done("report_state", 0.02, None)
    events.call_done("report_state", 2.0, "ServerUnavailable")
    events.call_done("bulk_pull", 0.3, None)
    events.notification_done("port_update", 0.0002, None)
    events.notification_done("port_update", 0.0001, "invalid")
    events.notification_done("agent_updated", 0.001, "handler")
    samples = scrape(server.url)
    assert value(samples, "dpagent_rpc_calls_total", method="report_state") == 2
    assert value(samples, "dpagent_rpc_call_errors_total", method="report_state",
                 error="ServerUnavailable") == 1
    assert value(samples, "dpagent_rpc_call_errors_total", method="bulk_pull",
                 error="ServerUnavailable") is None
    assert value(samples, "dpagent_rpc_call_duration_seconds_sum",
                 method="report_state") == pytest.approx(2.02)
    assert value(samples, "dpagent_rpc_call_duration_seconds_bucket", method="report_state",
                 le="1.0") == 1
    assert value(samples, "dpagent_rpc_notifications_total", method="port_update") == 2
    assert value(samples, "dpagent_rpc_notification_errors_total", method="port_update",
                 error="invalid") == 1
    assert value(samples, "dpagent_rpc_notification_errors_total", method="agent_updated",
                 error="handler") == 1
    assert value(samples, "dpagent_rpc_notification_duration_seconds_count",
                 method="agent_updated") == 1


def test_the_snapshot_the_version_and_the_process_are_served(server):
    samples = scrape(server.url)
    assert value(samples, "dpagent_ports", state="wired") == 1
    assert value(samples, "dpagent_info", host="compute1", version=version()) == 1
    assert value(samples, "process_resident_memory_bytes") > 0


def test_each_agent_counts_in_its_own_registry(server):
    other = MetricsServer("127.0.0.1:0", dict, integration_bridge="br-int", host="compute2")
    other.start()
    try:
        server.bridge("br-int").bundle_committed(1, 0.001)
        assert value(scrape(other.url), "dpagent_bundle_commits_total", bridge="br-int") is None
        assert value(scrape(server.url), "dpagent_bundle_commits_total", bridge="br-int") == 1
    finally:
        other.stop()


def test_per_rule_counters_come_from_the_hook_at_each_scrape(server):
    # as dpagent-ctl rules counts them (AgentService.rule_counts)
    counts = [RuleCount(port_id="port-a", group_id="sg-web", rule="rule-22",
                        direction="ingress", description="tcp/22", packets=12, bytes=1_440,
                        flows=1)]
    server.rule_counters = lambda: counts
    samples = scrape(server.url)
    labels = {"group_id": "sg-web", "rule": "rule-22", "direction": "ingress",
              "port_id": "port-a"}
    assert value(samples, "dpagent_sg_rule_packets_total", **labels) == 12
    assert value(samples, "dpagent_sg_rule_bytes_total", **labels) == 1_440

    class Count(NamedTuple):  # anything with the six fields will do
        group_id: str
        rule: str
        direction: str
        port_id: str
        packets: int
        bytes: int

    counts = [Count("sg-web", "rule-22", "ingress", "port-a", 20, 2_000)]
    assert value(scrape(server.url), "dpagent_sg_rule_packets_total", **labels) == 20


def test_a_failing_rule_hook_leaves_the_rest_of_the_scrape(server, caplog):
    def broken():
        raise RuntimeError("the flow stats are unreadable")
        yield  # pragma: no cover

    server.rule_counters = broken
    samples = scrape(server.url)
    assert not any(name.startswith("dpagent_sg_rule") for name, _ in samples)
    assert value(samples, "dpagent_ports", state="wired") == 1
    assert "reading the security-group rule counters failed" in caplog.text


def test_ipv6_and_a_stop_that_closes_the_port():
    metrics = MetricsServer("[::1]:0", dict, integration_bridge="br-int", host="h")
    try:
        metrics.start()
    except OSError as exc:  # a host without IPv6 on lo
        pytest.skip(f"no ::1 here: {exc}")
    assert metrics.url == f"http://[::1]:{metrics.port}/metrics"
    assert value(scrape(metrics.url), "dpagent_info", host="h", version=version()) == 1
    metrics.stop()
    with pytest.raises(urllib.error.URLError):
        scrape(metrics.url)
    metrics.stop()  # twice is harmless


def test_an_address_in_use_fails_the_start():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        metrics = MetricsServer(f"127.0.0.1:{taken.getsockname()[1]}", dict,
                                integration_bridge="br-int", host="h")
        with pytest.raises(OSError):
            metrics.start()


def test_it_serves_under_eventlet_with_socketserver_imported_before_the_patching():
    """As in the daemon: oslo.log imports socketserver before eventlet patches anything, and
    socketserver's own serve loop would then block every green thread (the start hung)."""
    script = textwrap.dedent("""
        import socketserver, urllib.request
        import eventlet
        eventlet.monkey_patch()
        from dpagent.metrics import MetricsServer
        metrics = MetricsServer("127.0.0.1:0", lambda: {"ports": {"wired": 2}},
                                integration_bridge="br-int", host="h")
        metrics.start()
        text = urllib.request.urlopen(metrics.url, timeout=5).read().decode()
        metrics.stop()
        print([line for line in text.splitlines() if 'state="wired"' in line])
    """)
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", script], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == """['dpagent_ports{state="wired"} 2.0']"""

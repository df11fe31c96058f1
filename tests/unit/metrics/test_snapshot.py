"""What a scrape shows of one status snapshot (the shape of ``AgentService.status()``)."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, generate_latest

from dpagent.metrics.snapshot import StatusCollector

NOW = 1_800_000_000.0


def exposition(status, bridge="br-int"):
    """The sample lines of a registry holding only the snapshot's collector."""
    registry = CollectorRegistry()
    registry.register(StatusCollector(lambda: status, bridge))
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if not line.startswith("#")]


def running(**more):
    status = {"ports": {"wired": 3, "failed": 1}, "flows_installed": 120,
              "heartbeat": {"last_result": "alive", "last_time": NOW - 4.0,
                            "last_error": None, "withheld": None}}
    status.update(more)
    return status


def test_ports_by_state_every_state_present_zero_when_empty(monkeypatch):
    monkeypatch.setattr("time.time", lambda: NOW)
    lines = exposition(running(ports={"wired": 3, "failed": 1, "something-new": 2}))
    assert [line for line in lines if line.startswith("dpagent_ports")] == [
        'dpagent_ports{state="pending"} 0.0',
        'dpagent_ports{state="wired"} 3.0',
        'dpagent_ports{state="failed"} 1.0',
        'dpagent_ports{state="admin-down"} 0.0',
        'dpagent_ports{state="deleted"} 0.0',
        'dpagent_ports{state="port-down"} 0.0',
        'dpagent_ports{state="unbound"} 0.0',
        'dpagent_ports{state="something-new"} 2.0',  # a state added later is not lost
    ]


def test_flows_installed_on_each_bridge_and_the_heartbeats_age(monkeypatch):
    monkeypatch.setattr("time.time", lambda: NOW)
    status = running(
        physical_networks={"physnet1": {"bridge": "br-eth1", "state": "wired",
                                        "flows_installed": 7},
                           "physnet2": {"bridge": "br-eth2", "state": "missing",
                                        "flows_installed": 0}},
        overlay={"bridge": "br-tun", "flows_installed": 31})
    lines = exposition(status)
    assert [line for line in lines if line.startswith("dpagent_flows")] == [
        'dpagent_flows_installed{bridge="br-int"} 120.0',
        'dpagent_flows_installed{bridge="br-eth1"} 7.0',
        'dpagent_flows_installed{bridge="br-eth2"} 0.0',
        'dpagent_flows_installed{bridge="br-tun"} 31.0',
    ]
    assert 'dpagent_heartbeat_age_seconds{agent_type="Open vSwitch agent"} 4.0' in lines
    assert not any(line.startswith("dpagent_sriov") for line in lines)


def test_the_sriov_side_its_ports_vfs_and_a_heartbeat_not_yet_accepted(monkeypatch):
    monkeypatch.setattr("time.time", lambda: NOW)
    status = running(sriov={"ports": {"wired": 2, "failed": 1}, "failed": {"p9": "refused"},
                            "vfs_managed": 8,
                            "heartbeat": {"last_result": None, "last_time": None,
                                          "last_error": "no answer", "withheld": None}})
    lines = exposition(status)
    assert [line for line in lines if line.startswith("dpagent_sriov")] == [
        'dpagent_sriov_ports{state="pending"} 0.0',
        'dpagent_sriov_ports{state="wired"} 2.0',  # their VFs configured
        'dpagent_sriov_ports{state="failed"} 1.0',
        'dpagent_sriov_ports{state="admin-down"} 0.0',
        "dpagent_sriov_vfs 8.0",
    ]
    assert 'dpagent_heartbeat_age_seconds{agent_type="NIC Switch agent"} +Inf' in lines


def test_an_agent_still_starting_shows_only_what_it_has():
    # before the agent core exists, AgentService.status() has no ports, flows nor heartbeat
    assert exposition({"waiting_for": "the message broker at h:5672", "pid": 1}) == []


def test_a_failing_snapshot_fails_no_scrape(caplog):
    def broken():
        raise RuntimeError("status broke")

    registry = CollectorRegistry()
    registry.register(StatusCollector(broken, "br-int"))
    with caplog.at_level(logging.ERROR):
        assert generate_latest(registry) == b""
    assert "reading the status for a metrics scrape failed" in caplog.text

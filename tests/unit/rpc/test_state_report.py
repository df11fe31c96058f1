"""The heartbeat: neutron's STATE shape, resync on 'revived'/'new', survival without a server."""

from __future__ import annotations

import datetime
import threading
import time

import pytest

from dpagent.rpc import topics
from dpagent.rpc.state_report import TIME_FORMAT, StateReporter
from tests.unit.rpc.recordings import rpc_call

FIRST = rpc_call("02_")["kwargs"]


@pytest.fixture
def resyncs():
    return []


@pytest.fixture
def reporter(transport, conf, resyncs):
    r = StateReporter.from_conf(transport, conf, on_resync=resyncs.append, min_backoff=0.05)
    yield r
    r.stop()


def _state(call):
    return call.kwargs["agent_state"]["agent_state"]


def test_the_first_report_has_the_shape_of_neutrons_agent(reporter, double):
    assert reporter.report_once() == "new"
    (call,) = double.calls("report_state")
    assert (call.topic, call.version) == (topics.REPORTS, "1.4")
    assert set(call.kwargs) == set(FIRST) == {"agent_state", "time"}
    state, recorded = _state(call), FIRST["agent_state"]["agent_state"]
    assert set(state) == set(recorded)
    assert state["binary"] == "dpagent" and state["host"] == "compute1"
    assert (state["topic"], state["agent_type"]) == ("N/A", "Open vSwitch agent")
    assert state["start_flag"] is True
    assert state["resource_versions"] == recorded["resource_versions"]
    sent = datetime.datetime.strptime(call.kwargs["time"], TIME_FORMAT)
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    assert abs((now - sent).total_seconds()) < 5  # UTC, not local time


def test_configurations_say_what_neutron_needs_to_bind_ports(reporter, double):
    reporter.report_once()
    configurations = _state(double.calls("report_state")[0])["configurations"]
    assert configurations == {
        "bridge_mappings": {"physnet1": "br-phys"}, "integration_bridge": "br-int",
        "datapath_type": "system", "ovs_hybrid_plug": False, "tunnel_types": [],
        "tunneling_ip": None, "l2_population": False, "arp_responder_enabled": False,
        "enable_distributed_routing": False, "in_distributed_mode": False,
        "extensions": [], "firewall": "openvswitch", "devices": 0, "admin_state_up": True}
    recorded = FIRST["agent_state"]["agent_state"]["configurations"]
    for key in ("bridge_mappings", "integration_bridge", "datapath_type", "ovs_hybrid_plug",
                "tunnel_types", "extensions", "devices"):
        assert type(configurations[key]) is type(recorded[key]), key


def test_tunnel_endpoint_is_reported_as_neutrons_agent_reports_it(transport, conf, double):
    conf.set_override("tunnel_types", ["vxlan", "geneve"], "agent")
    conf.set_override("l2_population", True, "agent")
    conf.set_override("arp_responder", True, "agent")
    conf.set_override("local_ip", "192.0.2.1", "ovs")
    StateReporter.from_conf(transport, conf).report_once()
    configurations = _state(double.calls("report_state")[0])["configurations"]
    assert {k: configurations[k] for k in ("tunnel_types", "tunneling_ip", "l2_population",
                                           "arp_responder_enabled")} == {
        "tunnel_types": ["vxlan", "geneve"], "tunneling_ip": "192.0.2.1",
        "l2_population": True, "arp_responder_enabled": True}


def test_start_flag_and_resource_versions_stop_after_the_first_success(reporter, double):
    assert [reporter.report_once() for _ in range(3)] == ["new", "alive", "alive"]
    states = [_state(c) for c in double.calls("report_state")]
    assert ["start_flag" in s for s in states] == [True, False, False]
    assert ["resource_versions" in s for s in states] == [True, False, False]
    assert len({s["uuid"] for s in states}) == 3


def test_the_agent_core_adds_its_numbers_through_the_callback(transport, conf, double):
    reporter = StateReporter.from_conf(
        transport, conf, state_callback=lambda: {"devices": 12, "admin_state_up": False,
                                                 "sync": "ok"})
    reporter.report_once()
    configurations = _state(double.calls("report_state")[0])["configurations"]
    assert (configurations["devices"], configurations["admin_state_up"]) == (12, False)
    assert configurations["sync"] == "ok"


def test_a_failing_callback_does_not_stop_the_heartbeat(transport, conf, double, caplog):
    def broken():
        raise RuntimeError("agent core bug")

    reporter = StateReporter.from_conf(transport, conf, state_callback=broken)
    assert reporter.report_once() == "new"
    assert "state callback failed" in caplog.text


def test_revived_means_resync(reporter, double, resyncs):
    reporter.report_once()
    double.expire_agent("compute1")
    assert reporter.report_once() == "revived"
    assert resyncs == ["revived"]
    assert reporter.report_once() == "alive" and resyncs == ["revived"]


def test_new_means_resync_only_when_the_agent_had_registered_before(reporter, double, resyncs):
    assert reporter.report_once() == "new"
    assert resyncs == []  # a first registration: the agent syncs at start anyway
    double.delete_agent("compute1")  # deleted while alive
    assert reporter.report_once() == "new"
    assert resyncs == ["new"]


def test_a_restarted_agent_answered_alive_does_not_resync(reporter, double, resyncs):
    double.model.heartbeat({"agent_type": "Open vSwitch agent", "host": "compute1"},
                           time.time())
    assert reporter.report_once() == "alive"  # rpc/31: a restart within agent_down_time
    assert resyncs == []


def test_a_report_the_server_drops_counts_as_failed(reporter, double):
    double.inject("report_state", reply=None, times=1)
    assert reporter.report_once() is None
    status = reporter.status()
    assert status.consecutive_failures == 1 and "older than the server" in status.last_error
    reporter.report_once()
    assert "start_flag" in _state(double.calls("report_state")[-1])  # not registered yet


def test_while_the_server_is_away_the_last_result_is_kept(transport, conf, double):
    reporter = StateReporter(transport, "compute1", interval=0.5)
    assert reporter.report_once() == "new"
    double.inject("report_state", delay=1.0, times=2)
    assert reporter.report_once() is None
    status = reporter.status()
    assert status.last_result == "new" and status.registered and status.reports == 1
    assert status.consecutive_failures == 1 and "no reply in time" in status.last_error
    assert status.last_attempt > status.last_success
    double.wait_for_call("report_state", after=1)  # let the late reply land in this test


def test_failures_back_off_up_to_the_interval_then_the_interval_resumes(transport):
    reporter = StateReporter(transport, "compute1", interval=10.0, min_backoff=1.0)
    outcomes = iter([None] * 6 + ["alive", None])
    delays: list[float] = []
    stopping = threading.Event()

    def sleep(stopping_, started, delay):  # the loop's sleep: record it instead
        delays.append(round(delay))
        if len(delays) == 8:
            stopping_.set()

    reporter._attempt = lambda stopping: next(outcomes)  # type: ignore[method-assign]
    reporter._sleep = sleep  # type: ignore[method-assign]
    reporter._run(stopping)
    assert delays == [1, 2, 4, 8, 10, 10, 10, 1]


def test_a_shorter_interval_applies_to_the_sleep_already_under_way(transport):
    """SIGHUP sets report_interval 600 -> 1: the next report is due 1 s after the last one,
    not when the old 600 s have passed."""
    reporter = StateReporter(transport, "compute1", interval=600.0)
    stopping = threading.Event()
    started = time.monotonic()
    sleeper = threading.Thread(target=reporter._sleep, args=(stopping, started, 600.0))
    sleeper.start()
    reporter.set_interval(1)
    sleeper.join(timeout=10)
    assert not sleeper.is_alive()
    assert reporter.interval == 1 and reporter.timeout == 1


def test_the_loop_retries_until_the_server_answers(transport, conf, double):
    reporter = StateReporter(transport, "compute1", interval=5.0, min_backoff=0.05)
    double.inject("report_state", error=RuntimeError("db down"), times=3)
    reporter.start()
    try:
        double.wait_for_call("report_state", where=lambda c: c.reply == "new", timeout=5)
    finally:
        assert reporter.stop()
    assert len(double.calls("report_state")) == 4
    status = reporter.status()
    assert (status.last_result, status.consecutive_failures, status.last_error) == ("new", 0, None)


def test_stop_returns_within_a_second_even_with_a_report_in_flight(transport, double, resyncs):
    reporter = StateReporter(transport, "compute1", interval=2.0, on_resync=resyncs.append)
    double.model.heartbeat({"agent_type": "Open vSwitch agent", "host": "compute1"}, 0.0)
    double.inject("report_state", delay=1.6)  # and would answer 'revived'
    reporter.start()
    time.sleep(0.2)  # the report is in flight
    started = time.monotonic()
    reporter.stop(timeout=1.0)
    assert time.monotonic() - started < 1.1
    time.sleep(2.0)
    assert resyncs == []  # nothing fires after stop
    assert len(double.calls("report_state")) == 1


def test_a_reporter_restarted_while_a_report_hangs_runs_one_loop(transport, double):
    reporter = StateReporter(transport, "compute1", interval=1.0)
    double.inject("report_state", delay=0.6, times=1)
    reporter.start()  # report 1 at 0.0 hangs until 0.6
    time.sleep(0.1)
    assert reporter.stop(timeout=0.05) is False
    reporter.start()  # reports 2 and 3 at 0.15 and 1.15
    time.sleep(1.5)
    assert reporter.stop()
    time.sleep(0.3)
    # the first thread ended with its hung report instead of looping on (it would have
    # reported again at about 1.1)
    assert len(double.calls("report_state")) == 3


def test_an_idle_reporter_stops_at_once(reporter, double):
    reporter.start()
    double.wait_for_call("report_state", timeout=5)
    started = time.monotonic()
    assert reporter.stop() is True
    assert time.monotonic() - started < 0.2
    assert not any(t.name == "dpagent-state-report" for t in threading.enumerate())


def _unreachable_once(monkeypatch, error):
    from dpagent.rpc import state_report

    real = state_report.call
    failures = [error]

    def call(*args, **kwargs):
        if failures:
            raise failures.pop()
        return real(*args, **kwargs)

    monkeypatch.setattr(state_report, "call", call)


def test_getting_through_after_the_broker_was_unreachable_means_resync(
        reporter, double, resyncs, monkeypatch):
    from dpagent.rpc.errors import BrokerUnreachable

    reporter.report_once()
    _unreachable_once(monkeypatch, BrokerUnreachable("report_state: not delivered"))
    assert reporter.report_once() is None
    assert reporter.report_once() == "alive"
    assert resyncs == ["reconnected"]  # casts sent meanwhile were lost
    assert reporter.report_once() == "alive" and resyncs == ["reconnected"]


def test_a_slow_server_alone_does_not_mean_resync(reporter, double, resyncs, monkeypatch):
    from dpagent.rpc.errors import ServerUnavailable

    reporter.report_once()
    _unreachable_once(monkeypatch, ServerUnavailable("report_state: no reply in time"))
    assert reporter.report_once() is None
    assert reporter.report_once() == "alive"
    assert resyncs == []


def test_resync_on_reconnect_can_be_turned_off(transport, double, monkeypatch):
    from dpagent.rpc.errors import BrokerUnreachable

    resyncs: list[str] = []
    reporter = StateReporter(transport, "compute1", interval=1, on_resync=resyncs.append,
                             resync_on_reconnect=False)
    reporter.report_once()
    _unreachable_once(monkeypatch, BrokerUnreachable("report_state: not delivered"))
    reporter.report_once()
    assert reporter.report_once() == "alive" and resyncs == []


def test_no_report_is_sent_while_the_agent_cannot_do_its_job(transport, double, caplog):
    """As neutron's agent sends none while OVS is dead: the server must count this agent dead
    and bind nothing here; reports resume when the problem goes."""
    problem = ["br-int cannot be programmed: connection refused"]
    reporter = StateReporter(transport, "compute1", interval=0.1, min_backoff=0.05,
                             health=lambda: problem[0])
    reporter.start()
    try:
        time.sleep(0.5)
        assert double.calls("report_state") == []
        assert reporter.status().withheld == problem[0]
        assert [r.message for r in caplog.records if "not reporting" in r.message] == [
            f"not reporting state to the server: {problem[0]}"]  # said once
        problem[0] = None
        double.wait_for_call("report_state", timeout=5)
    finally:
        assert reporter.stop()
    assert reporter.status().withheld is None


def test_a_lost_reply_after_a_silence_still_resyncs(reporter, double, resyncs, monkeypatch):
    """Reports withheld (br-int could not be programmed), then the first report after it is
    processed -- the server answers 'revived' -- but its reply comes too late (a busy server:
    seen in CI). The next report is answered 'alive': the agent resyncs all the same."""
    from dpagent.rpc.errors import ServerUnavailable

    reporter.report_once()
    reporter.health = lambda: "br-int cannot be programmed"
    assert reporter._withheld()
    reporter.health = None
    assert reporter._withheld() is None
    double.expire_agent("compute1")
    from dpagent.rpc import state_report

    real, lost = state_report.call, []

    def answered_too_late(*args, **kwargs):
        if not lost:
            lost.append(real(*args, **kwargs))  # the server processed it...
            raise ServerUnavailable("report_state: no reply in time")  # ...we never heard
        return real(*args, **kwargs)

    monkeypatch.setattr(state_report, "call", answered_too_late)
    assert reporter.report_once() is None
    assert lost == ["revived"]
    assert reporter.report_once() == "alive"
    assert resyncs == ["revived"]
    assert reporter.report_once() == "alive" and resyncs == ["revived"]


def test_a_lost_reply_without_a_silence_does_not_resync(reporter, double, resyncs,
                                                        monkeypatch):
    from dpagent.rpc import state_report
    from dpagent.rpc.errors import ServerUnavailable

    reporter.report_once()
    real, lost = state_report.call, []

    def answered_too_late(*args, **kwargs):
        if not lost:
            lost.append(real(*args, **kwargs))
            raise ServerUnavailable("report_state: no reply in time")
        return real(*args, **kwargs)

    monkeypatch.setattr(state_report, "call", answered_too_late)
    assert reporter.report_once() is None and lost == ["alive"]
    assert reporter.report_once() == "alive" and resyncs == []

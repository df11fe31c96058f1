"""How the daemon starts when it cannot: configuration mistakes end it at once, with one line
naming the option and exit status 2 (never a worker forked again and again while systemd sees
a running unit); a broker that is away does not end it, and the status socket says so."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from dpagent.daemon.status import query
from tests.functional.daemon.test_daemon import wait_for, write_config

GOOD = "rabbit://guest:guest@127.0.0.1:5672/"


def run_daemon(conf, env=None, timeout=60):
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "dpagent.cmd.agent", "--config-file",
                           str(conf)], env=env, capture_output=True, text=True,
                          timeout=timeout)
    return done, time.monotonic() - started


def plain_config(tmp_path, body):
    conf = tmp_path / "dpagent.conf"
    conf.write_text(body)
    return conf


@pytest.mark.parametrize(("body", "named"), [
    ("[agent]\nstatus_socket = {tmp}/s.sock\n", "[DEFAULT] transport_url is not set"),
    ("[DEFAULT]\ntransport_url = bogus://x:5672/\n[agent]\nstatus_socket = {tmp}/s.sock\n",
     "[DEFAULT] transport_url: unknown transport 'bogus'"),
    ("[DEFAULT]\ntransport_url = rabbit://g:g@h:port/\n[agent]\nstatus_socket = {tmp}/s.sock\n",
     "[DEFAULT] transport_url: invalid literal for int()"),
    ("[DEFAULT]\ntransport_url = kafka://h:9092/\n[agent]\nstatus_socket = {tmp}/s.sock\n",
     "[DEFAULT] transport_url: the kafka transport cannot be loaded"),
    ("[DEFAULT]\ntransport_url = " + GOOD + "\n[agent]\nreport_interval = soon\n"
     "status_socket = {tmp}/s.sock\n", "[agent] report_interval"),
    ("[DEFAULT]\ntransport_url = " + GOOD + "\n[agent]\nstatus_socket = {tmp}/s.sock\n"
     "[ovs]\nbridge_mappings = physnet1:br-int\n",
     "[ovs] bridge_mappings: physical network physnet1 is mapped to the integration bridge"),
    ("[DEFAULT]\ntransport_url = " + GOOD + "\n[agent]\nstatus_socket = {tmp}/a-file/s.sock\n",
     "[agent] status_socket: {tmp}/a-file is not a directory"),
    ("[DEFAULT]\ntransport_url = " + GOOD + "\n[agent]\nstatus_socket = {tmp}/" + "x" * 120
     + "/s.sock\n", "a unix socket path may have at most 107"),
    ("[DEFAULT]\ntransport_url = " + GOOD + "\nlog_file = {tmp}/missing/dpagent.log\n"
     "[agent]\nstatus_socket = {tmp}/s.sock\n",
     "[DEFAULT] log_file: the directory {tmp}/missing does not exist"),
    ("[DEFAULT]\ntransport_url = " + GOOD + "\n[agent]\nstatus_socket = {tmp}/s.sock\n"
     "use_veth_interconnection = true\n", "use_veth_interconnection = true is not supported"),
], ids=["no-transport-url", "bad-transport-url", "bad-port", "driver-not-loadable", "bad-value",
        "physnet-on-br-int", "socket-parent-is-a-file", "socket-path-too-long",
        "log-dir-missing", "veth"])
def test_a_configuration_mistake_ends_the_daemon_with_status_2(tmp_path, body, named):
    (tmp_path / "a-file").write_text("")
    conf = plain_config(tmp_path, body.format(tmp=tmp_path))
    done, took = run_daemon(conf)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr  # one line, no traceback
    assert lines[0].startswith("dpagent: bad configuration: ")
    assert named.format(tmp=tmp_path) in lines[0]
    assert took < 20


@pytest.mark.parametrize("backend", ["threading", "eventlet"])
def test_a_mistake_only_the_worker_finds_stops_the_master_too(
        backend, tmp_path, ovs_sandbox, transport_url, bridge):
    """The status socket cannot be made under /proc (the directory looks writable, bind says
    no): the worker exits 2, and the master with it instead of forking it again."""
    conf = write_config(tmp_path, ovs_sandbox, transport_url, "start-host", bridge, backend)
    conf.write_text(conf.read_text().replace(f"status_socket = {tmp_path / 'status.sock'}",
                                             "status_socket = /proc/dpagent-status.sock"))
    done, took = run_daemon(conf, env=dict(os.environ, **ovs_sandbox.env))
    assert done.returncode == 2, done.stderr
    log = (tmp_path / "dpagent.log").read_text()
    assert "cannot start: [agent] status_socket /proc/dpagent-status.sock" in log
    assert "Forking too fast" not in log and "AttributeError" not in log
    assert log.count("Run service ServiceWrapper") <= 1  # threading: one worker, no fork again
    assert took < 30


def test_unknown_options_in_dpagents_groups_are_named_in_a_warning(
        tmp_path, ovs_sandbox, transport_url, bridge):
    conf = write_config(tmp_path, ovs_sandbox, transport_url, "start-host", bridge,
                        "threading", extra="tunnel_typo = vxlan\n[agent]\nreport_intervall = 3\n")
    daemon = subprocess.Popen([sys.executable, "-m", "dpagent.cmd.agent", "--config-file",
                               str(conf)], env=dict(os.environ, **ovs_sandbox.env),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        log = tmp_path / "dpagent.log"
        wait_for(lambda: log.exists() and "tunnel_typo" in log.read_text(),
                 what="the warnings")
        text = log.read_text()
        assert f"{conf}: [agent] report_intervall: no such option, ignored" in text
        assert f"{conf}: [ovs] tunnel_typo: no such option, ignored" in text
        wait_for(lambda: (tmp_path / "status.sock").exists(), what="the daemon running")
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0


def test_the_status_socket_answers_while_the_broker_is_unreachable(
        tmp_path, ovs_sandbox, bridge):
    """Nothing listens on the broker's port: the daemon keeps trying (a broker that is not
    up yet is no configuration mistake), and ``dpagent-ctl status`` tells what it waits for."""
    conf = write_config(tmp_path, ovs_sandbox, "rabbit://guest:guest@127.0.0.1:9/",
                        "start-host", bridge, "threading", rpc_timeout=2)
    daemon = subprocess.Popen([sys.executable, "-m", "dpagent.cmd.agent", "--config-file",
                               str(conf)], env=dict(os.environ, **ovs_sandbox.env),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    sock = str(tmp_path / "status.sock")
    try:
        wait_for(lambda: os.path.exists(sock), what="the status socket")
        wait_for(lambda: "broker" in (query(sock).get("waiting_for") or ""),
                 what="a status naming what the agent waits for")
        ctl = subprocess.run([sys.executable, "-m", "dpagent.cmd.ctl", "status", "--socket",
                              sock], capture_output=True, text=True, timeout=30)
        assert ctl.returncode == 0, ctl.stderr
        assert ctl.stdout.startswith("waiting for:     the message broker at 127.0.0.1:9\n"), \
            ctl.stdout
        assert daemon.poll() is None
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0

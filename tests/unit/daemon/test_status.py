"""The status socket and dpagent-ctl status, end to end over a real Unix socket."""

import os
import socket

from dpagent.cmd import ctl
from dpagent.daemon import systemd
from dpagent.daemon.status import StatusServer, query

STATUS = {"admin_state_up": False, "ports": {"wired": 3, "failed": 1},
          "failed": {"p9": "the switch refused its flows"}, "flows_installed": 120,
          "last_sync": 1700000000.0,
          "heartbeat": {"last_result": "alive", "last_time": 1700000001.0, "last_error": None}}


def test_status_round_trip_and_rendering(tmp_path, capsys):
    path = str(tmp_path / "status.sock")
    server = StatusServer(path, lambda: STATUS)
    server.start()
    try:
        assert oct(os.stat(path).st_mode & 0o777) == "0o660"
        assert query(path) == STATUS
        assert ctl.main(["status", "--socket", path]) == 0
    finally:
        server.stop()
    out = capsys.readouterr().out
    assert "admin state:     DOWN (cordoned)" in out
    assert "heartbeat:       alive at" in out
    assert "ports:           1 failed, 3 wired" in out
    assert "flows installed: 120" in out
    assert "failed p9: the switch refused its flows" in out
    assert not os.path.exists(path)


def test_ctl_without_daemon_says_so(tmp_path, capsys):
    assert ctl.main(["status", "--socket", str(tmp_path / "none.sock")]) == 2
    assert "cannot reach the agent" in capsys.readouterr().err


def test_systemd_notify(tmp_path, monkeypatch):
    path = str(tmp_path / "notify")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(path)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        assert systemd.notify("READY=1")
        assert receiver.recv(100) == b"READY=1"
        monkeypatch.delenv("NOTIFY_SOCKET")
        assert not systemd.notify("READY=1")
    finally:
        receiver.close()


def test_requests_reach_their_handler_and_a_silent_client_gets_the_status(tmp_path, capsys):
    path = str(tmp_path / "status.sock")
    asked = []
    answer = {"verdict": "DROPPED", "stage": "egress rules of port p1",
              "reason": "no egress rule of the port allows it", "rules": [], "outputs": [],
              "steps": [], "packet": "icmp echo request 10.0.0.1 -> 10.0.0.2, new connection",
              "from": "p1 (tapp1, wired)", "to": "p2 (tapp2, wired)", "notes": [],
              "flow": "in_port=1,icmp", "ct_next": []}
    server = StatusServer(path, lambda: STATUS,
                          {"trace": lambda request: asked.append(request) or answer})
    server.start()
    try:
        assert ctl.main(["trace", "--socket", path, "--from", "p1", "--to", "10.0.0.2",
                         "icmp"]) == ctl.TRACE_DROPPED
        assert asked[0]["command"] == "trace" and asked[0]["to"] == "10.0.0.2"
        assert "DROPPED at egress rules of port p1" in capsys.readouterr().out
        assert query(path, request={"command": "nonsense"}) == {
            "error": "unknown command 'nonsense' (known: status, trace)"}
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:  # socat, say
            silent.connect(path)
            silent.shutdown(socket.SHUT_WR)
            data = b"".join(iter(lambda: silent.recv(65536), b""))
        assert b'"flows_installed": 120' in data
    finally:
        server.stop()

"""The local status socket: ``dpagent-ctl status`` (and ``trace``) ask the running daemon.

A Unix stream socket; a client connects, sends one JSON request on one line
(``{"command": "status"}``, ``{"command": "trace", ...}``), the daemon writes one JSON document
and closes. A client that sends nothing (``socat``, older ``dpagent-ctl``) gets the status once
it closes its side or after :data:`REQUEST_WAIT`. Only root (and the socket's group) can
connect, as the socket is created with mode 0660.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from typing import Any

LOG = logging.getLogger(__name__)
REQUEST_WAIT = 1.0
"""How long the daemon waits for a request line before it answers with the status."""
MAX_REQUEST = 65536

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class StatusServer:
    def __init__(self, path: str, snapshot: Callable[[], dict[str, Any]],
                 handlers: Mapping[str, Handler] | None = None) -> None:
        self.path = path
        self.snapshot = snapshot
        self.handlers = dict(handlers or {})
        """command -> what answers it (``status`` is always :attr:`snapshot`)"""
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        if os.path.exists(self.path):
            os.unlink(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(self.path)
        os.chmod(self.path, 0o660)
        sock.listen(8)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="dpagent-status", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        sock = self._sock  # stop() closes it and sets None: accept then fails, and we end
        assert sock is not None
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                try:
                    answer = self._answer(_read_request(conn))
                    conn.sendall(json.dumps(answer, default=str, indent=1).encode())
                except Exception:  # noqa: BLE001 - a status query must never hurt the agent
                    LOG.exception("status query failed")

    def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        command = request.get("command", "status")
        if command == "status":
            return self.snapshot()
        handler = self.handlers.get(str(command))
        if handler is None:
            return {"error": f"unknown command {command!r} (known: "
                             f"{', '.join(['status', *sorted(self.handlers)])})"}
        return handler(request)

    def stop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if os.path.exists(self.path):
            os.unlink(self.path)


def _read_request(conn: socket.socket) -> dict[str, Any]:
    """The client's request line; ``{}`` (status) if it sends none."""
    conn.settimeout(REQUEST_WAIT)
    data = b""
    try:
        while b"\n" not in data and len(data) < MAX_REQUEST:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        pass
    conn.settimeout(None)
    if not data.strip():
        return {}
    try:
        request = json.loads(data.split(b"\n", 1)[0])
    except ValueError:
        return {"command": "invalid"}
    return request if isinstance(request, dict) else {"command": "invalid"}


def query(path: str, timeout: float = 5.0, request: Mapping[str, Any] | None = None
          ) -> dict[str, Any]:
    """Ask a running daemon: its status, or the answer to ``request``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(json.dumps(dict(request or {"command": "status"})).encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    status: dict[str, Any] = json.loads(b"".join(chunks))
    return status

"""A TCP port of the host's loopback, reachable from inside a lab network namespace.

neutron's own OVS agent must run where the private ovs-vswitchd runs (inside the sandbox's
namespace): it serves OpenFlow on ``tcp:127.0.0.1:6633`` for br-int's controller, and a
switch in a namespace cannot reach the host's loopback. The agent also needs the RabbitMQ
broker, which listens on the host's loopback. ``LoopbackForward`` makes ``127.0.0.1:<port>``
inside the namespace lead to ``127.0.0.1:<port>`` of the host, so the agent's transport URL
stays as it is -- and no address is added outside the namespaces the lab made.

The listening socket is created inside the namespace (a socket keeps the namespace it was
created in), the upstream connections in ours; one thread per direction of each connection.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType

from dpagent.lab.nsocket import socket_in_netns


def listen_in_netns(netns: str, host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` inside network namespace ``netns``."""
    server = socket_in_netns(netns, socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((host, port))
    server.listen(64)
    return server


class LoopbackForward:
    """``127.0.0.1:port`` in ``netns`` forwarded to ``127.0.0.1:port`` here, until closed."""

    def __init__(self, netns: str, port: int, host: str = "127.0.0.1") -> None:
        self.netns, self.port, self.host = netns, port, host
        self._server: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> LoopbackForward:
        self._server = listen_in_netns(self.netns, self.host, self.port)
        threading.Thread(target=self._accept, args=(self._server,), daemon=True,
                         name=f"forward-{self.port}").start()
        return self

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()

    def __enter__(self) -> LoopbackForward:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                inner, _ = server.accept()
            except OSError:
                return  # closed
            try:
                outer = socket.create_connection((self.host, self.port), timeout=5)
            except OSError:
                inner.close()
                continue
            outer.settimeout(None)
            with self._lock:
                self._connections += [inner, outer]
            for src, dst in ((inner, outer), (outer, inner)):
                threading.Thread(target=_pump, args=(src, dst), daemon=True).start()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    """Copy ``src`` to ``dst`` until either side closes; then close both."""
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

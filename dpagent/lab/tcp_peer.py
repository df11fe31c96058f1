"""Stdlib-only TCP peer that ``NetnsVM`` runs inside a VM namespace.

The lab VMs are bare network namespaces: no daemons, no netcat.  This file is
executed by path with the current interpreter (``ip netns exec NS python
tcp_peer.py ...``) and imports nothing from dpagent, so it works whatever the
namespace's view of the package is.

Modes:
  listen PORT                  accept on every address, echo each line back;
                               prints "ready" once listening
  connect HOST PORT TIMEOUT    send one line, exit 0 when it comes back
  session HOST PORT TIMEOUT    keep one connection: each stdin line is sent and
                               each echoed line printed; prints "connected"
                               first and "closed" when the peer goes away
"""

from __future__ import annotations

import socket
import sys
import threading


def _echo(conn: socket.socket) -> None:
    with conn, conn.makefile("rb") as lines:
        for line in lines:
            conn.sendall(line)


def listen(port: int) -> None:
    srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # IPv4 too
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("::", port))
    srv.listen(16)
    print("ready", flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=_echo, args=(conn,), daemon=True).start()


def connect(host: str, port: int, timeout: float) -> int:
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(b"hello\n")
            return 0 if conn.makefile("rb").readline() == b"hello\n" else 1
    except OSError as exc:
        print(exc, file=sys.stderr)
        return 1


def session(host: str, port: int, timeout: float) -> int:
    try:
        conn = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        print(exc, file=sys.stderr)
        return 1
    # Once connected, wait as long as it takes: a firewall that drops packets
    # delays the echo, and the parent decides how long is too long.
    conn.settimeout(None)
    print("connected", flush=True)

    def pump_replies() -> None:
        for line in conn.makefile("rb"):
            sys.stdout.write(line.decode())
            sys.stdout.flush()
        print("closed", flush=True)

    threading.Thread(target=pump_replies, daemon=True).start()
    try:
        for line in sys.stdin:
            conn.sendall(line.encode())
    except OSError:
        print("closed", flush=True)
    return 0


def main(argv: list[str]) -> int:
    mode, *args = argv
    if mode == "listen":
        listen(int(args[0]))
        return 0
    if mode == "connect":
        return connect(args[0], int(args[1]), float(args[2]))
    if mode == "session":
        return session(args[0], int(args[1]), float(args[2]))
    print(f"unknown mode {mode}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""A blocking OpenFlow 1.5 connection to a bridge's management socket.

``ovs-vswitchd`` listens on ``<rundir>/<bridge>.mgmt`` for local controllers such as
``ovs-ofctl``. This class connects there, says hello (OpenFlow 1.5 only), numbers requests,
frames messages both ways and answers the switch's echo requests by itself.

Sending streams: while a long run of messages is written, whatever the switch sends back is read
and queued, so neither side can block the other with full socket buffers (ovs-vswitchd stops
reading a connection whose replies pile up). When ovs-vswitchd exits, the next use raises
:class:`ConnectionLost` and the connection is closed; :meth:`Connection.open` connects to the new
daemon (waiting for its socket to appear). A timeout also closes the connection: what the switch
still owes is unknown, and closing makes ovs-vswitchd drop any bundle left open.

Not thread-safe by itself: callers hold :attr:`Connection.lock` around one exchange.
"""

from __future__ import annotations

import collections
import errno
import itertools
import logging
import select
import socket
import threading
import time
from collections.abc import Iterable

from dpagent.bridge.openflow import codec
from dpagent.bridge.openflow import protocol as ofp
from dpagent.bridge.transport import SwitchError

LOG = logging.getLogger(__name__)
_SEND_BATCH = 256 * 1024
"""Messages are joined into writes of about this many bytes."""
_RECV_SIZE = 1 << 20
_SEND_BUFFER = 4 << 20
_RETRYABLE_CONNECT = (errno.ENOENT, errno.ECONNREFUSED, errno.EAGAIN)
CONNECT_RETRY_SECONDS = 2.0


class ConnectionLost(SwitchError):
    """The switch closed the connection (ovs-vswitchd exited or restarted)."""


class Connection:
    """One OpenFlow 1.5 session with the switch behind ``path``."""

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout
        self.lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._received = bytearray()
        self._inbox: collections.deque[codec.Message] = collections.deque()
        self._control: list[bytes] = []
        """Echo replies waiting for a message boundary in the outgoing stream."""
        self._xids = itertools.count(1)
        self._hello_version = ofp.OFP15_VERSION
        """Header version of the switch's hello (its highest version, if it sends no bitmap)."""

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._sock is not None

    def open(self) -> None:
        """Connect and negotiate OpenFlow 1.5; retries while the socket does not exist yet
        (a restarting ovs-vswitchd brings it back within a second), up to
        ``CONNECT_RETRY_SECONDS``: longer would only hide an ovs-vswitchd that is down from
        the agent's health check (the next exchange tries again)."""
        self.close()
        deadline = time.monotonic() + min(self.timeout, CONNECT_RETRY_SECONDS)
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                sock.connect(self.path)
                break
            except OSError as exc:
                sock.close()
                if exc.errno not in _RETRYABLE_CONNECT or time.monotonic() >= deadline:
                    raise ConnectionLost(f"cannot connect to {self.path}: {exc}") from exc
                time.sleep(0.05)
        sock.setblocking(False)
        # A deep send buffer lets the switch read a large bundle while we encode the rest
        # (the kernel caps it at net.core.wmem_max).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER)
        self._sock = sock
        try:
            self._handshake(time.monotonic() + self.timeout)
        except BaseException:
            self.close()
            raise

    def _handshake(self, deadline: float) -> None:
        self.send([codec.hello(self.next_xid())])
        reply = self.receive(deadline)
        if reply.type == ofp.MsgType.ERROR:
            raise SwitchError(f"{self.path} refused our hello: "
                              f"{codec.parse_error(reply.xid, reply.body).describe()}")
        if reply.type != ofp.MsgType.HELLO:
            raise SwitchError(f"{self.path} answered hello with message type {reply.type}")
        if ofp.OFP15_VERSION not in codec.hello_versions(self._hello_version, reply.body):
            raise SwitchError(f"{self.path} does not speak OpenFlow 1.5 (is OpenFlow15 in the "
                              "bridge's protocols?)")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = None
        self._received.clear()
        self._inbox.clear()
        self._control.clear()

    def next_xid(self) -> int:
        """A transaction id not used recently on this connection (never 0)."""
        return next(self._xids) % 0xFFFFFFFF + 1

    # -- sending -----------------------------------------------------------------------------

    def send(self, messages: Iterable[bytes]) -> None:
        """Write ``messages`` (each a whole message) in order, reading replies meanwhile.

        ``messages`` may be a generator: encoding the next messages overlaps with the switch
        processing the previous ones.
        """
        sock = self._require()
        source = iter(messages)
        pending = memoryview(b"")
        while True:
            if not pending:
                pending = memoryview(self._next_batch(source))
                if not pending:
                    return
            try:
                pending = pending[sock.send(pending):]
                continue
            except BlockingIOError:
                pass
            except OSError as exc:
                raise self._lost(exc) from exc
            readable, writable, broken = select.select([sock], [sock], [sock], self.timeout)
            if not (readable or writable or broken):
                # Part of a message may be written: the stream cannot be resumed.
                self.close()
                raise SwitchError(f"{self.path}: switch stopped reading for {self.timeout} s")
            if readable or broken:
                self._read_available()

    def _next_batch(self, source: Iterable[bytes]) -> bytes:
        batch = self._control
        self._control = []
        size = sum(len(m) for m in batch)
        for message in source:
            batch.append(message)
            size += len(message)
            if size >= _SEND_BATCH:
                break
        return b"".join(batch)

    # -- receiving ---------------------------------------------------------------------------

    def receive(self, deadline: float | None = None) -> codec.Message:
        """The next message from the switch (echo requests are answered, not returned).

        Waits until ``deadline`` (``time.monotonic()``), or ``timeout`` from now.
        """
        if deadline is None:
            deadline = time.monotonic() + self.timeout
        while not self._inbox:
            remaining = deadline - time.monotonic()
            # select(), not poll(): eventlet's monkey-patched select module has no poll.
            if remaining <= 0 or not select.select([self._require()], [], [], remaining)[0]:
                self.close()
                raise SwitchError(f"{self.path}: no answer from the switch in time")
            self._read_available()
            if self._control:
                self.send(())
        return self._inbox.popleft()

    def poll(self) -> None:
        """Read whatever arrived without waiting: answers echoes, notices a closed socket."""
        self._read_available()
        if self._control:
            self.send(())

    def _read_available(self) -> None:
        sock = self._require()
        while True:
            try:
                data = sock.recv(_RECV_SIZE)
            except BlockingIOError:
                break
            except OSError as exc:
                raise self._lost(exc) from exc
            if not data:
                raise self._lost(None)
            self._received += data
            if len(data) < _RECV_SIZE:
                break
        self._parse_received()

    def _parse_received(self) -> None:
        buffer, offset = self._received, 0
        while len(buffer) - offset >= ofp.HEADER_LEN:
            version, msg_type, length, xid = codec.split_header(buffer, offset)
            if length < ofp.HEADER_LEN:
                raise self._lost(None, f"malformed message (length {length})")
            if len(buffer) - offset < length:
                break
            body = bytes(buffer[offset + ofp.HEADER_LEN:offset + length])
            offset += length
            if msg_type == ofp.MsgType.ECHO_REQUEST:
                self._control.append(codec.echo_reply(xid, body))
                continue
            if msg_type == ofp.MsgType.HELLO:
                self._hello_version = version
            self._inbox.append(codec.Message(msg_type, xid, body))
        del buffer[:offset]

    # -- helpers -----------------------------------------------------------------------------

    def _require(self) -> socket.socket:
        if self._sock is None:
            raise ConnectionLost(f"{self.path}: not connected")
        return self._sock

    def _lost(self, exc: OSError | None, why: str = "") -> ConnectionLost:
        self.close()
        reason = why or (str(exc) if exc else "the switch closed the connection")
        return ConnectionLost(f"{self.path}: {reason}")

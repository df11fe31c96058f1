"""Lab "VMs": network namespaces plugged into a sandbox bridge like a Nova VIF.

A ``NetnsVM`` is a namespace ``dpa-<name>-<id>`` holding ``eth0``, one end of a
veth pair; the other end (``tap<iface-id prefix>``, as Nova names it) sits in
the sandbox's switch namespace and is an OVS port carrying the external_ids
Nova writes (``iface-id``, ``attached-mac``, ``iface-status``, ``vm-uuid``).
An agent under test therefore sees exactly what it would see on a compute
node, and the test sends real packets with the kernel's own stack.

Only iproute2, ping, ethtool and the running Python are used inside the
namespace; TCP peers are ``tcp_peer.py`` run by path.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from dpagent.lab import process, resources
from dpagent.lab.ovs_sandbox import OVSSandbox
from dpagent.lab.process import LabError

NETNS_PREFIX = "dpa-"
_TCP_PEER = Path(__file__).with_name("tcp_peer.py")


class TcpListener:
    """An echo server inside a namespace; ``stop()`` ends it."""

    def __init__(self, netns: str, port: int, timeout: float = 5.0) -> None:
        self.port = port
        self._proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, sys.executable, str(_TCP_PEER), "listen", str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        if _LineReader(self._proc).readline(timeout) != "ready":
            self.stop()
            raise LabError(f"TCP listener on port {port} in {netns} did not start")

    def stop(self) -> None:
        _end(self._proc)


class TcpSession:
    """One long-lived TCP connection, to check it survives a flow update.

    ``exchange()`` sends a numbered line and waits for its echo.  Echoes of
    earlier lines that arrive late (a firewall delayed them) are skipped, so
    each call answers "does the connection work now".
    """

    def __init__(self, netns: str, ip: str, port: int, timeout: float) -> None:
        self._proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, sys.executable, str(_TCP_PEER),
             "session", ip, str(port), str(timeout)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        self._lines = _LineReader(self._proc)
        self._seq = 0
        self.connected = self._lines.readline(timeout + 2) == "connected"

    def exchange(self, timeout: float = 2.0) -> bool:
        """Send one line and return True if it is echoed within ``timeout``."""
        if not self.connected or self._proc.poll() is not None:
            return False
        self._seq += 1
        expected = f"seq-{self._seq}"
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(expected.encode() + b"\n")
            self._proc.stdin.flush()
        except BrokenPipeError:
            return False
        deadline = time.monotonic() + timeout
        while (line := self._lines.readline(deadline - time.monotonic())) is not None:
            if line == expected:
                return True
            if line == "closed":
                self.connected = False
                return False
        return False

    def close(self) -> None:
        _end(self._proc)


class NetnsVM:
    """A namespace with one veth plugged into ``bridge`` of ``sandbox``.

    ``ipv4``/``ipv6`` are CIDRs (``"10.0.0.5/24"``); IPv6 addresses are added
    with ``nodad`` so they are usable at once.  ``vif=False`` plugs a plain
    port without Nova's external_ids: a host behind a physical bridge, which
    no agent may take for one of its VIFs.  The constructor builds
    everything or cleans up what it built; ``destroy()`` removes the OVS port,
    the namespace and with it both veth ends, and any TCP helpers.
    """

    def __init__(
        self,
        sandbox: OVSSandbox,
        bridge: str,
        name: str,
        mac: str,
        ipv4: Sequence[str] = (),
        ipv6: Sequence[str] = (),
        iface_id: str | None = None,
        ofport_request: int | None = None,
        vif: bool = True,
        tap: str | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.bridge = bridge
        self.name = name
        self.mac = mac
        self.ipv4 = tuple(ipv4)
        self.ipv6 = tuple(ipv6)
        self.iface_id = iface_id or str(uuid.uuid4())
        self.netns = f"{NETNS_PREFIX}{name}-{uuid.uuid4().hex[:6]}"
        # IFNAMSIZ: 15 characters at most. ``tap``: another name, for the same port plugged
        # twice into one switch (a live migration's source and destination in one lab OVS)
        self.tap = tap or f"tap{self.iface_id[:11]}"
        self._cleanups: list[Callable[[], None]] = []  # TCP helpers to end
        self._vif = vif
        try:
            self._plug(ofport_request)
        except BaseException:
            self.destroy()
            raise

    def _plug(self, ofport_request: int | None) -> None:
        sw = self.sandbox.netns
        ip = ["ip", "-n", self.netns]
        resources.add_netns(self.netns)
        process.run(["ip", "-n", sw, "link", "add", self.tap, "type", "veth",
                     "peer", "name", "eth0", "netns", self.netns])
        process.run([*ip, "link", "set", "eth0", "address", self.mac])
        for cidr in self.ipv4:
            process.run([*ip, "addr", "add", cidr, "dev", "eth0"])
        for cidr in self.ipv6:
            process.run([*ip, "-6", "addr", "add", cidr, "dev", "eth0", "nodad"])
        process.run([*ip, "link", "set", "lo", "up"])
        process.run([*ip, "link", "set", "eth0", "up"])
        process.run(["ip", "-n", sw, "link", "set", self.tap, "up"])
        # The userspace datapath does not complete checksums that the veth
        # TX offload left partial: without this, TCP segments arrive with bad
        # checksums and are dropped by the receiver (ping still works).
        process.run(["ip", "netns", "exec", sw, "ethtool", "-K", self.tap, "tx", "off"])
        process.run(["ip", "netns", "exec", self.netns, "ethtool", "-K", "eth0", "tx", "off"])
        nova_ids = {"iface-id": self.iface_id, "attached-mac": self.mac,
                    "iface-status": "active", "vm-uuid": str(uuid.uuid4())}
        self.sandbox.add_port(self.bridge, self.tap, ofport_request=ofport_request,
                              external_ids=nova_ids if self._vif else None)

    @property
    def ofport(self) -> int:
        return self.sandbox.ofport(self.tap)

    @property
    def ip4(self) -> str:
        """The first IPv4 address, without prefix length."""
        return self.ipv4[0].split("/")[0]

    @property
    def ip6(self) -> str:
        """The first IPv6 address, without prefix length."""
        return self.ipv6[0].split("/")[0]

    def exec(self, cmd: Sequence[str], timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` in the namespace; never raises on a non-zero exit."""
        try:
            return subprocess.run(["ip", "netns", "exec", self.netns, *cmd],
                                  capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            return subprocess.CompletedProcess(exc.cmd, -1, "", f"timed out after {timeout}s")

    def ping(self, ip: str, count: int = 1, timeout: float = 2.0) -> bool:
        """True if ``count`` echo requests to ``ip`` all get a reply."""
        family = "-6" if ":" in ip else "-4"
        wait = str(max(1, round(timeout)))
        result = self.exec(["ping", family, "-n", "-q", "-c", str(count), "-W", wait, ip],
                           timeout=timeout * count + 5)
        return result.returncode == 0

    def tcp_listen(self, port: int) -> TcpListener:
        """Start an echo server on ``port`` (all addresses, v4 and v6)."""
        listener = TcpListener(self.netns, port)
        self._cleanups.append(listener.stop)
        return listener

    def tcp_connect(self, ip: str, port: int, timeout: float = 2.0) -> bool:
        """True if a connection to ``ip:port`` opens and echoes one line."""
        result = self.exec([sys.executable, str(_TCP_PEER), "connect", ip, str(port),
                            str(timeout)], timeout=timeout + 5)
        return result.returncode == 0

    def tcp_session(self, ip: str, port: int, timeout: float = 2.0) -> TcpSession:
        """Open a connection that stays up; check it later with ``exchange()``."""
        tcp_session = TcpSession(self.netns, ip, port, timeout)
        self._cleanups.append(tcp_session.close)
        return tcp_session

    def destroy(self) -> None:
        """Remove helpers, the OVS port and the namespace (idempotent)."""
        for cleanup in self._cleanups:
            cleanup()
        self._cleanups.clear()
        if self.sandbox.vswitchd_pid is not None:
            self.sandbox.del_port(self.tap)
        resources.del_netns(self.netns)
        # Deleting the namespace deletes eth0 and so its peer; if plugging
        # failed before eth0 moved there, the switch end may remain.
        if resources.netns_exists(self.sandbox.netns):
            try:
                process.run(["ip", "-n", self.sandbox.netns, "link", "del", self.tap])
            except process.LabCommandError:
                pass

    def __enter__(self) -> NetnsVM:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.destroy()


class _LineReader:
    """Lines of a child's stdout, each within a deadline.

    select() on a buffered file object misses lines already pulled into its
    buffer, so this reads the raw descriptor and splits lines itself.
    """

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self._fd = proc.stdout.fileno()
        self._buf = b""
        self._eof = False

    def readline(self, timeout: float) -> str | None:
        """The next line without its newline; None on timeout or EOF."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if self._eof or left <= 0 or not select.select([self._fd], [], [], left)[0]:
                return None
            chunk = os.read(self._fd, 4096)
            self._eof = not chunk
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode(errors="replace")


def _end(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()

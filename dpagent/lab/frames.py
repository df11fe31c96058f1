"""Raw Ethernet frames sent from and captured on a lab VM's interface (AF_PACKET).

For the tests whose subject is frames the kernel would never build by itself: 802.1Q and
802.1ad tags from a VM, crafted headers. :func:`ethernet` builds a frame, :class:`FrameTap`
sends and captures on one interface of a namespace.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from collections.abc import Sequence
from types import TracebackType

from dpagent.lab.nsocket import socket_in_netns

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8


def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def ethernet(dst: str, src: str, ethertype: int, payload: bytes,
             tags: Sequence[tuple[int, int]] = ()) -> bytes:
    """A frame ``dst`` <- ``src``; ``tags`` are (TPID, VID) outermost first, e.g.
    ``[(ETH_P_8021AD, 200), (ETH_P_8021Q, 100)]`` for a double-tagged frame."""
    head = mac_bytes(dst) + mac_bytes(src)
    for tpid, vid in tags:
        head += struct.pack("!HH", tpid, vid & 0x0FFF)
    frame = head + struct.pack("!H", ethertype) + payload
    return frame.ljust(60, b"\0")


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4_packet(src_ip: str, dst_ip: str, protocol: int, payload: bytes) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, protocol, 0,
                         socket.inet_aton(src_ip), socket.inet_aton(dst_ip))
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return header + payload


def icmp_echo(src_ip: str, dst_ip: str, marker: bytes, ident: int = 0x4450) -> bytes:
    """An IPv4 ICMP echo request carrying ``marker`` (to recognise it where it arrives)."""
    icmp = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + marker
    icmp = icmp[:2] + struct.pack("!H", _checksum(icmp)) + icmp[4:]
    return ipv4_packet(src_ip, dst_ip, 1, icmp)


TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def tcp_segment(src_ip: str, dst_ip: str, sport: int, dport: int, flags: int,
                seq: int = 1000, ack: int = 0) -> bytes:
    """An IPv4 TCP segment with ``flags`` and no payload (e.g. a SYN+ACK that answers no
    connection, which conntrack calls invalid)."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    pseudo = socket.inet_aton(src_ip) + socket.inet_aton(dst_ip) + struct.pack("!BBH", 0, 6,
                                                                               len(tcp))
    tcp = tcp[:16] + struct.pack("!H", _checksum(pseudo + tcp)) + tcp[18:]
    return ipv4_packet(src_ip, dst_ip, 6, tcp)


class FrameTap:
    """An AF_PACKET socket on ``ifname`` in ``netns``: ``send(frame)``, ``frames(seconds)``."""

    def __init__(self, netns: str, ifname: str) -> None:
        self._sock = socket_in_netns(netns, socket.AF_PACKET, socket.SOCK_RAW,
                                     socket.htons(ETH_P_ALL))
        self._sock.bind((ifname, 0))
        self._sock.setblocking(False)

    def send(self, frame: bytes) -> None:
        self._sock.send(frame)

    def frames(self, seconds: float) -> list[bytes]:
        """Every frame seen (sent or received) on the interface for ``seconds``."""
        seen: list[bytes] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self._sock], [], [], left)
            if ready:
                data, address = self._sock.recvfrom(65535)
                if address[2] != socket.PACKET_OUTGOING:
                    seen.append(data)
        return seen

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> FrameTap:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


ETH_P_IPV6 = 0x86DD
IPPROTO_ICMPV6 = 58


def link_local(mac: str) -> str:
    """The EUI-64 IPv6 link-local address of ``mac`` (what the kernel gives an interface)."""
    b = bytearray(mac_bytes(mac))
    b[0] ^= 0x02
    eui = bytes(b[:3]) + b"\xff\xfe" + bytes(b[3:])
    return socket.inet_ntop(socket.AF_INET6, b"\xfe\x80" + b"\0" * 6 + eui)


def ipv6_packet(src: str, dst: str, next_header: int, payload: bytes) -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), next_header, 255,
                       socket.inet_pton(socket.AF_INET6, src),
                       socket.inet_pton(socket.AF_INET6, dst)) + payload


def ipv6_fragment(next_header: int, offset: int, more: bool, ident: int = 0x4450) -> bytes:
    """A fragment header; ``offset`` in 8-byte units."""
    return struct.pack("!BBHI", next_header, 0, (offset << 3) | int(more), ident)


def ipv6_dstopts(next_header: int, filler: bytes = b"", length: int | None = None) -> bytes:
    """A destination-options header of PadN options carrying ``filler``, ``length`` bytes long
    (a multiple of 8; by default just enough). The length field may claim more than is sent:
    cut the result to make a header chain that does not fit its packet."""
    size = length or -(-(len(filler) + 4) // 8) * 8
    body, data, left = b"", filler, size - 2
    while left > 0:
        n = min(left - 2, 255)
        chunk, data = data[:n], data[n:]
        body += bytes([1, n]) + chunk.ljust(n, b"\0")
        left -= n + 2
    return bytes([next_header, size // 8 - 1]) + body


def icmpv6(src: str, dst: str, kind: int, code: int, body: bytes) -> bytes:
    """An ICMPv6 message with its checksum (over the IPv6 pseudo-header)."""
    message = struct.pack("!BBH", kind, code, 0) + body
    pseudo = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
              + struct.pack("!IxxxB", len(message), IPPROTO_ICMPV6))
    return message[:2] + struct.pack("!H", _checksum(pseudo + message)) + message[4:]

"""Sockets inside a lab network namespace, made from the test process itself.

A socket keeps the network namespace it was created in, so the calling thread enters the
namespace (``setns``) only for the ``socket()`` call and returns at once: no helper process,
and the socket is an ordinary object of the caller's. Used for the loopback forward that lets
neutron's agent reach the broker, and for raw frames (AF_PACKET) sent and captured on a VM's
interface.
"""

from __future__ import annotations

import ctypes
import os
import socket

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def socket_in_netns(netns: str, family: int, kind: int, proto: int = 0) -> socket.socket:
    """``socket.socket(family, kind, proto)`` created inside network namespace ``netns``."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        _setns(target)
        try:
            return socket.socket(family, kind, proto)
        finally:
            _setns(own)
    finally:
        os.close(target)
        os.close(own)

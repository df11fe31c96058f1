"""systemd's notify protocol (``Type=notify``), without a libsystemd dependency.

The agent sends READY=1 once local setup and the first full synchronisation are done, so that
``systemctl start`` returns when br-int really holds the right flows, and STATUS= lines that
``systemctl status`` shows.
"""

from __future__ import annotations

import os
import socket


def notify(message: str) -> bool:
    """Send ``message`` (e.g. ``READY=1``) to $NOTIFY_SOCKET; False when not run by systemd."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(message.encode(), address)
        except OSError:
            return False
    return True

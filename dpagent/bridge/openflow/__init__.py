"""OpenFlow 1.5 spoken directly to the bridge's management socket.

``ovs-ofctl`` costs a process and ~20 ms of handshakes per call; a bundle over an open
connection costs two round trips (a fraction of a millisecond). Layers, bottom up:

* :mod:`.protocol` -- every OpenFlow and Nicira number used, under its specification name;
* :mod:`.oxm`, :mod:`.instructions`, :mod:`.codec` -- pure encoding of flows, bundles, dumps and
  errors;
* :mod:`.connection` -- the socket: hello, xids, framing, echo, reconnect;
* :mod:`.transport` -- :class:`OpenFlowTransport`, the
  :class:`~dpagent.bridge.transport.FlowTransport` the programmer uses.
"""

from __future__ import annotations

from dpagent.bridge.openflow.transport import OpenFlowTransport

__all__ = ["OpenFlowTransport"]

"""Physical networks: br-int patched to the bridges of ``[ovs] bridge_mappings``.

:mod:`.manager` (:class:`PhysicalNetworks`) is what the agent uses; :mod:`.naming` names the
patch ports, :mod:`.segments` decides a network's VLAN on the wire, :mod:`.bridge_flows` builds
the physical bridge's allow-list, :mod:`.patch_ports` does the OVSDB work, :mod:`.migration`
converts old veth interconnections, :mod:`.events` watches Bridge rows, :mod:`.config` checks
the options. The module docstring of :mod:`.manager` explains the decisions (why patch ports,
why unconnected first).
"""

from __future__ import annotations

from dpagent.physnet.config import PhysnetConfigError
from dpagent.physnet.manager import PhysicalNetworks, UplinkAnswer

__all__ = ["PhysicalNetworks", "PhysnetConfigError", "UplinkAnswer"]

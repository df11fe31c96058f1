"""Names of trunk bridges and their patch ports, exactly as neutron's OVS trunk driver makes
them (``neutron.services.trunk.drivers.openvswitch``), so a host swapped in place from
neutron's agent keeps the bridges os-vif plugged and the pairs neutron made. Pure.

* the trunk bridge: ``tbr-`` and the trunk id, 14 characters (``gen_trunk_br_name``);
* the parent's pair: ``tpi-<port id>`` on br-int, ``tpt-<port id>`` on the trunk bridge;
* a subport's pair: ``spi-<port id>`` on br-int, ``spt-<port id>`` on the trunk bridge;

each cut to an interface name's 15 characters.
"""

from __future__ import annotations

from typing import Final

DEVICE_NAME_MAX_LEN: Final = 15
TRUNK_BRIDGE_PREFIX: Final = "tbr-"
PARENT_PREFIX: Final = "tp"
SUBPORT_PREFIX: Final = "sp"


def trunk_bridge_name(trunk_id: str) -> str:
    """The bridge os-vif plugs the parent of trunk ``trunk_id`` into (the server names it in
    the parent's ``binding:vif_details.bridge_name``)."""
    return (TRUNK_BRIDGE_PREFIX + trunk_id)[:DEVICE_NAME_MAX_LEN - 1]


def is_trunk_bridge(name: str) -> bool:
    return name.startswith(TRUNK_BRIDGE_PREFIX)


def integration_side(prefix: str, port_id: str) -> str:
    """The patch port on br-int of the parent (``tp``) or a subport (``sp``) ``port_id``."""
    return f"{prefix}i-{port_id}"[:DEVICE_NAME_MAX_LEN]


def trunk_side(prefix: str, port_id: str) -> str:
    """The patch port on the trunk bridge of the parent (``tp``) or a subport (``sp``)."""
    return f"{prefix}t-{port_id}"[:DEVICE_NAME_MAX_LEN]


def is_service_port(name: str) -> bool:
    """Whether a port on a trunk bridge is one the trunk's wiring made (a patch port, or the
    bridge's own internal port) rather than the VM's: neutron's test, by prefix."""
    return is_trunk_bridge(name) or name[:2] in (PARENT_PREFIX, SUBPORT_PREFIX)


def is_subport_side(name: str) -> bool:
    return name.startswith(SUBPORT_PREFIX + "t-")

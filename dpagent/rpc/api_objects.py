"""Checks for ports and networks as neutron's API shows them (notifications, network details).

Only the fields the agent may act on are checked, each only for its type; everything
else in these dicts (names, timestamps, tags...) passes through untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dpagent.rpc.validation import (
    expect_address_pairs,
    expect_bool,
    expect_fixed_ips,
    expect_ids,
    expect_int,
    expect_mac,
    expect_mapping,
    expect_optional_int,
    expect_optional_str,
    expect_str,
    require,
)

_PORT_OPTIONAL: dict[str, Callable[[Any, str], object]] = {
    "port_security_enabled": expect_bool,
    "device_owner": lambda v, f: expect_str(v, f, empty=True),
    "device_id": lambda v, f: expect_str(v, f, empty=True),
    "binding:host_id": lambda v, f: expect_str(v, f, empty=True),
    "binding:profile": expect_mapping,
    "binding:vnic_type": expect_str,
    "status": expect_str,
}


def check_port(value: Any, field: str = "port") -> dict[str, Any]:
    """A port dict as the API shows it (port_update): the fields the agent may use."""
    port = expect_mapping(value, field)
    expect_str(require(port, "id", field), f"{field}.id")
    expect_str(require(port, "network_id", field), f"{field}.network_id")
    expect_mac(require(port, "mac_address", field), f"{field}.mac_address")
    expect_bool(require(port, "admin_state_up", field), f"{field}.admin_state_up")
    if "security_groups" in port:
        expect_ids(port["security_groups"], f"{field}.security_groups")
    expect_fixed_ips(port.get("fixed_ips", []), f"{field}.fixed_ips")
    expect_address_pairs(port.get("allowed_address_pairs", []), f"{field}.allowed_address_pairs")
    for key, check in _PORT_OPTIONAL.items():
        if port.get(key) is not None:
            check(port[key], f"{field}.{key}")
    return dict(port)


def check_network(value: Any, field: str = "network") -> dict[str, Any]:
    network = expect_mapping(value, field)
    expect_str(require(network, "id", field), f"{field}.id")
    if network.get("mtu") is not None:
        expect_int(network["mtu"], f"{field}.mtu", low=68)
    if "admin_state_up" in network:
        expect_bool(network["admin_state_up"], f"{field}.admin_state_up")
    expect_optional_str(network.get("provider:network_type"), f"{field}.provider:network_type")
    expect_optional_str(network.get("provider:physical_network"),
                        f"{field}.provider:physical_network")
    expect_optional_int(network.get("provider:segmentation_id"),
                        f"{field}.provider:segmentation_id", low=0)
    return dict(network)

"""Offline mode: fill in the local facts a real agent would know, deterministically.

``python -m flows compile`` takes a bare RPC reply (from a file or a recording); ports without
``ofport`` get one in order of port id after the highest given, networks without a local VLAN get
one in order of network id, so the same file always yields the same flows.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


def with_local_facts(sg_info: Any) -> Any:
    """A copy of ``sg_info`` where every port has ``ofport`` and ``local_vlan``."""
    if not isinstance(sg_info, Mapping):
        return sg_info  # the parser says what is wrong
    info = copy.deepcopy(dict(sg_info))
    devices = info.get("devices") or {}
    networks = info.get("networks") or {}
    if not isinstance(devices, dict) or not isinstance(networks, dict):
        return info
    used_ofports = {d["ofport"] for d in devices.values()
                    if isinstance(d, dict) and isinstance(d.get("ofport"), int)}
    next_ofport = max(used_ofports, default=0) + 1
    vlans = {net_id: spec["local_vlan"] for net_id, spec in networks.items()
             if isinstance(spec, dict) and isinstance(spec.get("local_vlan"), int)}
    for device in devices.values():
        if isinstance(device, dict) and isinstance(device.get("local_vlan"), int):
            vlans.setdefault(str(device.get("network_id")), device["local_vlan"])
    next_vlan = max(vlans.values(), default=0) + 1
    for port_id in sorted(devices):
        device = devices[port_id]
        if not isinstance(device, dict):
            continue
        if "ofport" not in device:
            device["ofport"] = next_ofport
            next_ofport += 1
        network_id = str(device.get("network_id"))
        if "local_vlan" not in device:
            if network_id not in vlans:
                vlans[network_id] = next_vlan
                next_vlan += 1
            device["local_vlan"] = vlans[network_id]
    return info

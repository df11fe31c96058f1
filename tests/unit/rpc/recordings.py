"""The recorded neutron-server 29 traffic in ./contract, as test data."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

CONTRACT = Path(__file__).parent / "contract"


def rpc_calls() -> dict[str, dict[str, Any]]:
    """Recorded calls by file stem (``05_get_devices_details_list_and_failed_devices``)."""
    return {p.stem: json.loads(p.read_text()) for p in sorted((CONTRACT / "rpc").glob("*.json"))}


def rpc_call(prefix: str) -> dict[str, Any]:
    """The recorded call whose file name starts with ``prefix`` (e.g. ``"10_"``)."""
    (found,) = [c for name, c in rpc_calls().items() if name.startswith(prefix)]
    return copy.deepcopy(found)


def notifications() -> list[dict[str, Any]]:
    """Every legacy cast an agent host received (topic, method, kwargs, phase)."""
    lines = (CONTRACT / "notifications.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def pushes() -> list[dict[str, Any]]:
    """The recorded Trunk and SubPort versioned-object pushes (topic, event, objects)."""
    lines = (CONTRACT / "pushes.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def overlay_records() -> dict[str, dict[str, Any]]:
    """The tunnelled-network recordings (``contract/overlay``, made by
    tools/record_overlay_contract.py) by file stem (``45_update_device_list_up_p2_compute2``):
    each ``{"step", "what", "request", "reply", "error", "casts", ...}``; ``00_setup`` (versions,
    ML2 configuration, probes) is left out."""
    return {p.stem: json.loads(p.read_text())
            for p in sorted((CONTRACT / "overlay").glob("[0-9][0-9]_*.json"))
            if p.stem != "00_setup"}

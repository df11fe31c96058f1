"""Fakes for the SR-IOV side's tests: the control plane in-process, and a VF programmer that
records what it was asked."""

from __future__ import annotations

import threading
import time

from dpagent.agent.sriov_ports import VfPlan
from dpagent.rpc.trunks import SubPort, Trunk


def details(port_id="p1", **over):
    entry = {"device": port_id, "port_id": port_id, "network_id": "n1",
             "mac_address": "FA:16:3E:00:00:01", "admin_state_up": True,
             "network_type": "vlan", "physical_network": "physnet2", "segmentation_id": 100,
             "port_security_enabled": True, "profile": {"pci_slot": "0000:07:02.0"}}
    entry.update(over)
    return entry


def trunk(*vlans, trunk_id="t1", parent="p1"):
    return Trunk(trunk_id, parent, tuple(SubPort(f"sp{v}", trunk_id, "vlan", v)
                                         for v in sorted(vlans)))


class FakeVfs:
    """Records what was asked; a plan naming a VLAN in ``refuse`` fails like a driver."""

    def __init__(self):
        self.applied: list[VfPlan] = []
        self.released: list[VfPlan] = []
        self.refuse_trunks = False

    def apply(self, plan):
        if plan.trunk_vlans and self.refuse_trunks:
            raise RuntimeError(f"port {plan.port_id}, PF ens1f0, VF 2 (driver netlink): "
                               "this NIC has no VLAN trunks")
        self.applied.append(plan)
        return "ens1f0/2"

    def release(self, plan):
        self.released.append(plan)

    def device_mappings(self):
        return {"physnet2": ["ens1f0"]}


class FakeControlPlane:
    def __init__(self):
        self.ports = {"p1": details()}
        self.trunks: dict[str, Trunk] = {}
        self.up: list[str] = []
        self.down: list[str] = []
        self.bindings: list[list[SubPort]] = []
        self.trunk_status: list[tuple[str, str]] = []
        self.available = True
        self.changed = threading.Event()

    def _check(self):
        if not self.available:
            raise TimeoutError("no reply")

    def direct_ports(self):
        self._check()
        return [{"id": p} for p in self.ports]

    def get_devices_details(self, devices):
        self._check()
        return [self.ports.get(d, {"device": d}) for d in devices], []

    def trunk_of(self, port_id):
        self._check()
        return next((t for t in self.trunks.values() if t.port_id == port_id), None)

    def update_device_list(self, up, down):
        self._check()
        self.up += up
        self.down += down
        self.changed.set()

    def update_subport_bindings(self, subports):
        self.bindings.append(list(subports))

    def update_trunk_status(self, trunk_id, status):
        self.trunk_status.append((trunk_id, status))
        self.changed.set()


def wait_for(predicate, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("timed out")



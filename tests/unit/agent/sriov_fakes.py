"""Fakes for the SR-IOV side's tests: the control plane in-process, and a VF programmer that
records what it was asked."""

from __future__ import annotations

import threading
import time

from dpagent.agent.sriov_plan import VfPlan
from dpagent.rpc.trunks import SubPort, Trunk


def details(port_id="p1", **over):
    entry = {"device": port_id, "port_id": port_id, "network_id": "n1",
             "mac_address": "FA:16:3E:00:00:01", "admin_state_up": True,
             "network_type": "vlan", "physical_network": "physnet2", "segmentation_id": 100,
             "port_security_enabled": True, "profile": {"pci_slot": "0000:07:02.0"}}
    entry.update(over)
    return entry


def subport_details(port_id, vlan, physnet="physnet2", network_type="vlan"):
    """A bound subport's details: its own network's segment (CONTRACT.md 1.2, rpc/24)."""
    return {"device": port_id, "port_id": port_id, "network_id": f"net-{vlan}",
            "mac_address": "fa:16:3e:00:01:00", "admin_state_up": True,
            "network_type": network_type, "physical_network": physnet, "segmentation_id": vlan,
            "device_owner": "trunk:subport", "port_security_enabled": True, "profile": {}}


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
        self.subports: dict[str, dict] = {}  # subport id -> its details once bound here
        self.bound: set[str] = set()  # subports bound by update_subport_bindings
        self.calls = 0
        self.up: list[str] = []
        self.down: list[str] = []
        self.status: dict[str, str] = {}  # as neutron keeps it: a details fetch means BUILD
        self.bindings: list[list[SubPort]] = []
        self.trunk_status: list[tuple[str, str]] = []
        self.available = True
        self.failure: Exception | None = None  # raised by every call when set
        self.changed = threading.Event()

    def set_trunk(self, t, physnet="physnet2", networks=None):
        """Add or change trunk ``t``; each subport is on a VLAN network whose VLAN is its
        segmentation id, unless ``networks`` (subport id -> details) says otherwise."""
        self.trunks[t.id] = t
        for sub in t.sub_ports:
            self.subports.setdefault(sub.port_id,
                                     subport_details(sub.port_id, sub.segmentation_id, physnet))
        self.subports.update(networks or {})

    def _check(self):
        self.calls += 1
        if self.failure is not None:
            raise self.failure
        if not self.available:
            raise TimeoutError("no reply")

    def direct_ports(self):
        self._check()
        return [{"id": p} for p in self.ports]

    def get_devices_details(self, devices):
        self._check()
        self.status.update({d: "BUILD" for d in devices if d in self.ports or d in self.bound})
        # like neutron: an unbound (not yet bound) subport has only {"device": id}
        return [self.ports.get(d) or (self.subports[d] if d in self.bound else {"device": d})
                for d in devices], []

    def trunk_of(self, port_id):
        self._check()
        return next((t for t in self.trunks.values() if t.port_id == port_id), None)

    def update_device_list(self, up, down):
        self._check()
        self.up += up
        self.down += down
        self.status.update({p: "ACTIVE" for p in up})
        self.status.update({p: "DOWN" for p in down})
        self.changed.set()

    def update_subport_bindings(self, subports):
        self._check()
        self.bindings.append(list(subports))
        self.bound |= {s.port_id for s in subports if s.port_id in self.subports}

    def update_trunk_status(self, trunk_id, status):
        self._check()
        self.trunk_status.append((trunk_id, status))
        self.changed.set()


def wait_for(predicate, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("timed out")



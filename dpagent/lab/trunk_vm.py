"""A lab VLAN-aware VM: a neutron trunk's VM, plugged as os-vif plugs one, with its VLAN
sub-interfaces made without the kernel's 802.1Q module.

os-vif plugs a trunk's parent into a bridge of its own: it creates ``tbr-<trunk id>`` (the
parent's ``binding:vif_details.bridge_name``) and adds the VM's tap to it with Nova's
external_ids (iface-id = the parent port). Here the tap is one end of a veth pair in the
switch's namespace; its other end is the trunk port of a *guest bridge* -- a standalone
(NORMAL) netdev bridge that stands for the VM's 802.1Q driver: one access port per VM
interface, VLAN 0 for the untagged one (the parent's) and VLAN n for the sub-interface a
subport is tagged with, each a :class:`NetnsVM` of its own. Frames between the guest bridge and
the tap are tagged as a VM's would be; the agent under test sees exactly what a compute node
shows it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from types import TracebackType

from dpagent.lab import process
from dpagent.lab.netns import NetnsVM
from dpagent.lab.ovs_sandbox import OVSSandbox


def trunk_bridge(trunk_id: str) -> str:
    """The bridge name neutron's server puts in the parent's vif_details."""
    return ("tbr-" + trunk_id)[:14]


class TrunkVM:
    """The VM of trunk ``trunk_id`` whose parent is ``parent_id`` (MAC ``parent_mac``).

    ``interface(vlan, ...)`` adds a VM interface (``vlan`` None: untagged); ``unplug()``
    removes the VM as os-vif does (its tap, then the trunk bridge); ``destroy()`` removes
    everything left (idempotent)."""

    def __init__(self, sandbox: OVSSandbox, trunk_id: str, parent_id: str, parent_mac: str,
                 *, name: str = "tvm") -> None:
        self.sandbox = sandbox
        self.trunk_id = trunk_id
        self.parent_id = parent_id
        self.bridge = trunk_bridge(trunk_id)
        tag = uuid.uuid4().hex[:6]
        self.name = name
        self.guest_bridge = f"vg{tag}"
        self.tap = f"tap{parent_id[:11]}"
        self._guest_end = f"vgt{tag}"
        self._tag = tag
        self.interfaces: list[NetnsVM] = []
        try:
            self._plug(parent_mac)
        except BaseException:
            self.destroy()
            raise

    def _plug(self, parent_mac: str) -> None:
        sw = self.sandbox.netns
        self.sandbox.vsctl("--may-exist", "add-br", self.bridge, "--", "set", "Bridge",
                           self.bridge, "datapath_type=netdev")  # as os-vif: standalone
        self.sandbox.vsctl("--may-exist", "add-br", self.guest_bridge, "--", "set", "Bridge",
                           self.guest_bridge, "datapath_type=netdev",
                           "other_config:disable-in-band=true")
        process.run(["ip", "-n", sw, "link", "add", self.tap, "type", "veth", "peer", "name",
                     self._guest_end])
        for end in (self.tap, self._guest_end):
            process.run(["ip", "-n", sw, "link", "set", end, "up"])
            process.run(["ip", "netns", "exec", sw, "ethtool", "-K", end, "tx", "off"])
        self.sandbox.add_port(self.guest_bridge, self._guest_end)
        self.sandbox.add_port(self.bridge, self.tap, external_ids={
            "iface-id": self.parent_id, "attached-mac": parent_mac, "iface-status": "active",
            "vm-uuid": str(uuid.uuid4())})

    def interface(self, vlan: int | None, mac: str, ipv4: Sequence[str],
                  name: str | None = None) -> NetnsVM:
        """A VM interface: untagged (``vlan`` None) or the sub-interface of VLAN ``vlan``."""
        index = len(self.interfaces)
        vm = NetnsVM(self.sandbox, self.guest_bridge, name or f"{self.name}{index}", mac,
                     ipv4=ipv4, vif=False, tap=f"vg{self._tag}i{index}")
        self.interfaces.append(vm)
        self.sandbox.vsctl("set", "Port", vm.tap, f"tag={vlan or 0}", "vlan_mode=access")
        return vm

    def unplug(self) -> None:
        """The VM goes, as os-vif unplugs it: its tap leaves the trunk bridge, then the
        bridge goes."""
        self.sandbox.del_port(self.tap)
        self.sandbox.del_bridge(self.bridge)

    def destroy(self) -> None:
        for vm in reversed(self.interfaces):
            vm.destroy()
        self.interfaces.clear()
        if self.sandbox.vswitchd_pid is not None:
            self.sandbox.del_port(self.tap)
            self.sandbox.del_bridge(self.bridge)
            self.sandbox.del_bridge(self.guest_bridge)
        try:
            process.run(["ip", "-n", self.sandbox.netns, "link", "del", self.tap])
        except process.LabCommandError:
            pass

    def __enter__(self) -> TrunkVM:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.destroy()

"""VF VLAN trunks on Intel X710/XL710 NICs with Intel's out-of-tree i40e driver (>= 2.7.11).

That driver adds a VF management tree, ``/sys/class/net/<pf>/device/sriov/<vf>/``:

* ``trunk``: write ``add 2,4,10-20`` or ``rem 5,11-13`` (removing an absent VLAN is ignored);
  reads back the canonical range list, e.g. ``2,4-5,10-20``.  The first VLAN added clears a port
  VLAN set over netlink and turns ``allow_untagged`` off; emptying the trunk turns it back on.
* ``allow_untagged``: ``on`` / ``off`` -- whether untagged frames pass while a trunk is set.

Each change is one write() of a whole batch (as ``echo add ... > trunk``), cut into several
writes only when the range list would exceed what sysfs passes in one call (a page); runs are
never split.  Everything else (MAC, port VLAN, spoof check, link state, trust) goes through the
kernel's standard netlink VF API inherited from :class:`~sriov.driver.StandardVfDriver`.

The in-tree i40e driver has neither the tree nor ``/sys/module/i40e/version``; such a PF is
refused (:meth:`I40eTrunkDriver.unusable_reason`) and gets the generic driver, without trunks.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import ClassVar

from sriov.driver import (
    STANDARD_CAPABILITIES,
    Capability,
    PfInfo,
    StandardVfDriver,
    SysfsAccess,
    VfTarget,
)
from sriov.errors import DriverRefused, InvalidRequest, UnknownVf
from sriov.vlans import VlanRangeError, check_vlans, chunk_range_list, parse_range_list

MIN_VERSION = (2, 7, 11)
VERSION_FILE = "module/i40e/version"
#: Longest range list per write: a page (4096) less ``"add "``, the newline and some margin.
MAX_RANGE_LIST = 4000


def parse_version(text: str) -> tuple[int, ...] | None:
    """``2.22.18`` (also ``2.22.18-k`` or ``2.8.20_2``) as a tuple, None if not a version."""
    match = re.match(r"^\s*(\d+(?:\.\d+)*)", text)
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


class I40eTrunkDriver(StandardVfDriver):
    """VF trunks through Intel's i40e sysfs; the standard VF settings through netlink."""

    kernel_drivers: ClassVar[tuple[str, ...]] = ("i40e",)
    capabilities: ClassVar[Capability] = STANDARD_CAPABILITIES | Capability.TRUNK

    @classmethod
    def unusable_reason(cls, pf: PfInfo, sysfs: SysfsAccess) -> str | None:
        wanted = ".".join(map(str, MIN_VERSION))
        try:
            text = sysfs.read(VERSION_FILE)
        except OSError:
            return (f"no {VERSION_FILE}: the in-tree i40e driver, which has no VF trunk "
                    f"support (Intel's out-of-tree i40e >= {wanted} has)")
        version = parse_version(text)
        if version is None:
            return f"{VERSION_FILE} reads {text!r}, not a version"
        if version < MIN_VERSION:
            return f"i40e {text.strip()} is older than {wanted}, the first with VF trunks"
        if not sysfs.exists(f"class/net/{pf.name}/device/sriov"):
            return (f"i40e {text.strip()} but PF {pf.name} has no device/sriov/ VF "
                    "management tree")
        return None

    def vf_file(self, target: VfTarget, name: str) -> str:
        """The sysfs path (relative to the root) of one of the VF's management files."""
        return f"class/net/{target.pf}/device/sriov/{target.vf}/{name}"

    def trunk_vlans(self, target: VfTarget) -> frozenset[int]:
        text = self._read(target, "trunk")
        try:
            return parse_range_list(text)
        except VlanRangeError as exc:
            raise self.error(DriverRefused, target,
                             f"{self.vf_file(target, 'trunk')} reads {text!r}: {exc}") from exc

    def add_trunk_vlans(self, target: VfTarget, vlans: Collection[int]) -> None:
        self._write_trunk(target, "add", vlans)

    def remove_trunk_vlans(self, target: VfTarget, vlans: Collection[int]) -> None:
        self._write_trunk(target, "rem", vlans)

    def allow_untagged(self, target: VfTarget) -> bool:
        """Whether untagged frames pass while the VF has a trunk."""
        return self._read(target, "allow_untagged") == "on"

    def set_allow_untagged(self, target: VfTarget, allowed: bool) -> None:
        self._write(target, "allow_untagged", "on" if allowed else "off")

    def _write_trunk(self, target: VfTarget, command: str, vlans: Collection[int]) -> None:
        try:
            checked = check_vlans(vlans)
        except VlanRangeError as exc:
            raise self.error(InvalidRequest, target, f"trunk {command}: {exc}") from exc
        for chunk in chunk_range_list(checked, MAX_RANGE_LIST):
            self._write(target, "trunk", f"{command} {chunk}")

    def _read(self, target: VfTarget, name: str) -> str:
        self._check_vf(target)
        try:
            return self.context.sysfs.read(self.vf_file(target, name)).strip()
        except OSError as exc:
            raise self.refused(target, f"reading {self.vf_file(target, name)}", exc) from exc

    def _write(self, target: VfTarget, name: str, value: str) -> None:
        self._check_vf(target)
        path = self.vf_file(target, name)
        try:
            self.context.sysfs.write(path, f"{value}\n")
        except OSError as exc:
            raise self.refused(target, f"writing {value!r} to {path}", exc) from exc

    def _check_vf(self, target: VfTarget) -> None:
        directory = f"class/net/{target.pf}/device/sriov/{target.vf}"
        if not self.context.sysfs.exists(directory):
            raise self.error(UnknownVf, target, f"VF {target.vf} does not exist (no {directory})")

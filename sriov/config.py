"""The [sriov] options as typed values, with every mistake reported at once.

Takes the plain lists oslo.config produces (``ListOpt`` has already split on commas) so that this
library needs no oslo import:

* ``physical_device_mappings``: ``physnet:pf`` entries; a physnet may map to several PFs, a PF to
  one physnet only;
* ``exclude_devices``: ``pf:addr;addr`` entries naming VFs (by PCI address) the agent must leave
  alone, for VFs used by the host itself; every PF named must be mapped;
* ``driver_overrides``: ``pf -> driver entry point name``; every PF named must be mapped.

A configuration error stops the agent: running with half the mappings would silently leave ports
unconfigured.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sriov.errors import SriovConfigError

PCI_ADDRESS_RE = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")


def normalize_pci_address(address: str) -> str:
    """``0000:07:00.2`` in lower case, or ValueError; a missing domain means ``0000``."""
    text = address.strip().lower()
    if text.count(":") == 1:
        text = f"0000:{text}"
    if not PCI_ADDRESS_RE.match(text):
        raise ValueError(f"{address!r} is not a PCI address (dddd:bb:dd.f)")
    return text


@dataclass(frozen=True)
class SriovSettings:
    """Which PFs the agent manages and how; see :meth:`from_options`."""

    #: physnet -> its PFs, in configuration order.
    device_mappings: Mapping[str, tuple[str, ...]]
    #: PF -> PCI addresses of its VFs to leave alone.
    exclude_devices: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: PF -> driver entry point name forced for it.
    driver_overrides: Mapping[str, str] = field(default_factory=dict)
    sysfs_root: Path = Path("/sys")

    @classmethod
    def from_options(cls, physical_device_mappings: Iterable[str],
                     exclude_devices: Iterable[str] = (),
                     driver_overrides: Mapping[str, str] | None = None,
                     sysfs_root: str | Path = "/sys") -> SriovSettings:
        """Parse the option values; :class:`SriovConfigError` lists every problem."""
        problems: list[str] = []
        mappings = _parse_mappings(physical_device_mappings, problems)
        mapped = {pf for pfs in mappings.values() for pf in pfs}
        excludes = _parse_excludes(exclude_devices, mapped, problems)
        overrides = dict(driver_overrides or {})
        for pf, driver in sorted(overrides.items()):
            if pf not in mapped:
                problems.append(f"[sriov] driver_overrides: PF {pf} (driver {driver}) is not in "
                                "physical_device_mappings")
            if not driver:
                problems.append(f"[sriov] driver_overrides: PF {pf} needs a driver name")
        if problems:
            raise SriovConfigError("\n".join(problems))
        return cls(mappings, excludes, overrides, Path(sysfs_root))

    @property
    def pfs(self) -> tuple[str, ...]:
        """Every mapped PF, in configuration order."""
        return tuple(pf for pfs in self.device_mappings.values() for pf in pfs)

    def physnet_of(self, pf: str) -> str | None:
        """The physical network ``pf`` serves, or ``None`` if it is not mapped."""
        for physnet, pfs in self.device_mappings.items():
            if pf in pfs:
                return physnet
        return None


def _parse_mappings(entries: Iterable[str], problems: list[str]) -> dict[str, tuple[str, ...]]:
    mappings: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    for entry in entries:
        physnet, colon, pf = (part.strip() for part in entry.partition(":"))
        if not colon or not physnet or not pf or ":" in pf:
            problems.append(f"[sriov] physical_device_mappings: {entry!r} is not physnet:pf")
            continue
        if pf in owner and owner[pf] != physnet:
            problems.append(f"[sriov] physical_device_mappings: PF {pf} is mapped to both "
                            f"{owner[pf]} and {physnet}; a PF serves one physical network")
            continue
        owner[pf] = physnet
        if pf not in mappings.setdefault(physnet, []):
            mappings[physnet].append(pf)
    return {physnet: tuple(pfs) for physnet, pfs in mappings.items()}


def _parse_excludes(entries: Iterable[str], mapped: set[str],
                    problems: list[str]) -> dict[str, frozenset[str]]:
    excludes: dict[str, set[str]] = {}
    for entry in entries:
        pf, colon, addresses = (part.strip() for part in entry.partition(":"))
        if not colon or not pf or not addresses:
            problems.append(f"[sriov] exclude_devices: {entry!r} is not pf:pci_address[;...]")
            continue
        if pf not in mapped:
            problems.append(f"[sriov] exclude_devices: PF {pf} is not in "
                            "physical_device_mappings")
            continue
        for address in addresses.split(";"):
            try:
                excludes.setdefault(pf, set()).add(normalize_pci_address(address))
            except ValueError as exc:
                problems.append(f"[sriov] exclude_devices: PF {pf}: {exc}")
    return {pf: frozenset(addresses) for pf, addresses in excludes.items()}

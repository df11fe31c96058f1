"""Configuring the VF behind a port: validate everything, then converge, or undo.

This is the operation the agent calls.  :meth:`VfPortConfigurator.apply` takes what one port
needs (:class:`VfPortRequest`: which VF, which VLANs, MAC, spoof check, link state, trust) and:

1. finds the VF (PCI slot from the binding profile, else MAC) and its PF's driver;
2. validates the whole request -- VLAN ids, port VLAN xor trunk, MAC, physnet, and that the
   driver has every capability asked for -- before anything is written;
3. reads the VF's current settings and plans only the differences (:mod:`sriov.vlan_plan`:
   one batched trunk ``add``, one ``rem``, never touching a VLAN that stays);
4. writes them, then reads back; if a write is refused or the read-back differs, the writes
   already made are undone in reverse order and a :class:`~sriov.errors.VfError` says what failed
   and how the rollback went.  The port is then reported failed, not half-configured.

Each request touches one VF only; :meth:`VfPortConfigurator.apply_all` keeps going past a
failed port.  Not thread-safe: call it from the agent's worker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sriov.config import normalize_pci_address
from sriov.driver import Capability, LinkState, NicDriver, VfTarget, normalize_mac
from sriov.drivers import PfDrivers
from sriov.errors import DriverRefused, InvalidRequest, UnknownPf, UnknownVf, VfError
from sriov.inventory import Inventory, VirtualFunction, owner_pf_name
from sriov.sysfs import Sysfs
from sriov.vlan_plan import VlanIntent, VlanStep, apply_step, plan_vlans, undo_step


@dataclass(frozen=True)
class VfPortRequest:
    """What one port needs from its VF; ``None`` leaves a setting as it is."""

    port: str
    pci_slot: str | None = None  # binding:profile pci_slot
    mac: str | None = None  # the port's MAC: finds the VF when the slot does not
    physnet: str | None = None  # the port's physical network: must be the PF's
    vlans: VlanIntent | None = None
    admin_mac: str | None = None  # set as the VF's administrative MAC
    spoof_check: bool | None = None
    link_state: LinkState | None = None
    trust: bool | None = None


@dataclass(frozen=True)
class VfPortResult:
    """A port whose VF now has what was asked; ``changes`` lists the writes (empty: none)."""

    port: str
    vf: VirtualFunction
    driver: str
    changes: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Change:
    describe: str
    do: Callable[[], None]
    undo: Callable[[], None] | None
    undo_describe: str = ""


@dataclass
class _Plan:
    changes: list[_Change] = field(default_factory=list)
    vlan_goal: tuple[int, frozenset[int]] | None = None


class VfPortConfigurator:
    """Applies :class:`VfPortRequest` s to the VFs of the current :attr:`inventory`."""

    def __init__(self, inventory: Inventory, drivers: PfDrivers,
                 sysfs: Sysfs | None = None) -> None:
        self.inventory = inventory  # replace it after every (re)discovery
        self.drivers = drivers
        self.sysfs = sysfs

    def apply_all(self, requests: Iterable[VfPortRequest]) -> dict[str, VfPortResult | VfError]:
        """Each request on its own: a failed port does not stop the others."""
        outcome: dict[str, VfPortResult | VfError] = {}
        for request in requests:
            try:
                outcome[request.port] = self.apply(request)
            except VfError as exc:
                outcome[request.port] = exc
        return outcome

    def apply(self, request: VfPortRequest) -> VfPortResult:
        """Converge the port's VF to ``request`` or raise a :class:`VfError` naming the port."""
        try:
            vf = self._locate(request)
            driver = self.drivers.for_pf(self.inventory.pf(vf.pf).info())
            target = vf.target(request.port)
            self._validate(request, vf, driver, target)
            plan = self._plan(request, driver, target)
        except VfError as exc:
            raise exc.replace(port=request.port) from exc
        self._execute(request, driver, target, plan)
        return VfPortResult(request.port, vf, driver.name,
                            tuple(change.describe for change in plan.changes))

    # -- 1. which VF -------------------------------------------------------------------------
    def _locate(self, request: VfPortRequest) -> VirtualFunction:
        try:
            return self.inventory.find_vf(request.pci_slot, request.mac)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from exc
        except UnknownVf:
            owner = self._unmanaged_owner(request.pci_slot)
            if owner is not None:
                raise UnknownPf(f"VF {request.pci_slot} belongs to PF {owner}, which is not in "
                                "[sriov] physical_device_mappings", pf=owner,
                                pci_address=request.pci_slot) from None
            raise

    def _unmanaged_owner(self, pci_slot: str | None) -> str | None:
        if self.sysfs is None or not pci_slot:
            return None
        owner = owner_pf_name(self.sysfs, normalize_pci_address(pci_slot))
        managed = {pf.name for pf in self.inventory.pfs} | set(self.inventory.problems)
        return owner if owner is not None and owner not in managed else None

    # -- 2. is the request sound ---------------------------------------------------------------
    def _validate(self, request: VfPortRequest, vf: VirtualFunction, driver: NicDriver,
                  target: VfTarget) -> None:
        def invalid(problem: str) -> VfError:
            return driver.error(InvalidRequest, target, problem)

        if request.physnet is not None and request.physnet != vf.physnet:
            raise invalid(f"the port is on physical network {request.physnet}, but PF {vf.pf} "
                          f"serves {vf.physnet}")
        if request.vlans is not None:
            try:
                request.vlans.check()
            except ValueError as exc:
                raise invalid(str(exc)) from exc
            if request.vlans.trunk:
                driver.require(target, Capability.TRUNK)
            elif request.vlans.port_vlan:
                driver.require(target, Capability.PORT_VLAN)
        if request.admin_mac is not None:
            try:
                mac = normalize_mac(request.admin_mac)
            except ValueError as exc:
                raise invalid(str(exc)) from exc
            if int(mac[:2], 16) & 1:
                raise invalid(f"MAC address {mac} is a multicast address")
            driver.require(target, Capability.MAC)
        for wanted, capability in ((request.spoof_check, Capability.SPOOF_CHECK),
                                   (request.link_state, Capability.LINK_STATE),
                                   (request.trust, Capability.TRUST)):
            if wanted is not None:
                driver.require(target, capability)

    # -- 3. what to write --------------------------------------------------------------------
    def _plan(self, request: VfPortRequest, driver: NicDriver, target: VfTarget) -> _Plan:
        plan = _Plan()
        state = driver.vf_state(target)
        if request.vlans is not None:
            port_vlan = state.vlan
            trunk = (driver.trunk_vlans(target) if Capability.TRUNK in driver.capabilities
                     else frozenset())
            for step in plan_vlans(port_vlan, trunk, request.vlans):
                undo = undo_step(port_vlan, trunk, step)
                plan.changes.append(_Change(
                    step.describe(), _vlan_writer(driver, target, step),
                    _vlan_writer(driver, target, undo), undo.describe()))
                port_vlan, trunk = apply_step(port_vlan, trunk, step)
            plan.vlan_goal = (port_vlan, trunk)
        if request.admin_mac is not None:
            mac = normalize_mac(request.admin_mac)
            if state.mac != mac:
                plan.changes.append(_Change(
                    f"MAC {mac}", lambda: driver.set_mac(target, mac),
                    lambda: driver.set_mac(target, state.mac), f"MAC {state.mac}"))
        self._plan_flag(plan, "spoof checking", request.spoof_check, state.spoof_check,
                        lambda value: driver.set_spoof_check(target, value))
        self._plan_flag(plan, "trust", request.trust, state.trust,
                        lambda value: driver.set_trust(target, value))
        if request.link_state is not None and request.link_state != state.link_state:
            wanted, before = request.link_state, state.link_state
            plan.changes.append(_Change(
                f"link state {wanted.name.lower()}", lambda: driver.set_link_state(target, wanted),
                None if before is None else lambda: driver.set_link_state(target, before),
                f"link state {before.name.lower()}" if before is not None else ""))
        return plan

    @staticmethod
    def _plan_flag(plan: _Plan, name: str, wanted: bool | None, before: bool | None,
                   setter: Callable[[bool], None]) -> None:
        if wanted is None or wanted == before:
            return
        plan.changes.append(_Change(
            f"{name} {'on' if wanted else 'off'}", lambda: setter(wanted),
            None if before is None else lambda: setter(before),
            f"{name} {'on' if before else 'off'}" if before is not None else ""))

    # -- 4. write, check, or undo --------------------------------------------------------------
    def _execute(self, request: VfPortRequest, driver: NicDriver, target: VfTarget,
                 plan: _Plan) -> None:
        done: list[_Change] = []
        try:
            for change in plan.changes:
                change.do()
                done.append(change)
            if done:
                self._verify(request, driver, target, plan)
        except VfError as exc:
            raise exc.replace(port=request.port, rollback=_rollback(done)) from exc
        except Exception as exc:  # a plugin's bug must not leave the VF half-configured
            failure = driver.error(DriverRefused, target, f"driver {driver.name} failed: {exc!r}")
            raise failure.replace(rollback=_rollback(done)) from exc

    @staticmethod
    def _verify(request: VfPortRequest, driver: NicDriver, target: VfTarget,
                plan: _Plan) -> None:
        state = driver.vf_state(target)
        found: list[str] = []
        if plan.vlan_goal is not None:
            port_vlan, trunk = plan.vlan_goal
            actual_trunk = (driver.trunk_vlans(target)
                            if Capability.TRUNK in driver.capabilities else frozenset())
            if (state.vlan, actual_trunk) != (port_vlan, trunk):
                found.append(f"VLANs read back as port VLAN {state.vlan}, trunk "
                             f"{sorted(actual_trunk)}")
        if request.admin_mac is not None and state.mac != normalize_mac(request.admin_mac):
            found.append(f"MAC reads back as {state.mac}")
        for name, wanted, actual in (("spoof checking", request.spoof_check, state.spoof_check),
                                     ("trust", request.trust, state.trust),
                                     ("link state", request.link_state, state.link_state)):
            if wanted is not None and actual is not None and wanted != actual:
                found.append(f"{name} reads back as {actual}")
        if found:
            raise driver.error(DriverRefused, target, "the writes were accepted but "
                               + "; ".join(found))


def _vlan_writer(driver: NicDriver, target: VfTarget, step: VlanStep) -> Callable[[], None]:
    def write() -> None:
        if step.kind == "port_vlan":
            driver.set_port_vlan(target, next(iter(step.vlans)))
        elif step.kind == "trunk_add":
            driver.add_trunk_vlans(target, step.vlans)
        else:
            driver.remove_trunk_vlans(target, step.vlans)
    return write


def _rollback(done: list[_Change]) -> str:
    if not done:
        return "nothing had been changed"
    undone = []
    for change in reversed(done):
        if change.undo is None:
            return (f"rollback impossible for {change.describe} (the previous value is "
                    "unknown); the VF may be half-configured")
        try:
            change.undo()
        except VfError as exc:
            return (f"rollback failed at {change.undo_describe}: {exc.problem}; the VF may be "
                    "half-configured")
        undone.append(change.undo_describe)
    return f"rolled back ({', '.join(undone)})"

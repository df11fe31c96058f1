"""Model in, flows out: the whole br-int pipeline for the ports of this host.

Flows are grouped by *owner* (the base pipeline, a port, a network, a remote group's conjunction,
one member address) so that the bridge programmer can recompute and diff one owner at a time.
A port whose input is bad, or whose compilation fails, owns no flows at all: its traffic stays
dropped and the error names it; every other port compiles.
"""

from __future__ import annotations

import contextlib
import gc
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from flows import antispoof, base, cookies, forwarding, remote_groups, rules
from flows.flow import Flow
from flows.model import Direction, HostModel, Port, PortError, Rule
from flows.normalize import Atom, forget_comparisons, normalize
from flows.parse import InputError, parse_host

BASE_OWNER = "base"


def port_owner(port_id: str) -> str:
    return f"port:{port_id}"


def network_owner(local_vlan: int) -> str:
    return f"network:{local_vlan}"


@dataclass(frozen=True)
class CompileResult:
    """The desired flows of br-int, by owner, with what could not be compiled and why.

    ``cookies`` maps every cookie to what it stands for (a rule, a port, a member address), so a
    verdict seen in ``ofproto/trace`` can be explained.
    """

    owners: Mapping[str, tuple[Flow, ...]]
    errors: tuple[PortError, ...] = ()
    warnings: tuple[str, ...] = ()
    cookies: Mapping[int, Meaning] = field(default_factory=dict)

    def explain(self, cookie: int) -> str | None:
        """What a cookie stands for: the rule(s), port, network or member behind the flow."""
        return explain(self.cookies, cookie)

    def flows(self) -> list[Flow]:
        return sorted((f for flows in self.owners.values() for f in flows),
                      key=lambda f: (f.table, -f.priority, f.render_body()))

    def flow_lines(self) -> list[str]:
        """Every flow in ``ovs-ofctl add-flows`` syntax, in a stable order."""
        return [f.render() for f in self.flows()]


def compile_sg_info(sg_info: Mapping[str, Any]) -> CompileResult:
    """Compile the ``security_group_info_for_devices`` reply plus local facts (see
    docs/security-groups.md for the input)."""
    with _gc_paused():
        return HostCompiler().compile(parse_host(sg_info))


def compile_host(model: HostModel) -> CompileResult:
    """Compile a validated model. Deterministic: the same model gives the same flows."""
    return HostCompiler().compile(model)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Compiling a large host allocates ~10^6 small objects that all stay alive; the cyclic
    collector's passes over them find nothing to free and cost a quarter of the time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass
class _PortPolicy:
    stateful: bool
    atoms: dict[Direction, tuple[Atom, ...]]
    conj_keys: frozenset[rules.ConjunctionKey]


Meaning = str | tuple[str, str]
"""What a cookie stands for; a pair is joined with a space when read (see :func:`explain`)."""


def explain(meanings: Mapping[int, Meaning], cookie: int) -> str | None:
    meaning = meanings.get(cookie)
    return " ".join(meaning) if isinstance(meaning, tuple) else meaning


Changes = dict[str, tuple[Flow, ...] | None]
"""Owner -> its new flows, or None when the owner has no flows any more."""


class HostCompiler:
    """Compiles a host and then keeps its flows up to date with the least recomputation.

    :meth:`compile` builds everything; :meth:`update` is told what changed (ports, security
    groups' rules, remote groups' members) in the new model and recomputes only the owners that
    depend on it, returning them as :data:`Changes` for the bridge programmer. A member change
    recomputes one flow per changed address and direction in use, whatever the number of ports.
    The result of any sequence of updates equals a full compile of the final model (tested).
    """

    def __init__(self) -> None:
        self.model = HostModel(ports={}, groups={}, members={}, networks={})
        self.owners: dict[str, tuple[Flow, ...]] = {}
        self.meanings: dict[int, Meaning] = {}
        self.errors: dict[str, PortError] = {}
        self.conj_ids: dict[rules.ConjunctionKey, int] = {}
        self._announced: dict[rules.ConjunctionKey, int] = {}
        """Conjunction ids whose conj_id and member flows are emitted."""
        self._policies: dict[tuple[str, ...], _PortPolicy | PortError] = {}
        self._templates: dict[tuple[Any, ...], tuple[rules.RuleTemplate, ...]] = {}
        self._atom_templates: dict[tuple[Any, ...], list[rules.RuleTemplate]] = {}
        self._ports: dict[str, tuple[Port, _PortPolicy | None]] = {}
        self._key_uses: Counter[rules.ConjunctionKey] = Counter()
        """conjunction key -> how many compiled ports use it (kept as ports change, so a
        member change does not walk every port)"""
        self._macs: dict[tuple[int, str], str] = {}
        self._views: tuple[remote_groups.NetworkView, ...] = ()
        self._split: set[tuple[Direction, int, str]] = set()
        """member addresses whose flows are split per local network"""
        self._expected: dict[str, _PortPolicy] = {}
        """expected ports (see :attr:`HostModel.expected`) counted in ``_key_uses``"""

    # -- public --------------------------------------------------------------------------------

    def compile(self, model: HostModel) -> CompileResult:
        """Everything, from scratch."""
        self.__init__()  # type: ignore[misc]
        with _gc_paused():
            self.update(model, ports=model.ports.keys() | {e.port_id for e in model.port_errors},
                        groups=model.groups.keys(), members=model.members.keys(),
                        expected=model.expected.keys())
        forget_comparisons()
        return self.result()

    def result(self) -> CompileResult:
        return CompileResult(owners=dict(self.owners),
                             errors=tuple(self.errors[p] for p in sorted(self.errors)),
                             warnings=self.model.warnings, cookies=self.meanings)

    def update(self, model: HostModel, *, ports: Iterable[str] = (),
               groups: Iterable[str] = (), members: Iterable[str] = (),
               expected: Iterable[str] = ()) -> Changes:
        """Bring the flows to ``model``, where only ``ports``, the rules of ``groups``, the
        members of the remote groups ``members`` and the expected ports ``expected`` changed
        since the last call."""
        old = self.model
        self.model = model
        changes: Changes = {}
        if BASE_OWNER not in self.owners:
            base_flows = tuple(base.base_flows())
            self._set(changes, BASE_OWNER, base_flows, "base pipeline")

        groups = set(groups)
        affected = set(ports)
        foreseen = set(expected)
        if groups:  # not for a member change: that must not cost a walk over every port
            for key in [k for k in self._policies if groups & set(k)]:
                del self._policies[key]
            for key in [k for k in self._templates if groups & set(k[0])]:
                del self._templates[key]
            affected |= {pid for pid, (port, _) in self._ports.items()
                         if groups & set(port.security_groups)}
            affected |= {pid for pid in self.errors
                         if groups & set(self._groups_of(old, pid))}
            affected |= {pid for pid, port in model.ports.items()
                         if groups & set(port.security_groups)}
            foreseen |= {pid for pid, sgs in model.expected.items() if groups & set(sgs)}

        networks = {vlan for pid in affected if pid in self._ports
                    for vlan in [self._ports[pid][0].local_vlan]}
        for port_id in sorted(affected):
            networks |= self._recompile_port(changes, model, port_id)
        foreseen |= {pid for pid in self._expected if pid not in model.expected}  # a few
        for port_id in sorted(foreseen):
            self._foresee(model, port_id)

        member_groups = set(members)
        self._update_conjunctions(changes, old, model, member_groups)
        networks |= {vlan for vlan in old.networks.keys() | model.networks.keys()
                     if old.networks.get(vlan) != model.networks.get(vlan)}
        for vlan in sorted(networks):
            self._recompile_network(changes, model, vlan)
        return changes

    # -- ports ---------------------------------------------------------------------------------

    @staticmethod
    def _groups_of(model: HostModel, port_id: str) -> tuple[str, ...]:
        port = model.ports.get(port_id)
        return port.security_groups if port else ()

    def _recompile_port(self, changes: Changes, model: HostModel, port_id: str) -> set[int]:
        """Recompute one port; returns the local VLANs whose flooding it changes."""
        touched: set[int] = set()
        previous = self._ports.pop(port_id, None)
        if previous is not None:
            self._count_keys(previous[1], -1)
            touched.add(previous[0].local_vlan)
            for mac in previous[0].macs:
                if self._macs.get((previous[0].local_vlan, mac)) == port_id:
                    del self._macs[(previous[0].local_vlan, mac)]
        self.errors.pop(port_id, None)
        owner = port_owner(port_id)
        port = model.ports.get(port_id)
        parse_error = next((e for e in model.port_errors if e.port_id == port_id), None)
        if port is None:
            if parse_error is not None:
                self.errors[port_id] = parse_error
            self._set(changes, owner, None)
            return touched
        try:
            policy = self._policy(model, port) if port.port_security else None
            clash = next((self._macs[(port.local_vlan, mac)] for mac in port.macs
                          if (port.local_vlan, mac) in self._macs), None)
            if clash is not None:
                raise InputError(f"a MAC of this port is used by port {clash} on the same network")
            flows, meanings = self._port_flows(port, policy)
        except Exception as exc:  # noqa: BLE001 - one port's failure must not stop the others
            message = str(exc) if isinstance(exc, InputError) else f"compilation failed: {exc!r}"
            self.errors[port_id] = PortError(port_id, message)
            self._set(changes, owner, None)
            return touched
        self._ports[port_id] = (port, policy)
        self._count_keys(policy, 1)
        self._macs.update(((port.local_vlan, mac), port_id) for mac in port.macs)
        self._set(changes, owner, tuple(flows), meanings)
        touched.add(port.local_vlan)
        return touched

    def _foresee(self, model: HostModel, port_id: str) -> None:
        """Count the remote groups of an expected port as used (or no more): their member
        flows go in ahead of the port. A group set that does not compile counts nothing; the
        port will say why once it is plugged."""
        self._count_keys(self._expected.pop(port_id, None), -1)
        groups = model.expected.get(port_id)
        if groups is None:
            return
        policy = self._policy_of(model, port_id, groups)
        if isinstance(policy, _PortPolicy):
            self._expected[port_id] = policy
            self._count_keys(policy, 1)
            self._templates_of(groups, policy)  # the port's rule flows, but its ofport

    def _count_keys(self, policy: _PortPolicy | None, step: int) -> None:
        if policy is None:
            return
        for key in set(policy.conj_keys):
            self._key_uses[key] += step
            if self._key_uses[key] <= 0:
                del self._key_uses[key]

    def _policy(self, model: HostModel, port: Port) -> _PortPolicy:
        """A port's policy; InputError if its set of groups does not compile."""
        policy = self._policy_of(model, port.port_id, port.security_groups)
        if isinstance(policy, PortError):
            raise InputError(policy.message)
        return policy

    def _policy_of(self, model: HostModel, port_id: str, groups: tuple[str, ...]
                   ) -> _PortPolicy | PortError:
        """Normalised rules of a set of security groups, computed once per set."""
        cached = self._policies.get(groups)
        if cached is None:
            cached = self._policies[groups] = _make_policy(model, port_id, groups)
        return cached

    def _port_flows(self, port: Port, policy: _PortPolicy | None
                    ) -> tuple[list[Flow], dict[int, Meaning]]:
        kind = cookies.Kind.PORT
        stateful = policy.stateful if policy else False
        flows = [forwarding.classify_flow(port, stateful, kind),
                 *forwarding.unicast_flows(port, stateful, kind)]
        if policy is not None:
            flows.append(forwarding.hairpin_guard(port, kind))
            flows.extend(antispoof.spoof_flows(port, kind))
        label = f"port {port.port_id}"  # one string for all the port's meanings
        meanings: dict[int, Meaning] = dict.fromkeys((f.cookie for f in flows), label)
        if policy is None:
            return flows, meanings
        for template in self._templates_of(port.security_groups, policy):
            rule_flow, meaning = rules.instantiate(template, label, port.ofport)
            flows.append(rule_flow)
            meanings[rule_flow.cookie] = meaning
        return flows, meanings

    def _templates_of(self, groups: tuple[str, ...], policy: _PortPolicy
                      ) -> tuple[rules.RuleTemplate, ...]:
        """The rule flows of a set of groups without a port, made once per set."""
        key = (groups, policy.stateful)
        templates = self._templates.get(key)
        if templates is None:
            atoms = policy.atoms[Direction.INGRESS] + policy.atoms[Direction.EGRESS]
            templates = rules.templates(atoms, not policy.stateful, self._conj_ids_for(policy),
                                        self._atom_templates)
            self._templates[key] = templates
        return templates

    def _conj_ids_for(self, policy: _PortPolicy) -> dict[rules.ConjunctionKey, int]:
        """Conjunction ids of a policy's keys: stable hashes, see remote_groups.allocate_ids."""
        missing = policy.conj_keys - self.conj_ids.keys()
        if missing:
            self.conj_ids = remote_groups.allocate_ids(self.conj_ids.keys() | missing)
        return self.conj_ids

    # -- remote groups ---------------------------------------------------------------------------

    def _update_conjunctions(self, changes: Changes, old: HostModel, model: HostModel,
                             member_groups: set[str]) -> None:
        in_use = set(self._key_uses)
        self.conj_ids = remote_groups.allocate_ids(in_use)
        announced = self._announced
        if any(announced.get(k, v) != v for k, v in self.conj_ids.items()):
            # A hash collision moved an id: rare; rebuild every port with the new ids.
            self._templates.clear()
            self._atom_templates.clear()
            for port_id in sorted(self._ports):
                self._recompile_port(changes, model, port_id)
        gone = announced.keys() - self.conj_ids.keys()
        added = self.conj_ids.keys() - announced.keys()
        self._announced = dict(self.conj_ids)
        for key in gone:
            self._set(changes, remote_groups.owner_of_group(key), None)
        for key in added:
            conj_flow = remote_groups.conjunction_flow(key, self.conj_ids[key])
            self._set(changes, remote_groups.owner_of_group(key), (conj_flow,),
                      f"remote group {key[0]} {key[1].value} IPv{key[2]} "
                      f"(conjunction {self.conj_ids[key]})")
        # Addresses whose member flow may change: every member of a group whose use started or
        # stopped, and the old and new members of groups whose membership changed.
        addresses: set[tuple[Direction, int, str]] = set()
        for group_id, direction, ethertype in gone | added:
            for members in (old.members, model.members):
                addresses |= {(direction, ethertype, a)
                              for a in members.get(group_id, {}).get(ethertype, ())}
        used: dict[str, list[rules.ConjunctionKey]] = {}
        for key in self.conj_ids:
            used.setdefault(key[0], []).append(key)
        for group_id in member_groups:
            for _, direction, ethertype in used.get(group_id, ()):
                before = old.members.get(group_id, {}).get(ethertype, frozenset())
                after = model.members.get(group_id, {}).get(ethertype, frozenset())
                addresses |= {(direction, ethertype, a) for a in before ^ after}
                # the same address, now held on other networks
                was = old.member_networks.get(group_id, {}).get(ethertype, {})
                now = model.member_networks.get(group_id, {}).get(ethertype, {})
                addresses |= {(direction, ethertype, a) for a in was.keys() | now.keys()
                              if was.get(a) != now.get(a)}
        views = remote_groups.network_views(model.networks)
        if views != self._views:
            addresses |= self._addresses_to_review(model, views, used)
            self._views = views
        by_family: dict[tuple[Direction, int], list[tuple[str, int]]] = {}
        for (group_id, direction, ethertype), conj_id in self.conj_ids.items():
            by_family.setdefault((direction, ethertype), []).append((group_id, conj_id))
        holders = _holders(model, by_family, addresses) \
            if len(addresses) > INDEX_MEMBERS_ABOVE else None
        for direction, ethertype, address in sorted(addresses, key=str):
            owner = remote_groups.owner_of_member(direction, ethertype, address)
            if holders is not None:
                groups = holders.get((direction, ethertype, address), [])
            else:
                groups = [(cid, model.member_networks.get(group_id, {}).get(ethertype, {})
                           .get(address, frozenset()))
                          for group_id, cid in by_family.get((direction, ethertype), ())
                          if address in model.members.get(group_id, {}).get(ethertype, ())]
            flows, split = remote_groups.address_flows(direction, ethertype, address, groups,
                                                       views)
            if split:
                self._split.add((direction, ethertype, address))
            else:
                self._split.discard((direction, ethertype, address))
            self._set(changes, owner, flows or None, owner)

    def _addresses_to_review(self, model: HostModel, views: tuple[remote_groups.NetworkView,
                                                                   ...],
                             used: Mapping[str, list[rules.ConjunctionKey]]
                             ) -> set[tuple[Direction, int, str]]:
        """The local networks or their subnets changed: the addresses split now, and those
        with known networks that overlap a subnet of a network new or changed."""
        review = set(self._split)
        changed = [v for v in views if v not in self._views and v.subnets]
        if not changed or not model.member_networks:
            return review
        for group_id, by_ethertype in model.member_networks.items():
            for _, direction, ethertype in used.get(group_id, ()):
                for address in by_ethertype.get(ethertype, {}):
                    if any(remote_groups.overlaps_subnet(v, address) for v in changed):
                        review.add((direction, ethertype, address))
        return review

    # -- networks --------------------------------------------------------------------------------

    def _recompile_network(self, changes: Changes, model: HostModel, vlan: int) -> None:
        owner = network_owner(vlan)
        network = model.networks.get(vlan)
        members = [(port, policy.stateful if policy else False)
                   for port, policy in self._ports.values() if port.local_vlan == vlan]
        flows = forwarding.network_flows(network, members, cookies.Kind.NETWORK) \
            if network is not None else []
        self._set(changes, owner, tuple(flows) or None,
                  f"network {network.network_id} (local VLAN {vlan})" if network else "")

    # -- bookkeeping -------------------------------------------------------------------------------

    def _set(self, changes: Changes, owner: str, flows: tuple[Flow, ...] | None,
             meaning: str | Mapping[int, Meaning] = "") -> None:
        old = self.owners.pop(owner, None)
        for f in old or ():
            self.meanings.pop(f.cookie, None)
        if flows:
            self.owners[owner] = flows
            if isinstance(meaning, str):
                self.meanings.update((f.cookie, meaning) for f in flows)
            else:
                self.meanings.update(meaning)
        if old != (flows or None):
            changes[owner] = flows or None


INDEX_MEMBERS_ABOVE = 1000
"""Addresses to recompute beyond which the groups holding each are found by one pass over the
groups' members (a full compile: O(members)) instead of asking every group about each address
(a member change: O(groups) per address)."""


def _holders(model: HostModel, by_family: Mapping[tuple[Direction, int], list[tuple[str, int]]],
             addresses: set[tuple[Direction, int, str]]
             ) -> dict[tuple[Direction, int, str], list[tuple[int, frozenset[str]]]]:
    """address -> the (conjunction id, origin networks) of every group in use that holds it."""
    holders: dict[tuple[Direction, int, str], list[tuple[int, frozenset[str]]]] = {}
    for (direction, ethertype), family in by_family.items():
        for group_id, cid in family:
            origins = model.member_networks.get(group_id, {}).get(ethertype, {})
            for address in model.members.get(group_id, {}).get(ethertype, ()):
                key = (direction, ethertype, address)
                if key in addresses:
                    holders.setdefault(key, []).append(
                        (cid, origins.get(address, frozenset())))
    return holders


def _make_policy(model: HostModel, port_id: str, security_groups: tuple[str, ...]
                 ) -> _PortPolicy | PortError:
    group_rules: list[Rule] = []
    for sg_id in security_groups:
        if sg_id in model.group_errors:
            return PortError(port_id, model.group_errors[sg_id])
        if sg_id not in model.groups:
            return PortError(port_id, f"security group {sg_id} has no rules data")
        group_rules.extend(model.groups[sg_id])
    kinds = {rule.stateful for rule in group_rules}
    if len(kinds) > 1:
        return PortError(port_id, "mixes stateful and stateless security groups "
                                  f"({', '.join(security_groups)})")
    atoms = {d: normalize(group_rules, d) for d in Direction}
    keys = frozenset(key for by_direction in atoms.values() for atom in by_direction
                     if (key := rules.conjunction_key(atom)) is not None)
    return _PortPolicy(not kinds or kinds == {True}, atoms, keys)

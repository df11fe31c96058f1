"""Model in, flows out: the whole br-int pipeline for the ports of this host.

Flows are grouped by *owner* (the base pipeline, a port, a network, a remote group's conjunction,
one member address) so that the bridge programmer can recompute and diff one owner at a time.
A port whose input is bad, or whose compilation fails, owns no flows at all: its traffic stays
dropped and the error names it; every other port compiles.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from flows import antispoof, base, cookies, forwarding, remote_groups, rules
from flows.flow import Flow
from flows.model import Direction, HostModel, Port, PortError, Rule
from flows.normalize import Atom, normalize
from flows.parse import parse_host

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
    cookies: Mapping[int, str] = field(default_factory=dict)

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
        return _compile_host(parse_host(sg_info))


@dataclass
class _PortPolicy:
    stateful: bool
    atoms: dict[Direction, tuple[Atom, ...]]


def compile_host(model: HostModel) -> CompileResult:
    """Compile a validated model. Deterministic: the same model gives the same flows."""
    with _gc_paused():
        return _compile_host(model)


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


def _compile_host(model: HostModel) -> CompileResult:
    owners: dict[str, tuple[Flow, ...]] = {BASE_OWNER: tuple(base.base_flows())}
    meanings: dict[int, str] = {f.cookie: "base pipeline" for f in owners[BASE_OWNER]}
    errors = list(model.port_errors)
    policies = _policies(model)
    conj_ids = remote_groups.allocate_ids(
        key for policy in policies.values() for atoms in policy.atoms.values()
        for atom in atoms if (key := rules.conjunction_key(atom)) is not None)

    template_cache: dict[tuple, tuple[rules.RuleTemplate, ...]] = {}
    atom_cache: dict[tuple[str, bool], list[rules.RuleTemplate]] = {}
    compiled: list[tuple[Port, bool]] = []
    for port in _without_mac_clashes(model, errors):
        policy = policies.get(port.port_id)
        try:
            flows = _port_flows(port, policy, conj_ids, template_cache, atom_cache, meanings)
        except Exception as exc:  # noqa: BLE001 - one port's failure must not stop the others
            errors.append(PortError(port.port_id, f"compilation failed: {exc!r}"))
            continue
        owners[port_owner(port.port_id)] = tuple(flows)
        compiled.append((port, policy.stateful if policy else False))

    for vlan, network in sorted(model.networks.items()):
        members = [(port, stateful) for port, stateful in compiled if port.local_vlan == vlan]
        flows = forwarding.network_flows(network, members, cookies.Kind.NETWORK)
        if flows:
            owners[network_owner(vlan)] = tuple(flows)
            meanings.update((f.cookie, f"network {network.network_id} (local VLAN {vlan})")
                            for f in flows)

    for key, conj_id in conj_ids.items():
        conj_flow = remote_groups.conjunction_flow(key, conj_id)
        owners[remote_groups.owner_of_group(key)] = (conj_flow,)
        meanings[conj_flow.cookie] = (f"remote group {key[0]} {key[1].value} IPv{key[2]} "
                                      f"(conjunction {conj_id})")
    for owner, member in remote_groups.member_flows(conj_ids, model.members).items():
        owners[owner] = (member,)
        meanings.setdefault(member.cookie, owner)
    return CompileResult(owners=owners, errors=tuple(sorted(errors, key=lambda e: e.port_id)),
                         warnings=model.warnings, cookies=meanings)


def _policies(model: HostModel) -> dict[str, _PortPolicy]:
    """Normalised rules of every filtered port, computed once per set of security groups."""
    by_groups: dict[tuple[str, ...], _PortPolicy] = {}
    policies = {}
    for port in model.ports.values():
        if not port.port_security:
            continue
        policy = by_groups.get(port.security_groups)
        if policy is None:
            group_rules: list[Rule] = [rule for sg in port.security_groups
                                       for rule in model.groups[sg]]
            stateful = not group_rules or group_rules[0].stateful
            policy = _PortPolicy(stateful, {d: normalize(group_rules, d) for d in Direction})
            by_groups[port.security_groups] = policy
        policies[port.port_id] = policy
    return policies


def _without_mac_clashes(model: HostModel, errors: list[PortError]) -> list[Port]:
    """Ports in id order, minus those whose MAC another port of the network already has."""
    seen: dict[tuple[int, str], str] = {}
    ports = []
    for port_id in sorted(model.ports):
        port = model.ports[port_id]
        clash = next((seen[(port.local_vlan, mac)] for mac in port.macs
                      if (port.local_vlan, mac) in seen), None)
        if clash is not None:
            errors.append(PortError(port_id, f"a MAC of this port is used by port {clash} "
                                             "on the same network"))
            continue
        seen.update({(port.local_vlan, mac): port_id for mac in port.macs})
        ports.append(port)
    return ports


def _port_flows(port: Port, policy: _PortPolicy | None,
                conj_ids: Mapping[rules.ConjunctionKey, int],
                template_cache: dict[tuple, tuple[rules.RuleTemplate, ...]],
                atom_cache: dict[tuple[str, bool], list[rules.RuleTemplate]],
                meanings: dict[int, str]) -> list[Flow]:
    kind = cookies.Kind.PORT
    stateful = policy.stateful if policy else False
    flows = [forwarding.classify_flow(port, stateful, kind),
             *forwarding.unicast_flows(port, stateful, kind)]
    if policy is not None:
        flows.append(forwarding.hairpin_guard(port, kind))
        flows.extend(antispoof.spoof_flows(port, kind))
    meanings.update((f.cookie, f"port {port.port_id}") for f in flows)
    if policy is None:
        return flows
    key = (port.security_groups, stateful)
    templates = template_cache.get(key)
    if templates is None:
        atoms = policy.atoms[Direction.INGRESS] + policy.atoms[Direction.EGRESS]
        templates = rules.templates(atoms, not stateful, conj_ids, atom_cache)
        template_cache[key] = templates
    for template in templates:
        rule_flow, meaning = rules.instantiate(template, port.port_id, port.ofport)
        flows.append(rule_flow)
        meanings[rule_flow.cookie] = meaning
    return flows

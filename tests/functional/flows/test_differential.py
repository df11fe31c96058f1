"""Differential test: the compiled flows on a real switch agree with the reference evaluator.

Random models (groups, ports, members) and packets aimed at their edges; for each packet the
reference evaluator (tests/reference/, written from docs/security-groups.md and sharing no code
with flows/) says allow or deny, and ``ofproto/trace`` of the compiled flows must say the same:
an allowed egress packet leaves on its network's uplink and nowhere else, an allowed ingress
packet reaches the port and nowhere else, a denied one goes nowhere.

One bridge serves every example (``replace-flows`` per model, a batch of traces per load).
``DPAGENT_DIFF_EXAMPLES`` sets the example count (default 300, the CI minimum). A failure prints
the seed; ``DPAGENT_DIFF_SEED=<n>`` (or ``--hypothesis-seed=<n>``) replays it.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, note, seed, settings

from dpagent.diagnose.ofproto_trace import TraceVerdict, parse_dpif_show, parse_trace
from dpagent.lab.ovs_sandbox import OVSSandbox
from flows import compile_sg_info
from tests.reference.evaluator import Evaluator, Verdict
from tests.reference.minimise import minimise
from tests.reference.packets import EGRESS, Packet
from tests.reference.probes import packets_for
from tests.reference.strategies import (
    UPLINK_OFPORTS,
    VM_OFPORTS,
    invalid_models,
    scenarios,
)

EXAMPLES = int(os.environ.get("DPAGENT_DIFF_EXAMPLES") or 300)
#: Models with one broken port: fewer, the interesting part is small.
BAD_PORT_EXAMPLES = max(50, EXAMPLES // 6)
_SUPPRESSED = [HealthCheck.too_slow, HealthCheck.data_too_large,
               HealthCheck.large_base_example]
#: Hypothesis' shrinking re-traces whole batches and can outlast the test timeout; the failure
#: is shrunk by ``minimise`` instead. DPAGENT_DIFF_SHRINK=1 turns Hypothesis' shrinking back on.
_PHASES = [Phase.explicit, Phase.reuse, Phase.generate,
           *([Phase.shrink] if os.environ.get("DPAGENT_DIFF_SHRINK") else [])]


class TracingBridge:
    """The sandbox bridge with every port the strategies may name, and a fast tracer."""

    def __init__(self, sandbox: OVSSandbox, name: str) -> None:
        self.sandbox = sandbox
        self.name = name
        tag = name[-6:]
        for ofport in (*VM_OFPORTS, *UPLINK_OFPORTS):
            sandbox.add_port(name, f"d{tag}p{ofport}", type="internal", ofport_request=ofport)
        self._dp_to_ofport = parse_dpif_show(sandbox.appctl("dpif/show"), name)
        assert {*VM_OFPORTS, *UPLINK_OFPORTS} <= set(self._dp_to_ofport.values())
        # br-int's fragment handling, as the bridge programmer sets it (first fragments keep
        # their ports)
        sandbox.ofctl("set-frags", name, "nx-match")

    def load(self, flow_lines: list[str]) -> None:
        self.sandbox.replace_flows(self.name, "\n".join(flow_lines) + "\n")

    def trace(self, flow: str, ct_next: list[str] | None) -> TraceVerdict:
        args = ["ofproto/trace", self.name, flow]
        for state in ct_next or ():
            args += ["--ct-next", state]
        return parse_trace(self.sandbox.appctl(*args), self._dp_to_ofport)


@pytest.fixture
def tracing_bridge(ovs_sandbox: OVSSandbox, bridge: str) -> Iterator[TracingBridge]:
    yield TracingBridge(ovs_sandbox, bridge)


def _seed(request: pytest.FixtureRequest) -> int:
    chosen = os.environ.get("DPAGENT_DIFF_SEED") or request.config.getoption(
        "hypothesis_seed", default=None)
    return int(chosen) if chosen is not None else random.SystemRandom().getrandbits(64)


def _expected_port(model: dict[str, Any], packet: Packet) -> int:
    device = model["devices"][packet.port_id]
    if packet.direction == EGRESS:
        return int(model["networks"][device["network_id"]]["uplink"]["ofport"])
    return int(device["ofport"])


def _in_port(model: dict[str, Any], packet: Packet) -> int:
    device = model["devices"][packet.port_id]
    if packet.direction == EGRESS:
        return int(device["ofport"])
    return int(model["networks"][device["network_id"]]["uplink"]["ofport"])


def _error_mismatch(reference: Evaluator, result: Any) -> str | None:
    compiler_errors = {e.port_id: str(e) for e in result.errors}
    if set(compiler_errors) == set(reference.port_errors):
        return None
    return (f"ports in error differ: compiler {compiler_errors}, "
            f"reference {reference.port_errors}")


def _disagreements(bridge: TracingBridge, model: dict[str, Any],
                   packets: list[Packet]) -> list[tuple[Packet | None, str]]:
    """Compile, load, trace every packet: (packet, text) for each verdict that differs, or
    (None, text) when the two disagree on which ports are in error (nothing is traced then)."""
    reference = Evaluator(model)
    result = compile_sg_info(model)
    mismatch = _error_mismatch(reference, result)
    if mismatch:
        return [(None, mismatch)]
    bridge.load(result.flow_lines())
    problems = []
    for packet in packets:
        verdict = reference.evaluate(packet)
        flow = packet.to_trace_flow(_in_port(model, packet))
        traced = bridge.trace(flow, packet.ct_next())
        expected = (_expected_port(model, packet),) if verdict.allowed else ()
        if traced.output_ports != expected or traced.dropped == verdict.allowed:
            problems.append((packet, _describe(packet, flow, verdict, expected, traced)))
    return problems


def _describe(packet: Packet, flow: str, verdict: Verdict, expected: tuple[int, ...],
              traced: TraceVerdict) -> str:
    observed = "dropped" if traced.dropped else f"output to {list(traced.output_ports)}"
    return (f"{packet.describe()}\n"
            f"  reference: {'ALLOW' if verdict.allowed else 'DENY'} ({verdict.reason}); "
            f"expects {'output to ' + str(list(expected)) if expected else 'drop'}\n"
            f"  switch:    {observed}\n"
            f"  ovs-appctl ofproto/trace <br> '{flow}'"
            + "".join(f" --ct-next {s}" for s in packet.ct_next() or ()) + "\n"
            + "\n".join("    | " + line for line in traced.raw.splitlines()))


def _report(bridge: TracingBridge, run_seed: int, model: dict[str, Any],
            problems: list[tuple[Packet | None, str]], keep: tuple[str, ...] = ()) -> None:
    """Fail with the first disagreement shrunk to a minimal model, then everything found."""
    first, _ = problems[0]
    if first is None:
        def still_fails(candidate: dict[str, Any]) -> bool:
            found = _disagreements(bridge, candidate, [])
            return bool(found) and found[0][0] is None
    else:
        def still_fails(candidate: dict[str, Any]) -> bool:
            found = _disagreements(bridge, candidate, [first])
            return bool(found) and found[0][0] is not None
        keep = (*keep, first.port_id)
    small = minimise(model, still_fails, keep)
    shrunk = _disagreements(bridge, small, [] if first is None else [first])
    raise AssertionError(
        f"{len(problems)} disagreement(s) between the compiled flows and the reference "
        f"evaluator (seed {run_seed}: rerun with DPAGENT_DIFF_SEED={run_seed} or "
        f"--hypothesis-seed={run_seed})\n\n"
        f"MINIMAL EXAMPLE\nmodel: {json.dumps(small, sort_keys=True)}\n"
        + "\n".join(text for _, text in shrunk)
        + f"\n\nAS FOUND\nmodel: {json.dumps(model, sort_keys=True)}\n\n"
        + "\n\n".join(text for _, text in problems))


def test_compiled_flows_agree_with_reference(tracing_bridge: TracingBridge,
                                            request: pytest.FixtureRequest) -> None:
    run_seed = _seed(request)
    print(f"differential test: {EXAMPLES} examples, seed {run_seed}")

    @seed(run_seed)
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=False, print_blob=True,
              suppress_health_check=_SUPPRESSED, phases=_PHASES)
    @given(scenario=scenarios())
    def differential(scenario: tuple[dict[str, Any], list[Packet]]) -> None:
        model, packets = scenario
        note(f"seed {run_seed}")
        problems = _disagreements(tracing_bridge, model, packets)
        if problems:
            _report(tracing_bridge, run_seed, model, problems)

    differential()


def test_a_bad_port_is_closed_and_the_others_still_agree(tracing_bridge: TracingBridge,
                                                        request: pytest.FixtureRequest) -> None:
    """One port with an input error: the compiler names it, and on the switch its traffic is
    dropped both ways while every other port still agrees with the reference."""
    run_seed = _seed(request)
    print(f"bad-port differential test: {BAD_PORT_EXAMPLES} examples, seed {run_seed}")

    @seed(run_seed)
    @settings(max_examples=BAD_PORT_EXAMPLES, deadline=None, derandomize=False,
              print_blob=True, suppress_health_check=_SUPPRESSED, phases=_PHASES)
    @given(case=invalid_models().flatmap(
        lambda case: packets_for(case[0], 6, 12).map(lambda packets: (case, packets))))
    def bad_port(case: tuple[tuple[dict[str, Any], str, str], list[Packet]]) -> None:
        (model, bad_port_id, kind), packets = case
        note(f"seed {run_seed}; broken port {bad_port_id} ({kind})")
        problems = _disagreements(tracing_bridge, model, packets)
        if problems:
            _report(tracing_bridge, run_seed, model, problems, keep=(bad_port_id,))

    bad_port()

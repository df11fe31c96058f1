"""Property: one port with bad input is named in the errors, gets no flows, and spoils nothing else.

The models come from tests/reference/strategies.py: a valid host plus one port broken in one of
the ways docs/security-groups.md ("Input errors") lists. The reference evaluator must agree on
which ports are in error.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, given, settings

from flows import compile_sg_info
from tests.reference.evaluator import Evaluator
from tests.reference.strategies import invalid_models


def _mentions_ofport(line: str, ofport: int) -> bool:
    """A flow that matches or outputs to ``ofport`` (PORT register = reg5, flows/fields.py)."""
    return bool(re.search(rf"(in_port={ofport}|output:{ofport}|reg5={ofport:#x})(?![0-9a-fx])",
                          line))


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=invalid_models())
def test_a_broken_port_is_reported_alone_and_gets_no_flows(
        case: tuple[dict[str, Any], str, str]) -> None:
    model, bad_port_id, kind = case
    result = compile_sg_info(model)
    assert {e.port_id for e in result.errors} == {bad_port_id}, (kind, result.errors)
    assert set(Evaluator(model).port_errors) == {bad_port_id}, kind
    ofport = model["devices"][bad_port_id]["ofport"]
    leaked = [line for line in result.flow_lines() if _mentions_ofport(line, ofport)]
    assert leaked == [], (kind, leaked)

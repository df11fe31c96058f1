"""dpagent-controller and neutron-dpagent (the neutron-server extension) refuse admin_state_up
on the same agents with the same words. Neither may import the other (the extension runs in
neutron's environment), so the extension's pure module is loaded here by its path."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from dpagent.controller import agents

MODULE = Path(__file__).resolve().parents[3] / "neutron-dpagent" / "neutron_dpagent" / \
    "admin_state.py"


@pytest.fixture(scope="module")
def extension():
    spec = importlib.util.spec_from_file_location("neutron_dpagent_admin_state", MODULE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("agent_type", "configurations", "honoured"), [
    ("Open vSwitch agent", {"admin_state_up": True, "bridge_mappings": {}}, True),  # dpagent
    ("NIC Switch agent", {"admin_state_up": True}, True),
    ("Open vSwitch agent", {"bridge_mappings": {}}, False),  # neutron's own
    ("Open vSwitch agent", None, False),
    ("DHCP agent", {}, True),  # neutron schedules by it
    ("L3 agent", {"agent_mode": "legacy"}, True),
    ("Metadata agent", {}, False),
])
def test_one_rule(extension, agent_type, configurations, honoured):
    assert agents.honours_admin_state(agent_type, configurations) is honoured
    assert extension.honours_admin_state(agent_type, configurations) is honoured


def test_one_wording(extension):
    args = ("1e9f0c7a-agent", "Open vSwitch agent", "compute-7")
    assert agents.refusal(*args) == extension.refusal(*args)
    assert agents.ADMIN_STATE_KEY == extension.ADMIN_STATE_KEY
    assert "does not declare administrative state support" in agents.refusal(*args)


def test_cordoned_is_an_admin_down_agent_that_acts_on_it(extension):
    dpagent = {"configurations": {"admin_state_up": True}, "admin_state_up": False}
    assert extension.cordoned(dpagent)
    assert not extension.cordoned({**dpagent, "admin_state_up": True})
    assert not extension.cordoned({"configurations": {}, "admin_state_up": False})


def test_the_extension_imports_nothing_of_dpagent():
    """It runs inside neutron-server, where dpagent is not installed (the other direction is
    setup.cfg's import contract)."""
    import ast

    for path in MODULE.parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert name.split(".")[0] not in ("dpagent", "flows", "sriov", "tests"), \
                    f"{path.name} imports {name}"

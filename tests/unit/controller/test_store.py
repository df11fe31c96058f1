"""The SQLite store: a real file that survives the controller, with a versioned schema."""

from __future__ import annotations

import sqlite3

import pytest

from dpagent.controller.state import ControllerState
from dpagent.controller.store import SCHEMA_VERSION, Store, StoreError
from tests.unit.controller.conftest import port_id, sample


def dpagent_report(host: str) -> dict:
    return {"binary": "dpagent", "host": host, "topic": "N/A",
            "agent_type": "Open vSwitch agent", "configurations": {"admin_state_up": True}}


def test_a_restarted_controller_has_everything_it_answered(db_path):
    first = ControllerState(Store(db_path), agent_down_time=75)
    first.apply(sample())
    vm1 = port_id(first, "vm1")
    first.update_devices([vm1], [], "compute1")
    first.agents.report(dpagent_report("compute1"))
    (agent,) = first.agents.all()
    first.set_agent_admin_state(agent.id, False)
    first.store.close()

    second = ControllerState(Store(db_path), agent_down_time=75)
    assert second.topology == first.topology
    assert second.status_of(vm1) == "ACTIVE"
    (kept,) = second.agents.all()
    assert kept.id == agent.id and kept.admin_state_up is False
    assert kept.heartbeat_at == agent.heartbeat_at
    assert second.agents.report(dpagent_report("compute1")) == "alive"
    second.store.close()


def test_status_of_removed_ports_is_forgotten(db_path):
    state = ControllerState(Store(db_path), agent_down_time=75)
    state.apply(sample())
    vm1 = port_id(state, "vm1")
    state.update_devices([vm1], [], "compute1")
    doc = sample()
    doc["ports"] = [p for p in doc["ports"] if p["name"] != "vm1"]
    state.apply(doc)
    assert vm1 not in state.store.statuses()


def test_schema_is_versioned_and_a_newer_file_is_refused(db_path):
    store = Store(db_path)
    assert store.schema_version == SCHEMA_VERSION == 1
    store.close()
    raw = sqlite3.connect(db_path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1} is newer"):
        Store(db_path)


def test_not_a_database_is_refused_with_its_path(tmp_path):
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=str(path)):
        Store(str(path))


def test_a_failed_reload_changes_nothing(db_path):
    state = ControllerState(Store(db_path), agent_down_time=75)
    state.apply(sample())
    before = state.topology
    doc = sample()
    doc["ports"][0]["network"] = "nowhere"
    with pytest.raises(ValueError, match=r"ports\[vm1\]\.network"):
        state.apply(doc)
    assert state.topology == before == state.store.load_topology()

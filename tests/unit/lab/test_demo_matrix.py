"""The demo's expectations, matrix rendering and topology checks (no root, no processes)."""

from __future__ import annotations

import pytest

from dpagent.lab.demo import expected, layout, matrix


def test_the_embedded_topology_carries_the_demo():
    found = layout.load(layout.DEFAULT_TOPOLOGY)
    assert found.host == "compute1"
    assert found.bridge_mappings == {"physnet1": "br-physnet1"}
    assert found.vlan["net-b"] == 100 and found.vlan["net-a"] is None
    assert found.prefix_len == {"net-a": 24, "net-b": 24}


def test_a_topology_without_a_plugged_port_is_rejected_by_name(tmp_path):
    text = layout.DEFAULT_TOPOLOGY.read_text().replace("name: mon1", "name: monitor")
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(layout.LayoutError, match="mon1"):
        layout.load(path)


def test_the_external_hosts_network_must_be_a_provider_network(tmp_path):
    text = layout.DEFAULT_TOPOLOGY.read_text().replace("physnet: physnet1", "physnet: null")
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(layout.LayoutError, match="net-b"):
        layout.load(path)


def test_plan_covers_same_network_pairs_and_the_spoofer_only():
    cells = matrix.plan(["web1", "db1", expected.SPOOFER.label, "web2"],
                        ["web1", "db1", "web2"])
    keys = {(c.source, c.destination, c.service): c.expected for c in cells}
    assert keys[("web1", "db1", expected.PG)] is True
    assert keys[("db1", "web1", expected.PG)] is False
    assert keys[(expected.SPOOFER.label, "web1", expected.PING)] is False
    assert not any(c.source == "web2" or c.destination == "web2" for c in cells)  # net-b alone
    assert (expected.SPOOFER.label, "web1", expected.HTTP) not in keys


def test_an_isolated_vm_is_expected_unreachable_both_ways():
    cells = matrix.plan(["web1", "late"], ["web1", "late"], isolated=["late"])
    assert cells and all(c.expected is False for c in cells)
    open_cells = matrix.plan(["web1", "late"], ["web1", "late"])
    assert {c.service for c in open_cells if c.expected} == {expected.PING, expected.HTTP}


def test_render_marks_a_mismatch_and_explains_cells_with_a_story():
    cells = [matrix.Cell("web1", "db1", s, e, o) for s, e, o in
             [(expected.PING, False, False), (expected.HTTP, False, True),
              (expected.PG, True, True)]]
    text = matrix.render(cells, ["web1", "db1"], ["web1", "db1"])
    row = next(line for line in text.splitlines() if line.startswith("web1 "))
    assert row.split() == ["web1", ".", ".", ".", "-/-", "-/+!", "+/+"]
    assert "web1 -> db1 tcp/5432: +/+  db allows 5432 from the web group" in text
    assert [c.source for c in matrix.mismatches(cells)] == ["web1"]
    assert matrix.describe(cells[1]) == "web1 -> db1 tcp/80: expected blocked, observed reachable"

"""The vendored workload generator is the project's, unchanged."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COPY = ROOT / "tests" / "workloads" / "gen.py"
ORIGINAL = ROOT.parent / "shared" / "workloads" / "gen.py"


def test_the_copy_is_the_original():
    if not ORIGINAL.exists():
        pytest.skip(f"{ORIGINAL} is not beside this clone")
    assert COPY.read_bytes() == ORIGINAL.read_bytes(), "re-copy ../shared/workloads/gen.py"

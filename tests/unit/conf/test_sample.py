"""etc/dpagent.conf.sample must be what the generator makes of the options."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TOP = Path(__file__).resolve().parents[3]


def test_sample_config_is_up_to_date(tmp_path):
    out = tmp_path / "dpagent.conf.sample"
    subprocess.run(
        [sys.executable, "-m", "oslo_config.generator",
         "--config-file", str(TOP / "etc/oslo-config-generator/dpagent.conf"),
         "--output-file", str(out)],
        check=True, cwd=TOP,
    )
    committed = (TOP / "etc/dpagent.conf.sample").read_text()
    assert out.read_text() == committed, (
        "etc/dpagent.conf.sample is stale: regenerate it with `tox -e genconfig`"
    )

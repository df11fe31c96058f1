"""The shipped unit file is valid for systemd (when systemd-analyze is available)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[3] / "systemd" / "dpagent.service"


def test_unit_runs_the_daemon_as_a_notify_service():
    text = UNIT.read_text()
    assert "Type=notify" in text and "Restart=on-failure" in text
    assert "After=network-online.target openvswitch-switch.service" in text
    assert "ExecStart=/usr/local/bin/dpagent --config-file" in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    daemon = Path(sys.executable).parent / "dpagent"
    if not daemon.exists():
        pytest.skip("the dpagent console script is not installed in this environment")
    unit = tmp_path / "dpagent.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/dpagent", str(daemon)))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                            text=True)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if "dpagent.service" in line]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr

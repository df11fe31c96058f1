"""The ``dpagent`` command line: the options distributions' units pass are accepted, ``--help``
lists every option, ``--version`` answers. Each run is a fresh process (the command chooses
oslo.service's backend once per process)."""

from __future__ import annotations

import subprocess
import sys


def dpagent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dpagent.cmd.agent", *args],
                          capture_output=True, text=True, timeout=60)


def test_oslo_log_options_are_accepted(tmp_path):
    missing = tmp_path / "missing.conf"
    result = dpagent("--debug", "--log-file", str(tmp_path / "agent.log"),
                     "--config-file", str(missing))
    assert "unrecognized arguments" not in result.stderr
    assert result.returncode == 2 and str(missing) in result.stderr, result.stderr


def test_help_lists_every_option():
    result = dpagent("--help")
    assert result.returncode == 0, result.stderr
    for option in ("--config-file", "--debug", "--log-file", "--version"):
        assert option in result.stdout, option


def test_version_answers():
    result = dpagent("--version")
    assert result.returncode == 0
    assert (result.stdout + result.stderr).strip()

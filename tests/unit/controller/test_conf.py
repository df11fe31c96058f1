"""The controller's options: defaults an operator relies on, and the sample kept in sync."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from oslo_config import cfg

from dpagent.conf.controller import list_opts, register_controller_opts

TOP = Path(__file__).resolve().parents[3]


def test_defaults_listen_on_loopback_with_neutrons_down_time():
    conf = cfg.ConfigOpts()
    register_controller_opts(conf)
    conf(args=[], default_config_files=[])
    assert conf.controller.api_host == "127.0.0.1"
    assert conf.controller.api_port == 9696
    assert conf.controller.agent_down_time == 75
    assert conf.controller.rpc_fault_rate == 0.0
    assert conf.controller.rpc_fault_kinds == ["error", "timeout"]
    assert all(opt.help for _, opts in list_opts() for opt in opts)


@pytest.mark.parametrize("text", ["rpc_fault_rate = 1.5", "rpc_fault_kinds = error,crash"])
def test_fault_options_outside_their_range_are_refused(tmp_path, text):
    conf = cfg.ConfigOpts()
    register_controller_opts(conf)
    path = tmp_path / "controller.conf"
    path.write_text(f"[controller]\n{text}\n")
    conf(args=["--config-file", str(path)], default_config_files=[])
    with pytest.raises(ValueError):
        getattr(conf.controller, text.split(" = ")[0])


def test_sample_config_is_up_to_date(tmp_path):
    out = tmp_path / "dpagent-controller.conf.sample"
    subprocess.run([sys.executable, "-m", "oslo_config.generator", "--config-file",
                    str(TOP / "etc/oslo-config-generator/dpagent-controller.conf"),
                    "--output-file", str(out)], check=True, cwd=TOP)
    assert out.read_text() == (TOP / "etc/dpagent-controller.conf.sample").read_text(), (
        "etc/dpagent-controller.conf.sample is stale: regenerate it with oslo-config-generator "
        "--config-file etc/oslo-config-generator/dpagent-controller.conf")

"""The configuration checks made before the daemon forks (no root, no services needed)."""

from __future__ import annotations

from oslo_config import cfg

from dpagent.conf import register_opts
from dpagent.daemon import preflight


def parsed(tmp_path, text):
    path = tmp_path / "dpagent.conf"
    path.write_text(text)
    conf = cfg.ConfigOpts()
    register_opts(conf)
    conf(["--config-file", str(path)], project="dpagent", default_config_files=[],
         default_config_dirs=[])
    return conf, path


def test_a_value_that_does_not_parse_is_named(tmp_path):
    conf, _ = parsed(tmp_path, "[agent]\nreport_interval = soon\n[ovs]\nof_request_timeout = x\n")
    problems = preflight.option_values(conf)
    assert [p.split(":")[0] for p in problems] == ["[agent] report_interval",
                                                    "[ovs] of_request_timeout"]


def test_unknown_options_of_dpagents_groups_only_are_named(tmp_path):
    conf, path = parsed(tmp_path, "[DEFAULT]\nsomething_of_a_library = 1\n"
                        "[agent]\nreport_interval = 3\nreprot_interval = 3\n"
                        "[oslo_messaging_rabbit]\nanything = 1\n")
    assert preflight.unknown_options(preflight.config_files(conf)) == [
        f"{path}: [agent] reprot_interval: no such option, ignored"]


def test_a_socket_path_is_judged_before_the_worker_binds_it(tmp_path):
    (tmp_path / "file").write_text("")
    assert preflight.socket_path("[agent] status_socket", str(tmp_path / "new/dir/s.sock")) == []
    assert "is not a directory" in preflight.socket_path(
        "[agent] status_socket", str(tmp_path / "file/s.sock"))[0]
    assert "at most 107" in preflight.socket_path(
        "[agent] status_socket", str(tmp_path / ("x" * 110) / "s.sock"))[0]


def test_the_log_destination_must_be_writable(tmp_path):
    assert preflight.log_destination(None, None) == []
    assert preflight.log_destination(str(tmp_path / "dpagent.log"), None) == []
    assert preflight.log_destination("dpagent.log", str(tmp_path)) == []
    assert preflight.log_destination(None, str(tmp_path / "missing")) == [
        f"[DEFAULT] log_dir: the directory {tmp_path / 'missing'} does not exist"]

"""``[agent] metrics_listen``: off unless set; HOST:PORT or [IPv6]:PORT; anything else is a
configuration error that names the option before the daemon forks."""

from __future__ import annotations

import pytest
from oslo_config import cfg

from dpagent.conf import register_opts
from dpagent.conf.agent import split_listen
from dpagent.daemon import preflight


def loaded(tmp_path, value):
    path = tmp_path / "dpagent.conf"
    path.write_text(f"[agent]\nmetrics_listen = {value}\n")
    conf = cfg.ConfigOpts()
    register_opts(conf)
    conf(["--config-file", str(path)], project="dpagent", default_config_files=[],
         default_config_dirs=[])
    return conf


def test_off_by_default():
    conf = cfg.ConfigOpts()
    register_opts(conf)
    conf(args=[], default_config_files=[])
    assert conf.agent.metrics_listen == ""


@pytest.mark.parametrize(("value", "address"), [
    ("127.0.0.1:9100", ("127.0.0.1", 9100)),
    ("0.0.0.0:9100", ("0.0.0.0", 9100)),
    ("[::1]:9100", ("::1", 9100)),
    ("[::]:0", ("::", 0)),
    ("mgmt.compute1.example.org:9100", ("mgmt.compute1.example.org", 9100)),
])
def test_an_address_and_port(tmp_path, value, address):
    conf = loaded(tmp_path, value)
    assert conf.agent.metrics_listen == value
    assert split_listen(conf.agent.metrics_listen) == address
    assert preflight.option_values(conf) == []


@pytest.mark.parametrize(("value", "says"), [
    ("9100", "is not HOST:PORT"),
    (":9100", "is not HOST:PORT"),
    ("127.0.0.1", "is not HOST:PORT"),
    ("::1:9100", "put an IPv6 address in brackets"),
    ("[10.0.0.1]:9100", "in brackets is not an IPv6 address"),
    ("127.0.0.1:http", "the port must be a number from 0 to 65535"),
    ("127.0.0.1:65536", "the port must be a number from 0 to 65535"),
    ("not_a_host!:9100", "is not an IP address or host name"),
])
def test_anything_else_is_refused_naming_the_option(tmp_path, value, says):
    conf = loaded(tmp_path, value)
    with pytest.raises(ValueError, match=says):
        conf.agent.metrics_listen  # noqa: B018 - oslo.config converts when read
    (problem,) = preflight.option_values(conf)
    assert problem.startswith("[agent] metrics_listen: ") and says in problem

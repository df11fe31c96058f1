"""Fixtures for the RPC unit tests: a private conf and oslo.messaging's in-memory broker."""

from __future__ import annotations

from collections.abc import Iterator

import oslo_messaging
import pytest
from oslo_config import cfg
from oslo_messaging._drivers import impl_fake

from dpagent import conf as dpagent_conf
from dpagent.lab.control_plane import ControlPlaneDouble
from dpagent.rpc.transport import make_transport

HOST = "compute1"


@pytest.fixture(autouse=True)
def _empty_fake_broker() -> Iterator[None]:
    # fake:// keeps its exchanges in a class attribute shared by every transport of the
    # process: a call left unanswered by one test would be consumed by the next.
    impl_fake.FakeExchangeManager.cleanup()
    yield
    impl_fake.FakeExchangeManager.cleanup()


@pytest.fixture
def conf() -> cfg.ConfigOpts:
    """A private ConfigOpts (never the global), host compute1, short report interval."""
    c = cfg.ConfigOpts()
    dpagent_conf.register_opts(c)
    c(args=[], default_config_files=[])
    c.set_override("host", HOST, group="agent")
    c.set_override("report_interval", 2, group="agent")
    c.set_override("rpc_response_timeout", 2)
    c.set_override("bridge_mappings", {"physnet1": "br-phys"}, group="ovs")
    return c


@pytest.fixture
def transport(conf: cfg.ConfigOpts) -> Iterator[oslo_messaging.Transport]:
    t = make_transport(conf, "fake://")
    yield t
    t.cleanup()


@pytest.fixture(scope="module")
def _double_of_the_module() -> Iterator[ControlPlaneDouble]:
    # One per module: stopping an RPC server takes up to a second (idle worker threads)
    with ControlPlaneDouble("fake://") as cp:
        yield cp


@pytest.fixture
def double(_double_of_the_module: ControlPlaneDouble) -> ControlPlaneDouble:
    """The control-plane double on the in-memory broker, reset (agent_down_time 75 s)."""
    _double_of_the_module.reset()
    return _double_of_the_module

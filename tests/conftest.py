"""Fixtures for tests on a real switch, real namespaces and a real broker.

Everything under tests/functional/ is marked ``functional``.  Those tests need
root and the Debian packages that tools/setup-deps.sh installs; without them
they skip with the reason -- except under CI (``CI`` set), where a skipped
functional test would hide a broken rig, so they fail instead.

At the end of the session every process the run started (found by the
``DPAGENT_LAB_SESSION`` tag in its environment) and every namespace it
created must be gone; otherwise the run fails and the leftovers are removed.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from dpagent.agent.ovsdb import Ovsdb
from dpagent.lab import resources
from dpagent.lab.netns import NetnsVM
from dpagent.lab.ovs_sandbox import REQUIRED_BINARIES as OVS_BINARIES
from dpagent.lab.ovs_sandbox import OVSSandbox
from dpagent.lab.rabbit import REQUIRED_BINARIES as RABBIT_BINARIES
from dpagent.lab.rabbit import RabbitBroker

FUNCTIONAL = Path(__file__).parent / "functional"
NEUTRON = Path(__file__).parent / "neutron"  # against a real neutron-server: root too
_SESSION = pytest.StashKey[str]()


def pytest_sessionstart(session: pytest.Session) -> None:
    session.stash[_SESSION] = resources.mark_session()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if FUNCTIONAL in item.path.parents or NEUTRON in item.path.parents:
            item.add_marker(pytest.mark.functional)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    leftovers = resources.find_leftovers(session.stash[_SESSION])
    if not leftovers:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = "\nLEAK: the test run left these behind (now removed):\n" + leftovers.describe()
    if reporter is not None:
        reporter.write_line(message, red=True, bold=True)
    else:
        print(message)
    resources.remove_leftovers(leftovers)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _require(what: str, binaries: Sequence[str]) -> None:
    problems = [] if os.geteuid() == 0 else ["root"]
    problems += [b for b in binaries if shutil.which(b) is None]
    if not problems:
        return
    reason = f"{what} needs {', '.join(problems)} (run as root after tools/setup-deps.sh)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; under CI every functional test must run", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def ovs_sandbox() -> Iterator[OVSSandbox]:
    """A private ovsdb-server + ovs-vswitchd shared by the whole session."""
    _require("a private Open vSwitch", [*OVS_BINARIES, "ethtool", "ping"])
    with OVSSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def ovsdb(ovs_sandbox: OVSSandbox) -> Iterator[Ovsdb]:
    """dpagent's OVSDB connection (ovsdbapp) to the session's switch."""
    connection = Ovsdb(ovs_sandbox.db_connection, 10)
    yield connection
    connection.stop()


@pytest.fixture
def bridge(ovs_sandbox: OVSSandbox) -> Iterator[str]:
    """A fresh netdev bridge (fail_mode=secure, so no flows = no traffic)."""
    name = f"br-{uuid.uuid4().hex[:8]}"
    ovs_sandbox.add_bridge(name)
    try:
        yield name
    finally:
        ovs_sandbox.del_bridge(name)


@pytest.fixture
def netns_vm(
    request: pytest.FixtureRequest, ovs_sandbox: OVSSandbox
) -> Iterator[Callable[..., NetnsVM]]:
    """Factory: ``netns_vm("a", ipv4=["10.0.0.1/24"])`` -> a plugged NetnsVM.

    Keyword arguments are those of ``NetnsVM``; ``bridge`` defaults to this
    test's ``bridge`` fixture and ``mac`` to a random fa:16:3e MAC.  Every VM
    is destroyed after the test, whether it passed or not.
    """
    vms: list[NetnsVM] = []

    def make(name: str, *, bridge: str | None = None, mac: str | None = None,
             **kwargs: object) -> NetnsVM:
        vm = NetnsVM(
            ovs_sandbox,
            bridge or request.getfixturevalue("bridge"),
            name,
            mac or "fa:16:3e:" + ":".join(f"{b:02x}" for b in os.urandom(3)),
            **kwargs,  # type: ignore[arg-type]
        )
        vms.append(vm)
        return vm

    try:
        yield make
    finally:
        for vm in reversed(vms):
            vm.destroy()


@pytest.fixture(scope="session")
def rabbit_broker() -> Iterator[RabbitBroker]:
    """The DPAGENT_TEST_TRANSPORT_URL broker, or a private RabbitMQ node."""
    broker = RabbitBroker.from_env()
    if broker.external_url is None:
        _require("a private RabbitMQ", RABBIT_BINARIES)
    with broker:
        yield broker


@pytest.fixture
def transport_url(rabbit_broker: RabbitBroker) -> Iterator[str]:
    """oslo.messaging URL of a vhost and user of this test's own."""
    vhost = rabbit_broker.new_vhost()
    try:
        yield vhost.transport_url
    finally:
        vhost.delete()

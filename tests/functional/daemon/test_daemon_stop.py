"""SIGTERM as systemd sends it: the daemon stops consuming and reporting, leaves br-int as it
is, removes its fanout queues, closes its broker connections without a message arriving on a
closing channel, and exits 0.  The time the stop took is printed (``-s``), not asserted."""

from __future__ import annotations

import signal
import time
import uuid
from urllib.parse import urlsplit

import pytest

from dpagent.daemon.status import query
from dpagent.lab.control_plane import ControlPlaneDouble
from sriov.testing import FakeSysfsTree
from tests.functional.controller.controller_process import ControllerProcess
from tests.functional.daemon.test_daemon import clean_up, start_daemon, wait_for


def synced(status_socket):
    try:
        return query(str(status_socket)).get("last_sync") is not None
    except OSError:
        return False


def agent_queues(rabbit_broker, transport_url):
    """The vhost's queues the agent consumes (notifier topics, its own, the trunk pushes), by
    consumer count; None with an external broker, whose rabbitmqctl is not ours."""
    if rabbit_broker.external_url is not None:
        return None
    vhost = urlsplit(transport_url).path.lstrip("/")
    listed = rabbit_broker.rabbitmqctl("list_queues", "-p", vhost, "name", "consumers")
    rows = (line.split() for line in listed.splitlines())
    return {row[0]: int(row[1]) for row in rows
            if len(row) == 2 and row[1].isdigit()
            and row[0].startswith(("q-agent-notifier-", "dpagent", "neutron-vo-"))
            and not row[0].startswith("dpagent-plugin")}  # the server's (the double's)


def run_then_sigterm(tmp_path, ovs_sandbox, rabbit_broker, transport_url, host, backend,
                     extra=""):
    """Start the daemon, let it sync and idle, SIGTERM it; check how it ended."""
    bridge = f"br-s{uuid.uuid4().hex[:6]}"
    # the default report interval: the reply queue idles between reports as in production
    daemon = start_daemon(tmp_path, ovs_sandbox, transport_url, host, bridge, backend,
                          report_interval=30, extra=extra)
    try:
        wait_for(lambda: synced(tmp_path / "status.sock"), timeout=30, what="first sync")
        time.sleep(6)  # long enough for idle consumers' polls to grow to their longest
        before = agent_queues(rabbit_broker, transport_url)
        assert before is None or any(name.endswith(f".{host}") for name in before)
        flows_before = ovs_sandbox.dump_flows(bridge)

        started = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        status = daemon.wait(timeout=60)
        print(f"\n{backend}{' with SR-IOV' if extra else ''}: exited "
              f"{time.monotonic() - started:.2f} s after SIGTERM")

        log = (tmp_path / "dpagent.log").read_text()
        assert status == 0, daemon.stderr.read() if daemon.stderr else ""
        assert [line for line in log.splitlines() if "Received method" in line] == []
        assert "dpagent stopped" in log
        assert ovs_sandbox.dump_flows(bridge) == flows_before  # the dataplane is left as it is
        after = agent_queues(rabbit_broker, transport_url)
        if after is not None:
            assert [name for name in after if "_fanout_" in name] == []  # deleted on close
            assert {name: n for name, n in after.items() if n} == {}  # nobody consumes
            assert any(name.endswith(f".{host}") for name in after)  # casts wait for a restart
    finally:
        clean_up(daemon, ovs_sandbox, bridge)


@pytest.mark.parametrize("backend", ["threading", "eventlet"])
def test_sigterm_stops_cleanly(backend, tmp_path, ovs_sandbox, rabbit_broker, transport_url):
    with ControlPlaneDouble(transport_url):
        run_then_sigterm(tmp_path, ovs_sandbox, rabbit_broker, transport_url,
                         f"compute-{uuid.uuid4().hex[:6]}", backend)


def test_sigterm_stops_cleanly_with_the_sriov_side(tmp_path, ovs_sandbox, rabbit_broker,
                                                   transport_url):
    """The SR-IOV side adds its reporter and the trunk pushes' consumers (on a fake PF)."""
    tree = FakeSysfsTree(tmp_path / "sys")
    tree.add_pf("dpafake0", "0000:07:00.0", kernel_driver="i40e", num_vfs=2)
    tree.set_module_version("i40e", "2.22.18")
    controller = ControllerProcess(tmp_path, transport_url, topology={"version": 1}).start()
    try:
        run_then_sigterm(tmp_path, ovs_sandbox, rabbit_broker, transport_url,
                         f"compute-{uuid.uuid4().hex[:6]}", "threading",
                         extra=f"\n[sriov]\nphysical_device_mappings = physnet2:dpafake0\n"
                               f"sysfs_root = {tree.root}\n")
    finally:
        controller.stop()

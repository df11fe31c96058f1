"""Launch the agent service with oslo.service, with SIGHUP reloading in place on both backends.

oslo.service's eventlet backend answers SIGHUP the way OpenStack agents always did: mutate the
configuration files, then call the service's ``reset()``. Its threading backend runs the service
in a cotyledon worker process, and cotyledon's default answer to SIGHUP in a worker is to end it
and fork a fresh one (the oslo.config glue prepares an in-place reload but never attaches it).
For dpagent a restart would mean a full resynchronisation and a new ``start_flag`` heartbeat for
an operator who only wanted to raise the log level, so the worker's reload is attached here: the
worker re-reads its configuration files (mutable options only, oslo.config warns about the
rest) and calls ``reset()``, in the same process, with the same OpenFlow and RPC connections.

A worker that exits with :data:`CONFIG_ERROR` found a mistake in the configuration that only
start-up could find: forking it again would fail the same way, forever, while systemd sees a
running unit. The master then shuts down and :func:`run` returns that code, for systemd.
"""

from __future__ import annotations

import logging
from typing import Any

from oslo_config import cfg

LOG = logging.getLogger(__name__)

CONFIG_ERROR = 2
"""Exit status of a daemon (or its worker) stopped by a configuration error."""


def _attach_in_place_reload(conf: cfg.ConfigOpts, launcher: Any) -> None:
    """Make each cotyledon worker reload the configuration and reset the service on SIGHUP."""
    manager = getattr(launcher, "_manager", None)
    if manager is None or not hasattr(manager, "register_hooks"):
        return  # not the cotyledon-based launcher: oslo.service resets the service itself

    def on_new_worker(service_id: Any, worker_id: Any, wrapper: Any) -> None:
        def reload() -> None:
            conf.mutate_config_files()
            wrapper.service_instance.reset()

        wrapper.reload = reload

    manager.register_hooks(on_new_worker=on_new_worker)


def _stop_on_config_error(launcher: Any, outcome: list[int]) -> None:
    """Shut the master down, not fork again, when its worker exits with CONFIG_ERROR."""
    manager = getattr(launcher, "_manager", None)
    if manager is None or not hasattr(manager, "register_hooks"):
        return  # the service runs in this process: its exit is the daemon's

    def on_dead_worker(service_id: Any, worker_id: Any, exit_code: int) -> None:
        if exit_code == CONFIG_ERROR:
            outcome.append(exit_code)
            manager.shutdown()  # returns once the master is shutting down: no new fork

    manager.register_hooks(on_dead_worker=on_dead_worker)


def run(conf: cfg.ConfigOpts, service: Any) -> int:
    """Run ``service`` under oslo.service (one worker) until it ends; the exit status."""
    from oslo_service import service as oslo_service

    launcher = oslo_service.launch(conf, service, workers=1, restart_method="mutate")
    _attach_in_place_reload(conf, launcher)
    outcome: list[int] = []
    _stop_on_config_error(launcher, outcome)
    try:
        launcher.wait()
    except SystemExit:  # cotyledon's master ends with sys.exit(0)
        if not outcome:
            raise
    # the threading backend's worker is another process: its dead-worker hook told us; the
    # eventlet backend ran the service here
    return outcome[0] if outcome else int(getattr(service, "exit_status", 0))

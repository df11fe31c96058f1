"""The heartbeat: ``report_state`` every ``report_interval`` seconds, on its own thread.

The server binds ports only to agents whose last report is younger than its
``agent_down_time`` (75 s), so the heartbeat must keep going whatever else the agent is
doing -- hence its own thread, and a timeout no longer than the interval.

What the reply means (CONTRACT.md 1.1, DESIGN.md 2):

* ``'alive'`` -- nothing to do.
* ``'revived'`` -- the server had considered the agent dead: it may have missed
  notifications, so the agent must resync everything (``on_resync('revived')``).
* ``'new'`` -- the server created the agent record.  Expected on the very first report
  of a new host; if this reporter had already been answered before, the record was
  deleted while the agent was alive (``DELETE /v2.0/agents/<id>``): resync too
  (``on_resync('new')``).  neutron's own agent resyncs only on ``'revived'``.
* a success after the broker was unreachable (a report could not even be published):
  casts to this agent were lost meanwhile -- fanout queues do not survive a broker
  restart -- so resync (``on_resync('reconnected')``).  Only a failure to *publish*
  counts: a merely slow server (timeouts) does not trigger it, so an overloaded server
  is not hit by every agent's full resync at once.  Pass ``resync_on_reconnect=False``
  to get neutron's behaviour.  A broker restart that falls between two reports goes
  unnoticed here (oslo.messaging tells nobody when a consumer reconnects): the consumers'
  own watch notices it (:mod:`dpagent.rpc.reconnects`).
* ``None`` -- the server dropped the report (its ``time`` predates the server's start):
  counted as a failure and retried soon.

While the server or broker is unreachable the reporter retries with exponential backoff
(1 s, 2 s, 4 s... capped at the interval), never raises, and keeps its last good result;
:meth:`StateReporter.status` exposes result, times and last error for a status page.
With the broker down an attempt can take longer than the timeout: oslo.messaging's
publisher waits for the pooled connection, whose heartbeat thread holds it while it
reconnects (measured: about 6 s per attempt with the default rabbit retry settings).
``start_flag`` and ``resource_versions`` are sent until a report succeeds, as neutron's
agent does.

While ``health()`` names a problem (the agent cannot do its job: br-int cannot be
programmed) no report is sent at all, as neutron's agent sends none while OVS is dead: an
agent that cannot wire ports must not look alive to the server, which would bind new ports
to it.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import oslo_messaging
from oslo_config import cfg

from dpagent.overlay.config import options_from_conf, overlay_settings
from dpagent.rpc import topics
from dpagent.rpc.errors import BrokerUnreachable, ControlPlaneError, InvalidReply
from dpagent.rpc.transport import call, rpc_client

LOG = logging.getLogger(__name__)

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"  # neutron's ISO8601_TIME_FORMAT, UTC
REPLIES = ("new", "alive", "revived")
AGENT_DOWN_TIME = 75.0
"""neutron's default ``agent_down_time``: without a report for this long the server counts
the agent dead (the agent cannot ask the server for its setting)."""

ResyncCallback = Callable[[str], None]
"""Called with ``'revived'``, ``'new'`` or ``'reconnected'`` when the agent must resync
everything; runs on the reporter's thread, so it must only mark the work."""

HealthCallback = Callable[[], str | None]
"""Why the agent must not report now (it cannot do its job), or None when it can."""

StateCallback = Callable[[], Mapping[str, Any]]
"""Returns extra ``configurations`` for the next report (e.g. ``devices``,
``admin_state_up``); its keys override the reporter's own."""


@dataclass(frozen=True)
class ReportStatus:
    """A snapshot of the heartbeat for a status page (times are ``time.time()``)."""

    last_result: str | None  # last reply of the server ('new', 'alive', 'revived')
    last_success: float | None
    last_attempt: float | None
    last_error: str | None  # why the last attempt failed; None if it succeeded
    consecutive_failures: int
    registered: bool  # the server has answered this reporter at least once
    reports: int  # successful reports
    withheld: str | None = None  # why reports are not being sent now (see StateReporter)


def agent_configurations(conf: cfg.ConfigOpts) -> dict[str, Any]:
    """The ``configurations`` neutron reads from an OVS agent, from dpagent's options.

    neutron's ML2 openvswitch driver needs ``bridge_mappings`` to bind VLAN/flat ports and
    turns ``integration_bridge``, ``datapath_type`` and ``ovs_hybrid_plug`` into the
    port's ``vif_details``; it binds a tunnelled network's port only if the network's type
    is in ``tunnel_types``, and l2population finds the host's endpoint in ``tunneling_ip``
    (None without tunnels, so that l2pop never counts this host).  ``devices`` and
    ``admin_state_up`` are placeholders the agent core overrides through the state callback.
    """
    firewall = (conf.securitygroup.firewall_driver if conf.securitygroup.enable_security_group
                else "noop")
    overlay, _ = overlay_settings(options_from_conf(conf))
    return {
        "bridge_mappings": dict(conf.ovs.bridge_mappings),
        "integration_bridge": conf.ovs.integration_bridge,
        "datapath_type": conf.ovs.datapath_type,
        "ovs_hybrid_plug": False,
        "tunnel_types": list(overlay.tunnel_types),
        "tunneling_ip": overlay.local_ip,
        "l2_population": overlay.l2_population,
        "arp_responder_enabled": overlay.arp_responder,
        "enable_distributed_routing": False,
        "in_distributed_mode": False,
        "extensions": [],
        "firewall": firewall,
        "devices": 0,
        "admin_state_up": True,
    }


def sriov_agent_configurations(device_mappings: Mapping[str, list[str]]) -> dict[str, Any]:
    """The ``configurations`` of the SR-IOV side's own agent record (``NIC Switch agent``):
    neutron's SR-IOV mechanism driver binds a ``direct`` port to a host only if a live agent
    of that type there has the port's physnet in ``device_mappings``."""
    return {
        "device_mappings": {physnet: list(pfs) for physnet, pfs in device_mappings.items()},
        "devices": 0,
        "extensions": [],
        "resource_provider_bandwidths": {},
        "resource_provider_hypervisors": {},
        "resource_provider_inventory_defaults": {"allocation_ratio": 1.0, "min_unit": 1,
                                                 "step_size": 1, "reserved": 0},
        "admin_state_up": True,
    }


def utc_timestamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime(TIME_FORMAT)


class StateReporter:
    """Reports the agent's state to ``q-reports-plugin`` (1.4, call) until stopped."""

    def __init__(self, transport: oslo_messaging.Transport, host: str, *, interval: float,
                 timeout: float | None = None, configurations: Mapping[str, Any] | None = None,
                 state_callback: StateCallback | None = None,
                 on_resync: ResyncCallback | None = None,
                 health: HealthCallback | None = None,
                 agent_type: str = topics.AGENT_TYPE_OVS, binary: str = topics.BINARY,
                 min_backoff: float = 1.0, resync_on_reconnect: bool = True) -> None:
        self.host = host
        self.interval = interval
        self.timeout = min(timeout or interval, interval)
        self.configurations = dict(configurations or {})
        self.state_callback = state_callback
        self.on_resync = on_resync
        self.health = health
        self.agent_type = agent_type
        self.binary = binary
        self.min_backoff = min_backoff
        self.resync_on_reconnect = resync_on_reconnect
        self._broker_lost = False
        self._silent = False
        """reports were withheld, or none got through for ``agent_down_time``, since the
        last success: the server may count the agent dead (see :meth:`_attempt`)"""
        self._transport = transport
        self._requested_timeout = timeout
        self._client = rpc_client(transport, topics.REPORTS, topics.REPORTS_VERSION,
                                  self.timeout)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None
        self._backoff = 0.0
        self._status = ReportStatus(None, None, None, None, 0, False, 0)

    @classmethod
    def from_conf(cls, transport: oslo_messaging.Transport, conf: cfg.ConfigOpts,
                  **kwargs: Any) -> StateReporter:
        """Interval from ``[agent] report_interval``, timeout ``rpc_response_timeout``
        (capped at the interval), configurations from :func:`agent_configurations`."""
        return cls(transport, conf.agent.host, interval=conf.agent.report_interval,
                   timeout=conf.rpc_response_timeout,
                   configurations=agent_configurations(conf), **kwargs)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Report now, then every ``interval`` seconds, on a daemon thread."""
        if self._thread is not None:
            return
        # a fresh event per run: a thread left behind by stop() (report in flight) keeps
        # its own, already set, and can neither loop again nor call back
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(self._stopping,),
                                        name="dpagent-state-report", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> bool:
        """Stop reporting; True if the thread ended within ``timeout`` seconds.

        A report in flight cannot be interrupted (oslo.messaging has no cancel); the
        thread then ends when its call returns or times out, and its result is ignored.
        """
        self._stopping.set()
        self._wakeup.set()
        thread, self._thread = self._thread, None
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def set_interval(self, interval: float) -> None:
        """Report every ``interval`` seconds from now on (SIGHUP reload): the next report is
        due ``interval`` after the last one, not after the old interval ran out."""
        self.interval = interval
        self.timeout = min(self._requested_timeout or interval, interval)
        self._client = rpc_client(self._transport, topics.REPORTS, topics.REPORTS_VERSION,
                                  self.timeout)
        self._wakeup.set()

    @property
    def running(self) -> bool:
        """True while the reporting thread lives (after start, until stopped)."""
        return self._thread is not None and self._thread.is_alive()

    def status(self) -> ReportStatus:
        with self._lock:
            return self._status

    # -- one report ---------------------------------------------------------------------------

    def build_state(self) -> dict[str, Any]:
        """The STATE of the next report (what neutron stores as the agent record)."""
        configurations = dict(self.configurations)
        if self.state_callback is not None:
            try:
                configurations.update(self.state_callback())
            except Exception:  # noqa: BLE001 - a heartbeat without extras beats none
                LOG.exception("state callback failed; reporting without its values")
        state: dict[str, Any] = {
            "binary": self.binary, "host": self.host, "topic": "N/A",
            "agent_type": self.agent_type, "configurations": configurations,
            "uuid": str(uuid.uuid4()),
        }
        if not self.status().registered:
            state["start_flag"] = True
            state["resource_versions"] = dict(topics.RESOURCE_VERSIONS)
        return state

    def report_once(self) -> str | None:
        """Send one report now; the server's reply, or None if it failed (see status())."""
        return self._attempt(self._stopping)

    def _attempt(self, stopping: threading.Event) -> str | None:
        attempt = time.time()
        try:
            reply = call(self._client, "report_state",
                         agent_state={"agent_state": self.build_state()},
                         time=utc_timestamp())
            if reply not in REPLIES:
                raise InvalidReply(f"report_state: unexpected reply {reply!r}"
                                   + (" (report older than the server's start?)"
                                      if reply is None else ""))
        except ControlPlaneError as exc:
            if isinstance(exc, BrokerUnreachable):
                self._broker_lost = True
            self._failed(attempt, str(exc))
            return None
        except Exception as exc:  # noqa: BLE001 - e.g. a state that does not serialise
            LOG.exception("report_state failed")
            self._failed(attempt, f"{type(exc).__name__}: {exc}")
            return None
        with self._lock:
            previous = self._status
            self._status = ReportStatus(reply, time.time(), attempt, None, 0, True,
                                        previous.reports + 1)
        if previous.consecutive_failures:
            LOG.info("state report succeeded again after %d failure(s): %s",
                     previous.consecutive_failures, reply)
        broker_lost, self._broker_lost = self._broker_lost, False
        silent, self._silent = self._silent, False
        if reply == "revived" or (reply == "new" and previous.registered):
            LOG.warning("server replied %r to the state report: full resync", reply)
            self._resync(reply, stopping)
        elif reply == "alive" and silent and previous.consecutive_failures:
            # After a silence the first report the server gets is answered 'revived'; when
            # that report's reply was lost (it timed out: a busy server), this 'alive' is the
            # second answer, and the resync 'revived' asks for must happen all the same.
            LOG.warning("server replied 'alive' after a silence whose first report's reply "
                        "was lost (it may have said 'revived'): full resync")
            self._resync("revived", stopping)
        elif broker_lost and self.resync_on_reconnect:
            LOG.warning("the broker is reachable again; casts may have been lost: full resync")
            self._resync("reconnected", stopping)
        return str(reply)

    def _failed(self, attempt: float, error: str) -> None:
        with self._lock:
            previous = self._status
            self._status = ReportStatus(previous.last_result, previous.last_success, attempt,
                                        error, previous.consecutive_failures + 1,
                                        previous.registered, previous.reports)
        if previous.last_success is not None and \
                attempt - previous.last_success > AGENT_DOWN_TIME:
            self._silent = True
        log = LOG.warning if previous.consecutive_failures == 0 else LOG.debug
        log("state report failed (%d in a row): %s", previous.consecutive_failures + 1, error)

    def _resync(self, reason: str, stopping: threading.Event) -> None:
        if self.on_resync is None or stopping.is_set():
            return
        try:
            self.on_resync(reason)
        except Exception:  # noqa: BLE001 - the heartbeat must go on
            LOG.exception("resync callback failed")

    # -- loop ---------------------------------------------------------------------------------

    def _withheld(self) -> str | None:
        """``health()``'s problem, recorded and logged when it changes."""
        try:
            problem = self.health() if self.health is not None else None
        except Exception:  # noqa: BLE001 - a broken check must not stop heartbeats
            LOG.exception("health check failed; reporting anyway")
            problem = None
        with self._lock:
            previous = self._status
            self._status = dataclasses.replace(previous, withheld=problem)
        if problem:
            self._silent = True
        if problem and problem != previous.withheld:
            LOG.error("not reporting state to the server: %s", problem)
        elif previous.withheld and not problem:
            LOG.warning("reporting state to the server again")
        return problem

    def _run(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            started = time.monotonic()
            if self._withheld():
                # neutron's agent does the same while OVS is dead: the server counts the agent
                # dead after agent_down_time and binds no new port here; the first report
                # afterwards is answered 'revived', which resyncs everything
                self._sleep(stopping, started, self.interval)
                continue
            if self._attempt(stopping) is not None:
                self._backoff = 0.0
                delay = self.interval - (time.monotonic() - started)
            else:
                self._backoff = min(self.interval, max(self.min_backoff, self._backoff * 2))
                delay = self._backoff
            self._sleep(stopping, started, delay)

    def _sleep(self, stopping: threading.Event, started: float, delay: float) -> None:
        """Wait ``delay`` seconds, or less if the interval shrinks meanwhile."""
        deadline = time.monotonic() + max(0.0, delay)
        interval = self.interval
        while not stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wakeup.wait(remaining)
            self._wakeup.clear()
            if self.interval != interval:  # retimed: due one new interval after the start
                deadline = min(deadline, started + self.interval)
                interval = self.interval

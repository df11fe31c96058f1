"""Metrics of what happens -- bundles, audits, switch resets, RPC traffic -- counted when it
happens, told by the observer interfaces of the modules that do it."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram

BUNDLE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                  5.0, 10.0)
"""Seconds: a one-flow native commit takes well under a millisecond, a full sync of a big host
seconds ([ovs] of_request_timeout: 10 s by default)."""

RPC_CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Seconds, up to the default [DEFAULT] rpc_response_timeout (60 s)."""

NOTIFICATION_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                        0.25, 1.0)
"""Seconds: a handler only validates and marks work, it must return at once."""


class EventMetrics:
    """The counters and histograms; an :class:`~dpagent.rpc.observers.RpcObserver` itself,
    and the maker of each bridge's :class:`BridgeEvents`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        def histogram(name: str, doc: str, label: str,
                      buckets: tuple[float, ...]) -> Histogram:
            return Histogram(name, doc, [label], buckets=buckets, registry=registry)

        self.bundle_commits = counter("dpagent_bundle_commits", "OpenFlow bundles committed "
                                      "to a bridge.", "bridge")
        self.bundle_seconds = histogram("dpagent_bundle_commit_duration_seconds", "Time to "
                                        "send and commit one bundle.", "bridge",
                                        BUNDLE_BUCKETS)
        self.bundle_rejections = counter("dpagent_bundle_rejections", "Bundles a bridge "
                                         "refused (nothing of them applied).", "bridge")
        self.flow_mods = counter("dpagent_flow_mods", "Flow-mods (adds and deletes) in the "
                                 "bundles committed to a bridge.", "bridge")
        self.switch_resets = counter("dpagent_switch_resets", "Times a bridge was found to "
                                     "have lost dpagent's flows (ovs-vswitchd restarted, "
                                     "bridge re-created), each followed by a repair.",
                                     "bridge")
        self.audits = counter("dpagent_audits", "Audits that compared a bridge's flows with "
                              "the desired ones.", "bridge")
        self.audit_drift = counter("dpagent_audit_drift_found", "Audits that found a bridge's "
                                   "flows differing from the desired ones (and repaired "
                                   "them).", "bridge")
        self.audit_repaired = counter("dpagent_audit_flows_repaired", "Flow-mods audits sent "
                                      "to make a bridge match (missing flows added, extra "
                                      "ones deleted).", "bridge")
        self.calls = counter("dpagent_rpc_calls", "RPC calls to the server.", "method")
        self.call_errors = counter("dpagent_rpc_call_errors", "RPC calls that failed, by "
                                   "error (ServerUnavailable, BrokerUnreachable: no answer; "
                                   "ServerError: the server failed).", "method", "error")
        self.call_seconds = histogram("dpagent_rpc_call_duration_seconds", "Time from "
                                      "sending an RPC call to its reply or failure.",
                                      "method", RPC_CALL_BUCKETS)
        self.notifications = counter("dpagent_rpc_notifications", "Notifications (casts) "
                                     "received from the server.", "method")
        self.notification_errors = counter("dpagent_rpc_notification_errors", "Notifications "
                                           "dropped as invalid or whose handler failed.",
                                           "method", "error")
        self.notification_seconds = histogram("dpagent_rpc_notification_duration_seconds",
                                              "Time to validate and handle a notification.",
                                              "method", NOTIFICATION_BUCKETS)

    def bridge(self, name: str) -> BridgeEvents:
        """The :class:`~dpagent.bridge.programmer.ProgrammerObserver` of bridge ``name``; its
        series exist (at 0) from now on."""
        return BridgeEvents(self, name)

    def audits_of(self, bridge: str) -> Callable[[int], None]:
        """The :attr:`~dpagent.agent.agent.Agent.on_audit` of ``bridge``: told, after each
        audit, the flow-mods that made the bridge match (0: no drift). Its series exist (at
        0) from now on."""
        audits, drift, repaired = (c.labels(bridge) for c in (self.audits, self.audit_drift,
                                                              self.audit_repaired))

        def audited(flow_mods: int) -> None:
            audits.inc()
            if flow_mods:
                drift.inc()
                repaired.inc(flow_mods)
        return audited

    # -- RpcObserver --------------------------------------------------------------------------

    def call_done(self, method: str, seconds: float, error: str | None) -> None:
        self.calls.labels(method).inc()
        self.call_seconds.labels(method).observe(seconds)
        if error is not None:
            self.call_errors.labels(method, error).inc()

    def notification_done(self, method: str, seconds: float, error: str | None) -> None:
        self.notifications.labels(method).inc()
        self.notification_seconds.labels(method).observe(seconds)
        if error is not None:
            self.notification_errors.labels(method, error).inc()


class BridgeEvents:
    """What one bridge's programmer tells (a ProgrammerObserver), as labelled series."""

    def __init__(self, events: EventMetrics, bridge: str) -> None:
        self._commits = events.bundle_commits.labels(bridge)
        self._seconds = events.bundle_seconds.labels(bridge)
        self._rejections = events.bundle_rejections.labels(bridge)
        self._flow_mods = events.flow_mods.labels(bridge)
        self._resets = events.switch_resets.labels(bridge)

    def bundle_committed(self, flow_mods: int, seconds: float) -> None:
        self._commits.inc()
        self._seconds.observe(seconds)
        self._flow_mods.inc(flow_mods)

    def bundle_rejected(self) -> None:
        self._rejections.inc()

    def switch_reset(self) -> None:
        self._resets.inc()

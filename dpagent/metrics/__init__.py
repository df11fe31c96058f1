"""The daemon's Prometheus metrics (``[agent] metrics_listen``; every metric: docs/metrics.md).

What the status snapshot already holds -- ports by state, flows per bridge, the heartbeat's
age, the SR-IOV side -- is read when Prometheus scrapes (:mod:`~dpagent.metrics.snapshot`), so
no hot path does anything for it. What only happens -- bundles, audits, switch resets, RPC
calls and notifications -- is counted as it happens (:mod:`~dpagent.metrics.events`), told
through the small observer interfaces of the modules that do it
(:class:`dpagent.bridge.programmer.ProgrammerObserver`,
:class:`dpagent.rpc.observers.RpcObserver`, :attr:`dpagent.agent.agent.Agent.on_audit`):
only this package imports prometheus_client (an import-linter contract says so).
"""

from __future__ import annotations

from dpagent.metrics.rules import RuleCount, RuleCounters
from dpagent.metrics.server import MetricsServer

__all__ = ["MetricsServer", "RuleCount", "RuleCounters"]

"""Per-rule packet and byte counters: the hook for whoever counts them.

The counting itself (reading the flows' statistics of each security-group rule) is not here:
a :data:`RuleCounters` callable hands the counts in, at each scrape, and they are exported as
two counters labelled by group, rule, direction and port.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

LOG = logging.getLogger(__name__)

LABELS = ("group_id", "rule", "direction", "port_id")


class RuleCount(Protocol):
    """What one security-group rule matched on one port, as the switch counted it: anything
    with these attributes (``dpagent.diagnose.rule_counters.RuleCount``, a NamedTuple...)."""

    @property
    def group_id(self) -> str: ...

    @property
    def rule(self) -> str:
        """The rule's id (or what names it, for rules without one)."""

    @property
    def direction(self) -> str:
        """ingress, egress"""

    @property
    def port_id(self) -> str: ...

    @property
    def packets(self) -> int: ...

    @property
    def bytes(self) -> int: ...


RuleCounters = Callable[[], Iterable[RuleCount]]
"""Called at each scrape, on the HTTP server's thread: the counts of every rule now."""


class RuleCollector(Collector):
    """``dpagent_sg_rule_packets_total`` and ``dpagent_sg_rule_bytes_total`` from ``source``
    (none while it is None)."""

    def __init__(self, source: RuleCounters | None = None) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        if self.source is None:
            return
        packets = CounterMetricFamily(
            "dpagent_sg_rule_packets", "Packets matched by a security-group rule on a port.",
            labels=LABELS)
        octets = CounterMetricFamily(
            "dpagent_sg_rule_bytes", "Bytes matched by a security-group rule on a port.",
            labels=LABELS)
        try:
            for count in self.source():
                labels = [count.group_id, count.rule, count.direction, count.port_id]
                packets.add_metric(labels, count.packets)
                octets.add_metric(labels, count.bytes)
        except Exception:  # noqa: BLE001 - a scrape must never hurt the agent
            LOG.exception("reading the security-group rule counters failed")
            return
        yield packets
        yield octets

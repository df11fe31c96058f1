"""Metrics read at scrape time from the daemon's status snapshot (what ``dpagent-ctl status``
shows): nothing is counted on the way for them, a scrape costs one snapshot."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dpagent.agent.agent import PARKED
from dpagent.rpc import topics

LOG = logging.getLogger(__name__)

PORT_STATES = ("pending", "wired", "failed", *sorted(PARKED))
"""Every state of an OVS port: each is exported, 0 when no port is in it, so that a series
does not vanish when its last port leaves the state."""

SRIOV_PORT_STATES = ("pending", "wired", "failed", "admin-down")


class StatusCollector(Collector):
    """The families of :func:`status_families` from ``status()`` at each scrape."""

    def __init__(self, status: Callable[[], Mapping[str, Any]],
                 integration_bridge: str) -> None:
        self.status = status
        self.integration_bridge = integration_bridge

    def collect(self) -> Iterator[Metric]:
        try:
            status = self.status()
        except Exception:  # noqa: BLE001 - a scrape must never hurt the agent
            LOG.exception("reading the status for a metrics scrape failed")
            return
        yield from status_families(status, self.integration_bridge, time.time())


def status_families(status: Mapping[str, Any], integration_bridge: str,
                    now: float) -> list[Metric]:
    """The metrics of one status snapshot (the shape of ``AgentService.status()``); parts
    the snapshot does not have yet (the agent still starting, no SR-IOV) are left out."""
    families: list[Metric] = []
    if "ports" in status:
        families.append(_by_state("dpagent_ports", "OVS ports (VIFs on the integration "
                                  "bridge) by the agent's state of them.",
                                  status["ports"], PORT_STATES))
    flows = GaugeMetricFamily("dpagent_flows_installed", "Flows dpagent installed on a "
                              "bridge, as it last committed or read them.", labels=["bridge"])
    if "flows_installed" in status:
        flows.add_metric([integration_bridge], status["flows_installed"])
    for physnet in (status.get("physical_networks") or {}).values():
        flows.add_metric([physnet["bridge"]], physnet.get("flows_installed", 0))
    if status.get("overlay"):
        flows.add_metric([status["overlay"]["bridge"]], status["overlay"]["flows_installed"])
    families.append(flows)
    age = GaugeMetricFamily("dpagent_heartbeat_age_seconds", "Seconds since the last "
                            "state report the server accepted (+Inf before the first).",
                            labels=["agent_type"])
    sriov = status.get("sriov")
    for agent_type, heartbeat in ((topics.AGENT_TYPE_OVS, status.get("heartbeat")),
                                  (topics.AGENT_TYPE_NIC_SWITCH,
                                   sriov.get("heartbeat") if sriov else None)):
        if heartbeat is not None:
            last = heartbeat.get("last_time")
            age.add_metric([agent_type], float("inf") if last is None else max(0.0, now - last))
    families.append(age)
    if sriov:
        families.append(_by_state("dpagent_sriov_ports", "SR-IOV (direct) ports by state: "
                                  "wired, its VF configured; failed, its VF could not be.",
                                  sriov.get("ports") or {}, SRIOV_PORT_STATES))
        families.append(GaugeMetricFamily("dpagent_sriov_vfs", "VFs of the mapped PFs.",
                                          value=sriov.get("vfs_managed", 0)))
    return families


def _by_state(name: str, documentation: str, counts: Mapping[str, int],
              known: tuple[str, ...]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["state"])
    for state in (*known, *sorted(counts.keys() - set(known))):
        family.add_metric([state], counts.get(state, 0))
    return family

"""The daemon's notification handler: which port updates tell the agent of a binding."""

from __future__ import annotations

from typing import Any

from dpagent.daemon.wiring import AgentNotificationHandler


class RecordingAgent:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def port_updated(self, port_id: str) -> None:
        self.calls.append(("updated", port_id))

    def port_bound(self, port_id: str, here: bool) -> None:
        self.calls.append(("bound", port_id, here))


def update(handler: AgentNotificationHandler, **port: Any) -> None:
    handler.on_port_update({"id": "p1", **port}, "vxlan", 5, None)


def test_a_port_bound_to_this_host_is_announced_to_the_agent_as_expected_here():
    agent = RecordingAgent()
    handler = AgentNotificationHandler(agent, host="compute1")  # type: ignore[arg-type]
    update(handler, **{"binding:host_id": "compute1", "binding:vnic_type": "normal"})
    update(handler, **{"binding:host_id": "compute2", "binding:vnic_type": "normal"})
    update(handler, **{"binding:host_id": "compute1"})  # no vnic_type: normal
    assert agent.calls == [("updated", "p1"), ("bound", "p1", True),
                           ("updated", "p1"), ("bound", "p1", False),
                           ("updated", "p1"), ("bound", "p1", True)]


def test_unbound_and_direct_ports_are_no_binding_news_for_the_ovs_side():
    agent = RecordingAgent()
    handler = AgentNotificationHandler(agent, host="compute1")  # type: ignore[arg-type]
    update(handler, **{"binding:host_id": ""})
    update(handler)
    update(handler, **{"binding:host_id": "compute1", "binding:vnic_type": "direct"})
    assert agent.calls == [("updated", "p1")] * 3

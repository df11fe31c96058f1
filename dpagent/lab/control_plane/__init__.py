"""A control-plane double: neutron-server's agent RPC over a real broker, from a small model.

Until dpagent's own controller exists, tests and benchmarks drive the agent with this:
an oslo.messaging RPC server on ``q-plugin`` and ``q-reports-plugin`` that answers the
calls of CONTRACT.md with the recorded reply shapes (same topics, versions, endpoint
split -- a 1.9 ML2 endpoint and a 1.3 security-group endpoint on ``q-plugin``, so a
wrongly versioned call fails with ``UnsupportedVersion`` as it would on neutron), computed
from an in-memory :class:`ControlPlaneModel` (networks, ports bound to hosts, security
groups with rules and their stateful flag, member IPs derived from the ports in each
group, agents with admin state and heartbeat history).

Changing the model through the double sends the fanout casts neutron would send
(``add_rule`` -> ``security_groups_rule_updated``, ``bind_port`` -> ``port_update``...);
``notify_*`` send them by hand and :meth:`ControlPlaneDouble.cast` sends anything, malformed
payloads included.  Every message received is recorded (topic, method, version,
namespace, kwargs, context, reply or error) for assertions, and :meth:`inject` makes a
method fail, stall or answer something else.
"""

from dpagent.lab.control_plane.double import ControlPlaneDouble
from dpagent.lab.control_plane.model import (
    AgentRecord,
    ControlPlaneModel,
    Network,
    Port,
    ReceivedCall,
    SecurityGroup,
)

__all__ = ["AgentRecord", "ControlPlaneDouble", "ControlPlaneModel", "Network", "Port",
           "ReceivedCall", "SecurityGroup"]

"""dpagent's side of the control-plane contract (neutron's agent RPC, see CONTRACT.md).

* :mod:`~dpagent.rpc.transport` -- one oslo.messaging transport, neutron's exchange,
  the threading executor, and the request context the server expects.
* :mod:`~dpagent.rpc.plugin_api` -- calls to the server (device details, security
  group info, device up/down); replies are validated by :mod:`~dpagent.rpc.replies`.
* :mod:`~dpagent.rpc.state_report` -- the heartbeat (``report_state``) on its own thread.
* :mod:`~dpagent.rpc.notifications` and :mod:`~dpagent.rpc.consumers` -- the server's
  casts, validated and handed to an :class:`~dpagent.rpc.notifications.AgentNotifications`.
* :mod:`~dpagent.rpc.validation` and :mod:`~dpagent.rpc.api_objects` -- the checks, which
  name the offending field (``port.fixed_ips[0].ip_address: ...``).
* :mod:`~dpagent.rpc.topics` -- topics, message versions, the agent type and binary.

Nothing here keeps agent state or touches the switch: this package turns wire messages
into checked Python values and back, and reports failures as
:mod:`~dpagent.rpc.errors`.
"""

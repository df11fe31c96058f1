"""dpagent-controller: a small control plane for labs, CI and single-site use.

It speaks neutron-server's agent RPC over RabbitMQ (the same topics, versions, replies and
fanout notifications as neutron 29, see ``/work/shared/contract``) so that the agent has one
code path, keeps its state in SQLite, takes its resources from a declarative YAML topology and
serves neutron's agents API over HTTP.

* :mod:`~dpagent.controller.model` -- the resources (frozen values) and agent records;
* :mod:`~dpagent.controller.topology` -- YAML/JSON topology <-> model, with validation;
* :mod:`~dpagent.controller.changes` -- the difference of two topologies as neutron's
  notifications (pure);
* :mod:`~dpagent.controller.views` -- neutron's wire and API shapes of the model (pure);
* :mod:`~dpagent.controller.store` -- SQLite, schema versioned;
* :mod:`~dpagent.controller.agents` -- heartbeats, liveness, administrative state;
* :mod:`~dpagent.controller.state` -- the controller's state, answers and changes;
* :mod:`~dpagent.controller.rpc_server`, :mod:`~dpagent.controller.notifier`,
  :mod:`~dpagent.controller.faults` -- the RPC edge;
* :mod:`~dpagent.controller.api` -- the HTTP edge; :mod:`~dpagent.controller.service` -- both.
"""

"""[controller]: dpagent-controller's store, topology, API and fault injection.

A separate generator namespace (``dpagent.controller``, sample
``etc/dpagent-controller.conf.sample``): the agent's hosts never need these options.
"""

from __future__ import annotations

from oslo_config import cfg, types

GROUP = "controller"

CONTROLLER_OPTS = [
    cfg.StrOpt(
        "database",
        default="/var/lib/dpagent/controller.sqlite",
        help="SQLite file holding the topology, port status and agents. Created (and its "
        "schema upgraded) at start; everything the controller answered survives a restart.",
    ),
    cfg.StrOpt(
        "topology",
        help="YAML topology file (version 1, see docs/controller.md) applied at start and "
        "again on SIGHUP; only the difference is applied and notified. Unset: the topology "
        "in the database is kept and changed only through POST /v2.0/topology.",
    ),
    cfg.HostAddressOpt(
        "api_host",
        default="127.0.0.1",
        help="Address the agents API (neutron's /v2.0/agents) listens on. It has no "
        "authentication: keep it on the loopback or a management network.",
    ),
    cfg.PortOpt(
        "api_port",
        default=9696,
        help="TCP port of the agents API (neutron's own port by default). 0 picks a free one.",
    ),
    cfg.IntOpt(
        "agent_down_time",
        default=75,
        min=1,
        help="Seconds after an agent's last heartbeat at which it counts as dead: 'alive' "
        "turns false in the API, and its next report is answered 'revived' (the agent then "
        "resyncs). As neutron, keep it at least twice the agents' report_interval.",
    ),
    cfg.FloatOpt(
        "rpc_fault_rate",
        default=0.0,
        min=0.0,
        max=1.0,
        help="Fault injection for testing agents: the fraction of RPC calls (0.0-1.0) whose "
        "reply fails at random. Never set it in production.",
    ),
    cfg.ListOpt(
        "rpc_fault_kinds",
        default=["error", "timeout"],
        item_type=types.String(choices=["error", "timeout"]),
        help="How an injected fault fails: 'error' refuses the call before it runs (the agent "
        "gets a RemoteError); 'timeout' runs it but sends no reply (the agent times out "
        "without knowing the outcome). One is picked at random per fault.",
    ),
    cfg.IntOpt(
        "rpc_fault_seed",
        help="Seed of the fault injection's random choices, for a reproducible run. Unset: "
        "different at every start.",
    ),
]


def register_controller_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(CONTROLLER_OPTS, group=GROUP)


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """The ``dpagent.controller`` namespace of the oslo.config generator."""
    return [(GROUP, list(CONTROLLER_OPTS))]

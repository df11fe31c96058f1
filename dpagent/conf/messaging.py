"""oslo.messaging options that dpagent must put on its own ConfigOpts itself.

oslo.messaging 18.x registers ``[oslo_messaging_tracing]`` and
``[oslo_messaging_metrics]`` only on the global ``cfg.CONF`` but reads them
from the transport's own ``ConfigOpts`` when an RPC client or server is made:
with any other ``ConfigOpts`` that fails with ``NoSuchOptError``.  dpagent
never uses the global, so it registers the same options on the conf it uses.

It also registers oslo.messaging's ``[DEFAULT]`` transport options early, to
give ``control_exchange`` neutron's default (``neutron``) on this conf only:
every agent<->server message of neutron travels on that exchange, and
oslo.messaging's own default (``openstack``) would leave the agent talking to
nobody.  neutron does the same with ``set_transport_defaults``, which changes
the default for every ConfigOpts of the process; ``set_default`` on our conf
does not.  ``rpc_response_timeout`` (same section) is the timeout of dpagent's
calls to the server, as for neutron's agents.
"""

from __future__ import annotations

import importlib

from oslo_config import cfg

NEUTRON_CONTROL_EXCHANGE = "neutron"

# (module, list of options in it, group it belongs to)
_GLOBAL_ONLY = [
    ("oslo_messaging._tracing.client", "oslo_messaging_tracing", "oslo_messaging_tracing"),
    ("oslo_messaging._metrics.client", "oslo_messaging_metrics", "oslo_messaging_metrics"),
]


def register_messaging_opts(conf: cfg.ConfigOpts) -> None:
    """Make ``conf`` able to carry a transport; safe to call more than once."""
    for module_name, attribute, group in _GLOBAL_ONLY:
        try:
            opts = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError):
            continue  # a release without it: nothing to work around
        conf.register_opts(opts, group=group)
    # imported here: importing oslo.messaging imports oslo.service, whose backend the
    # daemon chooses first (see dpagent.cmd.agent)
    from oslo_messaging import opts as messaging_opts

    for group, opts in messaging_opts.list_opts():
        if group is None:  # [DEFAULT]: transport_url, control_exchange, rpc_response_timeout
            conf.register_opts(opts)
    conf.set_default("control_exchange", NEUTRON_CONTROL_EXCHANGE)

"""dpagent's configuration options, one module per group.

Library code receives a ``ConfigOpts`` (or one group of it) from the daemon;
it never reads ``oslo_config.cfg.CONF``.  ``register_opts`` puts every group
on a given ``ConfigOpts``.
"""

from __future__ import annotations

from oslo_config import cfg

from dpagent.conf.agent import register_agent_opts
from dpagent.conf.ovs import register_ovs_opts
from dpagent.conf.securitygroup import register_securitygroup_opts
from dpagent.conf.sriov import register_sriov_opts


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register every dpagent option group on ``conf``.

    Also the oslo.messaging options that library leaves on the global conf
    only (see ``dpagent.conf.messaging``), so ``conf`` can carry a transport.
    """
    # Imported here, not above: importing oslo.messaging imports oslo.service, which must not
    # happen before the daemon has chosen oslo.service's backend (see dpagent.cmd.agent).
    from dpagent.conf.messaging import register_messaging_opts

    register_agent_opts(conf)
    register_messaging_opts(conf)
    register_ovs_opts(conf)
    register_securitygroup_opts(conf)
    register_sriov_opts(conf)

"""Every dpagent option, for oslo-config-generator and documentation.

Registered as the ``dpagent`` namespace of the ``oslo.config.opts`` entry
point group; ``etc/oslo-config-generator/dpagent.conf`` uses it to produce
``etc/dpagent.conf.sample``.
"""

from __future__ import annotations

from oslo_config import cfg

from dpagent.conf import agent, ovs, securitygroup, sriov


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    return [
        (agent.GROUP, list(agent.AGENT_OPTS)),
        (ovs.GROUP, list(ovs.OVS_OPTS)),
        (securitygroup.GROUP, list(securitygroup.SECURITYGROUP_OPTS)),
        (sriov.GROUP, list(sriov.SRIOV_OPTS)),
    ]

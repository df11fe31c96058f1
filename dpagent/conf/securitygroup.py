"""[securitygroup]: whether and how ports are filtered."""

from __future__ import annotations

from oslo_config import cfg

GROUP = "securitygroup"

SECURITYGROUP_OPTS = [
    cfg.BoolOpt(
        "enable_security_group",
        default=True,
        help="Filter VM traffic by security groups. When false, ports get no filtering at "
        "all (anti-spoofing included), which is only sane on trusted networks.",
    ),
    cfg.StrOpt(
        "firewall_driver",
        default="openvswitch",
        choices=[
            ("openvswitch", "Native OVS firewall with conntrack, compiled by dpagent's flows "
             "package and applied as one bundle."),
        ],
        help="Firewall implementation. Only the native OVS firewall exists: dpagent does not "
        "plug the linux-bridge hybrid ports that iptables_hybrid needs.",
    ),
]


def register_securitygroup_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(SECURITYGROUP_OPTS, group=GROUP)

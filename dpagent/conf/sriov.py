"""[sriov]: which physical functions the agent manages, and how."""

from __future__ import annotations

from oslo_config import cfg

GROUP = "sriov"

SRIOV_OPTS = [
    cfg.ListOpt(
        "physical_device_mappings",
        default=[],
        help="Physical network to physical function, as physnet:pf entries separated by "
        "commas (e.g. physnet2:ens1f0,physnet2:ens1f1). A physnet may map to several PFs. "
        "Only VFs of these PFs are reported and configured.",
    ),
    cfg.ListOpt(
        "exclude_devices",
        default=[],
        help="VFs the agent must leave alone, as pf:vf_pci_address entries with several "
        "addresses separated by semicolons (e.g. ens1f0:0000:07:00.2;0000:07:00.3), for VFs "
        "used by the host itself.",
    ),
    cfg.StrOpt(
        "sysfs_root",
        default="/sys",
        help="Where sysfs is mounted. Tests point it at a fake tree; on a host keep /sys.",
    ),
    cfg.DictOpt(
        "driver_overrides",
        default={},
        help="Force a NIC driver for a PF instead of choosing by its kernel driver, as "
        "pf:driver pairs (e.g. ens1f0:intel_i40e). Driver names are the entry points of the "
        "dpagent.sriov.drivers group.",
    ),
]


def register_sriov_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(SRIOV_OPTS, group=GROUP)

"""Options as an operator meets them: defaults, parsing, rejections."""

from __future__ import annotations

from importlib import metadata

import pytest
from oslo_config import cfg

from dpagent import conf as dpagent_conf
from dpagent.conf import opts


@pytest.fixture
def conf() -> cfg.ConfigOpts:
    c = cfg.ConfigOpts()
    dpagent_conf.register_opts(c)
    c(args=[], default_config_files=[])
    return c


def _load(c: cfg.ConfigOpts, tmp_path, text: str) -> None:
    path = tmp_path / "dpagent.conf"
    path.write_text(text)
    c(args=["--config-file", str(path)], default_config_files=[])


def test_defaults_describe_a_standard_kernel_ovs_host(conf):
    assert conf.ovs.integration_bridge == "br-int"
    assert conf.ovs.datapath_type == "system"
    assert conf.ovs.bridge_mappings == {}
    assert conf.ovs.ovsdb_connection == "unix:/var/run/openvswitch/db.sock"
    assert conf.agent.report_interval == 30
    assert conf.agent.service_backend == "threading"
    assert conf.agent.drop_flows_on_start is False
    assert conf.agent.use_veth_interconnection is False
    assert conf.securitygroup.enable_security_group is True
    assert conf.securitygroup.firewall_driver == "openvswitch"
    assert conf.sriov.sysfs_root == "/sys"


def test_bridge_mappings_parse_physnet_to_bridge(conf, tmp_path):
    _load(conf, tmp_path, "[ovs]\nbridge_mappings = physnet1:br-eth1, physnet2:br-eth2\n")
    assert conf.ovs.bridge_mappings == {"physnet1": "br-eth1", "physnet2": "br-eth2"}


def test_sriov_mappings_keep_several_pfs_per_physnet(conf, tmp_path):
    _load(conf, tmp_path, "[sriov]\nphysical_device_mappings = p2:ens1f0,p2:ens1f1\n")
    assert conf.sriov.physical_device_mappings == ["p2:ens1f0", "p2:ens1f1"]


@pytest.mark.parametrize(
    ("group", "text"),
    [
        ("ovs", "datapath_type = dpdk"),
        ("agent", "service_backend = asyncio"),
        ("securitygroup", "firewall_driver = iptables_hybrid"),
        ("agent", "report_interval = 0"),
    ],
)
def test_values_outside_the_choices_are_refused(conf, tmp_path, group, text):
    _load(conf, tmp_path, f"[{group}]\n{text}\n")
    name = text.split(" = ")[0]
    with pytest.raises(ValueError):
        getattr(getattr(conf, group), name)


def test_registration_does_not_touch_the_global_conf():
    before = set(cfg.CONF)
    dpagent_conf.register_opts(cfg.ConfigOpts())
    assert set(cfg.CONF) == before


def test_list_opts_covers_every_registered_group(conf):
    listed = {group for group, _ in opts.list_opts()}
    assert listed == {"agent", "ovs", "securitygroup", "sriov"}
    for group, group_opts in opts.list_opts():
        for opt in group_opts:
            assert opt.help, f"[{group}] {opt.name} has no help text"


def test_every_declared_entry_point_loads():
    # os-vif once shipped a broken entry point for months because nothing
    # loaded it: load every one this distribution declares.
    groups = {"oslo.config.opts", "dpagent.sriov.drivers"}
    eps = [ep for ep in metadata.distribution("dpagent").entry_points if ep.group in groups]
    assert any(ep.group == "oslo.config.opts" and ep.name == "dpagent" for ep in eps)
    for ep in eps:
        assert ep.load() is not None, ep


def test_conf_can_carry_an_rpc_transport_without_the_global(conf):
    # oslo.messaging 18 reads these groups from the transport's conf but
    # registers them only on cfg.CONF.
    assert conf.oslo_messaging_tracing.tracing_enabled is False
    assert conf.oslo_messaging_metrics.metrics_enabled is False

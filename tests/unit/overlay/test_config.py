"""The overlay's options: neutron's names, every problem named at once, the daemon stops on them."""

from __future__ import annotations

import dataclasses

import pytest
from oslo_config import cfg
from oslo_log import log

from dpagent.cmd.agent import preflight_problems
from dpagent.conf import register_opts
from dpagent.overlay.config import (
    OverlayConfigError,
    OverlayOptions,
    options_from_conf,
    overlay_settings,
)

OPTIONS = OverlayOptions(
    tunnel_types=["vxlan"], local_ip="192.0.2.1", tunnel_bridge="br-tun",
    int_peer_patch_port="patch-tun", tun_peer_patch_port="patch-int", l2_population=True,
    arp_responder=True, vxlan_udp_port=4789, dont_fragment=True, tunnel_csum=False,
    integration_bridge="br-int", bridge_mappings={"physnet1": "br-eth1"})


def test_no_tunnel_types_means_no_overlay_whatever_else_is_set():
    settings, warnings = overlay_settings(dataclasses.replace(OPTIONS, tunnel_types=[],
                                                              local_ip="nonsense"))
    assert not settings.enabled and settings.local_ip is None and warnings == []


def test_settings_of_a_good_configuration():
    settings, warnings = overlay_settings(dataclasses.replace(
        OPTIONS, tunnel_types=["vxlan", " Geneve", "vxlan"]))
    assert settings.tunnel_types == ("vxlan", "geneve")
    assert (settings.local_ip, settings.ip_version, settings.arp_responder) == ("192.0.2.1", 4,
                                                                               True)
    assert warnings == []


def test_arp_responder_without_l2population_is_off_with_a_warning():
    settings, warnings = overlay_settings(dataclasses.replace(OPTIONS, l2_population=False))
    assert settings.arp_responder is False
    assert len(warnings) == 1 and "[agent] arp_responder" in warnings[0]


def test_every_problem_is_named_at_once():
    with pytest.raises(OverlayConfigError) as caught:
        overlay_settings(dataclasses.replace(
            OPTIONS, tunnel_types=["vxlan", "stt"], local_ip="192.0.2.300",
            tunnel_bridge="br-eth1", int_peer_patch_port="patch-int"))
    lines = str(caught.value).splitlines()
    assert len(lines) == 4
    assert "unsupported type stt" in lines[0]
    assert "[ovs] local_ip: '192.0.2.300' is not an IP address" in lines[1]
    assert "br-eth1 is also mapped to physical network physnet1" in lines[2]
    assert "both patch-int" in lines[3]


@pytest.mark.parametrize(("changes", "named"), [
    ({"local_ip": None}, "[ovs] local_ip is not set"),
    ({"local_ip": "2001:db8::1", "tunnel_types": ["gre"]}, "gre over IPv6"),
    ({"local_ip": "127.0.0.1"}, "cannot be a tunnel endpoint"),
    ({"tunnel_bridge": "br-int"}, "is the integration bridge"),
    ({"tun_peer_patch_port": "a-very-long-port-name"}, "longer than an interface name"),
])
def test_each_unusable_option_is_named(changes, named):
    with pytest.raises(OverlayConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        overlay_settings(dataclasses.replace(OPTIONS, **changes))


def test_the_daemons_preflight_refuses_tunnels_without_local_ip(tmp_path):
    path = tmp_path / "dpagent.conf"
    path.write_text("[DEFAULT]\ntransport_url = rabbit://guest:guest@broker:5672/\n"
                    f"[agent]\ntunnel_types = vxlan\nstatus_socket = {tmp_path}/s.sock\n")
    conf = cfg.ConfigOpts()
    register_opts(conf)
    log.register_options(conf)
    conf(["--config-file", str(path)], project="dpagent", default_config_files=[],
         default_config_dirs=[])
    assert [p for p in preflight_problems(conf) if "local_ip" in p] == [
        "[ovs] local_ip is not set, but [agent] tunnel_types asks for vxlan tunnels: set it "
        "to this host's tunnel endpoint address"]
    conf.set_override("local_ip", "192.0.2.7", "ovs")
    assert preflight_problems(conf) == []
    settings, _ = overlay_settings(options_from_conf(conf))
    assert (settings.bridge, settings.int_patch_port, settings.tun_patch_port,
            settings.vxlan_udp_port, settings.dont_fragment, settings.tunnel_csum) == (
        "br-tun", "patch-tun", "patch-int", 4789, True, False)

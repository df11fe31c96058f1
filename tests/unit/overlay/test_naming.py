"""Tunnel port names equal neutron's (values computed with neutron 29.0.0's
``OVSNeutronAgent.get_tunnel_name``), so an in-place swap finds neutron's ports."""

from __future__ import annotations

import pytest

from dpagent.overlay.naming import BadTunnelEndpoint, tunnel_port_name

NEUTRON_29 = [
    ("vxlan", "192.0.2.2", "vxlan-c0000202"),
    ("geneve", "192.0.2.2", "geneve-c0000202"),
    ("gre", "10.0.0.1", "gre-0a000001"),
    ("vxlan", "2001:db8::2", "vxlan-qtfsbtdew"),
    ("geneve", "2001:db8::2", "geneve-qtfsbtde"),
    ("gre", "2001:db8::2", "gre-qtfsbtdewtq"),
    ("vxlan", "2001:DB8::2", "vxlan-qw4kty37s"),  # as sent, not normalised: another port
    ("geneve", "2001:0db8:0:0:0:0:0:2", "geneve-cat63rtc"),
    ("vxlan", "fd00::1", "vxlan-ajky6puzs"),
]


@pytest.mark.parametrize(("kind", "remote", "name"), NEUTRON_29)
def test_a_tunnel_port_is_named_as_neutron_names_it(kind, remote, name):
    assert tunnel_port_name(kind, remote) == name
    assert len(name) <= 15


def test_an_endpoint_that_is_no_ip_address_is_refused_by_name():
    with pytest.raises(BadTunnelEndpoint, match="vxlan tunnel endpoint 'not-an-ip'"):
        tunnel_port_name("vxlan", "not-an-ip")

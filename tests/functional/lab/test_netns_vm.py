"""Two namespace VMs on a sandbox bridge talk like two VMs on br-int."""

from __future__ import annotations

import pytest

NORMAL = "priority=0,actions=NORMAL\n"


@pytest.fixture
def two_vms(ovs_sandbox, bridge, netns_vm):
    a = netns_vm("a", ipv4=["10.50.0.1/24"], ipv6=["fd00:50::1/64"], ofport_request=1)
    b = netns_vm("b", ipv4=["10.50.0.2/24"], ipv6=["fd00:50::2/64"], ofport_request=2)
    ovs_sandbox.replace_flows(bridge, NORMAL)
    return a, b


def test_vm_port_looks_like_a_nova_vif(ovs_sandbox, two_vms):
    a, _ = two_vms
    ids = ovs_sandbox.vsctl("get", "Interface", a.tap, "external_ids")
    assert f'iface-id="{a.iface_id}"' in ids
    assert f'attached-mac="{a.mac}"' in ids
    assert "iface-status=active" in ids
    assert a.ofport == 1


def test_a_plain_port_carries_no_nova_ids(ovs_sandbox, bridge, netns_vm):
    """An external host (vif=False) must not look like a VIF to an agent watching OVSDB."""
    host = netns_vm("ext", ipv4=["10.50.0.9/24"], vif=False)
    assert ovs_sandbox.vsctl("get", "Interface", host.tap, "external_ids").strip() == "{}"
    assert host.ofport > 0


def test_ping_ipv4_and_ipv6(two_vms):
    a, b = two_vms
    assert a.ping(b.ip4)
    assert b.ping(a.ip4)
    assert a.ping(b.ip6)


def test_tcp_connect_and_a_session_that_stays_up(two_vms):
    a, b = two_vms
    b.tcp_listen(8080)
    assert a.tcp_connect(b.ip4, 8080)
    assert a.tcp_connect(b.ip6, 8080)
    assert not a.tcp_connect(b.ip4, 8081, timeout=1.0)  # nobody listens: RST
    session = a.tcp_session(b.ip4, 8080)
    assert session.connected
    assert session.exchange() and session.exchange()


def test_secure_bridge_without_flows_passes_nothing(ovs_sandbox, bridge, two_vms):
    a, b = two_vms
    ovs_sandbox.replace_flows(bridge, "")
    assert not a.ping(b.ip4, timeout=1.0)


def test_dropping_then_restoring_flows_stalls_then_resumes_a_session(ovs_sandbox, bridge,
                                                                     two_vms):
    a, b = two_vms
    b.tcp_listen(9000)
    session = a.tcp_session(b.ip4, 9000)
    assert session.exchange()
    ovs_sandbox.replace_flows(bridge, "priority=0,actions=drop\n")
    assert not session.exchange(timeout=1.0)
    ovs_sandbox.replace_flows(bridge, NORMAL)
    assert session.exchange(timeout=5.0)  # TCP retransmits once the path is back

"""br-tun's flows: neutron's shapes, owners independent of each other, deterministic text."""

from __future__ import annotations

import pytest

from flows import tunnel
from flows.cookies import LEARNED_COOKIE, Kind, kind_of
from flows.pipeline import TunnelTable

NET = tunnel.TunnelNetwork("net-a", "vxlan", 5001, 3)


def bodies(flows: tuple[object, ...] | list[object]) -> list[str]:
    return [f.content() for f in flows]  # type: ignore[attr-defined]


def test_base_pipeline_is_neutrons_with_the_responder_only_when_asked():
    plain = bodies(tunnel.base_flows(patch_int_ofport=1, arp_responder=False))
    assert plain == [
        "table=0,priority=0,actions=drop",
        "table=0,priority=1,in_port=1,actions=goto_table:2",
        "table=2,priority=0,dl_dst=00:00:00:00:00:00/01:00:00:00:00:00,actions=goto_table:20",
        "table=2,priority=0,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=goto_table:22",
        "table=3,priority=0,actions=drop",
        "table=4,priority=0,actions=drop",
        "table=6,priority=0,actions=drop",
        "table=10,priority=1,actions=learn(table=20,priority=1,hard_timeout=300,"
        f"cookie={LEARNED_COOKIE:#x},NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],"
        "load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],"
        "output:NXM_OF_IN_PORT[]),output:1",
        "table=20,priority=0,actions=goto_table:22",
        "table=22,priority=0,actions=drop",
    ]
    with_responder = set(bodies(tunnel.base_flows(1, arp_responder=True))) - set(plain)
    assert with_responder == {
        "table=2,priority=1,arp,dl_dst=ff:ff:ff:ff:ff:ff,actions=goto_table:21",
        "table=21,priority=0,actions=goto_table:22",
    }


@pytest.mark.parametrize(("kind", "table"), [("vxlan", 4), ("geneve", 6), ("gre", 3)])
def test_a_tunnel_port_leads_to_its_types_table(kind: str, table: int):
    (only,) = tunnel.tunnel_port_flows(kind, 7)
    assert only.content() == f"table=0,priority=1,in_port=7,actions=goto_table:{table}"
    assert kind_of(only.cookie) == Kind.TUNNEL


def test_network_maps_its_vni_to_the_local_vlan_and_floods_to_its_endpoints():
    flows = tunnel.network_flows(NET, [9, 5, 9])
    assert bodies(flows) == [
        "table=4,priority=1,tun_id=0x1389,actions=mod_vlan_vid:3,goto_table:10",
        "table=22,priority=1,dl_vlan=3,actions=strip_vlan,set_field:0x1389->tun_id,"
        "output:5,output:9",
    ]
    geneve = tunnel.TunnelNetwork("net-b", "geneve", 77, 4)
    assert bodies(tunnel.network_flows(geneve, [])) == [
        "table=6,priority=1,tun_id=0x4d,actions=mod_vlan_vid:4,goto_table:10"]


def test_unicast_and_arp_entries_of_one_remote_port():
    uni = tunnel.unicast_flow(NET, "FA:16:3E:AA:BB:CC", 5)
    assert uni.content() == ("table=20,priority=2,dl_vlan=3,dl_dst=fa:16:3e:aa:bb:cc,"
                             "actions=strip_vlan,set_field:0x1389->tun_id,output:5")
    arp = tunnel.arp_responder_flow(NET, "10.0.0.5", "FA:16:3E:AA:BB:CC")
    assert arp.content() == (
        "table=21,priority=1,arp,dl_vlan=3,arp_op=1,arp_tpa=10.0.0.5,actions=set_field:2->arp_op,"
        "move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],"
        "set_field:fa:16:3e:aa:bb:cc->arp_sha,set_field:10.0.0.5->arp_spa,"
        "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:fa:16:3e:aa:bb:cc->eth_src,IN_PORT")
    assert {kind_of(uni.cookie), kind_of(arp.cookie)} == {Kind.FDB}
    with pytest.raises(ValueError):
        tunnel.arp_responder_flow(NET, "10.0.0.300", "fa:16:3e:aa:bb:cc")


def test_same_input_same_cookies_and_tables_are_declared():
    assert tunnel.network_flows(NET, [5]) == tunnel.network_flows(NET, [5])
    used = {f.table for f in tunnel.base_flows(1, True)}
    assert used <= {int(t) for t in TunnelTable}

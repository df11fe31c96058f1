"""The overlay's state: each change touches only the owners it must (O(1) per remote port)."""

from __future__ import annotations

from dpagent.overlay.state import (
    BASE,
    OverlayState,
    arp_owner,
    mac_owner,
    network_owner,
    port_owner,
)
from dpagent.rpc.l2pop import FdbEntry
from flows.tunnel import TunnelNetwork

LOCAL, REMOTE, OTHER = "192.0.2.1", "192.0.2.2", "192.0.2.3"
MAC, MAC2 = "fa:16:3e:00:00:05", "fa:16:3e:00:00:06"


def l2pop_state(networks: int = 1) -> OverlayState:
    state = OverlayState(LOCAL, l2_population=True, arp_responder=True)
    state.set_patch_port(1)
    state.set_networks({f"net{i}": TunnelNetwork(f"net{i}", "vxlan", 5000 + i, i + 1)
                        for i in range(networks)})
    return state


def test_first_port_of_an_endpoint_asks_for_its_tunnel_then_floods_to_it():
    state = l2pop_state()
    changes = state.add_fdb([FdbEntry("net0", REMOTE), FdbEntry("net0", REMOTE, MAC, "10.0.0.5")])
    assert changes.owners == {network_owner("net0"), mac_owner("net0", MAC),
                              arp_owner("net0", "10.0.0.5")}
    assert state.wanted_endpoints() == {("vxlan", REMOTE)}
    assert state.flows_of(mac_owner("net0", MAC)) is None  # no tunnel port yet
    changes = state.set_ofport(("vxlan", REMOTE), 9)
    assert changes.owners == {port_owner(("vxlan", REMOTE)), network_owner("net0"),
                              mac_owner("net0", MAC)}
    (flood,) = [f for f in state.flows_of(network_owner("net0")) or () if f.table == 22]
    assert flood.actions[-1] == "output:9"
    (unicast,) = state.flows_of(mac_owner("net0", MAC)) or ()
    assert unicast.actions[-1] == "output:9"


def test_one_more_remote_port_costs_the_same_whatever_the_host_holds():
    for networks in (1, 100):
        state = l2pop_state(networks)
        for i in range(networks):
            state.add_fdb([FdbEntry(f"net{i}", REMOTE), FdbEntry(f"net{i}", OTHER)])
        state.set_ofport(("vxlan", REMOTE), 9)
        state.set_ofport(("vxlan", OTHER), 10)
        changes = state.add_fdb([FdbEntry("net0", REMOTE, MAC, "10.0.0.5")])
        assert changes.owners == {mac_owner("net0", MAC), arp_owner("net0", "10.0.0.5")}
        changes = state.remove_fdb([FdbEntry("net0", REMOTE, MAC, "10.0.0.5")])
        assert changes.owners == {mac_owner("net0", MAC), arp_owner("net0", "10.0.0.5")}
        assert state.flows_of(mac_owner("net0", MAC)) is None


def test_last_entry_of_an_endpoint_releases_its_tunnel():
    state = l2pop_state()
    state.add_fdb([FdbEntry("net0", REMOTE), FdbEntry("net0", REMOTE, MAC, "10.0.0.5")])
    state.remove_fdb([FdbEntry("net0", REMOTE, MAC, "10.0.0.5")])
    assert state.wanted_endpoints() == {("vxlan", REMOTE)}
    changes = state.remove_fdb([FdbEntry("net0", REMOTE)])
    assert changes.owners == {network_owner("net0")}
    assert state.wanted_endpoints() == set()
    assert state.tunnels_missing()


def test_entries_of_this_host_or_foreign_networks_are_ignored_and_said():
    state = l2pop_state()
    changes = state.add_fdb([FdbEntry("net0", LOCAL), FdbEntry("elsewhere", REMOTE)])
    assert changes.owners == set() and [i.level for i in changes.ignored] == ["debug", "debug"]
    assert "192.0.2.1" in changes.ignored[0].what and "elsewhere" in changes.ignored[1].what


def test_a_migrating_mac_follows_the_latest_claim_and_survives_the_old_ones_removal():
    state = l2pop_state()
    state.set_ofport(("vxlan", REMOTE), 9)
    state.set_ofport(("vxlan", OTHER), 10)
    state.add_fdb([FdbEntry("net0", REMOTE, MAC, "10.0.0.5")])
    state.add_fdb([FdbEntry("net0", OTHER, MAC, "10.0.0.5")])  # the new host speaks first
    assert (state.flows_of(mac_owner("net0", MAC)) or ())[0].actions[-1] == "output:10"
    state.remove_fdb([FdbEntry("net0", REMOTE, MAC, "10.0.0.5")])
    assert (state.flows_of(mac_owner("net0", MAC)) or ())[0].actions[-1] == "output:10"
    assert state.flows_of(arp_owner("net0", "10.0.0.5")) is not None


def test_changed_fixed_ip_moves_only_the_arp_entry():
    state = l2pop_state()
    state.set_ofport(("vxlan", REMOTE), 9)
    state.add_fdb([FdbEntry("net0", REMOTE, MAC, "10.0.0.5")])
    changes = state.change_ips("net0", REMOTE, [(MAC, "10.0.0.5")], [(MAC, "10.0.0.6")])
    assert arp_owner("net0", "10.0.0.5") in changes.owners
    assert state.flows_of(arp_owner("net0", "10.0.0.5")) is None
    assert state.flows_of(arp_owner("net0", "10.0.0.6")) is not None
    assert state.flows_of(mac_owner("net0", MAC)) is not None


def test_ipv6_addresses_get_unicast_but_no_arp_entry():
    state = l2pop_state()
    changes = state.add_fdb([FdbEntry("net0", REMOTE, MAC2, "2001:db8::5")])
    assert changes.owners == {mac_owner("net0", MAC2)}


def test_without_l2population_every_static_endpoint_of_the_type_floods():
    state = OverlayState(LOCAL, l2_population=False, arp_responder=False)
    state.set_patch_port(1)
    state.set_networks({"a": TunnelNetwork("a", "vxlan", 5001, 1),
                        "g": TunnelNetwork("g", "geneve", 77, 2)})
    changes = state.set_static("vxlan", [LOCAL, REMOTE, OTHER])
    assert changes.owners == {network_owner("a")}
    assert state.wanted_endpoints() == {("vxlan", REMOTE), ("vxlan", OTHER)}
    state.set_ofport(("vxlan", REMOTE), 9)
    state.set_ofport(("vxlan", OTHER), 10)
    flood = [f for f in state.flows_of(network_owner("a")) or () if f.table == 22]
    assert flood[0].actions[-2:] == ("output:9", "output:10")
    assert len(state.flows_of(network_owner("g")) or ()) == 1  # no geneve endpoint: no flood
    assert state.set_static("vxlan", [REMOTE]).owners == {network_owner("a")}
    assert state.wanted_endpoints() == {("vxlan", REMOTE)}


def test_a_network_leaving_takes_its_entries_and_every_owner_is_recomputable():
    state = l2pop_state(2)
    state.set_ofport(("vxlan", REMOTE), 9)
    state.add_fdb([FdbEntry("net0", REMOTE), FdbEntry("net0", REMOTE, MAC, "10.0.0.5"),
                   FdbEntry("net1", REMOTE)])
    assert BASE in state.all_owners()
    changes = state.set_networks({"net1": state.networks["net1"]})
    assert changes.owners == {network_owner("net0"), mac_owner("net0", MAC),
                              arp_owner("net0", "10.0.0.5")}
    assert all(state.flows_of(o) is None for o in changes.owners)
    assert state.wanted_endpoints() == {("vxlan", REMOTE)}


def test_a_deleted_endpoint_takes_its_l2population_entries_along():
    state = l2pop_state(2)
    state.set_ofport(("vxlan", REMOTE), 9)
    state.add_fdb([FdbEntry("net0", REMOTE), FdbEntry("net0", REMOTE, MAC, "10.0.0.5"),
                   FdbEntry("net1", REMOTE), FdbEntry("net1", OTHER)])
    changes = state.remove_endpoint("vxlan", REMOTE)
    assert changes.owners >= {network_owner("net0"), network_owner("net1"),
                              mac_owner("net0", MAC), arp_owner("net0", "10.0.0.5")}
    assert ("vxlan", REMOTE) in changes.endpoints
    assert not state.endpoint_wanted(("vxlan", REMOTE))
    assert state.wanted_endpoints() == {("vxlan", OTHER)}

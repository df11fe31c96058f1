"""br-int's uplinks by network type: physical bridges for flat/VLAN, br-tun for tunnels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dpagent.agent.uplinks import HostUplinks, recorded_segments, tunnelled
from flows.model import Uplink
from flows.tunnel import TunnelNetwork


class Physical:
    def __init__(self) -> None:
        self.present: list[Any] = []
        self.taken_over = False

    def uplink(self, network_type: str, physical_network: str | None,
               segmentation_id: int | str | None) -> Uplink | None:
        return Uplink(7, int(segmentation_id)) if network_type == "vlan" else None

    def set_networks(self, present: list[tuple[str, str, int | str | None]]) -> None:
        self.present = present

    def take_over_deferred(self) -> None:
        self.taken_over = True


class Tunnels:
    def __init__(self) -> None:
        self.networks: Mapping[str, TunnelNetwork] = {}

    def uplink(self, network_type: str, local_vlan: int) -> Uplink | None:
        return Uplink(9, local_vlan)

    def set_networks(self, networks: Mapping[str, TunnelNetwork]) -> None:
        self.networks = networks

    def take_over_deferred(self) -> None:
        pass

    def refresh_tunnels(self) -> bool:
        return True


def test_each_network_type_goes_to_its_uplink():
    physical, tunnels = Physical(), Tunnels()
    uplinks = HostUplinks(physical, tunnels)
    assert uplinks.uplink("n1", 3, ("vlan", "physnet1", 100)) == Uplink(7, 100)
    assert uplinks.uplink("n2", 4, ("vxlan", None, 5001)) == Uplink(9, 4)
    assert HostUplinks(physical, None).uplink("n2", 4, ("vxlan", None, 5001)) is None
    uplinks.set_networks({"n1": (("vlan", "physnet1", 100), 3),
                          "n2": (("vxlan", None, 5001), 4),
                          "n3": (("geneve", None, "bogus"), 5)})
    assert physical.present == [("physnet1", "vlan", 100)]
    assert tunnels.networks == {"n2": TunnelNetwork("n2", "vxlan", 5001, 4)}  # n3 logged
    assert uplinks.refresh_tunnels() and not HostUplinks(physical, None).refresh_tunnels()


def test_recorded_tunnelled_networks_keep_their_vlan_across_a_restart():
    recorded = {"tap1": {"net_uuid": "n2", "tag": "4", "network_type": "vxlan",
                         "physical_network": "None", "segmentation_id": "5001"},
                "tap2": {"net_uuid": "n2", "tag": "4", "network_type": "vxlan",
                         "segmentation_id": "5001"},
                "tap3": {"tag": "7"}}
    segments = recorded_segments(recorded)
    assert set(segments) == {"n2"}
    assert tunnelled(segments) == {"n2": TunnelNetwork("n2", "vxlan", 5001, 4)}

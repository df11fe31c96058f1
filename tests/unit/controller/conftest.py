"""Fixtures: a controller state on a real SQLite file, and the sample topology."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from oslo_messaging._drivers import impl_fake

from dpagent.controller.notifier import Cast
from dpagent.controller.state import ControllerState
from dpagent.controller.store import Store
from dpagent.controller.topology import load_document

SAMPLE = """
version: 1
networks:
  - name: net-a
    type: flat
    physnet: null
    subnets:
      - {cidr: 10.10.0.0/24, gateway_ip: 10.10.0.1}
      - {cidr: "fd00:a::/64"}
  - {name: net-v, type: vlan, physnet: physnet1, segmentation_id: 100,
     subnets: [{cidr: 10.20.0.0/24}]}
security_groups:
  - name: web
    rules:
      - {direction: ingress, ethertype: IPv4, protocol: tcp, port_range: "80",
         remote_ip_prefix: 0.0.0.0/0}
      - {direction: ingress, ethertype: IPv4, protocol: tcp, port_range: "5432",
         remote_group: web}
      - {direction: ingress, ethertype: IPv4, protocol: icmp, remote_address_group: ops}
      - {direction: egress, ethertype: IPv4}
  - {name: quiet, stateful: false, rules: [{direction: egress}]}
address_groups:
  - {name: ops, addresses: [192.0.2.0/24]}
ports:
  - name: vm1
    network: net-a
    mac: "fa:16:3e:00:00:01"
    fixed_ips: [10.10.0.11, "fd00:a::11"]
    security_groups: [web]
    allowed_address_pairs: [{ip_address: 10.10.0.100}]
    host: compute1
  - {name: vm2, network: net-a, security_groups: [web], host: compute1}
  - {name: vm3, network: net-v, host: compute1, mac: "fa:16:3e:00:00:03"}
  - {name: vm3-sub10, network: net-a}
  - {name: sr1, network: net-v, vnic_type: direct, pci_slot: "0000:00:02.1", host: compute1}
  - {name: other, network: net-a, host: compute2}
trunks:
  - name: trunk1
    parent: vm3
    subports: [{port: vm3-sub10, segmentation_type: vlan, segmentation_id: 10}]
"""


def sample() -> dict:
    return load_document(SAMPLE)


class Sent(list[Cast]):
    """Casts the state asked to send, in order."""

    def __call__(self, casts: list[Cast]) -> None:
        self.extend(casts)

    def methods(self) -> list[str]:
        return [c.method for c in self]


@pytest.fixture(autouse=True)
def _empty_fake_broker() -> Iterator[None]:
    impl_fake.FakeExchangeManager.cleanup()
    yield
    impl_fake.FakeExchangeManager.cleanup()


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "controller.sqlite")


@pytest.fixture
def sent() -> Sent:
    return Sent()


@pytest.fixture
def state(db_path: str, sent: Sent) -> Iterator[ControllerState]:
    store = Store(db_path)
    yield ControllerState(store, agent_down_time=75, send=sent)
    store.close()


@pytest.fixture
def loaded(state: ControllerState, sent: Sent) -> ControllerState:
    state.apply(sample())
    sent.clear()
    return state


def port_id(state: ControllerState, name: str) -> str:
    return next(p.id for p in state.topology.ports.values() if p.name == name)


def group_id(state: ControllerState, name: str) -> str:
    groups = {**state.topology.security_groups, **state.topology.address_groups}
    return next(g.id for g in groups.values() if g.name == name)

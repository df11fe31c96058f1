"""What the demo's sample topology means to allow, written down by hand.

The expected cells are the topology's *intent* read by a person, not the output of dpagent's
compiler: computing them with the code under demonstration would prove nothing. Change
``topology.yaml`` and this file together; a topology given with ``--topology`` is measured
against this same intent, so a different policy shows up as mismatches.

The groups (see topology.yaml):

* ``web`` (stateful): tcp/80 and ICMP from anywhere; all egress.
* ``db`` (stateful): tcp/5432 only from members of ``web``; all egress.
* ``mon`` (stateless): ICMP in, all egress -- and nothing else in, replies included.

Every VM and the external host listen on tcp/80 and tcp/5432, so a blocked cell is the
firewall's doing, never a closed port.
"""

from __future__ import annotations

from dataclasses import dataclass

PING = "ping"
HTTP = "tcp/80"
PG = "tcp/5432"
SERVICES = (PING, HTTP, PG)
TCP_PORTS = {HTTP: 80, PG: 5432}

VMS = ("web1", "db1", "mon1", "late", "web2")
"""Ports of the topology the demo plugs as namespace VMs (``late`` only while cordoned)."""
LATE = "late"


@dataclass(frozen=True)
class ExternalHost:
    """A host behind the physical bridge, on the provider network's VLAN (not a port)."""

    name: str
    network: str
    cidr: str


EXTERNAL = ExternalHost("ext", "net-b", "10.20.0.99/24")


@dataclass(frozen=True)
class Spoofer:
    """``vm`` sends from ``address``, which is not its own: anti-spoofing must drop it."""

    vm: str
    address: str

    @property
    def label(self) -> str:
        return f"{self.vm}@{self.address.rsplit('.', 1)[-1]}"


SPOOFER = Spoofer("db1", "10.10.0.99")

# source -> destination: reachable over (ping, tcp/80, tcp/5432); "+" yes, "-" no.
# Only pairs on the same network: there is no router between net-a and net-b.
INTENT: dict[tuple[str, str], str] = {
    # net-a (internal)
    ("web1", "db1"): "--+",    # db: 5432 from web members only; no ICMP rule
    ("web1", "mon1"): "+--",   # mon: ICMP only
    ("web1", "late"): "++-",   # web: 80 and ICMP from anywhere
    ("db1", "web1"): "++-",
    ("db1", "mon1"): "+--",
    ("db1", "late"): "++-",
    ("mon1", "web1"): "+--",   # stateless: the echo reply has mon's ICMP rule, web's SYN-ACK none
    ("mon1", "db1"): "---",    # mon is not a web member
    ("mon1", "late"): "+--",
    ("late", "web1"): "++-",
    ("late", "db1"): "--+",    # late is a web member
    ("late", "mon1"): "+--",
    # net-b (VLAN 100 on physnet1, through the patch port to br-phys)
    ("web2", "ext"): "+++",    # the external host has no firewall
    ("ext", "web2"): "++-",
}

# The spoofer's pings (its address is not its port's): dropped whatever the destination allows.
SPOOF_INTENT: dict[str, bool] = {"web1": False, "mon1": False}

WHY: dict[tuple[str, str, str], str] = {
    ("web1", "db1", PG): "db allows 5432 from the web group, and web1 is a member",
    ("mon1", "db1", PG): "mon1 is not in the web group: no rule allows it",
    ("mon1", "web1", HTTP): "mon is stateless: web1's SYN-ACK needs an ingress rule on mon1",
    ("mon1", "web1", PING): "stateless, but mon's ICMP ingress rule lets the echo reply in",
    (SPOOFER.label, "web1", PING): f"anti-spoofing: {SPOOFER.address} is not db1's address",
    ("ext", "web2", HTTP): "from behind the physical bridge: VLAN 100 through the patch port",
    ("late", "db1", PG): "late joins the web group's members once it is wired",
}


def intent(source: str, destination: str, service: str) -> bool | None:
    """Whether ``service`` from ``source`` to ``destination`` is meant to work; None: not
    a pair the demo probes (the same endpoint, or different networks)."""
    if source == SPOOFER.label:
        return SPOOF_INTENT.get(destination) if service == PING else None
    cells = INTENT.get((source, destination))
    if cells is None:
        return None
    return cells[SERVICES.index(service)] == "+"

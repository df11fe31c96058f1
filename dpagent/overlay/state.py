"""What the overlay knows, and which of br-tun's flow owners each change touches. Pure.

The state is the host's tunnelled networks (from the agent core), the remote endpoints
(l2population's forwarding entries, or ``tunnel_sync``/``tunnel_update`` without it) and the
ofports of the tunnel ports made for them. Every change returns the owners whose flows it
changed, so the manager recompiles and sends only those: one remote port added is its unicast
and ARP flows (plus the network's flood flow and a tunnel port when it is the endpoint's first
port there), whatever the number of networks and endpoints on the host.

Owners (the programmer's names):

* ``tun:base`` -- the pipeline (:func:`flows.tunnel.base_flows`);
* ``tun:port:<type>:<ip>`` -- a tunnel port's classification;
* ``tun:net:<network>`` -- VNI to local VLAN, and the flood list;
* ``tun:mac:<network>:<mac>`` -- unicast to the endpoint that has the MAC;
* ``tun:arp:<network>:<ip>`` -- the ARP responder's answer for a remote IPv4 address.

A MAC or IP claimed by two endpoints at once (a port migrating between hosts: the new host's
entry may arrive before the old one's removal) is kept per claimant; the latest claim wins, and
removing one claim never takes away another's flow.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dpagent.rpc.l2pop import FdbEntry
from flows import Flow, tunnel
from flows.tunnel import TunnelNetwork

BASE = "tun:base"
Endpoint = tuple[str, str]
"""(tunnel type, remote IP) -- one tunnel port."""


@dataclass
class _Remote:
    """One endpoint's entries on one network."""

    flood: bool = False
    ports: set[tuple[str, str]] = field(default_factory=set)
    """(mac, ip) pairs of its ports."""

    def __bool__(self) -> bool:
        return self.flood or bool(self.ports)


@dataclass(frozen=True, slots=True)
class Ignored:
    """An entry the state did not take, and why (the manager logs it)."""

    level: str  # "debug" (expected: other hosts' networks, our own IP) or "warning"
    what: str


@dataclass
class Changes:
    owners: set[str] = field(default_factory=set)
    ignored: list[Ignored] = field(default_factory=list)
    endpoints: set[Endpoint] = field(default_factory=set)
    """Endpoints whose need for a tunnel port may have changed (see ``endpoint_wanted``)."""

    def __ior__(self, other: Changes) -> Changes:
        self.owners |= other.owners
        self.ignored += other.ignored
        self.endpoints |= other.endpoints
        return self


def port_owner(endpoint: Endpoint) -> str:
    return f"tun:port:{endpoint[0]}:{endpoint[1]}"


def network_owner(network_id: str) -> str:
    return f"tun:net:{network_id}"


def mac_owner(network_id: str, mac: str) -> str:
    return f"tun:mac:{network_id}:{mac}"


def arp_owner(network_id: str, ip: str) -> str:
    return f"tun:arp:{network_id}:{ip}"


class OverlayState:
    """The overlay's desired state; see the module's notes."""

    def __init__(self, local_ip: str, l2_population: bool, arp_responder: bool) -> None:
        self.local_ip = local_ip
        self.l2_population = l2_population
        self.arp_responder = arp_responder
        self.patch_int_ofport: int | None = None
        self.networks: dict[str, TunnelNetwork] = {}
        self.ofports: dict[Endpoint, int] = {}
        """Tunnel ports that exist, with their ofports."""
        self.static: set[Endpoint] = set()
        """Endpoints of tunnel_sync / tunnel_update (used without l2population)."""
        self.fdb: dict[str, dict[str, _Remote]] = {}
        """network -> remote IP -> its entries (l2population)."""
        self._macs: dict[tuple[str, str], dict[str, None]] = {}
        """(network, mac) -> the endpoints claiming it, oldest first."""
        self._ips: dict[tuple[str, str], dict[tuple[str, str], None]] = {}
        """(network, IPv4) -> the (endpoint, mac) claiming it, oldest first."""

    # -- inputs ----------------------------------------------------------------------------

    def set_patch_port(self, ofport: int | None) -> Changes:
        if ofport == self.patch_int_ofport:
            return Changes()
        self.patch_int_ofport = ofport
        return Changes({BASE})

    def set_networks(self, networks: Mapping[str, TunnelNetwork]) -> Changes:
        """The tunnelled networks on this host now; a network gone takes its entries along."""
        changes = Changes()
        for network_id in sorted(self.networks.keys() - networks.keys()):
            changes |= self._drop_network(network_id)
            del self.networks[network_id]
        for network_id, network in sorted(networks.items()):
            before = self.networks.get(network_id)
            if before == network:
                continue
            self.networks[network_id] = network
            changes.owners.add(network_owner(network_id))
            if before is not None:  # new VLAN or VNI: every flow of the network changes
                changes.owners |= self._entry_owners(network_id)
        return changes

    def add_fdb(self, entries: Iterable[FdbEntry]) -> Changes:
        changes = Changes()
        for entry in entries:
            if self._skip(entry, changes):
                continue
            remote = self.fdb.setdefault(entry.network_id, {}).setdefault(entry.remote_ip,
                                                                         _Remote())
            changes.endpoints.add((self.networks[entry.network_id].network_type,
                                   entry.remote_ip))
            if entry.mac is None:
                if not remote.flood:
                    remote.flood = True
                    changes.owners.add(network_owner(entry.network_id))
                continue
            pair = (entry.mac.lower(), entry.ip or "")
            if pair in remote.ports:
                continue
            remote.ports.add(pair)
            changes.owners |= self._claim(entry.network_id, entry.remote_ip, pair)
        return changes

    def remove_fdb(self, entries: Iterable[FdbEntry]) -> Changes:
        changes = Changes()
        for entry in entries:
            if self._skip(entry, changes):
                continue
            remote = self.fdb.get(entry.network_id, {}).get(entry.remote_ip)
            if remote is None:
                continue
            changes.endpoints.add((self.networks[entry.network_id].network_type,
                                   entry.remote_ip))
            if entry.mac is None:
                if remote.flood:
                    remote.flood = False
                    changes.owners.add(network_owner(entry.network_id))
            else:
                pair = (entry.mac.lower(), entry.ip or "")
                if pair in remote.ports:
                    remote.ports.discard(pair)
                    changes.owners |= self._unclaim(entry.network_id, entry.remote_ip, pair)
            if not remote:
                del self.fdb[entry.network_id][entry.remote_ip]
        return changes

    def change_ips(self, network_id: str, remote_ip: str, before: Iterable[tuple[str, str]],
                   after: Iterable[tuple[str, str]]) -> Changes:
        """A remote port's fixed IPs changed (``update_fdb_entries`` ``chg_ip``)."""
        changes = self.remove_fdb(FdbEntry(network_id, remote_ip, mac, ip) for mac, ip in before)
        changes |= self.add_fdb(FdbEntry(network_id, remote_ip, mac, ip) for mac, ip in after)
        return changes

    def remove_endpoint(self, network_type: str, remote_ip: str) -> Changes:
        """An endpoint is gone (``tunnel_delete``): its static entry and, on every network of
        its type, its l2population entries."""
        changes = self.remove_static(network_type, remote_ip)
        for network_id, network in self.networks.items():
            remote = self.fdb.get(network_id, {}).get(remote_ip)
            if remote is None or network.network_type != network_type:
                continue
            entries = [FdbEntry(network_id, remote_ip)] if remote.flood else []
            entries += [FdbEntry(network_id, remote_ip, mac, ip or None)
                        for mac, ip in sorted(remote.ports)]
            changes |= self.remove_fdb(entries)
        changes.endpoints.add((network_type, remote_ip))
        return changes

    def set_static(self, network_type: str, remote_ips: Iterable[str]) -> Changes:
        """All endpoints of a type (tunnel_sync's answer), without l2population."""
        wanted = {(network_type, ip) for ip in remote_ips if ip != self.local_ip}
        current = {e for e in self.static if e[0] == network_type}
        changes = Changes()
        for endpoint in wanted - current:
            changes |= self.add_static(*endpoint)
        for endpoint in current - wanted:
            changes |= self.remove_static(*endpoint)
        return changes

    def add_static(self, network_type: str, remote_ip: str) -> Changes:
        endpoint = (network_type, remote_ip)
        if remote_ip == self.local_ip or endpoint in self.static:
            return Changes()
        self.static.add(endpoint)
        return Changes(self._flooding_via(endpoint), endpoints={endpoint})

    def remove_static(self, network_type: str, remote_ip: str) -> Changes:
        endpoint = (network_type, remote_ip)
        if endpoint not in self.static:
            return Changes()
        self.static.discard(endpoint)
        return Changes(self._flooding_via(endpoint), endpoints={endpoint})

    def set_ofport(self, endpoint: Endpoint, ofport: int | None) -> Changes:
        """A tunnel port was made (its ofport) or deleted (None)."""
        if self.ofports.get(endpoint) == ofport:
            return Changes()
        if ofport is None:
            self.ofports.pop(endpoint, None)
        else:
            self.ofports[endpoint] = ofport
        owners = {port_owner(endpoint)} | self._flooding_via(endpoint)
        for network_id, remotes in self.fdb.items():
            network = self.networks.get(network_id)
            remote = remotes.get(endpoint[1])
            if network is None or remote is None or network.network_type != endpoint[0]:
                continue
            owners |= {mac_owner(network_id, mac) for mac, _ in remote.ports
                       if self._holder(network_id, mac) == endpoint[1]}
        return Changes(owners)

    # -- outputs -----------------------------------------------------------------------------

    def wanted_endpoints(self) -> set[Endpoint]:
        """The tunnel ports br-tun should have: l2population's endpoints of local networks,
        or every static endpoint without it."""
        if not self.l2_population:
            return set(self.static)
        wanted = set()
        for network_id, remotes in self.fdb.items():
            network = self.networks.get(network_id)
            if network is not None:
                wanted |= {(network.network_type, ip) for ip, r in remotes.items() if r}
        return wanted

    def endpoint_wanted(self, endpoint: Endpoint) -> bool:
        """Whether ``endpoint`` needs a tunnel port (one endpoint of :meth:`wanted_endpoints`,
        at the cost of the host's networks, not of networks times endpoints)."""
        if not self.l2_population:
            return endpoint in self.static
        network_type, ip = endpoint
        return any(net.network_type == network_type and self.fdb.get(n, {}).get(ip)
                   for n, net in self.networks.items())

    def tunnels_missing(self) -> bool:
        """A local network floods to no endpoint (l2population): the server should resend
        the entries (``refresh_tunnels``), as neutron's agent asks then."""
        return self.l2_population and any(
            not any(r.flood for r in self.fdb.get(n, {}).values()) for n in self.networks)

    def all_owners(self) -> set[str]:
        owners = {BASE} | {port_owner(e) for e in self.ofports}
        for network_id in self.networks:
            owners.add(network_owner(network_id))
            owners |= self._entry_owners(network_id)
        return owners

    def flows_of(self, owner: str) -> tuple[Flow, ...] | None:
        """The flows ``owner`` wants now (None: the owner has nothing and goes)."""
        kind, _, rest = owner.partition(":")[2].partition(":")
        if owner == BASE:
            if self.patch_int_ofport is None:
                return None
            return tunnel.base_flows(self.patch_int_ofport, self.arp_responder)
        if kind == "port":
            network_type, _, ip = rest.partition(":")
            ofport = self.ofports.get((network_type, ip))
            return None if ofport is None else tunnel.tunnel_port_flows(network_type, ofport)
        if kind == "net":
            network = self.networks.get(rest)
            return None if network is None else tunnel.network_flows(network,
                                                                    self._flood_ports(network))
        network_id, _, item = rest.partition(":")
        network = self.networks.get(network_id)
        if network is None:
            return None
        if kind == "mac":
            holder = self._holder(network_id, item)
            ofport = None if holder is None else self.ofports.get((network.network_type, holder))
            return None if ofport is None else (tunnel.unicast_flow(network, item, ofport),)
        if kind == "arp":
            claims = self._ips.get((network_id, item))
            if not self.arp_responder or not claims:
                return None
            _, mac = next(reversed(claims))
            return (tunnel.arp_responder_flow(network, item, mac),)
        raise ValueError(f"not an overlay flow owner: {owner}")

    # -- internals ---------------------------------------------------------------------------

    def _skip(self, entry: FdbEntry, changes: Changes) -> bool:
        if entry.remote_ip == self.local_ip:
            changes.ignored.append(Ignored("debug", f"entry of this host ({entry.remote_ip}) "
                                           f"on network {entry.network_id}"))
            return True
        if entry.network_id not in self.networks:
            changes.ignored.append(Ignored("debug", f"entry for network {entry.network_id}, "
                                           "which has no port on this host"))
            return True
        return False

    def _claim(self, network_id: str, remote_ip: str, pair: tuple[str, str]) -> set[str]:
        mac, ip = pair
        claims = self._macs.setdefault((network_id, mac), {})
        claims.pop(remote_ip, None)
        claims[remote_ip] = None  # the latest claim wins
        owners = {mac_owner(network_id, mac)}
        if _is_ipv4(ip):
            ip_claims = self._ips.setdefault((network_id, ip), {})
            ip_claims.pop((remote_ip, mac), None)
            ip_claims[(remote_ip, mac)] = None
            owners.add(arp_owner(network_id, ip))
        return owners

    def _unclaim(self, network_id: str, remote_ip: str, pair: tuple[str, str]) -> set[str]:
        mac, ip = pair
        owners = set()
        remote = self.fdb[network_id][remote_ip]
        if not any(m == mac for m, _ in remote.ports):  # its last IP with this MAC
            claims = self._macs.get((network_id, mac), {})
            claims.pop(remote_ip, None)
            if not claims:
                self._macs.pop((network_id, mac), None)
            owners.add(mac_owner(network_id, mac))
        if _is_ipv4(ip):
            ip_claims = self._ips.get((network_id, ip), {})
            ip_claims.pop((remote_ip, mac), None)
            if not ip_claims:
                self._ips.pop((network_id, ip), None)
            owners.add(arp_owner(network_id, ip))
        return owners

    def _holder(self, network_id: str, mac: str) -> str | None:
        claims = self._macs.get((network_id, mac))
        return next(reversed(claims)) if claims else None

    def _entry_owners(self, network_id: str) -> set[str]:
        owners = set()
        for remote in self.fdb.get(network_id, {}).values():
            for mac, ip in remote.ports:
                owners.add(mac_owner(network_id, mac))
                if _is_ipv4(ip):
                    owners.add(arp_owner(network_id, ip))
        return owners

    def _drop_network(self, network_id: str) -> Changes:
        owners = {network_owner(network_id)} | self._entry_owners(network_id)
        kind = self.networks[network_id].network_type
        endpoints = {(kind, ip) for ip in self.fdb.pop(network_id, {})}
        for key in [k for k in self._macs if k[0] == network_id]:
            del self._macs[key]
        for key in [k for k in self._ips if k[0] == network_id]:
            del self._ips[key]
        return Changes(owners, endpoints=endpoints)

    def _flood_ports(self, network: TunnelNetwork) -> list[int]:
        if self.l2_population:
            endpoints = [(network.network_type, ip) for ip, remote in
                         self.fdb.get(network.network_id, {}).items() if remote.flood]
        else:
            endpoints = [e for e in self.static if e[0] == network.network_type]
        return [self.ofports[e] for e in endpoints if e in self.ofports]

    def _flooding_via(self, endpoint: Endpoint) -> set[str]:
        """The networks whose flood list may hold ``endpoint``."""
        network_type, ip = endpoint
        if self.l2_population:
            return {network_owner(n) for n, net in self.networks.items()
                    if net.network_type == network_type and ip in self.fdb.get(n, {})}
        return {network_owner(n) for n, net in self.networks.items()
                if net.network_type == network_type}


def _is_ipv4(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 4
    except ValueError:
        return False

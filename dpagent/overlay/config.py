"""The overlay's options, checked once: neutron's names and defaults, every problem at once.

Pure: the daemon's preflight calls :func:`overlay_settings` before it forks (a mistake stops the
agent with exit 2, naming the option) and the overlay manager is built from the result.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

TUNNEL_TYPES = ("vxlan", "geneve", "gre")
DEFAULT_VXLAN_PORT = 4789


class OverlayConfigError(Exception):
    """The overlay options are unusable; the message lists every problem, one per line."""


@dataclass(frozen=True, slots=True)
class OverlaySettings:
    """What the overlay is configured to do. ``tunnel_types`` empty: no overlay at all."""

    tunnel_types: tuple[str, ...] = ()
    local_ip: str | None = None
    bridge: str = "br-tun"
    int_patch_port: str = "patch-tun"
    tun_patch_port: str = "patch-int"
    l2_population: bool = False
    arp_responder: bool = False
    """Effective value: asked for *and* l2_population on (it needs l2pop's IPs)."""
    vxlan_udp_port: int = DEFAULT_VXLAN_PORT
    dont_fragment: bool = True
    tunnel_csum: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.tunnel_types)

    @property
    def ip_version(self) -> int | None:
        return ipaddress.ip_address(self.local_ip).version if self.local_ip else None


@dataclass(frozen=True, slots=True)
class OverlayOptions:
    """The raw option values, as oslo.config gives them."""

    tunnel_types: Iterable[str]
    local_ip: str | None
    tunnel_bridge: str
    int_peer_patch_port: str
    tun_peer_patch_port: str
    l2_population: bool
    arp_responder: bool
    vxlan_udp_port: int
    dont_fragment: bool
    tunnel_csum: bool
    integration_bridge: str
    bridge_mappings: Mapping[str, str]


def overlay_settings(options: OverlayOptions) -> tuple[OverlaySettings, list[str]]:
    """The settings and the warnings to log; :class:`OverlayConfigError` naming every problem.

    The overlay's own options are judged only when ``tunnel_types`` asks for an overlay: a
    neutron configuration file copied over may well carry a ``local_ip`` for nothing.
    """
    types = tuple(dict.fromkeys(t.strip().lower() for t in options.tunnel_types if t.strip()))
    if not types:
        return OverlaySettings(), []
    problems: list[str] = []
    warnings: list[str] = []
    unknown = [t for t in types if t not in TUNNEL_TYPES]
    if unknown:
        problems.append(f"[agent] tunnel_types: unsupported type {', '.join(unknown)} "
                        f"(supported: {', '.join(TUNNEL_TYPES)})")
    local_ip = (options.local_ip or "").strip() or None
    if local_ip is None:
        problems.append("[ovs] local_ip is not set, but [agent] tunnel_types asks for "
                        f"{', '.join(types)} tunnels: set it to this host's tunnel endpoint "
                        "address")
    else:
        try:
            address = ipaddress.ip_address(local_ip)
        except ValueError:
            problems.append(f"[ovs] local_ip: {local_ip!r} is not an IP address")
        else:
            local_ip = str(address)
            if address.version == 6 and "gre" in types:
                problems.append("[agent] tunnel_types: gre over IPv6 ([ovs] local_ip "
                                f"{local_ip}) is not supported; use vxlan or geneve")
            if address.is_multicast or address.is_unspecified or address.is_loopback:
                problems.append(f"[ovs] local_ip: {local_ip} cannot be a tunnel endpoint")
    problems += _bridge_problems(options)
    arp_responder = options.arp_responder
    if arp_responder and not options.l2_population:
        warnings.append("[agent] arp_responder needs [agent] l2_population (the server's "
                        "entries say which IP each remote port has): the ARP responder is off")
        arp_responder = False
    if problems:
        raise OverlayConfigError("\n".join(problems))
    return OverlaySettings(
        tunnel_types=types, local_ip=local_ip, bridge=options.tunnel_bridge,
        int_patch_port=options.int_peer_patch_port, tun_patch_port=options.tun_peer_patch_port,
        l2_population=options.l2_population, arp_responder=arp_responder,
        vxlan_udp_port=options.vxlan_udp_port, dont_fragment=options.dont_fragment,
        tunnel_csum=options.tunnel_csum), warnings


def _bridge_problems(options: OverlayOptions) -> list[str]:
    problems = []
    bridge = options.tunnel_bridge
    if not bridge:
        problems.append("[ovs] tunnel_bridge is empty")
    elif bridge == options.integration_bridge:
        problems.append(f"[ovs] tunnel_bridge {bridge} is the integration bridge; tunnels need "
                        "a bridge of their own")
    elif bridge in options.bridge_mappings.values():
        physnets = sorted(p for p, b in options.bridge_mappings.items() if b == bridge)
        problems.append(f"[ovs] tunnel_bridge {bridge} is also mapped to physical network "
                        f"{', '.join(physnets)} in [ovs] bridge_mappings")
    ports = {"[ovs] int_peer_patch_port": options.int_peer_patch_port,
             "[ovs] tun_peer_patch_port": options.tun_peer_patch_port}
    for option, name in ports.items():
        if not name:
            problems.append(f"{option} is empty")
        elif len(name) > 15:
            problems.append(f"{option}: {name} is longer than an interface name may be "
                            "(15 characters)")
    if options.int_peer_patch_port and \
            options.int_peer_patch_port == options.tun_peer_patch_port:
        problems.append("[ovs] int_peer_patch_port and tun_peer_patch_port are both "
                        f"{options.int_peer_patch_port}; the two ends need two names")
    return problems


def options_from_conf(conf: object) -> OverlayOptions:
    """The overlay's values out of dpagent's registered oslo.config options."""
    ovs, agent = conf.ovs, conf.agent  # type: ignore[attr-defined]
    return OverlayOptions(
        tunnel_types=agent.tunnel_types or [], local_ip=ovs.local_ip,
        tunnel_bridge=ovs.tunnel_bridge, int_peer_patch_port=ovs.int_peer_patch_port,
        tun_peer_patch_port=ovs.tun_peer_patch_port, l2_population=agent.l2_population,
        arp_responder=agent.arp_responder, vxlan_udp_port=agent.vxlan_udp_port,
        dont_fragment=agent.dont_fragment, tunnel_csum=agent.tunnel_csum,
        integration_bridge=ovs.integration_bridge, bridge_mappings=ovs.bridge_mappings or {})

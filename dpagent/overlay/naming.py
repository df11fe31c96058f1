"""Names of tunnel ports, exactly as neutron's OVS agent makes them.

A host swapped in place from neutron-openvswitch-agent keeps its tunnel ports (and their
ofports, and so the flows that name them) only if dpagent looks for the same names. neutron
(``OVSNeutronAgent.get_tunnel_name``) names a tunnel port ``<type>-<hash of the remote IP>``,
as long as an interface name may be (15 characters): for IPv4 the address in 8 hex digits,
for IPv6 the start of the base32 of a BLAKE2b digest of the address *as the server sent it*
(not normalised: ``2001:db8::2`` and ``2001:DB8::2`` name two ports, as they do in neutron).
Pure.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress

DEVICE_NAME_MAX_LEN = 15
"""An interface name's length without its NUL (IFNAMSIZ 16), neutron's DEVICE_NAME_MAX_LEN."""


class BadTunnelEndpoint(ValueError):
    """A remote endpoint that no tunnel port can be made for; the message names it."""


def tunnel_port_name(network_type: str, remote_ip: str) -> str:
    """The port neutron's agent would make on br-tun for ``network_type`` to ``remote_ip``."""
    try:
        address = ipaddress.ip_address(remote_ip)
    except ValueError:
        raise BadTunnelEndpoint(f"{network_type} tunnel endpoint {remote_ip!r} is not an IP "
                                "address") from None
    room = DEVICE_NAME_MAX_LEN - len(network_type) - 1
    if address.version == 4:
        digest = f"{int(address):08x}"  # neutron keeps 8 digits whatever the room
    else:
        hashed = hashlib.blake2b(remote_ip.encode(), digest_size=20).digest()
        digest = base64.b32encode(hashed)[:room].decode().lower()
    return f"{network_type}-{digest}"


VXLAN_UDP_PORT = 4789


def tunnel_interface(network_type: str, local_ip: str, remote_ip: str, *,
                     vxlan_udp_port: int = VXLAN_UDP_PORT, dont_fragment: bool = True,
                     csum: bool = False) -> tuple[str, dict[str, str]]:
    """Interface ``type`` and ``options`` exactly as neutron's ``ovs_lib.add_tunnel_port``
    writes them (no hardware offload), so that a port neutron's agent left is recognised as
    right and kept: ``dst_port`` only for a non-default VXLAN port, the tunnel key taken from
    the flow (``in_key``/``out_key`` = flow), GRE becoming ``ip6gre`` with
    ``packet_type=legacy_l2`` when either address is IPv6."""
    kind = network_type
    v6 = ":" in local_ip or ":" in remote_ip
    if network_type == "gre" and v6:
        kind = "ip6gre"
    options: dict[str, str] = {}
    if kind == "vxlan" and vxlan_udp_port != VXLAN_UDP_PORT:
        options["dst_port"] = str(vxlan_udp_port)
    options.update(df_default=str(dont_fragment).lower(), remote_ip=remote_ip,
                   local_ip=local_ip, in_key="flow", out_key="flow", egress_pkt_mark="0")
    if csum:
        options["csum"] = "true"
    if kind == "ip6gre":
        options["packet_type"] = "legacy_l2"
    return kind, options

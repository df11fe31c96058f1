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

"""Start-up checks of the options that shape the interconnection.

Errors here stop the agent: they are mistakes in the configuration file, and running with them
would wire the wrong bridges or none. A mapped bridge that does not exist yet is *not* such an
error (see :class:`~dpagent.physnet.manager.PhysicalNetworks`): it is reported and wired when it
appears.
"""

from __future__ import annotations

from collections.abc import Mapping

VETH_REJECTED = (
    "[agent] use_veth_interconnection = true is not supported: dpagent joins the integration "
    "bridge to physical bridges only with OVS patch ports, which replace the veth pairs of old "
    "agents. Patch ports never leave ovs-vswitchd (no kernel device, no extra copy) and can be "
    "created unconnected, so no frame crosses before the drop flows are in place. A host still "
    "wired with veths is converted to patch ports at start-up. Remove the option or set it to "
    "false.")


class PhysnetConfigError(Exception):
    """The physical network options are unusable; the message lists every problem."""


def check_options(bridge_mappings: Mapping[str, str], integration_bridge: str,
                  use_veth_interconnection: bool) -> None:
    """Raise :class:`PhysnetConfigError` naming every problem of the options."""
    problems = []
    if use_veth_interconnection:
        problems.append(VETH_REJECTED)
    by_bridge: dict[str, list[str]] = {}
    for physnet, bridge in sorted(bridge_mappings.items()):
        if not physnet or not bridge:
            problems.append(f"[ovs] bridge_mappings: {physnet or '?'}:{bridge or '?'} needs "
                            "both a physical network and a bridge")
            continue
        if bridge == integration_bridge:
            problems.append(f"[ovs] bridge_mappings: physical network {physnet} is mapped to "
                            f"the integration bridge {bridge}; map it to a bridge of its own")
        by_bridge.setdefault(bridge, []).append(physnet)
    for bridge, physnets in sorted(by_bridge.items()):
        if len(physnets) > 1:
            problems.append(f"[ovs] bridge_mappings: bridge {bridge} is mapped to several "
                            f"physical networks ({', '.join(physnets)}); one bridge per physical "
                            "network")
    if problems:
        raise PhysnetConfigError("\n".join(problems))

"""[agent]: the daemon's own behaviour (heartbeat, audits, start-up)."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from oslo_config import cfg, types

GROUP = "agent"


class ListenAddress(types.ConfigType):
    """``HOST:PORT`` to listen on, an IPv6 address in brackets (``[::1]:9100``); empty: off.

    The value stays the string as written; :func:`split_listen` gives (host, port)."""

    def __init__(self) -> None:
        super().__init__(type_name="host:port value")

    def __call__(self, value: Any) -> str:
        text = str(value).strip()
        if text:
            split_listen(text)  # raises ValueError, which oslo.config names the option with
        return text

    def __repr__(self) -> str:
        return "ListenAddress"

    def __eq__(self, other: object) -> bool:
        return self.__class__ == other.__class__

    def _formatter(self, value: Any) -> str:
        return str(value)


def split_listen(value: str) -> tuple[str, int]:
    """(host, port) of ``HOST:PORT`` or ``[IPv6]:PORT``; ValueError saying what is wrong."""
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:9100 or [::1]:9100)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{value!r}: {host!r} in brackets is not an IPv6 address") from None
    elif ":" in host:
        raise ValueError(f"{value!r}: put an IPv6 address in brackets, e.g. [::1]:9100")
    else:
        try:
            types.HostAddress()(host)  # an IPv4 address or a host name
        except ValueError:
            raise ValueError(f"{value!r}: {host!r} is not an IP address or host name"
                             ) from None
    if not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ValueError(f"{value!r}: the port must be a number from 0 to 65535")
    return host, int(port)


AGENT_OPTS = [
    cfg.StrOpt(
        "host",
        default=socket.gethostname(),
        sample_default="<the host name>",
        help="Name of this host as the control plane knows it: the agent reports its state "
        "under it, receives its notifications under it and asks for the ports bound to it. "
        "It must equal the host nova (or whatever plugs the VMs) sets as the ports' "
        "binding:host_id, i.e. neutron's [DEFAULT] host on this compute node.",
    ),
    cfg.IntOpt(
        "report_interval",
        mutable=True,
        default=30,
        min=1,
        help="Seconds between state reports to the server. Keep it well below the server's "
        "agent_down_time (75 s by default): a server that misses reports marks the agent "
        "dead and stops binding ports to this host.",
    ),
    cfg.StrOpt(
        "service_backend",
        default="threading",
        choices=[
            ("threading", "Native threads (oslo.service threading backend)."),
            ("eventlet", "Green threads; needs the dpagent[eventlet] extra. Deprecated by the "
             "oslo libraries, kept for sites that still run eventlet."),
        ],
        help="Concurrency backend for the daemon's services.",
    ),
    cfg.BoolOpt(
        "drop_flows_on_start",
        default=False,
        help="Delete every flow on the integration bridge at start-up instead of reconciling "
        "them. Reconciling keeps traffic flowing across an agent restart; dropping breaks "
        "every VM's network until the agent has resynced, so use it only to recover from a "
        "corrupted flow table.",
    ),
    cfg.IntOpt(
        "audit_interval",
        mutable=True,
        default=300,
        min=0,
        help="Seconds between full audits that compare the installed flows with the desired "
        "ones and repair any difference (e.g. flows deleted by hand). 0 disables the audit.",
    ),
    cfg.BoolOpt(
        "use_veth_interconnection",
        default=False,
        help="Accepted for compatibility with neutron's OVS agent configuration but rejected "
        "if true: dpagent connects bridges only with OVS patch ports, which never leave the "
        "datapath and are faster than veth pairs.",
    ),
    cfg.ListOpt(
        "tunnel_types",
        default=[],
        item_type=types.String(choices=["vxlan", "geneve", "gre"]),
        help="Tunnel types this host carries tenant networks over (vxlan, geneve, gre). "
        "Empty: no overlay networks here, and the server binds none of their ports to this "
        "host. Needs [ovs] local_ip.",
    ),
    cfg.BoolOpt(
        "l2_population",
        default=False,
        help="Use the server's l2population notifications: tunnel ports only towards "
        "hosts sharing a network, each network flooded only to those, remote MACs sent "
        "straight to their host. Needs the l2population mechanism driver on the server. "
        "Without it every network floods to every endpoint and MACs are learned.",
    ),
    cfg.BoolOpt(
        "arp_responder",
        default=False,
        help="Answer ARP requests for remote ports on the tunnel bridge instead of flooding "
        "them to other hosts. Works only with l2_population (as in neutron's agent).",
    ),
    cfg.PortOpt(
        "vxlan_udp_port",
        default=4789,
        help="UDP port of VXLAN tunnels; every host of the cloud must use the same one.",
    ),
    cfg.BoolOpt(
        "dont_fragment",
        default=True,
        help="Set the don't-fragment bit on the tunnels' outer IP header: an oversized "
        "frame is then dropped instead of fragmented on the underlay (size the networks' "
        "MTU for the tunnel overhead instead).",
    ),
    cfg.BoolOpt(
        "tunnel_csum",
        default=False,
        help="Add a checksum to the tunnels' outer header (UDP checksum for VXLAN and "
        "Geneve, GRE checksum).",
    ),
    cfg.StrOpt(
        "status_socket",
        default="/var/run/dpagent/status.sock",
        help="Unix socket on which the agent answers local status queries (sync state, "
        "last report, port counts) without going through the control plane.",
    ),
    cfg.Opt(
        "metrics_listen",
        type=ListenAddress(),
        default="",
        help="Address (HOST:PORT, an IPv6 one as [::1]:9100) on which the agent serves "
        "Prometheus metrics over HTTP at /metrics: ports by state, flows and bundle "
        "commits per bridge, audits, switch resets, RPC calls and notifications, the "
        "heartbeat's age (docs/metrics.md). Empty: no metrics endpoint. The endpoint has "
        "no authentication: listen on a loopback or management address only. Port 0 "
        "takes any free port (logged at start).",
    ),
    cfg.BoolOpt(
        "metrics_rule_counters",
        default=False,
        help="Export the packets and bytes of every security-group rule of the wired ports "
        "(what `dpagent-ctl rules` shows) at [agent] metrics_listen too. Off by default: "
        "each scrape then asks the switch to revalidate and dumps br-int's rule flows, and "
        "exports two series per port and rule (about 40,000 on a host of 1,000 ports).",
    ),
    cfg.StrOpt(
        "rpc_mode",
        default="cache",
        choices=[("legacy", "ask the server for device details and security-group info at "
                  "every change (get_devices_details_list_and_failed_devices, "
                  "security_group_info_for_devices), as neutron's agents before Pike did"),
                 ("cache", "keep a cache of the server's objects, filled by bulk_pull and "
                  "kept current by the OVO pushes, as neutron's OVS agent does: no server "
                  "call per change")],
        help="Where the agent gets ports and security groups from. 'cache' needs a server "
        "that pushes versioned objects and answers bulk_pull (neutron-server since Pike, "
        "dpagent-controller); 'legacy' works with any.",
    ),
    cfg.FloatOpt(
        "admin_state_timeout",
        default=2.0,
        min=0.0,
        help="Seconds to wait at start (and after a resync) for the server's answer to "
        "get_admin_state: a neutron-server with the neutron-dpagent extension tells the "
        "administrative state set through its agents API, so that an agent restarted while "
        "cordoned stays cordoned. A server without it does not answer: the agent starts "
        "administratively up, as before, and asks no more. 0: never ask.",
    ),
    cfg.IntOpt(
        "device_retries",
        mutable=True,
        default=3,
        min=0,
        help="How often to retry wiring a port that failed before reporting it to the server "
        "as failed. Transient OVSDB or RPC errors usually pass within a retry or two.",
    ),
]


def register_agent_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(AGENT_OPTS, group=GROUP)

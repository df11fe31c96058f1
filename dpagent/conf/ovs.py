"""[ovs]: which switch the agent programs and how it talks to it."""

from __future__ import annotations

from oslo_config import cfg

GROUP = "ovs"

OVS_OPTS = [
    cfg.StrOpt(
        "integration_bridge",
        default="br-int",
        help="Bridge that VM ports are plugged into. The agent owns its OpenFlow tables: do "
        "not add flows to it by hand, the agent reconciles them away.",
    ),
    cfg.StrOpt(
        "datapath_type",
        default="system",
        choices=[
            ("system", "Kernel datapath (openvswitch.ko); the usual choice."),
            ("netdev", "Userspace datapath, as used with DPDK and by the test lab."),
        ],
        help="Datapath type of the bridges the agent creates. It must match the datapath of "
        "the existing bridges: OVS cannot patch a kernel bridge to a userspace one.",
    ),
    cfg.DictOpt(
        "bridge_mappings",
        default={},
        help="Physical network to provider bridge, as physnet:bridge pairs separated by "
        "commas (e.g. physnet1:br-eth1). The agent patches each bridge to the integration "
        "bridge; a network on an unmapped physnet cannot be wired on this host.",
    ),
    cfg.StrOpt(
        "ovsdb_connection",
        default="unix:/var/run/openvswitch/db.sock",
        help="OVSDB server to use (unix:PATH, tcp:IP:PORT or ssl:IP:PORT). The default is "
        "the local ovsdb-server of the Open vSwitch packages.",
    ),
    cfg.IntOpt(
        "ovsdb_timeout",
        default=10,
        min=1,
        help="Seconds to wait for an OVSDB transaction, including ovs-vswitchd catching up "
        "with it. A timeout fails the operation, which is retried on the next sync.",
    ),
    cfg.IntOpt(
        "of_request_timeout",
        default=10,
        min=1,
        help="Seconds to wait for ovs-vswitchd to answer an OpenFlow request such as a flow "
        "bundle commit. Large bundles on a busy switch need more than the default.",
    ),
    cfg.StrOpt(
        "local_ip",
        sample_default="<this host's tunnel endpoint address>",
        help="IP address of this host's tunnel endpoint (VXLAN, Geneve, GRE): the source of "
        "its tunnels and the address other hosts send a network's traffic to. Required when "
        "[agent] tunnel_types is set. Reported to the server as tunneling_ip.",
    ),
    cfg.StrOpt(
        "tunnel_bridge",
        default="br-tun",
        help="Bridge holding the tunnel ports, patched to the integration bridge. Created "
        "if missing; the agent owns its flows, as on the integration bridge.",
    ),
    cfg.StrOpt(
        "int_peer_patch_port",
        default="patch-tun",
        help="Patch port on the integration bridge towards the tunnel bridge.",
    ),
    cfg.StrOpt(
        "tun_peer_patch_port",
        default="patch-int",
        help="Patch port on the tunnel bridge towards the integration bridge.",
    ),
    cfg.BoolOpt(
        "trunk_enabled",
        default=True,
        help="Wire trunk bridges (tbr-...: VLAN-aware VMs on OVS ports, neutron's trunk "
        "service) to the integration bridge, as neutron's agent does with the same option.",
    ),
    cfg.FloatOpt(
        "trunk_parent_timeout",
        default=60.0,
        min=1.0,
        help="Seconds a trunk bridge (tbr-...) may stay without a VM port on it before the "
        "agent removes it and its patch ports, as neutron's OVS trunk driver does (os-vif "
        "creates the bridge just before it plugs the VM's port, and removes both).",
    ),
    cfg.StrOpt(
        "of_interface",
        default="native",
        choices=[("native", "speak OpenFlow 1.5 to the bridge's management socket"),
                 ("ovs-ofctl", "run ovs-ofctl for every change (slower: ~20 ms a bundle)")],
        help="How flows are sent to the integration bridge. Both send each change as one "
        "atomic bundle; native commits a one-flow change in well under a millisecond.",
    ),
]


def register_ovs_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(OVS_OPTS, group=GROUP)

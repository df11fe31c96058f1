"""Topic names and message versions of neutron's agent RPC, as neutron-server 29 serves them.

Versions are those the stock neutron-openvswitch-agent sends (CONTRACT.md, section 1): the
server picks the first endpoint with the method and a compatible version (same major,
endpoint minor >= requested minor), so sending a higher minor than the endpoint has fails
with ``UnsupportedVersion`` -- e.g. ``security_group_info_for_devices`` lives on a 1.3
endpoint while the ML2 callbacks on the same topic are 1.9.
"""

from __future__ import annotations

from typing import Final

# -- agent -> server -----------------------------------------------------------------------
PLUGIN: Final = "q-plugin"
REPORTS: Final = "q-reports-plugin"

REPORTS_VERSION: Final = "1.4"  # report_state, has_alive_neutron_server
DEVICE_DETAILS_VERSION: Final = "1.5"  # get_devices_details_list_and_failed_devices
DEVICE_LIST_VERSION: Final = "1.9"  # update_device_list
NETWORK_DETAILS_VERSION: Final = "1.6"  # get_network_details
SECURITY_GROUP_INFO_VERSION: Final = "1.3"  # security_group_info_for_devices
PORTS_BY_VNIC_TYPE_VERSION: Final = "1.7"  # get_ports_by_vnic_type_and_host
TUNNEL_SYNC_VERSION: Final = "1.4"  # tunnel_sync (TunnelRpcCallbackMixin)

# -- server -> agent (fanout casts; consumer Target(topic, server=host, fanout=True)) ------
SECURITY_GROUP_UPDATE: Final = "q-agent-notifier-security_group-update"
PORT_UPDATE: Final = "q-agent-notifier-port-update"
PORT_DELETE: Final = "q-agent-notifier-port-delete"
NETWORK_UPDATE: Final = "q-agent-notifier-network-update"
NETWORK_DELETE: Final = "q-agent-notifier-network-delete"
# live migration: the source host's binding deactivated, the destination's activated
# (neutron-lib: topics.PORT_BINDING is portbindings_extended.RESOURCE_NAME, "binding")
BINDING_DEACTIVATE: Final = "q-agent-notifier-binding-deactivate"
BINDING_ACTIVATE: Final = "q-agent-notifier-binding-activate"
# tunnels: every host's endpoint (fanout on each tunnel_sync) and l2population's forwarding
# entries (fanout to all, or <topic>.<host> for the full table a host's first port gets)
TUNNEL_UPDATE: Final = "q-agent-notifier-tunnel-update"
TUNNEL_DELETE: Final = "q-agent-notifier-tunnel-delete"
L2POP_UPDATE: Final = "q-agent-notifier-l2population-update"
# versioned-object pushes (method push, message version 1.1): trunks reach agents only so
TRUNK_PUSH: Final = "neutron-vo-Trunk-1.1"
SUBPORT_PUSH: Final = "neutron-vo-SubPort-1.0"
RESOURCE_PUSH_VERSION: Final = "1.1"
# dpagent's own, for its administrative state: cast to <topic>.<host>, not fanout.
AGENT: Final = "dpagent"
# neutron-dpagent's (the neutron-server extension's) endpoint: get_admin_state at start.
ADMIN_STATE: Final = "dpagent-plugin"
ADMIN_STATE_VERSION: Final = "1.0"

# Endpoint versions: the highest minor each consumer understands.  neutron sends
# security group updates at 1.1, port_update/port_delete/network_delete at 1.0 and
# network_update at 1.4, binding_(de)activate at 1.5; the stock OVS agent's endpoint is 1.7
# for all of them.
SECURITY_GROUP_UPDATE_VERSION: Final = "1.1"
L2_NOTIFICATION_VERSION: Final = "1.7"
AGENT_VERSION: Final = "1.0"

# -- report_state ---------------------------------------------------------------------------
BINARY: Final = "dpagent"
AGENT_TYPE_OVS: Final = "Open vSwitch agent"
# The SR-IOV side reports as its own agent record: neutron's SR-IOV mechanism driver binds
# direct ports only to hosts with a live agent of this type.
AGENT_TYPE_NIC_SWITCH: Final = "NIC Switch agent"
# neutron's OVO versions as neutron-server 29 knows them (rpc/02).  The server pushes
# neutron-vo-<Type>-<version> fanouts for the versions alive agents report.
RESOURCE_VERSIONS: Final = {
    "AddressGroup": "1.2", "Agent": "1.1", "ConntrackHelper": "1.0",
    "LocalIPAssociation": "1.0", "Log": "1.0", "NDPProxy": "1.0", "Network": "1.3",
    "Port": "1.11", "PortForwarding": "1.3", "QosPolicy": "1.10", "SecurityGroup": "1.6",
    "SecurityGroupRule": "1.3", "SubPort": "1.0", "Subnet": "1.2", "Trunk": "1.1",
}

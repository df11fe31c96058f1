"""VLAN-aware VMs on OVS ports: neutron's trunk bridges, wired to br-int with patch ports.

os-vif plugs a trunk's parent VIF into a bridge of its own, ``tbr-<trunk id>``; dpagent
connects that bridge to br-int with one patch-port pair for the parent (untagged) and one per
subport (the subport's VLAN on the trunk-bridge side), named and tagged exactly as neutron's
OVS trunk driver makes them, so a host moved from neutron's agent keeps its wiring. On br-int
each pair's end is an ordinary VIF (its iface-id the parent's or the subport's port), wired and
filtered by the agent core like any other. See docs/trunks.md.
"""

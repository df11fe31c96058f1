"""Hypothesis strategies: random but valid compiler inputs, bad ones, and packets to probe them.

A model is the compiler's input: neutron's ``security_group_info_for_devices`` reply with the
agent's ``ofport``/``local_vlan`` per port and a top-level ``networks``. Models are small (1-3
networks, 1-4 ports, 1-4 groups) but use every kind of rule the contract describes, and draw
addresses from a few small pools so that prefixes, members and fixed IPs overlap often.

OpenFlow port numbers come from fixed pools (``VM_OFPORTS``, ``UPLINK_OFPORTS``) so that one
bridge with those ports can serve every example.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from hypothesis import strategies as st

from tests.reference.model import PROTOCOL_NAMES
from tests.reference.pools import addresses, prefixes
from tests.reference.probes import packets_for

VM_OFPORTS = tuple(range(1, 9))
UPLINK_OFPORTS = (1001, 1002, 1003)

OTHER_PROTOCOL_NAMES = sorted(set(PROTOCOL_NAMES) - {"tcp", "udp", "sctp", "icmp", "ipv6-icmp",
                                                     "icmpv6"})
EDGE_PORTS = (0, 1, 22, 67, 68, 80, 1023, 1024, 8080, 65534, 65535)
ICMP_TYPES = {4: (0, 3, 5, 8, 11, 13), 6: (1, 2, 3, 128, 129, 130, 133, 134, 135, 136, 137, 143)}

def ports_() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(EDGE_PORTS), st.integers(0, 65535))


@st.composite
def port_ranges(draw: Any) -> dict[str, int]:
    """``port_range_min``/``max`` as neutron sends them, every shape the contract names."""
    # (a max without its min is an input error: invalid_models() covers it)
    shape = draw(st.sampled_from(("none", "single", "min_only", "range", "range", "wide",
                                  "any1", "any0")))
    if shape == "none":
        return {}
    if shape == "single":
        p = draw(ports_())
        return {"port_range_min": p, "port_range_max": p}
    if shape == "min_only":
        return {"port_range_min": draw(ports_())}
    if shape == "any1":
        return {"port_range_min": 1, "port_range_max": 65535}
    if shape == "any0":
        return {"port_range_min": 0, "port_range_max": 65535}
    a, b = draw(ports_()), draw(ports_())
    if shape == "range":
        b = min(65535, a + draw(st.integers(0, 300)))
    return {"port_range_min": min(a, b), "port_range_max": max(a, b)}


def _as_source(ranges: dict[str, int]) -> dict[str, int]:
    return {"source_" + k: v for k, v in ranges.items()}


@st.composite
def rules(draw: Any, stateful: bool, remote_ids: list[str]) -> dict[str, Any]:
    """One rule dict with only the keys neutron puts in it (no nulls)."""
    direction = draw(st.sampled_from(("ingress", "egress")))
    ethertype = draw(st.sampled_from(("IPv4", "IPv6")))
    version = 4 if ethertype == "IPv4" else 6
    rule: dict[str, Any] = {"direction": direction, "ethertype": ethertype}
    kind = draw(st.sampled_from(("any", "l4", "l4", "l4", "icmp", "icmp", "other", "nothing")))
    if kind == "l4":
        rule["protocol"] = draw(st.sampled_from(("tcp", "udp", "sctp", "6", "17", "132", 6)))
        rule.update(draw(port_ranges()))
        if draw(st.integers(0, 5)) == 0:
            rule.update(_as_source(draw(port_ranges())))
    elif kind == "icmp":
        names = ("icmp", "1", 1) if version == 4 else ("ipv6-icmp", "icmpv6", "icmp", "58", 58)
        rule["protocol"] = draw(st.sampled_from(names))
        shape = draw(st.sampled_from(("any", "type", "type_code")))
        if shape != "any":
            types = st.one_of(st.sampled_from(ICMP_TYPES[version]), st.integers(0, 255))
            rule["port_range_min"] = draw(types)
        if shape == "type_code":
            rule["port_range_max"] = draw(st.one_of(st.sampled_from((0, 1, 3, 255)),
                                                    st.integers(0, 255)))
    elif kind == "other":
        rule["protocol"] = draw(st.one_of(
            st.sampled_from(OTHER_PROTOCOL_NAMES),
            st.integers(0, 255).map(str),
            st.integers(0, 255)))
    elif kind == "nothing":
        # dccp/udplite with ports: the switch cannot match them, the rule matches nothing
        rule["protocol"] = draw(st.sampled_from(("dccp", "udplite", "33", "136")))
        rule.update(draw(port_ranges().filter(bool)))
    remote = draw(st.sampled_from(("none", "none", "prefix", "prefix", "group", "group",
                                   "address_group")))
    if remote == "prefix":
        key = "source_ip_prefix" if direction == "ingress" else "dest_ip_prefix"
        rule[key] = draw(prefixes(version))
    elif remote == "group" and remote_ids:
        rule["remote_group_id"] = draw(st.sampled_from(remote_ids))
    elif remote == "address_group":
        rule["remote_address_group_id"] = draw(st.sampled_from(("ag0", "ag1")))
    rule["stateful"] = stateful
    return rule


def macs(prefix: str) -> st.SearchStrategy[list[str]]:
    return st.lists(st.integers(1, 2**24 - 1), min_size=12, max_size=12, unique=True).map(
        lambda ns: [f"{prefix}:{n >> 16:02x}:{n >> 8 & 0xff:02x}:{n & 0xff:02x}" for n in ns])


@st.composite
def _fixed_ips(draw: Any) -> list[str]:
    families = draw(st.sampled_from(((4,), (4,), (6,), (4, 6), (4, 6), (4, 4), ())))
    return list(dict.fromkeys(draw(addresses(v)) for v in families))


@st.composite
def _pairs(draw: Any, port_mac: str, spare_macs: list[str]) -> list[dict[str, str]]:
    pairs = []
    for _ in range(draw(st.sampled_from((0, 0, 0, 1, 1, 2)))):
        version = draw(st.sampled_from((4, 4, 6)))
        ip = draw(st.one_of(addresses(version), prefixes(version)))
        pair = {"ip_address": ip}
        mac_kind = draw(st.sampled_from(("absent", "own", "other", "other")))
        if mac_kind == "own":
            pair["mac_address"] = port_mac
        elif mac_kind == "other" and spare_macs:
            pair["mac_address"] = spare_macs.pop()
        pairs.append(pair)
    return pairs


def provider_rules(fixed_ips: list[str]) -> list[dict[str, Any]]:
    """The per-port rules neutron adds (RA, DHCP replies); they change no verdict."""
    out: list[dict[str, Any]] = []
    versions = {ipaddress.ip_address(ip).version for ip in fixed_ips}
    if 6 in versions:
        out.append({"direction": "ingress", "ethertype": "IPv6", "protocol": "ipv6-icmp",
                    "source_port_range_min": 134})
    for version, (sport, dport), extra in ((4, (67, 68), "255.255.255.255/32"),
                                           (6, (547, 546), "fe80::/64")):
        dests = [f"{ip}/{32 if version == 4 else 128}" for ip in fixed_ips
                 if ipaddress.ip_address(ip).version == version] + [extra]
        for dest in dests:
            out.append({"direction": "ingress", "ethertype": f"IPv{version}",
                        "protocol": "udp", "port_range_min": dport, "port_range_max": dport,
                        "source_port_range_min": sport, "source_port_range_max": sport,
                        "dest_ip_prefix": dest})
    return out


@st.composite
def _members(draw: Any, devices: dict[str, Any], group_id: str) -> dict[str, list[list[Any]]]:
    """Members of one remote group: ports of the group, other VMs, CIDRs (address groups)."""
    out: dict[str, list[list[Any]]] = {}
    for ethertype in draw(st.sampled_from((("IPv4", "IPv6"), ("IPv4",), ("IPv6",)))):
        version = 4 if ethertype == "IPv4" else 6
        entries = [[ip, None] for d in devices.values() if group_id in d["security_groups"]
                   for ip in d["fixed_ips"] if ipaddress.ip_address(ip).version == version]
        for _ in range(draw(st.integers(0, 3))):
            entry = draw(st.one_of(addresses(version), addresses(version), prefixes(version)))
            entries.append([entry, draw(st.sampled_from((None, None, "fa:16:3e:99:99:99")))])
        out[ethertype] = entries
    return out


@st.composite
def sg_models(draw: Any, max_ports: int = 4) -> dict[str, Any]:
    """A valid compiler input: every port compiles."""
    n_networks = draw(st.integers(1, 3))
    vlans = draw(st.lists(st.integers(1, 4094), min_size=n_networks, max_size=n_networks,
                          unique=True))
    networks = {f"net{i}": {"local_vlan": vlan, "uplink": {"ofport": UPLINK_OFPORTS[i],
                                                           "vlan": None}}
                for i, vlan in enumerate(vlans)}
    n_groups = draw(st.integers(1, 4))
    kinds = {f"sg{i}": draw(st.sampled_from((True, True, True, False, False)))
             for i in range(n_groups)}
    remote_ids = [*kinds, "sg-elsewhere"]
    # a group may have no rules at all (its "stateful" flag then shows nowhere)
    groups = {gid: draw(st.lists(rules(stateful, remote_ids), min_size=0, max_size=6))
              for gid, stateful in kinds.items()}
    n_ports = draw(st.integers(1, max_ports))
    ofports = draw(st.lists(st.sampled_from(VM_OFPORTS), min_size=n_ports, max_size=n_ports,
                            unique=True))
    port_macs = draw(macs("fa:16:3e"))
    spare_macs = draw(macs("fa:16:3f"))
    devices = {}
    for index, ofport in enumerate(ofports):
        port_id = f"port{index}"
        network_id = draw(st.sampled_from(sorted(networks)))
        mac = port_macs[index]
        fixed_ips = draw(_fixed_ips())
        security = draw(st.integers(0, 11)) != 0
        port_groups: list[str] = []
        if security:
            stateful = draw(st.sampled_from(sorted(set(kinds.values()))))
            same_kind = [g for g, k in kinds.items() if k == stateful]
            port_groups = draw(st.lists(st.sampled_from(same_kind), min_size=1, max_size=3,
                                        unique=True))
        devices[port_id] = {
            "id": port_id, "device": port_id, "network_id": network_id,
            "mac_address": mac, "fixed_ips": fixed_ips,
            "allowed_address_pairs": draw(_pairs(mac, spare_macs)) if security else [],
            "port_security_enabled": security, "security_groups": port_groups,
            "security_group_rules": provider_rules(fixed_ips),
            "ofport": ofport, "local_vlan": networks[network_id]["local_vlan"],
        }
    referenced = sorted({r[k] for rs in groups.values() for r in rs
                         for k in ("remote_group_id", "remote_address_group_id") if k in r})
    members = {}
    for group_id in referenced:
        if draw(st.integers(0, 5)) != 0:  # sometimes a group has no member data at all
            members[group_id] = draw(_members(devices, group_id))
    return {"devices": devices, "security_groups": groups, "sg_member_ips": members,
            "networks": networks}


@st.composite
def scenarios(draw: Any, min_packets: int = 8, max_packets: int = 16
              ) -> tuple[dict[str, Any], list[Any]]:
    """A valid model and a batch of packets aimed at its ports' rules and base checks."""
    model = draw(sg_models())
    return model, draw(packets_for(model, min_packets, max_packets))


#: How to break one port's input, each an error the contract lists.
INVALID_KINDS = ("mixed_statefulness", "unknown_protocol", "protocol_out_of_range",
                 "min_greater_than_max", "max_without_min", "icmp_code_without_type",
                 "missing_group",
                 "ports_on_protocol_without_ports", "port_out_of_range", "invalid_prefix",
                 "invalid_mac", "invalid_fixed_ip")

_BAD_RULES = {
    "unknown_protocol": {"protocol": "tcpx"},
    "protocol_out_of_range": {"protocol": "256"},
    "min_greater_than_max": {"protocol": "tcp", "port_range_min": 90, "port_range_max": 80},
    "max_without_min": {"protocol": "tcp", "port_range_max": 80},
    "icmp_code_without_type": {"protocol": "icmp", "port_range_max": 0},
    "ports_on_protocol_without_ports": {"protocol": "gre", "port_range_min": 80},
    "port_out_of_range": {"protocol": "udp", "port_range_min": 65536},
    "invalid_prefix": {"source_ip_prefix": "10.0.0.300/24"},
}


@st.composite
def invalid_models(draw: Any) -> tuple[dict[str, Any], str, str]:
    """(model, bad port id, kind): a valid model plus one port broken in one way."""
    model = draw(sg_models(max_ports=3))
    kind = draw(st.sampled_from(INVALID_KINDS))
    used = {d["ofport"] for d in model["devices"].values()}
    ofport = draw(st.sampled_from([p for p in VM_OFPORTS if p not in used]))
    network_id = draw(st.sampled_from(sorted(model["networks"])))
    stateful = draw(st.booleans())
    good_rules = draw(st.lists(rules(stateful, []), min_size=1, max_size=3))
    groups = model["security_groups"]
    port_groups = ["sg-bad"]
    groups["sg-bad"] = good_rules
    device = {
        "id": "port-bad", "device": "port-bad", "network_id": network_id,
        "mac_address": "fa:16:3e:ba:dd:01", "fixed_ips": ["10.0.0.250", "fd00::250"],
        "allowed_address_pairs": [], "port_security_enabled": True,
        "security_groups": port_groups, "security_group_rules": [],
        "ofport": ofport, "local_vlan": model["networks"][network_id]["local_vlan"],
    }
    if kind == "mixed_statefulness":
        groups["sg-bad-other"] = [dict(r, stateful=not stateful) for r in
                                  draw(st.lists(rules(not stateful, []), min_size=1, max_size=2))]
        port_groups.append("sg-bad-other")
    elif kind == "missing_group":
        port_groups.append("sg-nowhere")
    elif kind == "invalid_mac":
        device["mac_address"] = "fa:16:3e:ba:dd:zz"
    elif kind == "invalid_fixed_ip":
        device["fixed_ips"] = ["10.0.0.256"]
    else:
        direction = draw(st.sampled_from(("ingress", "egress")))
        fields = dict(_BAD_RULES[kind])
        if kind == "invalid_prefix" and direction == "egress":
            fields = {"dest_ip_prefix": fields.pop("source_ip_prefix")}
        bad = {"direction": direction, "ethertype": "IPv4", **fields, "stateful": stateful}
        position = draw(st.integers(0, len(good_rules)))
        good_rules.insert(position, bad)
    model["devices"]["port-bad"] = device
    return model, "port-bad", kind

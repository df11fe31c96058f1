"""The physical network between lab hosts, for tenant overlays (VXLAN, Geneve, GRE).

On the userspace datapath ovs-vswitchd encapsulates by itself, so a tunnel port needs what a
kernel tunnel device would take from the host: a route to the remote IP through an OVS bridge
holding the local IP (``br-phy``, the IP on its LOCAL port), and the next hop's MAC (OVS's
``tnl/neigh`` cache).  Packets from a remote host must be switched to that LOCAL port, where
OVS pops the tunnel header (docs/overlay-design.md section 7).

``Underlay`` builds this for N :class:`OVSSandbox` hosts, each vswitchd in its own namespace:

* per host a netdev ``br-phy`` (``fail_mode=standalone``, fixed ``other_config:hwaddr``) with
  the host's ``local_ip`` on its LOCAL interface, inside the host's namespace;
* the cable: one veth ``u1``/``u2`` for two hosts; for more, veth ``u<n>`` of each host to a
  Linux bridge in a namespace of its own (one shared L2 segment);
* a route in OVS's table (it normally caches the kernel's by itself), and neighbour entries
  for every peer in OVS (``tnl/neigh/set``) and in the kernel, so no first packet waits for
  ARP.

:meth:`Underlay.capture` records a host's cable with tcpdump and returns the frames parsed
from the pcap bytes (outer addresses, UDP port, VNI or GRE key, the inner frame).
:meth:`Underlay.add_lab_tunnel_port` makes a tunnel port as neutron's agent would, for tests
that program br-tun by hand; the agent makes its own.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import select
import struct
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import IO, NamedTuple

from dpagent.lab import process, resources
from dpagent.lab.ovs_sandbox import OVSSandbox
from dpagent.lab.process import LabError
from dpagent.overlay.naming import VXLAN_UDP_PORT, tunnel_interface, tunnel_port_name

GENEVE_UDP_PORT = 6081
_ETH_P_IP, _ETH_P_IPV6, _ETH_P_ARP, _ETH_P_8021Q = 0x0800, 0x86DD, 0x0806, 0x8100
_ETH_P_TEB = 0x6558  # GRE carrying Ethernet
_IPPROTO_UDP, _IPPROTO_GRE = 17, 47


# -- what a capture returns -------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """The headers of one Ethernet frame.  For ARP, ``ip_src``/``ip_dst`` are the sender and
    target protocol addresses and ``ip_proto`` is None; for other non-IP frames all three are
    None."""

    eth_src: str
    eth_dst: str
    ethertype: int  # after the 802.1Q tag, if any
    vlan: int | None
    ip_src: str | None
    ip_dst: str | None
    ip_proto: int | None


@dataclass(frozen=True)
class UnderlayPacket:
    """One frame seen on an underlay cable.  ``tunnel`` is ``"vxlan"`` (UDP 4789),
    ``"geneve"`` (UDP 6081) or ``"gre"``; then ``vni`` is the VNI or the GRE key (None when
    the GRE header has none) and ``inner`` the encapsulated frame."""

    outer: Frame
    dont_fragment: bool
    udp_dst: int | None
    tunnel: str | None
    vni: int | None
    inner: Frame | None
    raw: bytes


def _mac(data: bytes) -> str:
    return ":".join(f"{b:02x}" for b in data)


def _ip(data: bytes) -> str:
    return str(ipaddress.ip_address(data))


def _frame(data: bytes) -> tuple[Frame, bool, int | None, bytes]:
    """Headers of ``data``, the IPv4 DF bit, and the L4 protocol's bytes."""
    ethertype, offset, vlan = struct.unpack_from("!H", data, 12)[0], 14, None
    if ethertype == _ETH_P_8021Q:
        vlan = struct.unpack_from("!H", data, 14)[0] & 0x0FFF
        ethertype, offset = struct.unpack_from("!H", data, 16)[0], 18
    src = dst = proto = None
    df, l4 = False, b""
    if ethertype == _ETH_P_IP:
        ihl = (data[offset] & 0x0F) * 4
        df = bool(struct.unpack_from("!H", data, offset + 6)[0] & 0x4000)
        proto = data[offset + 9]
        src, dst = _ip(data[offset + 12:offset + 16]), _ip(data[offset + 16:offset + 20])
        l4 = data[offset + ihl:]
    elif ethertype == _ETH_P_IPV6:  # extension headers are not walked
        proto = data[offset + 6]
        src, dst = _ip(data[offset + 8:offset + 24]), _ip(data[offset + 24:offset + 40])
        l4 = data[offset + 40:]
    elif ethertype == _ETH_P_ARP:
        src, dst = _ip(data[offset + 14:offset + 18]), _ip(data[offset + 24:offset + 28])
    frame = Frame(_mac(data[6:12]), _mac(data[0:6]), ethertype, vlan, src, dst, proto)
    return frame, df, proto, l4


def parse_frame(data: bytes) -> UnderlayPacket:
    """Decode one captured frame, down to the inner frame of a VXLAN, Geneve or GRE packet."""
    outer, df, proto, l4 = _frame(data)
    udp_dst = tunnel = vni = inner = None
    payload = b""
    if proto == _IPPROTO_UDP and len(l4) >= 8:
        udp_dst = struct.unpack_from("!H", l4, 2)[0]
        if udp_dst == VXLAN_UDP_PORT and len(l4) >= 16:
            tunnel, vni = "vxlan", int.from_bytes(l4[12:15], "big")
            payload = l4[16:]
        elif udp_dst == GENEVE_UDP_PORT and len(l4) >= 16:
            options = (l4[8] & 0x3F) * 4
            tunnel, vni = "geneve", int.from_bytes(l4[12:15], "big")
            payload = l4[16 + options:]
    elif proto == _IPPROTO_GRE and len(l4) >= 4:
        flags, carried = struct.unpack_from("!HH", l4, 0)
        offset = 4 + (4 if flags & 0x8000 else 0)  # C: checksum and reserved
        if flags & 0x2000:  # K: key
            vni = struct.unpack_from("!I", l4, offset)[0]
            offset += 4
        offset += 4 if flags & 0x1000 else 0  # S: sequence number
        tunnel = "gre"
        payload = l4[offset:] if carried == _ETH_P_TEB else b""
    if len(payload) >= 14:
        inner = _frame(payload)[0]
    return UnderlayPacket(outer, df, udp_dst, tunnel, vni, inner, data)


def parse_pcap(data: bytes) -> list[UnderlayPacket]:
    """The frames of a pcap file (as ``tcpdump -w`` writes it, Ethernet link type)."""
    if len(data) < 24:
        return []  # tcpdump ended before it wrote its header: nothing captured
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        order = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        order = ">"
    else:
        raise LabError(f"not a pcap file (magic {magic.hex()})")
    linktype = struct.unpack_from(f"{order}I", data, 20)[0]
    if linktype != 1:
        raise LabError(f"pcap link type {linktype}, expected Ethernet (1)")
    packets, offset = [], 24
    while offset + 16 <= len(data):
        length = struct.unpack_from(f"{order}I", data, offset + 8)[0]
        frame = data[offset + 16:offset + 16 + length]
        offset += 16 + length
        if len(frame) == length:  # the last record may be cut short by the kill
            packets.append(parse_frame(frame))
    return packets


class UnderlayCapture:
    """tcpdump on one cable end, writing pcap into a private file; :meth:`packets` ends it
    and returns what it saw.  Ready to see traffic when the constructor returns."""

    def __init__(self, netns: str, iface: str, bpf: str = "", count: int | None = None,
                 start_timeout: float = 5.0) -> None:
        # The pcap goes to an unlinked file of ours (tcpdump's stdout): nothing to clean up
        # however tcpdump ends. --immediate-mode: a frame reaches the file when it is seen,
        # not when libpcap's ring block times out (up to a second later).
        self._out: IO[bytes] = tempfile.TemporaryFile()
        argv = ["ip", "netns", "exec", netns, "tcpdump", "-i", iface, "-n", "-U",
                "--immediate-mode", "-w", "-"]
        if count is not None:
            argv += ["-c", str(count)]
        if bpf:
            argv.append(bpf)
        self._proc = subprocess.Popen(argv, stdout=self._out, stderr=subprocess.PIPE)
        self._count = count
        self._packets: list[UnderlayPacket] | None = None
        self._stderr = b""
        assert self._proc.stderr is not None
        deadline = time.monotonic() + start_timeout
        while b"listening on" not in self._stderr:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._proc.stderr], [], [], left)[0]:
                break
            chunk = os.read(self._proc.stderr.fileno(), 4096)
            if not chunk:
                break
            self._stderr += chunk
        if b"listening on" not in self._stderr:
            self.packets(timeout=0)
            raise LabError(f"tcpdump on {iface} in {netns} did not start: "
                           f"{self._stderr.decode(errors='replace').strip()}")

    def packets(self, timeout: float = 2.0, settle: float = 0.1) -> list[UnderlayPacket]:
        """Stop and return the captured frames.  With ``count`` this waits up to ``timeout``
        for tcpdump to have seen that many; without, it waits ``settle`` seconds for frames
        already on their way.  Later calls return the same list."""
        if self._packets is not None:
            return self._packets
        if self._count is None:
            time.sleep(settle)
        else:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=timeout)
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        assert self._proc.stderr is not None
        self._proc.stderr.close()
        self._out.seek(0)
        data = self._out.read()
        self._out.close()
        self._packets = parse_pcap(data)
        return self._packets

    def stop(self) -> None:
        self.packets(timeout=0, settle=0)

    def __enter__(self) -> UnderlayCapture:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


# -- tunnel ports as neutron makes them ---------------------------------------------------


def neutron_tunnel_interface(tunnel_type: str, local_ip: str, remote_ip: str, *,
                             dst_port: int | None = None, csum: bool = False,
                             tos: str | None = None) -> tuple[str, dict[str, str]]:
    """Interface ``type`` and ``options`` as neutron's ``ovs_lib.add_tunnel_port`` writes them
    (the agent's own :func:`dpagent.overlay.naming.tunnel_interface`), with ``tos`` if given."""
    kind, options = tunnel_interface(tunnel_type, local_ip, remote_ip,
                                     vxlan_udp_port=dst_port or VXLAN_UDP_PORT, csum=csum)
    if tos:
        options["tos"] = tos
    return kind, options


class LabTunnelPort(NamedTuple):
    name: str
    ofport: int


# -- the underlay -------------------------------------------------------------------------


class Underlay:
    """br-phy on every host and one L2 segment between them; see the module docstring.

    Host ``i`` (its index in ``hosts``) gets the ``i+1``-th address of ``cidr`` and its cable
    end ``u<i+1>``.  The hosts stay the caller's: :meth:`close` removes br-phy, the cable and
    the segment's namespace, not the sandboxes.  The constructor builds everything or cleans
    up what it built.
    """

    def __init__(self, hosts: Sequence[OVSSandbox], cidr: str = "192.0.2.0/24", *,
                 bridge: str = "br-phy", mtu: int | None = None) -> None:
        if len(hosts) < 2:
            raise LabError("an underlay joins at least two hosts")
        self.hosts = tuple(hosts)
        self.bridge = bridge
        self.network = ipaddress.ip_network(cidr)
        if self.network.num_addresses < len(hosts) + 2:
            raise LabError(f"{cidr} has no room for {len(hosts)} hosts")
        self._ips = [str(self.network[i + 1]) for i in range(len(hosts))]
        self._segment: str | None = None  # the Linux bridge's namespace (more than 2 hosts)
        self._captures: list[UnderlayCapture] = []
        self._cleanups: list[Callable[[], None]] = []
        try:
            self._cable(mtu)
            for index in range(len(hosts)):
                self._build_host(index)
            for index in range(len(hosts)):
                self._learn_peers(index)
        except BaseException:
            self.close()
            raise

    # -- per host --------------------------------------------------------------------------

    def local_ip(self, host: int) -> str:
        """The tunnel endpoint address of host ``host`` (neutron's ``[ovs] local_ip``)."""
        return self._ips[host]

    def mac(self, host: int) -> str:
        """br-phy's MAC on host ``host``: ``02:00`` and the four bytes of an IPv4 local_ip
        (``02:00:c0:00:02:01`` for 192.0.2.1), or of the address' last 32 bits for IPv6."""
        tail = int(ipaddress.ip_address(self._ips[host])) & 0xFFFFFFFF
        return _mac(b"\x02\x00" + tail.to_bytes(4, "big"))

    def cable(self, host: int) -> str:
        """The interface that is host ``host``'s NIC (a port of its br-phy)."""
        return f"u{host + 1}"

    def capture(self, host: int, bpf: str = "", *, count: int | None = None) -> UnderlayCapture:
        """Start tcpdump on host ``host``'s cable (both directions) with filter ``bpf``,
        e.g. ``"udp port 4789"``; call ``packets()`` on the result after the traffic."""
        cap = UnderlayCapture(self.hosts[host].netns, self.cable(host), bpf, count)
        self._captures.append(cap)
        return cap

    def add_lab_tunnel_port(self, host: int, bridge: str, tunnel_type: str, remote: int, *,
                            dst_port: int | None = None, csum: bool = False,
                            tos: str | None = None) -> LabTunnelPort:
        """Lab stand-in for the agent: a tunnel port on ``bridge`` of host ``host`` towards
        host ``remote``, with neutron's name (``vxlan-c0000202``) and options (see
        :func:`neutron_tunnel_interface`)."""
        local_ip, remote_ip = self._ips[host], self._ips[remote]
        name = tunnel_port_name(tunnel_type, remote_ip)
        kind, options = neutron_tunnel_interface(tunnel_type, local_ip, remote_ip,
                                                 dst_port=dst_port, csum=csum, tos=tos)
        ofport = self.hosts[host].add_port(bridge, name, type=kind, options=options)
        return LabTunnelPort(name, ofport)

    # -- building --------------------------------------------------------------------------

    def _cable(self, mtu: int | None) -> None:
        if len(self.hosts) == 2:
            a, b = self.hosts
            process.run(["ip", "-n", a.netns, "link", "add", "u1", "type", "veth",
                         "peer", "name", "u2", "netns", b.netns])
            self._cleanups.append(lambda: _del_link(a.netns, "u1"))
        else:
            self._segment = f"dpa-ul-{uuid.uuid4().hex[:8]}"
            resources.add_netns(self._segment)
            seg = ["ip", "-n", self._segment]
            process.run([*seg, "link", "add", "ul0", "type", "bridge"])
            process.run([*seg, "link", "set", "ul0", "up"])
            for index, host in enumerate(self.hosts):
                # created in the host's namespace, its peer at once in the segment's
                process.run(["ip", "-n", host.netns, "link", "add", self.cable(index), "type",
                             "veth", "peer", "name", f"s{index + 1}", "netns", self._segment])
                process.run([*seg, "link", "set", f"s{index + 1}", "master", "ul0", "up"])
                if mtu is not None:
                    process.run([*seg, "link", "set", f"s{index + 1}", "mtu", str(mtu)])
        for index, host in enumerate(self.hosts):
            dev = self.cable(index)
            if mtu is not None:
                process.run(["ip", "-n", host.netns, "link", "set", dev, "mtu", str(mtu)])
            # No "ethtool -K tx off" as on a VM's veth: only OVS sends on the cable, with
            # complete checksums, and br-phy's tap has TX checksumming off already.
            process.run(["ip", "-n", host.netns, "link", "set", dev, "up"])

    def _build_host(self, index: int) -> None:
        host, br = self.hosts[index], self.bridge
        host.vsctl("add-br", br, "--", "set", "Bridge", br, "datapath_type=netdev",
                   "fail_mode=standalone", f"other_config:hwaddr={self.mac(index)}",
                   "other_config:disable-in-band=true")
        self._cleanups.append(lambda: _del_bridge(host, br))
        host.add_port(br, self.cable(index))
        ns = ["ip", "-n", host.netns]
        address = f"{self._ips[index]}/{self.network.prefixlen}"
        if self.network.version == 6:
            process.run([*ns, "-6", "addr", "add", address, "dev", br, "nodad"])
        else:
            process.run([*ns, "addr", "add", address, "dev", br])
        process.run([*ns, "link", "set", br, "up"])
        # OVS caches the kernel's route of its namespace (netlink); add one if it did not,
        # which only works once the bridge has its address.
        peer = self._ips[(index + 1) % len(self.hosts)]
        if not process.wait_until(lambda: self._ovs_routes(host, peer), 1.0, interval=0.01):
            host.appctl("ovs/route/add", str(self.network), br)
            if not self._ovs_routes(host, peer):
                raise LabError(f"OVS on host {index} has no route to {peer} via {br}: "
                               f"{host.appctl('ovs/route/show')}")

    def _ovs_routes(self, host: OVSSandbox, ip: str) -> bool:
        try:
            found = host.appctl("ovs/route/lookup", ip)
        except process.LabCommandError:
            return False  # "Not found" exits non-zero
        return f"dev {self.bridge}" in found

    def _learn_peers(self, index: int) -> None:
        host = self.hosts[index]
        # OVS 3.1 has no static entries: what tnl/neigh/set adds ages like a snooped one
        # (with aging 1 s it is gone 2 s later; the default is 15 minutes), then OVS ARPs
        # again and a first packet is lost. The longest aging OVS accepts (an hour) keeps a
        # long demo run clear of that; the setting is the whole vswitchd's, a sandbox's.
        host.appctl("tnl/neigh/aging", "3600")
        for peer in range(len(self.hosts)):
            if peer == index:
                continue
            ip, mac = self._ips[peer], self.mac(peer)
            host.appctl("tnl/neigh/set", self.bridge, ip, mac)
            process.run(["ip", "-n", host.netns, "neigh", "replace", ip, "lladdr", mac,
                         "dev", self.bridge, "nud", "permanent"])

    # -- teardown --------------------------------------------------------------------------

    def close(self) -> None:
        """Stop captures, remove br-phy and the cable (idempotent)."""
        for cap in self._captures:
            cap.stop()
        self._captures.clear()
        for cleanup in reversed(self._cleanups):
            cleanup()
        self._cleanups.clear()
        if self._segment is not None:
            resources.del_netns(self._segment)  # takes the hosts' cable ends with it
            self._segment = None

    def __enter__(self) -> Underlay:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _del_link(netns: str, dev: str) -> None:
    if resources.netns_exists(netns):
        try:
            process.run(["ip", "-n", netns, "link", "del", dev])
        except process.LabCommandError:
            pass  # already gone with its peer's namespace


def _del_bridge(host: OVSSandbox, bridge: str) -> None:
    if host.vswitchd_pid is not None:
        host.del_bridge(bridge)


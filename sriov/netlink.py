"""The kernel's standard VF settings over rtnetlink, and the generic ``netlink`` driver.

:class:`NetlinkLinkOps` is the :class:`~sriov.driver.LinkOps` every driver is given.  It sends
``RTM_NEWLINK`` on the PF with an ``IFLA_VFINFO_LIST`` holding one ``IFLA_VF_INFO`` per call, and
reads the VFs back with ``RTM_GETLINK`` and ``RTEXT_FILTER_VF`` (``ext_mask=1``).

The port VLAN goes out as ``IFLA_VF_VLAN`` (``struct ifla_vf_vlan``: vf, vlan, qos; 12 bytes),
pyroute2's ``vf={'vf': n, 'vlan': {...}}`` form.  Never the list form: pyroute2 0.9.7 packs
``IFLA_VF_VLAN_INFO`` in 14 bytes where the kernel's ``struct ifla_vf_vlan_info`` is 16, and the
kernel answers EINVAL.  A byte-level unit test pins the encoding.

:class:`NetlinkDriver` is :class:`~sriov.driver.StandardVfDriver` registered as ``netlink``: the
driver for any PF whose kernel driver has no plugin.  It reports no trunk capability.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from sriov.driver import LinkState, StandardVfDriver, VfLinkState

UNREPORTED = 0xFFFFFFFF  # the kernel's -1: the NIC did not fill the setting in


class NetlinkLinkOps:
    """VF settings of PFs in one network namespace, over one rtnetlink socket.

    ``ipr`` is anything with pyroute2's ``IPRoute`` API (a pyroute2 ``IPBatch`` in encoding
    tests); ``index_of`` maps a PF name to its ifindex (default: ``ipr.link_lookup``).  Calls are
    serialized: pyroute2 sockets are not thread-safe.
    """

    def __init__(self, ipr: Any | None = None,
                 index_of: Callable[[str], int] | None = None) -> None:
        self._ipr = ipr if ipr is not None else IPRoute()
        self._index_of = index_of or self._lookup
        self._lock = threading.Lock()

    def close(self) -> None:
        self._ipr.close()

    def _lookup(self, pf: str) -> int:
        indexes = self._ipr.link_lookup(ifname=pf)
        if not indexes:
            raise OSError(19, f"no network device {pf}")  # ENODEV
        return int(indexes[0])

    def vf_states(self, pf: str) -> Mapping[int, VfLinkState]:
        with self._lock:
            try:
                replies = self._ipr.link("get", index=self._index_of(pf), ext_mask=1)
            except NetlinkError as exc:
                raise _os_error(exc) from exc
        return parse_vf_states(replies[0])

    def set_vf_mac(self, pf: str, vf: int, mac: str) -> None:
        self._set(pf, {"vf": vf, "mac": mac})

    def set_vf_vlan(self, pf: str, vf: int, vlan: int, qos: int = 0) -> None:
        self._set(pf, {"vf": vf, "vlan": {"vlan": vlan, "qos": qos}})

    def set_vf_spoof_check(self, pf: str, vf: int, enabled: bool) -> None:
        self._set(pf, {"vf": vf, "spoofchk": int(enabled)})

    def set_vf_link_state(self, pf: str, vf: int, state: LinkState) -> None:
        self._set(pf, {"vf": vf, "link_state": int(state)})

    def set_vf_trust(self, pf: str, vf: int, trusted: bool) -> None:
        self._set(pf, {"vf": vf, "trust": int(trusted)})

    def _set(self, pf: str, spec: dict[str, Any]) -> None:
        with self._lock:
            try:
                self._ipr.link("set", index=self._index_of(pf), vf=spec)
            except NetlinkError as exc:
                raise _os_error(exc) from exc


def _os_error(exc: NetlinkError) -> OSError:
    return OSError(exc.code, os.strerror(exc.code))


def parse_vf_states(link: Any) -> dict[int, VfLinkState]:
    """The VFs of an ``RTM_NEWLINK`` reply (pyroute2 ``ifinfmsg``), by index."""
    vflist = link.get_attr("IFLA_VFINFO_LIST")
    states: dict[int, VfLinkState] = {}
    if vflist is None:
        return states
    for info in vflist.get_attrs("IFLA_VF_INFO"):
        mac = info.get_attr("IFLA_VF_MAC")
        if mac is None:
            continue
        vlan = info.get_attr("IFLA_VF_VLAN") or {}
        spoof = _setting(info.get_attr("IFLA_VF_SPOOFCHK"), "spoofchk")
        trust = _setting(info.get_attr("IFLA_VF_TRUST"), "trust")
        link_state = _setting(info.get_attr("IFLA_VF_LINK_STATE"), "link_state")
        states[mac["vf"]] = VfLinkState(
            vf=mac["vf"], mac=mac["mac"], vlan=vlan.get("vlan", 0), qos=vlan.get("qos", 0),
            spoof_check=None if spoof is None else bool(spoof),
            trust=None if trust is None else bool(trust),
            link_state=None if link_state is None else LinkState(link_state))
    return states


def _setting(attr: Mapping[str, int] | None, key: str) -> int | None:
    if attr is None or attr.get(key, UNREPORTED) == UNREPORTED:
        return None
    return int(attr[key])


class NetlinkDriver(StandardVfDriver):
    """Any SR-IOV NIC, through the kernel's standard VF settings; no VLAN trunks."""

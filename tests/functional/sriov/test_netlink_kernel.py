"""NetlinkLinkOps against the real kernel: requests pass rtnetlink's validation and the
kernel's refusals come back as errors naming port, PF, VF and driver.

An ifb device stands in for a PF: it has no VF support, so a well-formed VF request reaches
the device and is answered EOPNOTSUPP (a malformed one would be EINVAL/ERANGE from the
attribute policy first).  Reading its VFs gives none.
"""

from __future__ import annotations

import errno

import pytest
from pyroute2 import IPRoute

from dpagent.lab import process
from sriov.driver import DriverContext, LinkState, PfInfo, VfTarget
from sriov.errors import UnsupportedOperation
from sriov.netlink import NetlinkDriver, NetlinkLinkOps
from sriov.sysfs import Sysfs


@pytest.fixture
def ops(netns):
    process.run(["ip", "-n", netns, "link", "add", "pf0", "type", "ifb"])
    link_ops = NetlinkLinkOps(IPRoute(netns=netns))
    yield link_ops
    link_ops.close()


@pytest.mark.parametrize("call", [
    lambda ops: ops.set_vf_vlan("pf0", 0, 100),
    lambda ops: ops.set_vf_vlan("pf0", 0, 4094, qos=7),
    lambda ops: ops.set_vf_mac("pf0", 0, "fa:16:3e:00:00:01"),
    lambda ops: ops.set_vf_spoof_check("pf0", 0, True),
    lambda ops: ops.set_vf_link_state("pf0", 0, LinkState.ENABLE),
    lambda ops: ops.set_vf_trust("pf0", 0, False),
])
def test_well_formed_requests_reach_the_device(ops, call):
    with pytest.raises(OSError) as caught:
        call(ops)
    assert caught.value.errno == errno.EOPNOTSUPP


def test_a_device_without_vfs_reports_none(ops):
    assert ops.vf_states("pf0") == {}


def test_an_absent_pf_is_enodev(ops):
    with pytest.raises(OSError) as caught:
        ops.set_vf_vlan("nope0", 0, 10)
    assert caught.value.errno == errno.ENODEV


def test_the_generic_driver_names_everything_when_the_kernel_refuses(ops):
    context = DriverContext("netlink", PfInfo("pf0", "0000:00:00.0", "ifb"), Sysfs("/sys"), ops)
    driver = NetlinkDriver(context)
    with pytest.raises(UnsupportedOperation) as caught:
        driver.set_port_vlan(VfTarget("pf0", 3, "port-1"), 100)
    assert str(caught.value) == ("port port-1 VF 3 of PF pf0 (driver netlink): setting port "
                                 "VLAN 100: the NIC does not support it (Operation not "
                                 "supported)")

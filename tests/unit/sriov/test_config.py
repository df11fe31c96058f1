"""[sriov] option parsing: typed mappings, every mistake named at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from sriov.config import SriovSettings, normalize_pci_address
from sriov.errors import SriovConfigError


def test_mappings_excludes_and_overrides_are_parsed():
    settings = SriovSettings.from_options(
        ["physnet2:ens1f0", "physnet2:ens1f1", " physnet3 : ens2f0 "],
        ["ens1f0:0000:07:00.2;0000:07:00.3", "ens2f0:08:02.1"],
        {"ens1f0": "intel_i40e"}, "/tmp/fake-sys")
    assert settings.device_mappings == {"physnet2": ("ens1f0", "ens1f1"),
                                        "physnet3": ("ens2f0",)}
    assert settings.exclude_devices == {"ens1f0": {"0000:07:00.2", "0000:07:00.3"},
                                        "ens2f0": {"0000:08:02.1"}}
    assert settings.driver_overrides == {"ens1f0": "intel_i40e"}
    assert settings.sysfs_root == Path("/tmp/fake-sys")
    assert settings.pfs == ("ens1f0", "ens1f1", "ens2f0")
    assert settings.physnet_of("ens1f1") == "physnet2"
    assert settings.physnet_of("eth0") is None


def test_no_mappings_is_a_valid_empty_configuration():
    settings = SriovSettings.from_options([])
    assert settings.pfs == ()
    assert settings.sysfs_root == Path("/sys")


def test_every_problem_is_reported_at_once_and_names_the_entry():
    with pytest.raises(SriovConfigError) as caught:
        SriovSettings.from_options(
            ["physnet2", "physnet2:ens1f0", "physnet3:ens1f0", ":ens9"],
            ["eth7:0000:07:00.2", "ens1f0:07:00", "ens1f0"],
            {"eth8": "intel_i40e"})
    lines = str(caught.value).splitlines()
    assert lines == [
        "[sriov] physical_device_mappings: 'physnet2' is not physnet:pf",
        "[sriov] physical_device_mappings: PF ens1f0 is mapped to both physnet2 and physnet3; "
        "a PF serves one physical network",
        "[sriov] physical_device_mappings: ':ens9' is not physnet:pf",
        "[sriov] exclude_devices: PF eth7 is not in physical_device_mappings",
        "[sriov] exclude_devices: PF ens1f0: '07:00' is not a PCI address (dddd:bb:dd.f)",
        "[sriov] exclude_devices: 'ens1f0' is not pf:pci_address[;...]",
        "[sriov] driver_overrides: PF eth8 (driver intel_i40e) is not in "
        "physical_device_mappings",
    ]


def test_the_same_mapping_twice_is_harmless():
    settings = SriovSettings.from_options(["physnet2:ens1f0", "physnet2:ens1f0"])
    assert settings.device_mappings == {"physnet2": ("ens1f0",)}


@pytest.mark.parametrize("given, expected", [
    ("0000:07:00.2", "0000:07:00.2"), ("07:00.2", "0000:07:00.2"),
    ("0000:AF:10.7", "0000:af:10.7")])
def test_pci_addresses_are_normalized(given, expected):
    assert normalize_pci_address(given) == expected


@pytest.mark.parametrize("bad", ["0000:07:00.8", "7:00.2", "0000:07:00", "", "zz:00.1"])
def test_bad_pci_addresses_are_refused(bad):
    with pytest.raises(ValueError, match="not a PCI address"):
        normalize_pci_address(bad)

"""Intel NIC plugins for dpagent's SR-IOV driver interface.

Found only through the ``dpagent.sriov.drivers`` entry points (``intel_i40e``); imports nothing
from ``sriov`` but the driver interface (:mod:`sriov.driver`, :mod:`sriov.errors`,
:mod:`sriov.vlans`), as import-linter checks.
"""

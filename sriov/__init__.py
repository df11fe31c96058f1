"""SR-IOV VF inventory and NIC drivers for dpagent.

Drivers are found only through the ``dpagent.sriov.drivers`` entry points and
loaded with stevedore; this package defines their interface and never imports
``dpagent``, so a driver can be tested on its own.  Filled by the SR-IOV issue.
"""

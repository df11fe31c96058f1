"""dpagent: a per-host Open vSwitch dataplane agent.

The daemon and its parts live in subpackages: ``dpagent.conf`` (options),
``dpagent.lab`` (private OVS, namespaces and RabbitMQ for tests and the demo).
The pure security-group compiler is the top-level ``flows`` package and NIC
drivers are in ``sriov``.
"""

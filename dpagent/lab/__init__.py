"""Lab components: a private OVS, namespace "VMs" and a private RabbitMQ.

They live in the library rather than under tests/ because the demo uses them
at run time as well as the functional tests and benchmarks.  Everything they
start runs in temporary directories and ``dpa-`` network namespaces, and is
removed by their ``stop``/``destroy``/``close`` methods; nothing touches a
system-wide OVS, RabbitMQ or the host's own network namespace.
"""

"""The one-command demo: dpagent end to end on one machine.

    python -m dpagent.lab.demo [--keep] [--topology FILE]     (as root; tools/demo.sh)
    python -m dpagent.lab.demo --stop RUN_DIR                   (remove a --keep run)

A private OVS (userspace datapath) with br-int and a physical bridge, a private RabbitMQ,
``dpagent-controller`` with the sample topology (``topology.yaml``: two networks, one of them a
VLAN provider network; web, db and a stateless group), the ``dpagent`` daemon, four namespace
VMs plugged like Nova VIFs and an external host behind the physical bridge. The demo prints a
connectivity matrix (expected vs observed, from real pings and TCP connects), cordons the agent
through the API and shows that a newly plugged VM stays isolated while the others keep working,
uncordons it, and removes everything on exit. It exits non-zero if any observed cell differs
from the expected one (``expected.py``, the topology's intent written down by hand).

Modules: ``layout`` (what the demo reads from the topology), ``expected`` (the intent),
``matrix`` (probes and rendering), ``controller`` (the controller process and its API),
``rig`` (processes, namespaces, run directory, cleanup), ``scenario`` (the story), ``cli``.
"""

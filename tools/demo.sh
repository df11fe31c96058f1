#!/usr/bin/env bash
# dpagent demo: a private OVS, RabbitMQ, dpagent-controller with a sample topology, the agent
# and namespace VMs on this machine; prints the connectivity matrix (expected vs observed),
# cordons the agent and shows a new VM stays isolated, then cleans up.  Exits non-zero on any
# mismatch.  Arguments go to the demo: --keep (leave it running), --topology FILE,
# --stop RUN_DIR.  Needs root (network namespaces); installs what it needs via setup-deps.sh.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
bash tools/setup-deps.sh
exec .venv/bin/python -m dpagent.lab.demo "$@"

#!/usr/bin/env bash
# dpagent demo -- PARTIAL for now: a private OVS, two namespace VMs, traffic
# between them, expected vs observed.  The controller issue adds the agent.
# Needs root (network namespaces); installs what it needs via setup-deps.sh.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
bash tools/setup-deps.sh
exec .venv/bin/python -m dpagent.lab.demo "$@"

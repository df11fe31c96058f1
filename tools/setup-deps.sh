#!/usr/bin/env bash
# Install what dpagent's tests and demo need, idempotently, on Debian 12 as root.
#
# Debian packages are installed only when missing, and their services are NOT
# started: the lab runs private ovsdb-server/ovs-vswitchd/rabbitmq instances,
# and a system-wide OVS or RabbitMQ would only get in the way.  Then a .venv
# with the project installed in editable mode plus the test requirements.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"

source "$top/tools/lib/debs.sh"
debs=(openvswitch-switch rabbitmq-server iproute2 ethtool python3-venv python3-dev tcpdump iputils-ping)

install_debs setup-deps "${debs[@]}" || exit 1

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup-deps: creating .venv with $("$python" --version)"
    "$python" -m venv .venv
fi

# Reinstall only when the packaging, the test requirements or the set of
# top-level packages changed (the editable install maps the packages that
# exist when it runs): the stamp keeps repeated runs of run-tests.sh fast.
stamp=.venv/.dpagent-deps
want=$( (cat setup.cfg pyproject.toml test-requirements.txt; ls -d ./*/__init__.py) | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log=.venv/pip-install.log
    echo "setup-deps: pip install -e . -r test-requirements.txt (log: $log)"
    if ! { .venv/bin/python -m pip install --upgrade pip &&
           .venv/bin/python -m pip install -e . -r test-requirements.txt; } > "$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "setup-deps: pip install failed" >&2
        exit 1
    fi
    echo "$want" > "$stamp"
fi

# tests/neutron: a real neutron-server (MariaDB, a neutron virtualenv); see tools/neutron-server/
bash tools/neutron-server/setup.sh

#!/usr/bin/env bash
# Install what tests/neutron needs to run a real neutron-server, idempotently, on Debian 12
# as root: Debian's MariaDB and RabbitMQ (their system services are NOT started: the tests
# run private instances), conntrack (neutron's own OVS agent, which the migration test runs,
# calls it), gcc and the Python headers (uwsgi compiles), and a virtualenv
# ${DPAGENT_NEUTRON_VENV:-/opt/dpagent-test/neutron-venv} with neutron, PyMySQL and uwsgi.
# Fast (no network) when everything is present.
set -euo pipefail

venv=${DPAGENT_NEUTRON_VENV:-/opt/dpagent-test/neutron-venv}
version=${DPAGENT_NEUTRON_VERSION:-29.0.0}

source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/lib/debs.sh"
debs=(mariadb-server mariadb-client rabbitmq-server conntrack gcc python3-venv python3-dev)
install_debs neutron-server/setup "${debs[@]}" || exit 1

have=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("neutron"))' \
       2>/dev/null || true)
log=$(dirname "$venv")/neutron-venv-install.log
if [ "$have" != "$version" ] || [ ! -x "$venv/bin/uwsgi" ] || [ ! -x "$venv/bin/neutron-rpc-server" ] ||
   ! "$venv/bin/python" -c 'import pymysql' 2>/dev/null; then
    mkdir -p "$(dirname "$venv")"
    echo "neutron-server/setup: pip install neutron==$version PyMySQL uwsgi into $venv (log: $log)"
    start=$SECONDS
    if ! { { [ -x "$venv/bin/python" ] || python3 -m venv "$venv"; } &&
           "$venv/bin/python" -m pip install -U pip setuptools wheel &&
           "$venv/bin/python" -m pip install "neutron==$version" PyMySQL uwsgi; } > "$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "neutron-server/setup: pip install failed" >&2
        exit 1
    fi
    echo "neutron-server/setup: installed in $((SECONDS - start)) s"
fi

# dpagent's neutron-server extension (neutron-dpagent/), as an operator installs it: into
# neutron's environment, without dependencies (neutron's are there). Again whenever its
# source changed (a stamp of its files' hash in the venv).
ext=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/neutron-dpagent
stamp=$venv/.neutron-dpagent-source
digest=$(cd "$ext" && find . -name '*.py' -o -name '*.toml' | LC_ALL=C sort | xargs sha256sum | sha256sum)
if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
    echo "neutron-server/setup: pip install --no-deps $ext into $venv"
    if ! "$venv/bin/python" -m pip install --no-deps --no-build-isolation "$ext" >> "$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "neutron-server/setup: installing neutron-dpagent failed" >&2
        exit 1
    fi
    echo "$digest" > "$stamp"
fi

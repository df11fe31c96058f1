#!/usr/bin/env bash
# Install what tests/neutron needs to run a real neutron-server, idempotently, on Debian 12
# as root: Debian's MariaDB and RabbitMQ (their system services are NOT started: the tests
# run private instances), gcc and the Python headers (uwsgi compiles), and a virtualenv
# ${DPAGENT_NEUTRON_VENV:-/opt/dpagent-test/neutron-venv} with neutron, PyMySQL and uwsgi.
# Fast (no network) when everything is present.
set -euo pipefail

venv=${DPAGENT_NEUTRON_VENV:-/opt/dpagent-test/neutron-venv}
version=${DPAGENT_NEUTRON_VERSION:-29.0.0}

debs=(mariadb-server mariadb-client rabbitmq-server gcc python3-venv python3-dev)
missing=()
for pkg in "${debs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "neutron-server/setup: missing Debian packages (${missing[*]}) and not root" >&2
        exit 1
    fi
    echo "neutron-server/setup: installing ${missing[*]}"
    # policy-rc.d exit 101: invoke-rc.d neither starts nor restarts the packages' services
    policy=/usr/sbin/policy-rc.d
    own_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"
        chmod 755 "$policy"
        own_policy=1
        trap '[ "$own_policy" = 1 ] && rm -f "$policy"' EXIT
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

have=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("neutron"))' \
       2>/dev/null || true)
if [ "$have" = "$version" ] && [ -x "$venv/bin/uwsgi" ] && [ -x "$venv/bin/neutron-rpc-server" ] &&
   "$venv/bin/python" -c 'import pymysql' 2>/dev/null; then
    exit 0
fi
log=$(dirname "$venv")/neutron-venv-install.log
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

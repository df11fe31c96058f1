#!/usr/bin/env bash
# Install dpagent as a systemd service on this host (Debian 12, as root):
#   - a virtualenv with dpagent installed from its wheel (default /opt/dpagent): the wheel given
#     with --wheel, else one built from this checkout (`pip wheel --no-deps`); the wheel carries
#     what a compute node needs, not the test rig (dpagent.lab); --venv reuses an existing
#     virtualenv as it is,
#   - /etc/systemd/system/dpagent.service (systemd/dpagent.service, ExecStart pointing at it),
#   - /etc/dpagent/dpagent.conf from etc/dpagent.conf.sample, only if absent (never overwritten),
#     and the empty drop-in directory /etc/dpagent/dpagent.conf.d,
#   - systemctl daemon-reload when systemd runs this host.
# It neither enables nor starts the service: edit the configuration first (host, transport_url,
# bridge_mappings), then `systemctl enable --now dpagent`.
#
#   bash tools/install-service.sh [--wheel FILE | --venv DIR] [--root DIR]
#
# --root installs into another root (packaging, tests); nothing is reloaded then.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=/opt/dpagent
root=/
create_venv=1
wheel=
while [ $# -gt 0 ]; do
    case "$1" in
        --venv) venv=$(cd "$2" && pwd); create_venv=0; shift 2 ;;
        --wheel) wheel=$(realpath "$2"); shift 2 ;;
        --root) root=$2; shift 2 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "install-service: unknown argument: $1" >&2; exit 2 ;;
    esac
done

if [ "$create_venv" = 1 ]; then
    bash "$top/tools/setup-deps.sh"   # Debian packages (OVS, ...) without starting services
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
    fi
    if [ -z "$wheel" ]; then
        built=$(mktemp -d)
        trap 'rm -rf "$built"' EXIT
        "$venv/bin/python" -m pip wheel -q --no-deps -w "$built" "$top"
        wheel=$(ls "$built"/dpagent-*.whl)
    fi
    "$venv/bin/python" -m pip install -q "$wheel"
    echo "install-service: installed $(basename "$wheel") into $venv"
fi
daemon="$venv/bin/dpagent"
[ -x "$daemon" ] || { echo "install-service: $daemon missing" >&2; exit 1; }

unit_dir="$root/etc/systemd/system"
conf_dir="$root/etc/dpagent"
install -d -m 755 "$unit_dir" "$conf_dir" "$conf_dir/dpagent.conf.d"
sed "s|/usr/local/bin/dpagent|$daemon|" "$top/systemd/dpagent.service" > "$unit_dir/dpagent.service"
chmod 644 "$unit_dir/dpagent.service"
if [ ! -e "$conf_dir/dpagent.conf" ]; then
    install -m 640 "$top/etc/dpagent.conf.sample" "$conf_dir/dpagent.conf"
    echo "install-service: wrote $conf_dir/dpagent.conf (edit it: [agent] host, transport_url, [ovs] bridge_mappings)"
else
    echo "install-service: kept the existing $conf_dir/dpagent.conf"
fi
echo "install-service: installed $unit_dir/dpagent.service (ExecStart $daemon)"
if [ "$root" = / ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    echo "install-service: now run: systemctl enable --now dpagent"
fi

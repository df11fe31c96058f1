#!/usr/bin/env bash
# The test gate (what CI runs through .ci/run): lint, static types, import contracts, then
# every unit and functional test against a real OVS, real namespaces and a
# real RabbitMQ.  Functional tests need root; tools/setup-deps.sh installs
# everything they need.  Leaves the work tree as it found it.
set -uo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"

bash tools/setup-deps.sh || { echo "run-tests: setup-deps failed" >&2; exit 1; }

failed=()

echo "== ruff check"
.venv/bin/ruff check --no-cache . || failed+=(ruff)

echo "== mypy --strict"
.venv/bin/mypy || failed+=(mypy)

echo "== lint-imports"
.venv/bin/lint-imports --no-cache --no-logo || failed+=(lint-imports)

echo "== pytest"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# -p no:cacheprovider: no .pytest_cache, so git status stays clean.
.venv/bin/python -m pytest -p no:cacheprovider --timeout="${DPAGENT_TEST_TIMEOUT:-300}" \
    --durations=10 -q tests/unit tests/functional tests/neutron "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
if [ "$rc" -eq 5 ]; then
    echo "run-tests: pytest collected no tests (exit 5)"
    rc=0
elif [ "$rc" -ne 0 ]; then
    failed+=("pytest (exit $rc)")
fi

# The one-command demo, end to end (about 40 s); its exit code counts.  Always on under CI.
echo "== demo (python -m dpagent.lab.demo)"
if [ "${DPAGENT_SKIP_DEMO:-0}" != 0 ] && [ -z "${CI:-}" ]; then
    echo "run-tests: demo skipped (DPAGENT_SKIP_DEMO=$DPAGENT_SKIP_DEMO)"
else
    demo_start=$SECONDS
    .venv/bin/python -m dpagent.lab.demo || failed+=("demo (exit $?)")
    echo "run-tests: the demo took $((SECONDS - demo_start)) s"
fi

# tests/vm runs only inside a QEMU VM with an emulated SR-IOV NIC (about a
# minute, see tools/sriov-vm/README.md).  Always on under CI.
echo "== SR-IOV VM tier (tools/sriov-vm/run.sh)"
if [ "${DPAGENT_SKIP_VM:-0}" != 0 ] && [ -z "${CI:-}" ]; then
    echo "run-tests: SR-IOV VM tier skipped (DPAGENT_SKIP_VM=$DPAGENT_SKIP_VM)"
else
    bash tools/sriov-vm/run.sh || failed+=("sriov-vm (exit $?)")
fi

echo
if [ "${#failed[@]}" -gt 0 ]; then
    echo "run-tests: FAILED: ${failed[*]}"
else
    echo "run-tests: ruff, mypy, lint-imports, pytest, the demo and the VM tier passed"
fi
# The pytest summary line last, where a reader (or CI) looks for it.
grep -E '^=*.*[0-9]+ (passed|failed|error|skipped|deselected|xfailed|xpassed)' "$log" | tail -n 1 \
    | sed -E 's/^=+ //; s/ =+$//'
[ "${#failed[@]}" -eq 0 ]

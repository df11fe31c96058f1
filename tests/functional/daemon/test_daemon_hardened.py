"""The daemon under the shipped unit's restrictions still wires ports.

This machine has no systemd running, so the restrictions are applied with the kernel features
systemd itself uses, read from ``systemd/dpagent.service``: the capability bounding set
(``CapabilityBoundingSet``, with ``setpriv``), ``NoNewPrivileges``, ``ProtectSystem=strict``
(a private mount namespace whose ``/`` is read-only but for ``ReadWritePaths``, here the test's
directories in their place) and ``ProtectHome`` (an empty read-only /root and /home; only
read-only where this interpreter lives, as on a test machine with pyenv under /root). /tmp is
read-only too, which is stricter than ``PrivateTmp``. What is not emulated: ``PrivateDevices``, the
``Protect*Kernel*``, ``Restrict*`` and architecture options, and the journal.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

from dpagent.daemon.status import query
from tests.functional.daemon.test_daemon import (
    clean_up,
    double,  # noqa: F401 - the fixture
    pingable_network,
    wait_for,
    write_config,
)

UNIT = Path(__file__).resolve().parents[3] / "systemd" / "dpagent.service"
CAP_NET_ADMIN = 12


def unit_setting(name: str) -> str:
    found = re.search(rf"^{name}=(.*)$", UNIT.read_text(), re.MULTILINE)
    assert found, f"{name} is not set in {UNIT}"
    return found.group(1).strip()


def restricted(argv: list[str], writable: list[Path]) -> list[str]:
    """``argv`` run the way the unit would run it (see the module's docstring)."""
    caps = [c.lower().removeprefix("cap_") for c in unit_setting("CapabilityBoundingSet").split()]
    assert unit_setting("NoNewPrivileges") == "yes" and unit_setting("ProtectSystem") == "strict"
    assert unit_setting("ProtectHome") == "yes"
    binds = "".join(f"mount --bind {shlex.quote(str(p))} {shlex.quote(str(p))}; "
                    for p in writable)
    python = os.path.realpath(sys.executable)
    homes = "".join(f"if [ -d {h} ]; then mount -t tmpfs -o ro,mode=755 tmpfs {h}; fi; "
                    for h in ("/root", "/home") if not python.startswith(h + "/"))
    script = (f"set -e; mount --make-rprivate /; {binds}{homes}mount -o remount,bind,ro /; "
              f"exec setpriv --no-new-privs --bounding-set -all,{','.join('+' + c for c in caps)}"
              f" --inh-caps -all -- {shlex.join(argv)}")
    return ["unshare", "--mount", "--", "sh", "-c", script]


def test_the_hardened_daemon_wires_ports_and_traces(tmp_path, ovs_sandbox, transport_url,
                                                     double, netns_vm):  # noqa: F811
    host = f"compute-{uuid.uuid4().hex[:6]}"
    bridge = f"br-h{uuid.uuid4().hex[:6]}"
    net, sg = pingable_network(double, "10.7.0.0/24")
    conf = write_config(tmp_path, ovs_sandbox, transport_url, host, bridge, "threading")
    argv = restricted([sys.executable, "-m", "dpagent.cmd.agent", "--config-file", str(conf)],
                      [tmp_path, Path(ovs_sandbox.directory)])
    daemon = subprocess.Popen(argv, env=dict(os.environ, **ovs_sandbox.env),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    sock = str(tmp_path / "status.sock")
    try:
        double.wait_for_call("report_state", timeout=30)
        agent_pids = _agent_pids(daemon.pid)
        assert len(agent_pids) == 2, agent_pids  # the master and its worker
        for pid in agent_pids:  # restricted as the unit says
            status = _proc_status(pid)
            assert int(status["CapBnd"], 16) == 1 << CAP_NET_ADMIN, status
            assert int(status["CapEff"], 16) == 1 << CAP_NET_ADMIN, status
            assert status["NoNewPrivs"] == "1", status
            assert _mount_options(pid, "/").startswith("ro"), _mount_options(pid, "/")
        ports = [double.add_port(net.id, host=host, security_groups=[sg.id]) for _ in range(2)]
        a, b = (netns_vm(name, bridge=bridge, mac=p.mac_address,
                         ipv4=[f"{p.fixed_ips[0]['ip_address']}/24"], iface_id=p.id)
                for name, p in zip(("ha", "hb"), ports, strict=True))
        wait_for(lambda: all(double.model.ports[p.id].status == "ACTIVE" for p in ports),
                 timeout=30, what="ports wired by the hardened daemon")
        assert a.ping(b.ip4)
        answer = query(sock, timeout=30, request={  # ovs-appctl under no_new_privs too
            "command": "trace", "from": ports[0].id, "to": ports[1].id, "service": "icmp"})
        assert answer.get("verdict") == "ALLOWED", answer
        assert query(sock, timeout=30, request={"command": "rules"})["rules"]
    finally:
        clean_up(daemon, ovs_sandbox, bridge)
        for pid in _agent_pids(daemon.pid):
            subprocess.run(["kill", "-9", str(pid)], check=False)


def _agent_pids(root: int) -> list[int]:
    """The wrapper execs into the daemon (the same pid); oslo.service forks its worker."""
    if not Path(f"/proc/{root}").exists():
        return []
    children = [int(p) for task in Path(f"/proc/{root}/task").glob("*")
                for p in _read(task / "children").split()]
    return [root, *sorted(set(children))]


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:  # a thread that ended meanwhile
        return ""


def _proc_status(pid: int) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def _mount_options(pid: int, target: str) -> str:
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        parts = line.split()
        if parts[4] == target:
            return parts[5]
    return ""

"""``dpagent``: the per-host agent daemon.

    dpagent --config-file /etc/dpagent/dpagent.conf [--config-dir /etc/dpagent/dpagent.conf.d]

oslo.service runs the service with the backend named by ``[agent] service_backend``: threading
(the default; neutron itself dropped eventlet in 2026.1) or eventlet for deployments that still
run it. The backend must be chosen before oslo.service's service module is imported, and eventlet
must monkey-patch before anything else touches sockets or threads, hence the order in
:func:`main`.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

from oslo_config import cfg

from dpagent.conf.agent import register_agent_opts
from dpagent.daemon import preflight
from dpagent.daemon.launcher import CONFIG_ERROR, run
from dpagent.version import version


def chosen_backend(argv: list[str]) -> str:
    """Read ``[agent] service_backend`` alone, before anything imports oslo.service (importing
    oslo.messaging does, and would lock oslo.service to its eventlet default).

    oslo.log's command-line options (``--debug``, ``--log-file``... which distributions' units
    pass, RDO's ``--log-file`` for one) are known here too, or this first parse would reject
    them; ``--help`` is left to the full parser, which knows every option."""
    if any(arg in ("-h", "--help") for arg in argv):
        return "threading"
    from oslo_log import log  # imports neither oslo.service nor oslo.messaging

    early = cfg.ConfigOpts()
    register_agent_opts(early)
    log.register_options(early)
    early(argv, project="dpagent", prog="dpagent", version=version())
    return str(early.agent.service_backend)


def parse_config(argv: list[str], conf: cfg.ConfigOpts, logging: Any) -> None:
    from dpagent.conf import register_opts

    register_opts(conf)
    logging.register_options(conf)
    conf(argv, project="dpagent", prog="dpagent", version=version())


def select_backend(name: str) -> None:
    if name != "eventlet":
        # futurist imports eventlet when it is installed, and eventlet warns that it is
        # deprecated: noise unless the operator chose it.
        warnings.filterwarnings("ignore", message=r"(?s).*Eventlet is deprecated")
    from oslo_service import backend

    if name == "eventlet":
        import eventlet

        eventlet.monkey_patch()
        backend.init_backend(backend.BackendType.EVENTLET)
    else:
        backend.init_backend(backend.BackendType.THREADING)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        select_backend(chosen_backend(args))
    except (cfg.Error, ValueError) as exc:
        print(f"dpagent: bad configuration: {exc}", file=sys.stderr)
        return CONFIG_ERROR
    from oslo_log import log as logging

    # The program's entry point owns the global CONF: oslo.messaging registers some of its
    # options there only. Library code below receives it as an argument.
    conf = cfg.CONF
    try:
        parse_config(args, conf, logging)
    except (cfg.Error, ValueError) as exc:
        print(f"dpagent: bad configuration: {exc}", file=sys.stderr)
        return CONFIG_ERROR
    problems = preflight_problems(conf)
    if problems:
        for problem in problems:
            print(f"dpagent: bad configuration: {problem}", file=sys.stderr)
        return CONFIG_ERROR
    logging.setup(conf, "dpagent")
    log = logging.getLogger(__name__)
    for unknown in preflight.unknown_options(preflight.config_files(conf)):
        log.warning("%s", unknown)
    from dpagent.daemon.service import AgentService

    return run(conf, AgentService(conf))


def preflight_problems(conf: cfg.ConfigOpts) -> list[str]:
    """Every mistake of the configuration that the options alone show (see preflight)."""
    problems = preflight.option_values(conf)
    if problems:  # the checks below read values: not before they all parse
        return problems
    from dpagent.physnet.config import PhysnetConfigError, check_options

    try:
        check_options(conf.ovs.bridge_mappings or {}, conf.ovs.integration_bridge,
                      conf.agent.use_veth_interconnection)
    except PhysnetConfigError as exc:
        problems += str(exc).splitlines()
    from dpagent.overlay.config import OverlayConfigError, options_from_conf, overlay_settings

    try:
        overlay_settings(options_from_conf(conf))
    except OverlayConfigError as exc:
        problems += str(exc).splitlines()
    if conf.sriov.physical_device_mappings:
        from sriov import SriovConfigError, SriovSettings

        try:
            SriovSettings.from_options(conf.sriov.physical_device_mappings,
                                       conf.sriov.exclude_devices, conf.sriov.driver_overrides,
                                       conf.sriov.sysfs_root)
        except SriovConfigError as exc:
            problems.append(f"[sriov] {exc}")
    problems += preflight.transport_url(conf)
    problems += preflight.socket_path("[agent] status_socket", conf.agent.status_socket)
    problems += preflight.log_destination(conf.log_file, conf.log_dir)
    return problems


if __name__ == "__main__":
    sys.exit(main())

"""``dpagent-controller``: the lab/CI/single-site control plane.

    dpagent-controller --config-file /etc/dpagent/controller.conf [--config-dir D]

``[DEFAULT] transport_url`` names the broker; ``[controller]`` the database, the topology
file, the API address and the fault injection (``etc/dpagent-controller.conf.sample``).
Always the threading backend of oslo.service.
"""

from __future__ import annotations

import sys
import warnings


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # futurist imports eventlet when it is installed and eventlet then warns that it is
    # deprecated; this program never uses it.
    warnings.filterwarnings("ignore", message=r"(?s).*Eventlet is deprecated")
    from oslo_service import backend

    backend.init_backend(backend.BackendType.THREADING)
    from oslo_config import cfg
    from oslo_log import log as logging

    from dpagent.conf.controller import register_controller_opts
    from dpagent.conf.messaging import register_messaging_opts

    # The entry point owns the global CONF (oslo.messaging registers some options there).
    conf = cfg.CONF
    register_controller_opts(conf)
    register_messaging_opts(conf)
    logging.register_options(conf)
    try:
        conf(args, project="dpagent", prog="dpagent-controller")
        fault_kinds = conf.controller.rpc_fault_kinds
        if not fault_kinds:
            raise ValueError("[controller] rpc_fault_kinds must name error and/or timeout")
    except (cfg.Error, ValueError) as exc:
        print(f"dpagent-controller: bad configuration: {exc}", file=sys.stderr)
        return 2
    logging.setup(conf, "dpagent-controller")
    from oslo_service import service

    from dpagent.controller.service import ControllerService

    launcher = service.launch(conf, ControllerService(conf), workers=1, restart_method="mutate")
    launcher.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())

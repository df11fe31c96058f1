"""oslo.messaging options that oslo.messaging registers on the global only.

oslo.messaging 18.x registers ``[oslo_messaging_tracing]`` and
``[oslo_messaging_metrics]`` only on the global ``cfg.CONF`` but reads them
from the transport's own ``ConfigOpts`` when an RPC client or server is made:
with any other ``ConfigOpts`` that fails with ``NoSuchOptError``.  dpagent
never uses the global, so it registers the same options on the conf it uses.
"""

from __future__ import annotations

import importlib

from oslo_config import cfg

# (module, list of options in it, group it belongs to)
_GLOBAL_ONLY = [
    ("oslo_messaging._tracing.client", "oslo_messaging_tracing", "oslo_messaging_tracing"),
    ("oslo_messaging._metrics.client", "oslo_messaging_metrics", "oslo_messaging_metrics"),
]


def register_messaging_opts(conf: cfg.ConfigOpts) -> None:
    for module_name, attribute, group in _GLOBAL_ONLY:
        try:
            opts = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError):
            continue  # a release without it: nothing to work around
        conf.register_opts(opts, group=group)

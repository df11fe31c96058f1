"""dpagent's version, as installed (``dpagent --version``, the start's log line)."""

from __future__ import annotations

import importlib.metadata


def version() -> str:
    try:
        return importlib.metadata.version("dpagent")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return "unknown"

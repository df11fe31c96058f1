"""Keep a large host's long-lived objects out of the way of Python's memory management.

A full synchronisation of a large host builds ~10^6 objects that live as long as the agent
(flows, the parsed model) and drops as many short-lived ones (every flow's text for its
cookie, the encoded bundle of ~78,000 flow-mods). Two costs follow, and :func:`settle` takes
both away once the burst is over:

* glibc keeps the freed pages in its arenas, where RSS counts them for as long as the agent
  runs: ``malloc_trim`` returns them (7 MiB at `large`);
* the cyclic garbage collector's full passes walk every live object: at `large` one took
  0.2-0.3 s and came about once per ten member changes, in the worker, between a push and its
  flow. ``gc.freeze`` moves what is alive now to the permanent generation, which the passes
  skip; each settle first collects whatever was frozen before, so nothing leaks for longer
  than one settle (a full sync, or an audit: every 300 s by default).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def trim() -> None:
    """Return free heap pages to the system (glibc's ``malloc_trim(0)``; elsewhere nothing)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def settle() -> None:
    """After a burst: collect everything (the previously frozen objects too), freeze what
    survives, give the free pages back."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    trim()

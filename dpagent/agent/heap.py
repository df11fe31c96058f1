"""Give the C heap's free pages back to the system after a burst of allocations.

A full synchronisation of a large host builds and drops ~10^6 short-lived objects (every
flow's text for its cookie, the encoded bundle of ~78,000 flow-mods); glibc keeps the freed
pages in its arenas, where RSS counts them for as long as the agent runs. ``malloc_trim``
returns them. A no-op where the C library has no such call.
"""

from __future__ import annotations

import ctypes
import ctypes.util
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
    """Return free heap pages to the system (glibc's ``malloc_trim(0)``)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)

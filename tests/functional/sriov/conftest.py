"""A private network namespace for the SR-IOV tests that need a real kernel (root).

No SR-IOV hardware is needed: the real kernel sends uevents and answers rtnetlink for ordinary
devices (ifb) created in the namespace, which is enough to exercise the udev socket path and the
netlink error path.  Real VFs are the VM tier's business (tests/vm).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from dpagent.lab import resources

CLONE_NEWNET = 0x40000000
T = TypeVar("T")


@pytest.fixture
def netns() -> Iterator[str]:
    problems = [] if os.geteuid() == 0 else ["root"]
    problems += [b for b in ("ip",) if shutil.which(b) is None]
    if problems:
        reason = f"a network namespace needs {', '.join(problems)}"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    name = f"dpt-sriov-{uuid.uuid4().hex[:8]}"
    resources.add_netns(name)
    try:
        yield name
    finally:
        resources.del_netns(name)


def in_netns(name: str, make: Callable[[], T]) -> T:
    """``make()`` run on a thread moved into namespace ``name`` (sockets it opens stay there)."""
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns failed")
            result.append(make())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            failure.append(exc)
        finally:
            os.close(fd)

    thread = threading.Thread(target=run)  # the thread dies in the namespace, the test never
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]

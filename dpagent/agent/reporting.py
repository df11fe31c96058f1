"""What both sides of the agent (br-int's VIFs, SR-IOV's direct ports) need when they talk to
the control plane: one meaning for "not now", and port reports that survive a failed call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class ControlPlaneUnavailable(Exception):
    """The control plane did not answer (timeout, broker down): retry later."""


def call(method: Callable[..., Any], *args: Any) -> Any:
    """``method(*args)``, with a timeout (e.g. the RPC layer's ServerUnavailable, a
    TimeoutError) turned into :class:`ControlPlaneUnavailable`."""
    try:
        return method(*args)
    except ControlPlaneUnavailable:
        raise
    except TimeoutError as exc:
        raise ControlPlaneUnavailable(str(exc)) from exc


class PortReports:
    """Ports to report up or down with ``update_device_list``.

    A port's state has moved on once it is reported, so nothing else would repeat the news:
    what a failed call (server away, or failing) could not tell is kept and told with the
    next report. A later report about the same port wins over a kept one.
    """

    def __init__(self) -> None:
        self.up: set[str] = set()
        self.down: set[str] = set()

    def __bool__(self) -> bool:
        return bool(self.up or self.down)

    def send(self, update_device_list: Callable[[list[str], list[str]], None],
             up: list[str], down: list[str]) -> None:
        """Report ``up``/``down`` and whatever is kept; on any error keep it all and raise."""
        all_up = sorted((self.up | set(up)) - set(down))
        all_down = sorted((self.down | set(down)) - set(up))
        if not (all_up or all_down):
            return
        try:
            call(update_device_list, all_up, all_down)
        except Exception:
            self.up, self.down = set(all_up), set(all_down)
            raise
        self.up, self.down = set(), set()

"""The endpoint Prometheus scrapes: prometheus_client's WSGI application, served by wsgiref
on a thread of its own, over a registry of this daemon's only (never the library's global one:
tests run many agents in one process, and each must count its own)."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Mapping
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Info, ProcessCollector, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from dpagent.bridge.programmer import ProgrammerObserver
from dpagent.conf.agent import split_listen
from dpagent.metrics.events import EventMetrics
from dpagent.metrics.rules import RuleCollector, RuleCounters
from dpagent.metrics.snapshot import StatusCollector
from dpagent.rpc.observers import observe
from dpagent.version import version

LOG = logging.getLogger(__name__)


class MetricsServer:
    """Serves ``/metrics`` on ``listen`` (``HOST:PORT``, ``[IPv6]:PORT``) once started.

    ``status()`` is the daemon's status snapshot, read at each scrape; the parts of the daemon
    that count events are given their observers by :meth:`bridge`, :meth:`audits_of` and
    :meth:`watch_transport`. ``rule_counters``, if given (or set later), supplies the
    per-rule counters (:mod:`dpagent.metrics.rules`)."""

    def __init__(self, listen: str, status: Callable[[], Mapping[str, Any]], *,
                 integration_bridge: str, host: str,
                 rule_counters: RuleCounters | None = None) -> None:
        self.address = split_listen(listen)
        self.registry = CollectorRegistry()
        self.events = EventMetrics(self.registry)
        self.registry.register(StatusCollector(status, integration_bridge))
        self._rules = RuleCollector(rule_counters)
        self.registry.register(self._rules)
        ProcessCollector(registry=self.registry)  # process_cpu_seconds_total, memory, fds
        Info("dpagent", "This agent: its version and host name.",
             registry=self.registry).info({"version": version(), "host": host})
        self._httpd: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def rule_counters(self) -> RuleCounters | None:
        return self._rules.source

    @rule_counters.setter
    def rule_counters(self, source: RuleCounters | None) -> None:
        self._rules.source = source

    # -- the observers -------------------------------------------------------------------------

    def bridge(self, name: str) -> ProgrammerObserver:
        """The observer of the programmer of bridge ``name``: its bundles and resets."""
        return self.events.bridge(name)

    def audits_of(self, bridge: str) -> Callable[[int], None]:
        """An agent's ``on_audit``: the audits of ``bridge``."""
        return self.events.audits_of(bridge)

    def watch_transport(self, transport: Any) -> None:
        """Count the calls made on ``transport`` and the notifications of the consumers built
        on it from now on (dpagent.rpc.observers)."""
        observe(transport, self.events)

    # -- the HTTP server -----------------------------------------------------------------------

    def start(self) -> None:
        """Listen and serve; OSError if the address cannot be had (in use, not this host's)."""
        host, port = self.address
        family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                       flags=socket.AI_PASSIVE)[0]
        server_class = _IPv6Server if family == socket.AF_INET6 else ThreadingWSGIServer
        self._httpd = make_server(str(sockaddr[0]), port, make_wsgi_app(self.registry),
                                  server_class, handler_class=_QuietHandler)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, args=(self._httpd,),
                                        name="dpagent-metrics", daemon=True)
        self._thread.start()
        LOG.info("serving Prometheus metrics on %s", self.url)

    def _serve(self, httpd: WSGIServer) -> None:
        """Accept until stopped, each scrape answered on a thread of its own.

        Not ``serve_forever``: its selector is socketserver's, chosen when that module is first
        imported -- under eventlet before the monkey-patching (oslo.log imports it early), and
        a real poll() would then hold every green thread, the daemon's start with them."""
        while True:
            try:
                request, client = httpd.get_request()
            except OSError:  # stopped; or a client gone before it was accepted, no fd left
                if self._stopping.wait(0.05):  # (not a busy loop while that lasts)
                    return
                continue
            httpd.process_request(request, client)

    @property
    def port(self) -> int:
        """The port listened on (the one chosen, for port 0), once started."""
        return self._httpd.server_port if self._httpd is not None else self.address[1]

    @property
    def url(self) -> str:
        host = self.address[0]
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}/metrics"

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving (a scrape being answered finishes on its own thread)."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        try:
            httpd.socket.shutdown(socket.SHUT_RDWR)  # wakes the accept (close alone does not)
        except OSError:
            pass
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout)


class _IPv6Server(ThreadingWSGIServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    """Scrapes logged at debug level, not one line on stderr each."""

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("metrics: %s - %s", self.address_string(), format % args)

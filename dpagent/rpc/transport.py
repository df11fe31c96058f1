"""oslo.messaging plumbing shared by the agent's calls, heartbeat and consumers.

Why these choices:

* **A private ConfigOpts.**  dpagent never uses the global ``cfg.CONF``, but
  oslo.messaging 18.x registers ``[oslo_messaging_tracing]``/``[oslo_messaging_metrics]``
  only there and reads them from the transport's conf when a client or server is built
  (``NoSuchOptError: oslo_messaging_tracing`` otherwise).  :func:`make_transport`
  registers them on the given conf first (``dpagent.conf.messaging``), which also gives
  ``control_exchange`` neutron's value.  (The library still registers a few options on
  the global by itself -- ``rpc_ping_enabled`` when a server is built -- harmless.)
* **The threading executor.**  oslo.messaging picks it when ``thread`` is not
  monkey-patched by eventlet; passing ``executor=`` is deprecated and warns, so
  :func:`rpc_server` lets it choose and says so when it is not threading.
* **Bounded retries when sending.**  With ``retry=None`` (the library default) a call
  made while the broker is down blocks until the broker returns.  The agent has its own
  backoff, so sends give up after :data:`SEND_RETRIES` reconnection attempts and the
  caller sees :class:`~dpagent.rpc.errors.ServerUnavailable`.  (The very first call of a
  process also opens the reply queue, which oslo.messaging does with unbounded retries:
  a call made before the broker was ever reachable can block until it is.)
* **Error mapping in one place** (:func:`call`): timeouts and delivery failures become
  ``ServerUnavailable`` (``BrokerUnreachable`` when publishing itself failed); anything
  the server raised becomes ``ServerError`` -- including builtin exceptions, which
  oslo.messaging re-raises *as the builtin class* (a server-side ``KeyError`` arrives as a
  ``KeyError``, a server-side ``TimeoutError`` as a ``TimeoutError``), and the
  dispatcher's ``UnsupportedVersion``/``NoSuchMethod``.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

import oslo_messaging
from oslo_config import cfg

from dpagent.conf.messaging import register_messaging_opts
from dpagent.rpc.errors import BrokerUnreachable, ServerError, ServerUnavailable

LOG = logging.getLogger(__name__)

SEND_RETRIES = 2
"""Reconnection attempts when publishing (rabbit_retry_interval apart) before giving up."""


def make_transport(conf: cfg.ConfigOpts, url: str | None = None) -> oslo_messaging.Transport:
    """The RPC transport for ``url`` (default: ``[DEFAULT] transport_url`` of ``conf``).

    One per process is enough: clients and servers share its connection pool.  Call
    ``transport.cleanup()`` after stopping every server that uses it.
    """
    register_messaging_opts(conf)
    return oslo_messaging.get_rpc_transport(conf, url=url)


def rpc_client(transport: oslo_messaging.Transport, topic: str, version: str,
               timeout: float, *, namespace: str | None = None,
               retry: int | None = SEND_RETRIES) -> oslo_messaging.RPCClient:
    """A client for calls and casts to ``topic`` at message version ``version``."""
    target = oslo_messaging.Target(topic=topic, version=version, namespace=namespace)
    return oslo_messaging.get_rpc_client(transport, target, timeout=timeout, retry=retry)


def rpc_server(transport: oslo_messaging.Transport, target: oslo_messaging.Target,
               endpoints: Sequence[object]) -> oslo_messaging.MessageHandlingServer:
    """An RPC server (not started) dispatching ``target``'s messages to ``endpoints``.

    Every endpoint must declare ``target = oslo_messaging.Target(version='1.x')``: without
    it the endpoint is 1.0 and a message sent at 1.1 or later fails with
    ``UnsupportedVersion`` before reaching it.
    """
    for endpoint in endpoints:
        if not isinstance(getattr(endpoint, "target", None), oslo_messaging.Target):
            raise TypeError(f"{type(endpoint).__name__} declares no oslo_messaging.Target")
    server = oslo_messaging.get_rpc_server(transport, target, list(endpoints))
    if server.executor_type != "threading":
        LOG.warning("oslo.messaging chose the %s executor for %s (eventlet is monkey-patched)",
                    server.executor_type, target.topic)
    return server


def stop_servers(servers: Sequence[oslo_messaging.MessageHandlingServer],
                 timeout: float | None = None) -> bool:
    """Stop consuming and wait for the messages being handled; idempotent.

    Each server is stopped on a thread of its own: ``stop()`` waits for the listener's
    current poll (up to 5 s when the queue has been idle, longer while reconnecting) and
    ``wait()`` for the idle worker threads (up to 1 s), so stopping six consumers one
    after the other would add all of that up.  With ``timeout``, gives up waiting after
    that many seconds (False): the servers still stop, on daemon threads, and messages
    not acknowledged are redelivered to the next consumer.
    """
    def stop(server: oslo_messaging.MessageHandlingServer) -> None:
        server.stop()
        server.wait()

    stoppers = [threading.Thread(target=stop, args=(server,), name="dpagent-rpc-stop",
                                 daemon=True) for server in servers]
    for stopper in stoppers:
        stopper.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    for stopper in stoppers:
        stopper.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
    return not any(stopper.is_alive() for stopper in stoppers)


def request_context() -> dict[str, Any]:
    """The context dict neutron's agents send: an admin context without a user.

    neutron-server accepts ``{}`` too, but sending what the stock agent sends
    (``get_admin_context_without_session().to_dict()``, rpc/01) keeps server logs and
    policy checks the same as for a neutron agent.
    """
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    return {
        "auth_token": None, "can_set_project_id": True, "domain": None,
        "global_request_id": None, "has_global_access": True, "is_admin": True,
        "is_admin_project": True, "project": None, "project_domain": None,
        "project_id": None, "project_name": None, "read_only": False,
        "request_id": f"req-{uuid.uuid4()}", "resource_uuid": None,
        "roles": ["admin", "member", "reader"], "show_deleted": False,
        "system_scope": None, "timestamp": now.strftime("%Y-%m-%d %H:%M:%S.%f"),
        "user": None, "user_domain": None, "user_id": None,
        "user_identity": "- - - - -", "user_name": None,
    }


def call(client: oslo_messaging.RPCClient, method: str, *, version: str | None = None,
         timeout: float | None = None, arguments: dict[str, Any] | None = None,
         **kwargs: Any) -> Any:
    """``client.call`` with dpagent's errors: ServerUnavailable or ServerError.

    ``arguments`` carries keyword arguments whose names clash with this function's own (the
    resources ``pull`` call has one named ``version``)."""
    kwargs.update(arguments or {})
    prepare: dict[str, Any] = {}
    if version is not None:
        prepare["version"] = version
    if timeout is not None:
        prepare["timeout"] = timeout
    cctxt = client.prepare(**prepare) if prepare else client
    try:
        return cctxt.call(request_context(), method, **kwargs)
    except oslo_messaging.MessagingTimeout as exc:
        raise ServerUnavailable(f"{method}: no reply in time ({exc})") from exc
    except oslo_messaging.RemoteError as exc:
        raise ServerError(f"{method}: the server failed: {exc.exc_type}: {exc.value}",
                          exc.exc_type) from exc
    except oslo_messaging.MessagingServerError as exc:
        # UnsupportedVersion, NoSuchMethod: the server's dispatcher refused the call
        raise ServerError(f"{method}: the server refused it: {type(exc).__name__}: {exc}",
                          type(exc).__name__) from exc
    except oslo_messaging.MessageDeliveryFailure as exc:
        raise BrokerUnreachable(f"{method}: not delivered ({exc})") from exc
    except (oslo_messaging.MessagingException, oslo_messaging.MessageUndeliverable) as exc:
        # no queue bound for it (nobody serves the topic), other transport errors
        raise ServerUnavailable(f"{method}: not delivered ({type(exc).__name__}: {exc})"
                                ) from exc
    except Exception as exc:  # noqa: BLE001 - a remote builtin exception, re-raised as is
        # (not caught as OSError above: a server-side TimeoutError is an OSError too)
        raise ServerError(f"{method}: the server failed: {type(exc).__name__}: {exc}",
                          type(exc).__name__) from exc

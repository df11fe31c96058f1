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
* **Idle polls of :data:`IDLE_POLL` seconds.**  The rabbit driver's listeners (each RPC
  server's, and the reply queue's that every call waits on) block on the broker for up to
  5 s at a time when idle and notice ``stop()`` only in between: stopping the agent took
  one such wait per group of consumers, then another for the reply queue in
  ``transport.cleanup()`` -- 6 to 10 s measured.  Nothing in the configuration bounds that
  wait except the heartbeat interval, which would also send heartbeats more often, so
  :func:`make_transport` lowers the driver's constant for the process (see
  :func:`_shorten_idle_polls`).
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
from oslo_messaging._drivers import amqpdriver

from dpagent.conf.messaging import register_messaging_opts
from dpagent.rpc.errors import (
    BrokerUnreachable,
    ControlPlaneError,
    ServerError,
    ServerUnavailable,
)
from dpagent.rpc.observers import observer_of

LOG = logging.getLogger(__name__)

SEND_RETRIES = 2
"""Reconnection attempts when publishing (rabbit_retry_interval apart) before giving up."""

IDLE_POLL = 0.5
"""Longest wait of an idle rabbit listener on the broker, in seconds (oslo.messaging: 5)."""

CANCEL_TIMEOUT = 2.0
"""How long stopping a server waits for the broker to confirm its consumers' cancel."""


def make_transport(conf: cfg.ConfigOpts, url: str | None = None) -> oslo_messaging.Transport:
    """The RPC transport for ``url`` (default: ``[DEFAULT] transport_url`` of ``conf``).

    One per process is enough: clients and servers share its connection pool.  Call
    ``transport.cleanup()`` after stopping every server that uses it (:func:`stop_servers`).
    """
    register_messaging_opts(conf)
    transport = oslo_messaging.get_rpc_transport(conf, url=url)
    _shorten_idle_polls(transport)
    return transport


def _shorten_idle_polls(transport: oslo_messaging.Transport) -> None:
    """Make the rabbit driver's idle listeners look at their stop flag every IDLE_POLL s.

    ``ACK_REQUEUE_EVERY_SECONDS_MAX`` caps how long a listener thread (``AMQPListener.poll``,
    ``ReplyWaiter.poll``) waits for a message, and it is read on every poll.  Cost: an idle
    listener wakes twice a second instead of every 5 s, without traffic (heartbeats still go
    every ``heartbeat_timeout_threshold / heartbeat_rate``); acks of handled messages, sent
    when the listener wakes, go out sooner.  Lowered only once the rabbit driver is loaded:
    its ``kombu_reconnect_delay`` option takes its maximum from the constant at import.
    """
    if not isinstance(getattr(transport, "_driver", None), amqpdriver.AMQPDriverBase):
        return
    amqpdriver.ACK_REQUEUE_EVERY_SECONDS_MAX = min(amqpdriver.ACK_REQUEUE_EVERY_SECONDS_MAX,
                                                   IDLE_POLL)


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
    current poll (up to :data:`IDLE_POLL` when the queue has been idle, longer while
    reconnecting), then the broker is told to drop its consumers
    (:func:`_cancel_consumers`), then ``wait()`` waits for the messages being handled and
    closes the connection; stopping the servers one after the other would add all of that
    up.  With ``timeout``, gives up waiting after that many seconds (False): the servers
    still stop, on daemon threads, and messages not acknowledged are redelivered to the
    next consumer.
    """
    def stop(server: oslo_messaging.MessageHandlingServer) -> None:
        server.stop()
        _cancel_consumers(server)
        server.wait()

    stoppers = [threading.Thread(target=stop, args=(server,), name="dpagent-rpc-stop",
                                 daemon=True) for server in servers]
    for stopper in stoppers:
        stopper.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    for stopper in stoppers:
        stopper.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
    return not any(stopper.is_alive() for stopper in stoppers)


def _cancel_consumers(server: oslo_messaging.MessageHandlingServer) -> None:
    """Cancel a stopped rabbit server's consumers before ``wait()`` closes its connection.

    Closing, the rabbit driver deletes the server's fanout queue while its consumer is still
    registered; the broker then announces the consumer's end (``basic.cancel``, method
    60,30) into the channel being closed, and py-amqp logs ``Received method (60, 30) during
    closing channel 1`` for every server.  Cancelled first, the consumers are gone and the
    broker has nothing to announce; deliveries still in flight are requeued on close, as
    before.  kombu is not thread-safe: the cancel runs on the thread that owns the
    connection once the listener has stopped, the listener's queue of message operations
    (acks of messages still being handled go the same way).  Anything but the rabbit
    driver, or a server that never listened, is left alone.
    """
    listener = getattr(getattr(server, "listener", None), "_poll_style_listener", None)
    if not isinstance(listener, amqpdriver.AMQPListener):
        return
    consumers: dict[Any, Any] = getattr(listener.conn, "_consumers", None) or {}
    done = threading.Event()

    def cancel() -> None:
        try:
            for consumer, tag in list(consumers.items()):
                consumer.cancel(tag=tag)
        except Exception as exc:  # noqa: BLE001 - the connection closes next anyway
            LOG.debug("cancelling the consumers of %s failed: %s", server.target, exc)
        finally:
            done.set()

    listener._message_operations_handler.do(cancel)
    if not done.wait(CANCEL_TIMEOUT):
        LOG.debug("the broker did not confirm the cancel of %s's consumers", server.target)


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
    resources ``pull`` call has one named ``version``). The transport's observer, if any
    (:mod:`dpagent.rpc.observers`), is told of the call's outcome and duration."""
    kwargs.update(arguments or {})
    prepare: dict[str, Any] = {}
    if version is not None:
        prepare["version"] = version
    if timeout is not None:
        prepare["timeout"] = timeout
    cctxt = client.prepare(**prepare) if prepare else client
    observer = observer_of(getattr(client, "transport", None))
    if observer is None:
        return _call(cctxt, method, kwargs)
    started = time.monotonic()
    try:
        reply = _call(cctxt, method, kwargs)
    except ControlPlaneError as exc:
        observer.call_done(method, time.monotonic() - started, type(exc).__name__)
        raise
    observer.call_done(method, time.monotonic() - started, None)
    return reply


def _call(cctxt: Any, method: str, kwargs: dict[str, Any]) -> Any:
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

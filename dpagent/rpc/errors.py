"""The few ways a call to the control plane fails, as the agent core must tell them apart.

*Unavailable* means "try again later, nothing is known": the broker or server did not
answer in time.  *Server error* means the server answered with an error (or with a
reply that cannot be used): retrying the same request soon is unlikely to help, so the
caller should fail the devices concerned rather than spin.
"""

from __future__ import annotations


class ControlPlaneError(Exception):
    """Base of every error :class:`~dpagent.rpc.plugin_api.PluginApi` raises."""


class ServerUnavailable(ControlPlaneError, TimeoutError):
    """No answer: timeout, broker down, message not deliverable.

    Also a :class:`TimeoutError`, so code that only knows the builtin (the agent core
    maps ``TimeoutError`` to "retry with backoff") treats it as transient.
    """


class BrokerUnreachable(ServerUnavailable):
    """The message could not even be published: the broker is down or unreachable.

    Casts sent to this agent meanwhile are lost (fanout queues do not outlive a broker
    restart), which is why the heartbeat asks for a resync once it gets through again.
    """


class ServerError(ControlPlaneError):
    """The server answered with an exception (``RemoteError``, ``UnsupportedVersion``...).

    ``exc_type`` is the remote exception's class name when oslo.messaging passed it on.
    """

    def __init__(self, message: str, exc_type: str | None = None) -> None:
        super().__init__(message)
        self.exc_type = exc_type


class InvalidReply(ServerError):
    """The server answered, but the reply as a whole has the wrong shape.

    A bad *entry* of a reply (one device) does not raise: it fails only that device.
    """

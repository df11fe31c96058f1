"""The :class:`~dpagent.bridge.transport.FlowTransport` that speaks OpenFlow 1.5 itself.

One :meth:`OpenFlowTransport.apply` is one atomic, ordered bundle::

    BUNDLE_CONTROL open, BUNDLE_ADD (flow-mod) x N, BARRIER    -- streamed, no waiting
    ... errors of single messages, then the barrier reply       -- one round trip
    BUNDLE_CONTROL commit                                        -- one round trip

Every bundled flow-mod has an xid of its own, so an error names its flow-mod. OVS checks a
flow-mod when it is added (bad match, bad actions, a goto_table backwards) and again when the
bundle is committed (e.g. table full); the barrier collects the first kind before anything is
committed, the commit reply the second. Either way the bundle is not applied and
:class:`~dpagent.bridge.transport.BundleRejected` names the flow-mod.

A one-flow bundle costs two round trips on the unix socket (well under a millisecond); a large
one is written as fast as it can be encoded, while ovs-vswitchd reads it.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from dpagent.bridge.openflow import codec
from dpagent.bridge.openflow import protocol as ofp
from dpagent.bridge.openflow.connection import Connection, ConnectionLost
from dpagent.bridge.transport import BundleRejected, FlowMod, InstalledFlow, SwitchError

LOG = logging.getLogger(__name__)
_T = TypeVar("_T")

COMMIT_SECONDS_PER_MOD = 50e-6
"""Extra time allowed for a commit per flow-mod in it (OVS commits ~10^5 flows/s; this is
several times slower, so only a stuck switch times out)."""


class OpenFlowTransport:
    """Bundles and dumps over the bridge's OpenFlow management socket.

    ``mgmt_socket_path`` is ``<OVS rundir>/<bridge>.mgmt``. Connects on first use and again
    after ovs-vswitchd restarts (an exchange cut by a restart is retried once on the new
    connection: a bundle of adds and deletes by cookie can be applied twice with the same
    result). Safe to share between threads; one exchange at a time.
    """

    def __init__(self, mgmt_socket_path: str, timeout: float = 10.0) -> None:
        self.connection = Connection(mgmt_socket_path, timeout)
        self._bundle_ids = itertools.count(1)

    def close(self) -> None:
        with self.connection.lock:
            self.connection.close()

    # -- FlowTransport ---------------------------------------------------------------------

    def apply(self, mods: Sequence[FlowMod],
              before_commit: Callable[[], object] | None = None) -> None:
        if not mods:
            if before_commit is not None:
                before_commit()
            return
        with self.connection.lock:
            self._with_reconnect(lambda: self._apply(mods, before_commit))

    def dump(self, cookie: int, mask: int) -> list[InstalledFlow]:
        with self.connection.lock:
            return self._with_reconnect(lambda: self._dump(cookie, mask))

    def configure_switch(self) -> None:
        with self.connection.lock:
            self._with_reconnect(self._configure)

    def _configure(self) -> None:
        conn = self.connection
        config_xid, barrier_xid = conn.next_xid(), conn.next_xid()
        conn.send([codec.set_config_fragments_nx_match(config_xid),
                   codec.barrier_request(barrier_xid)])
        errors = self._wait_for(barrier_xid, {config_xid})
        if errors:
            raise SwitchError("switch configuration refused: " + errors[0].describe())

    # -- internals -------------------------------------------------------------------------

    def _with_reconnect(self, exchange: Callable[[], _T]) -> _T:
        """Run ``exchange`` on an open connection.

        A connection found closed before the exchange (ovs-vswitchd restarted, or dropped us
        after its 60 s echo went unanswered while we were idle) is simply reopened. One lost
        during the exchange is reopened and the exchange run once more. Failing to connect is
        final: ``open`` has already waited ``timeout`` for the socket to appear.
        """
        conn = self.connection
        if conn.is_open:
            try:
                conn.poll()
            except ConnectionLost as exc:
                LOG.info("%s; reconnecting", exc)
        retried = False
        while True:
            if not conn.is_open:
                conn.open()
            try:
                return exchange()
            except ConnectionLost as exc:
                if retried:
                    raise
                retried = True
                LOG.warning("%s during an exchange; reconnecting to run it again", exc)

    def _apply(self, mods: Sequence[FlowMod],
               before_commit: Callable[[], object] | None) -> None:
        if len(mods) == 1 and before_commit is None:
            self._apply_one(mods[0])
            return
        conn = self.connection
        bundle_id = next(self._bundle_ids) % 0xFFFFFFFF + 1
        open_xid, barrier_xid = conn.next_xid(), conn.next_xid()
        mod_of: dict[int, FlowMod] = {}

        unencodable: list[tuple[FlowMod, ValueError]] = []

        def stream() -> Iterator[bytes]:
            yield codec.bundle_control(bundle_id, ofp.BundleCtrl.OPEN_REQUEST, open_xid)
            for mod in mods:
                xid = conn.next_xid()
                mod_of[xid] = mod
                try:
                    body = codec.flow_mod_body(mod)
                except ValueError as exc:
                    unencodable.append((mod, exc))
                    raise
                yield codec.bundle_add(bundle_id, xid, ofp.MsgType.FLOW_MOD, body)
            yield codec.barrier_request(barrier_xid)

        try:
            conn.send(stream())
        except ValueError as exc:
            self._discard(bundle_id)  # some flow-mods are in the bundle: drop them
            if unencodable:  # a flow we cannot say in OpenFlow: blame it like the switch would
                mod, error = unencodable[0]
                raise BundleRejected(f"cannot encode: {error}", mod) from exc
            raise
        errors = self._wait_for(barrier_xid, {open_xid, *mod_of})
        if errors:
            self._discard(bundle_id)
            raise self._rejection(errors, mod_of)
        if before_commit is not None:
            before_commit()  # the switch holds the whole bundle: only the commit is left
        commit_xid = conn.next_xid()
        conn.send([codec.bundle_control(bundle_id, ofp.BundleCtrl.COMMIT_REQUEST, commit_xid)])
        errors = self._wait_for(commit_xid, set(mod_of),
                                conn.timeout + COMMIT_SECONDS_PER_MOD * len(mods))
        if errors:
            raise self._rejection(errors, mod_of)

    def _apply_one(self, mod: FlowMod) -> None:
        """One flow-mod is atomic by itself: sent with a barrier, one round trip instead of a
        bundle's two (the commit cannot go with the adds: OVS commits a bundle whose add it
        refused, so the adds' answers come first). A member change is one flow-mod; on a
        switch with 1,000 ports, where each round trip waits for its main loop, that halves
        its time."""
        conn = self.connection
        xid, barrier_xid = conn.next_xid(), conn.next_xid()
        try:
            message = codec.flow_mod(mod, xid)
        except ValueError as exc:
            raise BundleRejected(f"cannot encode: {exc}", mod) from exc
        conn.send([message, codec.barrier_request(barrier_xid)])
        errors = self._wait_for(barrier_xid, {xid})
        if errors:
            raise self._rejection(errors, {xid: mod})

    def _wait_for(self, final_xid: int, related: set[int], seconds: float | None = None
                  ) -> list[codec.OpenFlowError]:
        """Read until the answer to ``final_xid``; return the errors about it or ``related``.

        Replies to anything else (a request abandoned after a timeout) are skipped.
        """
        conn = self.connection
        errors = []
        deadline = time.monotonic() + (seconds if seconds is not None else conn.timeout)
        while True:
            message = conn.receive(deadline)
            if message.type == ofp.MsgType.ERROR and (message.xid in related
                                                      or message.xid == final_xid):
                errors.append(codec.parse_error(message.xid, message.body))
            elif message.xid != final_xid:
                LOG.debug("skipping message type %d xid %d", message.type, message.xid)
            if message.xid == final_xid:
                return errors

    def _discard(self, bundle_id: int) -> None:
        xid = self.connection.next_xid()
        self.connection.send([codec.bundle_control(bundle_id, ofp.BundleCtrl.DISCARD_REQUEST,
                                                   xid)])
        self._wait_for(xid, set())

    @staticmethod
    def _rejection(errors: list[codec.OpenFlowError], mod_of: dict[int, FlowMod]
                   ) -> BundleRejected:
        """The error that names a flow-mod wins over the bundle's own (``MSG_FAILED``)."""
        for error in errors:
            xid = error.xid if error.xid in mod_of else codec.error_inner_xid(error)
            if xid in mod_of:
                return BundleRejected(error.describe(), mod_of[xid])
        return BundleRejected("; ".join(error.describe() for error in errors))

    def _dump(self, cookie: int, mask: int) -> list[InstalledFlow]:
        conn = self.connection
        xid = conn.next_xid()
        conn.send([codec.flow_desc_request(cookie, mask, xid)])
        installed: list[InstalledFlow] = []
        while True:
            message = conn.receive()
            if message.xid != xid:
                LOG.debug("skipping message type %d xid %d", message.type, message.xid)
                continue
            if message.type == ofp.MsgType.ERROR:
                raise SwitchError("flow dump refused: "
                                  + codec.parse_error(xid, message.body).describe())
            if message.type != ofp.MsgType.MULTIPART_REPLY:
                raise SwitchError(f"flow dump answered with message type {message.type}")
            flows, more = codec.parse_flow_desc_reply(message.body)
            installed += flows
            if not more:
                return installed

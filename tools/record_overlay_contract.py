#!/usr/bin/env python3
"""Record what a real neutron-server 29 sends OVS agents on tunnelled networks (issue 14).

Usage: ``.venv/bin/python tools/record_overlay_contract.py OUTDIR [--keep-tracebacks]``

Starts a private RabbitMQ and neutron like the real-server tier does (``dpagent.lab``:
``RabbitBroker``, ``NeutronServer``, whose ML2 has the vxlan, geneve and gre type drivers and
l2population), then plays three probe OVS agents with oslo.messaging (``compute1`` and
``compute2``: tunnel types vxlan, geneve, gre; ``compute3``: vxlan only) through the
scenarios of docs/overlay-design.md section 4, and writes one JSON file per step into OUTDIR
plus a README.md.

What reaches the agents is seen twice, both with kombu on the server's vhost:

* RabbitMQ's firehose (``rabbitmqctl trace_on``; a queue on ``amq.rabbitmq.trace`` bound to
  ``publish.#``): every message published in the vhost, with the exchange and routing key
  exactly as published, in the broker's order -- the probe's own calls and their replies
  included, so "before/after the reply" is the broker's order, not a guess from clocks;
* queues as an agent's oslo.messaging consumers make them, per probe host and agent topic:
  ``<topic>.<host>`` bound to exchange ``neutron`` with that routing key, and one queue on the
  exchange ``<topic>_fanout``: which hosts each cast reached (``delivered_to``).

Each step file: ``{"step", "what", "request", "reply", "error", "wire_reply", "elapsed_ms",
"casts": [...]}``; a cast: ``exchange``, ``routing_key``, ``fanout``, ``method``,
``version``, ``kwargs`` (the message's ``args``), ``context`` (its ``_context_*`` keys),
``t_ms`` (when the probe got the firehose copy, from the start of the step's request),
``before_reply`` and ``delivered_to``.  IDs, MACs and IPs differ from run to run.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import re
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import oslo_messaging
from oslo_config import cfg

from dpagent.lab.neutron_server import ML2_CONF, NeutronAPI, NeutronAPIError, NeutronServer
from dpagent.lab.rabbit import RabbitBroker
from dpagent.rpc import transport as rpc_transport

# kombu (oslo.messaging's AMQP library) is only partly typed: used untyped here.
kombu: Any = importlib.import_module("kombu")

# -- the probes ------------------------------------------------------------------------------

ALL_TUNNEL_TYPES = ["vxlan", "geneve", "gre"]
PROBES: dict[str, dict[str, Any]] = {
    "compute1": {"ip": "192.0.2.1", "tunnel_types": ALL_TUNNEL_TYPES},
    "compute2": {"ip": "192.0.2.2", "tunnel_types": ALL_TUNNEL_TYPES},
    "compute3": {"ip": "192.0.2.3", "tunnel_types": ["vxlan"]},
}
BRIDGE_MAPPINGS = {"physnet1": "br-phys"}  # as the tier's agents and the VLAN recording

# neutron 29's OVO versions, as the stock agent reports them (contract rpc/02)
RESOURCE_VERSIONS = {
    "AddressGroup": "1.2", "Agent": "1.1", "ConntrackHelper": "1.0",
    "LocalIPAssociation": "1.0", "Log": "1.0", "NDPProxy": "1.0", "Network": "1.3",
    "Port": "1.11", "PortForwarding": "1.3", "QosPolicy": "1.10", "SecurityGroup": "1.6",
    "SecurityGroupRule": "1.3", "SubPort": "1.0", "Subnet": "1.2", "Trunk": "1.1",
}

# What an agent consumes: the stock OVS agent's l2 topics (Target(topic, server=host,
# fanout=True): queue <topic>.<host> on exchange neutron and a queue on <topic>_fanout) and
# the versioned-object pushes of the versions it reports.
AGENT_TOPICS = tuple(f"q-agent-notifier-{t}" for t in (
    "tunnel-update", "tunnel-delete", "l2population-update", "dvr-update", "port-update",
    "port-delete", "network-update", "network-delete", "security_group-update",
    "binding-activate", "binding-deactivate")) + tuple(
    f"neutron-vo-{name}-{version}" for name, version in sorted(RESOURCE_VERSIONS.items()))

PLUGIN, REPORTS = "q-plugin", "q-reports-plugin"
CONTROL_EXCHANGE = "neutron"
FIREHOSE = "firehose"
SETTLE_QUIET = 1.5  # a step ends after this long without a message in the vhost...
SETTLE_MAX = 15.0  # ...or after this long


def configurations(host: str, tunnel_types: Sequence[str], ip: str | None) -> dict[str, Any]:
    """The stock OVS agent's report (contract rpc/02) with tunnels and l2population on."""
    return {
        "arp_responder_enabled": True, "baremetal_smartnic": False,
        "bridge_mappings": BRIDGE_MAPPINGS, "datapath_type": "system", "devices": 0,
        "enable_distributed_routing": False, "extensions": [], "in_distributed_mode": False,
        "integration_bridge": "br-int", "l2_population": True, "log_agent_heartbeats": False,
        "ovs_capabilities": {
            "datapath_types": ["netdev", "system"],
            "iface_types": ["bareudp", "erspan", "geneve", "gre", "gtpu", "internal",
                            "ip6erspan", "ip6gre", "lisp", "patch", "srv6", "stt", "system",
                            "tap", "vxlan"]},
        "ovs_hybrid_plug": False, "resource_provider_bandwidths": {},
        "resource_provider_hypervisors": {},
        "resource_provider_inventory_defaults": {
            "allocation_ratio": 1.0, "min_unit": 1, "reserved": 0, "step_size": 1},
        "resource_provider_packet_processing_inventory_defaults": {
            "allocation_ratio": 1.0, "min_unit": 1, "reserved": 0, "step_size": 1},
        "resource_provider_packet_processing_with_direction": {},
        "resource_provider_packet_processing_without_direction": {},
        "tunnel_types": list(tunnel_types), "tunneling_ip": ip,
        "vhostuser_socket_dir": "/var/run/openvswitch",
    }


def agent_state(host: str, *, start_flag: bool) -> dict[str, Any]:
    probe = PROBES[host]
    state: dict[str, Any] = {
        "agent_type": "Open vSwitch agent", "binary": "neutron-openvswitch-agent",
        "configurations": configurations(host, probe["tunnel_types"], probe["ip"]),
        "host": host, "resource_versions": RESOURCE_VERSIONS, "topic": "N/A",
        "uuid": str(uuid.uuid4()),
    }
    if start_flag:
        state["start_flag"] = True
    return state


# -- the wire ---------------------------------------------------------------------------------

@dataclass
class Event:
    """One message seen by the probe: a firehose copy of a publish, or a delivery."""

    t: float  # time.monotonic() when the probe got it
    queue: str  # FIREHOSE or the probe queue's name
    exchange: str
    routing_key: str
    envelope: dict[str, Any]  # the body: {"oslo.version", "oslo.message"}
    message: dict[str, Any]  # "oslo.message" decoded
    headers: dict[str, Any] = field(default_factory=dict)

    @property
    def unique_id(self) -> str | None:
        value = self.message.get("_unique_id")
        return value if isinstance(value, str) else None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _plain(value: Any) -> Any:
    """AMQP header values as JSON (bytes -> str)."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, dict):
        return {_text(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return value


def decode_body(body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(envelope, inner message) of an oslo.messaging body (anything else: raw text)."""
    text = _text(body)
    try:
        envelope = json.loads(text)
    except ValueError:
        return {"raw": text}, {}
    if not isinstance(envelope, dict):
        return {"raw": text}, {}
    inner = envelope.get("oslo.message")
    if isinstance(inner, str):
        try:
            message = json.loads(inner)
        except ValueError:
            message = {}
        return envelope, message if isinstance(message, dict) else {}
    return envelope, envelope  # an unwrapped message


class Wire:
    """The firehose and the probe hosts' agent queues, consumed on a thread of their own."""

    def __init__(self, amqp_url: str, hosts: Sequence[str]) -> None:
        self.amqp_url = amqp_url
        self.hosts = list(hosts)
        self.events: list[Event] = []
        self.lock = threading.Lock()
        self.queue_host: dict[str, str] = {}
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="probe-wire", daemon=True)

    def start(self) -> Wire:
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise RuntimeError(f"the probe's AMQP consumers did not start: {self._error}")
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def mark(self) -> int:
        with self.lock:
            return len(self.events)

    def since(self, mark: int) -> list[Event]:
        with self.lock:
            return list(self.events[mark:])

    def last_time(self) -> float:
        with self.lock:
            return self.events[-1].t if self.events else 0.0

    def _queues(self, channel: Any) -> list[Any]:
        trace = kombu.Exchange("amq.rabbitmq.trace", type="topic", durable=True,
                               passive=True)
        queues = [kombu.Queue(f"probe-firehose-{uuid.uuid4().hex[:6]}", exchange=trace,
                              routing_key="publish.#", exclusive=True, auto_delete=True,
                              channel=channel)]
        self.queue_host[queues[0].name] = FIREHOSE
        control = kombu.Exchange(CONTROL_EXCHANGE, type="topic", durable=False,
                                 auto_delete=False)
        for host in self.hosts:
            for topic in AGENT_TOPICS:
                fanout = kombu.Exchange(f"{topic}_fanout", type="fanout", durable=False,
                                        auto_delete=True)
                for queue in (
                        kombu.Queue(f"{topic}.{host}", exchange=control,
                                    routing_key=f"{topic}.{host}", exclusive=True,
                                    auto_delete=True, channel=channel),
                        kombu.Queue(f"{topic}_fanout_probe_{host}", exchange=fanout,
                                    exclusive=True, auto_delete=True, channel=channel)):
                    queues.append(queue)
                    self.queue_host[queue.name] = host
        return queues

    def _run(self) -> None:
        try:
            with kombu.Connection(self.amqp_url, heartbeat=0) as conn:
                channel = conn.channel()
                consumers = []
                for queue in self._queues(channel):
                    consumer = kombu.Consumer(channel, queues=[queue], no_ack=True,
                                              on_message=self._receiver(queue.name))
                    consumer.consume()
                    consumers.append(consumer)
                self._ready.set()
                while not self._stop.is_set():
                    try:
                        conn.drain_events(timeout=0.2)
                    except TimeoutError:
                        pass
        except BaseException as exc:  # noqa: BLE001 - reported by start() or lost at exit
            self._error = exc
            self._ready.set()
            if not self._stop.is_set():
                print(f"probe wire failed: {exc!r}", file=sys.stderr)

    def _receiver(self, queue: str) -> Callable[[Any], None]:
        def receive(message: Any) -> None:
            now = time.monotonic()
            headers = dict(message.headers or {})
            info = message.delivery_info
            if self.queue_host[queue] == FIREHOSE:
                exchange = _text(headers.get("exchange_name", ""))
                keys = [_text(k) for k in headers.get("routing_keys") or []]
                routing_key = keys[0] if keys else ""
                kept = {k: _plain(v) for k, v in headers.items()
                        if k in ("exchange_name", "routing_keys", "routed_queues")}
            else:
                exchange = _text(info.get("exchange", ""))
                routing_key = _text(info.get("routing_key", ""))
                kept = {}
            envelope, inner = decode_body(message.body)
            event = Event(now, queue, exchange, routing_key, envelope, inner, kept)
            with self.lock:
                self.events.append(event)
        return receive


# -- the recorder -----------------------------------------------------------------------------

def context_of(message: dict[str, Any]) -> dict[str, Any]:
    return {k[len("_context_"):]: v for k, v in sorted(message.items())
            if k.startswith("_context_")}


class Recorder:
    """Runs the steps and writes a file per step."""

    def __init__(self, outdir: Path, wire: Wire, api: NeutronAPI,
                 transport: oslo_messaging.Transport, keep_tracebacks: bool) -> None:
        self.outdir = outdir
        self.wire = wire
        self.api = api
        self.transport = transport
        self.keep_tracebacks = keep_tracebacks
        self.index: list[dict[str, Any]] = []
        self._clients: dict[tuple[str, str], oslo_messaging.RPCClient] = {}

    # one step ---------------------------------------------------------------------------------

    def call(self, step: str, what: str, topic: str, method: str, version: str,
             **kwargs: Any) -> Any:
        """An RPC call as an agent makes it; returns the result (None after an error)."""
        key = (topic, version)
        if key not in self._clients:
            self._clients[key] = rpc_transport.rpc_client(self.transport, topic, version,
                                                          timeout=60, retry=2)
        client = self._clients[key]
        context = rpc_transport.request_context()
        request = {"kind": "call", "exchange": CONTROL_EXCHANGE, "topic": topic,
                   "method": method, "version": version, "namespace": None,
                   "kwargs": kwargs, "context": context}
        mark = self.wire.mark()
        started = time.monotonic()
        result: Any = None
        error: dict[str, Any] | None = None
        try:
            result = client.call(context, method, **kwargs)
        except oslo_messaging.RemoteError as exc:
            error = {"client_raises": "oslo_messaging.RemoteError", "exc_type": exc.exc_type,
                     "value": exc.value}
        except Exception as exc:  # noqa: BLE001 - a remote builtin exception re-raised
            error = {"client_raises": f"{type(exc).__module__}.{type(exc).__name__}",
                     "value": str(exc)}
        replied = time.monotonic()
        events = self._settle(mark)
        call_msg_id = None
        for event in events:
            if (event.queue in self._firehose and event.routing_key == topic
                    and event.message.get("_context_request_id") == context["request_id"]):
                call_msg_id = event.message.get("_msg_id")
                break
        self._write(step, what, request, result, error, started, replied, events,
                    own=lambda e: call_msg_id is not None
                    and e.message.get("_msg_id") == call_msg_id)
        return result

    def rest(self, step: str, what: str, method: str, path: str,
             body: dict[str, Any] | None = None) -> Any:
        """A REST request (as Nova or an operator makes it); returns the answer's body."""
        request = {"kind": "rest", "method": method, "path": path, "body": body}
        mark = self.wire.mark()
        started = time.monotonic()
        result: Any = None
        error: dict[str, Any] | None = None
        try:
            result = self.api.request(method, path, body)
        except NeutronAPIError as exc:
            error = {"status": exc.status, "body": _json_or_text(exc.body)}
        replied = time.monotonic()
        events = self._settle(mark)
        self._write(step, what, request, result, error, started, replied, events,
                    own=lambda e: False)
        return result

    @property
    def _firehose(self) -> set[str]:
        return {q for q, h in self.wire.queue_host.items() if h == FIREHOSE}

    def _settle(self, mark: int) -> list[Event]:
        deadline = time.monotonic() + SETTLE_MAX
        while time.monotonic() < deadline:
            time.sleep(0.25)
            if time.monotonic() - max(self.wire.last_time(), 0.0) >= SETTLE_QUIET:
                break
        return self.wire.since(mark)

    def _write(self, step: str, what: str, request: dict[str, Any], result: Any,
               error: dict[str, Any] | None, started: float, replied: float,
               events: list[Event], own: Callable[[Event], bool]) -> None:
        firehose = self._firehose
        published = [e for e in events if e.queue in firehose]
        deliveries: dict[str, list[str]] = {}
        for event in events:
            if event.queue not in firehose and event.unique_id:
                deliveries.setdefault(event.unique_id, []).append(event.queue)
        wire_reply: list[dict[str, Any]] = []
        reply_at: int | None = None
        casts: list[tuple[int, dict[str, Any]]] = []
        for position, event in enumerate(published):
            if own(event):
                if event.routing_key.startswith("reply_"):
                    reply_at = position if reply_at is None else reply_at
                    wire_reply.append(self._reply(event))
                continue
            if event.routing_key.startswith("reply_"):
                continue  # the reply to somebody else's call (none expected)
            casts.append((position, self._cast(event, started, deliveries)))
        elapsed_ms = round((replied - started) * 1000, 1)
        for position, cast in casts:
            if request["kind"] == "call":  # the broker's order
                cast["before_reply"] = reply_at is not None and position < reply_at
            else:  # no reply on the wire: the probe's clock
                cast["before_reply"] = cast["t_ms"] < elapsed_ms
        record: dict[str, Any] = {
            "step": step, "what": what, "request": request, "reply": result, "error": error,
            "elapsed_ms": elapsed_ms, "casts": [cast for _, cast in casts]}
        if request["kind"] == "call":
            record["wire_reply"] = wire_reply
        (self.outdir / f"{step}.json").write_text(
            json.dumps(record, indent=1, sort_keys=True) + "\n")
        self.index.append(record)
        summary = ", ".join(f"{c['method']} {c['exchange']}/{c['routing_key']}"
                            for _, c in casts) or "no casts"
        print(f"{step}: {'ERROR ' if error else ''}{summary}", flush=True)

    def _reply(self, event: Event) -> dict[str, Any]:
        reply = dict(event.message)
        failure = reply.get("failure")
        if isinstance(failure, str):
            try:
                parsed = json.loads(failure)
            except ValueError:
                parsed = failure
            if isinstance(parsed, dict) and not self.keep_tracebacks and parsed.get("tb"):
                parsed["tb"] = ["(trimmed to its last line by the recorder)",
                                parsed["tb"][-1]]
            reply["failure"] = parsed
            reply["failure_was_a_json_string"] = True
        return {"exchange": event.exchange, "routing_key": event.routing_key,
                "message": reply}

    def _cast(self, event: Event, started: float,
              deliveries: dict[str, list[str]]) -> dict[str, Any]:
        message = event.message
        queues = sorted(deliveries.get(event.unique_id or "", []))
        cast: dict[str, Any] = {
            "exchange": event.exchange,
            "routing_key": event.routing_key,
            "fanout": event.exchange.endswith("_fanout"),
            "call": "_msg_id" in message,
            "method": message.get("method"),
            "version": message.get("version"),
            "kwargs": message.get("args"),
            "context": context_of(message),
            "oslo_version": event.envelope.get("oslo.version"),
            "t_ms": round((event.t - started) * 1000, 1),
            "delivered_to": queues,
            "hosts_reached": sorted({self.wire.queue_host[q] for q in queues}),
        }
        if "namespace" in message:
            cast["namespace"] = message["namespace"]
        if "routed_queues" in event.headers:  # the broker's own list (firehose header)
            cast["routed_queues"] = sorted(event.headers["routed_queues"])
        return cast


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


# -- the scenarios ----------------------------------------------------------------------------

class Scenarios:
    """The steps of docs/overlay-design.md section 4, in order."""

    def __init__(self, rec: Recorder) -> None:
        self.rec = rec
        self.ports: dict[str, dict[str, Any]] = {}
        self.networks: dict[str, dict[str, Any]] = {}
        self.subnets: dict[str, dict[str, Any]] = {}

    # helpers ---------------------------------------------------------------------------------

    def report_state(self, step: str, what: str, host: str, *, start_flag: bool) -> Any:
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        return self.rec.call(step, what, REPORTS, "report_state", "1.4",
                             agent_state={"agent_state": agent_state(host,
                                                                     start_flag=start_flag)},
                             time=now.strftime("%Y-%m-%dT%H:%M:%S.%f"))

    def tunnel_sync(self, step: str, what: str, host: str | None, ip: str | None,
                    tunnel_type: str | None) -> Any:
        return self.rec.call(step, what, PLUGIN, "tunnel_sync", "1.4", tunnel_ip=ip,
                             tunnel_type=tunnel_type, host=host)

    def details(self, step: str, what: str, host: str, *ports: str) -> Any:
        return self.rec.call(step, what, PLUGIN, "get_devices_details_list_and_failed_devices",
                             "1.5", devices=[self.ports[p]["id"] for p in ports],
                             agent_id=f"ovs-agent-{host}", host=host)

    def device_list(self, step: str, what: str, host: str, up: Sequence[str] = (),
                    down: Sequence[str] = (), refresh_tunnels: bool = False) -> Any:
        return self.rec.call(step, what, PLUGIN, "update_device_list", "1.9",
                             devices_up=[self.ports[p]["id"] for p in up],
                             devices_down=[self.ports[p]["id"] for p in down],
                             agent_id=f"ovs-agent-{host}", host=host,
                             refresh_tunnels=refresh_tunnels)

    def network(self, step: str, name: str, network_type: str, cidr: str) -> None:
        reply = self.rec.rest(f"{step}_create_network_{network_type}",
                              f"POST /v2.0/networks: a {network_type} network, the server "
                              "picks the VNI", "POST", "/v2.0/networks",
                              {"network": {"name": name,
                                           "provider:network_type": network_type}})
        self.networks[name] = reply["network"]
        sub = self.rec.rest(f"{int(step) + 1:02d}_create_subnet_{network_type}",
                            f"POST /v2.0/subnets: {cidr} on the {network_type} network "
                            "(no DHCP)", "POST", "/v2.0/subnets",
                            {"subnet": {"network_id": self.networks[name]["id"], "cidr": cidr,
                                        "ip_version": 4, "enable_dhcp": False}})
        self.subnets[name] = sub["subnet"]

    def create_port(self, step: str, what: str, name: str, network: str, host: str,
                    **attrs: Any) -> dict[str, Any]:
        body = {"port": {"name": name, "network_id": self.networks[network]["id"],
                         "device_owner": "compute:nova", "device_id": str(uuid.uuid4()),
                         "binding:host_id": host, **attrs}}
        reply = self.rec.rest(step, what, "POST", "/v2.0/ports", body)
        port: dict[str, Any] = reply["port"]
        self.ports[name] = port
        return port

    def bring_up(self, first: int, name: str, network: str, host: str, why: str,
                 **attrs: Any) -> None:
        """Nova creates a port bound to ``host``; the agent asks its details, reports it up."""
        port = self.create_port(f"{first:02d}_create_port_{name}_{host}",
                                f"POST /v2.0/ports {name} (binding:host_id {host}); {why}",
                                name, network, host, **attrs)
        ips = ", ".join(ip["ip_address"] for ip in port["fixed_ips"])
        self.details(f"{first + 1:02d}_get_devices_details_{name}_{host}",
                     f"{host} asks the details of {name} ({ips}): the port goes BUILD",
                     host, name)
        self.device_list(f"{first + 2:02d}_update_device_list_up_{name}_{host}",
                         f"{host} reports {name} up: ACTIVE, l2population answers; {why}",
                         host, up=[name])

    # the run ----------------------------------------------------------------------------------

    def run(self) -> None:
        rec = self.rec
        # 1. heartbeats with tunnel configurations, and the agents list showing them
        for n, host in enumerate(PROBES, start=1):
            types = ", ".join(PROBES[host]["tunnel_types"])
            self.report_state(f"{n:02d}_report_state_{host}_first",
                              f"{host}'s first report_state: tunnel_types [{types}], "
                              f"tunneling_ip {PROBES[host]['ip']}, l2_population and "
                              "arp_responder_enabled true", host, start_flag=True)
        self.report_state("04_report_state_compute1_periodic",
                          "compute1's next report_state (no start_flag)", "compute1",
                          start_flag=False)
        rec.rest("05_list_agents", "GET /v2.0/agents: the three probes' records "
                 "(configurations as reported)", "GET", "/v2.0/agents")

        # 2. tunnel_sync per type and host, and the tunnel_update fanout each causes
        n = 10
        for tunnel_type in ALL_TUNNEL_TYPES:
            for host in ("compute1", "compute2"):
                self.tunnel_sync(f"{n}_tunnel_sync_{tunnel_type}_{host}",
                                 f"{host} (tunnel_ip {PROBES[host]['ip']}) syncs its "
                                 f"{tunnel_type} endpoint", host, PROBES[host]["ip"],
                                 tunnel_type)
                n += 1
        self.tunnel_sync("16_tunnel_sync_vxlan_compute3", "compute3 syncs vxlan (its only "
                         "type)", "compute3", PROBES["compute3"]["ip"], "vxlan")
        self.tunnel_sync("17_tunnel_sync_vxlan_compute1_again", "compute1 syncs vxlan again "
                         "with the same IP (an agent restart, or a retry)", "compute1",
                         PROBES["compute1"]["ip"], "vxlan")
        self.tunnel_sync("18_tunnel_sync_vxlan_no_host", "tunnel_sync without host (legacy "
                         "mode) for a new IP 192.0.2.9", None, "192.0.2.9", "vxlan")
        # errors
        self.tunnel_sync("20_tunnel_sync_error_ipv6", "tunnel_sync with an IPv6 tunnel_ip "
                         "(overlay_ip_version = 4)", "compute1", "2001:db8::1", "vxlan")
        self.tunnel_sync("21_tunnel_sync_error_type_not_loaded", "tunnel_sync for stt (no such "
                         "type driver)", "compute1", PROBES["compute1"]["ip"], "stt")
        self.tunnel_sync("22_tunnel_sync_error_type_not_tunnelled", "tunnel_sync for vlan (a "
                         "loaded type driver that is not a tunnel type)", "compute1",
                         PROBES["compute1"]["ip"], "vlan")
        self.tunnel_sync("23_tunnel_sync_error_missing_ip", "tunnel_sync with tunnel_ip None",
                         "compute1", None, "vxlan")
        self.tunnel_sync("24_tunnel_sync_error_missing_type", "tunnel_sync with tunnel_type "
                         "None", "compute1", PROBES["compute1"]["ip"], None)
        self.tunnel_sync("25_tunnel_sync_error_invalid_ip", "tunnel_sync with tunnel_ip "
                         "'not-an-ip'", "compute1", "not-an-ip", "vxlan")
        # endpoint changes
        self.tunnel_sync("26_tunnel_sync_ip_taken_by_other_host", "compute3 syncs vxlan with "
                         "compute2's IP 192.0.2.2 (an IP roaming to another host)",
                         "compute3", PROBES["compute2"]["ip"], "vxlan")
        self.tunnel_sync("27_tunnel_sync_ip_taken_back", "compute2 syncs vxlan with its IP "
                         "again", "compute2", PROBES["compute2"]["ip"], "vxlan")
        self.tunnel_sync("28_tunnel_sync_compute3_back", "compute3 syncs vxlan with its own "
                         "IP again", "compute3", PROBES["compute3"]["ip"], "vxlan")

        # 3. a vxlan network; ports and l2population
        self.network("30", "vx", "vxlan", "10.50.0.0/24")
        self.bring_up(40, "p1", "vx", "compute1", "the first port of the network (no other "
                      "host has one)")
        self.bring_up(43, "p2", "vx", "compute2", "compute2's first port: compute1 already "
                      "has one")
        self.bring_up(46, "p3", "vx", "compute2", "compute2's second port (2 active ports "
                      "count as 'first' too)")
        subnet = self.subnets["vx"]["id"]
        self.bring_up(49, "p4", "vx", "compute1", "compute1's second port, two fixed IPs",
                      fixed_ips=[{"subnet_id": subnet}, {"subnet_id": subnet}])
        self.bring_up(52, "p5", "vx", "compute2", "compute2's third port (not first)")
        p1 = self.ports["p1"]
        new_ip = _next_free_ip(self.ports, "10.50.0.")
        rec.rest("55_update_port_p1_fixed_ip_change", f"PUT p1's fixed IP to {new_ip} "
                 "(ACTIVE on compute1)", "PUT", f"/v2.0/ports/{p1['id']}",
                 {"port": {"fixed_ips": [{"subnet_id": subnet, "ip_address": new_ip}]}})
        p4 = self.ports["p4"]
        keep = p4["fixed_ips"][0]
        rec.rest("56_update_port_p4_remove_ip", f"PUT p4's fixed IPs to only "
                 f"{keep['ip_address']} (one of its two removed)", "PUT",
                 f"/v2.0/ports/{p4['id']}",
                 {"port": {"fixed_ips": [{"subnet_id": subnet,
                                          "ip_address": keep["ip_address"]}]}})
        add_ip = _next_free_ip(self.ports, "10.50.0.", skip={new_ip})
        rec.rest("57_update_port_p4_add_ip", f"PUT p4's fixed IPs to {keep['ip_address']} and "
                 f"{add_ip} (one added)", "PUT", f"/v2.0/ports/{p4['id']}",
                 {"port": {"fixed_ips": [{"subnet_id": subnet,
                                          "ip_address": keep["ip_address"]},
                                         {"subnet_id": subnet, "ip_address": add_ip}]}})
        self.device_list("58_update_device_list_refresh_tunnels_compute1",
                         "compute1 reports p1 and p4 (both ACTIVE already) up with "
                         "refresh_tunnels true (as after an agent restart)", "compute1",
                         up=["p1", "p4"], refresh_tunnels=True)
        self.device_list("59_update_device_list_refresh_tunnels_false_compute1",
                         "the same report with refresh_tunnels false", "compute1",
                         up=["p1", "p4"])
        self.device_list("60_update_device_list_down_p3_compute2", "compute2 reports p3 down "
                         "(p2 and p5 still up there)", "compute2", down=["p3"])
        rec.rest("61_delete_port_p3_down", "DELETE p3 (DOWN on compute2)", "DELETE",
                 f"/v2.0/ports/{self.ports['p3']['id']}")
        rec.rest("62_delete_port_p5_active", "DELETE p5 (ACTIVE on compute2; p2 stays)",
                 "DELETE", f"/v2.0/ports/{self.ports['p5']['id']}")
        self.device_list("63_update_device_list_down_p2_last_compute2", "compute2 reports p2, "
                         "its last port on the network, down", "compute2", down=["p2"])
        self.device_list("64_update_device_list_up_p2_again_compute2", "compute2 reports p2 "
                         "up again (DOWN -> ACTIVE, first port again)", "compute2", up=["p2"])
        rec.rest("65_delete_port_p2_active_last", "DELETE p2 (ACTIVE, compute2's last port)",
                 "DELETE", f"/v2.0/ports/{self.ports['p2']['id']}")
        # migration of p4 from compute1 to compute2 (Nova's binding:host_id update)
        rec.rest("70_update_port_p4_host_compute2", "PUT p4 binding:host_id compute2 (ACTIVE "
                 "on compute1; a cold migration as Nova does it)", "PUT",
                 f"/v2.0/ports/{p4['id']}", {"port": {"binding:host_id": "compute2"}})
        self.details("71_get_devices_details_p4_compute2", "compute2 asks p4's details",
                     "compute2", "p4")
        self.device_list("72_update_device_list_up_p4_compute2", "compute2 reports p4 up",
                         "compute2", up=["p4"])
        self.device_list("73_update_device_list_down_p4_compute1_stale", "compute1 reports p4 "
                         "down after it moved (no longer bound there)", "compute1",
                         down=["p4"])

        # 4. a geneve network, briefly; and a geneve port on a vxlan-only agent
        self.network("80", "gv", "geneve", "10.60.0.0/24")
        self.bring_up(82, "g1", "gv", "compute1", "the geneve network's first port")
        self.bring_up(85, "g2", "gv", "compute2", "compute2's first geneve port")
        self.create_port("88_create_port_g3_compute3_binding_failed",
                         "POST /v2.0/ports g3 on the geneve network bound to compute3, whose "
                         "agent reports tunnel_types [vxlan] only", "g3", "gv", "compute3")
        self.details("89_get_devices_details_g3_compute3", "compute3 asks g3's details anyway",
                     "compute3", "g3")

        # 5. an agent's tunnel IP changes
        self.tunnel_sync("90_tunnel_sync_vxlan_compute1_new_ip", "compute1 syncs vxlan with a "
                         "new IP 192.0.2.11 (its local_ip changed)", "compute1", "192.0.2.11",
                         "vxlan")
        self.tunnel_sync("91_tunnel_sync_geneve_compute1_new_ip", "compute1 syncs geneve with "
                         "192.0.2.11 too", "compute1", "192.0.2.11", "geneve")
        rec.rest("99_list_agents_final", "GET /v2.0/agents at the end", "GET", "/v2.0/agents")


def _next_free_ip(ports: dict[str, dict[str, Any]], prefix: str,
                  skip: set[str] | None = None) -> str:
    used = {ip["ip_address"] for p in ports.values() for ip in p["fixed_ips"]} | (skip or set())
    for last in range(200, 250):
        candidate = f"{prefix}{last}"
        if candidate not in used:
            return candidate
    raise RuntimeError("no free address")


# -- output -----------------------------------------------------------------------------------

README_HEAD = """\
# neutron-server 29 on tunnelled networks: what OVS agents are sent (recorded)

Recorded by `tools/record_overlay_contract.py` (dpagent repository) from a real neutron 29
server: `neutron.wsgi.api` under uWSGI, `neutron-rpc-server`, `neutron-periodic-workers` and
MariaDB (`dpagent.lab.neutron_server.NeutronServer`), on a private RabbitMQ node
(`dpagent.lab.rabbit.RabbitBroker`), `auth_strategy = noauth`. See docs/overlay-design.md
(sections 3 and 4) for why, and ../CONTRACT.md section 0 for the wire format.

{versions}

ML2 configuration of the recording server:

```ini
{ml2}```

## The probes

Three probe "OVS agents", played with oslo.messaging from the recorder (no OVS involved):
calls on exchange `neutron`, topics `q-reports-plugin` (`report_state` 1.4) and `q-plugin`
(`tunnel_sync` 1.4, `get_devices_details_list_and_failed_devices` 1.5,
`update_device_list` 1.9), context = the stock agent's admin context without a user
(`dpagent.rpc.transport.request_context()`), `agent_id` `ovs-agent-<host>`.

| host | tunneling_ip | tunnel_types | l2_population | arp_responder_enabled | bridge_mappings |
|---|---|---|---|---|---|
{probes}

The `configurations` are the stock agent's (contract rpc/02) with the tunnel keys set.

## How the casts were seen

* RabbitMQ's firehose (`rabbitmqctl trace_on -p <vhost>`), a queue bound to
  `amq.rabbitmq.trace` with `publish.#`: every message published in the vhost with its
  exchange and routing key as published, in the broker's order. The probe's own call and
  its reply come through it too: `wire_reply` is the reply as sent (a `failure` is a JSON
  string on the wire; here it is decoded, `failure_was_a_json_string: true`, and its `tb`
  trimmed to the last line), and a cast's `before_reply` is its position in the broker's
  order relative to that reply. For REST steps `before_reply` compares the probe's clock
  with the HTTP answer.
* For each probe host, queues as oslo.messaging makes them for an agent's consumer
  `Target(topic, server=host, fanout=True)`: `<topic>.<host>` bound to exchange `neutron`
  with routing key `<topic>.<host>`, and `<topic>_fanout_probe_<host>` bound to the fanout
  exchange `<topic>_fanout`, for the OVS agent's topics (`q-agent-notifier-` +
  `tunnel-update`, `tunnel-delete`, `l2population-update`, `dvr-update`, `port-update`,
  `port-delete`, `network-update`, `network-delete`, `security_group-update`,
  `binding-activate`, `binding-deactivate`) and the versioned-object push topics
  `neutron-vo-<Type>-<version>` of the versions the probes report. `delivered_to` lists the
  probe queues that received the cast, `hosts_reached` their hosts.
* A step ends {quiet} s after the last message in the vhost (at most {max} s after it began).
  `t_ms` is when the probe received the firehose copy, from the start of the request.

## Files

Each `NN_name.json`: `step`, `what`, `request` (`kind` call: exchange, topic, method,
version, kwargs, context; `kind` rest: method, path, body), `reply` (the RPC result or the
REST answer; null after an error), `error` (RPC: what the oslo.messaging client raised;
REST: status and body), `wire_reply` (RPC only), `elapsed_ms`, `casts` (exchange,
routing_key, fanout, call, method, version, kwargs, context, oslo_version, t_ms,
before_reply, delivered_to, hosts_reached). `00_setup.json`: versions, ML2 configuration,
probes. UUIDs, MACs and IPs differ from run to run; the same run's files refer to each
other's.

| file | what | error | casts (method: exchange / routing key, hosts reached; * = after the reply) |
|---|---|---|---|
"""


def _cast_summary(cast: dict[str, Any]) -> str:
    hosts = ",".join(h.replace("compute", "c") for h in cast["hosts_reached"]) or "-"
    star = "" if cast["before_reply"] else "*"
    key = cast["routing_key"] or '""'
    return f"`{cast['method']}`{star}: `{cast['exchange']}` / `{key}` ({hosts})"


def write_readme(outdir: Path, index: list[dict[str, Any]], versions: dict[str, str]) -> None:
    probes = "\n".join(
        f"| {host} | {p['ip']} | {', '.join(p['tunnel_types'])} | true | true | "
        f"`{json.dumps(BRIDGE_MAPPINGS)}` |" for host, p in PROBES.items())
    version_text = ", ".join(f"{k} {v}" for k, v in versions.items())
    lines = [README_HEAD.format(versions=f"Versions: {version_text}.", ml2=ML2_CONF,
                                probes=probes, quiet=SETTLE_QUIET, max=SETTLE_MAX)]
    lines.append("| `00_setup.json` | versions, ML2 configuration, probes | | |")
    for record in index:
        error = record["error"]
        err = ""
        if error:
            err = (f"{error.get('exc_type') or error.get('client_raises')}"
                   if "client_raises" in error else f"HTTP {error.get('status')}")
        casts = "<br>".join(_cast_summary(c) for c in record["casts"]
                            if not str(c["exchange"]).startswith("neutron-vo-")
                            and not str(c["routing_key"]).startswith("neutron-vo-"))
        vo = [c for c in record["casts"] if str(c["exchange"]).startswith("neutron-vo-")]
        if vo:
            names = sorted({f"{c['exchange'].removesuffix('_fanout')} "
                            f"{c['kwargs'].get('event_type')}"
                            for c in vo if isinstance(c["kwargs"], dict)})
            casts += ("<br>" if casts else "") + f"{len(vo)} OVO push(es): " + ", ".join(names)
        what = record["what"].replace("|", "\\|")
        lines.append(f"| `{record['step']}.json` | {what} | {err} | {casts or '-'} |")
    lines += ["", *cast_totals(index)]
    (outdir / "README.md").write_text("\n".join(lines) + "\n")


def cast_totals(index: list[dict[str, Any]]) -> list[str]:
    """A table of every kind of cast seen (computed from the files, not hand-written)."""
    kinds: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for record in index:
        for cast in record["casts"]:
            key = re.sub(r"\.compute\d$", ".<host>", str(cast["routing_key"]))
            exchange = re.sub(r"-\d+\.\d+_fanout$", "-<version>_fanout", str(cast["exchange"]))
            kind = (str(cast["method"]), exchange, key, str(cast["version"]))
            entry = kinds.setdefault(kind, {"count": 0, "after": 0, "steps": set(),
                                            "hosts": set()})
            entry["count"] += 1
            entry["after"] += 0 if cast["before_reply"] else 1
            entry["steps"].add(record["step"][:2])
            entry["hosts"].add(len(cast["hosts_reached"]))
    lines = ["## Every kind of cast seen (computed)", "",
             "| method | exchange | routing key | version | casts | after the reply | "
             "hosts reached | in steps |", "|---|---|---|---|---|---|---|---|"]
    for (method, exchange, key, version), e in sorted(kinds.items()):
        hosts = "/".join(str(n) for n in sorted(e["hosts"]))
        shown = key or '""'
        steps = ", ".join(sorted(e["steps"]))
        lines.append(f"| `{method}` | `{exchange}` | `{shown}` | {version} | "
                     f"{e['count']} | {e['after']} | {hosts} | {steps} |")
    return lines


def versions_of(server: NeutronServer, broker: RabbitBroker) -> dict[str, str]:
    found: dict[str, str] = {}
    for dist in ("neutron", "neutron_lib", "oslo.messaging", "oslo_messaging"):
        for meta in server.venv.glob(f"lib/python3*/site-packages/{dist}-*.dist-info"):
            found[dist.replace("_", "-").replace("oslo-", "oslo.")] = (
                meta.name[len(dist) + 1:].removesuffix(".dist-info"))
    try:
        found["RabbitMQ"] = broker.rabbitmqctl("version").strip()
    except Exception:  # noqa: BLE001 - informative only
        pass
    return found


def kombu_url(transport_url: str) -> str:
    """oslo.messaging's ``rabbit://user:pass@host:port/vhost`` as kombu's ``amqp://``."""
    parts = urllib.parse.urlsplit(transport_url)
    return urllib.parse.urlunsplit(("amqp", parts.netloc, parts.path, "", ""))


def clean_outdir(outdir: Path) -> None:
    """Remove an earlier run's files (only the ones this tool writes)."""
    outdir.mkdir(parents=True, exist_ok=True)
    for path in outdir.iterdir():
        if path.name == "README.md" or re.fullmatch(r"\d\d_[\w.-]+\.json", path.name):
            path.unlink()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--keep-tracebacks", action="store_true",
                        help="keep the server's tracebacks in failures (default: last line)")
    args = parser.parse_args(argv)
    outdir: Path = args.outdir
    clean_outdir(outdir)
    started = time.monotonic()
    with RabbitBroker() as broker, NeutronServer(broker, agent_down_time=900) as server:
        print(f"neutron-server up: {server.timings}", flush=True)
        assert server.vhost is not None
        broker.rabbitmqctl("trace_on", "-p", server.vhost.name)
        wire = Wire(kombu_url(server.transport_url), list(PROBES)).start()
        conf = cfg.ConfigOpts()
        transport = rpc_transport.make_transport(conf, server.transport_url)
        try:
            rec = Recorder(outdir, wire, server.api, transport, args.keep_tracebacks)
            Scenarios(rec).run()
            versions = versions_of(server, broker)
            setup = {"versions": versions, "ml2_conf": ML2_CONF,
                     "agent_down_time": server.agent_down_time,
                     "probes": {h: {**p, "configurations": configurations(
                         h, p["tunnel_types"], p["ip"])} for h, p in PROBES.items()},
                     "agent_topics": list(AGENT_TOPICS)}
            (outdir / "00_setup.json").write_text(json.dumps(setup, indent=1,
                                                             sort_keys=True) + "\n")
            write_readme(outdir, rec.index, versions)
        finally:
            transport.cleanup()
            wire.close()
    print(f"recorded {outdir} in {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

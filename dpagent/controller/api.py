"""The HTTP API: neutron's ``/v2.0/agents`` (list, show, update, delete), read-only
``/v2.0/ports``, ``/v2.0/networks``, ``/v2.0/security-groups``, and ``/v2.0/topology``
(GET: the topology as YAML; POST: apply a YAML or JSON topology as a difference).

JSON in neutron's shapes; errors as neutron's ``{"NeutronError": {"type", "message",
"detail"}}`` with 400 (bad request: the message names the field), 404 (unknown id or path),
405 (method).  The standard library's threading HTTP server: one thread per request, which
is plenty for operators and a demo.  No authentication -- it listens on 127.0.0.1 unless
configured otherwise.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.parse
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from dpagent.controller.agents import AdminStateUnsupported, AgentNotFound
from dpagent.controller.state import ControllerState
from dpagent.controller.topology import TopologyError, dump_yaml, load_document

LOG = logging.getLogger(__name__)

MAX_BODY = 16 * 1024 * 1024
AGENT_FILTERS = ("host", "agent_type", "binary", "topic", "alive", "admin_state_up")


class ApiError(Exception):
    def __init__(self, status: HTTPStatus, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message


def _bad(message: str) -> ApiError:
    return ApiError(HTTPStatus.BAD_REQUEST, "BadRequest", message)


class Response:
    def __init__(self, status: HTTPStatus, body: Any = None,
                 content_type: str = "application/json") -> None:
        self.status = status
        self.body = body
        self.content_type = content_type


class Api:
    """Routes and answers; independent of the HTTP server so tests can call it directly."""

    RESOURCES = ("agents", "ports", "networks", "security-groups", "topology")

    def __init__(self, state: ControllerState) -> None:
        self.state = state

    def handle(self, method: str, path: str, body: bytes, content_type: str) -> Response:
        url = urllib.parse.urlsplit(path)
        parts = [p for p in url.path.split("/") if p]
        if parts and parts[-1].endswith(".json"):
            parts[-1] = parts[-1][:-len(".json")]
        if len(parts) < 2 or parts[0] != "v2.0" or parts[1] not in self.RESOURCES \
                or len(parts) > 3:
            raise ApiError(HTTPStatus.NOT_FOUND, "HTTPNotFound",
                           f"no resource at {url.path}")
        resource, item = parts[1], parts[2] if len(parts) == 3 else None
        query = dict(urllib.parse.parse_qsl(url.query))
        handler: Callable[..., Response] | None = getattr(
            self, f"{method.lower()}_{resource.replace('-', '_')}", None)
        if handler is None:
            raise ApiError(HTTPStatus.METHOD_NOT_ALLOWED, "HTTPMethodNotAllowed",
                           f"{method} is not allowed on /v2.0/{resource}")
        return handler(item=item, query=query, body=body, content_type=content_type)

    # -- agents -----------------------------------------------------------------------------

    def get_agents(self, item: str | None, query: dict[str, str], **_: Any) -> Response:
        if item is not None:
            return Response(HTTPStatus.OK, {"agent": self._agent(item)})
        unknown = sorted(set(query) - set(AGENT_FILTERS) - {"fields"})
        if unknown:
            raise _bad(f"unknown filter(s) {', '.join(unknown)} "
                       f"(known: {', '.join(AGENT_FILTERS)})")
        filters = {k: v for k, v in query.items() if k != "fields"}
        return Response(HTTPStatus.OK, {"agents": self.state.agent_views(filters)})

    def _agent(self, agent_id: str) -> dict[str, Any]:
        try:
            return self.state.agent_view(agent_id)
        except AgentNotFound as exc:
            raise ApiError(HTTPStatus.NOT_FOUND, "AgentNotFound", str(exc)) from exc

    def put_agents(self, item: str | None, body: bytes, **_: Any) -> Response:
        if item is None:
            raise ApiError(HTTPStatus.METHOD_NOT_ALLOWED, "HTTPMethodNotAllowed",
                           "PUT needs an agent id: /v2.0/agents/<id>")
        self._agent(item)  # 404 before judging the body
        try:
            doc = json.loads(body or b"null")
        except ValueError as exc:
            raise _bad(f"the body is not JSON: {exc}") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("agent"), dict):
            raise _bad('expected {"agent": {"admin_state_up": true|false}}')
        fields = doc["agent"]
        unknown = sorted(set(fields) - {"admin_state_up"})
        if unknown:
            raise _bad(f"agent.{unknown[0]}: cannot be changed (only admin_state_up can)")
        if "admin_state_up" not in fields:
            raise _bad("agent.admin_state_up: required")
        up = fields["admin_state_up"]
        if not isinstance(up, bool):
            raise _bad(f"agent.admin_state_up: expected true or false, got {up!r}")
        try:
            agent = self.state.set_agent_admin_state(item, up)
        except AdminStateUnsupported as exc:
            raise _bad(str(exc)) from exc
        except AgentNotFound as exc:
            raise ApiError(HTTPStatus.NOT_FOUND, "AgentNotFound", str(exc)) from exc
        return Response(HTTPStatus.OK, {"agent": agent})

    def delete_agents(self, item: str | None, **_: Any) -> Response:
        if item is None:
            raise ApiError(HTTPStatus.METHOD_NOT_ALLOWED, "HTTPMethodNotAllowed",
                           "DELETE needs an agent id: /v2.0/agents/<id>")
        try:
            self.state.delete_agent(item)
        except AgentNotFound as exc:
            raise ApiError(HTTPStatus.NOT_FOUND, "AgentNotFound", str(exc)) from exc
        return Response(HTTPStatus.NO_CONTENT)

    # -- read-only resources ------------------------------------------------------------------

    def _listing(self, plural: str, singular: str, items: list[dict[str, Any]],
                 item: str | None) -> Response:
        if item is None:
            return Response(HTTPStatus.OK, {plural: items})
        for found in items:
            if found["id"] == item:
                return Response(HTTPStatus.OK, {singular: found})
        raise ApiError(HTTPStatus.NOT_FOUND, f"{singular.title().replace('_', '')}NotFound",
                       f"{singular.replace('_', ' ')} {item} could not be found")

    def get_ports(self, item: str | None, **_: Any) -> Response:
        return self._listing("ports", "port", self.state.port_views(), item)

    def get_networks(self, item: str | None, **_: Any) -> Response:
        return self._listing("networks", "network", self.state.network_views(), item)

    def get_security_groups(self, item: str | None, **_: Any) -> Response:
        return self._listing("security_groups", "security_group",
                             self.state.security_group_views(), item)

    # -- topology -------------------------------------------------------------------------------

    def get_topology(self, item: str | None, **_: Any) -> Response:
        if item is not None:
            raise ApiError(HTTPStatus.NOT_FOUND, "HTTPNotFound", "the topology has no items")
        return Response(HTTPStatus.OK, dump_yaml(self.state.topology), "application/yaml")

    def post_topology(self, item: str | None, body: bytes, **_: Any) -> Response:
        if item is not None:
            raise ApiError(HTTPStatus.NOT_FOUND, "HTTPNotFound", "the topology has no items")
        try:
            changes = self.state.apply(load_document(body.decode("utf-8", "replace"),
                                                     "request body"))
        except TopologyError as exc:
            raise _bad(str(exc)) from exc
        return Response(HTTPStatus.OK, {"changes": [
            {"kind": c.kind, "ids": list(c.ids)} for c in changes]})


class ApiServer:
    """Serves :class:`Api` on ``host:port`` from a thread; port 0 picks a free port."""

    def __init__(self, state: ControllerState, host: str = "127.0.0.1", port: int = 9696
                 ) -> None:
        self.api = Api(state)
        self._httpd = ThreadingHTTPServer((host, port), _handler_for(self.api))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        name="dpagent-controller-api", daemon=True)
        self._thread.start()
        LOG.info("agents API on %s", self.url)

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()


def _handler_for(api: Api) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "dpagent-controller"
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "HTTPRequestEntityTooLarge",
                                   f"the body is larger than {MAX_BODY} bytes")
                body = self.rfile.read(length) if length else b""
                response = api.handle(self.command, self.path, body,
                                      self.headers.get("Content-Type", ""))
            except ApiError as exc:
                response = Response(exc.status, {"NeutronError": {
                    "type": exc.kind, "message": exc.message, "detail": ""}})
            except Exception as exc:  # noqa: BLE001 - answer 500, keep serving
                LOG.exception("%s %s failed", self.command, self.path)
                response = Response(HTTPStatus.INTERNAL_SERVER_ERROR, {"NeutronError": {
                    "type": type(exc).__name__, "message": str(exc), "detail": ""}})
            self._send(response)

        def _send(self, response: Response) -> None:
            if response.body is None:
                payload = b""
            elif isinstance(response.body, str):
                payload = response.body.encode()
            else:
                payload = json.dumps(response.body, indent=1).encode()
            self.send_response(response.status)
            if payload:
                self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if payload and self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_PUT = do_DELETE = do_POST = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            LOG.debug("api: %s - %s", self.address_string(), format % args)

    return Handler

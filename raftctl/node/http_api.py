"""A node process's HTTP API: its own report, client orders, /metrics, and a fault hook.

``GET /api/status``            the node's own report (``Cluster.status`` keys, plus ``node_id``)
``POST /api/orders``           one order or a list; each with ``client_id`` and ``seq``
                               200 once applied (with log indexes), 421 + leader URL when this
                               node is not the leader, 503 with no leader, 400 for bad orders
``GET /metrics``               Prometheus text 0.0.4, the dashboard's families for this node
``GET /health``                200 when this node knows a leader, else 503 (as etcd's /health)
``POST /api/control/isolate``  ``{"peers": [...]}``: drop Raft traffic to and from them
                               (``[]`` heals); loopback clients only

The pieces follow the dashboard's style: a pure function of the request gives
``(status, headers, body)`` and the handler only writes it out; every error is the JSON
``{"error": message, "status": code}``; other methods get 405 with ``Allow``.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import orjson

from raftctl.core.orders import validate_order

if TYPE_CHECKING:
    from raftctl.node.process import NodeProcess

__all__ = ["NodeHttpServer", "parse_orders", "MAX_BODY", "MAX_ORDERS"]

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024 * 1024
MAX_ORDERS = 20_000
MAX_CLIENT_ID = 64
ORDER_TIMEOUT_S = 10.0
CALL_TIMEOUT_S = 5.0
JSON = "application/json"

Answer = tuple[int, list[tuple[str, str]], bytes]

_ROUTES = {
    "/api/status": ("GET",),
    "/api/orders": ("POST",),
    "/metrics": ("GET",),
    "/health": ("GET",),
    "/api/control/isolate": ("POST",),
}


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def error(status: int, message: str, **extra: Any) -> Answer:
    headers = [("Content-Type", JSON)]
    if "leader_url" in extra and extra["leader_url"]:
        headers.append(("Location", str(extra["leader_url"]) + "/api/orders"))
    return status, headers, orjson.dumps({"error": message, "status": status, **extra})


def ok(doc: Any, status: int = 200) -> Answer:
    return status, [("Content-Type", JSON)], orjson.dumps(doc)


def parse_orders(body: bytes) -> list[tuple[str, int, dict[str, Any]]]:
    """Orders from a request body: ``(client_id, seq, normalized command)``; BadRequest if any is bad."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise BadRequest(f"the body is not JSON: {err}") from None
    items = doc if isinstance(doc, list) else [doc]
    if not items:
        raise BadRequest("no orders: send one order object or a non-empty list of them")
    if len(items) > MAX_ORDERS:
        raise BadRequest(f"at most {MAX_ORDERS} orders per request, got {len(items)}")
    out = []
    for i, item in enumerate(items):
        where = f"order {i}: " if isinstance(doc, list) else ""
        if not isinstance(item, dict):
            raise BadRequest(f"{where}an order must be a JSON object, got {type(item).__name__}")
        client_id = item.get("client_id")
        if not isinstance(client_id, str) or not client_id or ":" in client_id or len(client_id) > MAX_CLIENT_ID:
            raise BadRequest(f"{where}client_id must be a non-empty string of at most {MAX_CLIENT_ID} characters "
                             "without ':'")
        seq = item.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq < 2**63:
            # (a JSON number beyond 64 bits reaches here as a float: 1e+23)
            raise BadRequest(f"{where}seq must be an integer from 1 to 2**63 - 1, got {str(seq)[:40]}")
        try:
            command = validate_order(item)
        except ValueError as err:
            raise BadRequest(f"{where}{err}") from None
        out.append((client_id, seq, command))
    return out


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


class NodeApi:
    """Request -> answer, for one node process (the handler does only the I/O)."""

    def __init__(self, node: "NodeProcess") -> None:
        self.node = node
        # one request's orders are parsed at a time: parsing is pure Python under the GIL, so
        # parallel parsers gain nothing, but five of them (20,000 orders each) starved the node's
        # loop of the interpreter until its followers missed their heartbeats and deposed it
        self._parsing = threading.Lock()

    def _call(self, fn: Any) -> Any:
        return self.node.call(fn).result(timeout=CALL_TIMEOUT_S)

    def handle(self, method: str, path: str, body: bytes, client: str) -> Answer:
        allowed = _ROUTES.get(path)
        if allowed is None:
            return error(404, f"no such endpoint {path!r}; try /api/status, /api/orders, /metrics")
        if method not in allowed and not (method == "HEAD" and "GET" in allowed):
            status, headers, payload = error(405, f"{method} is not allowed on {path}; use {', '.join(allowed)}")
            headers.append(("Allow", ", ".join(allowed + (("HEAD",) if "GET" in allowed else ()))))
            return status, headers, payload
        try:
            if path == "/api/status":
                # a report from the end of a recent loop turn (at most REPORT_MAX_AGE_MS old), else ask the loop
                report = self.node.recent_report()
                return ok(report if report is not None else self._call(self.node.report))
            if path == "/health":
                report = self._call(self.node.report)
                healthy = report.get("leader_id") is not None
                return ok({"health": healthy, "leader": report.get("leader_id")}, 200 if healthy else 503)
            if path == "/metrics":
                from raftctl.node.metrics import render_node_metrics

                report, stats = self._call(lambda: (self.node.report(), self.node.stats()))
                return 200, [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")], \
                    render_node_metrics(report, stats)
            if path == "/api/orders":
                return self._orders(body)
            return self._isolate(body, client)
        except BadRequest as err:
            return error(err.status, err.message)
        except FutureTimeout:
            return error(503, f"{self.node.node_id} did not answer within its deadline; retry")
        except RuntimeError as err:  # the loop is stopping
            return error(503, str(err))

    def _orders(self, body: bytes) -> Answer:
        with self._parsing:
            orders = parse_orders(body)
        try:
            status, doc = self.node.submit(orders).result(timeout=ORDER_TIMEOUT_S)
        except FutureTimeout:
            return error(503, "the orders were not applied within "
                              f"{ORDER_TIMEOUT_S:g} s; retry with the same client_id and seq")
        if status == 200:
            return ok(doc)
        # the answer's document may be shared by every batch that waited (one lost leadership
        # fails them all): read it, never change it
        rest = {key: value for key, value in doc.items() if key != "error"}
        return error(status, doc.get("error", "unavailable"), **rest)

    def _isolate(self, body: bytes, client: str) -> Answer:
        if not _is_loopback(client):
            return error(403, "the control endpoint answers loopback clients only")
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as err:
            raise BadRequest(f"the body is not JSON: {err}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("peers"), list) \
                or not all(isinstance(p, str) for p in doc["peers"]):
            raise BadRequest('expected {"peers": ["node2", ...]} (an empty list heals)')
        try:
            isolated = self.node.transport.isolate(doc["peers"])
        except ValueError as err:
            raise BadRequest(str(err)) from None
        return ok({"node_id": self.node.node_id, "isolated": isolated})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "raftctl-node"
    server: "_Server"
    # an idle or trickling connection is closed after this long (its thread is freed)
    timeout = 30.0

    def log_message(self, format: str, *args: Any) -> None:  # quiet, as the dashboard
        return None

    def setup(self) -> None:
        super().setup()
        # answers go out in one write (see _write); no Nagle wait for a delayed ACK either way
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self, method: str) -> None:
        api = self.server.api
        path = self.path.split("?", 1)[0]
        body = b""
        length_header = self.headers.get("Content-Length")
        if length_header is not None:
            try:
                length = int(length_header)
                if length < 0:
                    raise ValueError
            except ValueError:
                self._write(error(400, "Content-Length must be a non-negative integer"), head=False, close=True)
                return
            if length > MAX_BODY:
                self._write(error(413, f"the body is larger than {MAX_BODY} bytes"), head=False, close=True)
                return
            body = self.rfile.read(length)
            if len(body) < length:
                self.close_connection = True
                return
        elif method == "POST":
            self._write(error(411, "a POST needs a Content-Length"), head=False, close=True)
            return
        try:
            answer = api.handle(method, path, body, self.client_address[0])
        except Exception as err:  # a bug: still JSON, and logged
            log.exception("error answering %s %s", method, path)
            answer = error(500, f"internal error: {type(err).__name__}")
        self._write(answer, head=method == "HEAD", close=False)

    def _write(self, answer: Answer, head: bool, close: bool) -> None:
        status, headers, payload = answer
        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        lines = [f"HTTP/1.1 {status} {reason}", f"Server: {self.server_version}",
                 f"Date: {self.date_time_string()}"]
        lines += [f"{name}: {value}" for name, value in headers]
        lines.append(f"Content-Length: {len(payload)}")
        if close:
            lines.append("Connection: close")
            self.close_connection = True
        head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        # one write: head and body in one segment
        self.wfile.write(head_bytes if head else head_bytes + payload)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PATCH(self) -> None:
        self._serve("PATCH")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    api: NodeApi


class NodeHttpServer:
    """The HTTP API of one node process, served by a thread per connection."""

    def __init__(self, node: "NodeProcess", host: str, port: int) -> None:
        server_class = type("_Server6", (_Server,), {"address_family": socket.AF_INET6}) if ":" in host else _Server
        self._server = server_class((host, port), _Handler)
        self._server.api = NodeApi(node)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> "NodeHttpServer":
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="raftctl-node-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        started = time.monotonic()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=max(0.1, 2.0 - (time.monotonic() - started)))

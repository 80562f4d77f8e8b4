"""DashboardServer: the stdlib HTTP server that serves the REST API, /metrics and the web page.

The handler parses the request itself (bounded request line and headers, per-connection socket
timeout), asks :class:`raftctl.dashboard.api.DashboardApi` for the answer and writes it in one
``send``. HTTP/1.1 keep-alive is supported; bodies are never read, so requests that carry one are
answered and the connection is closed.
"""

from __future__ import annotations

import email.utils
import errno
import logging
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any

from raftctl.dashboard.api import DashboardApi, Request, Response, error_response

log = logging.getLogger(__name__)

MAX_REQUEST_LINE = 8192
MAX_HEADER_BYTES = 16384
MAX_HEADER_COUNT = 100
CONNECTION_TIMEOUT = 10.0
MAX_DISCARDED_BODY = 65536
MAX_DRAIN_BYTES = 1 << 20

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class _DateCache:
    """The Date header changes once a second; formatting it per request is wasted work."""

    def __init__(self) -> None:
        self._second = -1
        self._value = ""

    def get(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._value = email.utils.formatdate(now, usegmt=True)
            self._second = now
        return self._value


class _RequestError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "raftctl"
    timeout = CONNECTION_TIMEOUT
    server: "_HttpServer"

    def setup(self) -> None:
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def handle(self) -> None:
        self.server.track(self.connection, add=True)
        try:
            while not self.server.stopping and self._serve_one():
                pass
        finally:
            self.server.track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s - %s", self.address_string(), format % args)

    # -- one request ----------------------------------------------------------------------

    def _serve_one(self) -> bool:
        """Read, answer and write one request; False when the connection should close."""
        try:
            request = self._read_request()
        except _RequestError as exc:
            self._write(error_response(exc.status, exc.message), head=False, keep_alive=False)
            self._linger()
            return False
        except (TimeoutError, OSError, ValueError):
            return False
        if request is None:
            return False
        req, keep_alive, unread_body = request
        response = self.server.api.handle(req)
        if self.server.stopping:
            keep_alive = False
        written = self._write(response, head=req.method == "HEAD", keep_alive=keep_alive)
        if unread_body:
            self._linger()
        return written and keep_alive

    def _linger(self) -> None:
        """Half-close and drain briefly so unread request bytes do not turn our answer into a reset."""
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(0.5)
            drained = 0
            while drained < MAX_DRAIN_BYTES:
                chunk = self.rfile.read1(65536) if hasattr(self.rfile, "read1") else self.rfile.read(65536)
                if not chunk:
                    break
                drained += len(chunk)
        except OSError:
            pass

    def _read_request(self) -> tuple[Request, bool, bool] | None:
        line = self.rfile.readline(MAX_REQUEST_LINE + 1)
        # RFC 9112 asks servers to ignore at least one empty line before a request.
        if line in (b"\r\n", b"\n"):
            line = self.rfile.readline(MAX_REQUEST_LINE + 1)
        if not line:
            return None
        if len(line) > MAX_REQUEST_LINE or not line.endswith(b"\n"):
            if len(line) > MAX_REQUEST_LINE:
                raise _RequestError(414, f"request line longer than {MAX_REQUEST_LINE} bytes")
            raise _RequestError(400, "incomplete request line")
        text = line.decode("latin-1").rstrip("\r\n")
        parts = text.split(" ")
        if len(parts) != 3:
            raise _RequestError(400, "malformed request line")
        method, target, version = parts
        if not _TOKEN.match(method):
            raise _RequestError(400, "malformed method")
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            # A 4xx rather than 505: every refusal of a client's mistake stays in the 4xx class.
            raise _RequestError(400, f"unsupported HTTP version {version[:16]!r}; use HTTP/1.1")
        if not target or any(ch in target for ch in "\x00 \t"):
            raise _RequestError(400, "malformed request target")
        headers = self._read_headers()
        self.command, self.path, self.request_version = method, target, version
        connection = headers.get("connection", "").lower()
        if version == "HTTP/1.1":
            keep_alive = "close" not in connection
        else:
            keep_alive = "keep-alive" in connection
        # No route takes a body: small ones are read and dropped to keep the connection usable,
        # anything else (chunked, huge, malformed length) is left unread and the connection closed.
        unread_body = False
        length_text = headers.get("content-length", "0").strip() or "0"
        if headers.get("transfer-encoding"):
            keep_alive, unread_body = False, True
        elif length_text != "0":
            length = int(length_text) if length_text.isdigit() else -1
            if 0 < length <= MAX_DISCARDED_BODY:
                self.rfile.read(length)
            else:
                keep_alive, unread_body = False, True
        return Request(method, target, headers), keep_alive, unread_body

    def _read_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        total = 0
        count = 0
        while True:
            line = self.rfile.readline(MAX_HEADER_BYTES + 1)
            if not line:
                raise _RequestError(400, "connection closed inside the headers")
            total += len(line)
            if total > MAX_HEADER_BYTES:
                raise _RequestError(431, f"request headers larger than {MAX_HEADER_BYTES} bytes")
            if line in (b"\r\n", b"\n"):
                return headers
            count += 1
            if count > MAX_HEADER_COUNT:
                raise _RequestError(431, f"more than {MAX_HEADER_COUNT} request headers")
            text = line.decode("latin-1").rstrip("\r\n")
            name, sep, value = text.partition(":")
            if not sep or not _TOKEN.match(name):
                raise _RequestError(400, "malformed header line")
            key = name.lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value

    def _write(self, response: Response, head: bool, keep_alive: bool) -> bool:
        status = response.status
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
        lines.extend(f"{name}: {value}" for name, value in response.headers)
        lines.append(f"Content-Length: {len(response.body)}")
        lines.append(f"Date: {self.server.dates.get()}")
        lines.append("Server: raftctl")
        if not keep_alive:
            lines.append("Connection: close")
        head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head_bytes if head else head_bytes + response.body)
        except OSError:
            return False
        return True


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    # stop() must not wait for idle keep-alive clients; their sockets are shut down instead.
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], api: DashboardApi) -> None:
        self.api = api
        self.dates = _DateCache()
        self.stopping = False
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the FQDN of the host, which can stall on DNS.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = port

    def track(self, conn: socket.socket, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _HttpServerV6(_HttpServer):
    address_family = socket.AF_INET6


class DashboardServer:
    """Serves the REST API, Prometheus /metrics and the web dashboard for a MetricsCollector.

    ``start()`` returns at once (the server runs on daemon threads); ``stop()`` releases the port.
    ``port=0`` picks a free ephemeral port; read the result from ``url`` or ``port``.
    """

    def __init__(
        self, collector: Any, host: str = "127.0.0.1", port: int = 8080, refresh_seconds: float = 5.0
    ) -> None:
        if collector is None:
            raise ValueError("DashboardServer needs a collector")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an integer between 0 and 65535, got {port!r}")
        if not isinstance(host, str) or not host:
            raise ValueError(f"host must be a non-empty string, got {host!r}")
        self.collector = collector
        self.host = host
        self._port = port
        self.api = DashboardApi(collector, refresh_seconds=refresh_seconds)
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def refresh_seconds(self) -> float:
        return self.api.refresh_seconds

    @property
    def port(self) -> int:
        """The bound port once started (the real one when constructed with port=0)."""
        return self._port

    @property
    def url(self) -> str:
        host = self.host
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self._port}"

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def start(self) -> "DashboardServer":
        """Bind and serve on a daemon thread; raises OSError with a clear message if the port is taken."""
        if self._httpd is not None:
            raise RuntimeError("DashboardServer is already running")
        server_class = _HttpServerV6 if ":" in self.host else _HttpServer
        try:
            httpd = server_class((self.host, self._port), self.api)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise OSError(exc.errno, f"port {self._port} on {self.host} is already in use") from exc
            raise OSError(exc.errno, f"cannot listen on {self.host}:{self._port}: {exc.strerror or exc}") from exc
        self._httpd = httpd
        self._port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, name=f"raftctl-dashboard-{self._port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and release the port. Safe to call twice."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.stopping = True
        httpd.shutdown()
        httpd.server_close()
        httpd.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def __enter__(self) -> "DashboardServer":
        if self._httpd is None:
            self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"DashboardServer({self.url}, {state})"

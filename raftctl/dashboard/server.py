"""DashboardServer: a single-threaded, selectors-based HTTP server for the REST API, /metrics and the page.

One I/O thread owns every socket. Each connection keeps an incremental request parser (bounded
request line and headers), the answer comes from :class:`raftctl.dashboard.api.DashboardApi` (pure
and fast, documents cached per collector version) and is queued as prebuilt bytes. One thread rather
than one per connection keeps hundreds of clients from queueing for the GIL ahead of the
collector's sampling thread. HTTP/1.1 keep-alive is supported; bodies are never used: small ones are
skipped, anything else gets an answer and the connection is closed.
"""

from __future__ import annotations

import email.utils
import errno
import logging
import re
import selectors
import socket
import threading
import time
from typing import Any

from raftctl.dashboard.api import DashboardApi, Request, Response, error_response

log = logging.getLogger(__name__)

MAX_REQUEST_LINE = 8192
MAX_HEADER_BYTES = 16384
MAX_HEADER_COUNT = 100
CONNECTION_TIMEOUT = 10.0
MAX_DISCARDED_BODY = 65536
MAX_DRAIN_BYTES = 1 << 20
LINGER_SECONDS = 0.5
LISTEN_BACKLOG = 512
RECV_SIZE = 65536
# Pipelined requests are answered only while this much output is waiting, so a client that
# never reads cannot make the server buffer without bound.
MAX_PENDING_OUTPUT = 1 << 20
SWEEP_SECONDS = 0.1

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

# connection states
_READING, _LINGER, _CLOSING = 0, 1, 2


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


def _encode(response: Response, date: str, head: bool, keep_alive: bool) -> bytes:
    status = response.status
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
    lines.extend(f"{name}: {value}" for name, value in response.headers)
    lines.append(f"Content-Length: {len(response.body)}")
    lines.append(f"Date: {date}")
    lines.append("Server: raftctl")
    if not keep_alive:
        lines.append("Connection: close")
    head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head_bytes if head else head_bytes + response.body


class _Parser:
    """Incremental HTTP/1.x request parser over one connection's receive buffer."""

    __slots__ = ("buf", "pos", "skipped_blank", "request_line", "headers", "header_bytes", "discard")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.pos = 0
        self.discard = 0  # body bytes of the previous request still to skip
        self._reset()

    def _reset(self) -> None:
        self.skipped_blank = False
        self.request_line: tuple[str, str, str] | None = None
        self.headers: dict[str, str] = {}
        self.header_bytes = 0

    def next_request(self, eof: bool) -> tuple[Request, bool, bool] | None:
        """The next complete request as (request, keep_alive, unread_body), or None if more bytes are needed.

        Raises _RequestError for a request to refuse.
        """
        buf = self.buf
        if self.discard:
            skip = min(self.discard, len(buf) - self.pos)
            self.pos += skip
            self.discard -= skip
            if self.discard:
                self._compact()
                return None
        while True:
            if self.request_line is None:
                limit = MAX_REQUEST_LINE
            else:
                limit = MAX_HEADER_BYTES - self.header_bytes
            nl = buf.find(b"\n", self.pos, self.pos + limit + 1)
            if nl < 0:
                pending = len(buf) - self.pos
                if self.request_line is None:
                    if pending > MAX_REQUEST_LINE:
                        raise _RequestError(414, f"request line longer than {MAX_REQUEST_LINE} bytes")
                    if eof and pending:
                        raise _RequestError(400, "incomplete request line")
                else:
                    if pending > limit:
                        raise _RequestError(431, f"request headers larger than {MAX_HEADER_BYTES} bytes")
                    if eof:
                        raise _RequestError(400, "connection closed inside the headers")
                self._compact()
                return None
            line = bytes(buf[self.pos : nl + 1])
            self.pos = nl + 1
            if self.request_line is None:
                if line in (b"\r\n", b"\n") and not self.skipped_blank:
                    # RFC 9112 asks servers to ignore at least one empty line before a request.
                    self.skipped_blank = True
                    continue
                if len(line) > MAX_REQUEST_LINE:
                    raise _RequestError(414, f"request line longer than {MAX_REQUEST_LINE} bytes")
                self.request_line = _parse_request_line(line)
                continue
            self.header_bytes += len(line)
            if self.header_bytes > MAX_HEADER_BYTES:
                raise _RequestError(431, f"request headers larger than {MAX_HEADER_BYTES} bytes")
            if line in (b"\r\n", b"\n"):
                return self._finish()
            if len(self.headers) >= MAX_HEADER_COUNT:
                raise _RequestError(431, f"more than {MAX_HEADER_COUNT} request headers")
            text = line.decode("latin-1").rstrip("\r\n")
            name, sep, value = text.partition(":")
            if not sep or not _TOKEN.match(name):
                raise _RequestError(400, "malformed header line")
            key = name.lower()
            value = value.strip()
            headers = self.headers
            headers[key] = f"{headers[key]}, {value}" if key in headers else value

    def _finish(self) -> tuple[Request, bool, bool]:
        assert self.request_line is not None
        method, target, version = self.request_line
        headers = self.headers
        self._reset()
        connection = headers.get("connection", "").lower()
        if version == "HTTP/1.1":
            keep_alive = "close" not in connection
        else:
            keep_alive = "keep-alive" in connection
        # No route takes a body: small ones are skipped to keep the connection usable, anything
        # else (chunked, huge, malformed length) is left unread and the connection closed.
        unread_body = False
        length_text = headers.get("content-length", "0").strip() or "0"
        if headers.get("transfer-encoding"):
            keep_alive, unread_body = False, True
        elif length_text != "0":
            length = int(length_text) if length_text.isdigit() else -1
            if 0 < length <= MAX_DISCARDED_BODY:
                self.discard = length
            else:
                keep_alive, unread_body = False, True
        return Request(method, target, headers), keep_alive, unread_body

    def _compact(self) -> None:
        if self.pos:
            del self.buf[: self.pos]
            self.pos = 0


def _parse_request_line(line: bytes) -> tuple[str, str, str]:
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
    return method, target, version


class _Connection:
    __slots__ = ("sock", "parser", "out", "state", "last_active", "deadline", "drained", "eof", "events")

    def __init__(self, sock: socket.socket, now: float) -> None:
        self.sock = sock
        self.parser = _Parser()
        self.out = bytearray()
        self.state = _READING
        self.last_active = now
        self.deadline = 0.0
        self.drained = 0
        self.eof = False
        self.events = selectors.EVENT_READ


class _EventLoop:
    """Owns the listening socket and every connection; runs on one thread until stopped."""

    def __init__(self, sock: socket.socket, api: DashboardApi) -> None:
        self.api = api
        self.dates = _DateCache()
        self.listener = sock
        self.selector = selectors.DefaultSelector()
        self.connections: dict[int, _Connection] = {}
        self.stopping = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.selector.register(sock, selectors.EVENT_READ, None)
        self.selector.register(self._wake_r, selectors.EVENT_READ, self._wake_r)

    def wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def run(self) -> None:
        selector = self.selector
        next_sweep = time.monotonic() + SWEEP_SECONDS
        try:
            while not self.stopping:
                timeout = max(0.0, next_sweep - time.monotonic())
                for key, events in selector.select(timeout):
                    data = key.data
                    if data is None:
                        self._accept()
                    elif data is self._wake_r:
                        try:
                            self._wake_r.recv(4096)
                        except OSError:
                            pass
                    else:
                        self._service(data, events)
                now = time.monotonic()
                if now >= next_sweep:
                    self._sweep(now)
                    next_sweep = now + SWEEP_SECONDS
        except Exception:  # a bug here must not leave the port bound and the clients hanging
            log.exception("dashboard event loop failed")
        finally:
            self._close_all()

    # -- accepting and servicing -----------------------------------------------------------

    def _accept(self) -> None:
        now = time.monotonic()
        for _ in range(64):
            try:
                sock, _addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. EMFILE: keep serving the clients we have
                log.debug("accept failed: %s", exc)
                return
            sock.setblocking(False)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            conn = _Connection(sock, now)
            self.connections[sock.fileno()] = conn
            self.selector.register(sock, selectors.EVENT_READ, conn)

    def _service(self, conn: _Connection, events: int) -> None:
        try:
            if events & selectors.EVENT_WRITE:
                self._flush(conn, resume=True)
            if conn.state != _CLOSING and events & selectors.EVENT_READ:
                if conn.state == _LINGER:
                    self._drain(conn)
                else:
                    self._read(conn)
        except Exception:
            log.exception("dashboard connection failed")
            self._close(conn)

    def _read(self, conn: _Connection) -> None:
        try:
            chunk = conn.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        conn.last_active = time.monotonic()
        if not chunk:
            conn.eof = True
        else:
            conn.parser.buf += chunk
        self._process(conn)

    def _process(self, conn: _Connection) -> None:
        """Answer every complete buffered request (within the output bound), then write."""
        parser = conn.parser
        while True:
            stalled = False
            while conn.state == _READING:
                if len(conn.out) >= MAX_PENDING_OUTPUT:
                    stalled = True
                    break
                try:
                    parsed = parser.next_request(conn.eof)
                except _RequestError as exc:
                    self._respond(conn, error_response(exc.status, exc.message), head=False, keep_alive=False)
                    self._start_close(conn, linger=not conn.eof)
                    break
                if parsed is None:
                    if conn.eof:
                        self._start_close(conn, linger=False)
                    break
                request, keep_alive, unread_body = parsed
                response = self.api.handle(request)
                if self.stopping:
                    keep_alive = False
                self._respond(conn, response, head=request.method == "HEAD", keep_alive=keep_alive)
                if not keep_alive:
                    self._start_close(conn, linger=not conn.eof or unread_body)
            self._flush(conn, resume=False)
            if not (stalled and not conn.out and conn.state == _READING):
                return

    def _respond(self, conn: _Connection, response: Response, head: bool, keep_alive: bool) -> None:
        conn.out += _encode(response, self.dates.get(), head, keep_alive)

    def _start_close(self, conn: _Connection, linger: bool) -> None:
        # Half-close and drain briefly so unread request bytes do not turn our answer into a reset.
        conn.state = _LINGER if linger else _CLOSING

    def _flush(self, conn: _Connection, resume: bool) -> None:
        out = conn.out
        if out:
            try:
                sent = conn.sock.send(out)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self._close(conn)
                return
            if sent:
                del out[:sent]
                conn.last_active = time.monotonic()
        if out:
            self._want(conn, selectors.EVENT_WRITE)
            return
        if conn.state == _READING:
            self._want(conn, selectors.EVENT_READ)
            if resume:
                # requests that arrived pipelined while output was pending
                self._process(conn)
        elif conn.state == _CLOSING:
            self._close(conn)
        elif conn.state == _LINGER and conn.deadline == 0.0:
            try:
                conn.sock.shutdown(socket.SHUT_WR)
            except OSError:
                self._close(conn)
                return
            conn.deadline = time.monotonic() + LINGER_SECONDS
            self._want(conn, selectors.EVENT_READ)

    def _drain(self, conn: _Connection) -> None:
        try:
            chunk = conn.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        conn.drained += len(chunk)
        if not chunk or conn.drained >= MAX_DRAIN_BYTES:
            self._close(conn)

    def _want(self, conn: _Connection, events: int) -> None:
        if conn.events != events:
            conn.events = events
            self.selector.modify(conn.sock, events, conn)

    def _sweep(self, now: float) -> None:
        idle_before = now - CONNECTION_TIMEOUT
        for conn in list(self.connections.values()):
            if conn.state == _LINGER and conn.deadline and now >= conn.deadline:
                self._close(conn)
            elif conn.last_active < idle_before:
                self._close(conn)

    def _close(self, conn: _Connection) -> None:
        sock = conn.sock
        if self.connections.pop(sock.fileno(), None) is None:
            return
        conn.state = _CLOSING
        try:
            self.selector.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()

    def _close_all(self) -> None:
        for conn in list(self.connections.values()):
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._close(conn)
        self.selector.close()
        self.listener.close()
        self._wake_r.close()
        self._wake_w.close()


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class DashboardServer:
    """Serves the REST API, Prometheus /metrics and the web dashboard for a MetricsCollector.

    ``start()`` returns at once (the server runs on one daemon I/O thread); ``stop()`` releases the
    port. ``port=0`` picks a free ephemeral port; read the result from ``url`` or ``port``.
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
        self._loop: _EventLoop | None = None
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
        return self._loop is not None

    def start(self) -> "DashboardServer":
        """Bind and serve on a daemon thread; raises OSError with a clear message if the port is taken."""
        if self._loop is not None:
            raise RuntimeError("DashboardServer is already running")
        try:
            sock = _listen(self.host, self._port)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise OSError(exc.errno, f"port {self._port} on {self.host} is already in use") from exc
            raise OSError(exc.errno, f"cannot listen on {self.host}:{self._port}: {exc.strerror or exc}") from exc
        self._port = sock.getsockname()[1]
        self._loop = _EventLoop(sock, self.api)
        self._thread = threading.Thread(target=self._loop.run, name=f"raftctl-dashboard-{self._port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and release the port. Safe to call twice."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        loop.stopping = True
        loop.wake()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def __enter__(self) -> "DashboardServer":
        if self._loop is None:
            self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"DashboardServer({self.url}, {state})"

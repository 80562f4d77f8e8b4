"""DashboardServer: a single-threaded, selectors-based HTTP server for the REST API, /metrics and the page.

One I/O thread owns every socket. Each connection keeps an incremental request parser (bounded
request line and headers, held to RFC 9112), the answer comes from
:class:`raftctl.dashboard.api.DashboardApi` (pure and fast, documents cached per collector version)
and is queued as prebuilt bytes. One thread rather than one per connection keeps hundreds of clients
from queueing for the GIL ahead of the collector's sampling thread. HTTP/1.1 keep-alive is supported;
bodies are never used: small ones are skipped, anything else gets an answer and the connection is
closed.

Under abuse the server stays answerable: a malformed request gets a 400 JSON error (after the
answers to the requests pipelined ahead of it) and its connection is closed; a request must arrive
whole within ``REQUEST_TIMEOUT`` of its first byte (slowloris); the number of open connections is
capped below the file-descriptor limit, the oldest idle (then the oldest unfinished) connection
making room for a new one; and when ``accept`` fails for lack of descriptors the listener is left
alone for a moment instead of spinning. Refusals are logged one line each, rate limited.
"""

from __future__ import annotations

import email.utils
import errno
import ipaddress
import logging
import re
import selectors
import socket
import threading
import time
from typing import Any, Self

from raftctl.dashboard.api import DashboardApi, Request, Response, error_response

log = logging.getLogger(__name__)

MAX_REQUEST_LINE = 8192
MAX_HEADER_BYTES = 16384
MAX_HEADER_COUNT = 100
# No byte in either direction for this long closes a connection.
CONNECTION_TIMEOUT = 10.0
# A request's head (and any small body we skip) must be complete this long after its first byte,
# however steadily it trickles in: the idle timeout alone never cuts a slowloris.
REQUEST_TIMEOUT = 10.0
MAX_DISCARDED_BODY = 65536
MAX_DRAIN_BYTES = 1 << 20
LINGER_SECONDS = 0.5
LISTEN_BACKLOG = 512
RECV_SIZE = 65536
# Pipelined requests are answered only while this much output is waiting, so a client that
# never reads cannot make the server buffer without bound.
MAX_PENDING_OUTPUT = 1 << 20
SWEEP_SECONDS = 0.1
# Open connections at most; lowered at start so that some descriptors stay free below
# RLIMIT_NOFILE for the rest of the process (sinks, the collector, the page's files).
MAX_CONNECTIONS = 1024
# After accept() fails for lack of descriptors or memory, stop polling the listener this long
# (it stays readable, so polling it would spin).
ACCEPT_PAUSE_SECONDS = 0.25
# Refused requests and accept failures: at most this many log lines per window.
LOG_LINES_PER_WINDOW = 10
LOG_WINDOW_SECONDS = 60.0

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 field-value: VCHAR, obs-text, SP and HTAB; every other control character is refused.
_BAD_FIELD_CHAR = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# A request-target is visible ASCII only (RFC 9112 3.2; URIs percent-encode the rest).
_BAD_TARGET_CHAR = re.compile(r"[^\x21-\x7e]")
_DIGITS = re.compile(r"[0-9]+")
_ABSOLUTE_FORM = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://([^/?#]*)(.*)", re.DOTALL)
_HOST_VALUE = re.compile(r"(?:[A-Za-z0-9._~!$&'()*+;=%\-]*|\[[0-9A-Fa-f:.vV]+\])(?::[0-9]*)?")
_HOSTNAME_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")  # "_": container names have it
_REASONS = {
    200: "OK",
    304: "Not Modified",
    400: "Bad Request",
    403: "Forbidden",
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


def validate_listen_host(host: Any) -> str:
    """Return ``host`` if it can be a listen address (an IPv4/IPv6 address or a host name), else ValueError.

    Strict where the C resolver is lenient: ``999.1.1.1``, ``127.1`` or ``01.2.3.4`` look like IPv4
    addresses but are not, so they are refused here rather than failing later with a resolver error.
    """
    if not isinstance(host, str) or not host:
        raise ValueError(f"host must be a non-empty string, got {host!r}")
    shown = host if len(host) <= 64 else host[:64] + "..."
    if "://" in host:
        raise ValueError(f"{shown!r} is a URL: give the host alone (like 127.0.0.1), without its scheme")
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"host {shown!r} is not a valid IPv6 address") from None
        return host
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"host {shown!r} is not a valid IPv4 address (four numbers 0-255, like 127.0.0.1)") from None
        return host
    name = host.removesuffix(".")
    if len(name) > 253 or not all(_HOSTNAME_LABEL.fullmatch(label) for label in name.split(".")):
        raise ValueError(f"host {shown!r} is not a valid IP address or host name")
    return host


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


class _LogLimiter:
    """At most ``lines`` log lines per ``window`` seconds; the next line allowed says how many were left out."""

    def __init__(self, lines: int, window: float) -> None:
        self.lines = lines
        self.window = window
        self._window_start = -window
        self._count = 0
        self.suppressed = 0

    def warning(self, message: str, *args: Any) -> bool:
        now = time.monotonic()
        if now - self._window_start >= self.window:
            self._window_start = now
            self._count = 0
        if self._count >= self.lines:
            self.suppressed += 1
            return False
        self._count += 1
        if self.suppressed:
            message += " (%d similar messages suppressed)"
            args = args + (self.suppressed,)
            self.suppressed = 0
        log.warning(message, *args)
        return True


class _RequestError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _encode(response: Response, date: str, head: bool, keep_alive: bool) -> bytes:
    status = response.status
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
    lines.extend(f"{name}: {value}" for name, value in response.headers)
    if status != 304:  # a 304 has no body; a Content-Length would have to be the 200's (RFC 9110 8.6)
        lines.append(f"Content-Length: {len(response.body)}")
    lines.append(f"Date: {date}")
    lines.append("Server: raftctl")
    if not keep_alive:
        lines.append("Connection: close")
    head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head_bytes if head else head_bytes + response.body


def _tokens(value: str) -> list[str]:
    """A comma-separated header list, lower-cased, parameters (``;...``) dropped, empty items skipped."""
    return [item.partition(";")[0].strip(" \t").lower() for item in value.split(",") if item.strip(" \t")]


class _Parser:
    """Incremental HTTP/1.x request parser over one connection's receive buffer."""

    __slots__ = (
        "buf",
        "discard",
        "header_bytes",
        "headers",
        "hosts",
        "lengths",
        "pos",
        "request_line",
        "requests_done",
        "skipped_blank",
    )

    def __init__(self) -> None:
        self.buf = bytearray()
        self.pos = 0
        self.discard = 0  # body bytes of the previous request still to skip
        self.requests_done = 0
        self._reset()

    def _reset(self) -> None:
        self.skipped_blank = False
        self.request_line: tuple[str, str, str] | None = None
        self.headers: dict[str, str] = {}
        self.header_bytes = 0
        self.lengths: list[str] = []  # every Content-Length field line, to catch conflicts
        self.hosts = 0

    def in_request(self) -> bool:
        """True while part of a request (head or a body being skipped) has arrived but not all of it."""
        return bool(self.discard) or self.request_line is not None or self.pos < len(self.buf)

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
                if eof:
                    raise _RequestError(400, "connection closed inside the request body")
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
            self._header(line)

    def _header(self, line: bytes) -> None:
        # Strip exactly one line terminator: a CR left anywhere else is a bare CR, refused below.
        text = line.decode("latin-1")
        text = text[:-2] if text.endswith("\r\n") else text[:-1]
        name, sep, value = text.partition(":")
        if not sep or not _TOKEN.fullmatch(name):
            # also catches obsolete line folding (a line starting with SP or HTAB), which RFC 9112
            # lets a server refuse
            raise _RequestError(400, "malformed header line")
        if _BAD_FIELD_CHAR.search(value):
            raise _RequestError(400, f"control character in the {name[:40]} header")
        key = name.lower()
        value = value.strip(" \t")
        if key == "content-length":
            self.lengths.append(value)
        elif key == "host":
            self.hosts += 1
        headers = self.headers
        headers[key] = f"{headers[key]}, {value}" if key in headers else value

    def _finish(self) -> tuple[Request, bool, bool]:
        assert self.request_line is not None
        method, target, version = self.request_line
        headers, lengths, hosts = self.headers, self.lengths, self.hosts
        self._reset()
        self.requests_done += 1
        connection = _tokens(headers.get("connection", ""))
        if version == "HTTP/1.1":
            keep_alive = "close" not in connection
        else:
            keep_alive = "keep-alive" in connection
        # No route takes a body: small ones are skipped to keep the connection usable, anything
        # else (chunked, huge) is left unread and the connection closed after the answer.
        unread_body = False
        length = _content_length(lengths)
        transfer_encoding = headers.get("transfer-encoding")
        if transfer_encoding is not None:
            codings = _tokens(transfer_encoding)
            if not codings or codings[-1] != "chunked":
                # RFC 9112 6.3: the body length cannot be known, so 400 and close
                raise _RequestError(400, "Transfer-Encoding must end with chunked")
            # Transfer-Encoding overrides Content-Length (and HTTP/1.0 framing is then faulty):
            # answer, then close without reading the body.
            keep_alive, unread_body = False, True
        elif length:
            if length <= MAX_DISCARDED_BODY:
                self.discard = length
            else:
                keep_alive, unread_body = False, True
        # framing first (above), so a bad length is named even when Host is missing too
        if hosts > 1:
            raise _RequestError(400, "more than one Host header")
        host = headers.get("host")
        if host is None and version == "HTTP/1.1":
            raise _RequestError(400, "HTTP/1.1 request without a Host header")
        if host is not None and not _HOST_VALUE.fullmatch(host):
            raise _RequestError(400, "malformed Host header")
        target = _origin_form(target)
        return Request(method, target, headers), keep_alive, unread_body

    def _compact(self) -> None:
        if self.pos:
            del self.buf[: self.pos]
            self.pos = 0


def _content_length(values: list[str]) -> int:
    """The body length from every Content-Length field line: ASCII digits only, all equal (RFC 9112 6.3)."""
    if not values:
        return 0
    canonical = set()
    for value in values:
        items = value.split(",")
        for item in items:
            item = item.strip(" \t")
            if not _DIGITS.fullmatch(item):  # not str.isdigit(): that accepts '²' and other digits int() refuses
                raise _RequestError(400, "Content-Length must be ASCII digits")
            canonical.add(item.lstrip("0") or "0")
    if len(canonical) > 1:
        raise _RequestError(400, "conflicting Content-Length values")
    digits = canonical.pop()
    # Too many digits for int() (and far beyond any body we skip): anything over the skip limit.
    return int(digits) if len(digits) <= 18 else MAX_DISCARDED_BODY + 1


def _origin_form(target: str) -> str:
    """Origin-form (``/path?query``) of a request target; absolute-form (``http://host/path``) is accepted too."""
    if target.startswith("/"):
        return target
    match = _ABSOLUTE_FORM.fullmatch(target)
    if match is None:
        return target  # asterisk- or authority-form: the API answers that it wants a path
    scheme, authority, rest = match.groups()
    if scheme.lower() not in ("http", "https"):
        raise _RequestError(400, f"unsupported URI scheme {scheme[:16]!r} in the request target")
    if not authority or "@" in authority:
        # an http URI needs a host; userinfo from an untrusted sender is an error (RFC 9110 4.2.4)
        raise _RequestError(400, "malformed authority in the request target")
    if not rest.startswith("/"):
        rest = "/" + rest
    return rest


def _parse_request_line(line: bytes) -> tuple[str, str, str]:
    text = line.decode("latin-1")
    text = text[:-2] if text.endswith("\r\n") else text[:-1]
    parts = text.split(" ")
    if len(parts) != 3:
        raise _RequestError(400, "malformed request line")
    method, target, version = parts
    if not _TOKEN.fullmatch(method):
        raise _RequestError(400, "malformed method")
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        # A 4xx rather than 505: every refusal of a client's mistake stays in the 4xx class.
        raise _RequestError(400, f"unsupported HTTP version {version[:16]!r}; use HTTP/1.1")
    if not target or _BAD_TARGET_CHAR.search(target):
        raise _RequestError(400, "malformed request target")
    return method, target, version


class _Connection:
    __slots__ = (
        "deadline",
        "drained",
        "eof",
        "events",
        "last_active",
        "out",
        "parser",
        "peer",
        "request_started",
        "requests_seen",
        "sock",
        "state",
    )

    def __init__(self, sock: socket.socket, peer: str, now: float) -> None:
        self.sock = sock
        self.peer = peer
        self.parser = _Parser()
        self.out = bytearray()
        self.state = _READING
        self.last_active = now
        self.deadline = 0.0
        self.drained = 0
        self.eof = False
        self.events = selectors.EVENT_READ
        self.request_started = 0.0  # when the first byte of the unfinished request arrived; 0 = none
        self.requests_seen = 0


def connection_limit(max_connections: int | None = None) -> int:
    """How many connections to keep open: ``MAX_CONNECTIONS`` or fewer, leaving descriptors free below RLIMIT_NOFILE."""
    cap = MAX_CONNECTIONS if max_connections is None else max_connections
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return cap
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return cap
    reserve = max(16, min(128, soft // 4))
    return max(4, min(cap, soft - reserve))


def _peer_name(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        return f"[{addr[0]}]:{addr[1]}" if ":" in str(addr[0]) else f"{addr[0]}:{addr[1]}"
    return str(addr)


class _EventLoop:
    """Owns the listening socket and every connection; runs on one thread until stopped."""

    def __init__(self, sock: socket.socket, api: DashboardApi, max_connections: int) -> None:
        self.api = api
        self.dates = _DateCache()
        self.listener = sock
        self.selector = selectors.DefaultSelector()
        self.connections: dict[int, _Connection] = {}
        self.max_connections = max_connections
        self.stopping = False
        self.accept_paused_until = 0.0
        self.refusal_log = _LogLimiter(LOG_LINES_PER_WINDOW, LOG_WINDOW_SECONDS)
        self.accept_log = _LogLimiter(LOG_LINES_PER_WINDOW, LOG_WINDOW_SECONDS)
        # Read by DashboardServer.stats() from other threads: plain ints, updated only here.
        self.counters = {
            "connections_accepted": 0,
            "requests_answered": 0,
            "requests_refused": 0,  # malformed: a 4xx from the parser, then close
            "request_timeouts": 0,  # REQUEST_TIMEOUT expired: 408, then close
            "idle_closed": 0,
            "connections_evicted": 0,  # closed to make room for a new one
            "connections_refused": 0,  # 503 at accept: full and nothing to evict
            "accept_errors": 0,
            "accept_pauses": 0,
        }
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
        except Exception as exc:  # a bug here must not leave the port bound and the clients hanging
            log.error("dashboard event loop failed: %r", exc)
            log.debug("dashboard event loop failure", exc_info=True)
        finally:
            self._close_all()

    # -- accepting and servicing -----------------------------------------------------------

    def _accept(self) -> None:
        now = time.monotonic()
        for _ in range(64):
            try:
                sock, addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.counters["accept_errors"] += 1
                if exc.errno in (errno.EMFILE, errno.ENFILE) and self._make_room():
                    continue  # a descriptor is free again
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EPERM):
                    continue  # that one client gave up or was filtered; the next may be fine
                self._pause_accepting(now, exc)
                return
            self.counters["connections_accepted"] += 1
            sock.setblocking(False)
            if len(self.connections) >= self.max_connections and not self._make_room():
                self._refuse(sock)
                continue
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            conn = _Connection(sock, _peer_name(addr), now)
            self.connections[sock.fileno()] = conn
            self.selector.register(sock, selectors.EVENT_READ, conn)

    def _pause_accepting(self, now: float, exc: OSError) -> None:
        """Out of descriptors (or memory): the listener stays readable, so stop polling it for a while."""
        self.counters["accept_pauses"] += 1
        self.accept_log.warning(
            "dashboard: cannot accept connections (%s) with %d open; pausing accept for %.2f s",
            exc.strerror or exc, len(self.connections), ACCEPT_PAUSE_SECONDS,
        )
        try:
            self.selector.unregister(self.listener)
        except (KeyError, ValueError):
            pass
        self.accept_paused_until = now + ACCEPT_PAUSE_SECONDS

    def _make_room(self) -> bool:
        """Close the oldest idle keep-alive connection, else the oldest unfinished one; False if none.

        A connection that has not finished a request yet ranks by when it began (its accept or the
        first byte of its request), so the newest arrival, perhaps the only client that will send
        a whole request soon, is the last to go.
        """
        victim: _Connection | None = None
        victim_rank: tuple[int, float] | None = None
        for conn in self.connections.values():
            if conn.state != _READING or conn.out:
                continue  # being answered: keep it
            if conn.request_started:
                rank = (1, conn.request_started)
            elif conn.requests_seen == 0:
                rank = (1, conn.last_active)  # accepted, nothing received yet
            else:
                rank = (0, conn.last_active)  # idle between requests: cheapest to reopen
            if victim_rank is None or rank < victim_rank:
                victim, victim_rank = conn, rank
        if victim is None:
            return False
        self.counters["connections_evicted"] += 1
        if victim.request_started:
            self._send_now(victim.sock, 503, "too many connections; request not finished in time")
        self._close(victim)
        return True

    def _refuse(self, sock: socket.socket) -> None:
        self.counters["connections_refused"] += 1
        self.refusal_log.warning("dashboard: refused a connection: %d connections open (the limit)",
                                 len(self.connections))
        self._send_now(sock, 503, "too many connections; try again shortly")
        sock.close()

    def _send_now(self, sock: socket.socket, status: int, message: str) -> None:
        """Best-effort answer on a socket about to be closed (never blocks)."""
        response = error_response(status, message, (("Retry-After", "1"),) if status == 503 else ())
        try:
            sock.send(_encode(response, self.dates.get(), head=False, keep_alive=False))
        except OSError:
            pass

    def _service(self, conn: _Connection, events: int) -> None:
        try:
            if events & selectors.EVENT_WRITE:
                self._flush(conn, resume=True)
            if conn.state != _CLOSING and events & selectors.EVENT_READ:
                if conn.state == _LINGER:
                    self._drain(conn)
                else:
                    self._read(conn)
        except Exception as exc:  # a bug; one line (the traceback at debug level), and the others go on
            self.refusal_log.warning("dashboard: connection from %s failed: %r", conn.peer, exc)
            log.debug("dashboard connection failure", exc_info=True)
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
                    self._refuse_request(conn, exc.status, exc.message)
                    break
                except Exception as exc:  # a parser bug must still end in an answer, not a traceback
                    log.debug("request parser failure", exc_info=True)
                    self._refuse_request(conn, 400, "malformed request", detail=repr(exc))
                    break
                if parsed is None:
                    if conn.eof:
                        self._start_close(conn, linger=False)
                    break
                request, keep_alive, unread_body = parsed
                response = self.api.handle(request)
                self.counters["requests_answered"] += 1
                if self.stopping:
                    keep_alive = False
                self._respond(conn, response, head=request.method == "HEAD", keep_alive=keep_alive)
                if not keep_alive:
                    self._start_close(conn, linger=not conn.eof or unread_body)
            self._track_request(conn)
            self._flush(conn, resume=False)
            if not (stalled and not conn.out and conn.state == _READING):
                return

    def _track_request(self, conn: _Connection) -> None:
        """Start the REQUEST_TIMEOUT clock at the first byte of each request, stop it when none is unfinished."""
        parser = conn.parser
        if conn.state == _READING and parser.in_request():
            if not conn.request_started or parser.requests_done != conn.requests_seen:
                conn.request_started = conn.last_active
        else:
            conn.request_started = 0.0
        conn.requests_seen = parser.requests_done

    def _refuse_request(self, conn: _Connection, status: int, message: str, detail: str = "",
                        counter: str = "requests_refused") -> None:
        self.counters[counter] += 1
        self.refusal_log.warning("dashboard: refused a request from %s: %d %s%s", conn.peer, status, message,
                                 f" ({detail})" if detail else "")
        self._respond(conn, error_response(status, message), head=False, keep_alive=False)
        self._start_close(conn, linger=not conn.eof)

    def _respond(self, conn: _Connection, response: Response, head: bool, keep_alive: bool) -> None:
        conn.out += _encode(response, self.dates.get(), head, keep_alive)

    def _start_close(self, conn: _Connection, linger: bool) -> None:
        # Half-close and drain briefly so unread request bytes do not turn our answer into a reset.
        conn.state = _LINGER if linger else _CLOSING
        conn.request_started = 0.0

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
        if self.accept_paused_until and now >= self.accept_paused_until:
            self.accept_paused_until = 0.0
            self.selector.register(self.listener, selectors.EVENT_READ, None)
        idle_before = now - CONNECTION_TIMEOUT
        request_before = now - REQUEST_TIMEOUT
        for conn in list(self.connections.values()):
            if conn.state == _LINGER and conn.deadline and now >= conn.deadline:
                self._close(conn)
            elif conn.last_active < idle_before and not (conn.state == _READING and conn.request_started
                                                          and not conn.out):
                self.counters["idle_closed"] += 1
                self._close(conn)
            elif conn.state == _READING and conn.request_started and not conn.out \
                    and (conn.request_started < request_before or conn.last_active < idle_before):
                # a request begun and not finished gets an answer (408) rather than a silent close,
                # whether it trickled in too slowly or stopped half way
                # while output is pending the client is the one not reading; the idle timeout covers that
                if conn.parser.discard:
                    # only the body of a request already answered is missing: that request has its
                    # one answer, so the connection just closes (a 408 would be a second answer)
                    self.counters["request_timeouts"] += 1
                    self._close(conn)
                    continue
                self._refuse_request(conn, 408, f"request not complete within {REQUEST_TIMEOUT:g} s",
                                     counter="request_timeouts")
                self._flush(conn, resume=False)

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
    ``max_connections`` caps open connections (default ``MAX_CONNECTIONS``, lowered to stay below
    the process's file-descriptor limit).
    """

    def __init__(
        self, collector: Any, host: str = "127.0.0.1", port: int = 8080, refresh_seconds: float = 5.0,
        *, max_connections: int | None = None, routes: Any = None,
    ) -> None:
        if collector is None:
            raise ValueError("DashboardServer needs a collector")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an integer between 0 and 65535, got {port!r}")
        validate_listen_host(host)
        if max_connections is not None and (
            not isinstance(max_connections, int) or isinstance(max_connections, bool) or max_connections < 1
        ):
            raise ValueError(f"max_connections must be a positive integer, got {max_connections!r}")
        missing = [name for name in ("latest", "history", "node_history", "active_alerts", "alert_history")
                   if not callable(getattr(collector, name, None))]
        if missing:  # it would start and answer every request with a 500
            raise ValueError(f"DashboardServer needs a MetricsCollector, got {type(collector).__name__} "
                             f"(no {', '.join(missing)})")
        self.collector = collector
        self.host = host
        self._port = port
        self._max_connections = max_connections
        self.api = DashboardApi(collector, refresh_seconds=refresh_seconds, routes=routes)
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

    @property
    def max_connections(self) -> int:
        """The connection cap in force (computed at start from the descriptor limit)."""
        if self._loop is not None:
            return self._loop.max_connections
        return connection_limit(self._max_connections)

    def stats(self) -> dict[str, int]:
        """Counters of the running server: accepted, answered, refused, timed out, evicted, ..."""
        loop = self._loop
        if loop is None:
            return {}
        counters = dict(loop.counters)
        counters["connections_open"] = len(loop.connections)
        counters["max_connections"] = loop.max_connections
        return counters

    def start(self) -> DashboardServer:
        """Bind and serve on a daemon thread; raises OSError with a clear message if the port is taken."""
        if self._loop is not None:
            raise RuntimeError("DashboardServer is already running")
        try:
            sock = _listen(self.host, self._port)
        except socket.gaierror as exc:
            raise OSError(errno.EADDRNOTAVAIL, f"cannot listen on {self.host!r}: {exc.strerror or exc}") from exc
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise OSError(exc.errno, f"port {self._port} on {self.host} is already in use") from exc
            if exc.errno == errno.EADDRNOTAVAIL:
                raise OSError(exc.errno, f"cannot listen on {self.host}: no such address on this machine") from exc
            raise OSError(exc.errno, f"cannot listen on {self.host}:{self._port}: {exc.strerror or exc}") from exc
        self._port = sock.getsockname()[1]
        self._loop = _EventLoop(sock, self.api, connection_limit(self._max_connections))
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

    def __enter__(self) -> Self:
        if self._loop is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"DashboardServer({self.url}, {state})"

"""The dashboard's routes: pure request -> response functions over a MetricsCollector.

Nothing here touches sockets. :class:`DashboardApi.handle` maps a :class:`Request` to a
:class:`Response` (status, headers, body bytes); the HTTP handler in ``server.py`` only writes it.
Documents derived from the newest sample (summary, health, /metrics, alerts, history windows) are
serialised once per collector version and then served from memory.
"""

from __future__ import annotations

import bisect
import gzip
import logging
import math
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl

import orjson

from raftctl.dashboard import openapi, prometheus

log = logging.getLogger(__name__)

ALLOWED_METHODS = "GET, HEAD"
DEFAULT_DURATION = 60.0
MAX_QUERY_FIELDS = 20
MAX_PARAM_LENGTH = 64
RESOLVED_ALERTS_SHOWN = 50
# Bodies shorter than this go out uncompressed: gzip's ~20 bytes of framing and the CPU are not
# worth it, and every error document is below it.
GZIP_MIN_BYTES = 512
GZIP_LEVEL = 6
# The sections of a history sample ``fields=`` may keep; timestamp, sim_time and sequence always stay.
# history keeps no per-shard data (the latest sample has it): "shards" was accepted and gave nothing
HISTORY_SECTIONS = ("cluster", "performance", "nodes", "alerts_firing")
_HISTORY_ALWAYS = ("timestamp", "sim_time", "sequence")
_COMPRESSIBLE = ("application/json", "text/", "application/openmetrics-text", "image/svg+xml")

# A plain decimal number, as JSON writes one (leading zeros allowed): ASCII digits only.
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_ASCII_INT = re.compile(r"[0-9]+")
_QVALUE = re.compile(r"q=(0(\.[0-9]{0,3})?|1(\.0{0,3})?)", re.IGNORECASE)
_NON_FINITE = frozenset({"nan", "inf", "infinity"})
_STATIC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9]+)?$")
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".png": "image/png",
    ".json": "application/json",
}
_REFRESH_PLACEHOLDER = b"__RAFTCTL_REFRESH_SECONDS__"
_REPLAY_PLACEHOLDER = b"__RAFTCTL_REPLAY__"  # "1" when the server has /api/replay (raftctl replay)

JSON_HEADERS = (
    ("Content-Type", "application/json"),
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
)
# The page needs nothing from other origins; saying so keeps it honest about working offline.
_PAGE_HEADERS = (
    ("Cache-Control", "no-cache"),
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"),
)


@dataclass(frozen=True)
class Request:
    """One parsed HTTP request: method, raw request target and lower-cased header names."""

    method: str
    target: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Response:
    """Status, headers and the full body; HEAD answers reuse it without writing the body.

    ``encoded`` holds the gzip form once built, so a response cached per sample is compressed once.
    """

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    encoded: dict[str, Response] = field(default_factory=dict, compare=False, repr=False)


class ApiError(Exception):
    """A request the API refuses; becomes ``{"error": message, "status": status}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str, extra_headers: tuple[tuple[str, str], ...] = ()) -> Response:
    """The JSON error every non-2xx answer uses."""
    body = orjson.dumps({"error": message, "status": status})
    return Response(status, JSON_HEADERS + extra_headers, body)


def json_response(status: int, body: bytes) -> Response:
    return Response(status, JSON_HEADERS, body)


def parse_decimal(text: str, name: str) -> float:
    """A finite number written as a plain ASCII decimal (``60``, ``0.5``, ``1e3``), else a 400."""
    if len(text) > MAX_PARAM_LENGTH:
        raise ApiError(400, f"{name} is too long")
    if not _DECIMAL.fullmatch(text):
        raise ApiError(400, f"{name} must be a number in ASCII digits (like 30 or 0.5), got {text!r}")
    value = float(text)
    if not math.isfinite(value):
        raise ApiError(400, f"{name} must be a finite number")
    return value


def parse_duration(values: list[str] | None, retention: float) -> float:
    """Validate ``duration`` (seconds): finite, > 0, at most ``openapi.max_duration(retention)``;
    clamped to the retention."""
    if not values:
        return min(DEFAULT_DURATION, retention)
    if len(values) > 1:
        raise ApiError(400, "duration given more than once")
    text = values[0]
    if not text:
        raise ApiError(400, "duration must not be empty")
    if len(text) > MAX_PARAM_LENGTH:
        raise ApiError(400, "duration is too long")
    if text.lower().lstrip("+-") in _NON_FINITE:
        raise ApiError(400, "duration must be a finite number of seconds")
    # float() alone would also take '+8', '1_0', ' 8 ' and non-ASCII digits, which the
    # OpenAPI number schema does not describe.
    if not _DECIMAL.fullmatch(text):
        raise ApiError(400, f"duration must be a number of seconds in ASCII digits (like 60 or 0.5), got {text!r}")
    duration = float(text)
    if not math.isfinite(duration):
        raise ApiError(400, "duration must be a finite number of seconds")
    if duration <= 0:
        raise ApiError(400, "duration must be greater than 0")
    limit = openapi.max_duration(retention)
    if duration > limit:
        raise ApiError(400, f"duration must be at most {_seconds(limit)} seconds (retention is {_seconds(retention)} s)")
    return min(duration, retention)


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


MAX_SEQUENCE = 2**63 - 1  # what the OpenAPI document allows; larger is no sequence there can be


def parse_since(values: list[str] | None, what: str = "a sample sequence number") -> int | None:
    """Validate ``since`` (``what`` it counts: a sample sequence number, or an event's seq):
    ASCII digits only, like ``duration``."""
    if not values:
        return None
    if len(values) > 1:
        raise ApiError(400, "since given more than once")
    text = values[0]
    if not text:
        raise ApiError(400, "since must not be empty")
    if len(text) > MAX_PARAM_LENGTH:
        raise ApiError(400, "since is too long")
    if not _ASCII_INT.fullmatch(text):
        raise ApiError(400, f"since must be {what} in ASCII digits (like 0 or 1234), got {text!r}")
    value = int(text)
    if value > MAX_SEQUENCE:
        raise ApiError(400, f"since must be at most {MAX_SEQUENCE}, got {text!r}")
    return value


def parse_fields(values: list[str] | None) -> tuple[str, ...] | None:
    """Validate ``fields``: a comma-separated subset of HISTORY_SECTIONS (None: every section)."""
    if not values:
        return None
    if len(values) > 1:
        raise ApiError(400, "fields given more than once")
    text = values[0]
    if len(text) > 2 * MAX_PARAM_LENGTH:
        raise ApiError(400, "fields is too long")
    names = text.split(",")
    unknown = [name for name in names if name not in HISTORY_SECTIONS]
    if not text or unknown:
        shown = ", ".join(repr(name[:MAX_PARAM_LENGTH]) for name in unknown[:3]) or "''"
        raise ApiError(400, f"fields must be a comma-separated list of {', '.join(HISTORY_SECTIONS)}; got {shown}")
    return tuple(sorted(set(names), key=HISTORY_SECTIONS.index))


def accepts_gzip(value: str | None) -> bool:
    """True if an Accept-Encoding value allows gzip (RFC 9110 12.5.3: q=0 refuses, ``*`` covers it)."""
    if not value:
        return False
    explicit: float | None = None
    wildcard: float | None = None
    for item in value.split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip(" \t").lower()
        weight = 1.0
        for param in params.split(";"):
            param = param.strip(" \t")
            if param[:2].lower() == "q=":
                weight = float(param[2:]) if _QVALUE.fullmatch(param) else 0.0
        if coding in ("gzip", "x-gzip"):
            explicit = weight if explicit is None else max(explicit, weight)
        elif coding == "*":
            wildcard = weight
    if explicit is not None:
        return explicit > 0
    return wildcard is not None and wildcard > 0


def _compressible(response: Response) -> bool:
    for name, value in response.headers:
        if name == "Content-Type":
            return value.startswith(_COMPRESSIBLE)
    return False


def _gzip(response: Response) -> Response:
    """The gzip form of a 200 answer (built once per Response object and kept on it)."""
    cached = response.encoded.get("gzip")
    if cached is None:
        body = gzip.compress(response.body, GZIP_LEVEL, mtime=0)
        cached = Response(response.status, response.headers + (("Content-Encoding", "gzip"),), body)
        response.encoded["gzip"] = cached
    return cached


def _etag_matches(header: str, etag: str) -> bool:
    """If-None-Match against our (weak) tag, by the weak comparison RFC 9110 13.1.2 prescribes."""
    opaque = etag.removeprefix("W/")
    for item in header.split(","):
        item = item.strip(" \t")
        if item == "*" or item.removeprefix("W/") == opaque:
            return True
    return False


def parse_query(query: str) -> dict[str, list[str]]:
    """Query string -> {name: [values]}; malformed encodings and floods are a 400."""
    if not query:
        return {}
    try:
        pairs = parse_qsl(
            query, keep_blank_values=True, strict_parsing=False, errors="strict", max_num_fields=MAX_QUERY_FIELDS
        )
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "malformed or oversized query string") from None
    params: dict[str, list[str]] = {}
    for name, value in pairs:
        params.setdefault(name, []).append(value)
    return params


def _single(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise ApiError(400, f"{name} given more than once")
    return values[0]


class _Snapshot:
    """Derived documents for one collector version, built lazily and then reused."""

    __slots__ = ("derived", "doc", "lock", "summary", "version")

    def __init__(self, version: Any, doc: dict, summary: bytes) -> None:
        self.version = version
        self.doc = doc
        self.summary = summary
        self.derived: dict[Any, Any] = {}
        self.lock = threading.Lock()

    def get(self, key: Any, build: Callable[[], Any], limit: int = 32) -> Any:
        value = self.derived.get(key)
        if value is None:
            value = build()
            with self.lock:
                if len(self.derived) >= limit:
                    self.derived.clear()
                self.derived[key] = value
        return value


def load_static_files(refresh_seconds: float, replay: bool = False) -> dict[str, tuple[str, bytes]]:
    """Read the packaged static files into memory: {name: (content type, bytes)}.

    Serving only names found here means no request path ever reaches the filesystem, so traversal
    attempts (encoded or not) simply find nothing.
    """
    files: dict[str, tuple[str, bytes]] = {}
    root = resources.files("raftctl.dashboard") / "static"
    for entry in root.iterdir():
        name = entry.name
        if not entry.is_file() or not _STATIC_NAME.match(name):
            continue
        suffix = name[name.rfind(".") :] if "." in name else ""
        content_type = _CONTENT_TYPES.get(suffix)
        if content_type is None:
            continue
        data = entry.read_bytes()
        if name == "index.html":
            data = data.replace(_REFRESH_PLACEHOLDER, _seconds(refresh_seconds).encode())
            data = data.replace(_REPLAY_PLACEHOLDER, b"1" if replay else b"0")
        files[name] = (content_type, data)
    return files


class DashboardApi:
    """Routes requests to the collector's data; safe to call from many threads at once."""

    def __init__(self, collector: Any, refresh_seconds: float = 5.0,
                 routes: Mapping[str, Callable[[Request, dict[str, list[str]]], Response]] | None = None) -> None:
        if not (isinstance(refresh_seconds, (int, float)) and math.isfinite(refresh_seconds) and refresh_seconds > 0):
            raise ValueError(f"refresh_seconds must be a positive number, got {refresh_seconds!r}")
        self.collector = collector
        self.refresh_seconds = float(refresh_seconds)
        self.static_files = load_static_files(self.refresh_seconds, replay="/api/replay" in (routes or {}))
        self._snapshot: _Snapshot | None = None
        self._openapi: bytes | None = None
        # sequence numbers restart with the collector; this keeps a tag from another run from matching
        self._etag_prefix = secrets.token_hex(4)
        self._static_responses: dict[str, Response] = {}
        self._routes: dict[str, Callable[[Request, dict[str, list[str]]], Response]] = {
            "/api/health": self.health,
            "/api/summary": self.summary,
            "/api/metrics/history": self.history,
            "/api/node": self.node,
            "/api/alerts": self.alerts,
            "/api/events": self.events,
            "/api/openapi.json": self.openapi_document,
            "/metrics": self.metrics,
            "/": self.index,
        }
        # routes added by the caller (raftctl replay's /api/replay); they check the method themselves
        self._extra_routes = dict(routes or {})

    # -- dispatch -------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Answer one request; never raises (unexpected errors become a JSON 500 and are logged)."""
        try:
            response = self._dispatch(request)
        except ApiError as exc:
            response = error_response(exc.status, exc.message)
        except Exception:  # a bug, but one request must not take the server down
            log.exception("unexpected error answering %s %s", request.method, request.target[:200])
            return error_response(500, "internal error")
        return self._encode(request, response)

    @staticmethod
    def _encode(request: Request, response: Response) -> Response:
        """gzip when the client accepts it and the body is worth it; Vary on everything compressible."""
        if not _compressible(response):
            return response
        if (
            response.status == 200
            and len(response.body) >= GZIP_MIN_BYTES
            and accepts_gzip(request.headers.get("accept-encoding"))
        ):
            response = _gzip(response)
        return Response(response.status, response.headers + (("Vary", "Accept-Encoding"),), response.body)

    def _dispatch(self, request: Request) -> Response:
        target = request.target
        if not target.startswith("/"):
            raise ApiError(400, "request target must be an absolute path")
        path, _, query = target.partition("?")
        path = path.partition("#")[0]
        extra = self._extra_routes.get(path)
        if extra is not None:
            return extra(request, parse_query(query))
        route = self._routes.get(path)
        if route is None:
            if path.startswith("/static/"):
                route = self.static
            else:
                raise ApiError(404, f"no such endpoint: {path[:100]}")
        if request.method not in ("GET", "HEAD"):
            return error_response(405, f"method {request.method[:20]} not allowed", (("Allow", ALLOWED_METHODS),))
        return route(request, parse_query(query))

    # -- snapshot cache -------------------------------------------------------------------

    def _current(self) -> _Snapshot | None:
        collector = self.collector
        # Read the version before the document: if a collect() races us we may file a newer
        # document under the older version (fixed on the next request), never the reverse.
        version = getattr(collector, "version", None)
        snap = self._snapshot
        if snap is not None and version is not None and snap.version == version:
            return snap
        doc = collector.latest()
        if doc is None:
            return None
        body = None
        latest_bytes = getattr(collector, "latest_bytes", None)
        if callable(latest_bytes):
            body = latest_bytes()
        if body is None:
            body = orjson.dumps(doc)
        if version is None:
            version = ("sequence", doc.get("sequence"), doc.get("timestamp"))
        snap = _Snapshot(version, doc, body)
        self._snapshot = snap
        return snap

    def _require_snapshot(self) -> _Snapshot:
        snap = self._current()
        if snap is None:
            raise ApiError(503, "no sample collected yet")
        return snap

    def _retention(self) -> float:
        retention = getattr(self.collector, "retention_period", None)
        if isinstance(retention, (int, float)) and retention > 0:
            return float(retention)
        return 300.0

    def _node_ids(self, snap: _Snapshot | None) -> list[str]:
        cluster = getattr(self.collector, "cluster", None)
        ids = getattr(cluster, "node_ids", None)
        if ids:
            return list(ids)
        if snap is not None:
            return list((snap.doc.get("nodes") or {}).keys())
        return []

    # -- routes ---------------------------------------------------------------------------

    def health(self, request: Request, params: dict[str, list[str]]) -> Response:
        snap = self._require_snapshot()
        return snap.get("health", lambda: self._build_health(snap.doc))

    @staticmethod
    def _build_health(doc: dict) -> Response:
        cluster = doc.get("cluster") or {}
        status = cluster.get("health_status", "UNHEALTHY")
        body = {
            "status": status,
            "leader": cluster.get("leader", cluster.get("leader_node")),
            "healthy_nodes": cluster.get("healthy_nodes"),
            "cluster_size": cluster.get("cluster_size"),
            "timestamp": doc.get("timestamp"),
            "reasons": cluster.get("health_reasons", []),
        }
        # Like etcd's /health: load balancers read the status code, not the body.
        code = 503 if status == "UNHEALTHY" else 200
        return json_response(code, orjson.dumps(body))

    def summary(self, request: Request, params: dict[str, list[str]]) -> Response:
        snap = self._require_snapshot()
        etag = f'W/"{self._etag_prefix}-{snap.doc.get("sequence", snap.version)}"'
        if_none_match = request.headers.get("if-none-match")
        if if_none_match is not None and _etag_matches(if_none_match, etag):
            return Response(304, JSON_HEADERS[1:] + (("ETag", etag), ("Vary", "Accept-Encoding")), b"")
        return snap.get("summary", lambda: Response(200, JSON_HEADERS + (("ETag", etag),), snap.summary))

    def history(self, request: Request, params: dict[str, list[str]]) -> Response:
        duration = parse_duration(params.get("duration"), self._retention())
        since = parse_since(params.get("since"))
        fields = parse_fields(params.get("fields"))
        snap = self._current()

        def build() -> Response:
            samples = self._history_samples(duration, since, snap)
            if fields is not None:
                keep = _HISTORY_ALWAYS + fields
                samples = [{key: s[key] for key in keep if key in s} for s in samples]
            body = {
                "duration": duration,
                "interval": getattr(self.collector, "collection_interval", None),
                "samples": samples,
            }
            return json_response(200, orjson.dumps(body))

        if snap is None:
            return build()
        return snap.get(("history", duration, since, fields), build)

    def _history_samples(self, duration: float, since: int | None, snap: _Snapshot | None) -> list[dict]:
        """Samples of the last ``duration`` s with ``sequence`` > ``since``, oldest first.

        With ``since`` near the newest sample (the page's every refresh) only a short window is
        rebuilt from the ring buffers: about as many intervals as samples are missing, widened to
        the whole ``duration`` when that short window does not reach back to ``since``.
        """
        collector = self.collector
        latest = None if snap is None else snap.doc.get("sequence")
        interval = getattr(collector, "collection_interval", None)
        if since is not None and isinstance(latest, int) and since >= latest:
            return []
        if since is not None and isinstance(latest, int) and isinstance(interval, (int, float)) and interval > 0:
            short = (latest - since + 2) * float(interval) * 2
            if short < duration:
                samples = collector.history(short)
                if samples and samples[0].get("sequence", latest) <= since + 1:
                    return _after(samples, since)
        samples = collector.history(duration)
        return samples if since is None else _after(samples, since)

    def node(self, request: Request, params: dict[str, list[str]]) -> Response:
        node_id = _single(params, "node_id")
        if not node_id:  # the schema's minLength 1; any other string is a name to look up (404 if unknown)
            raise ApiError(400, "node_id is required, e.g. /api/node?node_id=node1")
        duration = parse_duration(params.get("duration"), self._retention())
        snap = self._current()
        known = self._node_ids(snap)
        if node_id not in known:
            shown = node_id if len(node_id) <= MAX_PARAM_LENGTH else node_id[:MAX_PARAM_LENGTH] + "..."
            raise ApiError(404, f"unknown node_id {shown!r}; known nodes: {', '.join(known)}")

        def build() -> Response:
            try:
                history = self.collector.node_history(node_id, duration)
            except KeyError:
                raise ApiError(404, f"unknown node_id {node_id!r}") from None
            current = None
            if snap is not None:
                current = (snap.doc.get("nodes") or {}).get(node_id)
            return json_response(200, orjson.dumps({"node_id": node_id, "current": current, "history": history}))

        if snap is None:
            return build()
        return snap.get(("node", node_id, duration), build)

    def alerts(self, request: Request, params: dict[str, list[str]]) -> Response:
        snap = self._current()

        def build() -> Response:
            active = list(self.collector.active_alerts())
            resolved = [
                alert
                for alert in self.collector.alert_history()
                if alert.get("status") == "resolved" or alert.get("resolved_at") is not None
            ]
            resolved = resolved[-RESOLVED_ALERTS_SHOWN:][::-1]  # newest first
            return json_response(200, orjson.dumps({"active": active, "resolved": resolved}))

        if snap is None:
            return build()
        return snap.get("alerts", build)

    def events(self, request: Request, params: dict[str, list[str]]) -> Response:
        """``{"events": [...], "last": SEQ}``: timeline events newer than ``since`` (an event seq)."""
        since = parse_since(params.get("since"), "an event seq (the last one seen)")
        source = getattr(self.collector, "events", None)
        events = list(source(since)) if callable(source) else []
        last = events[-1]["seq"] if events else int(getattr(self.collector, "events_sequence", 0) or 0)
        return json_response(200, orjson.dumps({"events": events, "last": last}))

    def metrics(self, request: Request, params: dict[str, list[str]]) -> Response:
        openmetrics = prometheus.wants_openmetrics(request.headers.get("accept"))
        snap = self._current()
        if openmetrics:
            content_type, render = prometheus.OPENMETRICS_CONTENT_TYPE, prometheus.render_openmetrics
        else:
            content_type, render = prometheus.PROMETHEUS_CONTENT_TYPE, prometheus.render_prometheus
        headers = (("Content-Type", content_type), ("Cache-Control", "no-store"))
        if snap is None:
            return Response(200, headers, render(None))
        body = snap.get(("metrics", openmetrics), lambda: render(snap.doc))
        return Response(200, headers, body)

    def openapi_document(self, request: Request, params: dict[str, list[str]]) -> Response:
        if self._openapi is None:
            document = openapi.build_openapi(self._retention())
            for path, route in self._extra_routes.items():  # a caller's route documents itself
                item = getattr(route, "openapi", None)
                if isinstance(item, dict):
                    document["paths"][path] = item
            self._openapi = orjson.dumps(document, option=orjson.OPT_INDENT_2)
        return Response(200, (("Content-Type", "application/json"), ("Cache-Control", "no-cache")), self._openapi)

    def index(self, request: Request, params: dict[str, list[str]]) -> Response:
        return self._file("index.html")

    def static(self, request: Request, params: dict[str, list[str]]) -> Response:
        # the path as _dispatch routes it: without query or fragment
        name = request.target.partition("?")[0].partition("#")[0][len("/static/") :]
        if not _STATIC_NAME.match(name):
            raise ApiError(404, "no such static file")
        return self._file(name)

    def _file(self, name: str) -> Response:
        cached = self._static_responses.get(name)
        if cached is not None:
            return cached
        entry = self.static_files.get(name)
        if entry is None:
            raise ApiError(404, "no such static file")
        content_type, data = entry
        # one Response per file, so its gzip form is built once
        response = Response(200, (("Content-Type", content_type),) + _PAGE_HEADERS, data)
        self._static_responses[name] = response
        return response


def _after(samples: list[dict], since: int) -> list[dict]:
    """The samples with ``sequence`` > ``since`` (sequences ascend, oldest first)."""
    keys = [s.get("sequence", 0) for s in samples]
    return samples[bisect.bisect_right(keys, since):]

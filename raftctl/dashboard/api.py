"""The dashboard's routes: pure request -> response functions over a MetricsCollector.

Nothing here touches sockets. :class:`DashboardApi.handle` maps a :class:`Request` to a
:class:`Response` (status, headers, body bytes); the HTTP handler in ``server.py`` only writes it.
Documents derived from the newest sample (summary, health, /metrics, alerts, history windows) are
serialised once per collector version and then served from memory.
"""

from __future__ import annotations

import logging
import math
import re
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
# Durations up to this many times the retention are clamped to the retention; beyond that the
# caller has almost certainly made a mistake (units, extra zeros) and gets a 400.
ABSURD_DURATION_FACTOR = 10
MAX_QUERY_FIELDS = 20
MAX_PARAM_LENGTH = 64
RESOLVED_ALERTS_SHOWN = 50

# A plain decimal number, as JSON writes one (leading zeros allowed): ASCII digits only.
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
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
    """Status, headers and the full body; HEAD answers reuse it without writing the body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


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


def parse_duration(values: list[str] | None, retention: float) -> float:
    """Validate ``duration`` (seconds): finite, > 0, at most 10x retention; clamped to retention."""
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
    limit = ABSURD_DURATION_FACTOR * retention
    if duration > limit:
        raise ApiError(400, f"duration must be at most {_seconds(limit)} seconds (retention is {_seconds(retention)} s)")
    return min(duration, retention)


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


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


def load_static_files(refresh_seconds: float) -> dict[str, tuple[str, bytes]]:
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
        files[name] = (content_type, data)
    return files


class DashboardApi:
    """Routes requests to the collector's data; safe to call from many threads at once."""

    def __init__(self, collector: Any, refresh_seconds: float = 5.0) -> None:
        if not (isinstance(refresh_seconds, (int, float)) and math.isfinite(refresh_seconds) and refresh_seconds > 0):
            raise ValueError(f"refresh_seconds must be a positive number, got {refresh_seconds!r}")
        self.collector = collector
        self.refresh_seconds = float(refresh_seconds)
        self.static_files = load_static_files(self.refresh_seconds)
        self._snapshot: _Snapshot | None = None
        self._openapi: bytes | None = None
        self._routes: dict[str, Callable[[Request, dict[str, list[str]]], Response]] = {
            "/api/health": self.health,
            "/api/summary": self.summary,
            "/api/metrics/history": self.history,
            "/api/node": self.node,
            "/api/alerts": self.alerts,
            "/api/openapi.json": self.openapi_document,
            "/metrics": self.metrics,
            "/": self.index,
        }

    # -- dispatch -------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Answer one request; never raises (unexpected errors become a JSON 500 and are logged)."""
        try:
            return self._dispatch(request)
        except ApiError as exc:
            return error_response(exc.status, exc.message)
        except Exception:  # a bug, but one request must not take the server down
            log.exception("unexpected error answering %s %s", request.method, request.target[:200])
            return error_response(500, "internal error")

    def _dispatch(self, request: Request) -> Response:
        target = request.target
        if not target.startswith("/"):
            raise ApiError(400, "request target must be an absolute path")
        path, _, query = target.partition("?")
        path = path.partition("#")[0]
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
        return json_response(200, snap.summary)

    def history(self, request: Request, params: dict[str, list[str]]) -> Response:
        duration = parse_duration(params.get("duration"), self._retention())
        snap = self._current()

        def build() -> Response:
            samples = self.collector.history(duration)
            body = {
                "duration": duration,
                "interval": getattr(self.collector, "collection_interval", None),
                "samples": samples,
            }
            return json_response(200, orjson.dumps(body))

        if snap is None:
            return build()
        return snap.get(("history", duration), build)

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
            self._openapi = orjson.dumps(openapi.build_openapi(self._retention()), option=orjson.OPT_INDENT_2)
        return Response(200, (("Content-Type", "application/json"), ("Cache-Control", "no-cache")), self._openapi)

    def index(self, request: Request, params: dict[str, list[str]]) -> Response:
        return self._file("index.html")

    def static(self, request: Request, params: dict[str, list[str]]) -> Response:
        name = request.target.partition("?")[0][len("/static/") :]
        if not _STATIC_NAME.match(name):
            raise ApiError(404, "no such static file")
        return self._file(name)

    def _file(self, name: str) -> Response:
        entry = self.static_files.get(name)
        if entry is None:
            raise ApiError(404, "no such static file")
        content_type, data = entry
        return Response(200, (("Content-Type", content_type),) + _PAGE_HEADERS, data)

"""Sink plugin base class, entry-point registry and the off-path fan-out.

A sink receives every sample document and every alert event (firing / resolved) from the
collector. Sinks are found through the entry-point group ``raftctl.sinks`` — the built-ins are
registered there the same way as third-party ones — and built from a spec string
``name[:arg]`` (``stdout``, ``stdout:json``, ``jsonl:/var/log/raftctl.jsonl``,
``webhook:http://host/hook``). A sink that declares ``spec_options`` also takes options in a
query string after the argument: ``webhook:http://host/hook?receiver=ops&group_by=alertname,shard``.

Each sink runs on its own daemon thread behind a bounded queue (``SinkWorker``): a slow or dead
sink never delays sampling, and when its queue is full the oldest event is dropped and counted.
The alert events of one sample reach a sink together (``submit_alerts``): a sink that overrides
``emit_alerts`` gets them in one call (the webhook sends one notification per changed group),
the others get ``emit_alert`` once per event.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any, ClassVar
from urllib.parse import SplitResult, unquote_plus, urlsplit

__all__ = [
    "ENTRY_POINT_GROUP",
    "Sink",
    "SinkWorker",
    "available_sinks",
    "build_sink",
    "opt_float",
    "opt_int",
    "opt_list",
    "opt_str",
    "parse_spec",
    "sink_names",
    "split_spec_options",
]

ENTRY_POINT_GROUP = "raftctl.sinks"
log = logging.getLogger(__name__)

# Listing sinks must not import them; the built-ins' help text lives here. Their options are
# read from the classes' spec_options (available_sinks(with_options=True), `raftctl sinks`).
_BUILTIN_HELP = {
    "stdout": ("stdout[:json]", "a human line per sample (stdout:json = one JSON object per line)"),
    "jsonl": ("jsonl:PATH", "append one JSON object per sample and per alert event to PATH"),
    "webhook": ("webhook:URL[?OPTIONS]",
                "POST alert groups as Alertmanager's webhook (v4) does; spooled on disk until delivered"),
    "alertmanager": ("alertmanager:URL[?OPTIONS]",
                     "push alerts to Alertmanager's API v2 as Prometheus does, re-sent while firing"),
}


def split_credentials(url: str) -> tuple[str, str | None]:
    """``http://user:pw@host/x`` -> (``http://host/x``, the ``Authorization`` value for HTTP Basic
    auth with them); a URL without credentials comes back as it is, with None. urllib sends no
    credentials of a URL by itself: it took ``user:pw@host`` for the host name."""
    import base64
    from urllib.parse import unquote

    from raftctl.sinks.alertmodel import without_userinfo

    netloc = urlsplit(url).netloc
    if "@" not in netloc:
        return url, None
    user, _, password = netloc.rpartition("@")[0].partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
    return without_userinfo(url), f"Basic {token}"


def parse_sink_url(kind: str, arg: str, shown: str) -> SplitResult:
    """Split a sink's http(s) URL; ValueError naming the sink when the scheme, host or port is bad.

    ``shown`` is the URL as messages may show it (credentials already redacted).
    """
    parts = urlsplit(arg)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{kind} sink URL must be http:// or https:// with a host, got {shown!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ValueError(f"{kind} sink URL has a bad port: {shown!r}") from exc
    return parts


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost`` and loopback addresses (sinks bypass any HTTP proxy for them)."""
    if host == "localhost":
        return True
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Sink:
    """Base class for sinks. Subclasses override what they need.

    The constructor receives the spec's argument (``None`` when absent) plus keyword options,
    and must validate it, raising ``ValueError`` for a bad target so errors surface at build
    time. ``emit_*`` run on the sink's worker thread and must not mutate the documents.
    """

    name = "sink"
    spec_syntax = "sink"
    description = ""
    #: False for sinks that only care about alert events; samples are then never queued for them
    accepts_samples = True
    #: True for sinks whose emit_alert only hands the event to their own bounded, durable queue
    #: (the webhook's spool) in well under a millisecond: alert events then skip the worker's
    #: drop-oldest queue and are emitted on the caller's thread, so no queue bound loses one
    emits_alerts_inline: ClassVar[bool] = False
    #: options a spec may carry in a query string after its argument: name -> converter(str)
    spec_options: ClassVar[Mapping[str, Callable[[str], Any]]] = {}
    #: True: query parameters that are not options stay in the argument (a URL's own query)
    spec_keeps_unknown_query: ClassVar[bool] = False
    #: the dashboard's URL when the program hosting the sink knows it (see set_dashboard_url)
    dashboard_url: str | None = None

    def __init__(self, arg: str | None = None, **options: Any) -> None:
        if options:
            raise ValueError(f"sink {self.name!r} takes no options {sorted(options)}")
        self.arg = arg

    def open(self) -> None:
        """Acquire resources (files, connections). Called once before the first event."""

    def emit_sample(self, sample: dict) -> None:
        """Handle one sample document."""

    def emit_alert(self, alert: dict) -> None:
        """Handle one alert event (``alert["status"]`` is "firing" or "resolved")."""

    def emit_alerts(self, alerts: list[dict]) -> None:
        """Handle the alert events of one sample together, in order (override to batch them;
        the worker then queues them as one entry). The default hands each to ``emit_alert``."""
        for alert in alerts:
            self.emit_alert(alert)

    def close(self) -> None:
        """Release resources. Called once after the last event."""

    def stats(self) -> dict[str, Any]:
        """Sink-specific counters (for example delivery failures)."""
        return {}

    def set_dashboard_url(self, url: str | None) -> None:
        """Tell the sink where the dashboard is (``raftctl serve`` after binding, ``raftctl
        alerts`` from ``--url``); alert sinks use it for ``generatorURL`` and ``instance``."""
        self.dashboard_url = url.rstrip("/") if url else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.arg!r})"


def _entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)  # first one on sys.path wins, like importlib itself
    return found


def sink_names() -> list[str]:
    """Names of all registered sinks, sorted; imports nothing."""
    return sorted(_entry_points())


def available_sinks(with_options: bool = False) -> list[dict[str, Any]]:
    """``[{name, spec, description}]`` for every registered sink, sorted by name.

    Built-ins are described without importing them; a third-party sink is loaded to read its
    ``spec_syntax`` and ``description`` class attributes (a broken one is listed as such).
    ``with_options`` loads every sink and adds ``options``: the sorted names of its
    ``spec_options`` (empty for a sink that takes none or cannot be loaded).
    """
    rows: list[dict[str, Any]] = []
    for name, ep in sorted(_entry_points().items()):
        cls: Any = None
        if name in _BUILTIN_HELP and ep.value.startswith("raftctl.sinks."):
            spec, description = _BUILTIN_HELP[name]
        else:
            try:
                cls = ep.load()
                spec = getattr(cls, "spec_syntax", name) or name
                description = getattr(cls, "description", "") or (cls.__doc__ or "").strip().split("\n")[0]
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the listing
                spec, description = name, f"(cannot load {ep.value}: {exc})"
        row: dict[str, Any] = {"name": name, "spec": spec, "description": description}
        if with_options:
            row["options"] = _option_names(ep, cls)
        rows.append(row)
    return rows


def _option_names(ep: EntryPoint, cls: Any) -> list[str]:
    if cls is None:
        try:
            cls = ep.load()
        except Exception:  # noqa: BLE001 - listed without options, as the listing says it cannot load
            return []
    declared = getattr(cls, "spec_options", None)
    return sorted(declared) if isinstance(declared, Mapping) else []


def parse_spec(spec: str) -> tuple[str, str | None]:
    """Split ``name[:arg]`` at the first colon (URLs keep theirs)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"sink spec must be a non-empty string like 'stdout' or 'jsonl:PATH', got {spec!r}")
    name, sep, arg = spec.strip().partition(":")
    return name.strip(), (arg if sep else None)


def opt_str(value: str) -> str:
    """Spec option converter: any non-empty text."""
    if not value:
        raise ValueError("must not be empty")
    return value


def opt_list(value: str) -> list[str]:
    """Spec option converter: comma-separated names (``alertname,shard``)."""
    items = [item.strip() for item in value.split(",")]
    if not value or not all(items):
        raise ValueError("must be a comma-separated list of names")
    return items


def opt_float(minimum: float = 0.0, *, above: bool = False) -> Callable[[str], float]:
    """Spec option converter factory: a finite number >= ``minimum`` (> with ``above``)."""

    def convert(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise ValueError("is not a number") from None
        if not math.isfinite(number):
            raise ValueError("is not a finite number")
        if number < minimum or (above and number == minimum):
            raise ValueError(f"must be {'>' if above else '>='} {minimum:g}")
        return number

    return convert


def opt_int(minimum: int = 0) -> Callable[[str], int]:
    """Spec option converter factory: an integer >= ``minimum`` (ASCII digits only)."""

    def convert(value: str) -> int:
        if not value.isascii() or not value.isdigit():
            raise ValueError("must be a whole number")
        number = int(value)
        if number < minimum:
            raise ValueError(f"must be >= {minimum}")
        return number

    return convert


def split_spec_options(cls: type, name: str, arg: str | None) -> tuple[str | None, dict[str, Any]]:
    """Take the options a sink class declares out of its argument's query string.

    ``http://h/hook?receiver=ops&token=x`` -> (``http://h/hook?token=x``, {"receiver": "ops"})
    for a sink that keeps unknown query parameters; otherwise an unknown one is a ValueError.
    """
    declared: Mapping[str, Callable[[str], Any]] = getattr(cls, "spec_options", {}) or {}
    if not declared or arg is None or "?" not in arg:
        return arg, {}
    base, _, query = arg.partition("?")
    fragment = ""
    if "#" in query:
        query, _, fragment = query.partition("#")
    options: dict[str, Any] = {}
    kept: list[str] = []
    for piece in query.split("&"):
        if not piece:
            continue
        raw_key, _, raw_value = piece.partition("=")
        key, value = unquote_plus(raw_key), unquote_plus(raw_value)
        if key not in declared:
            kept.append(piece)
            continue
        if key in options:
            raise ValueError(f"sink {name!r}: option {key!r} is given twice")
        try:
            options[key] = declared[key](value)
        except ValueError as err:
            raise ValueError(f"sink {name!r}: option {key}={value!r} {err}") from None
        if callable(options[key]):  # the factory itself (opt_int) instead of a converter (opt_int(1))
            raise ValueError(f"sink {name!r}: spec_options[{key!r}] is a converter factory, not a converter: "
                             f"declare it called, e.g. opt_int(1) or opt_float(0.0), not opt_int")
    if kept and not getattr(cls, "spec_keeps_unknown_query", False):
        unknown = sorted({unquote_plus(piece.partition("=")[0]) for piece in kept})
        raise ValueError(f"sink {name!r} has no option(s) {', '.join(unknown)}; "
                         f"options: {', '.join(sorted(declared))}")
    rebuilt = base + ("?" + "&".join(kept) if kept else "") + ("#" + fragment if fragment else "")
    return rebuilt, options


def build_sink(spec: str, **options: Any) -> Sink:
    """Build a sink from ``name[:arg][?option=value&...]``; unknown names raise ValueError
    listing the known ones."""
    name, arg = parse_spec(spec)
    registry = _entry_points()
    ep = registry.get(name)
    if ep is None:
        known = ", ".join(f"{row['spec']}" for row in available_sinks()) or "(none registered)"
        raise ValueError(f"unknown sink {name!r}; available sinks: {known}")
    try:
        cls = ep.load()
    except Exception as exc:
        raise ValueError(f"sink {name!r} cannot be loaded from {ep.value}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Sink)):
        # ValueError like every other bad spec: callers turn it into one usage error
        raise ValueError(f"sink {name!r} ({ep.value}) is not a raftctl.sinks.Sink subclass")  # noqa: TRY004
    arg, spec_options = split_spec_options(cls, name, arg)
    clash = sorted(set(spec_options) & set(options))
    if clash:
        raise ValueError(f"sink {name!r}: option(s) {', '.join(clash)} given both in the spec and by the caller")
    return cls(arg, **spec_options, **options)


# a sink that keeps failing is logged (with its traceback) at most once per this many seconds
FAILURE_LOG_INTERVAL = 30.0


class SinkWorker:
    """Runs one sink on a daemon thread behind a bounded drop-oldest queue.

    ``submit`` never blocks. Exceptions raised by the sink are logged and counted in
    ``errors``; events pushed out of a full queue are counted in ``dropped``.
    """

    def __init__(self, sink: Sink, max_queue: int = 1000) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be >= 1")
        self.sink = sink
        self.max_queue = max_queue
        self.dropped = 0
        self.errors = 0
        self.delivered = 0
        self._queue: deque[tuple[str, dict]] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._busy = False
        self._thread: threading.Thread | None = None
        self._last_report = -math.inf  # monotonic: when a failure was last logged
        self._unreported = 0           # failures since then, not logged one by one

    def _failed(self, what: str, exc: BaseException) -> None:
        """Count a sink failure; log it with its traceback, but at most once per
        ``FAILURE_LOG_INTERVAL`` s (a sink that fails on every sample must not flood stderr)."""
        self.errors += 1
        if getattr(exc, "reported", False):  # set by a sink that logs its own failures, rate limited
            return
        now = time.monotonic()
        if now - self._last_report < FAILURE_LOG_INTERVAL:
            self._unreported += 1
            return
        more = f" ({self._unreported} more failure(s) since the last report)" if self._unreported else ""
        self._last_report, self._unreported = now, 0
        log.error("sink %r failed on %s%s; next report in %g s at most", self.sink, what, more,
                  FAILURE_LOG_INTERVAL, exc_info=exc)

    def start(self) -> None:
        """Open the sink and start its thread."""
        if self._thread is not None:
            return
        self.sink.open()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=f"raftctl-sink-{self.sink.name}",
                                        daemon=True)
        self._thread.start()

    def submit(self, kind: str, document: dict) -> None:
        """Queue ``("sample"|"alert", document)``; drops the oldest queued event when full.

        Alert events for a sink with ``emits_alerts_inline`` are emitted at once instead.
        """
        if kind == "alert" and self.sink.emits_alerts_inline and self._thread is not None:
            try:
                self.sink.emit_alert(document)
                self.delivered += 1
            except Exception as exc:  # noqa: BLE001 - a sink failure must never reach the sampler
                self._failed("an alert event", exc)
            return
        with self._cond:
            if len(self._queue) >= self.max_queue:
                self._drop_oldest()
            self._queue.append((kind, document))
            self._cond.notify()

    def submit_alerts(self, events: list[dict]) -> None:
        """Hand on the alert events of one sample together (see ``Sink.emit_alerts``).

        A sink with ``emits_alerts_inline`` gets them at once; one that overrides
        ``emit_alerts`` gets them as one queue entry (counted as that many events if dropped);
        any other gets one queue entry per event, exactly as ``submit("alert", ...)``.
        """
        if not events:
            return
        batched = type(self.sink).emit_alerts is not Sink.emit_alerts
        if self.sink.emits_alerts_inline and self._thread is not None:
            if not batched:
                for event in events:
                    self.submit("alert", event)
                return
            try:
                self.sink.emit_alerts(list(events))
                self.delivered += len(events)
            except Exception as exc:  # noqa: BLE001 - a sink failure must never reach the sampler
                self._failed("a sample's alert events", exc)
            return
        if not batched:
            for event in events:
                self.submit("alert", event)
            return
        with self._cond:
            if len(self._queue) >= self.max_queue:
                self._drop_oldest()
            self._queue.append(("alerts", {"events": list(events)}))
            self._cond.notify()

    def _drop_oldest(self) -> None:
        kind, document = self._queue.popleft()
        self.dropped += len(document["events"]) if kind == "alerts" else 1

    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + (1 if self._busy else 0)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until the queue is empty and no event is in flight; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return  # closing and drained
                kind, document = self._queue.popleft()
                self._busy = True
            try:
                if kind == "alerts":
                    self.sink.emit_alerts(document["events"])
                    self.delivered += len(document["events"])
                else:
                    if kind == "alert":
                        self.sink.emit_alert(document)
                    else:
                        self.sink.emit_sample(document)
                    self.delivered += 1
            except Exception as exc:
                self._failed(f"a {kind} event", exc)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def close(self, timeout: float = 5.0) -> bool:
        """Drain (up to ``timeout`` s), stop the thread and close the sink. True if drained."""
        thread = self._thread
        if thread is None:
            return True
        drained = self.wait_idle(timeout)
        with self._cond:
            if not drained:
                while self._queue:
                    self._drop_oldest()
            self._closing = True
            self._cond.notify_all()
        # a drained worker stops at once; one stuck in its sink will not stop by waiting longer
        thread.join(max(0.1, timeout) if drained else 0.5)
        self._thread = None
        try:
            self.sink.close()
        except Exception:
            log.exception("closing sink %r failed", self.sink)
        return drained

    def stats(self) -> dict[str, Any]:
        out = {"name": self.sink.name, "sink": repr(self.sink), "queued": self.pending(),
               "dropped": self.dropped, "errors": self.errors, "delivered": self.delivered}
        out.update(self.sink.stats())
        return out

"""Replay of a run recorded by the ``jsonl`` sink, served through the dashboard's API and page.

:func:`load_recording` (``recording.py``) reads the file into runs. :class:`ReplayCollector`
holds one recorded run and a :class:`ReplayClock`, and answers what the dashboard asks a live
collector (``version``, ``latest``, ``history``, ``node_history``, ``active_alerts``,
``alert_history``, ``events``) as of the clock's position: the page and the API then show the run
as it looked at that moment. Nothing is sampled; the clock only picks which recorded sample is
"now". The samples stay JSON bytes until read; the history entries the page asks for are built
from them when first asked and the newest few thousand kept.

:func:`replay_routes` gives the ``/api/replay`` route: GET the clock's state, POST
``?action=play|pause|seek|speed`` (with ``position=`` seconds or ``speed=``) to move it.
"""

from __future__ import annotations

import bisect
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson

from raftctl.core.event_log import EventLog
from raftctl.runtime.recording import RecordedSamples, Recording, RecordingError, Run, load_recording
from raftctl.runtime.recording import number as _number

__all__ = ["CONTROL_HEADER", "RecordedSamples", "Recording", "RecordingError", "ReplayClock", "ReplayCollector",
           "Run", "load_recording", "replay_routes", "transitions"]

MAX_SPEED = 1000.0
# history entries kept built (a page asks for the newest minutes again and again)
ENTRIES_KEPT = 4096
MIN_SPEED = 0.01
# A POST must carry this header: a page of another origin cannot send it without a CORS
# preflight, which this server never grants, so only our own page can move the clock.
CONTROL_HEADER = "x-raftctl-replay"


class ReplayClock:
    """Position in recorded seconds from the run's start, moving at ``speed`` x wall time while playing."""

    def __init__(self, duration: float, speed: float = 1.0, monotonic: Callable[[], float] = time.monotonic,
                 paused: bool = False) -> None:
        self.duration = max(0.0, float(duration))
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._speed = check_speed(speed)
        self._base = 0.0  # position at _anchor
        self._anchor = monotonic()
        self._playing = not paused

    def _now_locked(self) -> float:
        if not self._playing:
            return self._base
        position = self._base + (self._monotonic() - self._anchor) * self._speed
        if position >= self.duration:  # the end: stop there
            self._base, self._playing = self.duration, False
            return self.duration
        return position

    def position(self) -> float:
        with self._lock:
            return self._now_locked()

    def state(self) -> dict[str, Any]:
        with self._lock:
            position = self._now_locked()
            return {"position": position, "duration": self.duration, "speed": self._speed,
                    "paused": not self._playing, "ended": position >= self.duration}

    def play(self) -> None:
        with self._lock:
            position = self._now_locked()
            if position >= self.duration:
                position = 0.0  # play at the end starts over, as a media player does
            self._base, self._anchor, self._playing = position, self._monotonic(), True

    def pause(self) -> None:
        with self._lock:
            self._base, self._playing = self._now_locked(), False

    def seek(self, position: float) -> None:
        if not _number(position):
            raise ValueError(f"position must be a finite number of seconds, got {position!r}")
        with self._lock:
            self._now_locked()
            self._base = min(max(0.0, float(position)), self.duration)
            self._anchor = self._monotonic()

    def set_speed(self, speed: float) -> None:
        speed = check_speed(speed)
        with self._lock:
            self._base = self._now_locked()
            self._anchor = self._monotonic()
            self._speed = speed


def check_speed(speed: Any) -> float:
    if not _number(speed) or not MIN_SPEED <= float(speed) <= MAX_SPEED:
        raise ValueError(f"speed must be a number from {MIN_SPEED:g} to {MAX_SPEED:g}, got {speed!r}")
    return float(speed)


def _history_entry(sample: dict[str, Any]) -> dict[str, Any]:
    """A sample in the shape collector.history() gives: no per-node digest, a count of firing alerts."""
    entry: dict[str, Any] = {key: sample[key] for key in ("timestamp", "sim_time", "sequence", "cluster", "performance")
             if key in sample}
    nodes = sample.get("nodes") or {}
    entry["nodes"] = {node_id: {k: v for k, v in (doc or {}).items() if k != "state_digest"}
                      for node_id, doc in nodes.items()}
    if "shards" in sample:
        entry["shards"] = sample["shards"]
    entry["alerts_firing"] = sum(1 for a in sample.get("alerts") or []
                                 if isinstance(a, dict) and a.get("status", "firing") == "firing")
    return entry


class ReplayCollector:
    """The collector interface the dashboard reads, over one recorded run and a ReplayClock."""

    def __init__(self, run: Run, speed: float = 1.0, monotonic: Callable[[], float] = time.monotonic,
                 paused: bool = False) -> None:
        if not run.samples:
            raise ValueError("a replay needs at least one sample")
        self.samples: RecordedSamples = run.samples
        self.alert_events = run.alerts
        self.start = self.samples.sim_times[0]
        self.offsets = [t - self.start for t in self.samples.sim_times]
        self.clock = ReplayClock(self.offsets[-1], speed, monotonic, paused=paused)
        first: dict[str, Any] = self.samples[0].get("collector") or {}
        interval: Any = first.get("collection_interval")
        self.collection_interval = float(interval) if _number(interval) and interval > 0 else _median_step(self.offsets)
        retention: Any = first.get("retention_period")
        self.retention_period = float(retention) if _number(retention) and retention > 0 else 300.0
        self.cluster = None
        # history entries built from the samples when first asked, the newest kept
        self._entries: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._entries_lock = threading.Lock()  # the server's threads share the cache
        self._transitions = _transitions(self.offsets, self.samples.health)
        self._event_offsets = [_event_time(a) - self.start for a in self.alert_events]
        self._timeline, self._timeline_upto = _timeline(self.samples, self.offsets, self.alert_events,
                                                        self._event_offsets)

    # -- where the clock is ------------------------------------------------------------

    def index(self) -> int:
        """Index of the newest sample at or before the clock's position."""
        position = self.clock.position()
        return max(0, bisect.bisect_right(self.offsets, position + 1e-9) - 1)

    @property
    def version(self) -> int:
        return self.index()

    # -- what the dashboard reads --------------------------------------------------------

    def latest(self) -> dict[str, Any]:
        return orjson.loads(self.latest_bytes())

    def latest_bytes(self) -> bytes:
        return self.samples.body(self.index())

    def _window(self, duration: float | None) -> tuple[int, int]:
        end = self.index() + 1
        if duration is None:
            return 0, end
        newest = self.offsets[end - 1]
        start = bisect.bisect_right(self.offsets, newest - float(duration), 0, end)
        return start, end

    def history(self, duration: float | None = 60) -> list[dict[str, Any]]:
        start, end = self._window(duration)
        return self._history(start, end)

    def _history(self, start: int, end: int) -> list[dict[str, Any]]:
        """The history entries of samples ``start`` to ``end`` (built from a sample when first
        asked; the newest ``ENTRIES_KEPT`` asked kept)."""
        out = []
        entries = self._entries
        with self._entries_lock:
            for index in range(start, end):
                entry = entries.get(index)
                if entry is None:
                    entry = entries[index] = _history_entry(self.samples.parse(index))
                else:
                    entries.move_to_end(index)
                out.append(entry)
            while len(entries) > max(ENTRIES_KEPT, end - start):
                entries.popitem(last=False)
        return out

    def node_history(self, node_id: str, duration: float | None = 60) -> list[dict[str, Any]]:
        known = self.node_ids()
        if node_id not in known:
            raise KeyError(node_id)
        start, end = self._window(duration)
        rows = []
        for entry in self._history(start, end):
            doc = (entry.get("nodes") or {}).get(node_id)
            if doc is not None:
                rows.append({"timestamp": entry.get("timestamp"), "sim_time": entry.get("sim_time"),
                             "node_id": node_id, **doc})
        return rows

    def node_ids(self) -> list[str]:
        return self.samples.node_ids

    def active_alerts(self) -> list[dict[str, Any]]:
        sample = self.samples[self.index()]
        return [a for a in sample.get("alerts") or [] if isinstance(a, dict) and a.get("status", "firing") == "firing"]

    def alert_history(self) -> list[dict[str, Any]]:
        """Alert events up to the clock's position, the newest state of each episode, oldest first."""
        now = self.offsets[self.index()]
        episodes: dict[Any, dict[str, Any]] = {}
        for offset, event in zip(self._event_offsets, self.alert_events, strict=True):
            if offset > now + 1e-9:
                continue
            key = (event.get("fingerprint") or event.get("name"), event.get("started_at_sim", event.get("started_at")))
            episodes.pop(key, None)
            episodes[key] = event
        return list(episodes.values())

    def events(self, since: int | None = None) -> list[dict[str, Any]]:
        """The timeline (``GET /api/events``) up to the clock's position: events above ``since``.

        Built from the recorded samples in order, as the live collector builds it; a recording
        does not know which faults were injected, so it has none. After a seek back the sequence
        goes back too (a client then starts its timeline over).
        """
        upto = self.events_sequence
        start = 0 if since is None else max(0, min(int(since), upto))
        return [dict(e) for e in self._timeline[start:upto]]

    @property
    def events_sequence(self) -> int:
        """The seq of the newest event at the clock's position (0: none yet)."""
        return self._timeline_upto[self.index()]

    # -- the control route ---------------------------------------------------------------

    def state(self, path: str, run: int, runs: int) -> dict[str, Any]:
        clock = self.clock.state()
        index = self.index()
        sample = self.samples[index]
        clock.update({
            "file": os.path.basename(path), "run": run, "runs": runs, "samples": len(self.samples),
            "index": index, "sequence": sample.get("sequence"), "offset": self.offsets[index],
            "timestamp": sample.get("timestamp"), "started_at": self.samples[0].get("timestamp"),
            "health": self._transitions,
        })
        return clock


def transitions(collector: ReplayCollector) -> list[list[Any]]:
    """``[[offset, health_status], ...]``: where the run's health changed (for the seek bar)."""
    return collector._transitions


def _transitions(offsets: list[float], health: list[Any]) -> list[list[Any]]:
    marks: list[list[Any]] = []
    for offset, status in zip(offsets, health, strict=True):
        if not marks or marks[-1][1] != status:
            marks.append([round(offset, 6), status])  # 8.0, not 7.999999999999999
    return marks


def _timeline(samples: RecordedSamples, offsets: list[float], alerts: list[dict[str, Any]],
              alert_offsets: list[float]) -> tuple[list[dict[str, Any]], list[int]]:
    """Every event of the run, and for each sample index the seq of the last event up to it.

    Each recorded alert event goes with the first sample at or after its time (the collector
    fires and resolves alerts at a sample); events are numbered 1, 2, ... so event ``seq`` is
    its position + 1.
    """
    by_sample: list[list[dict[str, Any]]] = [[] for _ in samples]
    for offset, event in sorted(zip(alert_offsets, alerts, strict=True), key=lambda pair: pair[0]):
        index = min(bisect.bisect_left(offsets, offset - 1e-6), len(samples) - 1)
        by_sample[index].append(event)
    log = EventLog(limit=10**7)
    upto: list[int] = []
    previous: dict[str, Any] | None = None
    for recorded, alert_events in zip(samples, by_sample, strict=True):
        # what EventLog reads, whatever an older or foreign writer left out
        sample = {**recorded, "nodes": recorded.get("nodes") if isinstance(recorded.get("nodes"), dict) else {},
                  "timestamp": recorded["timestamp"] if _number(recorded.get("timestamp")) else recorded["sim_time"]}
        log.record(previous, sample, alert_events=alert_events)
        upto.append(log.sequence)
        previous = sample
    return log.since(None), upto


def _event_time(event: dict[str, Any]) -> float:
    for key in ("resolved_at_sim", "started_at_sim"):
        if event.get("status") == "firing" and key == "resolved_at_sim":
            continue
        value: Any = event.get(key)
        if _number(value):
            return float(value)
    return -math.inf


def _median_step(offsets: list[float]) -> float:
    steps = sorted(b - a for a, b in zip(offsets, offsets[1:], strict=False) if b > a)
    return steps[len(steps) // 2] if steps else 1.0


def replay_routes(collector: ReplayCollector, path: str, run: int, runs: int) -> dict[str, Callable[..., Any]]:
    """The ``/api/replay`` route for DashboardApi(routes=...)."""
    from raftctl.dashboard.api import ApiError, Request, error_response, json_response, parse_decimal, parse_query

    takes = {"play": (), "pause": (), "seek": ("position",), "speed": ("speed",)}

    def route(request: Request, params: dict[str, list[str]]) -> Any:
        if request.method in ("GET", "HEAD"):
            return json_response(200, orjson.dumps(collector.state(path, run, runs)))
        if request.method != "POST":
            return error_response(405, f"method {request.method[:20]} not allowed", (("Allow", "GET, HEAD, POST"),))
        if request.headers.get(CONTROL_HEADER) != "1":
            return error_response(403, f"a replay control request needs the header {CONTROL_HEADER}: 1")
        params = params or parse_query(request.target.partition("?")[2])
        action = _one(params, "action")
        if action in takes:
            extra = sorted(set(params) - {"action", *takes[action]})
            if extra:  # a speed given with a seek would be silently ignored: say so instead
                raise ApiError(400, f"{action} takes {', '.join(takes[action]) or 'no other parameter'}, "
                                    f"not {', '.join(extra)[:60]}")
        clock = collector.clock
        try:
            if action == "play":
                clock.play()
            elif action == "pause":
                clock.pause()
            elif action == "seek":
                clock.seek(_float(params, "position"))
            elif action == "speed":
                clock.set_speed(_float(params, "speed"))
            else:
                raise ApiError(400, "action must be one of play, pause, seek (position=S), speed (speed=X)")
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        return json_response(200, orjson.dumps(collector.state(path, run, runs)))

    def _one(params: dict[str, list[str]], name: str) -> str | None:
        values = params.get(name) or []
        if len(values) > 1:
            raise ApiError(400, f"{name} given more than once")
        return values[0] if values else None

    def _float(params: dict[str, list[str]], name: str) -> float:
        text = _one(params, name)
        if text is None:
            raise ApiError(400, f"{name} is required")
        return parse_decimal(text, name)

    route.openapi = REPLAY_OPENAPI  # type: ignore[attr-defined]  # merged into /api/openapi.json
    return {"/api/replay": route}


_ERROR = {"$ref": "#/components/schemas/Error"}
_STATE = {
    "type": "object",
    "required": ["position", "duration", "speed", "paused", "ended", "file", "run", "runs", "samples",
                 "index", "offset"],
    "properties": {
        "position": {"type": "number", "description": "Seconds into the run the clock is at"},
        "duration": {"type": "number", "description": "The run's length in seconds"},
        "speed": {"type": "number", "description": "Recorded seconds played per wall-clock second"},
        "paused": {"type": "boolean"}, "ended": {"type": "boolean"},
        "file": {"type": "string", "description": "The recording's file name"},
        "run": {"type": "integer", "description": "Which run of the file is served (1-based)"},
        "runs": {"type": "integer"}, "samples": {"type": "integer"},
        "index": {"type": "integer", "description": "The sample the API serves now"},
        "sequence": {"type": "integer", "nullable": True}, "offset": {"type": "number"},
        "timestamp": {"type": "number", "nullable": True}, "started_at": {"type": "number", "nullable": True},
        "health": {"type": "array", "items": {"type": "object"},
                   "description": "The run's health transitions with their offsets"},
    },
}


def _state_answer(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _STATE}}}


def _error_answer(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


# the OpenAPI path item of /api/replay (served only by `raftctl replay`)
REPLAY_OPENAPI: dict[str, Any] = {
    "get": {
        "operationId": "getReplay",
        "summary": "Where the replay clock is (raftctl replay only; a live server answers 404)",
        "responses": {"200": _state_answer("The clock and the recording")},
    },
    "post": {
        "operationId": "controlReplay",
        "summary": "Play, pause, seek or change speed; needs the header X-Raftctl-Replay: 1",
        "parameters": [
            {"name": CONTROL_HEADER, "in": "header", "required": True,
             "schema": {"type": "string", "enum": ["1"]}},
            {"name": "action", "in": "query", "required": True,
             "schema": {"type": "string", "enum": ["play", "pause", "seek", "speed"]}},
            {"name": "position", "in": "query", "required": False,
             "description": "Seconds into the run (action=seek); clamped to the run",
             "schema": {"type": "number"}},
            {"name": "speed", "in": "query", "required": False,
             "description": "Recorded seconds per wall-clock second (action=speed)",
             "schema": {"type": "number", "minimum": MIN_SPEED, "maximum": MAX_SPEED}},
        ],
        "responses": {
            "200": _state_answer("The clock after the action"),
            "400": _error_answer("Bad or missing action, position or speed"),
            "403": _error_answer("No X-Raftctl-Replay: 1 header"),
        },
    },
}

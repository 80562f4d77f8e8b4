"""A run recorded by the ``jsonl`` sink, read for ``raftctl replay``.

:func:`load_recording` reads the file line by line (one ``{"type": "sample"|"alert", ...}``
object per line) into a :class:`Recording` of :class:`Run` s. A run keeps its samples as their
JSON bytes (:class:`RecordedSamples`: about the file's size in memory, where parsed documents
took six times that) with the few fields a replay reads of every sample (time, health, node
names) beside them; a sample is parsed when it is read, the newest few kept parsed.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import orjson

__all__ = ["RecordedSamples", "Recording", "RecordingError", "Run", "load_recording"]


_SINK_PREFIX = b'{"type":"sample",'


class RecordingError(ValueError):
    """A file that cannot be replayed; the message is one line naming the file (and the line)."""


class RecordedSamples(Sequence[dict[str, Any]]):
    """A run's samples in order, each kept as its JSON bytes and parsed when read.

    ``sim_times``, ``health`` (each sample's ``cluster.health_status``) and ``node_ids`` (every
    node any sample names, in first-seen order) are kept as they were read. A sample read is a
    shared document: treat it as read-only (:meth:`parse` gives a fresh one).
    """

    CACHED = 64  # parsed samples kept, the newest read first

    def __init__(self) -> None:
        self._bodies: list[bytes] = []
        self.sim_times: list[float] = []
        self.health: list[Any] = []
        self._node_ids: dict[str, None] = {}
        self._parsed: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, record: dict[str, Any], line: bytes = b"") -> None:
        """Keep one checked sample record (without its ``type``), read from ``line``."""
        if line.startswith(_SINK_PREFIX):  # as the jsonl sink writes it: the line less its type is the body
            body = b"{" + line[len(_SINK_PREFIX):].rstrip(b"\r\n")
        else:  # a copy: orjson's own buffer can hold several times the length it returns
            body = memoryview(orjson.dumps(record)).tobytes()
        self._bodies.append(body)
        self.sim_times.append(float(record["sim_time"]))
        cluster = record["cluster"]
        self.health.append(cluster.get("health_status"))
        for node_id in record["nodes"]:
            if node_id not in self._node_ids:
                self._node_ids[node_id] = None

    @property
    def node_ids(self) -> list[str]:
        return list(self._node_ids)

    def __len__(self) -> int:
        return len(self._bodies)

    def body(self, index: int) -> bytes:
        """Sample ``index`` as JSON bytes (what ``/api/summary`` serves)."""
        return self._bodies[index]

    def parse(self, index: int) -> dict[str, Any]:
        """Sample ``index`` freshly parsed (kept by nobody)."""
        parsed: dict[str, Any] = orjson.loads(self._bodies[index])
        return parsed

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self._bodies)
        if not 0 <= index < len(self._bodies):
            raise IndexError("sample index out of range")
        cache = self._parsed
        with self._lock:  # the dashboard's threads share the cache
            sample = cache.get(index)
            if sample is None:
                sample = cache[index] = self.parse(index)
                if len(cache) > self.CACHED:
                    cache.popitem(last=False)
            else:
                cache.move_to_end(index)
        return sample

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Every sample, freshly parsed, one at a time (a pass over a long run keeps none)."""
        for index in range(len(self._bodies)):
            yield self.parse(index)

    def nbytes(self) -> int:
        """The bytes of the samples' JSON kept."""
        return sum(map(len, self._bodies))


@dataclass
class Run:
    """One collector run in a recording: its samples (by sequence) and alert events, in file order."""

    samples: RecordedSamples = field(default_factory=RecordedSamples)
    alerts: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Recording:
    path: str
    runs: list[Run]
    skipped_torn_tail: bool = False


def load_recording(path: str) -> Recording:
    """Read a jsonl sink file. RecordingError for a missing, unreadable, empty or non-JSONL file.

    The sink appends, so one file may hold several runs: a sample whose sequence does not follow
    the previous one starts a new run. A last line without its newline (a writer killed
    mid-write) is skipped; any other line that is not a JSON object is an error.
    """
    shown = path
    if not os.path.exists(path):
        raise RecordingError(f"{shown}: no such file")
    if os.path.isdir(path):
        raise RecordingError(f"{shown} is a directory, not a jsonl recording")
    runs: list[Run] = []
    current: Run | None = None
    last_sequence: int | None = None
    skipped = False
    anything = False
    try:
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                anything = True
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    if not line.endswith(b"\n"):  # only the last line can lack one: a torn write
                        skipped = True
                        continue
                    raise RecordingError(f"{shown}: line {number} is not JSON: not a jsonl recording "
                                         "(raftctl serve --sink jsonl:PATH writes one)") from None
                if not isinstance(record, dict) or "type" not in record:
                    raise RecordingError(f"{shown}: line {number} is not a raftctl jsonl record "
                                         "(an object with a 'type')")
                kind = record.pop("type")
                if kind == "sample":
                    problem = _sample_problem(record)
                    if problem is not None:
                        raise RecordingError(f"{shown}: line {number}: {problem}")
                    sim_time, sequence = record["sim_time"], record["sequence"]
                    if current is None or last_sequence is None or sequence <= last_sequence \
                            or not current.samples or sim_time < current.samples.sim_times[-1]:
                        current = Run()
                        runs.append(current)
                    current.samples.add(record, line)
                    last_sequence = sequence
                elif kind == "alert":
                    if current is None:  # an alert before any sample: keep it for the first run
                        current = Run()
                        runs.append(current)
                    current.alerts.append(record)
                # other types: written by a newer raftctl; a replay shows what it knows
    except OSError as exc:
        raise RecordingError(f"cannot read {shown}: {exc.strerror or exc}") from None
    if not anything:
        raise RecordingError(f"{shown} is empty: nothing to replay")
    runs = [run for run in runs if run.samples]
    if not runs:
        raise RecordingError(f"{shown} holds no samples: nothing to replay")
    return Recording(path=path, runs=runs, skipped_torn_tail=skipped)


def _sample_problem(record: dict[str, Any]) -> str | None:
    """What makes a sample record unreplayable (what summary, watch and alerts would refuse),
    or None: sim_time a finite number, sequence an integer, cluster, performance and nodes
    objects, and every node's document an object."""
    missing = [key for key in ("sim_time", "sequence", "cluster", "performance", "nodes") if key not in record]
    if missing:
        return f"a sample needs sim_time, sequence, cluster, performance and nodes (no {', '.join(missing)})"
    if not number(record["sim_time"]):
        return f"a sample's sim_time must be a number of seconds, got {str(record['sim_time'])[:40]!r}"
    if isinstance(record["sequence"], bool) or not isinstance(record["sequence"], int):
        return f"a sample's sequence must be an integer, got {str(record['sequence'])[:40]!r}"
    for key in ("cluster", "performance", "nodes"):
        if not isinstance(record[key], dict):
            return f"a sample's {key} must be an object, got {type(record[key]).__name__}"
    for node_id, doc in record["nodes"].items():
        if not isinstance(doc, dict):
            return f"node {node_id[:40]!r}'s document must be an object, got {type(doc).__name__}"
    return None


def number(value: Any) -> bool:
    """A finite int or float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

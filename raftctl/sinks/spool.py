"""A bounded on-disk spool of undelivered events, one file per destination.

The webhook sink writes every notification here before it tries to send it and marks it done
once the receiver took it (or it expired, or the receiver refused it for good). A new sink on
the same directory and destination picks the undelivered ones up again, so nothing is lost
across a restart of raftctl. The file is append-only JSON lines (``add`` records with the
payload, ``done`` records with the outcome), compacted on open, on close and when it grows; a
line torn by a crash is skipped. Delivered keys are remembered for ``max_age`` so one event
is never queued twice.

A notification may report several events (the alerts of one group that changed in one
sample): its record lists their keys (``events``), and ``seen(event_key)`` answers for each of
them, so an event is never queued twice even inside another notification.

The spool directory defaults to ``$XDG_STATE_HOME/raftctl`` (else ``~/.local/state/raftctl``)
and nothing is written anywhere else. One process at a time owns a spool file (an ``flock`` on
``<file>.lock``); a second one falls back to memory and says so once.
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

__all__ = ["Spool", "SpoolRecord", "default_state_dir"]

log = logging.getLogger(__name__)


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/raftctl``, or ``~/.local/state/raftctl``."""
    state = os.environ.get("XDG_STATE_HOME")
    base = Path(state) if state and os.path.isabs(state) else Path.home() / ".local" / "state"
    return base / "raftctl"


@dataclass
class SpoolRecord:
    """One undelivered notification; ``attempts``/``timeouts``/``next_at`` live in memory only.

    ``events`` are the keys of the events it reports (just ``key`` for a single event).
    """

    key: str
    created: float
    payload: dict[str, Any]
    attempts: int = 0
    timeouts: int = 0
    next_at: float = 0.0  # time.monotonic() of the next attempt
    events: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.events:
            self.events = (self.key,)


class Spool:
    """FIFO of undelivered events with a durable copy in ``directory/filename``.

    ``directory=None`` keeps everything in memory. Not thread-safe; the owner locks.
    """

    def __init__(self, directory: Path | None, filename: str, *, max_events: int = 10_000,
                 max_age: float = 86_400.0, clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.filename = filename
        self.max_events = max_events
        self.max_age = max_age
        self.clock = clock
        self.pending: OrderedDict[str, SpoolRecord] = OrderedDict()
        self.finished: OrderedDict[str, tuple[float, str]] = OrderedDict()  # key -> (when, outcome)
        self.persistent = False
        self.kept_on_disk = False  # closed with its pending records in its file, for the next run
        self.torn_lines = 0
        self.overflowed = 0          # notifications pushed out of a full spool
        self.overflowed_events = 0   # the events they reported
        self._owner: dict[str, str] = {}              # event key -> key of the record reporting it
        self._events: dict[str, tuple[str, ...]] = {}  # record key -> its event keys (several only)
        self._file: Any = None
        self._lock_file: Any = None
        self._lines = 0
        self._dirty = False

    @property
    def path(self) -> Path | None:
        return None if self.directory is None else self.directory / self.filename

    # ------------------------------------------------------------------ lifecycle

    def open(self) -> None:
        """Take the lock, load what a previous run left and compact the file."""
        if self.directory is None or self._file is not None:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            lock_file = open(self.directory / (self.filename + ".lock"), "a+b")  # noqa: SIM115 - held while open
        except OSError as err:
            log.warning("spool %s unusable (%s); undelivered events are kept in memory only",
                        self.directory, err.strerror or err)
            return
        try:
            import fcntl

            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # not POSIX: no lock
            pass
        except OSError:
            lock_file.close()
            log.warning("spool %s is in use by another raftctl process; this one keeps its "
                        "undelivered events in memory only", self.path)
            return
        self._lock_file = lock_file
        self._load()
        self._rewrite()
        self.persistent = self._file is not None

    def close(self) -> None:
        """Compact (removing the file when nothing is left to remember) and release the lock."""
        if self._file is not None:
            self._rewrite(final=True)
            self.kept_on_disk = bool(self.pending) and self.path is not None and self.path.exists()
            if self._file is not None:
                self._file.close()
                self._file = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None
        self.persistent = False

    # ------------------------------------------------------------------ queue

    def seen(self, key: str) -> str | None:
        """"pending", the outcome of a finished one ("delivered", ...), or None: for a
        notification's key or for the key of any event a notification reports."""
        key = self._owner.get(key, key)
        if key in self.pending:
            return "pending"
        done = self.finished.get(key)
        return done[1] if done else None

    def events_pending(self) -> int:
        """How many events the pending notifications report."""
        return sum(len(record.events) for record in self.pending.values())

    def add(self, key: str, payload: dict[str, Any], events: tuple[str, ...] | list[str] = ()) -> bool:
        """Queue one notification reporting ``events`` (default: the single event ``key``);
        False (and nothing written) when its key or one of its events is pending or done.

        A full spool drops its oldest notification (counted in ``overflowed``) to make room.
        """
        reported = tuple(events) or (key,)
        if self.seen(key) is not None or any(self.seen(event) is not None for event in reported):
            return False
        now = self.clock()
        while len(self.pending) >= self.max_events:
            old_key, old = self.pending.popitem(last=False)
            self.overflowed += 1
            self.overflowed_events += len(old.events)
            self._finish(old_key, "overflowed", now)
        self.pending[key] = SpoolRecord(key=key, created=now, payload=payload, events=reported)
        self._index(key, reported)
        line: dict[str, Any] = {"op": "add", "key": key, "t": now, "payload": payload}
        if reported != (key,):
            line["events"] = list(reported)
        # flushed to the OS at once (a killed raftctl loses nothing); fsync'd by sync_handle()
        self._append(line, sync=False)
        self._dirty = True
        return True

    def _index(self, key: str, events: tuple[str, ...]) -> None:
        if events == (key,):
            return
        self._events[key] = events
        for event in events:
            self._owner[event] = key

    def _unindex(self, key: str) -> None:
        for event in self._events.pop(key, ()):
            if self._owner.get(event) == key:
                del self._owner[event]

    def sync_handle(self) -> int | None:
        """A duplicate descriptor to fsync outside the owner's lock when adds are not yet on
        disk (the caller fsyncs and closes it), else None."""
        if not self._dirty or self._file is None:
            return None
        self._dirty = False
        try:
            return os.dup(self._file.fileno())
        except OSError:
            return None

    def head(self) -> SpoolRecord | None:
        return next(iter(self.pending.values()), None)

    def finish(self, key: str, outcome: str) -> None:
        """Take ``key`` off the queue with ``outcome`` (delivered, expired, rejected)."""
        if self.pending.pop(key, None) is not None:
            self._finish(key, outcome, self.clock())

    def _finish(self, key: str, outcome: str, now: float) -> None:
        self.finished[key] = (now, outcome)
        self.finished.move_to_end(key)
        self._forget_old(now)
        self._append(self._done_line(key, now, outcome), sync=False)
        if self._lines > max(1000, 4 * (len(self.pending) + len(self.finished))):
            self._rewrite()

    def _forget_old(self, now: float) -> None:
        limit = 2 * self.max_events
        while self.finished:
            key, (when, _outcome) = next(iter(self.finished.items()))
            if now - when <= self.max_age and len(self.finished) <= limit:
                break
            del self.finished[key]
            if key not in self.pending:
                self._unindex(key)

    def _done_line(self, key: str, when: float, outcome: str) -> dict[str, Any]:
        line: dict[str, Any] = {"op": "done", "key": key, "t": when, "outcome": outcome}
        if key in self._events:
            line["events"] = list(self._events[key])
        return line

    # ------------------------------------------------------------------ file

    def _append(self, record: dict[str, Any], sync: bool) -> None:
        if self._file is None:
            return
        try:
            self._file.write(orjson.dumps(record) + b"\n")
            self._file.flush()
            if sync:
                os.fsync(self._file.fileno())
            self._lines += 1
        except OSError as err:
            log.warning("spool %s: write failed (%s); keeping events in memory only",
                        self.path, err.strerror or err)
            self._drop_file()

    def _drop_file(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass
        self._file = None
        self.persistent = False

    def _load(self) -> None:
        path = self.path
        assert path is not None
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as err:
            log.warning("spool %s unreadable (%s); starting empty", path, err.strerror or err)
            return
        for line in raw.split(b"\n"):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
                op, key, when = record["op"], str(record["key"]), float(record["t"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                self.torn_lines += 1  # a write cut short by a crash
                continue
            events = record.get("events")
            reported = (tuple(str(e) for e in events) if isinstance(events, list) and events
                        else (key,))  # a single-event record (also every earlier version's)
            if op == "add" and isinstance(record.get("payload"), dict):
                if key not in self.finished:
                    self.pending[key] = SpoolRecord(key=key, created=when, payload=record["payload"],
                                                    events=reported)
                    self._index(key, reported)
            elif op == "done":
                self.pending.pop(key, None)
                self.finished[key] = (when, str(record.get("outcome", "delivered")))
                self._index(key, reported)
        self._forget_old(self.clock())

    def _rewrite(self, final: bool = False) -> None:
        """Replace the file with only what still matters (atomic rename)."""
        path = self.path
        if path is None or self._lock_file is None:
            return
        if self._file is not None:
            self._file.close()
            self._file = None
        if final and not self.pending and not self.finished:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass
            return
        lines = [orjson.dumps({"op": "add", "key": r.key, "t": r.created, "payload": r.payload}
                              | ({"events": list(r.events)} if r.events != (r.key,) else {}))
                 for r in self.pending.values()]
        lines += [orjson.dumps(self._done_line(key, when, outcome))
                  for key, (when, outcome) in self.finished.items()]
        tmp = path.with_name(path.name + ".tmp")
        try:
            with open(tmp, "wb") as handle:
                handle.write(b"".join(line + b"\n" for line in lines))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
            self._lines = len(lines)
            if not final:
                self._file = open(path, "ab")  # noqa: SIM115 - the append handle lives until close()
        except OSError as err:
            log.warning("spool %s: cannot write (%s); keeping events in memory only",
                        path, err.strerror or err)
            self._file = None
            self.persistent = False

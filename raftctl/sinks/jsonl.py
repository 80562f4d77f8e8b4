"""``jsonl:PATH`` sink: one JSON object per line per sample and per alert event."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import orjson

from raftctl.sinks.base import Sink

__all__ = ["JsonlSink", "JsonlWriteError"]

log = logging.getLogger(__name__)

# A failing file (a full disk, /dev/full) fails on every event: one log line per this many seconds.
FAILURE_LOG_SECONDS = 60.0


class JsonlWriteError(OSError):
    """A line that could not be written. Already logged (rate limited) and counted by the sink."""

    reported = True  # SinkWorker counts it without logging a traceback of its own


class JsonlSink(Sink):
    """Append ``{"type": "sample"|"alert", ...}`` lines to a file.

    Each line is written with a single ``os.write`` on an ``O_APPEND`` descriptor (no user-space
    buffer). A failed or short write (a full disk) is cut back off the file at once, so a later
    line never lands glued to half a record. Linux can still stop a writer killed with SIGKILL
    part-way through a write that spans memory pages (long lines); whoever opens the file next
    with this sink finds such a torn tail and cuts it back to the last whole line (and counts
    the bytes in ``torn_bytes_repaired``), so the file holds only whole lines again.

    The sink follows its path, as logging's ``WatchedFileHandler`` does: before each line it
    compares the path's device and inode with the open file's (one ``stat``), and when the file
    was deleted or rotated away (``mv run.jsonl run.jsonl.1``) it closes it and opens PATH again,
    creating it, so no line goes into an unlinked or renamed file. While PATH cannot be opened
    (its directory removed) every line is counted in ``failed`` (logged as above, never a line
    per sample) and each later line tries again: writing resumes once the directory is back.
    The sink never creates directories and never writes anywhere but PATH.
    """

    name = "jsonl"
    spec_syntax = "jsonl:PATH"
    description = "append one JSON object per sample and per alert event to PATH"

    def __init__(self, arg: str | None = None, fsync: bool = False, **options: Any) -> None:
        super().__init__(arg, **options)
        if not arg:
            raise ValueError("jsonl sink needs a file path: jsonl:PATH")
        path = os.path.abspath(os.path.expanduser(arg))
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            raise ValueError(f"jsonl sink: directory {directory!r} does not exist")
        if os.path.isdir(path):
            raise ValueError(f"jsonl sink: {path!r} is a directory, not a file")
        if os.path.exists(path):
            if not os.access(path, os.W_OK):
                raise ValueError(f"jsonl sink: {path!r} is not writable")
        elif not os.access(directory, os.W_OK | os.X_OK):
            raise ValueError(f"jsonl sink: directory {directory!r} is not writable")
        try:
            # a real open (creating the file) is the only test that also holds for root and
            # read-only mounts, where os.access says yes
            os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
        except OSError as exc:
            raise ValueError(f"jsonl sink: cannot write {path!r}: {exc.strerror}") from exc
        self.path = path
        self.fsync = fsync
        self.lines_written = 0
        self.torn_bytes_repaired = 0
        self.failed = 0  # lines not written (each also raised as JsonlWriteError)
        self.reopened = 0  # times PATH was opened again (the file deleted or rotated away)
        self.last_error: str | None = None
        self._lost_since_written = 0  # failed lines since the last line written (for the resume line)
        self._failures_logged = 0  # self.failed when the last failure line was logged
        self._failure_logged_at: float | None = None
        self._fd: int | None = None
        self._opened = False  # between open() and close(); _fd is None while PATH cannot be opened
        self._lock = threading.Lock()

    def open(self) -> None:
        with self._lock:
            if self._fd is None:
                try:
                    self._fd = self._open_path()
                except OSError as exc:
                    raise ValueError(f"jsonl sink: cannot open {self.path!r}: {exc.strerror}") from exc
            self._opened = True

    def _open_path(self) -> int:
        """Open (creating) PATH for appending, cut back any torn tail; OSError if it cannot."""
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            self._repair_torn_tail(fd)
        except OSError:
            os.close(fd)
            raise
        return fd

    def _current_fd(self) -> tuple[int, int]:
        """Under the lock: the descriptor of the file PATH names now, and that file's size.

        Reopens PATH when the open file is no longer the one it names; OSError when PATH cannot
        be opened (then nothing is open, and the next line tries again).
        """
        fd = self._fd
        if fd is not None:
            opened = os.fstat(fd)
            try:
                named = os.stat(self.path)
            except OSError:
                named = None  # deleted, or its directory removed
            if named is not None and (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino):
                return fd, opened.st_size
            self._fd = None
            os.close(fd)  # rotated or deleted: stop writing there (and let a deleted one's space go)
        fd = self._open_path()
        self._fd = fd
        self.reopened += 1
        return fd, os.fstat(fd).st_size

    def _repair_torn_tail(self, fd: int) -> None:
        """Cut a half-written last line (left by a writer killed mid-write) back to the last newline."""
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return
        end = size
        chunk = 65536
        while end > 0:
            start = max(0, end - chunk)
            block = os.pread(fd, end - start, start)
            cut = block.rfind(b"\n")
            if cut >= 0:
                keep = start + cut + 1
                break
            end = start
        else:
            keep = 0
        os.ftruncate(fd, keep)
        self.torn_bytes_repaired += size - keep

    def _write(self, record: dict) -> None:
        line = orjson.dumps(record) + b"\n"
        with self._lock:
            if not self._opened:
                raise RuntimeError("jsonl sink is not open")
            try:
                fd, before = self._current_fd()
                try:
                    written = os.write(fd, line)
                except OSError:
                    self._cut_back(fd, before)
                    raise
                if written != len(line):
                    # a full disk: take the partial line back out so the next line starts clean
                    self._cut_back(fd, before)
                    raise OSError(f"short write to {self.path}: {written} of {len(line)} bytes")
                if self.fsync:
                    os.fsync(fd)
            except OSError as exc:
                raise self._failure(exc) from None
            self.lines_written += 1
            if self._lost_since_written:
                log.info("jsonl sink: writing %s again (%d line%s lost)", self.path, self._lost_since_written,
                         "" if self._lost_since_written == 1 else "s")
                self._lost_since_written = 0

    def _failure(self, exc: OSError) -> JsonlWriteError:
        """Count a line that was not written; log one line about it at most every FAILURE_LOG_SECONDS."""
        self.failed += 1
        self._lost_since_written += 1
        reason = exc.strerror or str(exc)
        self.last_error = reason
        now = time.monotonic()
        if self._failure_logged_at is None or now - self._failure_logged_at >= FAILURE_LOG_SECONDS:
            since = self.failed - self._failures_logged
            log.warning("jsonl sink: cannot write %s: %s (%d line%s lost since the last report, %d in all)",
                        self.path, reason, since, "" if since == 1 else "s", self.failed)
            self._failure_logged_at = now
            self._failures_logged = self.failed
        error = JsonlWriteError(exc.errno, f"{reason} (writing {self.path})") if exc.errno else JsonlWriteError(reason)
        return error

    @staticmethod
    def _cut_back(fd: int, size: int) -> None:
        try:
            if os.fstat(fd).st_size > size:
                os.ftruncate(fd, size)
        except OSError:
            pass  # e.g. /dev/full: nothing was written there anyway

    def emit_sample(self, sample: dict) -> None:
        self._write({"type": "sample", **sample})

    def emit_alert(self, alert: dict) -> None:
        self._write({"type": "alert", **alert})

    def close(self) -> None:
        with self._lock:
            self._opened = False
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def stats(self) -> dict[str, Any]:
        return {"path": self.path, "lines_written": self.lines_written, "failed": self.failed,
                "reopened": self.reopened, "last_error": self.last_error}

    def __repr__(self) -> str:
        return f"JsonlSink({self.path!r})"

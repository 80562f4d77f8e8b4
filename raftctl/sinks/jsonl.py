"""``jsonl:PATH`` sink: one JSON object per line per sample and per alert event."""

from __future__ import annotations

import os
import threading
from typing import Any

import orjson

from raftctl.sinks.base import Sink

__all__ = ["JsonlSink"]


class JsonlSink(Sink):
    """Append ``{"type": "sample"|"alert", ...}`` lines to a file.

    Each line is written with a single ``os.write`` on an ``O_APPEND`` descriptor (no user-space
    buffer). A failed or short write (a full disk) is cut back off the file at once, so a later
    line never lands glued to half a record. Linux can still stop a writer killed with SIGKILL
    part-way through a write that spans memory pages (long lines); whoever opens the file next
    with this sink finds such a torn tail and cuts it back to the last whole line (and counts
    the bytes in ``torn_bytes_repaired``), so the file holds only whole lines again.
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
        self._fd: int | None = None
        self._lock = threading.Lock()

    def open(self) -> None:
        with self._lock:
            if self._fd is None:
                try:
                    self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
                except OSError as exc:
                    raise ValueError(f"jsonl sink: cannot open {self.path!r}: {exc.strerror}") from exc
                self._repair_torn_tail()

    def _repair_torn_tail(self) -> None:
        """Cut a half-written last line (left by a writer killed mid-write) back to the last newline."""
        fd = self._fd
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
            if self._fd is None:
                raise RuntimeError("jsonl sink is not open")
            before = os.fstat(self._fd).st_size
            try:
                written = os.write(self._fd, line)
            except OSError:
                self._cut_back(before)
                raise
            if written != len(line):
                # a full disk: take the partial line back out so the next line starts clean
                self._cut_back(before)
                raise OSError(f"short write to {self.path}: {written} of {len(line)} bytes")
            if self.fsync:
                os.fsync(self._fd)
            self.lines_written += 1

    def _cut_back(self, size: int) -> None:
        try:
            if os.fstat(self._fd).st_size > size:
                os.ftruncate(self._fd, size)
        except OSError:
            pass  # e.g. /dev/full: nothing was written there anyway

    def emit_sample(self, sample: dict) -> None:
        self._write({"type": "sample", **sample})

    def emit_alert(self, alert: dict) -> None:
        self._write({"type": "alert", **alert})

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def stats(self) -> dict[str, Any]:
        return {"path": self.path, "lines_written": self.lines_written}

    def __repr__(self) -> str:
        return f"JsonlSink({self.path!r})"

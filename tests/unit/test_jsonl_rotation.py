"""``jsonl:PATH`` follows its path, as logging's WatchedFileHandler does.

A file deleted or rotated away (``mv run.jsonl run.jsonl.1``, as logrotate does) while raftctl
runs is recreated at PATH instead of taking every later line into an unlinked inode; a removed
directory costs counted, logged-once lines until it is back. Lines are always whole, and
nothing is ever written anywhere but PATH.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import orjson
import pytest

from raftctl.sinks.base import SinkWorker
from raftctl.sinks.jsonl import JsonlSink, JsonlWriteError


def sample(sequence: int) -> dict:
    return {"timestamp": float(sequence), "sequence": sequence, "cluster": {"health_status": "HEALTHY"}}


def sequences(path: Path) -> list[int]:
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), "a half line"
    return [orjson.loads(line)["sequence"] for line in data.splitlines()]


def sink_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("raftctl.sinks")]


def fds_to_deleted_files() -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.endswith(" (deleted)") and ".jsonl" in target:
            found.append(target)
    return found


@pytest.fixture
def sink(tmp_path):
    (tmp_path / "logs").mkdir()
    made = JsonlSink(str(tmp_path / "logs" / "run.jsonl"))
    made.open()
    yield made
    made.close()


def test_a_deleted_file_is_created_again_at_its_path(sink, tmp_path):
    path = Path(sink.path)
    sink.emit_sample(sample(1))
    path.unlink()
    sink.emit_sample(sample(2))
    sink.emit_sample(sample(3))
    assert sequences(path) == [2, 3]
    assert sink.stats()["reopened"] == 1 and sink.failed == 0
    if os.path.isdir("/proc/self/fd"):
        assert fds_to_deleted_files() == [], "the deleted file is not held open"


def test_a_rotated_file_keeps_its_lines_and_new_ones_go_to_path(sink, tmp_path):
    path = Path(sink.path)
    for seq in (1, 2):
        sink.emit_sample(sample(seq))
    path.rename(path.with_name("run.jsonl.1"))  # logrotate without copytruncate
    for seq in (3, 4):
        sink.emit_sample(sample(seq))
    assert sequences(path.with_name("run.jsonl.1")) == [1, 2], "nothing more lands in the rotated file"
    assert sequences(path) == [3, 4]
    # logrotate's "create": a new empty file is already there when the next line comes
    path.rename(path.with_name("run.jsonl.2"))
    path.touch()
    sink.emit_alert({"name": "quorum_loss", "status": "firing", "sequence": 5})
    assert sequences(path) == [5] and sequences(path.with_name("run.jsonl.2")) == [3, 4]
    assert sink.stats()["reopened"] == 2


def test_copytruncate_needs_no_reopen(sink):
    path = Path(sink.path)
    sink.emit_sample(sample(1))
    with open(path, "r+b") as handle:  # logrotate copytruncate: same file, cut to zero
        handle.truncate(0)
    sink.emit_sample(sample(2))
    assert sequences(path) == [2] and sink.stats()["reopened"] == 0


def test_a_removed_directory_costs_counted_lines_logged_once_then_writing_resumes(sink, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="raftctl.sinks")
    path = Path(sink.path)
    sink.emit_sample(sample(1))
    shutil.rmtree(path.parent)
    for seq in range(2, 22):
        with pytest.raises(JsonlWriteError):
            sink.emit_sample(sample(seq))
    assert not path.parent.exists(), "the sink does not make directories"
    assert sink.failed == 20 and sink.stats()["failed"] == 20
    warnings = [r for r in sink_records(caplog) if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and str(path) in warnings[0].getMessage(), [r.getMessage() for r in warnings]
    assert warnings[0].exc_info is None
    path.parent.mkdir()
    sink.emit_sample(sample(22))
    sink.emit_sample(sample(23))
    assert sequences(path) == [22, 23]
    assert sink.failed == 20 and sink.lines_written == 3
    assert len([r for r in sink_records(caplog) if r.levelno >= logging.WARNING]) == 1
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["logs", "run.jsonl"], "nothing written elsewhere"


def test_a_torn_tail_in_the_file_found_at_path_is_cut_before_appending(sink):
    path = Path(sink.path)
    sink.emit_sample(sample(1))
    path.unlink()
    path.write_bytes(orjson.dumps(sample(7)) + b"\n" + b'{"type": "sample", "seq')
    sink.emit_sample(sample(8))
    assert sequences(path) == [7, 8]


def test_through_the_worker_the_failures_are_in_its_stats(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="raftctl.sinks")
    directory = tmp_path / "d"
    directory.mkdir()
    sink = JsonlSink(str(directory / "run.jsonl"))
    worker = SinkWorker(sink)
    worker.start()
    try:
        worker.submit("sample", sample(1))
        assert worker.wait_idle(5)
        shutil.rmtree(directory)
        for seq in range(2, 7):
            worker.submit("sample", sample(seq))
        assert worker.wait_idle(5)
        directory.mkdir()
        worker.submit("sample", sample(7))
        assert worker.wait_idle(5)
    finally:
        worker.close(5)
    stats = worker.stats()
    assert stats["failed"] == 5 and stats["errors"] == 5 and stats["delivered"] == 2, stats
    assert sequences(directory / "run.jsonl") == [7]
    assert not any(r.exc_info for r in sink_records(caplog)), "no traceback"

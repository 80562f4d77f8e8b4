"""``jsonl:/dev/full``: a write failure is counted and logged one line at a time, rate limited, never a traceback."""

from __future__ import annotations

import logging
import os

import pytest

from raftctl.sinks import jsonl as jsonl_module
from raftctl.sinks.base import SinkWorker
from raftctl.sinks.jsonl import JsonlSink

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")

SAMPLE = {"timestamp": 1.0, "sequence": 7, "cluster": {"health_status": "HEALTHY"}}


def sink_records(caplog):
    return [r for r in caplog.records if r.name.startswith("raftctl.sinks")]


def test_every_failed_sample_is_counted_but_logged_once_without_a_traceback(caplog):
    caplog.set_level(logging.DEBUG, logger="raftctl.sinks")
    sink = JsonlSink("/dev/full")
    worker = SinkWorker(sink)
    worker.start()
    try:
        for _ in range(50):
            worker.submit("sample", SAMPLE)
        assert worker.wait_idle(10)
    finally:
        worker.close(5)
    records = sink_records(caplog)
    assert len(records) == 1, [r.getMessage() for r in records]
    line = records[0].getMessage()
    assert records[0].exc_info is None and "\n" not in line
    assert "/dev/full" in line and "No space left on device" in line
    stats = worker.stats()
    assert stats["errors"] == 50 and stats["delivered"] == 0 and stats["failed"] == 50, stats
    assert "No space left on device" in stats["last_error"]


def test_a_later_report_says_how_many_lines_were_lost_since(caplog, monkeypatch):
    caplog.set_level(logging.WARNING, logger="raftctl.sinks")
    sink = JsonlSink("/dev/full")
    sink.open()
    try:
        for _ in range(5):
            with pytest.raises(OSError):
                sink.emit_sample(SAMPLE)
        assert len(sink_records(caplog)) == 1
        monkeypatch.setattr(jsonl_module, "FAILURE_LOG_SECONDS", 0.0)
        with pytest.raises(OSError, match="No space left on device"):
            sink.emit_alert({"name": "quorum_loss", "status": "firing"})
    finally:
        sink.close()
    lines = [r.getMessage() for r in sink_records(caplog)]
    assert len(lines) == 2 and "5 lines lost since the last report, 6 in all" in lines[1], lines
    assert sink.stats()["failed"] == 6 and sink.lines_written == 0


def test_collector_reports_the_failures_in_its_sample(caplog):
    from raftctl import Cluster, MetricsCollector

    caplog.set_level(logging.DEBUG, logger="raftctl")
    cluster = Cluster(node_count=3, seed=5)
    collector = MetricsCollector(collection_interval=1.0, retention_period=60, sinks=["jsonl:/dev/full"])
    collector.set_cluster(cluster)
    try:
        for _ in range(6):
            cluster.run_for(1.0)
            collector.collect()
        assert collector.flush(5)
        collector.collect()
        assert collector.latest()["collector"]["sink_delivery_failures"] >= 6
    finally:
        collector.stop(timeout=2)
    assert len(sink_records(caplog)) == 1
    assert not any(r.exc_info for r in caplog.records)

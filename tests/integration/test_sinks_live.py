"""Sinks fed by a collector sampling the real simulated cluster, with a live webhook receiver.

The receiver is stdlib HTTP on 127.0.0.1 (ephemeral port) and can answer normally, answer 500,
hang, or not exist at all; sampling must never wait for it.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import io
import socket
import threading
import time

import orjson
import pytest

from raftctl import Cluster, MetricsCollector
from raftctl.core.workload import Workload
from raftctl.sinks.jsonl import JsonlSink
from raftctl.sinks.stdout import StdoutSink
from raftctl.sinks.webhook import SIGNATURE_HEADER, WebhookSink

SEED = 5


class Receiver:
    """A webhook endpoint: mode "ok" records requests, "500" fails them, "hang" never answers."""

    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self.requests: list[tuple[dict, bytes]] = []
        self.hits = 0
        self.release = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.hits += 1
                if receiver.mode == "hang":
                    receiver.release.wait(30)
                    return
                if receiver.mode == "500":
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                receiver.requests.append((dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def free_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/hook"


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def boot(seed: int = SEED) -> Cluster:
    cluster = Cluster(node_count=5, seed=seed)
    Workload(cluster, rate=100.0, seed=seed)
    assert cluster.run_until(lambda: cluster.leader_id is not None, timeout=5.0), f"seed={seed}"
    return cluster


def outage_and_recovery(cluster, collector, durations: list | None = None) -> None:
    """Quorum loss for 3 s, then recovery; records each collect() duration."""

    def step() -> None:
        cluster.run_for(1.0)
        started = time.perf_counter()
        collector.collect()
        if durations is not None:
            durations.append(time.perf_counter() - started)

    step()
    victims = [n for n in cluster.node_ids if n != cluster.leader_id][:3]
    for victim in victims:
        cluster.crash(victim)
    for _ in range(3):
        step()
    for victim in victims:
        cluster.restart(victim)
    for _ in range(4):
        step()


def test_webhook_gets_alertmanager_payloads_for_firing_and_resolved(tmp_path):
    receiver = Receiver("ok")
    try:
        sink = WebhookSink(receiver.url, secret="hunter2", timeout=2.0, spool=str(tmp_path))
        cluster = boot()
        collector = MetricsCollector(sinks=[sink])
        collector.set_cluster(cluster)
        outage_and_recovery(cluster, collector)
        fired = collector.latest()["collector"]["alerts_fired"]
        resolved = collector.latest()["collector"]["alerts_resolved"]
        assert fired >= 2 and resolved == fired, f"seed={SEED}"
        assert collector.flush(10.0)
        collector.stop()
        # one post per changed group per sample: the three node_down alerts fire in one sample
        # and resolve in one, so there are fewer posts than events
        assert len(receiver.requests) == sink.stats()["notifications_delivered"] < fired + resolved
        by_status: dict[str, set[str]] = {"firing": set(), "resolved": set()}
        for headers, body in receiver.requests:
            assert headers["Content-Type"] == "application/json"
            expected = hmac.new(b"hunter2", body, hashlib.sha256).hexdigest()
            assert headers[SIGNATURE_HEADER] == f"sha256={expected}"
            payload = orjson.loads(body)
            assert payload["version"] == "4"
            assert set(payload) >= {"status", "receiver", "groupLabels", "commonLabels",
                                    "commonAnnotations", "externalURL", "alerts"}
            assert headers["Idempotency-Key"] == payload["idempotencyKey"]
            # each alertname is its own group here (one cluster); a per-node alert carries one per node
            names = {a["labels"]["alertname"] for a in payload["alerts"]}
            per_node = {"node_down", "node_isolated", "node_lagging", "stale_leader"}
            assert len(names) == 1 and (len(payload["alerts"]) == 1 or names <= per_node), names
            statuses = {a["status"] for a in payload["alerts"]}
            assert payload["status"] == ("firing" if "firing" in statuses else "resolved")
            for alert in payload["alerts"]:
                assert set(alert) >= {"status", "labels", "annotations", "startsAt", "endsAt",
                                      "fingerprint"}
                assert alert["labels"]["severity"] in {"critical", "warning"}
                assert payload["groupLabels"] == {"alertname": alert["labels"]["alertname"], "cluster": "raftctl"}
                if alert["status"] == "firing":
                    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
                else:
                    assert alert["endsAt"] >= alert["startsAt"]
                by_status[alert["status"]].add(alert["labels"]["alertname"])
        assert {"quorum_loss", "cluster_unhealthy"} <= by_status["firing"]
        assert by_status["firing"] == by_status["resolved"]
        assert sink.sent == fired + resolved and sink.failed == 0  # the figures count events
        keys = [orjson.loads(body)["idempotencyKey"] for _h, body in receiver.requests]
        assert len(set(keys)) == len(keys)  # one key per notification
        assert sum(len(key.split(",")) for key in keys) == fired + resolved  # naming every event once
    finally:
        receiver.close()


@pytest.mark.parametrize("mode", ["down", "hang", "500"])
def test_broken_webhook_never_delays_sampling(mode, tmp_path):
    receiver = None if mode == "down" else Receiver(mode)
    url = free_port_url() if receiver is None else receiver.url
    sink = WebhookSink(url, timeout=0.3, backoff=0.05, max_backoff=0.2, drain=0.2, spool=str(tmp_path))
    collector = MetricsCollector(sinks=[sink], max_sink_queue=100)
    try:
        cluster = boot()
        collector.set_cluster(cluster)
        durations: list[float] = []
        outage_and_recovery(cluster, collector, durations)
        # one hung POST with its retry would cost >= 0.6 s; sampling must not see any of it
        assert max(durations) < 0.25, f"seed={SEED} mode={mode} collect() took {max(durations):.3f}s"
        events = collector.latest()["collector"]["alerts_fired"] + collector.latest()["collector"]["alerts_resolved"]
        assert wait_for(lambda: sink.attempts_failed >= 2, timeout=15.0), f"mode={mode} {sink.stats()}"
        assert collector.flush(5.0)
        # nothing is given up on or pushed out: every event waits in the spool for the receiver
        stats = sink.stats()
        assert (stats["delivered"], stats["pending"], stats["expired"]) == (0, events, 0), stats
        assert collector.latest()["collector"]["sink_events_dropped"] == 0
        if mode != "down":
            assert receiver.hits >= 1
    finally:
        if receiver is not None:
            receiver.release.set()
        collector.stop(timeout=0.5)
        if receiver is not None:
            receiver.close()


def test_collector_jsonl_every_line_parses(tmp_path):
    path = tmp_path / "out" / "events.jsonl"
    path.parent.mkdir()
    stream = io.StringIO()
    cluster = boot()
    collector = MetricsCollector(sinks=[JsonlSink(str(path)), StdoutSink(None, stream=stream)])
    collector.set_cluster(cluster)
    outage_and_recovery(cluster, collector)
    collector.stop()
    records = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    samples = [r for r in records if r["type"] == "sample"]
    alerts = [r for r in records if r["type"] == "alert"]
    assert [r["sequence"] for r in samples] == list(range(1, collector.samples_collected + 1))
    doc = collector.latest()["collector"]
    assert len(alerts) == doc["alerts_fired"] + doc["alerts_resolved"]
    assert {a["status"] for a in alerts} == {"firing", "resolved"}
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[1] Healthy: 5/5, Leader: node")
    assert lines[0].endswith("Status: healthy")
    assert any(line.startswith("ALERT firing quorum_loss (critical)") for line in lines)


def test_sink_spec_strings_build_through_the_registry(tmp_path):
    path = tmp_path / "spec.jsonl"
    collector = MetricsCollector(sinks=[f"jsonl:{path}"])
    assert [type(s).__name__ for s in collector.sinks] == ["JsonlSink"]
    assert [type(s).__name__ for s in MetricsCollector(sinks="stdout").sinks] == ["StdoutSink"]
    with pytest.raises(ValueError, match="available sinks"):
        collector.add_sink("nope:1")
    with pytest.raises(ValueError, match="webhook"):
        MetricsCollector(sinks=["webhook:ftp://x"])
    with pytest.raises(ValueError, match="jsonl"):
        MetricsCollector(sinks=[f"jsonl:{tmp_path}/missing/x.jsonl"])

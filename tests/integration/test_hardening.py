"""The monitor under load and faults: many and slow HTTP clients, broken webhooks, a full disk,
a killed JSONL writer, bad JSONL directories and the collector's cadence under load.

Everything talks to 127.0.0.1 on ephemeral ports and waits on conditions with deadlines.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

from raftctl import Cluster, DashboardServer, MetricsCollector, Workload
from raftctl.sinks.jsonl import JsonlSink
from raftctl.sinks.webhook import WebhookSink

SEED = 31


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def sampled_cluster(seed: int = SEED, sinks=(), **collector_options):
    cluster = Cluster(node_count=5, seed=seed)
    Workload(cluster, rate=50.0, seed=seed)
    collector = MetricsCollector(collection_interval=1.0, retention_period=300, sinks=list(sinks), **collector_options)
    collector.set_cluster(cluster)
    assert cluster.run_until(lambda: cluster.leader_id is not None, timeout=5.0), f"seed={seed}"
    for _ in range(3):
        cluster.run_for(1.0)
        collector.collect()
    return cluster, collector


# ---- the dashboard under many and slow clients -------------------------------------------------


def test_dashboard_serves_200_concurrent_clients_while_slow_clients_hang_on():
    cluster, collector = sampled_cluster()
    server = DashboardServer(collector, port=0).start()
    host, port = "127.0.0.1", server.port
    slow: list[socket.socket] = []
    stop_dribble = threading.Event()
    try:
        for _ in range(20):  # connect and send nothing
            slow.append(socket.create_connection((host, port), timeout=5))

        def dribble(sock: socket.socket) -> None:  # headers one byte at a time
            for byte in b"GET /api/summary HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10_000:
                if stop_dribble.wait(0.05):
                    return
                try:
                    sock.send(bytes([byte]))
                except OSError:
                    return

        dribblers = []
        for _ in range(10):
            sock = socket.create_connection((host, port), timeout=5)
            slow.append(sock)
            thread = threading.Thread(target=dribble, args=(sock,), daemon=True)
            thread.start()
            dribblers.append(thread)

        errors: list[str] = []
        ok = [0]
        lock = threading.Lock()
        start = threading.Barrier(200)

        def client(i: int) -> None:
            start.wait(timeout=30)
            conn = http.client.HTTPConnection(host, port, timeout=10)
            try:
                for j in range(5):
                    paths = ("/api/summary", "/api/health", "/metrics", "/api/alerts", "/api/metrics/history?duration=10")
                    path = paths[(i + j) % 5]
                    conn.request("GET", path)
                    response = conn.getresponse()
                    body = response.read()
                    if response.status != 200 or not body:
                        raise AssertionError(f"{path} -> {response.status}")
                    with lock:
                        ok[0] += 1
            except Exception as exc:  # collected: one failing client must not hide the others
                with lock:
                    errors.append(f"client {i}: {type(exc).__name__}: {exc}")
            finally:
                conn.close()

        clients = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(200)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(timeout=60)
        assert not errors, f"{len(errors)} client errors, e.g. {errors[:3]}"
        assert ok[0] == 1000
        # the server still answers a fresh client while the slow ones are connected
        conn = http.client.HTTPConnection(host, port, timeout=5)
        conn.request("GET", "/api/health")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        stop_dribble.set()
        for sock in slow:
            sock.close()
        server.stop()


# ---- webhook sink: dead, erroring, hanging, then recovering ------------------------------------


class Receiver:
    """A stdlib webhook receiver whose behaviour the test switches: ok, 500 or hang."""

    def __init__(self, port: int = 0) -> None:
        self.mode = "ok"
        self.received: list[dict] = []
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.mode == "hang":
                    receiver.release.wait(10)
                    return
                if receiver.mode == "500":
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                receiver.received.append(orjson.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def flap_quorum(cluster: Cluster, collector: MetricsCollector, rounds: int) -> list[float]:
    """Lose and regain quorum ``rounds`` times; each round fires and resolves alerts.
    Returns how long each collect() took (wall seconds)."""
    took = []
    for _ in range(rounds):
        victims = cluster.node_ids[:3]
        for nid in victims:
            cluster.crash(nid)
        cluster.run_for(1.0)
        t0 = time.perf_counter()
        collector.collect()
        took.append(time.perf_counter() - t0)
        for nid in victims:
            cluster.restart(nid)
        cluster.run_until(lambda: cluster.leader_id is not None, timeout=5.0)
        cluster.run_for(1.0)
        t0 = time.perf_counter()
        collector.collect()
        took.append(time.perf_counter() - t0)
    return took


@pytest.mark.parametrize("failure", ["dead", "500", "hang"])
def test_broken_webhook_never_delays_sampling_and_recovery_delivers_everything(failure):
    # issue 16 defect 3: the old sink gave up after 3 retries and lost every event of the outage
    receiver = None
    if failure == "dead":
        # a port nobody listens on (yet): take one and close it
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
        probe.close()
        url = f"http://127.0.0.1:{dead_port}/hook"
    else:
        receiver = Receiver()
        receiver.mode = failure
        url = receiver.url
    sink = WebhookSink(url, timeout=0.5, backoff=0.05, max_backoff=0.3, drain=0.5)
    cluster, collector = sampled_cluster(sinks=[sink], max_sink_queue=4)
    try:
        took = flap_quorum(cluster, collector, rounds=4)
        # each round fires and resolves quorum_loss, cluster_unhealthy and low_healthy_nodes
        assert max(took) < 0.25, f"{failure}: a sample waited on the webhook ({max(took):.3f}s)"
        wait_for(lambda: sink.attempts_failed >= 2, 10, f"{failure}: failed attempts")
        assert collector.flush(10)
        doc = collector.collect()["collector"]
        produced = doc["alerts_fired"] + doc["alerts_resolved"]
        # nothing given up on, nothing pushed out of the queue: it all waits in the spool
        stats = sink.stats()
        assert (stats["pending"], stats["expired"], sink.failed) == (produced, 0, 0), stats
        assert doc["sink_events_dropped"] == 0, doc

        # recovery: the receiver starts answering (the dead one comes up on its port)
        if receiver is None:
            receiver = Receiver(dead_port)
        receiver.release.set()
        receiver.mode = "ok"
        wait_for(lambda: sink.stats()["pending"] == 0, 15, f"{failure}: the spool to drain")
        # one POST per changed group per sample, its key naming every event it carries: every
        # event delivered (a hung receiver may get a retry's copy of a notification)
        keys = {key for doc in receiver.received for key in doc["idempotencyKey"].split(",")}
        assert len(keys) == produced == sink.stats()["delivered"], (len(keys), produced, sink.stats())
        # and later events still flow
        before = len(receiver.received)
        victims = cluster.node_ids[:3]
        for nid in victims:
            cluster.crash(nid)
        cluster.run_for(1.0)
        collector.collect()
        for nid in victims:
            cluster.restart(nid)
        cluster.run_until(lambda: cluster.leader_id is not None, timeout=5.0)
        cluster.run_for(1.0)
        collector.collect()
        assert collector.flush(10) and sink.wait_delivered(10), f"{failure}: sink did not drain after recovery"
        delivered = receiver.received[before:]
        names = {(a["labels"]["alertname"], a["status"]) for doc in delivered for a in doc["alerts"]}
        assert ("quorum_loss", "firing") in names and ("quorum_loss", "resolved") in names, names
    finally:
        collector.stop(timeout=2)
        if receiver is not None:
            receiver.close()


# ---- JSONL: a full disk, kill -9 mid-write, bad directories ------------------------------------


def test_full_disk_for_jsonl_is_counted_and_collection_continues():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")  # Linux always has it
    cluster, collector = sampled_cluster(sinks=["jsonl:/dev/full"])
    try:
        for _ in range(5):
            cluster.run_for(1.0)
            collector.collect()
        assert collector.flush(5)
        stats = collector.sink_stats()[0]
        assert stats["errors"] >= 5 and stats["delivered"] == 0, stats
        assert collector.samples_collected >= 8 and collector.collect_errors == 0
        assert collector.latest()["collector"]["sink_errors"] >= 4
    finally:
        collector.stop(timeout=2)


WRITER = textwrap.dedent("""
    import sys
    from raftctl.sinks.jsonl import JsonlSink
    sink = JsonlSink(sys.argv[1])
    sink.open()
    big = "x" * 20000
    i = 0
    while True:
        i += 1
        sink.emit_sample({"sequence": i, "padding": big, "nodes": {"node1": {"term": i}}})
""")


def test_jsonl_after_kill_9_of_the_writer_has_only_whole_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)])
    try:
        wait_for(lambda: path.exists() and path.stat().st_size > 3_000_000, 30, "the writer to write 3 MB")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    data = path.read_bytes()
    # Linux may stop a SIGKILLed writer part-way through a multi-page write: at most the last
    # line can be torn, and every line before it is whole.
    whole = data[: data.rfind(b"\n") + 1]
    lines = whole.split(b"\n")[:-1]
    assert len(lines) > 100
    sequences = [orjson.loads(line)["sequence"] for line in lines]
    assert sequences == list(range(1, len(lines) + 1))
    # The next writer to open the file cuts a torn tail back, so the file is whole lines again.
    sink = JsonlSink(str(path))
    sink.open()
    sink.emit_sample({"sequence": len(lines) + 1})
    sink.close()
    repaired = path.read_bytes()
    assert repaired.startswith(whole) and repaired.endswith(b"\n")
    assert sink.torn_bytes_repaired == len(data) - len(whole)
    after = [orjson.loads(line)["sequence"] for line in repaired.split(b"\n")[:-1]]
    assert after == list(range(1, len(lines) + 2))


def test_jsonl_short_write_is_cut_back_so_the_next_line_starts_clean(tmp_path, monkeypatch):
    path = tmp_path / "m.jsonl"
    sink = JsonlSink(str(path))
    sink.open()
    sink.emit_sample({"sequence": 1})
    real_write = os.write

    def half_write(fd, data):
        return real_write(fd, data[: len(data) // 2])

    monkeypatch.setattr(os, "write", half_write)
    with pytest.raises(OSError, match="short write"):
        sink.emit_sample({"sequence": 2, "padding": "y" * 100})
    monkeypatch.setattr(os, "write", real_write)
    sink.emit_sample({"sequence": 3})
    sink.close()
    assert [orjson.loads(line)["sequence"] for line in path.read_bytes().splitlines()] == [1, 3]


def test_jsonl_missing_or_read_only_directory_is_a_clear_error_at_construction(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        JsonlSink(str(tmp_path / "no" / "such" / "dir" / "m.jsonl"))
    # /proc refuses new files even for root, where permission bits would not
    with pytest.raises(ValueError, match="(not writable|cannot write)"):
        JsonlSink("/proc/raftctl-test.jsonl")
    with pytest.raises(ValueError, match="jsonl"):
        MetricsCollector(sinks=[f"jsonl:{tmp_path}/missing/m.jsonl"])


# ---- the collector's cadence while the cluster runs paced and the server is hammered ----------


def test_collector_keeps_its_interval_under_load():
    cluster = Cluster(node_count=5, seed=SEED)
    Workload(cluster, rate=200.0, seed=SEED)
    collector = MetricsCollector(collection_interval=0.1, retention_period=60)
    collector.set_cluster(cluster)
    server = DashboardServer(collector, port=0)
    stop = threading.Event()
    hits = [0]

    def hammer() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        while not stop.is_set():
            conn.request("GET", "/api/summary")
            conn.getresponse().read()
            hits[0] += 1
        conn.close()

    cluster.start(speed=1.0)
    collector.start()
    server.start()
    threads = [threading.Thread(target=hammer, daemon=True) for _ in range(8)]
    try:
        for thread in threads:
            thread.start()
        wait_for(lambda: collector.samples_collected >= 31, 20, "31 samples")
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
        collector.stop()
        server.stop()
        cluster.stop()
    stamps = [s["timestamp"] for s in collector.history(duration=None)]
    intervals = [b - a for a, b in zip(stamps[1:], stamps[2:])]  # the first one includes start-up
    offsets = sorted(abs(i - 0.1) for i in intervals)
    assert hits[0] > 100
    # Starving the collector would push many intervals out and miss many ticks. One late wake-up
    # is the OS's doing on a 2-core CI machine running another test beside this one (CI once saw
    # one of 250 ms: 3 ticks missed), so at most 3 missed ticks of the ~31, the second worst
    # interval is held to 50 ms and the worst to 300 ms.
    assert collector.missed_ticks <= 3, f"{collector.missed_ticks} ticks missed under load"
    assert offsets[-2] <= 0.05, f"collector interval off by {offsets[-2] * 1000:.1f} ms under load (2nd worst)"
    assert offsets[-1] <= 0.3, f"collector interval off by {offsets[-1] * 1000:.1f} ms under load"

"""The HTTP-client commands (summary, watch, alerts) as subprocesses against a stub server.

The stub serves contract-shaped documents (docs/CONTRACTS.md) on 127.0.0.1, an ephemeral port,
so these tests pin the CLI's side of the API without needing the simulator.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

RAFTCTL = [sys.executable, "-m", "raftctl"]


def make_summary(health: str = "HEALTHY", alerts: list | None = None, nodes: int = 5, sequence: int = 7) -> dict:
    down = {"HEALTHY": 0, "DEGRADED": 1, "UNHEALTHY": 3}[health]
    node_docs = {}
    for i in range(1, nodes + 1):
        up = i > down
        node_docs[f"node{i}"] = {
            "state": ("LEADER" if i == nodes else "FOLLOWER") if up else "DOWN",
            "commit_index": 120 if up else 0, "last_applied": 120 if up else 0, "log_length": 120,
            "peers_connected": nodes - 1 - down if up else 0, "term": 3, "up": up,
            "replication_lag": 0, "state_digest": "ab12cd34ef" if up else None,
        }
    leader = None if health == "UNHEALTHY" else f"node{nodes}"
    return {
        "timestamp": time.time() - 1.0, "sim_time": 12.0, "sequence": sequence,  # a live server's newest
        "cluster": {"cluster_size": nodes, "healthy_nodes": nodes - down, "leader_node": leader,
                    "leader": leader, "health_status": health, "current_term": 3,
                    "consensus_aligned": True, "has_quorum": health != "UNHEALTHY",
                    "leader_changes": 1, "health_reasons": []},
        "performance": {"total_orders": 1200, "total_trades": 340, "throughput_ops": 101.0,
                        "avg_latency_ms": 12.5, "p50_latency_ms": 11.0, "p99_latency_ms": 30.2,
                        "commit_apply_lag": 0},
        "nodes": node_docs,
        "alerts": alerts or [],
        "collector": {"collection_interval": 1.0, "retention_period": 300, "samples_retained": 12,
                      "sink_events_dropped": 0, "collection_ms": 0.2},
    }


def alert(name: str, severity: str = "critical", status: str = "firing", started: float = 100.0,
          resolved: float | None = None) -> dict:
    return {"name": name, "severity": severity, "status": status, "fingerprint": f"fp-{name}",
            "labels": {}, "message": f"{name} happened", "started_at": started, "resolved_at": resolved}


class Stub:
    """A tiny API server whose documents the test changes between CLI runs."""

    def __init__(self) -> None:
        self.summary: dict | None = make_summary()
        self.resolved: list[dict] = []
        self.raw_summary: bytes | None = None
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                path = self.path.split("?")[0]
                if path == "/api/summary":
                    if stub.raw_summary is not None:
                        return self._send(200, stub.raw_summary)
                    if stub.summary is None:
                        return self._send(503, b'{"error": "no sample collected yet", "status": 503}')
                    return self._send(200, json.dumps(stub.summary).encode())
                if path == "/api/metrics/history":
                    samples = [make_summary(sequence=s) for s in range(1, 7)]
                    for i, s in enumerate(samples):
                        s["performance"]["throughput_ops"] = 10.0 * i
                    return self._send(200, json.dumps({"duration": 60, "interval": 1.0, "samples": samples}).encode())
                if path == "/api/alerts":
                    active = (stub.summary or {}).get("alerts", [])
                    return self._send(200, json.dumps({"active": active, "resolved": stub.resolved}).encode())
                return self._send(404, b'{"error": "not found", "status": 404}')

            def _send(self, status, body):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Receiver:
    """A webhook receiver recording every POSTed JSON body."""

    def __init__(self, hold: threading.Event | None = None) -> None:
        """``hold``: answer each POST only once it is set (a receiver that is slow to answer)."""
        self.bodies: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                if hold is not None:
                    hold.wait(60)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def stub():
    server = Stub()
    yield server
    server.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(*args: str, env: dict | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120"}
    full_env.pop("RAFTCTL_URL", None)
    full_env.update(env or {})
    proc = subprocess.run([*RAFTCTL, *args], capture_output=True, text=True, timeout=timeout, env=full_env,
                          check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def assert_one_line_error(proc: subprocess.CompletedProcess, code: int, *fragments: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# -- summary -------------------------------------------------------------------------------

def test_summary_json_is_exactly_the_api_document(stub):
    doc = make_summary()
    stub.raw_summary = json.dumps(doc, indent=1).encode()
    proc = run("summary", "--url", stub.url, "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip("\n") == stub.raw_summary.decode()
    assert json.loads(proc.stdout) == doc


def test_summary_readable_names_every_node_and_the_health(stub):
    proc = run("summary", "--url", stub.url)
    assert proc.returncode == 0, proc.stderr
    assert "HEALTHY" in proc.stdout
    for i in range(1, 6):
        assert f"node{i}" in proc.stdout


def test_summary_in_a_pipe_cuts_no_number(stub):
    # a long-running cluster's indexes and a DOWN node's reason: the digest gives way, not they
    doc = make_summary("DEGRADED")  # node1 DOWN
    for node in doc["nodes"].values():
        node.update(commit_index=102_244, last_applied=102_244, log_length=17_224)
    doc["nodes"]["node1"].update(down_reason="timeout")
    stub.summary = doc
    proc = run("summary", "--url", stub.url, env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    assert "…" not in proc.stdout, proc.stdout
    assert proc.stdout.count("102,244") == 10 and "DOWN (timeout)" in proc.stdout, proc.stdout
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80, proc.stdout


def test_summary_uses_raftctl_url_env(stub):
    proc = run("summary", "--json", env={"RAFTCTL_URL": stub.url})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["cluster"]["cluster_size"] == 5


def test_summary_before_first_sample_is_a_clear_error(stub):
    stub.summary = None
    assert_one_line_error(run("summary", "--url", stub.url), 1, "no sample yet")


def test_summary_unreachable_and_malformed_url():
    assert_one_line_error(run("summary", "--url", f"http://127.0.0.1:{closed_port()}"), 1, "cannot reach")
    for bad in ("ftp://x", "http://host:99999"):  # the other shapes: tests/unit/test_cli_logic.py
        assert_one_line_error(run("summary", "--url", bad), 2, "--url")


def test_summary_of_a_server_that_is_not_raftctl(stub):
    stub.raw_summary = b"<html>hello</html>"
    assert_one_line_error(run("summary", "--url", stub.url, "--json"), 1, "JSON")
    # JSON, but not a summary: some other server, not a raftctl one before its first sample
    for other in (b'{"hello": 1}', b'{}', b'{"error": "forbidden"}'):
        stub.raw_summary = other
        for command in (("summary",), ("watch", "--once")):
            assert_one_line_error(run(*command, "--url", stub.url), 1, "is this a raftctl server?")


def test_a_port_that_does_not_speak_http_is_a_bad_answer_unknown_for_nagios():
    """Another service on the port (an SSH banner): a clear line, and for `alerts` 3 UNKNOWN, not
    the 1 (WARNING) of an internal error."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()

    def banner() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")

    thread = threading.Thread(target=banner, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        for command in (("summary",), ("watch", "--once")):
            assert_one_line_error(run(*command, "--url", url), 1, "did not answer in HTTP")
        proc = run("alerts", "--url", url)
        assert proc.returncode == 3, (proc.stdout, proc.stderr)
        assert proc.stdout.startswith("RAFTCTL UNKNOWN - ") and "internal error" not in proc.stdout + proc.stderr
    finally:
        stop.set()
        thread.join(5)
        listener.close()


# -- watch ---------------------------------------------------------------------------------

def test_watch_once_prints_every_node_and_sparklines(stub):
    proc = run("watch", "--url", stub.url, "--once")
    assert proc.returncode == 0, proc.stderr
    for i in range(1, 6):
        assert f"node{i}" in proc.stdout
    assert "HEALTHY" in proc.stdout
    assert any(ch in proc.stdout for ch in "▁▂▃▄▅▆▇█"), proc.stdout


def test_watch_once_shows_firing_alerts(stub):
    stub.summary = make_summary("UNHEALTHY", [alert("quorum_loss")])
    proc = run("watch", "--url", stub.url, "--once")
    assert proc.returncode == 0, proc.stderr
    assert "quorum_loss" in proc.stdout and "UNHEALTHY" in proc.stdout


def test_watch_once_unreachable_is_one_line_error():
    assert_one_line_error(run("watch", "--url", f"http://127.0.0.1:{closed_port()}", "--once"), 1, "cannot reach")


def test_watch_keeps_running_and_reports_disconnection():
    # no server at all: watch must keep retrying (not exit), telling the user so on stderr
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.Popen([*RAFTCTL, "watch", "--url", f"http://127.0.0.1:{closed_port()}", "--interval", "0.2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stderr.readline()  # blocks until the first report, bounded by the timeout below
        assert "disconnected, retrying" in line
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# -- alerts --------------------------------------------------------------------------------

def test_alerts_ok_warning_critical_unknown(stub):
    proc = run("alerts", "--url", stub.url)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text, _, perf = proc.stdout.strip().partition(" | ")
    assert text.startswith("RAFTCTL OK")
    assert "healthy_nodes=5;;;0;5" in perf and "avg_latency_ms=12.5ms" in perf and "throughput_ops=101" in perf

    stub.summary = make_summary("HEALTHY", [alert("high_latency", "warning")])
    proc = run("alerts", "--url", stub.url)
    assert proc.returncode == 1 and proc.stdout.startswith("RAFTCTL WARNING"), proc.stdout

    stub.summary = make_summary("UNHEALTHY", [alert("quorum_loss"), alert("high_latency", "warning")])
    proc = run("alerts", "--url", stub.url)
    assert proc.returncode == 2 and proc.stdout.startswith("RAFTCTL CRITICAL"), proc.stdout
    assert "quorum_loss" in proc.stdout and len(proc.stdout.strip().splitlines()) == 1

    proc = run("alerts", "--url", f"http://127.0.0.1:{closed_port()}")
    assert proc.returncode == 3
    assert proc.stdout.startswith("RAFTCTL UNKNOWN")


def test_alerts_json(stub):
    stub.summary = make_summary("DEGRADED")
    proc = run("alerts", "--url", stub.url, "--json")
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["status"] == "WARNING" and doc["perfdata"]["healthy_nodes"] == 4


def test_alerts_webhook_sends_each_event_once_across_runs(stub, tmp_path: Path):
    receiver = Receiver()
    state = tmp_path / "state.json"
    args = ("alerts", "--url", stub.url, "--sink", f"webhook:{receiver.url}", "--state-file", str(state))
    try:
        # first run: the firing alert goes out
        stub.summary = make_summary("UNHEALTHY", [alert("quorum_loss")])
        assert run(*args).returncode == 2
        assert [(b["status"], b["alerts"][0]["labels"]["alertname"]) for b in receiver.bodies] == [("firing", "quorum_loss")]
        # a second run while it still fires sends nothing new
        assert run(*args).returncode == 2
        assert len(receiver.bodies) == 1
        # it resolves and another one fires and resolves between two runs
        stub.summary = make_summary("HEALTHY", [])
        stub.resolved = [alert("quorum_loss", status="resolved", resolved=150.0),
                         alert("leader_election_failure", status="resolved", started=120.0, resolved=130.0)]
        assert run(*args).returncode == 0
        # one run is one batch: a group is posted once, as it stands after the run's events, so the
        # alert that fired and resolved meanwhile is one "resolved" post (its startsAt tells when)
        events = [(b["status"], b["alerts"][0]["labels"]["alertname"]) for b in receiver.bodies[1:]]
        assert sorted(events) == sorted([("resolved", "quorum_loss"), ("resolved", "leader_election_failure")])
        late = next(b for b in receiver.bodies[1:] if b["alerts"][0]["labels"]["alertname"] == "leader_election_failure")
        assert late["alerts"][0]["startsAt"] < late["alerts"][0]["endsAt"]
        keys = late["idempotencyKey"].split(",")
        assert len(keys) == 2 and {k.rsplit(":", 1)[1] for k in keys} == {"firing", "resolved"}, keys
        assert run(*args).returncode == 0
        assert len(receiver.bodies) == 3
        saved = json.loads(state.read_text())
        assert saved["version"] == 1
        assert not list(tmp_path.glob(".alerts-state.*")), "temporary files left behind"
    finally:
        receiver.close()


def test_alerts_webhook_down_retries_next_run(stub, tmp_path: Path):
    state = tmp_path / "state.json"
    stub.summary = make_summary("UNHEALTHY", [alert("quorum_loss")])
    dead = f"webhook:http://127.0.0.1:{closed_port()}/hook"
    proc = run("alerts", "--url", stub.url, "--sink", dead, "--state-file", str(state))
    assert proc.returncode == 2  # the check result is about the cluster, not the sink
    assert "not forwarded" in proc.stderr
    receiver = Receiver()
    try:
        proc = run("alerts", "--url", stub.url, "--sink", f"webhook:{receiver.url}", "--state-file", str(state))
        assert proc.returncode == 2
        assert len(receiver.bodies) == 1
    finally:
        receiver.close()


def test_alerts_timeout_bounds_forwarding_to_a_slow_receiver(stub, tmp_path: Path):
    """-t bounds the whole check, forwarding included: a receiver that does not answer holds the
    run no longer than -t (it took the sink's own timeout=20), and what it did not confirm is
    sent again by the next run."""
    state, spool = tmp_path / "state.json", tmp_path / "spool"
    stub.summary = make_summary("UNHEALTHY", [alert("quorum_loss")])
    hold = threading.Event()
    slow = Receiver(hold)
    try:
        started = time.monotonic()
        proc = run("alerts", "--url", stub.url, "-t", "1", "--state-file", str(state),
                   "--sink", f"webhook:{slow.url}?timeout=20&spool={spool}")
        took = time.monotonic() - started
        assert proc.returncode == 2, proc.stderr  # the cluster's status, whatever the sink did
        assert len(slow.bodies) == 1 and "not forwarded" in proc.stderr, proc.stderr
        assert took < 8, f"alerts -t 1 took {took:.1f} s with a receiver that does not answer"
    finally:
        hold.set()
        slow.close()
    fast = Receiver()
    try:
        proc = run("alerts", "--url", stub.url, "--state-file", str(state),
                   "--sink", f"webhook:{fast.url}?spool={spool}")
        assert proc.returncode == 2 and "not forwarded" not in proc.stderr, proc.stderr
        assert [b["status"] for b in fast.bodies] == ["firing"], fast.bodies
    finally:
        fast.close()


def test_alerts_usage_errors_are_unknown_not_critical(stub):
    # Nagios reads exit 2 as CRITICAL; a plugin's usage error is UNKNOWN (3), with a line on stdout
    for args, fragment in ((("--sink", "carrier-pigeon"), "unknown sink"), (("--bogus",), "--bogus"),
                           (("-w", "abc"), "not a Nagios range"), (("-t", "nan"), "not a number"),
                           (("--critical-latency", "20:10"), "start is above its end")):
        proc = run("alerts", "--url", stub.url, *args)
        assert_one_line_error(proc, 3, fragment)
        assert proc.stdout.startswith("RAFTCTL UNKNOWN - usage:") and len(proc.stdout.strip()) < 80, proc.stdout
    proc = run("alerts", "--url", "notaurl")
    assert_one_line_error(proc, 3, "--url")
    # other commands keep the usual usage exit code
    assert_one_line_error(run("summary", "--bogus"), 2, "--bogus")


def test_alerts_version():
    from raftctl import __version__

    for flag in ("-V", "--version"):
        proc = run("alerts", flag)
        assert proc.returncode == 0 and proc.stdout.strip() == f"raftctl alerts {__version__}"


def test_alerts_thresholds_in_verdict_and_perfdata(stub):
    proc = run("alerts", "--url", stub.url, "-w", "5:", "-c", "3:", "--warning-latency", "10",
               "--critical-latency", "100")
    text, _, perf = proc.stdout.strip().partition(" | ")
    # 12.5 ms is above the warning range 0..10: WARNING, and the line says why
    assert proc.returncode == 1 and text.startswith("RAFTCTL WARNING - HEALTHY: latency 12.5 ms outside 10"), text
    assert len(text) < 80
    assert "healthy_nodes=5;5:;3:;0;5" in perf.split() and "avg_latency_ms=12.5ms;10;100;0;" in perf.split()
    stub.summary = make_summary("DEGRADED")
    proc = run("alerts", "--url", stub.url, "-w", "@4:4", "-c", "@~:2")  # warn at exactly 4, crit at <= 2
    assert proc.returncode == 1 and "node1 down" in proc.stdout.partition(" | ")[0], proc.stdout
    proc = run("alerts", "--url", stub.url, "-c", "~:2")  # crit above 2: 4 healthy nodes is CRITICAL
    assert proc.returncode == 2, proc.stdout
    stub.summary = make_summary("UNHEALTHY")
    proc = run("alerts", "--url", stub.url, "-w", "5:", "-c", "3:", "--json")
    doc = json.loads(proc.stdout)
    assert proc.returncode == 2 and "healthy nodes 2 outside 3:" in doc["reasons"], doc
    assert doc["thresholds"]["healthy_nodes"] == {"warning": "5:", "critical": "3:"}


def test_alerts_null_latency_is_unknown_in_perfdata(stub):
    stub.summary = make_summary("HEALTHY")
    stub.summary["performance"].update(avg_latency_ms=None, p50_latency_ms=None, p99_latency_ms=None)
    proc = run("alerts", "--url", stub.url, "--warning-latency", "10")
    assert proc.returncode == 0, proc.stdout
    perf = proc.stdout.partition(" | ")[2].split()
    assert "avg_latency_ms=U;10;;0;" in perf, perf
    assert not any(p.startswith("avg_latency_ms=0") for p in perf)


def test_alerts_timeout_is_unknown_in_time():
    import time

    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        started = time.monotonic()
        proc = run("alerts", "--url", f"http://127.0.0.1:{silent.getsockname()[1]}", "-t", "1")
        elapsed = time.monotonic() - started
    assert proc.returncode == 3 and proc.stdout.startswith("RAFTCTL UNKNOWN"), proc.stdout
    assert elapsed < 8, elapsed  # interpreter start-up plus the 1 s budget


def test_alerts_text_explains_a_warning_in_under_80_chars(stub):
    stub.summary = make_summary("DEGRADED", [alert("low_healthy_nodes", "warning"), alert("high_latency", "warning")])
    proc = run("alerts", "--url", stub.url)
    text = proc.stdout.partition(" | ")[0]
    assert proc.returncode == 1 and text.startswith("RAFTCTL WARNING - DEGRADED: node1 down"), text
    assert len(text) < 80


def _shard_alert(shard: str, status: str = "firing", resolved: float | None = None) -> dict:
    return {"name": "leader_election_failure", "severity": "critical", "status": status,
            "fingerprint": f"fp-lef-{shard}", "labels": {"shard": shard}, "message": f"shard {shard}: no leader",
            "started_at": 100.0, "resolved_at": resolved}


def test_alerts_webhook_sends_whole_groups_like_alertmanager(stub, tmp_path: Path):
    # issue 14: shard 1 resolving while shard 2 still fires must not post status=resolved
    receiver = Receiver()
    state = tmp_path / "state.json"
    args = ("alerts", "--url", stub.url, "--sink", f"webhook:{receiver.url}?receiver=ops&cluster=prod",
            "--state-file", str(state))
    try:
        stub.summary = make_summary("UNHEALTHY", [_shard_alert("1"), _shard_alert("2")])
        assert run(*args).returncode == 2
        assert len(receiver.bodies) == 1  # both shards fired in one run: one post for the group
        last = receiver.bodies[-1]
        assert last["status"] == "firing" and len(last["alerts"]) == 2 and last["receiver"] == "ops"
        assert last["groupKey"] == '{}:{alertname="leader_election_failure", cluster="prod"}'
        assert last["externalURL"] == stub.url and last["alerts"][0]["generatorURL"] == stub.url + "/"
        assert last["commonLabels"]["instance"] == stub.url.split("//")[1]
        stub.summary = make_summary("UNHEALTHY", [_shard_alert("2")])
        stub.resolved = [_shard_alert("1", "resolved", resolved=150.0)]
        assert run(*args).returncode == 2
        assert len(receiver.bodies) == 2
        post = receiver.bodies[-1]
        assert post["status"] == "firing", post
        assert sorted((a["labels"]["shard"], a["status"]) for a in post["alerts"]) == [("1", "resolved"), ("2", "firing")]
        keys = [k for b in receiver.bodies for k in b["idempotencyKey"].split(",")]
        assert len(keys) == len(set(keys)) == 3  # two firings, one resolution: each in one post
    finally:
        receiver.close()

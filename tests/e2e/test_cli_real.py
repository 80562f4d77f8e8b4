"""The CLI as subprocesses against real raftctl servers on 127.0.0.1, ephemeral ports.

Servers are either `raftctl serve` subprocesses or, where a test needs a fault at an exact
moment, a DashboardServer in this process over a simulated cluster the test drives.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from raftctl import Cluster, DashboardServer, MetricsCollector, Workload

RAFTCTL = [sys.executable, "-m", "raftctl"]
SEED = 11


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120"}
    env.pop("RAFTCTL_URL", None)
    proc = subprocess.run([*RAFTCTL, *args], capture_output=True, text=True, timeout=timeout, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


class LiveCluster:
    """A real dashboard over a simulated cluster; the test advances simulated time."""

    def __init__(self, seed: int = SEED) -> None:
        self.seed = seed
        self.cluster = Cluster(node_count=5, seed=seed)
        assert self.cluster.run_until(lambda: self.cluster.leader_id is not None, timeout=10.0), f"seed {seed}"
        Workload(self.cluster, rate=50, seed=seed)
        self.collector = MetricsCollector(collection_interval=1.0, retention_period=300)
        self.collector.set_cluster(self.cluster)
        self.server = DashboardServer(collector=self.collector, host="127.0.0.1", port=0).start()
        self.url = self.server.url
        self.advance(3)

    def advance(self, seconds: int) -> None:
        for _ in range(seconds):
            self.cluster.run_for(1.0)
            self.collector.collect()

    def close(self) -> None:
        self.server.stop()
        self.collector.stop()


@pytest.fixture
def live():
    cluster = LiveCluster()
    yield cluster
    cluster.close()


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                receiver.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_summary_json_matches_the_api(live):
    proc = run("summary", "--url", live.url, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    with urllib.request.urlopen(live.url + "/api/summary", timeout=5) as response:
        api = json.loads(response.read())
    assert doc == api, f"seed {live.seed}"
    assert doc["cluster"]["health_status"] == "HEALTHY"
    assert set(doc["nodes"]) == {f"node{i}" for i in range(1, 6)}


def test_watch_once_prints_every_node(live):
    proc = run("watch", "--url", live.url, "--once")
    assert proc.returncode == 0, proc.stderr
    for i in range(1, 6):
        assert f"node{i}" in proc.stdout
    assert "LEADER" in proc.stdout


def test_alerts_follow_the_cluster_through_quorum_loss(live, tmp_path: Path):
    receiver = Receiver()
    args = ("alerts", "--url", live.url, "--sink", f"webhook:{receiver.url}",
            "--state-file", str(tmp_path / "state.json"))
    try:
        proc = run(*args)
        assert proc.returncode == 0, (live.seed, proc.stdout, proc.stderr)
        assert proc.stdout.startswith("RAFTCTL OK") and "healthy_nodes=5;;;0;5" in proc.stdout
        assert receiver.bodies == []

        leader = live.cluster.leader_id
        victims = [leader] + [n for n in live.cluster.node_ids if n != leader][:2]
        for node in victims:
            live.cluster.crash(node)
        live.advance(4)
        proc = run(*args)
        assert proc.returncode == 2, (live.seed, proc.stdout)
        line = proc.stdout.split(" | ")[0]
        assert len(line) < 80 and ("quorum lost" in line or "quorum_loss" in line), (live.seed, line)
        # grouped like Alertmanager: each post carries every alert of its group
        fired = {a["labels"]["alertname"] for b in receiver.bodies if b["status"] == "firing"
                 for a in b["alerts"] if a["status"] == "firing"}
        assert "quorum_loss" in fired
        count = len(receiver.bodies)
        assert run(*args).returncode == 2
        assert len(receiver.bodies) == count, "an alert was sent twice"

        for node in victims:
            live.cluster.restart(node)
        for _ in range(30):  # bounded in simulated seconds
            live.advance(1)
            if live.collector.latest()["cluster"]["health_status"] == "HEALTHY" and not live.collector.active_alerts():
                break
        else:
            pytest.fail(f"seed {live.seed}: no recovery within 30 s simulated")
        proc = run(*args)
        assert proc.returncode == 0, (live.seed, proc.stdout)
        resolved = [b["alerts"][0]["labels"]["alertname"] for b in receiver.bodies if b["status"] == "resolved"]
        assert "quorum_loss" in resolved and resolved.count("quorum_loss") == 1
        count = len(receiver.bodies)
        assert run(*args).returncode == 0
        assert len(receiver.bodies) == count
    finally:
        receiver.close()


def test_demo_fast_json_report():
    proc = run("demo", "--fast", "--no-browser", "--json", "--port", "0", "--seed", str(SEED))
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)  # stdout holds the report and nothing else
    assert report["ok"] is True
    assert report["health_states_visited"] == ["HEALTHY", "DEGRADED", "UNHEALTHY"]
    names = {a["name"] for a in report["alerts"]}
    assert {"quorum_loss", "cluster_unhealthy"} <= names
    assert all(a["fired_at"] is not None and a["resolved_at"] is not None for a in report["alerts"])
    assert report["final"]["health_status"] == "HEALTHY" and report["final"]["digests_equal"] is True
    assert len(set(report["final"]["digests"].values())) == 1
    assert [f["tick"] for f in report["faults"]] == [30, 60, 100, 130]
    assert report["orders"]["acknowledged"] > 0 and report["latency_ms"]["p99"] is not None
    assert report["leader_changes"] >= 2
    # progress went to stderr in the seed's format
    assert "[1] Healthy: 5/5, Leader: node" in proc.stderr


def test_demo_same_seed_same_run():
    args = ("demo", "--fast", "--no-dashboard", "--json", "--ticks", "60", "--seed", "5")
    first, second = json.loads(run(*args).stdout), json.loads(run(*args).stdout)
    for key in ("orders", "trades", "faults", "alerts", "final", "health_timeline"):
        assert first[key] == second[key], key


@pytest.mark.parametrize("nodes", ["1", "3"])
def test_demo_report_latency_counts_every_committed_order(nodes):
    """One node commits in the millisecond it is submitted, often at a sample's instant: the
    report's latency line counted 1,487 orders under '1,500 committed'."""
    report = json.loads(run("demo", "--fast", "--no-dashboard", "--json", "--nodes", nodes,
                            "--ticks", "50", "--seed", "42").stdout)
    assert report["latency_ms"]["count"] == report["orders"]["acknowledged"] > 0, report["orders"]


def test_demo_human_report_on_stdout():
    proc = run("demo", "--fast", "--no-dashboard", "--ticks", "40", "--seed", str(SEED))
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert "Demo report" in proc.stdout and "RESULT: OK" in proc.stdout
    assert "Healthy:" not in proc.stdout  # progress lines stay on stderr
    padded = [line for line in proc.stdout.splitlines() if line != line.rstrip()]
    assert not padded, padded[:3]  # rich pads grid rows to the width; piped, the blanks are cut


def test_demo_report_tells_a_fault_that_hit_nothing_from_one_still_in_effect():
    # one node: "a follower crashes" finds no follower and "the leader is cut off" nothing to
    # isolate; neither was ever in effect, so neither is "end" (still in effect when the run ended)
    args = ("demo", "--fast", "--no-dashboard", "--nodes", "1", "--ticks", "20", "--seed", str(SEED))
    proc = run(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in proc.stdout.splitlines()
            if line.startswith("│ ") and line.split("│")[1].strip().isdigit()]
    assert [(tick, healed) for tick, _, _, healed in rows] == [("3", "-"), ("6", "8"), ("10", "12"), ("13", "-")], rows
    assert "latency (ms)" in proc.stdout
    report = json.loads(run(*args, "--json").stdout)
    assert [(f["kind"], f["effective"]) for f in report["faults"]] == [
        ("crash_follower", False), ("crash_leader", True), ("crash_majority", True), ("isolate_leader", False)]


def _wait_for_line(stream, needle: str, deadline_s: float) -> str:
    found: list[str] = []

    def reader() -> None:
        for line in stream:
            if needle in line:
                found.append(line)
                return

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    thread.join(deadline_s)
    assert found, f"no line with {needle!r} within {deadline_s} s"
    return found[0]


def test_serve_answers_and_exits_cleanly_on_sigterm(tmp_path: Path):
    jsonl = tmp_path / "samples.jsonl"
    proc = subprocess.Popen([*RAFTCTL, "serve", "--port", "0", "--interval", "0.2", "--seed", str(SEED),
                             "--sink", f"jsonl:{jsonl}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NO_COLOR": "1"})
    try:
        line = _wait_for_line(proc.stderr, "dashboard at", 30)
        url = line.split("dashboard at ", 1)[1].split("/ ", 1)[0].rstrip("/")
        deadline = time.monotonic() + 20
        while True:  # wait for a few samples, bounded
            summary = run("summary", "--url", url, "--json")
            if summary.returncode == 0 and json.loads(summary.stdout)["sequence"] >= 3:
                break
            assert time.monotonic() < deadline, summary.stderr
            time.sleep(0.1)
        watch = run("watch", "--url", url, "--once")
        assert watch.returncode == 0 and all(f"node{i}" in watch.stdout for i in range(1, 6))
        # the page asks every sample, at least every second (it asked every 5 s whatever the
        # interval, and a 1 s fault never reached its cards)
        with urllib.request.urlopen(url + "/", timeout=5) as answer:
            page = answer.read()
        assert b'name="raftctl-refresh-seconds" content="1"' in page, page[:400]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        rest = proc.stderr.read()
        assert "Traceback" not in rest and "sinks flushed" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = jsonl.read_text().splitlines()
    assert len(lines) >= 3
    records = [json.loads(line) for line in lines]  # every line complete
    samples = [r for r in records if "cluster" in r or r.get("kind") == "sample" or r.get("type") == "sample"]
    assert samples, records[:1]


def test_serve_stopped_for_seconds_counts_the_samples_it_missed():
    """SIGSTOP for 7 s: the paced simulation gives up the lost stretch rather than race through it
    (FALL_BEHIND_RESET_S), and the samples it never took are missed ticks, as the stale-sample
    runbook's first step reads them (the counter stayed 0)."""
    proc = subprocess.Popen([*RAFTCTL, "serve", "--port", "0", "--interval", "0.5", "--seed", str(SEED)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NO_COLOR": "1"})
    try:
        line = _wait_for_line(proc.stderr, "dashboard at", 30)
        url = line.split("dashboard at ", 1)[1].split("/ ", 1)[0].rstrip("/")

        def collector() -> dict:
            deadline = time.monotonic() + 20
            while True:
                summary = run("summary", "--url", url, "--json")
                if summary.returncode == 0:
                    return json.loads(summary.stdout)["collector"]
                assert time.monotonic() < deadline, summary.stderr
                time.sleep(0.1)

        assert collector()["missed_ticks"] == 0
        proc.send_signal(signal.SIGSTOP)
        time.sleep(7.0)  # the fault itself is a stretch of wall time
        proc.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 20
        while (missed := collector()["missed_ticks"]) == 0:
            assert time.monotonic() < deadline, "no missed tick counted after 7 s stopped"
            time.sleep(0.2)
        assert 10 <= missed <= 16, missed  # about 7 s at 0.5 s
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            proc.wait()


def test_serve_stdout_sink_whose_reader_goes_away_says_so_once_and_serves_on():
    """`raftctl serve --sink stdout:json | head -3`: the reader closes the pipe. One line says the
    stdout sink stops (no traceback, not one per sample); the dashboard goes on answering and
    SIGTERM still ends the run cleanly."""
    proc = subprocess.Popen([*RAFTCTL, "serve", "--port", "0", "--interval", "0.05", "--seed", str(SEED),
                             "--sink", "stdout:json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NO_COLOR": "1"})
    try:
        line = _wait_for_line(proc.stderr, "dashboard at", 30)
        url = line.split("dashboard at ", 1)[1].split("/ ", 1)[0].rstrip("/")
        assert proc.stdout is not None
        for _ in range(3):  # what `head -3` reads, then it exits
            assert json.loads(proc.stdout.readline())["type"] == "sample"
        proc.stdout.close()
        said = _wait_for_line(proc.stderr, "broken pipe", 20)
        assert "stdout sink" in said and "Traceback" not in said, said
        first = json.loads(run("summary", "--url", url, "--json").stdout)["sequence"]
        deadline = time.monotonic() + 20
        while json.loads(run("summary", "--url", url, "--json").stdout)["sequence"] < first + 5:
            assert time.monotonic() < deadline, "the server stopped sampling after its stdout closed"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        rest = proc.stderr.read()
        assert "Traceback" not in rest and "Broken pipe" not in rest and "broken pipe" not in rest, rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- bad input -----------------------------------------------------------------------------

def assert_usage_error(proc: subprocess.CompletedProcess, *fragments: str, code: int = 2) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("args, fragment", [
    (("demo", "--nodes", "0"), "--nodes"),
    (("demo", "--nodes", "-3"), "--nodes"),
    (("demo", "--nodes", "abc"), "--nodes"),
    (("demo", "--ticks", "0"), "--ticks"),
    (("demo", "--fail-at", "30,500"), "beyond"),
    (("demo", "--fail-at", "30,x"), "not a tick number"),
    (("demo", "--ticks", "50", "--fail-at", "60"), "beyond"),
    (("demo", "--sink", "carrier-pigeon"), "unknown sink"),
    (("demo", "--json", "--sink", "stdout"), "--sink"),
    (("serve", "--sink", "nope:x"), "unknown sink"),
    (("serve", "--chaos", "sometimes"), "--chaos"),
    (("serve", "--nodes", "0"), "--nodes"),
    (("serve", "--source", "bogus"), "unknown source 'bogus'"),
    (("serve", "--source", ""), "--source"),
    (("serve", "--source", ":x"), "bad source spec"),
    (("serve", "--source", "sim:extra"), "takes no argument"),
    # the simulator's shape with a real cluster's source: refused, not silently ignored
    (("serve", "--source", "etcd:http://127.0.0.1:9", "--nodes", "7"), "--nodes shapes the simulated cluster"),
    (("serve", "--source", "raftctl:http://127.0.0.1:9", "--rate", "500"), "--rate shapes the simulated cluster"),
    (("serve", "--source", "etcd:"), "--source"),
    (("serve", "--source", "etcd:ftp://127.0.0.1:1"), "--source"),
    (("serve", "--source", "etcd:http://127.0.0.1:9", "--chaos", "demo"), "--chaos"),
    (("demo", "--frobnicate"), "--frobnicate"),
    (("chaos", "--members", "4", "--runs", "2"), "the simulator's size is --nodes"),
    (("frobnicate",), "frobnicate"),
])
def test_bad_input_is_a_one_line_usage_error(args, fragment):
    assert_usage_error(run(*args), fragment)


def test_a_group_without_its_subcommand_shows_help_and_a_suggestion_ends_once():
    proc = run("cluster")
    assert proc.returncode == 2 and "up" in proc.stdout and "error" not in proc.stderr, proc.stderr
    proc = run("sumary")
    assert "Did you mean 'summary'? (see 'raftctl --help')" in proc.stderr and "?." not in proc.stderr, proc.stderr


def test_ctrl_c_of_a_chaos_campaign_is_one_line_not_a_traceback_per_worker():
    # Ctrl-C reaches the terminal's whole process group: the parent and its pool workers
    # as from a shell's prompt: SIGINT at its default (an ignored SIGINT is inherited across exec, and
    # a test runner's worker may ignore it; raftctl then rightly keeps ignoring it)
    proc = subprocess.Popen([sys.executable, "-m", "raftctl", "chaos", "--runs", "5000", "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "NO_COLOR": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(_children(proc.pid)) < 2:
            time.sleep(0.1)  # the pool's workers have started
        time.sleep(1.0)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "interrupted by SIGINT: the campaign stopped; no figures", err
    assert "Traceback" not in err and "ForkPoolWorker" not in err, err


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def test_port_in_use_is_a_one_line_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        for command in ("demo", "serve"):
            extra = ("--fast", "--no-browser", "--ticks", "5") if command == "demo" else ()
            assert_usage_error(run(command, "--port", str(port), *extra), "already in use", code=1)


def test_version_and_help_are_fast_and_clean(capsys):
    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("raftctl ")
    from raftctl.cli import run as run_in_process

    for command in ("demo", "serve", "watch", "summary", "alerts", "sinks"):
        assert run_in_process([command, "--help"]) == 0, command
        assert "Examples" in capsys.readouterr().out, command
    # --help must not import the simulator or the server
    code = ("import sys; sys.argv=['raftctl','--help']\n"
            "from raftctl import cli\n"
            "try:\n    cli.run(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy=[m for m in ('raftctl.core.sim.simulation','raftctl.dashboard.server','raftctl.core.collector')"
            " if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30).stdout
    assert "HEAVY []" in out, out


def test_sinks_lists_the_builtins():
    proc = run("sinks")
    assert proc.returncode == 0
    for name in ("stdout", "jsonl", "webhook"):
        assert name in proc.stdout
    rows = json.loads(run("sinks", "--json").stdout)
    assert {r["name"] for r in rows} >= {"stdout", "jsonl", "webhook"}

"""A real Prometheus scrapes `raftctl serve --chaos demo` with the shipped rules loaded.

Needs Debian's `prometheus` package (scripts/test.sh installs it). One timeline, shared by the
tests below and recorded before any of them asserts (so test order does not matter):

1. `raftctl serve --chaos demo --interval 1` on a free loopback port; each chaos line of its
   output is stamped with the wall time it arrived, which gives the fault windows.
2. Prometheus on another free loopback port, its own TSDB in a tmp dir, scraping and evaluating
   every second, with deploy/prometheus/*.yml and one forwarding rule over raftctl_alert_firing.
3. Wait (deadline) until the demo's first cycle is over (the leader isolation healed) and the
   alerts settled; record the rules' health, the ALERTS history and every dashboard expression.
4. Stop the server and wait (deadline) for RaftctlTargetDown.

Both processes are killed by PID at the end, also on failure. About 90 s of wall time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
RULE_FILES = sorted((ROOT / "deploy" / "prometheus").glob("*.yml"))
DASHBOARD = ROOT / "deploy" / "grafana" / "raftctl.json"
JOB = "raftctl"
# what `--chaos demo` prints when it injects and heals each fault, in order
FAULTS = (("follower", "a follower crashes", "healed crash follower"),
          ("leader", "the leader crashes", "healed crash leader"),
          ("quorum", "a majority crashes", "healed crash majority"),
          ("isolation", "the leader is cut off", "healed isolate leader"))
SLACK_S = 5.0  # scrape (1 s) + evaluation (1 s) + `for` (2 s) + a second of jitter
# the variables a Grafana user picks, as the test substitutes them
VARIABLES = {"$job": JOB, "$instance": ".*", "$shard": ".*", "$__rate_interval": "30s", "$__range": "5m",
             "$__interval": "1s"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


def wait_until(predicate, timeout: float, what: str, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (OSError, urllib.error.URLError, ValueError):
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Lines:
    """Collects a process's output lines with the wall time each arrived."""

    def __init__(self, stream) -> None:
        self.lines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for raw in iter(stream.readline, b""):
            with self._lock:
                self.lines.append((time.time(), raw.decode(errors="replace").rstrip()))

    def first(self, needle: str, after: float = 0.0) -> float | None:
        with self._lock:
            return next((t for t, line in self.lines if needle in line and t > after), None)

    def text(self) -> str:
        with self._lock:
            return "\n".join(line for _, line in self.lines)


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode(params)
        body = http_json(f"{self.url}{path}?{query}" if query else f"{self.url}{path}")
        assert body.get("status") == "success", body
        return body["data"]

    def query_range(self, expr: str, start: float, end: float) -> list[dict]:
        return self.get("/api/v1/query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step="1")["result"]

    def instant(self, expr: str) -> list[dict]:
        return self.get("/api/v1/query", query=expr)["result"]


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def dashboard_expressions() -> list[tuple[str, str]]:
    """(where, PromQL) for every query in the dashboard: panel targets, annotations, variables."""
    board = json.loads(DASHBOARD.read_text())
    out = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            out.append((f"panel {panel['title']!r} {target['refId']}", target["expr"]))
    for annotation in board["annotations"]["list"]:
        if "expr" in annotation:
            out.append((f"annotation {annotation['name']!r}", annotation["expr"]))
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["definition"])
            assert match, variable["definition"]
            out.append((f"variable {variable['name']}", f"{match.group(1)}"))
    return out


def substitute(expr: str) -> str:
    for name in sorted(VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, VARIABLES[name])
    assert "$" not in expr, expr
    return expr


@pytest.fixture(scope="module")
def timeline(tmp_path_factory):
    prometheus_bin = shutil.which("prometheus")
    if prometheus_bin is None:
        pytest.fail("prometheus not found on PATH: run scripts/test.sh (it installs Debian's prometheus)",
                    pytrace=False)
    tmp = tmp_path_factory.mktemp("prometheus-real")
    serve_port, prom_port = free_port(), free_port()
    (tmp / "forward.yml").write_text(
        "groups:\n  - name: raftctl-forward\n    rules:\n"
        "      - alert: RaftctlForwarded\n        expr: raftctl_alert_firing == 1\n")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "900ms"},
        "rule_files": [str(p) for p in RULE_FILES] + [str(tmp / "forward.yml")],
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [f"127.0.0.1:{serve_port}"]}]}],
    }
    (tmp / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}
    env.pop("RAFTCTL_URL", None)
    serve = prom = None
    record: dict[str, Any] = {}
    prom_log = open(tmp / "prometheus.log", "wb")  # noqa: SIM115 - closed in finally
    try:
        prom = subprocess.Popen(
            [prometheus_bin, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'data'}",
             f"--web.listen-address=127.0.0.1:{prom_port}", "--storage.tsdb.retention.time=1h"],
            stdout=subprocess.DEVNULL, stderr=prom_log, cwd=tmp)
        api = Prometheus(f"http://127.0.0.1:{prom_port}")
        wait_until(lambda: urllib.request.urlopen(f"{api.url}/-/ready", timeout=2).status == 200, 30,
                   "Prometheus to be ready")
        serve = subprocess.Popen(
            [sys.executable, "-m", "raftctl", "serve", "--chaos", "demo", "--port", str(serve_port),
             "--interval", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=tmp)
        output = Lines(serve.stdout)
        started = time.time()
        wait_until(lambda: http_json(f"http://127.0.0.1:{serve_port}/api/health"), 30, "raftctl serve to answer")
        wait_until(lambda: output.first(FAULTS[-1][2]) or serve.poll() is not None, 90,
                   "the demo's leader isolation to heal")
        assert serve.poll() is None, f"raftctl serve exited: {output.text()}"
        windows = {}
        after = 0.0
        for name, inject, heal in FAULTS:
            start = output.first(inject, after)
            end = output.first(heal, start or after)
            assert start and end, f"no {name} fault in the output:\n{output.text()}"
            windows[name] = (start, end)
            after = end
        record["windows"] = windows
        # the leader-change rate counts the last 15 minutes, so it stays; everything else resolves
        wait_until(lambda: time.time() > windows["isolation"][1] + 2 and not [
            item for item in api.instant('ALERTS{alertstate=~"firing|pending"}')
            if item["metric"]["alertname"] != "RaftctlHighNumberOfLeaderChanges"], 30,
            "the alerts to resolve after the last heal")
        end = time.time()
        record["start"], record["end"] = started, end
        record["rules"] = api.get("/api/v1/rules")["groups"]
        # /api/v1/rules shows only each rule's latest evaluation; this counts every failed one
        with urllib.request.urlopen(f"{api.url}/metrics", timeout=5) as resp:
            own = resp.read().decode()
        record["evaluation_failures"] = {
            line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in own.splitlines()
            if line.startswith("prometheus_rule_evaluation_failures_total{")}
        record["evaluations"] = sum(
            float(line.rsplit(" ", 1)[1]) for line in own.splitlines()
            if line.startswith("prometheus_rule_evaluations_total{"))
        record["targets"] = api.get("/api/v1/targets")["activeTargets"]
        record["alerts"] = api.query_range('ALERTS{alertstate="firing"}', started, end)
        record["raftctl_alerts"] = api.query_range("raftctl_alert_firing", started, end)
        record["firing_at_end"] = api.instant('ALERTS{alertstate="firing"}')
        record["dashboard"] = []
        for where, expr in dashboard_expressions():
            try:
                record["dashboard"].append((where, expr, api.query_range(substitute(expr), started, end), None))
            except (urllib.error.HTTPError, AssertionError) as err:
                detail = err.read().decode() if isinstance(err, urllib.error.HTTPError) else str(err)
                record["dashboard"].append((where, expr, None, detail))
        record["serve_output"] = output.text()

        stop(serve)
        stopped = time.time()
        record["serve_exit"] = serve.returncode
        record["target_down_after"] = wait_until(
            lambda: api.instant('ALERTS{alertname="RaftctlTargetDown", alertstate="firing"}') and time.time() - stopped,
            60, "RaftctlTargetDown after the server stopped")
        yield record
    finally:
        stop(serve)
        stop(prom)
        prom_log.close()


def firing_times(series: list[dict], **labels: str) -> list[float]:
    out = []
    for item in series:
        if all(item["metric"].get(k) == v for k, v in labels.items()):
            out += [float(t) for t, value in item["values"] if value == "1"]
    return sorted(out)


def within(times: list[float], window: tuple[float, float]) -> list[float]:
    return [t for t in times if window[0] <= t <= window[1] + SLACK_S]


def test_every_rule_evaluates_without_errors(timeline):
    rules = [rule for group in timeline["rules"] for rule in group["rules"]]
    names = {rule["name"] for rule in rules}
    assert len(rules) >= 21 and "RaftctlForwarded" in names
    broken = [(rule["name"], rule.get("lastError")) for rule in rules
              if rule["health"] != "ok" or rule.get("lastError")]
    assert broken == []
    assert all(not rule["lastEvaluation"].startswith("0001") for rule in rules)
    assert len(timeline["evaluation_failures"]) >= 2  # one per group at least: the counter is there
    assert {k: v for k, v in timeline["evaluation_failures"].items() if v} == {}
    assert timeline["evaluations"] > 21 * 30  # every rule, every second, for most of the run
    (target,) = timeline["targets"]
    assert target["labels"]["job"] == JOB and not target["lastError"]


def test_raftctl_alerts_forward_as_one_prometheus_alert_each(timeline):
    # the rule that failed with "vector contains metrics with the same labelset" while several fired
    forwarded = {item["metric"].get("alert") for item in timeline["alerts"]
                 if item["metric"]["alertname"] == "RaftctlForwarded"}
    assert {"quorum_loss", "cluster_unhealthy", "low_healthy_nodes"} <= forwarded
    quorum = timeline["windows"]["quorum"]
    assert within(firing_times(timeline["raftctl_alerts"], alert="quorum_loss"), quorum)


@pytest.mark.parametrize(("window", "alerts"), [
    ("follower", ("RaftctlNodeDown", "RaftctlClusterDegraded")),
    ("leader", ("RaftctlNodeDown", "RaftctlClusterDegraded")),
    ("quorum", ("RaftctlQuorumLost", "RaftctlClusterUnhealthy", "RaftctlNoLeader", "RaftctlLowHealthyNodes",
                "RaftctlNodeDown")),
    ("isolation", ("RaftctlNodeIsolated", "RaftctlClusterDegraded", "RaftctlHighNumberOfLeaderChanges")),
])
def test_expected_alerts_fire_in_their_fault_window(timeline, window, alerts):
    span = timeline["windows"][window]
    for alertname in alerts:
        assert within(firing_times(timeline["alerts"], alertname=alertname), span), (
            f"{alertname} did not fire in the {window} window {span}:\n{timeline['serve_output']}")


def test_critical_alerts_fire_only_in_the_quorum_window(timeline):
    windows = timeline["windows"]
    for alertname in ("RaftctlQuorumLost", "RaftctlNoLeader", "RaftctlClusterUnhealthy", "RaftctlLowHealthyNodes"):
        times = firing_times(timeline["alerts"], alertname=alertname)
        outside = [t for t in times if not any(start <= t <= end + SLACK_S for start, end in windows.values())]
        assert outside == [], alertname
        assert within(times, windows["quorum"]), alertname
        # a leader crash is answered by an election within a second: no page for it
        assert not within(times, windows["leader"]), alertname
    for alertname in ("RaftctlConsensusMisaligned", "RaftctlStaleSample", "RaftctlTargetDown"):
        assert firing_times(timeline["alerts"], alertname=alertname) == [], alertname
    # nothing fires before the first fault
    first = windows["follower"][0]
    assert [item["metric"]["alertname"] for item in timeline["alerts"]
            if any(float(t) < first for t, _ in item["values"])] == []


def test_alerts_resolve_after_the_faults_heal(timeline):
    still = {item["metric"]["alertname"] for item in timeline["firing_at_end"]}
    # the leader-change rate counts the last 15 minutes: it stays, as it should
    assert still <= {"RaftctlHighNumberOfLeaderChanges"}, still
    last: dict[str, float] = {}
    for item in timeline["alerts"]:
        name = item["metric"]["alertname"]
        last[name] = max([last.get(name, 0.0)] + [float(t) for t, _ in item["values"]])
    healed = timeline["windows"]["isolation"][1]
    for name, when in last.items():
        if name != "RaftctlHighNumberOfLeaderChanges":
            assert when <= healed + SLACK_S, (name, when - healed)


def test_every_dashboard_expression_parses_and_returns_data(timeline):
    failed = [(where, expr, error) for where, expr, result, error in timeline["dashboard"] if error]
    assert failed == []
    empty = [(where, expr) for where, expr, result, _ in timeline["dashboard"] if not result]
    assert empty == []
    assert len(timeline["dashboard"]) >= 30


def test_target_down_fires_after_the_server_stops(timeline):
    assert timeline["serve_exit"] == 0
    assert 30 <= timeline["target_down_after"] <= 30 + SLACK_S + 5

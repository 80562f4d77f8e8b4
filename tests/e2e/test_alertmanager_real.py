"""The alert sinks against a real Alertmanager (Debian's prometheus-alertmanager 0.25).

Each test starts its own Alertmanager on a free loopback port, with its own storage directory,
gossip disabled (``--cluster.listen-address=``) and a config written here whose webhook
receiver is a tiny HTTP server in the test. The process is killed by PID at the end, also on
failure. Skipped when the binaries are not installed (scripts/test.sh installs them).
"""

from __future__ import annotations

import http.server
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from raftctl import Cluster, MetricsCollector
from raftctl.core.workload import Workload
from raftctl.sinks.alertmanager import AlertmanagerSink
from raftctl.sinks.alertmodel import alert_annotations, fingerprint, go_time
from raftctl.sinks.webhook import WebhookSink

AM_BINARY = shutil.which("alertmanager") or shutil.which("prometheus-alertmanager")
AMTOOL = shutil.which("amtool")
pytestmark = pytest.mark.skipif(AM_BINARY is None or AMTOOL is None,
                                reason="needs Alertmanager and amtool (apt-get install prometheus-alertmanager)")
SEED = 5


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(predicate, timeout: float, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


class Capture:
    """The webhook receiver Alertmanager posts to; records every JSON body."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.lock = threading.Lock()
        capture = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                with capture.lock:
                    capture.bodies.append(body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def snapshot(self) -> list[dict]:
        with self.lock:
            return list(self.bodies)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class RealAlertmanager:
    def __init__(self, tmp: Path, webhook_url: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = tmp / "alertmanager.yml"
        config.write_text(
            "route:\n"
            "  receiver: ops\n"
            "  group_by: [alertname, cluster]\n"
            "  group_wait: 0s\n"
            "  group_interval: 1s\n"
            "  repeat_interval: 1h\n"
            "receivers:\n"
            "  - name: ops\n"
            "    webhook_configs:\n"
            f"      - url: {webhook_url}\n"
            "        send_resolved: true\n")
        self.log = open(tmp / "alertmanager.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [AM_BINARY, f"--config.file={config}", f"--storage.path={tmp / 'am-data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=",
             f"--web.external-url={self.url}/", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT)
        try:
            ready = wait_for(self._ready, timeout=20)
            assert ready, f"alertmanager did not become ready: {(tmp / 'alertmanager.log').read_text()[-2000:]}"
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"alertmanager exited with {self.proc.returncode}")
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def post(self, alerts: list[dict]) -> None:
        request = urllib.request.Request(self.url + "/api/v2/alerts", data=json.dumps(alerts).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200

    def alerts(self) -> list[dict]:
        with urllib.request.urlopen(self.url + "/api/v2/alerts", timeout=5) as response:
            return json.loads(response.read())

    def nflog_queries(self) -> int:
        """How often Alertmanager has looked in its notification log (once per group flush)."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as response:
            for line in response.read().decode().splitlines():
                if line.startswith("alertmanager_nflog_queries_total "):
                    return int(float(line.split()[1]))
        raise AssertionError("alertmanager_nflog_queries_total not in /metrics")

    def amtool_query(self) -> list[dict]:
        out = subprocess.run([AMTOOL, "alert", "query", f"--alertmanager.url={self.url}", "-o", "json"],
                             capture_output=True, text=True, timeout=30, check=True)
        return json.loads(out.stdout or "[]")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # by PID: this Popen's process only
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture
def capture():
    server = Capture()
    yield server
    server.close()


@pytest.fixture
def alertmanager(tmp_path, capture):
    manager = RealAlertmanager(tmp_path, capture.url)
    yield manager
    manager.stop()


# ------------------------------------------------------------------ fingerprints

def test_fingerprints_match_what_a_real_alertmanager_computes(alertmanager):
    now = time.time()
    label_sets = [
        {"alertname": "quorum_loss", "severity": "critical", "cluster": "prod", "instance": "h:8080"},
        {"alertname": "leader_election_failure", "severity": "critical", "cluster": "prod",
         "instance": "h:8080", "shard": "12"},
        {"alertname": "x", "note": 'quote " backslash \\ tab \t ünïcödé ☃', "zz": "last", "a": "first"},
        {"alertname": "high_latency"},
    ]
    alertmanager.post([{"labels": labels, "startsAt": go_time(now - 5), "endsAt": go_time(now + 300)}
                       for labels in label_sets])
    listed = wait_for(lambda: len(alertmanager.alerts()) == len(label_sets) and alertmanager.alerts(), 10)
    assert listed, alertmanager.alerts()
    theirs = {json.dumps(a["labels"], sort_keys=True): a["fingerprint"] for a in listed}
    for labels in label_sets:
        assert fingerprint(labels) == theirs[json.dumps(labels, sort_keys=True)], labels


# ------------------------------------------------------------------ alertmanager sink

def boot() -> Cluster:
    cluster = Cluster(node_count=5, seed=SEED)
    Workload(cluster, rate=100.0, seed=SEED)
    assert cluster.run_until(lambda: cluster.leader_id is not None, timeout=5.0), f"seed={SEED}"
    return cluster


def test_alertmanager_sink_pushes_alerts_that_show_and_resolve(alertmanager):
    sink = AlertmanagerSink(alertmanager.url, cluster="prod", instance="exchange-a:8080",
                            generator_url="http://exchange-a:8080/", timeout=2.0)
    collector = MetricsCollector(sinks=[sink])
    cluster = boot()
    collector.set_cluster(cluster)
    try:
        cluster.run_for(1.0)
        collector.collect()
        victims = [n for n in cluster.node_ids if n != cluster.leader_id][:3]
        for victim in victims:
            cluster.crash(victim)
        for _ in range(3):
            cluster.run_for(1.0)
            collector.collect()
        firing_here = {a["name"] for a in collector.latest()["alerts"]}
        assert "quorum_loss" in firing_here, f"seed={SEED} {firing_here}"

        def ours():
            return {a["labels"]["alertname"]: a for a in alertmanager.alerts()
                    if a["labels"].get("cluster") == "prod"}

        shown = wait_for(lambda: firing_here <= set(ours()) and ours(), timeout=10)
        assert shown, (alertmanager.alerts(), sink.stats())
        quorum = shown["quorum_loss"]
        assert quorum["labels"] == {"alertname": "quorum_loss", "severity": "critical", "cluster": "prod",
                                    "instance": "exchange-a:8080"}
        assert quorum["generatorURL"] == "http://exchange-a:8080/"
        assert quorum["status"]["state"] == "active"
        assert quorum["fingerprint"] == fingerprint(quorum["labels"])
        assert quorum["annotations"]["summary"]
        # re-sent while firing: endsAt keeps moving ahead (Prometheus' 4 x interval)
        pushes = sink.pushes
        cluster.run_for(1.0)
        collector.collect()
        assert wait_for(lambda: sink.pushes > pushes, timeout=5)
        queried = {a["labels"]["alertname"] for a in alertmanager.amtool_query()}
        assert firing_here <= queried, queried

        for victim in victims:
            cluster.restart(victim)
        for _ in range(6):
            cluster.run_for(1.0)
            collector.collect()
        assert not collector.latest()["alerts"], f"seed={SEED} {collector.latest()['alerts']}"
        assert collector.flush(10)
        gone = wait_for(lambda: not ours(), timeout=10)
        assert gone, ours()
        assert not [a for a in alertmanager.amtool_query() if a["labels"].get("cluster") == "prod"]
        stats = sink.stats()
        assert stats["pending"] == 0 and stats["delivered"] >= 2 * len(firing_here), stats
    finally:
        collector.stop()


def test_alertmanager_sink_catches_up_after_alertmanager_was_down(tmp_path, capture):
    port = free_port()
    sink = AlertmanagerSink(f"http://127.0.0.1:{port}", cluster="prod", instance="i:1",
                            generator_url="http://i:1/", timeout=0.5, backoff=0.05, max_backoff=0.2)
    sink.open()
    now = time.time()
    alert = {"name": "quorum_loss", "severity": "critical", "status": "firing", "labels": {},
             "message": "only 2 of 5 nodes up", "started_at": now - 10, "resolved_at": None}
    sink.emit_alert(alert)
    assert sink.stats()["pending"] == 1 and sink.push_failures == 1
    manager = RealAlertmanager(tmp_path, capture.url, port=port)  # comes up where the sink pushes
    try:
        sample = {"timestamp": time.time(), "alerts": [alert], "collector": {"collection_interval": 0.2}}
        assert wait_for(lambda: (sink.emit_sample(dict(sample, timestamp=time.time())) or True)
                        and any(a["labels"]["alertname"] == "quorum_loss" for a in manager.alerts()), 10)
        sink.emit_alert(dict(alert, status="resolved", resolved_at=time.time() - 0.5))
        assert wait_for(lambda: not manager.alerts(), 10), manager.alerts()
        assert sink.stats()["pending"] == 0
    finally:
        manager.stop()


# ------------------------------------------------------------------ webhook payload vs a real one

def _event(shard: str, started: float, resolved: float | None = None) -> dict:
    return {"name": "leader_election_failure", "severity": "critical",
            "status": "resolved" if resolved else "firing", "labels": {"shard": shard},
            "message": f"shard {shard}: no leader for 3.0 s (threshold 2.0 s)",
            "started_at": started, "resolved_at": resolved}


def _as_pushed(sink: WebhookSink, event: dict) -> dict:
    """The alert as Alertmanager receives it via API v2 (what a Prometheus would push)."""
    out = {"labels": sink.labels_for(event),
           "annotations": alert_annotations(event),  # summary, description, runbook_url as a rule's
           "startsAt": go_time(event["started_at"]), "generatorURL": sink.identity()[2]}
    if event["resolved_at"] is not None:
        out["endsAt"] = go_time(event["resolved_at"])
    return out


def _diff(ours: dict, theirs: dict) -> list[str]:
    """Field-by-field differences; our documented extra field ``idempotencyKey`` is ignored."""
    problems = []
    for key in sorted(set(ours) | set(theirs)):
        if key == "idempotencyKey":
            continue
        if key == "alerts":
            if len(ours.get(key, [])) != len(theirs.get(key, [])):
                problems.append(f"alerts: {len(ours.get(key, []))} vs {len(theirs.get(key, []))}")
                continue
            for i, (mine, real) in enumerate(zip(ours[key], theirs[key], strict=True)):
                for field in sorted(set(mine) | set(real)):
                    if mine.get(field) != real.get(field):
                        problems.append(f"alerts[{i}].{field}: {mine.get(field)!r} vs {real.get(field)!r}")
        elif ours.get(key) != theirs.get(key):
            problems.append(f"{key}: {ours.get(key)!r} vs {theirs.get(key)!r}")
    return problems


def test_webhook_payload_matches_what_a_real_alertmanager_sends(alertmanager, capture, tmp_path):
    ours = Capture()
    sink = WebhookSink(ours.url, receiver="ops", cluster="prod", instance="exchange-a:8080",
                       external_url=alertmanager.url, generator_url="http://exchange-a:8080/",
                       spool=str(tmp_path / "spool"), backoff=0.05)
    sink.open()
    try:
        base = round(time.time() - 30, 3)
        one, two, three = _event("1", base + 0.25), _event("2", base + 1.5), _event("10", base + 2)
        # both shards fire: Alertmanager gets them in one push and notifies once
        alertmanager.post([_as_pushed(sink, e) for e in (one, two, three)])
        first = wait_for(lambda: capture.snapshot(), timeout=10)
        assert first, "alertmanager sent nothing"
        for event in (one, two, three):
            sink.emit_alert(event)
        # shard 1 resolves while 2 and 10 still fire
        resolved_one = dict(one, status="resolved", resolved_at=round(time.time() - 1, 3))
        alertmanager.post([_as_pushed(sink, resolved_one)])
        second = wait_for(lambda: len(capture.snapshot()) >= 2 and capture.snapshot(), timeout=10)
        assert second, capture.snapshot()
        sink.emit_alert(resolved_one)
        # then shard 2, which sorts last, resolves too: the group still fires (shard 10)
        resolved_two = dict(two, status="resolved", resolved_at=round(time.time() - 0.5, 3))
        alertmanager.post([_as_pushed(sink, resolved_two)])
        third = wait_for(lambda: len(capture.snapshot()) >= 3 and capture.snapshot(), timeout=10)
        assert third, capture.snapshot()
        sink.emit_alert(resolved_two)
        assert sink.wait_delivered(10) and len(ours.snapshot()) == 5
        posted = ours.snapshot()
        real = third[:3]
        # our third post is the group after all three fired; the next ones follow each resolution
        for mine, theirs in zip(posted[2:], real, strict=True):
            assert _diff(mine, theirs) == [], _diff(mine, theirs)
        assert [p["status"] for p in real] == ["firing", "firing", "firing"]
        assert [[a["status"] for a in p["alerts"]] for p in real] == [
            ["firing", "firing", "firing"], ["resolved", "firing", "firing"], ["firing", "resolved"]]
    finally:
        sink.close()
        ours.close()


# ------------------------------------------------------------------ Alertmanager stopped and restarted

def test_alertmanager_restarted_gets_the_current_state_at_the_next_sample(tmp_path, capture):
    """Alertmanager goes away for 7 s and comes back (same port, same storage): the alert that
    fired during the outage reaches it at the next sample (it used to wait out a back-off of up
    to max_backoff), and the one that resolved during the outage is delivered as resolved, so
    Alertmanager, which remembers it had notified it as firing, sends the resolution on."""
    port = free_port()
    manager = RealAlertmanager(tmp_path, capture.url, port=port)
    sink = AlertmanagerSink(manager.url, cluster="prod", instance="i:1", generator_url="http://i:1/",
                            timeout=1.0, backoff=2.0, max_backoff=30.0)
    sink.open()
    interval = 0.25
    active: dict[str, dict] = {}

    def sample(*events: dict) -> None:
        """What the collector's worker hands the sink each sample: the sample, then its events."""
        for event in events:
            if event["status"] == "firing":
                active[event["name"]] = event
            else:
                active.pop(event["name"], None)
        sink.emit_sample({"timestamp": time.time(), "alerts": list(active.values()),
                          "collector": {"collection_interval": interval}})
        for event in events:
            sink.emit_alert(event)

    def run_samples(seconds: float, until=None):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            sample()
            found = until() if until is not None else None
            if found:
                return found
            time.sleep(interval)
        return until() if until is not None else None

    def in_manager(mgr: RealAlertmanager) -> set[str]:
        try:
            return {a["labels"]["alertname"] for a in mgr.alerts() if a["labels"].get("cluster") == "prod"}
        except OSError:
            return set()

    def notified(status: str, name: str) -> bool:
        return any(b["status"] == status and b["groupLabels"].get("alertname") == name for b in capture.snapshot())

    try:
        node_down = {"name": "node_down", "severity": "warning", "status": "firing", "labels": {"node": "node1"},
                     "message": "node1 does not answer the monitor", "started_at": time.time(), "resolved_at": None}
        sample(node_down)
        assert run_samples(10, lambda: notified("firing", "node_down")), (capture.snapshot(), sink.stats())
        # Alertmanager logs a notification only once the receiver has answered; a group's flushes
        # run one after another, so the next flush's look in the log (a group_interval later) comes
        # after that record. Stopped before it, it would rightly forget it had notified node_down
        # (fresh-clone CI saw this once; a receiver slow to answer makes it happen every time).
        queries = manager.nflog_queries()
        assert run_samples(5, lambda: manager.nflog_queries() > queries), "no second flush of node_down's group"
        manager.stop()
        stopped = time.monotonic()
        failures = sink.push_failures
        run_samples(2.0)
        sample(dict(node_down, status="resolved", resolved_at=time.time()))  # node1 is back while it is down
        quorum = {"name": "quorum_loss", "severity": "critical", "status": "firing", "labels": {},
                  "message": "only 2 of 5 nodes up", "started_at": time.time(), "resolved_at": None}
        run_samples(7.0 - (time.monotonic() - stopped))
        sample(quorum)
        tries = sink.push_failures - failures
        outage_samples = round((time.monotonic() - stopped) / interval)

        manager = RealAlertmanager(tmp_path, capture.url, port=port)  # same storage: it remembers its notifications
        back = time.monotonic()
        shown = run_samples(3.0, lambda: "quorum_loss" in in_manager(manager))
        assert shown, (f"quorum_loss not in Alertmanager {time.monotonic() - back:.1f} s after it came back",
                       sink.stats())
        # every sample of the outage tried once: no push skipped for a back-off
        assert tries >= outage_samples * 0.6, (tries, outage_samples)
        assert "node_down" not in in_manager(manager)
        # node_down reached it as resolved: Alertmanager notifies the resolution it owed
        assert run_samples(10, lambda: notified("resolved", "node_down")), (capture.snapshot(), sink.stats())
        assert run_samples(10, lambda: notified("firing", "quorum_loss")), capture.snapshot()
        resolved_body = next(b for b in capture.snapshot()
                             if b["status"] == "resolved" and b["groupLabels"].get("alertname") == "node_down")
        (resolved_alert,) = resolved_body["alerts"]
        assert resolved_alert["endsAt"] != "0001-01-01T00:00:00Z"
        assert resolved_alert["endsAt"] < go_time(time.time() - 1)  # its real end, during the outage
        stats = sink.stats()
        assert stats["pending"] == 0 and stats["resolved_unsent"] == 0, stats
    finally:
        sink.close()
        manager.stop()


def test_alerts_from_cron_stay_firing_in_alertmanager_between_runs(alertmanager, tmp_path):
    # `raftctl alerts --sink alertmanager:` run by cron: each run re-sends what still fires, as
    # Prometheus does at every evaluation; without resend= it sets no endsAt (Alertmanager's
    # resolve_timeout applies), with resend=60 it is four periods ahead; never a few seconds,
    # which would resolve the alert between two runs
    from datetime import datetime

    from test_cli_client import Stub, alert, make_summary, run

    def parse(text: str) -> float:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

    stub = Stub()
    started = time.time() - 30
    try:
        stub.summary = make_summary("UNHEALTHY", [alert("quorum_loss", started=started)])
        for spec, at_least in ((f"alertmanager:{alertmanager.url}?cluster=cron", 250.0),
                               (f"alertmanager:{alertmanager.url}?cluster=cron&resend=60", 200.0)):
            state = tmp_path / f"state-{at_least:g}.json"
            args = ("alerts", "--url", stub.url, "--sink", spec, "--state-file", str(state))
            updated = []
            for _ in range(2):  # the second run has no news, and still re-sends the firing alert
                before = time.time()
                proc = run(*args)
                assert proc.returncode == 2, proc.stdout + proc.stderr
                shown = wait_for(lambda since=before: [a for a in alertmanager.alerts() if a["labels"].get("cluster")
                                                       == "cron" and parse(a["updatedAt"]) >= since - 1], timeout=5)
                assert shown and shown[0]["status"]["state"] == "active", alertmanager.alerts()
                assert parse(shown[0]["endsAt"]) - time.time() >= at_least, (spec, shown[0])
                updated.append(shown[0]["updatedAt"])
            assert updated[1] > updated[0], updated
        # it resolves: the next run says so, and Alertmanager ends it
        stub.summary = make_summary("HEALTHY", [])
        stub.resolved = [alert("quorum_loss", status="resolved", started=started, resolved=time.time())]
        assert run("alerts", "--url", stub.url, "--sink", f"alertmanager:{alertmanager.url}?cluster=cron",
                   "--state-file", str(tmp_path / "state-250.json")).returncode == 0
        assert wait_for(lambda: not [a for a in alertmanager.alerts() if a["labels"].get("cluster") == "cron"
                                     and a["status"]["state"] == "active"], timeout=10), alertmanager.alerts()
    finally:
        stub.close()


def test_alerts_from_cron_keep_an_undelivered_event_for_the_next_run(tmp_path, capture):
    # Alertmanager down: the run says it did not forward, and the next run (Alertmanager up)
    # delivers the firing alert instead of believing it was sent
    from test_cli_client import Stub, alert, make_summary, run

    stub = Stub()
    port = free_port()
    try:
        stub.summary = make_summary("UNHEALTHY", [alert("quorum_loss", started=time.time() - 30)])
        args = ("alerts", "--url", stub.url, "--sink", f"alertmanager:http://127.0.0.1:{port}?cluster=late",
                "--state-file", str(tmp_path / "state.json"), "-t", "5")
        proc = run(*args)
        assert proc.returncode == 2 and "not forwarded" in proc.stderr, proc.stderr
        late = RealAlertmanager(tmp_path, capture.url, port=port)
        try:
            proc = run(*args)
            assert proc.returncode == 2 and "not forwarded" not in proc.stderr, proc.stderr
            assert wait_for(lambda: [a for a in late.alerts() if a["labels"].get("cluster") == "late"], timeout=5)
        finally:
            late.stop()
    finally:
        stub.close()

"""The alertmanager sink's retries: every sample tries while anything fires or just resolved.

Prometheus re-sends every firing alert on each evaluation whatever happened to the previous
send; the sink used to skip every push while it backed off (up to ``max_backoff``), so alerts
that fired just after Alertmanager came back were held back for up to 30 s. Back-off now only
limits the attempts between samples; these tests use a stdlib stand-in for Alertmanager that
records each body and can refuse (503) on demand. A real Alertmanager stopped and restarted
is in tests/e2e/test_alertmanager_real.py.
"""

from __future__ import annotations

import threading
import time

import pytest

from recording_receiver import RecordingReceiver

from raftctl.sinks.alertmanager import AlertmanagerSink
from raftctl.sinks.alertmodel import go_time


class FakeAlertmanager(RecordingReceiver):
    """Alertmanager's /api/v2/alerts, recorded (``down``: 503)."""

    def __init__(self) -> None:
        super().__init__(path="")

    def last(self) -> dict[str, dict]:
        bodies = self.bodies()
        return {a["labels"]["alertname"]: a for a in (bodies[-1] if bodies else [])}


@pytest.fixture
def manager():
    fake = FakeAlertmanager()
    yield fake
    fake.close()


NOW = time.time()


def alert(name: str, status: str = "firing", started: float = NOW - 30, resolved: float | None = None) -> dict:
    return {"name": name, "severity": "critical", "status": status, "labels": {}, "message": f"{name} now",
            "started_at": started, "resolved_at": resolved}


INTERVAL = 0.05


class Feed:
    """Feeds the sink as the collector's worker does: each sample (one collection interval
    after the previous one), then its alert events."""

    def __init__(self, sink: AlertmanagerSink) -> None:
        self.sink = sink
        self.active: dict[str, dict] = {}

    def sample(self, *events: dict) -> None:
        time.sleep(INTERVAL)
        for event in events:
            if event["status"] == "firing":
                self.active[event["name"]] = event
            else:
                self.active.pop(event["name"], None)
        self.sink.emit_sample({"timestamp": time.time(), "alerts": list(self.active.values()),
                               "collector": {"collection_interval": INTERVAL}})
        for event in events:
            self.sink.emit_alert(event)


def make_sink(url: str, **options) -> AlertmanagerSink:
    sink = AlertmanagerSink(url, cluster="prod", instance="i:1", generator_url="http://i:1/", timeout=2.0,
                            **options)
    sink.open()
    return sink


def test_every_sample_tries_while_alertmanager_refuses_and_the_first_answer_gets_the_current_state(manager):
    sink = make_sink(manager.url, backoff=1.0, max_backoff=30.0)
    feed = Feed(sink)
    feed.sample(alert("quorum_loss"))
    assert set(manager.last()) == {"quorum_loss"}
    manager.down = True
    before = manager.attempts
    feed.sample()
    feed.sample(alert("leader_election_failure", started=time.time()))
    resolved_at = time.time()
    feed.sample(alert("quorum_loss", "resolved", resolved=resolved_at))
    for _ in range(3):
        feed.sample()
    # one attempt per sample: never skipped for a back-off, never repeated within a sample
    assert manager.attempts - before == 6, manager.attempts - before
    assert sink.push_failures == 6 and sink.stats()["pending"] == 2, sink.stats()
    manager.down = False
    feed.sample()  # the first sample after Alertmanager answers again carries everything
    state = manager.last()
    assert set(state) == {"quorum_loss", "leader_election_failure"}, state
    assert state["quorum_loss"]["endsAt"] == go_time(resolved_at), state
    assert state["quorum_loss"]["endsAt"] < go_time(time.time())  # delivered as resolved
    assert state["leader_election_failure"]["endsAt"] > go_time(time.time())
    assert sink.stats()["pending"] == 0 and sink.stats()["resolved_unsent"] == 0, sink.stats()
    feed.sample()
    assert set(manager.last()) == {"leader_election_failure"}  # the resolution was taken: not sent again


def test_a_failed_push_is_retried_at_the_next_sample_even_with_resend(manager):
    sink = make_sink(manager.url, resend=60.0)
    feed = Feed(sink)
    manager.down = True
    feed.sample(alert("quorum_loss"))
    assert manager.attempts == 1
    manager.down = False
    feed.sample()
    assert manager.attempts == 2 and set(manager.last()) == {"quorum_loss"}
    feed.sample()
    assert manager.attempts == 2  # taken: now only every 60 s, as asked
    feed.sample(alert("high_latency", started=time.time()))
    assert manager.attempts == 3 and set(manager.last()) == {"quorum_loss", "high_latency"}


def test_events_the_sample_already_pushed_make_no_second_post(manager):
    sink = make_sink(manager.url)
    feed = Feed(sink)
    feed.sample(alert("quorum_loss"), alert("cluster_unhealthy"))
    feed.sample(alert("quorum_loss", "resolved", resolved=time.time()))
    assert manager.attempts == 2, manager.attempts
    # without samples (an API user, a `raftctl alerts` run) each event is pushed as it comes
    sink.emit_alert(alert("high_latency", started=time.time()))
    assert manager.attempts == 3 and "high_latency" in manager.last()


class HungAlertmanager(FakeAlertmanager):
    """Takes the request and answers only after ``delay`` s (past the sink's timeout)."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.hang = threading.Event()
        handler = self.server.RequestHandlerClass
        fake = self
        original = handler.do_POST

        def do_post(request) -> None:
            if fake.hang.is_set():
                with fake.lock:
                    fake.attempts += 1
                time.sleep(fake.delay)
                return
            original(request)

        handler.do_POST = do_post


def test_a_hung_alertmanager_costs_one_attempt_per_interval_and_the_worker_keeps_up():
    from raftctl.sinks.base import SinkWorker

    fake = HungAlertmanager(delay=1.0)
    sink = make_sink(fake.url)
    sink.timeout = 0.3
    worker = SinkWorker(sink, max_queue=1000)
    worker.start()
    try:
        interval = 0.1
        first = alert("quorum_loss")
        document = {"timestamp": time.time(), "alerts": [first], "collector": {"collection_interval": interval}}
        worker.submit("sample", document)
        assert worker.wait_idle(5) and fake.attempts == 1
        fake.hang.set()
        started = time.monotonic()
        for _ in range(20):  # 2 s of samples while every push times out after 0.3 s
            time.sleep(interval)
            worker.submit("sample", dict(document, timestamp=time.time()))
        # samples that waited while a push hung are not pushed again: it keeps up with sampling
        assert worker.wait_idle(1.0), (worker.pending(), fake.attempts)
        took = time.monotonic() - started
        assert 3 <= fake.attempts - 1 <= took / 0.3 + 1, (fake.attempts, took)
        fake.hang.clear()
        time.sleep(interval)
        worker.submit("sample", dict(document, timestamp=time.time()))
        assert worker.wait_idle(5)
        assert set(fake.last()) == {"quorum_loss"} and sink.stats()["pending"] == 0, sink.stats()
    finally:
        worker.close(2.0)
        fake.hang.clear()
        fake.close()


def test_every_alert_names_its_runbook_and_the_sinks_send_it_as_runbook_url(manager):
    """raftctl's own alerts reached Alertmanager and webhook receivers with a summary only, while
    the same conditions from the shipped Prometheus rules carry runbook_url: an on-call reading a
    node_down page had no link to docs/runbooks/RaftctlNodeDown.md."""
    from pathlib import Path

    from raftctl.core.alerts import ALERT_RULES, ALERT_RUNBOOKS
    from raftctl.sinks import build_sink
    from raftctl.sinks.webhook import alertmanager_payload

    root = Path(__file__).resolve().parents[2]
    rules = (root / "deploy" / "prometheus" / "raftctl-alerts.yml").read_text()
    assert set(ALERT_RUNBOOKS) == set(ALERT_RULES)
    for name, runbook in ALERT_RUNBOOKS.items():
        assert (root / "docs" / "runbooks" / f"{runbook}.md").is_file(), name
        assert f"runbook_url: docs/runbooks/{runbook}.md" in rules, name  # the rule of that condition says the same
    sink = make_sink(manager.url)
    Feed(sink).sample(alert("node_down"))
    assert manager.last()["node_down"]["annotations"] == {
        "summary": "node_down now", "description": "node_down now", "runbook_url": "docs/runbooks/RaftctlNodeDown.md"}
    sink.close()
    hosted = build_sink(f"alertmanager:{manager.url}?runbook_base=https://wiki.example/raftctl/")
    hosted.open()
    Feed(hosted).sample(alert("quorum_loss"))
    assert manager.last()["quorum_loss"]["annotations"]["runbook_url"] == "https://wiki.example/raftctl/RaftctlQuorumLost.md"
    hosted.close()
    (member,) = alertmanager_payload(alert("stale_leader"), runbook_base="runbooks/")["alerts"]
    assert member["annotations"]["runbook_url"] == "runbooks/RaftctlStaleLeader.md"
    # an alert raftctl does not know (a newer server's, through `raftctl alerts`) has none
    (member,) = alertmanager_payload(alert("some_future_alert"))["alerts"]
    assert "runbook_url" not in member["annotations"]


def test_credentials_in_a_sink_url_go_as_basic_auth_and_never_into_logs(tmp_path, caplog):
    """``alertmanager:http://bob:hunter2@host`` logged the password on every failed push, and
    neither sink ever delivered with credentials in its URL: urllib took "bob:hunter2@127.0.0.1"
    for the host name ("Name or service not known")."""
    import base64
    import logging

    from recording_receiver import RecordingReceiver

    from raftctl.sinks.webhook import WebhookSink

    expected = "Basic " + base64.b64encode(b"bob:hun ter2").decode()
    caplog.set_level(logging.DEBUG)
    manager = FakeAlertmanager()
    hook = RecordingReceiver()
    try:
        port = manager.url.rsplit(":", 1)[1]
        sink = make_sink(f"http://bob:hun%20ter2@127.0.0.1:{port}")
        Feed(sink).sample(alert("quorum_loss"))
        assert manager.posts and manager.posts[-1][0].get("authorization") == expected, manager.posts[-1:]
        manager.down = True
        Feed(sink).sample(alert("node_down"))  # a failed push is logged
        assert sink.push_failures >= 1
        shown = f"{sink!r} {sink.stats()}"
        sink.close()
        hook_port = hook.url.split(":")[2].split("/")[0]
        webhook = WebhookSink(f"http://bob:hun%20ter2@127.0.0.1:{hook_port}/hook", spool=str(tmp_path / "spool"),
                              backoff=0.05)
        webhook.open()
        webhook.emit_alert(alert("quorum_loss"))
        assert webhook.wait_delivered(10), webhook.stats()
        assert hook.posts[-1][0].get("authorization") == expected
        shown += f" {webhook!r} {webhook.stats()}"
        webhook.close()
    finally:
        manager.close()
        hook.close()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "push failed" in logged, logged
    for secret in ("hun%20ter2", "hun ter2", "bob:"):
        assert secret not in logged and secret not in shown, (secret, logged, shown)

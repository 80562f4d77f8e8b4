"""Sink plugins: registry, spec grammar, each built-in's output, the drop-oldest worker."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import threading
import time

import orjson
import pytest

from raftctl.sinks import (
    Sink,
    SinkWorker,
    available_sinks,
    build_sink,
    parse_spec,
    sink_names,
)
from raftctl.sinks.alertmodel import fingerprint, label_set_string
from raftctl.sinks.jsonl import JsonlSink
from raftctl.sinks.stdout import StdoutSink, format_sample_line
from raftctl.sinks.webhook import (
    WebhookSink,
    alertmanager_payload,
    group_payload,
    rfc3339,
)

SAMPLE = {
    "timestamp": 1_764_314_160.5, "sim_time": 12.0, "sequence": 7,
    "cluster": {"cluster_size": 3, "healthy_nodes": 3, "leader_node": "node1", "leader": "node1",
                "health_status": "HEALTHY"},
    "performance": {}, "nodes": {}, "alerts": [],
}
ALERT = {"name": "quorum_loss", "severity": "critical", "status": "firing",
         "fingerprint": "0123456789abcdef", "labels": {"cluster": "demo"},
         "message": "only 2 of 5 nodes up", "started_at": 1_764_314_100.0, "resolved_at": None,
         "started_at_sim": 3.0, "resolved_at_sim": None}


# ---------------------------------------------------------------- registry and specs

def test_builtins_are_registered_through_entry_points():
    assert {"stdout", "jsonl", "webhook", "alertmanager"} <= set(sink_names())
    rows = {row["name"]: row for row in available_sinks()}
    assert rows["jsonl"]["spec"] == "jsonl:PATH"
    assert rows["webhook"]["spec"] == "webhook:URL[?OPTIONS]"
    assert rows["alertmanager"]["spec"] == "alertmanager:URL[?OPTIONS]"
    assert all(row["description"] for row in rows.values())


def test_listing_sinks_imports_no_sink_module():
    code = textwrap.dedent("""
        import sys
        from raftctl.sinks import available_sinks
        available_sinks()
        loaded = [m for m in ("raftctl.sinks.webhook", "raftctl.sinks.jsonl", "raftctl.sinks.alertmanager",
                              "raftctl.sinks.stdout", "urllib.request") if m in sys.modules]
        print(",".join(loaded))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_parse_spec_splits_at_first_colon():
    assert parse_spec("stdout") == ("stdout", None)
    assert parse_spec("stdout:json") == ("stdout", "json")
    assert parse_spec("webhook:http://127.0.0.1:9/x") == ("webhook", "http://127.0.0.1:9/x")
    for bad in ("", "   ", None, 3):
        with pytest.raises(ValueError):
            parse_spec(bad)


def test_unknown_sink_lists_available_ones():
    with pytest.raises(ValueError) as info:
        build_sink("kafka:localhost")
    message = str(info.value)
    assert "kafka" in message and "stdout" in message and "jsonl:PATH" in message


def test_sink_registered_by_a_test_is_found_by_name(tmp_path, monkeypatch):
    (tmp_path / "fake_sink_plugin.py").write_text(textwrap.dedent("""
        from raftctl.sinks.base import Sink

        class CountingSink(Sink):
            name = "counting"
            spec_syntax = "counting[:LABEL]"
            description = "counts events (test plugin)"
    """))
    dist = tmp_path / "fake_sink_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-sink-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[raftctl.sinks]\ncounting = fake_sink_plugin:CountingSink\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "counting" in sink_names()
    sink = build_sink("counting:abc")
    assert type(sink).__name__ == "CountingSink" and sink.arg == "abc"
    rows = {row["name"]: row for row in available_sinks()}
    assert rows["counting"] == {"name": "counting", "spec": "counting[:LABEL]",
                                "description": "counts events (test plugin)"}


def test_registered_non_sink_is_rejected(tmp_path, monkeypatch):
    (tmp_path / "not_a_sink_mod.py").write_text("class NotASink:\n    pass\n")
    dist = tmp_path / "not_a_sink-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: not-a-sink\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[raftctl.sinks]\nbogus = not_a_sink_mod:NotASink\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match="not a raftctl.sinks.Sink"):
        build_sink("bogus")


# ---------------------------------------------------------------- stdout

def test_stdout_human_line_matches_seed():
    stream = io.StringIO()
    sink = StdoutSink(None, stream=stream)
    sink.emit_sample(SAMPLE)
    sink.emit_alert(ALERT)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[7] Healthy: 3/3, Leader: node1, Status: healthy"
    assert lines[1] == "ALERT firing quorum_loss (critical): only 2 of 5 nodes up"


def test_stdout_line_without_leader():
    doc = dict(SAMPLE, cluster=dict(SAMPLE["cluster"], leader_node=None, health_status="UNHEALTHY"))
    assert format_sample_line(doc).endswith("Leader: none, Status: unhealthy")


def test_stdout_json_lines_parse():
    stream = io.StringIO()
    sink = build_sink("stdout:json", stream=stream)
    sink.emit_sample(SAMPLE)
    sink.emit_alert(ALERT)
    first, second = (orjson.loads(line) for line in stream.getvalue().splitlines())
    assert first["type"] == "sample" and first["sequence"] == 7
    assert second["type"] == "alert" and second["name"] == "quorum_loss"


def test_stdout_rejects_unknown_mode():
    with pytest.raises(ValueError, match="stdout:json"):
        build_sink("stdout:xml")


# ---------------------------------------------------------------- jsonl

def test_jsonl_appends_parseable_lines(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"type":"previous"}\n')
    sink = build_sink(f"jsonl:{path}")
    sink.open()
    for _ in range(3):
        sink.emit_sample(SAMPLE)
    sink.emit_alert(ALERT)
    sink.close()
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    records = [orjson.loads(line) for line in raw.splitlines()]
    assert [r["type"] for r in records] == ["previous", "sample", "sample", "sample", "alert"]
    assert records[-1]["fingerprint"] == ALERT["fingerprint"]


def test_jsonl_lines_never_interleave_across_threads(tmp_path):
    path = tmp_path / "busy.jsonl"
    sink = JsonlSink(str(path))
    sink.open()
    big = dict(SAMPLE, nodes={f"node{i}": {"state": "FOLLOWER", "term": i} for i in range(300)})

    def writer():
        for _ in range(50):
            sink.emit_sample(big)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sink.close()
    lines = path.read_bytes().splitlines()
    assert len(lines) == 200
    assert all(orjson.loads(line)["sequence"] == 7 for line in lines)


@pytest.mark.parametrize("make_target", [
    lambda tmp: str(tmp / "missing-dir" / "x.jsonl"),
    lambda tmp: str(tmp / "a-file" / "x.jsonl"),
    lambda tmp: str(tmp),
    lambda tmp: "/sys/raftctl-cannot-write.jsonl",
    lambda tmp: "",
])
def test_jsonl_bad_targets_fail_at_construction(tmp_path, make_target):
    (tmp_path / "a-file").write_text("not a directory")
    target = make_target(tmp_path)
    with pytest.raises(ValueError, match="jsonl"):
        build_sink(f"jsonl:{target}" if target else "jsonl")


# ---------------------------------------------------------------- webhook

@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "example.com/hook",
                                 "http://", "http://host:notaport/"])
def test_webhook_rejects_non_http_urls(url):
    with pytest.raises(ValueError, match="webhook"):
        build_sink(f"webhook:{url}")


def test_webhook_needs_url_and_sane_options():
    with pytest.raises(ValueError, match="URL"):
        build_sink("webhook")
    with pytest.raises(ValueError, match="timeout"):
        WebhookSink("http://127.0.0.1:9/", timeout=0)
    with pytest.raises(ValueError, match="max_events"):
        WebhookSink("http://127.0.0.1:9/", max_events=0)
    with pytest.raises(ValueError, match="group_by"):
        WebhookSink("http://127.0.0.1:9/", group_by=())


def test_rfc3339_is_go_time_as_alertmanager_writes_it():
    assert rfc3339(0.0) == "1970-01-01T00:00:00Z"
    assert rfc3339(1_764_314_160.5) == "2025-11-28T07:16:00.5Z"
    assert rfc3339(1_764_314_160.123456) == "2025-11-28T07:16:00.123456Z"
    assert rfc3339(None) == "0001-01-01T00:00:00Z"


def test_alertmanager_payload_shape():
    payload = alertmanager_payload(ALERT, receiver="ops", external_url="http://dash:8080")
    assert payload["version"] == "4"
    assert payload["status"] == "firing"
    assert payload["receiver"] == "ops"
    # the alert's own cluster label wins over the sink's default
    assert payload["groupLabels"] == {"alertname": "quorum_loss", "cluster": "demo"}
    assert payload["groupKey"] == '{}:{alertname="quorum_loss", cluster="demo"}'
    assert payload["commonLabels"] == {"alertname": "quorum_loss", "severity": "critical",
                                       "cluster": "demo", "instance": "dash:8080"}
    assert payload["commonAnnotations"]["summary"] == ALERT["message"]
    assert payload["externalURL"] == "http://dash:8080"
    assert payload["truncatedAlerts"] == 0
    (alert,) = payload["alerts"]
    assert alert["status"] == "firing"
    assert alert["labels"]["alertname"] == "quorum_loss" and alert["labels"]["severity"] == "critical"
    assert alert["startsAt"] == rfc3339(ALERT["started_at"])
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["fingerprint"] == fingerprint(alert["labels"])
    resolved = alertmanager_payload(dict(ALERT, status="resolved", resolved_at=1_764_314_200.0))
    assert resolved["status"] == "resolved"
    assert resolved["alerts"][0]["endsAt"] == rfc3339(1_764_314_200.0)


def test_fingerprint_is_alertmanagers_fnv64a():
    # values a real Alertmanager 0.25 returned in GET /api/v2/alerts for these label sets
    # (tests/e2e/test_alertmanager_real.py checks more against a live one)
    labels = {"alertname": "leader_election_failure", "severity": "critical", "cluster": "prod",
              "instance": "h:8080", "shard": "1"}
    assert fingerprint(labels) == "182ce1bb717c23f9"
    assert fingerprint(dict(labels, shard="2")) == "1836e1bb7184787e"
    assert fingerprint({}) == "cbf29ce484222325"  # FNV-64a offset basis: model.emptyLabelSignature
    assert fingerprint({"a": "bc"}) != fingerprint({"ab": "c"})  # the 0xff separator matters


def test_label_set_string_quotes_like_go():
    assert label_set_string({"cluster": "prod", "alertname": "x"}) == '{alertname="x", cluster="prod"}'
    assert label_set_string({"a": 'say "hi"\\n'}) == '{a="say \\"hi\\"\\\\n"}'
    assert label_set_string({}) == "{}"


def _member(alertname, status="firing", **labels):
    full = {"alertname": alertname, **labels}
    return {"status": status, "labels": full, "annotations": {"summary": alertname},
            "startsAt": "2025-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://d/", "fingerprint": fingerprint(full)}


def test_group_payload_status_common_labels_and_order():
    members = [_member("lef", "resolved", instance="b", shard="2"), _member("lef", instance="a", shard="1"),
               _member("lef", instance="a", shard="0")]
    payload = group_payload(members, {"alertname": "lef"}, receiver="ops", external_url="http://d")
    assert payload["status"] == "firing"  # one member still fires
    assert [a["labels"]["shard"] for a in payload["alerts"]] == ["0", "1", "2"]  # instance, then labels
    assert payload["commonLabels"] == {"alertname": "lef"}
    everyone_resolved = group_payload([dict(m, status="resolved") for m in members], {"alertname": "lef"},
                                      receiver="ops", external_url="http://d", max_alerts=2)
    assert everyone_resolved["status"] == "resolved"
    assert len(everyone_resolved["alerts"]) == 2 and everyone_resolved["truncatedAlerts"] == 1


def test_spec_options_are_parsed_and_unknown_query_stays_in_the_url(tmp_path):
    sink = build_sink(f"webhook:http://127.0.0.1:9/hook?token=a%20b&receiver=ops&group_by=alertname,shard"
                      f"&cluster=prod&spool={tmp_path}&backoff=0.1")
    assert sink.url == "http://127.0.0.1:9/hook?token=a%20b"
    assert (sink.receiver, sink.group_by, sink.cluster, sink.backoff) == ("ops", ("alertname", "shard"), "prod", 0.1)
    for bad, message in (("?timeout=abc", "not a number"), ("?timeout=0", "> 0"), ("?max_events=1.5", "whole"),
                         ("?receiver=a&receiver=b", "twice"), ("?group_by=a,,b", "comma-separated"),
                         ("?max_age=inf", "finite")):
        with pytest.raises(ValueError, match=message):
            build_sink(f"webhook:http://127.0.0.1:9/hook{bad}")
    with pytest.raises(ValueError, match="no option"):
        build_sink("alertmanager:http://127.0.0.1:9093?clustr=prod")
    am = build_sink("alertmanager:http://127.0.0.1:9093/?cluster=prod&instance=ex-a:8080&generator_url=http://g/")
    assert (am.endpoint, am.cluster, am.identity()) == ("http://127.0.0.1:9093/api/v2/alerts", "prod",
                                                      ("ex-a:8080", "http://g/"))


def test_secret_is_not_a_spec_option():
    # a secret on a command line is visible in ps; the environment is the way
    sink = build_sink("webhook:http://127.0.0.1:9/hook?secret=hunter2")
    assert sink.secret is None and "secret=hunter2" in sink.url


def test_webhook_identity_comes_from_the_dashboard_url():
    sink = WebhookSink("http://127.0.0.1:9/", persist=False)
    sink.set_dashboard_url("http://user:pw@exchange-a:8080/")
    instance, external, generator = sink.identity()
    # credentials in the dashboard URL never reach a receiver
    assert (instance, external, generator) == ("exchange-a:8080", "http://exchange-a:8080",
                                               "http://exchange-a:8080/")
    assert "pw" not in repr(WebhookSink("http://u:secretpw@127.0.0.1:9/x?token=t", persist=False))


def test_webhook_secret_from_environment(monkeypatch):
    monkeypatch.setenv("RAFTCTL_WEBHOOK_SECRET", "s3cret")
    assert WebhookSink("http://127.0.0.1:9/").secret == "s3cret"
    assert WebhookSink("http://127.0.0.1:9/", secret="other").secret == "other"


def test_webhook_to_a_dead_port_keeps_the_event_spooled(tmp_path):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = WebhookSink(f"http://127.0.0.1:{port}/hook", backoff=0.01, max_backoff=0.02, timeout=0.5,
                       spool=str(tmp_path), drain=0.2)
    sink.open()
    sink.emit_alert(ALERT)
    assert not sink.wait_delivered(0.3)
    sink.close()
    stats = sink.stats()
    assert (stats["delivered"], stats["pending"], stats["expired"]) == (0, 1, 0)
    assert stats["attempts_failed"] >= 2 and sink.last_error
    assert sink.outcome(ALERT) == "pending"
    assert list(tmp_path.glob("webhook-spool-*.jsonl")), "the undelivered event is on disk"


# ---------------------------------------------------------------- worker

class BlockingSink(Sink):
    name = "blocking"

    def __init__(self) -> None:
        super().__init__(None)
        self.release = threading.Event()
        self.entered = threading.Event()
        self.seen: list[int] = []
        self.opened = self.closed = 0

    def open(self) -> None:
        self.opened += 1

    def emit_sample(self, sample: dict) -> None:
        self.entered.set()
        assert self.release.wait(10), "test never released the sink"
        self.seen.append(sample["sequence"])

    def emit_alert(self, alert: dict) -> None:
        raise RuntimeError("boom")

    def close(self) -> None:
        self.closed += 1


def test_worker_drops_oldest_and_counts():
    sink = BlockingSink()
    worker = SinkWorker(sink, max_queue=3)
    worker.start()
    worker.submit("sample", {"sequence": 0})
    assert sink.entered.wait(5)  # event 0 is in flight, the queue is empty
    for seq in range(1, 8):
        worker.submit("sample", {"sequence": seq})
    assert worker.dropped == 4  # 1..4 pushed out by 5..7
    sink.release.set()
    assert worker.wait_idle(5)
    assert sink.seen == [0, 5, 6, 7]
    assert worker.close(5)
    assert (sink.opened, sink.closed) == (1, 1)


def test_worker_counts_sink_errors_and_keeps_going():
    sink = BlockingSink()
    sink.release.set()
    worker = SinkWorker(sink, max_queue=10)
    worker.start()
    worker.submit("alert", ALERT)
    worker.submit("sample", {"sequence": 1})
    assert worker.wait_idle(5)
    assert worker.errors == 1 and sink.seen == [1]
    worker.close(5)


def test_worker_close_gives_up_on_a_stuck_sink():
    sink = BlockingSink()
    worker = SinkWorker(sink, max_queue=10)
    worker.start()
    worker.submit("sample", {"sequence": 1})
    worker.submit("sample", {"sequence": 2})
    assert sink.entered.wait(5)
    assert worker.close(timeout=0.05) is False
    assert worker.dropped == 1  # the queued event that could not be delivered
    sink.release.set()


class InlineSink(BlockingSink):
    name = "inline"
    emits_alerts_inline = True

    def __init__(self) -> None:
        super().__init__()
        self.alerts: list[str] = []

    def emit_alert(self, alert: dict) -> None:
        self.alerts.append(alert["name"])


def test_inline_alert_sink_loses_no_alert_while_its_queue_is_stuck():
    # the webhook sink spools alerts itself; a full worker queue must never drop one
    sink = InlineSink()
    worker = SinkWorker(sink, max_queue=1)
    worker.start()
    worker.submit("sample", {"sequence": 1})
    assert sink.entered.wait(5)  # the worker thread is stuck in a sample
    for i in range(10):
        worker.submit("alert", dict(ALERT, name=f"a{i}"))
    assert sink.alerts == [f"a{i}" for i in range(10)] and worker.dropped == 0
    sink.release.set()
    assert worker.close(5)


class BatchSink(BlockingSink):
    name = "batch"

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []

    def emit_alerts(self, alerts: list[dict]) -> None:
        self.batches.append([a["name"] for a in alerts])


def test_worker_hands_one_samples_alert_events_together_to_a_sink_that_batches():
    batching, inline_plain = BatchSink(), InlineSink()
    queued_plain = type("QueuedSink", (InlineSink,), {"emits_alerts_inline": False})()
    inline_batch = type("InlineBatch", (BatchSink,), {"emits_alerts_inline": True})()
    for sink in (batching, inline_plain, queued_plain, inline_batch):
        sink.release.set()
    workers = [SinkWorker(s, max_queue=10) for s in (batching, inline_plain, queued_plain, inline_batch)]
    for worker in workers:
        worker.start()
    events = [dict(ALERT, name=f"a{i}") for i in range(3)]
    for worker in workers:
        worker.submit_alerts(events)
        worker.submit_alerts([])
    assert all(worker.wait_idle(5) for worker in workers)
    assert batching.batches == [["a0", "a1", "a2"]] and inline_batch.batches == [["a0", "a1", "a2"]]
    # no emit_alerts of their own: one emit_alert per event, queued or inline
    assert inline_plain.alerts == queued_plain.alerts == ["a0", "a1", "a2"]
    assert [w.delivered for w in workers] == [3, 3, 3, 3]
    for worker in workers:
        worker.close(5)


def test_a_dropped_batch_counts_its_events():
    sink = BatchSink()
    worker = SinkWorker(sink, max_queue=1)
    worker.start()
    worker.submit("sample", {"sequence": 0})
    assert sink.entered.wait(5)  # stuck in the sample
    worker.submit_alerts([dict(ALERT, name=f"a{i}") for i in range(3)])
    worker.submit("sample", {"sequence": 1})  # pushes the batch out of the full queue
    assert worker.dropped == 3
    sink.release.set()
    assert worker.close(5)


# ---------------------------------------------------------------- `raftctl sinks` lists every option

def test_sinks_command_lists_every_option_each_sink_takes():
    from raftctl.commands.sinks import list_sinks
    from raftctl.sinks.alertmanager import AlertmanagerSink

    rows = {row["name"]: row for row in list_sinks()}
    for name, cls in (("webhook", WebhookSink), ("alertmanager", AlertmanagerSink),
                      ("jsonl", JsonlSink), ("stdout", StdoutSink)):
        assert rows[name]["options"] == sorted(cls.spec_options), (name, rows[name])
    assert {"max_alerts", "max_events", "drain"} <= set(rows["webhook"]["options"])
    assert {"backoff", "max_backoff", "max_age"} <= set(rows["alertmanager"]["options"])


def test_readme_documents_every_option_of_the_builtin_sinks():
    from pathlib import Path

    from raftctl.sinks.alertmanager import AlertmanagerSink

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()

    def section(title: str) -> str:
        start = readme.index(f"### {title}")
        return readme[start:readme.index("\n### ", start + 1)] if "\n### " in readme[start + 1:] else readme[start:]

    for title, cls in (("Sinks", WebhookSink), ("Pushing to Alertmanager", AlertmanagerSink)):
        text = section(title)
        missing = [name for name in cls.spec_options if f"`{name}=" not in text]
        assert not missing, f"README '{title}' does not document {missing}"


class _Failing(Sink):
    name = "failing"

    def emit_sample(self, sample: dict) -> None:
        raise RuntimeError("disk on fire")


class _Hung(Sink):
    name = "hung"

    def __init__(self, arg: str | None = None, **options: object) -> None:
        super().__init__(arg, **options)
        self.release = threading.Event()

    def emit_sample(self, sample: dict) -> None:
        self.release.wait(30)


def test_a_sink_failing_on_every_sample_is_logged_once_with_its_traceback_not_every_time(caplog):
    worker = SinkWorker(_Failing(), max_queue=100)
    worker.start()
    try:
        with caplog.at_level("ERROR", logger="raftctl.sinks.base"):
            for i in range(20):
                worker.submit("sample", {"sequence": i})
            assert worker.wait_idle(5)
        assert worker.errors == 20
        reports = [r for r in caplog.records if "failed on a sample event" in r.getMessage()]
        assert len(reports) == 1 and reports[0].exc_info is not None, [r.getMessage() for r in caplog.records]
    finally:
        worker.close(1)


def test_hung_sinks_are_closed_together_within_one_budget_and_named():
    from raftctl.runtime.collector import MetricsCollector

    hung = [_Hung(), _Hung()]
    collector = MetricsCollector(sinks=hung)
    collector._open_sinks()
    try:
        for sink in hung:
            collector._workers[hung.index(sink)].submit("sample", {"sequence": 1})
        started = time.monotonic()
        collector._close_sinks(1.0)
        took = time.monotonic() - started
        assert took < 2.5, took  # one budget (1 s) and a short join, not 2 x (1 s + 1 s)
        assert collector.undrained_sinks == ["hung", "hung"]
    finally:
        for sink in hung:
            sink.release.set()


def test_a_converter_factory_declared_uncalled_is_a_clear_error_naming_the_fix():
    from raftctl.sinks.base import opt_int, split_spec_options

    class Counting(Sink):
        name = "counting"
        spec_options = {"every": opt_int}  # the mistake: the factory, not opt_int(1)

    with pytest.raises(ValueError, match=r"spec_options\['every'\] is a converter factory.*opt_int\(1\)"):
        split_spec_options(Counting, "counting", "/tmp/x?every=2")

    class Right(Sink):
        name = "right"
        spec_options = {"every": opt_int(1)}

    assert split_spec_options(Right, "right", "/tmp/x?every=2") == ("/tmp/x", {"every": 2})


@pytest.mark.parametrize("spec, shown", [
    ("webhook:notaurl", "'notaurl'"),  # it said '://notaurl', which nobody typed
    ("webhook:u:secret@host?token=abc", "'host'"),
    ("webhook:ftp://u:secret@h/x", "'ftp://h/x'"),
    ("alertmanager:ftp://u:secret@h:9093", "'ftp://h:9093'"),  # the password was echoed
    ("alertmanager:notaurl", "'notaurl'"),
])
def test_a_bad_sink_url_is_shown_as_typed_less_its_secrets(spec, shown):
    from raftctl.sinks import build_sink

    with pytest.raises(ValueError) as caught:
        build_sink(spec)
    message = str(caught.value)
    assert message.endswith(f"with a host, got {shown}"), message
    assert "secret" not in message and "abc" not in message

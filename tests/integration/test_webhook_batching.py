"""One POST per changed group per sample (or per `raftctl alerts` run), as Alertmanager sends them.

When several alerts of one group change in the same sample (three nodes crash at once), a real
Alertmanager sends one notification carrying the group's state after all of them; the webhook
sink used to POST once per alert, so a receiver saw ``firing [node1]``, ``firing [node1,node2]``
... and, when all three healed, two stale "firing" posts before the "resolved" one. The spool
keeps its promises for these combined notifications too: written before sent, delivered in
order across samples, never queued twice (its idempotency key names every event it carries),
and ``outcome(event)`` tells what became of each event.
"""

from __future__ import annotations

import hashlib
import socket
import time
from pathlib import Path

import orjson
import pytest
from recording_receiver import RecordingReceiver

from raftctl import Cluster, MetricsCollector
from raftctl.commands import _common
from raftctl.commands import alerts as alerts_cmd
from raftctl.core.workload import Workload
from raftctl.sinks.webhook import IDEMPOTENCY_HEADER, WebhookSink

SEED = 5
BASE = 1_764_314_100.0


class Receiver(RecordingReceiver):
    """Records every POST (Idempotency-Key header, decoded body); "down" answers 503."""

    def snapshot(self) -> list[tuple[str, dict]]:
        with self.lock:
            return [(headers.get(IDEMPOTENCY_HEADER.lower(), ""), body) for headers, body in self.posts]


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def node_down(node: str, status: str = "firing", started: float = BASE, resolved: float | None = None) -> dict:
    return {"name": "node_down", "severity": "warning", "status": status, "fingerprint": f"fp-{node}",
            "labels": {"node": node, "reason": "refused"}, "message": f"{node} does not answer the monitor (refused)",
            "started_at": started, "resolved_at": resolved}


def summary_of(post: dict) -> tuple[str, list[tuple[str, str]]]:
    return post["status"], [(a["labels"].get("node", a["labels"]["alertname"]), a["status"]) for a in post["alerts"]]


def make_sink(url: str, spool: Path, **options) -> WebhookSink:
    settings = {"backoff": 0.02, "max_backoff": 0.2, "timeout": 1.0, "drain": 2.0, "spool": str(spool)}
    settings.update(options)
    sink = WebhookSink(url, **settings)
    sink.set_dashboard_url("http://127.0.0.1:8080")
    return sink


# ------------------------------------------------------------------ the collector path

def test_three_nodes_crashing_in_one_sample_are_one_post_and_healing_is_one_post(receiver, tmp_path):
    cluster = Cluster(node_count=5, seed=SEED)
    Workload(cluster, rate=100.0, seed=SEED)
    assert cluster.run_until(lambda: cluster.leader_id is not None, timeout=5.0), f"seed={SEED}"
    sink = make_sink(receiver.url, tmp_path, receiver="ops", cluster="exp2")
    collector = MetricsCollector(sinks=[sink])
    collector.set_cluster(cluster)
    try:
        cluster.run_for(1.0)
        collector.collect()
        victims = [n for n in cluster.node_ids if n != cluster.leader_id][:3]
        for victim in victims:
            cluster.crash(victim)
        cluster.run_for(1.0)
        fired = [e for e in collector.collect()["alerts"] if e["name"] == "node_down"]
        assert len(fired) == 3, f"seed={SEED} {fired}"
        for _ in range(2):
            cluster.run_for(1.0)
            collector.collect()
        for victim in victims:
            cluster.restart(victim)
        for _ in range(4):
            cluster.run_for(1.0)
            collector.collect()
        assert not collector.latest()["alerts"], f"seed={SEED} {collector.latest()['alerts']}"
        assert collector.flush(10) and sink.wait_delivered(10), sink.stats()
        posts = [body for _key, body in receiver.snapshot()
                 if body["groupLabels"] == {"alertname": "node_down", "cluster": "exp2"}]
        down = sorted(victims)
        assert [summary_of(p) for p in posts] == [
            ("firing", [(n, "firing") for n in down]),
            ("resolved", [(n, "resolved") for n in down]),
        ], [summary_of(p) for p in posts]
        # each post names the three events it reports; keys are unique per notification
        keys = [key for key, _body in receiver.snapshot()]
        assert len(keys) == len(set(keys))
        for key, body in receiver.snapshot():
            assert body["idempotencyKey"] == key
        firing_key = posts[0]["idempotencyKey"]
        assert firing_key.count(",") == 2 and firing_key.count(":firing") == 3, firing_key
        # every other group (quorum_loss, cluster_unhealthy, ...) changed once each way: one post each
        others = [body for _key, body in receiver.snapshot() if body["groupLabels"]["alertname"] != "node_down"]
        names = [b["groupLabels"]["alertname"] for b in others]
        assert all(names.count(n) == 2 for n in names), names
        doc = collector.latest()["collector"]
        stats = sink.stats()
        # the figures count alert events, whatever number of posts carried them
        assert stats["delivered"] == doc["alerts_fired"] + doc["alerts_resolved"], stats
        assert stats["notifications_delivered"] == len(receiver.snapshot()), stats
    finally:
        collector.stop()


# ------------------------------------------------------------------ spool guarantees for batches

def test_a_batch_is_one_spooled_notification_delivered_once_across_a_restart(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    batch = [node_down("node1"), node_down("node2"), node_down("node3")]
    first = make_sink(url, tmp_path, drain=0.0)
    first.open()
    first.emit_alerts(batch)
    event_keys = [first.key_for(e) for e in batch]
    stats = first.stats()
    assert (stats["pending"], stats["notifications_pending"]) == (3, 1), stats
    assert [first.outcome(e) for e in batch] == ["pending"] * 3
    first.close()  # raftctl stops while the receiver is down: the notification stays spooled

    receiver = Receiver(port)
    second = make_sink(url, tmp_path)
    try:
        second.open()
        assert second.wait_delivered(10), second.stats()
        posts = receiver.snapshot()
        assert len(posts) == 1, posts
        key, body = posts[0]
        assert key == ",".join(event_keys) == body["idempotencyKey"]
        assert summary_of(body) == ("firing", [("node1", "firing"), ("node2", "firing"), ("node3", "firing")])
        assert [second.outcome(e) for e in batch] == ["delivered"] * 3
        # the same events again (a cron run that could not tell they were delivered): never re-queued
        second.emit_alerts(batch)
        second.emit_alert(batch[1])
        assert second.stats()["duplicates_skipped"] == 4
        # a batch mixing a known event with a new one carries only the new one's key
        second.emit_alerts([batch[0], node_down("node1", "resolved", resolved=BASE + 5)])
        assert second.wait_delivered(10)
        posts = receiver.snapshot()
        assert len(posts) == 2, posts
        assert posts[1][0] == second.key_for(node_down("node1", "resolved", resolved=BASE + 5))
        assert summary_of(posts[1][1]) == ("firing", [("node1", "resolved"), ("node2", "firing"),
                                                      ("node3", "firing")])
        second.close()
        # a third raftctl on the compacted spool still knows every event of the batch
        third = make_sink(url, tmp_path)
        third.open()
        assert [third.outcome(e) for e in batch] == ["delivered"] * 3
        third.emit_alerts(batch)
        assert third.stats()["duplicates_skipped"] == 3 and third.wait_delivered(5)
        third.close()
        assert len(receiver.snapshot()) == 2
    finally:
        second.close()
        receiver.close()


def test_a_spool_an_earlier_version_wrote_is_delivered_and_its_keys_still_known(receiver, tmp_path):
    sink = make_sink(receiver.url, tmp_path)
    old, done = node_down("node1"), node_down("node2")
    old_key, done_key = sink.key_for(old), sink.key_for(done)
    name = "webhook-spool-" + hashlib.sha256(receiver.url.encode()).hexdigest()[:16] + ".jsonl"
    lines = [{"op": "add", "key": old_key, "t": time.time(), "payload": {"idempotencyKey": old_key, "alerts": []}},
             {"op": "add", "key": done_key, "t": time.time(), "payload": {"idempotencyKey": done_key}},
             {"op": "done", "key": done_key, "t": time.time(), "outcome": "delivered"}]
    (tmp_path / name).write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    sink.open()
    try:
        assert sink.wait_delivered(10), sink.stats()
        assert [key for key, _body in receiver.snapshot()] == [old_key]
        assert sink.outcome(old) == sink.outcome(done) == "delivered"
        sink.emit_alerts([old, done])
        assert sink.stats()["duplicates_skipped"] == 2 and sink.wait_delivered(5)
        assert len(receiver.snapshot()) == 1
    finally:
        sink.close()


def test_batches_of_successive_samples_are_delivered_in_order_after_an_outage(receiver, tmp_path):
    receiver.down = True
    sink = make_sink(receiver.url, tmp_path)
    sink.open()
    try:
        nodes = ("node1", "node2", "node3")
        sink.emit_alerts([node_down(n) for n in nodes])                        # sample 1: all three down
        sink.emit_alerts([node_down("node2", "resolved", resolved=BASE + 1)])  # sample 2: node2 back
        sink.emit_alerts([node_down(n, "resolved", resolved=BASE + 2) for n in ("node1", "node3")])
        assert wait_for(lambda: sink.attempts_failed >= 3, 10), sink.stats()
        assert sink.stats()["pending"] == 6 and sink.stats()["notifications_pending"] == 3
        receiver.down = False
        assert sink.wait_delivered(10), sink.stats()
        assert [summary_of(body) for _key, body in receiver.snapshot()] == [
            ("firing", [("node1", "firing"), ("node2", "firing"), ("node3", "firing")]),
            ("firing", [("node1", "firing"), ("node2", "resolved"), ("node3", "firing")]),
            ("resolved", [("node1", "resolved"), ("node3", "resolved")]),
        ]
        assert sink.stats()["delivered"] == 6
    finally:
        sink.close()


# ------------------------------------------------------------------ the `raftctl alerts` path

URL = "http://127.0.0.1:8890"


def test_one_alerts_run_posts_once_per_changed_group(receiver, tmp_path, monkeypatch):
    doc: dict = {"active": [], "resolved": []}
    monkeypatch.setattr(_common, "http_get_json", lambda base, path, timeout=0: doc)
    state = tmp_path / "state.json"
    nodes = ("node1", "node2", "node3")

    def run(summary_alerts: list[dict]) -> None:
        sink = make_sink(receiver.url, tmp_path / "spool")
        alerts_cmd.forward_alerts(URL, {"alerts": summary_alerts}, [sink], state, timeout=10)

    run([])  # the first run only learns the server (nothing firing yet)
    doc["active"] = [node_down(n) for n in nodes]
    run(doc["active"])
    doc["active"], doc["resolved"] = [], [node_down(n, "resolved", resolved=BASE + 9) for n in nodes]
    run([])
    assert [summary_of(body) for _key, body in receiver.snapshot()] == [
        ("firing", [(n, "firing") for n in nodes]),
        ("resolved", [(n, "resolved") for n in nodes]),
    ], [summary_of(body) for _key, body in receiver.snapshot()]
    run([])  # nothing new: nothing sent
    assert len(receiver.snapshot()) == 2

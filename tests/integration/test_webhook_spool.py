"""Webhook delivery that loses nothing (issue 16 part 3), against a live receiver on 127.0.0.1.

The receiver dedupes by the Idempotency-Key header, as a careful receiver would, and counts
what it got: distinct events (delivered), copies (duplicates). Lost = sent events minus
distinct ones. Back-off settings are small so every test stays within a few seconds.
"""

from __future__ import annotations

import http.server
import logging
import socket
import threading
import time

import orjson
import pytest

from raftctl.sinks.webhook import IDEMPOTENCY_HEADER, WebhookSink

EVENTS = 20  # 10 alerts, each firing then resolving


class Receiver:
    """mode: "ok" answers 200; "500" fails; "slow" answers after ``delay`` s (past our timeout)."""

    def __init__(self, port: int = 0, mode: str = "ok", delay: float = 0.0) -> None:
        self.mode = mode
        self.delay = delay
        self.keys: list[str] = []
        self.bodies: dict[str, dict] = {}
        self.hits = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.hits += 1
                    mode, delay = receiver.mode, receiver.delay
                if mode == "500":
                    self._answer(500)
                    return
                key = self.headers.get(IDEMPOTENCY_HEADER, "")
                with receiver.lock:  # slow receivers still process what they got
                    receiver.keys.append(key)
                    receiver.bodies[key] = orjson.loads(body)
                if mode == "slow":
                    time.sleep(delay)
                self._answer(200)

            def _answer(self, status: int) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the client gave up waiting

            def log_message(self, *args) -> None:
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def counts(self, sent_keys: set[str]) -> dict[str, int]:
        with self.lock:
            distinct = set(self.keys)
            return {"delivered": len(distinct & sent_keys), "duplicates": len(self.keys) - len(distinct),
                    "lost": len(sent_keys - distinct)}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def events(count: int = EVENTS, base: float = 1_764_314_100.0) -> list[dict]:
    out = []
    for i in range(count // 2):
        alert = {"name": "leader_election_failure", "severity": "critical", "status": "firing",
                 "fingerprint": f"fp{i}", "labels": {"shard": str(i)}, "message": f"shard {i}: no leader",
                 "started_at": base + i, "resolved_at": None}
        out.append(alert)
        out.append(dict(alert, status="resolved", resolved_at=base + i + 0.5))
    return out


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def make_sink(url: str, spool, **options) -> WebhookSink:
    settings = {"backoff": 0.02, "max_backoff": 0.2, "timeout": 0.5, "drain": 0.3, "spool": str(spool)}
    settings.update(options)
    sink = WebhookSink(url, **settings)
    sink.set_dashboard_url("http://127.0.0.1:8080")
    return sink


@pytest.mark.parametrize("outage", ["down", "500"])
def test_every_event_delivered_after_the_receiver_recovers(outage, tmp_path):
    port = free_port()
    receiver = Receiver(port, mode="500") if outage == "500" else None
    sink = make_sink(f"http://127.0.0.1:{port}/hook", tmp_path)
    sink.open()
    try:
        sent = events()
        keys = {sink.key_for(e) for e in sent}
        for event in sent:
            sink.emit_alert(event)
        assert len(keys) == EVENTS
        # the outage lasts a while: retries keep failing, nothing is given up on
        assert wait_for(lambda: sink.attempts_failed >= 5, timeout=10)
        assert sink.stats()["pending"] == EVENTS and sink.stats()["expired"] == 0
        if receiver is None:
            receiver = Receiver(port)
        else:
            receiver.mode = "ok"
        assert sink.wait_delivered(10), sink.stats()
        counts = receiver.counts(keys)
        print(f"\n[{outage}] webhook delivery after outage: {counts}")
        assert counts == {"delivered": EVENTS, "duplicates": 0, "lost": 0}
        stats = sink.stats()
        assert (stats["delivered"], stats["pending"], stats["expired"]) == (EVENTS, 0, 0)
        # delivered in order: each post's key is the next event's
        assert receiver.keys == [sink.key_for(e) for e in sent]
    finally:
        sink.close()
        if receiver is not None:
            receiver.close()


def test_delivery_survives_a_restart_across_the_outage(tmp_path):
    port = free_port()
    first = make_sink(f"http://127.0.0.1:{port}/hook", tmp_path)
    first.open()
    sent = events()
    for event in sent:
        first.emit_alert(event)
    assert wait_for(lambda: first.attempts_failed >= 1, timeout=5)
    first.close()  # raftctl stops while the receiver is down
    assert first.stats()["pending"] == EVENTS
    spooled = list(tmp_path.glob("webhook-spool-*.jsonl"))
    assert len(spooled) == 1 and spooled[0].stat().st_size > 0
    receiver = Receiver(port)
    second = make_sink(f"http://127.0.0.1:{port}/hook", tmp_path)
    try:
        second.open()  # a new raftctl on the same spool delivers what the first could not
        assert second.wait_delivered(10), second.stats()
        keys = {second.key_for(e) for e in sent}
        counts = receiver.counts(keys)
        print(f"\n[restart] webhook delivery across a restart: {counts}")
        assert counts == {"delivered": EVENTS, "duplicates": 0, "lost": 0}
        assert second.stats()["delivered"] == EVENTS
        # and it never sends them again: the same events re-emitted are recognised
        for event in sent:
            second.emit_alert(event)
        assert second.stats()["duplicates_skipped"] == EVENTS
        assert second.wait_delivered(2) and len(receiver.keys) == EVENTS
    finally:
        second.close()
        receiver.close()
    assert not list(tmp_path.glob("*.tmp")), "no temporary files left behind"


def test_a_receiver_that_times_out_gets_few_copies_all_with_one_key(tmp_path):
    # answers 0.8 s late to our 0.3 s timeout: it processed the post, we did not hear back
    receiver = Receiver(mode="slow", delay=0.8)
    sink = make_sink(receiver.url, tmp_path, timeout=0.3, backoff=0.05, max_backoff=2.0)
    sink.open()
    try:
        event = events(2)[0]
        sink.emit_alert(event)
        assert sink.wait_delivered(15), sink.stats()
        copies = receiver.hits
        # each retry waits twice as long for the answer (0.3, 0.6, 1.2 s): the third attempt hears it
        assert copies <= 3, copies
        assert set(receiver.keys) == {sink.key_for(event)}
        print(f"\n[slow receiver] copies of one event: {copies} (the old sink sent 4)")
    finally:
        sink.close()
        receiver.close()


def test_events_older_than_max_age_are_counted_and_logged_once(tmp_path, caplog):
    sink = make_sink(f"http://127.0.0.1:{free_port()}/hook", tmp_path, max_age=0.3)
    caplog.set_level(logging.WARNING, logger="raftctl.sinks.webhook")
    sink.open()
    try:
        for event in events(6):
            sink.emit_alert(event)
        assert wait_for(lambda: sink.stats()["expired"] == 6, timeout=10), sink.stats()
        stats = sink.stats()
        assert (stats["delivered"], stats["pending"], stats["failed"]) == (0, 0, 6)
    finally:
        sink.close()
    expiry_lines = [r for r in caplog.records if "older than" in r.getMessage()]
    assert 1 <= len(expiry_lines) <= 2, [r.getMessage() for r in expiry_lines]  # not once per retry


def test_spool_is_bounded_and_counts_what_it_pushes_out(tmp_path):
    sink = make_sink(f"http://127.0.0.1:{free_port()}/hook", tmp_path, max_events=5)
    sink.open()
    try:
        for event in events(8):
            sink.emit_alert(event)
        stats = sink.stats()
        assert (stats["pending"], stats["spool_overflowed"], stats["expired"]) == (5, 3, 3)
    finally:
        sink.close()


def test_a_torn_spool_line_is_skipped_and_the_rest_delivered(tmp_path):
    port = free_port()
    first = make_sink(f"http://127.0.0.1:{port}/hook", tmp_path, drain=0.0)
    first.open()
    sent = events(4)
    for event in sent:
        first.emit_alert(event)
    first.close()
    (spool,) = tmp_path.glob("webhook-spool-*.jsonl")
    with open(spool, "ab") as handle:  # a crash in the middle of writing a fifth one
        handle.write(b'{"op":"add","key":"torn","t":1.0,"payl')
    receiver = Receiver(port)
    second = make_sink(f"http://127.0.0.1:{port}/hook", tmp_path)
    try:
        second.open()
        assert second.wait_delivered(10)
        assert receiver.counts({second.key_for(e) for e in sent}) == {"delivered": 4, "duplicates": 0, "lost": 0}
        assert second._spool is not None and second._spool.torn_lines == 1
    finally:
        second.close()
        receiver.close()


def test_spool_writes_only_in_its_directory(tmp_path, monkeypatch):
    state_home = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state_home))
    explicit = tmp_path / "explicit"
    sink = make_sink(f"http://127.0.0.1:{free_port()}/hook", explicit, drain=0.0)
    sink.open()
    sink.emit_alert(events(2)[0])
    sink.close()
    assert not state_home.exists()
    assert {p.name.split(".")[0] for p in explicit.iterdir()} == {sink._spool.filename.split(".")[0]}
    # without spool=, the default is $XDG_STATE_HOME/raftctl
    default = WebhookSink(f"http://127.0.0.1:{free_port()}/hook", drain=0.0)
    default.open()
    default.emit_alert(events(2)[0])
    default.close()
    assert [p.parent for p in state_home.rglob("webhook-spool-*.jsonl")] == [state_home / "raftctl"]


def test_a_second_process_on_the_same_spool_keeps_events_in_memory(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="raftctl.sinks.spool")
    url = f"http://127.0.0.1:{free_port()}/hook"
    owner, other = make_sink(url, tmp_path, drain=0.0), make_sink(url, tmp_path, drain=0.0)
    owner.open()
    try:
        other.open()
        assert other._spool is not None and not other._spool.persistent
        assert any("in use" in r.getMessage() for r in caplog.records)
        other.close()
    finally:
        owner.close()


def test_serve_says_at_its_stop_what_a_webhook_did_not_deliver(tmp_path):
    """`serve` ended with 'sinks flushed' while its webhook held 20 undelivered notifications
    for a receiver that was down: the stop now says how many wait, and where."""
    from raftctl.commands.serve import undelivered_lines

    url = f"http://127.0.0.1:{free_port()}/hook"
    sink = make_sink(url, tmp_path, drain=0.0)
    sink.open()
    for event in events(4):
        sink.emit_alert(event)
    sink.close()
    (line,) = undelivered_lines([sink])
    assert line == (f"webhook {url}: 4 alert events not delivered yet, kept in its spool "
                    f"{sink._spool.path}; the next run with that spool sends them"), line
    # a sink with nothing left, or one that cannot say, adds no line
    delivered = make_sink(url, tmp_path / "other", drain=0.0)
    delivered.open()
    delivered.close()
    assert undelivered_lines([delivered]) == []

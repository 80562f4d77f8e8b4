"""`raftctl alerts`' state file: a file it cannot use is reset with one warning line, never a crash.

A cron job must not fail forever, page twice or lose a resolution because the file that
remembers what was forwarded got damaged or hand-edited: every level of its shape is checked,
what is still usable is kept, the rest is reset (said once on stderr), and the plugin's status
line and exit code are the cluster's as always.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import orjson
import pytest

from raftctl import cli
from raftctl.commands import _common
from raftctl.commands import alerts as alerts_cmd

URL = "http://127.0.0.1:8890"
OTHER = "http://127.0.0.1:8899"


def alert(name: str, status: str = "firing", started: float = 100.0, resolved: float | None = None) -> dict:
    return {"name": name, "severity": "critical", "status": status, "fingerprint": f"fp-{name}",
            "labels": {}, "message": f"{name} happened", "started_at": started, "resolved_at": resolved}


def summary(alerts: list[dict] | None = None, health: str = "HEALTHY") -> dict:
    return {"timestamp": time.time(), "sim_time": 1.0, "sequence": 1,
            "cluster": {"cluster_size": 3, "healthy_nodes": 3, "leader_node": "node1", "leader": "node1",
                        "health_status": health, "current_term": 2, "health_reasons": [], "leader_changes": 0},
            "performance": {"total_orders": 10, "total_trades": 2, "throughput_ops": 5.0, "avg_latency_ms": 3.0},
            "nodes": {f"node{i}": {"state": "FOLLOWER", "up": True} for i in (1, 2, 3)},
            "alerts": alerts or []}


class RecordingSink:
    name = "recording"

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.failed = 0

    def open(self) -> None:
        pass

    def emit_alert(self, event: dict) -> None:
        self.events.append((event["status"], event["name"]))

    def close(self) -> None:
        pass


@pytest.fixture
def server(monkeypatch):
    """What /api/alerts answers: {"active": [...], "resolved": [...]} (the test sets it)."""
    doc: dict = {"active": [], "resolved": []}
    monkeypatch.setattr(_common, "http_get_json", lambda base, path, timeout=0: doc)
    return doc


def forward(path: Path, doc: dict, sink: RecordingSink | None = None) -> RecordingSink:
    sink = sink or RecordingSink()
    alerts_cmd.forward_alerts(URL, summary(doc["active"]), [sink], path, timeout=5)
    return sink


def warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


def key(a: dict) -> str:
    return alerts_cmd.alert_key(a)


BROKEN = {
    "servers-a-number": (b'{"servers": 5}', '"servers" is a number'),
    "server-a-list": (orjson.dumps({"servers": {URL: []}}), "is a list"),
    "entry-a-number": (orjson.dumps({"servers": {URL: {"fp-x@1": 5}}}), "fp-x@1"),
    "entry-an-unknown-status": (orjson.dumps({"servers": {URL: {"fp-x@1": "pending"}}}), "pending"),
    "document-a-list": (b"[1, 2]", "is a list"),
    "document-a-string": (b'"hello"', "is a string"),
    "document-null": (b"null", "is null"),
    "not-json": (b"garbage", "not JSON"),
    "truncated-json": (b'{"servers": {"http://127.0.0.1:8890": {"fp', "not JSON"),
    "not-utf8": (b"\xff\xfe{}", "not JSON"),
    "empty": (b"", "empty"),
    "blank": (b"  \n", "empty"),
    "unknown-version": (orjson.dumps({"version": 9, "servers": {}}), '"version" is 9, not 1'),
    "version-not-a-number": (orjson.dumps({"version": "1", "servers": {}}), '"version" is a string'),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_state_file_it_cannot_use_is_reset_with_one_warning_line(name, tmp_path, server, capsys):
    raw, fragment = BROKEN[name]
    path = tmp_path / "st.json"
    path.write_bytes(raw)
    server["active"] = [alert("quorum_loss")]
    sink = forward(path, server)
    err = warnings(capsys.readouterr().err)
    assert len(err) == 1, err
    assert str(path) in err[0] and "reset" in err[0] and fragment in err[0], err
    # what a first run does: the alert firing now is sent, and remembered
    assert sink.events == [("firing", "quorum_loss")]
    saved = orjson.loads(path.read_bytes())
    assert {k: v for k, v in saved.items() if k != "firing"} == {
        "version": 1, "servers": {URL: {key(alert("quorum_loss")): "firing"}}}
    assert list(saved["firing"][URL]) == [key(alert("quorum_loss"))]  # the alert itself, to resolve it
    # the next run has a good file again: no warning, no second page
    again = forward(path, server)
    assert again.events == [] and capsys.readouterr().err == ""


def test_a_missing_state_file_is_a_first_run_without_a_warning(tmp_path, server, capsys):
    server["active"] = [alert("quorum_loss")]
    server["resolved"] = [alert("old", "resolved", started=10.0, resolved=20.0)]
    sink = forward(tmp_path / "new" / "st.json", server)
    assert sink.events == [("firing", "quorum_loss")]  # history is not replayed to a pager
    assert capsys.readouterr().err == ""


def test_only_the_broken_parts_are_reset(tmp_path, server, capsys):
    firing, other = alert("quorum_loss"), alert("split_brain")
    path = tmp_path / "st.json"
    path.write_bytes(orjson.dumps({"version": 1, "servers": {
        URL: {key(firing): "firing", "fp-junk@1": ["firing"]},
        OTHER: {key(other): "firing"},
        "http://127.0.0.1:8898": "not an object",
    }}))
    server["active"] = [firing]
    sink = forward(path, server)
    err = warnings(capsys.readouterr().err)
    assert len(err) == 1 and "fp-junk@1" in err[0] and "8898" in err[0] and "reset" in err[0], err
    assert sink.events == [], "the alert it had already sent is still known: no second page"
    saved = orjson.loads(path.read_bytes())["servers"]
    assert saved == {URL: {key(firing): "firing"}, OTHER: {key(other): "firing"}}


def test_after_a_reset_resolutions_are_sent_so_no_receiver_keeps_an_alert_open(tmp_path, server, capsys):
    # the file said quorum_loss was firing before it got damaged; it resolved meanwhile
    path = tmp_path / "st.json"
    path.write_bytes(b'{"servers": {"http://127.0.0.1:8890": {"fp-quorum_loss@100.0": "firi')
    server["active"] = [alert("leader_election_failure", started=140.0)]
    server["resolved"] = [alert("quorum_loss", "resolved", resolved=150.0)]
    sink = forward(path, server)
    assert "reset" in capsys.readouterr().err
    # the resolution goes out (receivers do not page on one); no firing copy of a past episode
    assert sorted(sink.events) == [("firing", "leader_election_failure"), ("resolved", "quorum_loss")]
    assert forward(path, server).events == []


BROKEN_FIRING = {
    "labels-a-string": ({"labels": "oops"}, '"labels" is not an object of strings'),
    "label-a-number": ({"labels": {"node": 3}}, '"labels" is not an object of strings'),
    "started-at-a-word": ({"started_at": "yesterday"}, '"started_at" is a string'),
    "started-at-a-boolean": ({"started_at": True}, '"started_at" is a boolean'),
    "name-missing": ({"name": None}, '"name" is missing'),
    "message-a-list": ({"message": ["x"]}, '"message" is a list'),
}


@pytest.mark.parametrize("name", sorted(BROKEN_FIRING))
def test_a_broken_remembered_alert_is_dropped_with_one_warning_and_forwarding_goes_on(name, tmp_path, server,
                                                                                      capsys):
    """A hand-edited firing entry ("labels": "oops") made every later run fail with "internal
    error: AttributeError" and forward nothing, a quorum loss included."""
    change, fragment = BROKEN_FIRING[name]
    gone = alert("node_down")
    path = tmp_path / "st.json"
    path.write_bytes(orjson.dumps({"version": 1, "servers": {URL: {key(gone): "firing"}},
                                   "firing": {URL: {key(gone): {**gone, **change}}}}))
    server["active"] = [alert("quorum_loss", started=200.0)]
    sink = forward(path, server)
    err = warnings(capsys.readouterr().err)
    assert len(err) == 1 and "partly reset" in err[0] and fragment in err[0], err
    assert sink.events == [("firing", "quorum_loss")]
    saved = orjson.loads(path.read_bytes())
    assert list(saved["firing"][URL]) == [key(alert("quorum_loss", started=200.0))]
    again = forward(path, server)
    assert again.events == [] and capsys.readouterr().err == ""


@pytest.mark.parametrize("firing, fragment", [
    ("oops", '"firing" is a string'), ([1], '"firing" is a list'), ({URL: 5}, "is a number"),
    ({URL: {"fp-x@1": "oops"}}, "is a string, not an object")])
def test_a_broken_firing_part_is_reset_with_one_warning(firing, fragment, tmp_path, server, capsys):
    path = tmp_path / "st.json"
    path.write_bytes(orjson.dumps({"version": 1, "servers": {URL: {}}, "firing": firing}))
    server["active"] = [alert("quorum_loss")]
    sink = forward(path, server)
    err = warnings(capsys.readouterr().err)
    assert len(err) == 1 and "reset" in err[0] and fragment in err[0], err
    assert sink.events == [("firing", "quorum_loss")]
    assert forward(path, server).events == [] and capsys.readouterr().err == ""


def test_the_state_file_is_replaced_atomically_and_leaves_no_temporary_file(tmp_path, server, monkeypatch):
    path = tmp_path / "st.json"
    path.write_bytes(orjson.dumps({"version": 1, "servers": {URL: {}}}))
    before = path.read_bytes()
    server["active"] = [alert("quorum_loss")]

    def failing_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(alerts_cmd.os, "replace", failing_replace)
    with pytest.raises(_common.CliError, match="cannot write state file"):
        forward(path, server)
    assert path.read_bytes() == before, "the old file is intact"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["st.json", "st.json.lock"], "no temporary file left"


# -- the whole command, in process ---------------------------------------------------------

@pytest.fixture
def cluster(monkeypatch, server):
    doc = {"summary": summary([alert("quorum_loss")], health="UNHEALTHY")}
    server["active"] = doc["summary"]["alerts"]
    monkeypatch.setattr(_common, "fetch_summary", lambda base, timeout=0: doc["summary"])
    return doc


@pytest.mark.parametrize("raw", [b'{"servers": 5}', orjson.dumps({"servers": {URL: []}}), b"garbage", b""])
def test_the_plugin_prints_its_status_line_whatever_the_state_file_holds(raw, tmp_path, cluster, capsys):
    path = tmp_path / "st.json"
    path.write_bytes(raw)
    out_file = tmp_path / "out.jsonl"
    args = ["alerts", "--url", URL, "--state-file", str(path), "--sink", f"jsonl:{out_file}"]
    for run in range(2):
        code = cli.run(args)
        out, err = capsys.readouterr()
        assert code == alerts_cmd.CRITICAL, (code, out, err)
        assert out.startswith("RAFTCTL CRITICAL - UNHEALTHY") and len(out.splitlines()) == 1, out
        if run == 0:
            assert len(warnings(err)) == 1 and "reset" in err and "internal error" not in err, err
        else:
            assert err == "", err
    lines = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert [(r["status"], r["name"]) for r in lines] == [("firing", "quorum_loss")], "one event, not one per run"


def test_an_unexpected_failure_while_forwarding_still_gives_the_status_line(tmp_path, cluster, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise TypeError("something nobody foresaw")

    monkeypatch.setattr(alerts_cmd, "plan_events", broken)
    code = cli.run(["alerts", "--url", URL, "--state-file", str(tmp_path / "st.json"),
                    "--sink", f"jsonl:{tmp_path / 'out.jsonl'}"])
    out, err = capsys.readouterr()
    assert code == alerts_cmd.CRITICAL and out.startswith("RAFTCTL CRITICAL"), (code, out, err)
    assert len(warnings(err)) == 1 and "not forwarded" in err and "TypeError" in err, err



def test_an_alert_the_restarted_server_no_longer_lists_is_sent_resolved_once(tmp_path, server):
    """Cron `alerts --sink webhook:...` forwarded four firing alerts during a quorum loss; the
    server restarted, healthy, and listed none of them: nothing was ever sent again and the
    receiver kept them open for ever. What was last sent as firing is now sent resolved."""
    path = tmp_path / "st.json"
    server["active"] = [alert("quorum_loss"), alert("node_down")]
    first = forward(path, server)
    assert sorted(first.events) == [("firing", "node_down"), ("firing", "quorum_loss")]
    server["active"], server["resolved"] = [], []  # a new server process: no memory of either
    after = forward(path, server)
    assert sorted(after.events) == [("resolved", "node_down"), ("resolved", "quorum_loss")], after.events
    assert forward(path, server).events == []  # once
    saved = orjson.loads(path.read_bytes())
    assert saved["firing"][URL] == {} and set(saved["servers"][URL].values()) <= {"resolved"}, saved


def test_a_resolution_not_delivered_is_tried_again_next_run(tmp_path, server):
    path = tmp_path / "st.json"
    server["active"] = [alert("quorum_loss")]
    forward(path, server)
    server["active"] = []
    refused = RecordingSink()
    refused.emit_alert = lambda event: (_ for _ in ()).throw(OSError("receiver down"))  # type: ignore[method-assign]
    from raftctl.commands._common import CliError

    with pytest.raises(CliError, match="not delivered yet"):
        forward(path, server, refused)
    again = forward(path, server)
    assert again.events == [("resolved", "quorum_loss")], again.events

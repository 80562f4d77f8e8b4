"""`raftctl watch` across a server restart: the new run's sparklines and maxima are its own."""

from __future__ import annotations

from raftctl.commands import _common
from raftctl.commands.watch import Watcher


def doc(seq: int, started: float, throughput: float) -> dict:
    return {"sequence": seq, "timestamp": started + seq, "sim_time": float(seq),
            "collector": {"started_at": started, "collection_interval": 1.0},
            "cluster": {"health_status": "HEALTHY", "leader_node": "node1"},
            "performance": {"throughput_ops": throughput}, "nodes": {}, "alerts": []}


def test_a_restarted_server_s_samples_replace_the_old_run_s(monkeypatch):
    served: dict = {"summary": None, "history": []}
    monkeypatch.setattr(_common, "fetch_summary", lambda base, timeout=0: served["summary"])
    monkeypatch.setattr(_common, "fetch_history", lambda base, seconds, timeout=0: served["history"])
    watcher = Watcher("http://127.0.0.1:1", 1.0)
    # the first run: a throughput spike of 900 at sequence 3
    first = [doc(s, 100.0, 900.0 if s == 3 else 100.0) for s in range(1, 9)]
    served["history"] = first[:5]
    for sample in first[4:]:
        served["summary"] = sample
        assert watcher.poll()
    assert [d["sequence"] for d in watcher.history] == list(range(1, 9))
    # the server restarts: a new collector, sequences from 1 again, its own history
    second = [doc(s, 500.0, 50.0) for s in range(1, 4)]
    served["history"] = second[:2]
    served["summary"] = second[2]
    assert watcher.poll()
    assert [(d["collector"]["started_at"], d["sequence"]) for d in watcher.history] == \
        [(500.0, 1), (500.0, 2), (500.0, 3)]
    assert max(d["performance"]["throughput_ops"] for d in watcher.history) == 50.0
    # the same run going on keeps its history
    served["summary"] = doc(4, 500.0, 60.0)
    assert watcher.poll()
    assert [d["sequence"] for d in watcher.history] == [1, 2, 3, 4]


def test_a_sequence_that_goes_back_is_another_run_even_without_a_start_time():
    watcher = Watcher("http://127.0.0.1:1", 1.0)
    bare = {"sequence": 9}
    watcher.history.append(bare)
    assert watcher._new_run({"sequence": 2}) and not watcher._new_run({"sequence": 10})

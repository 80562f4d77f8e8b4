"""Pure pieces of the CLI: URL checks, fault schedules, the Nagios verdict, alert forwarding plans,
rendering helpers and the demo report's arithmetic."""

from __future__ import annotations

import random

import pytest

from raftctl.commands._common import check_summary, normalize_url, BadAnswer
from raftctl.commands.alerts import evaluate, plan_events
from raftctl.commands.demo_run import latency_summary, pair_alerts
from raftctl.commands.faults import (FAULT_KINDS, FaultInjector, default_fail_at, parse_fail_at, plan,
                                     random_schedule)
from raftctl.commands.render import plain_line, sparkline


def summary(health="HEALTHY", alerts=(), healthy=5):
    return {"cluster": {"cluster_size": 5, "healthy_nodes": healthy, "leader_node": "node1", "leader": "node1",
                        "health_status": health, "current_term": 2, "consensus_aligned": True},
            "performance": {"total_orders": 10, "total_trades": 3, "throughput_ops": 12.25, "avg_latency_ms": 4.5},
            "nodes": {}, "alerts": list(alerts)}


def test_normalize_url(monkeypatch):
    monkeypatch.delenv("RAFTCTL_URL", raising=False)
    assert normalize_url(None) == "http://127.0.0.1:8080"
    assert normalize_url("https://example.org:9090/") == "https://example.org:9090"
    monkeypatch.setenv("RAFTCTL_URL", "http://10.0.0.1:1234")
    assert normalize_url(None) == "http://10.0.0.1:1234"
    for bad in ("ftp://h", "h:80", "http://", "http://h:0", "http://h:70000", "http://h/?x=1", "http://a b"):
        with pytest.raises(ValueError):
            normalize_url(bad)


def test_check_summary_rejects_wrong_shapes():
    check_summary(summary(), "x")
    for doc in ([], {}, {"error": "no sample collected yet"}, {"cluster": {}, "performance": 3, "nodes": {}}):
        with pytest.raises(BadAnswer):
            check_summary(doc, "x")


def test_parse_fail_at():
    assert parse_fail_at("100, 30,60") == [30, 60, 100]
    assert parse_fail_at("none") == [] and parse_fail_at("") == []
    for bad in ("x", "30,,60", "0", "-5", "30,30", "1.5"):
        with pytest.raises(ValueError):
            parse_fail_at(bad)


def test_default_schedule_scales_with_ticks():
    assert default_fail_at(200) == [30, 60, 100, 130]
    assert default_fail_at(100) == [15, 30, 50, 65]
    steps = plan(default_fail_at(200), 200)
    assert [s.kind for s in steps] == list(FAULT_KINDS)
    assert [s.heal_tick for s in steps] == [48, 78, 118, 148]
    with pytest.raises(ValueError, match="beyond"):
        plan([30, 201], 200)
    # heals never go past the last tick
    assert plan([199], 200)[0].heal_tick == 200


def test_injector_majority_crash_loses_quorum_and_heals():
    from raftctl import Cluster

    seed = 3
    cluster = Cluster(node_count=5, seed=seed)
    assert cluster.run_until(lambda: cluster.leader_id is not None, timeout=5.0), f"seed {seed}"
    injector = FaultInjector(cluster, random.Random(seed))
    leader = cluster.leader_id
    record = injector.inject(plan([1, 2, 3], 10)[2])  # crash_majority
    assert leader in record.nodes and len(record.nodes) == 3
    assert sum(1 for s in cluster.statuses().values() if s["up"]) == 2
    injector.heal(record)
    assert all(s["up"] for s in cluster.statuses().values())
    assert injector.active == []


def test_random_schedule_is_seeded_and_non_overlapping():
    first = random_schedule(random.Random(9), 0, 20, 0.3)
    assert first == random_schedule(random.Random(9), 0, 20, 0.3)
    assert first != random_schedule(random.Random(10), 0, 20, 0.3)
    for a, b in zip(first, first[1:]):
        assert a.tick < a.heal_tick <= b.tick


def test_nagios_verdicts():
    ok = evaluate(summary())
    assert ok["exit_code"] == 0 and ok["text"].startswith("RAFTCTL OK - HEALTHY")
    text, perf = ok["text"].split(" | ")
    assert "healthy_nodes=5;;;0;5" in perf and "throughput_ops=12.25" in perf and "avg_latency_ms=4.5ms" in perf
    assert "total_orders=10c" in perf
    assert evaluate(summary("DEGRADED", healthy=4))["exit_code"] == 1
    warn = {"name": "high_latency", "severity": "warning", "status": "firing"}
    crit = {"name": "quorum_loss", "severity": "critical", "status": "firing"}
    assert evaluate(summary(alerts=[warn]))["exit_code"] == 1
    assert evaluate(summary("UNHEALTHY", alerts=[warn, crit]))["exit_code"] == 2
    assert evaluate(summary("UNHEALTHY"))["exit_code"] == 2
    resolved = dict(crit, status="resolved")
    assert evaluate(summary(alerts=[resolved]))["exit_code"] == 0


def test_nagios_line_names_the_shard_of_a_sharded_alert():
    sharded = {"name": "leader_election_failure", "severity": "critical", "status": "firing",
               "labels": {"shard": "2"}}
    plain = {"name": "high_latency", "severity": "warning", "status": "firing", "labels": {}}
    result = evaluate(summary("UNHEALTHY", alerts=[sharded, plain]))
    detail = result["text"].split(" | ")[0]
    assert "firing: leader_election_failure[shard=2] (critical), high_latency (warning)" in detail
    assert result["firing"][0]["labels"] == {"shard": "2"}


def _alert(name, status="firing", started=10.0, resolved=None):
    return {"name": name, "severity": "critical", "status": status, "fingerprint": f"fp-{name}",
            "started_at": started, "resolved_at": resolved, "message": name, "labels": {}}


def test_forwarding_plan_sends_each_event_once():
    firing = _alert("quorum_loss")
    events, state = plan_events([firing], {}, first_run=True)
    assert [e["status"] for e in events] == ["firing"]
    assert plan_events([firing], state, first_run=False)[0] == []
    done = _alert("quorum_loss", "resolved", resolved=20.0)
    events, state = plan_events([done], state, first_run=False)
    assert [e["status"] for e in events] == ["resolved"]
    assert plan_events([done], state, first_run=False)[0] == []
    # fired and resolved between two runs: both are sent, firing first
    blip = _alert("leader_election_failure", "resolved", started=30.0, resolved=31.0)
    events, state = plan_events([done, blip], state, first_run=False)
    assert [(e["name"], e["status"]) for e in events] == [("leader_election_failure", "firing"),
                                                         ("leader_election_failure", "resolved")]
    # the same alert firing again later is a new episode
    again = _alert("quorum_loss", started=50.0)
    assert [e["status"] for e in plan_events([done, again], state, first_run=False)[0]] == ["firing"]


def test_first_run_does_not_replay_history():
    old = _alert("quorum_loss", "resolved", resolved=20.0)
    events, state = plan_events([old], {}, first_run=True)
    assert events == [] and list(state.values()) == ["resolved"]


def test_sparkline_and_plain_line():
    assert sparkline([0, 5, 10]) == "▁▅█"
    assert sparkline([]) == "" and sparkline([None, 1.0]) == " █"
    assert sparkline([0, 0]) == "▁▁"
    assert len(sparkline(list(range(100)), width=40)) == 40
    assert plain_line(summary(), 1) == "[1] Healthy: 5/5, Leader: node1, Status: healthy"


def test_latency_summary_and_alert_pairing():
    stats = latency_summary([float(v) for v in range(1, 101)])
    assert stats["count"] == 100 and stats["p50"] == 50.0 and stats["p99"] == 99.0 and stats["max"] == 100.0
    assert latency_summary([])["p50"] is None
    events = [
        {"name": "a", "fingerprint": "f", "started_at_sim": 1.0, "status": "firing", "sim_time": 1.0, "tick": 3},
        {"name": "a", "fingerprint": "f", "started_at_sim": 1.0, "status": "resolved", "sim_time": 4.0, "tick": 13},
        {"name": "a", "fingerprint": "f", "started_at_sim": 9.0, "status": "firing", "sim_time": 9.0, "tick": 30},
    ]
    pairs = pair_alerts(events)
    assert [(p["fired_tick"], p["resolved_tick"]) for p in pairs] == [(3, 13), (30, None)]

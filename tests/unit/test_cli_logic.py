"""Pure pieces of the CLI: URL checks, fault schedules, the Nagios verdict, alert forwarding plans,
rendering helpers and the demo report's arithmetic."""

from __future__ import annotations

import random

import pytest

from raftctl.commands._common import check_summary, normalize_url, BadAnswer
from raftctl.commands.alerts import evaluate, plan_events
from raftctl.commands.demo_run import latency_summary, pair_alerts
from raftctl.commands.faults import (default_fail_at, describe_step, fault_entry, parse_fail_at, scenario_lineup,
                                     schedule, tick_at)
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
    # --url '' (a script's unset variable) is an error, not a silent default; an empty
    # RAFTCTL_URL counts as unset
    for empty in ("", "   "):
        with pytest.raises(ValueError, match="the URL is empty"):
            normalize_url(empty)
    monkeypatch.setenv("RAFTCTL_URL", " ")
    assert normalize_url(None) == "http://127.0.0.1:8080"


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
    demo = schedule(default_fail_at(200), 200, 0.3)
    injects = [s for s in demo.steps if not s.is_heal]
    heals = [s for s in demo.steps if s.is_heal]
    assert [s.kind for s in injects] == ["crash_follower", "crash_leader", "crash_majority", "isolate_leader"]
    assert [tick_at(s.offset_s, 0.3) for s in injects] == [30, 60, 100, 130]
    assert [tick_at(s.offset_s, 0.3) for s in heals] == [48, 78, 118, 148]
    assert [s.ends for s in heals] == [s.ref for s in injects]
    with pytest.raises(ValueError, match="beyond"):
        schedule([30, 201], 200, 0.3)
    # heals never go past the last tick
    assert tick_at(schedule([199], 200, 0.3).steps[-1].offset_s, 0.3) == 200


def test_scenario_lineup_spaces_scenarios_and_sizes_the_run():
    planned, ticks = scenario_lineup(["quorum_loss", "flapping_leader"], 0.3)
    (first, at1), (second, at2) = planned
    assert (first.name, second.name) == ("quorum_loss", "flapping_leader")
    assert at1 == 6.0 and at2 == at1 + first.length_s + 10.0
    assert ticks == tick_at(at2 + second.length_s + 6.0, 0.3)
    assert tick_at(9.0, 0.3) == 30 and tick_at(9.1, 0.3) == 31 and tick_at(0.0, 0.3) == 0


def test_demo_schedule_hits_the_demo_targets_and_reports_each_fault():
    from raftctl import Cluster
    from raftctl.core.scenarios import lineup_loop

    seed = 3
    cluster = Cluster(node_count=5, seed=seed)
    assert cluster.run_until(lambda: cluster.leader_id is not None, timeout=5.0), f"seed {seed}"
    loop = lineup_loop(cluster, [(schedule([1, 2, 3], 200, 0.3), 0.0)], random.Random(seed))
    leader = cluster.leader_id
    loop.advance(0.3)  # tick 1: a follower crashes
    (follower,) = loop.faults[0].nodes
    assert follower != leader, f"seed {seed}"
    loop.advance(0.6)  # tick 2: the leader crashes (still the same: nothing ran in between)
    assert loop.faults[1].nodes == [leader], f"seed {seed}"
    cluster.run_until(lambda: cluster.leader_id is not None, timeout=5.0)
    new_leader = cluster.leader_id
    lines = [describe_step(r, "tick 3") for r in loop.advance(0.9)]  # a majority crashes
    majority = loop.faults[2].nodes
    assert new_leader in majority and len(majority) == 3, f"seed {seed}: {majority}"
    assert lines == [f"tick 3: a majority crashes (quorum loss): {', '.join(majority)}"]
    assert sum(1 for s in cluster.statuses().values() if s["up"]) == 0
    entry = fault_entry(loop.faults[2], 0.3)
    assert entry == {"tick": 3, "kind": "crash_majority", "scenario": "demo",
                     "description": "a majority crashes (quorum loss)", "nodes": majority,
                     "injected_at": entry["injected_at"], "heal_tick": 21, "healed_at": None, "effective": True,
                     "note": ""}
    loop.heal_all()
    assert all(s["up"] for s in cluster.statuses().values())
    assert loop.active == [] and fault_entry(loop.faults[2], 0.3)["healed_at"] == round(cluster.now, 3)


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


def test_nagios_line_names_the_shards_of_a_sharded_alert():
    sharded = {"name": "leader_election_failure", "severity": "critical", "status": "firing",
               "labels": {}, "shards": [2]}
    plain = {"name": "high_latency", "severity": "warning", "status": "firing", "labels": {}}
    result = evaluate(summary("UNHEALTHY", alerts=[sharded, plain]))
    detail = result["text"].split(" | ")[0]
    assert "firing: leader_election_failure[shard=2]" in detail and len(detail) < 80  # Nagios: under 80
    assert result["firing"][0]["shards"] == [2] and "shards" not in result["firing"][1]


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

"""The named scenario library on a real simulated cluster, watched by the collector.

Each scenario must keep Raft safe, heal back to a converged cluster, and be seen by the
collector: every health-changing incident detected, no alert without a cause.
"""

from __future__ import annotations

import random

import pytest

from raftctl import Cluster, MetricsCollector, Workload
from raftctl.core import scenarios
from raftctl.core.detection import DetectionTracker
from raftctl.core.safety import SafetyChecker

START = 2.0


def watched_cluster(seed: int, nodes: int = 5):
    cluster = Cluster(node_count=nodes, seed=seed)
    checker = SafetyChecker(cluster)
    Workload(cluster, rate=50.0, seed=seed)
    tracker = DetectionTracker(cluster, collection_interval=1.0)
    collector = MetricsCollector(collection_interval=1.0, retention_period=120, alert_callback=tracker.observe_alert)
    collector.set_cluster(cluster)
    samples: list[dict] = []

    def sample(c):
        doc = collector.collect()
        samples.append(doc)
        tracker.observe_sample(doc)

    cluster.every(1.0, sample)
    return cluster, checker, tracker, samples


def play(name: str, seed: int):
    cluster, checker, tracker, samples = watched_cluster(seed)
    scenario = scenarios.get(name)
    run = scenario.start(cluster, at=START, rng=random.Random(seed)).schedule()
    cluster.run_for(START + scenario.length_s + 4.0)
    cluster.workload.paused = True
    assert cluster.run_until(lambda: cluster.converged() and not cluster.outstanding, timeout=5.0), \
        f"{name} seed={seed}: no convergence after heal"
    cluster.run_for(2.0)
    checker.check_final(cluster)
    assert checker.ok, f"{name} seed={seed}: {checker.violations[:3]}"
    return cluster, run, tracker, samples


SEEDS = (1, 2, 3)


@pytest.mark.parametrize("name", scenarios.names())
@pytest.mark.parametrize("seed", SEEDS)
def test_scenario_is_safe_heals_and_is_detected_without_false_alarms(name, seed):
    cluster, run, tracker, samples = play(name, seed)
    assert run.done and run.records, f"{name} seed={seed}"
    report = tracker.report()
    assert report.recall == 1.0, f"{name} seed={seed}: missed {report.missed}"
    assert not report.false_alarms, f"{name} seed={seed}: false alarms {report.false_alarms}"
    assert max(report.latencies_s, default=0.0) <= 2.0, f"{name} seed={seed}: {report.latencies_s}"
    assert samples[-1]["cluster"]["health_status"] == "HEALTHY", f"{name} seed={seed}"
    assert not samples[-1]["alerts"], f"{name} seed={seed}: alerts still firing {samples[-1]['alerts']}"
    stats = cluster.stats()
    assert stats["orders_acknowledged"] == stats["orders_submitted"], f"{name} seed={seed}"


def health_seen(samples):
    return {s["cluster"]["health_status"] for s in samples}


def fired(tracker):
    return {e["name"] for e in tracker.alert_events if e["status"] == "firing"}


@pytest.mark.parametrize("seed", SEEDS)
def test_what_each_scenario_does(seed):
    _c, run, tracker, samples = play("follower_crash", seed)
    victim = run.records[0].nodes
    assert len(victim) == 1 and "DEGRADED" in health_seen(samples), f"seed={seed}"
    assert "UNHEALTHY" not in health_seen(samples), f"seed={seed}: a follower crash is not UNHEALTHY"
    assert tracker.report().incidents["node_down"]["detected"] == 1

    _c, run, tracker, samples = play("quorum_loss", seed)
    assert len(run.records[0].nodes) == 3, f"seed={seed}"
    assert {"quorum_loss", "cluster_unhealthy"} <= fired(tracker), f"seed={seed}: {fired(tracker)}"
    resolved = [e["name"] for e in tracker.alert_events if e["status"] == "resolved"]
    assert resolved.count("quorum_loss") == 1, f"seed={seed}: {resolved}"

    cluster, run, tracker, samples = play("leader_isolation", seed)
    old = run.records[0].nodes[0]
    leaders_after = [entry[1] for entry in cluster.leadership_log if entry[0] > START]
    assert leaders_after and leaders_after[0] != old, f"seed={seed}: majority side did not elect"
    assert tracker.report().incidents["leader_loss"]["detected"] == 1

    cluster, run, tracker, samples = play("split_brain_attempt", seed)
    minority = run.records[0].nodes
    assert len(minority) == 2, f"seed={seed}"
    elected = [entry for entry in cluster.leadership_log if START < entry[0] < START + scenarios.HOLD_S]
    assert elected and all(entry[1] not in minority for entry in elected), \
        f"seed={seed}: only the majority side may elect during the split: {elected}"

    cluster, run, tracker, samples = play("flapping_leader", seed)
    assert cluster.stats()["leader_changes"] >= 3, f"seed={seed}"


@pytest.mark.parametrize("seed", SEEDS)
def test_a_paused_leader_is_down_then_stale_never_a_second_leader(seed):
    cluster, run, tracker, samples = play("paused_leader", seed)
    old = run.records[0].nodes[0]
    paused_at, resumed_at = START, START + scenarios.HOLD_S
    election_s = cluster.config.election_timeout_max_ms / 1000.0
    during = [s for s in samples if paused_at < s["sim_time"] < resumed_at]
    # the monitor cannot tell a frozen node from a dead one: DOWN, with the poll's reason
    assert all(s["nodes"][old]["state"] == "DOWN" and s["nodes"][old]["down_reason"] == "timeout"
               for s in during), f"seed={seed}"
    first_new = next(s for s in during if s["cluster"]["leader_node"] not in (None, old))
    assert first_new["sim_time"] <= paused_at + election_s + 1.0, f"seed={seed}: {first_new['sim_time']}"
    # woken, it still says LEADER in its old term: shown as a stale leader, not a second one
    woken = next(s for s in samples if s["sim_time"] >= resumed_at)
    assert woken["nodes"][old]["state"] == "STALE_LEADER", f"seed={seed}: {woken['nodes'][old]}"
    assert f"stale_leader:{old}" in woken["cluster"]["health_reasons"]
    for s in samples:
        leaders = [nid for nid, node in s["nodes"].items() if node["state"] == "LEADER"]
        assert len(leaders) <= 1, f"seed={seed} t={s['sim_time']}: two leaders shown {leaders}"
    names = {(e["name"], e["labels"].get("node")) for e in tracker.alert_events if e["status"] == "firing"}
    assert ("node_down", old) in names and ("stale_leader", old) in names, f"seed={seed}: {names}"
    assert samples[-1]["nodes"][old]["state"] == "FOLLOWER"


@pytest.mark.parametrize("seed", SEEDS)
def test_a_monitor_cut_off_says_what_it_reaches_and_claims_no_quorum_loss(seed):
    cluster, run, tracker, samples = play("monitor_partition", seed)
    (seen,) = run.records[0].nodes
    during = [s for s in samples if START < s["sim_time"] < START + scenarios.HOLD_S]
    assert during
    for s in during:
        cluster_doc = s["cluster"]
        assert cluster_doc["health_status"] == "UNHEALTHY", f"seed={seed}"
        assert "monitor_reach:1/5" in cluster_doc["health_reasons"], cluster_doc["health_reasons"]
        # it cannot tell: not lost, not held either (1 of 5 answered)
        assert cluster_doc["has_quorum"] is None and "quorum_lost" not in cluster_doc["health_reasons"], f"seed={seed}"
        assert [nid for nid, node in s["nodes"].items() if node["up"]] == [seen]
    assert "quorum_loss" not in fired(tracker), f"seed={seed}"
    report = tracker.report()
    assert report.incidents["monitor_blind"]["detected"] == 1 and not report.false_alarms, f"seed={seed}"


def drive_demo_schedule(seed: int, node_seed: int):
    """The demo's default schedule on the demo's tick clock (steps before each 0.3 s tick)."""
    ticks, tick_s = 200, 0.3
    fail_at = [30, 60, 100, 130]
    cluster = Cluster(node_count=5, seed=seed)
    Workload(cluster, rate=50.0, seed=seed)
    run = scenarios.demo_scenario(fail_at, tick_s, 18, ticks).start(cluster, 0.0, random.Random(node_seed))
    done = []
    for tick in range(1, ticks + 1):
        leader = cluster.leader_id  # before the step
        done += [(tick, r.step.action, tuple(r.nodes), leader) for r in run.advance(now=tick * tick_s)]
        cluster.run_for(tick_s)
    return done, run, cluster.trace_hash


def test_demo_schedule_hits_the_demo_targets_and_replays_by_seed():
    for seed in SEEDS:
        done, run, trace = drive_demo_schedule(seed, 99)
        assert [(t, a) for t, a, _n, _l in done] == [(30, "crash"), (48, "restart"), (60, "crash"), (78, "restart"),
                                                     (100, "crash"), (118, "restart"), (130, "isolate"),
                                                     (148, "heal")], f"seed={seed}"
        (follower,), (leader,), majority, (isolated,) = (f.nodes for f in run.faults)
        assert follower != done[0][3] and leader == done[2][3], f"seed={seed}: {done}"
        assert len(majority) == 3 and done[4][3] in majority and isolated == done[6][3], f"seed={seed}: {done}"
        assert [f.kind for f in run.faults] == ["crash_follower", "crash_leader", "crash_majority", "isolate_leader"]
        assert all(f.healed_at is not None for f in run.faults) and not run.active, f"seed={seed}"
        again = drive_demo_schedule(seed, 99)
        assert (again[0], again[2]) == (done, trace), f"seed={seed}: the same seeds must replay"


def test_a_heal_whose_fault_hit_nothing_does_nothing():
    cluster = Cluster(node_count=5, seed=1)  # no leader elected yet at time 0
    run = scenarios.get("leader_isolation").start(cluster, 0.0, random.Random(1))
    (inject,) = run.advance(0.0)
    assert inject.nodes == [] and inject.note == "no leader at that moment"
    (heal,) = run.advance(scenarios.HOLD_S)
    assert heal.note == "nothing to heal" and run.faults[0].healed_at is None
    assert cluster.fault_log == [], "no heal may reach the cluster for a fault that hit nothing"


@pytest.mark.parametrize("seed", SEEDS)
def test_sharded_targets_leader_is_shard_0s_and_a_follower_leads_nothing(seed):
    cluster = Cluster(node_count=5, seed=seed, shards=2)
    assert cluster.run_until(lambda: None not in cluster.shard_leaders().values(), timeout=10.0), f"seed={seed}"
    leaders = cluster.shard_leaders()
    rng = random.Random(seed)
    follower = scenarios.get("follower_crash").start(cluster, cluster.now, rng).advance()[0]
    assert follower.nodes and follower.nodes[0] not in leaders.values(), f"seed={seed}: {follower}, {leaders}"
    assert follower.note == "", f"seed={seed}"
    crash = scenarios.get("leader_crash").start(cluster, cluster.now, rng).advance()[0]
    assert crash.nodes == [leaders[0]], f"seed={seed}"
    led = sorted(g for g, nid in leaders.items() if nid == leaders[0])
    assert crash.note == f"leads shard{'s' if len(led) > 1 else ''} {', '.join(map(str, led))}", f"seed={seed}"


def test_loops_play_one_scenario_at_a_time_and_replay_by_seed():
    def random_run(seed: int):
        cluster = Cluster(node_count=5, seed=seed)
        loop = scenarios.random_loop(cluster, random.Random(seed), random.Random(seed + 1), gap_s=(2.0, 4.0))
        for tick in range(1, 400):
            loop.advance(tick * 0.3)
            cluster.run_for(0.3)
        return loop

    for seed in SEEDS:
        loop = random_run(seed)
        assert len(loop.runs) >= 4, f"seed={seed}"
        for before, after in zip(loop.runs, loop.runs[1:]):
            assert before.done and after.start_at >= before.end_at + 2.0 - 1e-9, f"seed={seed}"
            assert after.start_at <= before.end_at + 4.0 + 1e-9, f"seed={seed}"
        assert {f.scenario for f in loop.faults} <= set(scenarios.names())
        again = random_run(seed)
        assert [(f.scenario, f.nodes, f.injected.due) for f in again.faults] == \
               [(f.scenario, f.nodes, f.injected.due) for f in loop.faults], f"seed={seed}"

    cluster = Cluster(node_count=5, seed=1)
    planned = scenarios.lineup([scenarios.get("quorum_loss"), scenarios.get("lossy_network")], 3.0, 2.0)
    loop = scenarios.lineup_loop(cluster, planned, random.Random(1))
    assert loop.next_fault()[0] == 3.0
    for tick in range(1, 100):
        loop.advance(tick * 0.3)
        cluster.run_for(0.3)
    assert loop.done and [f.scenario for f in loop.faults] == ["quorum_loss", "lossy_network"]
    assert [r.start_at for r in loop.runs] == [3.0, 3.0 + scenarios.HOLD_S + 2.0]
    assert loop.next_fault() is None and not loop.active
    with pytest.raises(ValueError, match="shorter than the scenario"):
        scenarios.repeat_loop(cluster, scenarios.get("quorum_loss"), 1.0, random.Random(1))


def test_library_lookup_description_and_bad_input():
    assert set(scenarios.names()) >= {"follower_crash", "leader_crash", "quorum_loss", "leader_isolation",
                                      "flapping_leader", "slow_follower", "lossy_network", "split_brain_attempt"}
    text = scenarios.describe_all()
    for name in scenarios.names():
        assert name in text
        assert scenarios.get(name).steps[-1].action in ("restart", "heal", "network", "resume")
    with pytest.raises(ValueError, match="unknown scenario 'nope'; known: follower_crash"):
        scenarios.get("nope")
    with pytest.raises(ValueError, match="unknown scenario action"):
        scenarios.Step(0.0, "explode")
    combined = scenarios.get("follower_crash").then(scenarios.get("leader_crash"), gap_s=2.0)
    assert combined.length_s == scenarios.HOLD_S * 2 + 2.0
    assert combined.steps[3].target == "ref:leader_crash.victim" and combined.steps[3].ends == "leader_crash.victim"
    assert scenarios.parse_names(["quorum_loss, follower_crash", "quorum_loss"]) == \
        ["quorum_loss", "follower_crash", "quorum_loss"]
    for bad in (["nope"], [" , "], []):
        with pytest.raises(ValueError, match="known: follower_crash"):
            scenarios.parse_names(bad)
    # every fault a scenario injects is healed by a later step of the same scenario
    for scenario in scenarios.SCENARIOS.values():
        for step in scenario.steps:
            if not step.is_heal:
                assert any(s.ends == step.ref and s.offset_s > step.offset_s for s in scenario.steps), scenario.name

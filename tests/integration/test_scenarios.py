"""The named scenario library on a real simulated cluster, watched by the collector.

Each scenario must keep Raft safe, heal back to a converged cluster, and be seen by the
collector: every health-changing incident detected, no alert without a cause.
"""

from __future__ import annotations

import random

import pytest

from raftctl import Cluster, MetricsCollector, Workload
from raftctl.commands import faults
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


def test_demo_schedule_expressed_as_a_scenario_replays_the_demo_injector_exactly():
    """Same node choices, same trace as raftctl/commands/faults.py's FaultInjector."""
    ticks, tick_s = faults.DEFAULT_TICKS, 0.3
    fail_at = faults.default_fail_at(ticks)

    def drive(use_library: bool):
        cluster = Cluster(node_count=5, seed=7)
        Workload(cluster, rate=50.0, seed=7)
        rng = random.Random(99)
        done = []
        if use_library:
            run = scenarios.demo_scenario(fail_at, tick_s, faults.heal_ticks_for(ticks), ticks).start(cluster, 0.0, rng)
        else:
            injector = faults.FaultInjector(cluster, rng)
            steps = faults.plan(fail_at, ticks)
        for tick in range(1, ticks + 1):
            if use_library:
                done += [(tick, tuple(r.nodes)) for r in run.advance(now=tick * tick_s) if r.nodes]
            else:
                for record in injector.due_heals(tick):
                    injector.heal(record)
                    if record.step.kind != "isolate_leader":
                        done.append((tick, tuple(record.nodes)))
                for step in steps:
                    if step.tick == tick:
                        done.append((tick, tuple(injector.inject(step).nodes)))
            cluster.run_for(tick_s)
        return done, cluster.trace_hash

    demo, library = drive(False), drive(True)
    assert [t for t, _ in library[0]] == [30, 48, 60, 78, 100, 118, 130]
    assert demo == library


def test_library_lookup_description_and_bad_input():
    assert set(scenarios.names()) >= {"follower_crash", "leader_crash", "quorum_loss", "leader_isolation",
                                      "flapping_leader", "slow_follower", "lossy_network", "split_brain_attempt"}
    text = scenarios.describe_all()
    for name in scenarios.names():
        assert name in text
        assert scenarios.get(name).steps[-1].action in ("restart", "heal", "network")
    with pytest.raises(ValueError, match="unknown scenario 'nope'; known: follower_crash"):
        scenarios.get("nope")
    with pytest.raises(ValueError, match="unknown scenario action"):
        scenarios.Step(0.0, "explode")
    combined = scenarios.get("follower_crash").then(scenarios.get("leader_crash"), gap_s=2.0)
    assert combined.length_s == scenarios.HOLD_S * 2 + 2.0
    assert combined.steps[3].target == "ref:leader_crash.victim"

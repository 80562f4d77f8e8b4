"""Seeded fault-injection simulations with the safety checker running throughout.

The default run covers 200 seeds (``RAFTCTL_SIM_SEEDS`` changes it; ``raftctl chaos --runs``
runs thousands). Every failure message names its seed; ``run_one(seed)`` replays it exactly.
"""

from __future__ import annotations

import os

import pytest

from raftctl.core.chaos import ALL_FAULTS, run_one
from raftctl import Cluster
from raftctl.core.safety import SafetyChecker
from raftctl.core.workload import Workload

SEEDS = int(os.environ.get("RAFTCTL_SIM_SEEDS", "200"))
CHUNK = 20


@pytest.mark.parametrize("first", range(0, SEEDS, CHUNK))
def test_random_fault_schedules_are_safe_and_live(first):
    failures = []
    for seed in range(first, min(first + CHUNK, SEEDS)):
        result = run_one(seed, nodes=5, duration_s=30.0, faults=ALL_FAULTS)
        assert result.sim_seconds >= 30.0
        if not result.ok:
            failures.append(
                f"seed {seed}: violations={result.violations[:3]} liveness={result.liveness_detail!r} "
                f"(replay: python -c 'from raftctl.core.chaos import run_one; print(run_one({seed}))')"
            )
        assert result.orders_acknowledged == result.orders_submitted, f"seed {seed}: orders left unacknowledged"
    assert not failures, "\n".join(failures)


def test_same_seed_replays_identically_and_other_seed_differs():
    a = run_one(1234, duration_s=15.0)
    b = run_one(1234, duration_s=15.0)
    c = run_one(1235, duration_s=15.0)
    assert a.trace_hash == b.trace_hash, "seed 1234 did not replay identically"
    assert a.faults == b.faults and a.orders_applied == b.orders_applied
    assert a.trace_hash != c.trace_hash


def test_log_stays_bounded_by_snapshot_threshold_under_steady_load():
    seed = 5
    cluster = Cluster(node_count=3, seed=seed, snapshot_threshold=100)
    checker = SafetyChecker(cluster)
    Workload(cluster, rate=500.0)
    peak = 0
    for _ in range(40):
        cluster.run_for(0.25)
        for status in cluster.statuses().values():
            peak = max(peak, status["log_length"])
    assert cluster.stats()["orders_acknowledged"] > 4000, f"seed {seed}"
    assert peak <= 100 + 10, f"seed {seed}: log grew to {peak} entries with threshold 100"
    assert all(n.snapshots_taken > 10 for n in cluster.nodes)
    checker.assert_ok()


def test_restarted_node_far_behind_catches_up_by_snapshot():
    seed = 9
    cluster = Cluster(node_count=5, seed=seed, snapshot_threshold=50)
    checker = SafetyChecker(cluster)
    Workload(cluster, rate=400.0)
    cluster.run_for(1.0)
    victim = next(n for n in cluster.node_ids if n != cluster.leader_id)
    cluster.crash(victim)
    cluster.run_for(3.0)
    cluster.restart(victim)
    cluster.workload.paused = True
    assert cluster.run_until(cluster.converged, timeout=3.0), f"seed {seed}: no convergence"
    assert cluster.node(victim).snapshots_installed >= 1
    checker.check_final(cluster)
    checker.assert_ok()


def test_leader_crash_elects_new_leader_and_keeps_acknowledged_orders():
    seed = 3
    cluster = Cluster(node_count=5, seed=seed)
    checker = SafetyChecker(cluster)
    Workload(cluster, rate=300.0)
    cluster.run_for(2.0)
    old = cluster.leader_id
    assert old is not None
    cluster.crash(old)
    assert cluster.run_until(lambda: cluster.leader_id not in (None, old), timeout=2.0), f"seed {seed}"
    cluster.run_for(1.0)
    cluster.restart(old)
    cluster.workload.paused = True
    assert cluster.run_until(lambda: cluster.converged() and not cluster.outstanding, timeout=3.0)
    checker.check_final(cluster)
    checker.assert_ok()
    assert cluster.stats()["orders_acknowledged"] == cluster.stats()["orders_submitted"]


def test_checker_detects_a_corrupted_state_machine():
    cluster = Cluster(node_count=3, seed=2)
    checker = SafetyChecker(cluster)
    Workload(cluster, rate=200.0)
    cluster.run_for(1.0)
    cluster.corrupt_state("node2")
    cluster.run_for(1.0)
    assert any("digest" in v for v in checker.violations), checker.violations


def test_replay_is_identical_across_processes_with_different_hash_salts():
    import subprocess
    import sys

    code = "from raftctl.core.chaos import run_one; print(run_one(77, duration_s=5.0).trace_hash)"
    outs = set()
    for salt in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": salt}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        outs.add(out.stdout.strip())
    assert len(outs) == 1, f"seed 77 replayed differently across processes: {outs}"

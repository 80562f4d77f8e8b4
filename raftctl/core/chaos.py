"""Seeded random fault campaigns over the simulator, with the safety checker on.

One run = one seed: a cluster with a trading workload, a random schedule of faults drawn
from ``faults`` for ``duration_s`` simulated seconds, then everything healed and restarted and a
liveness check (a leader within ``liveness_s`` and every node converged). ``run_one(seed)``
replays exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable

from raftctl.core.cluster import Cluster
from raftctl.core.safety import SafetyChecker
from raftctl.core.workload import Workload

ALL_FAULTS = ("crash", "restart", "partition", "loss", "duplicate", "reorder", "slow")


def parse_faults(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``"crash,partition"`` -> ``("crash", "partition")``; ValueError naming the valid kinds."""
    items = text.split(",") if isinstance(text, str) else list(text)
    kinds = tuple(dict.fromkeys(i.strip() for i in items if i.strip()))
    if not kinds:
        raise ValueError(f"no fault kinds given; choose from {', '.join(ALL_FAULTS)}")
    unknown = [k for k in kinds if k not in ALL_FAULTS]
    if unknown:
        raise ValueError(f"unknown fault kind(s) {', '.join(unknown)}; choose from {', '.join(ALL_FAULTS)}")
    return kinds


@dataclass
class RunResult:
    """What one seeded run saw."""

    seed: int
    violations: list[str]
    liveness_ok: bool
    liveness_detail: str
    faults: dict[str, int]
    leaderless_gaps_ms: list[float]
    orders_acknowledged: int
    orders_submitted: int
    orders_applied: int
    trace_hash: int
    sim_seconds: float
    events: list[tuple[float, str, tuple]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations and self.liveness_ok


def _leaderless_gaps(cluster: Cluster, samples: list[tuple[float, bool]]) -> list[float]:
    gaps, start = [], None
    for t, has_leader in samples:
        if not has_leader and start is None:
            start = t
        elif has_leader and start is not None:
            gaps.append((t - start) * 1000.0)
            start = None
    return gaps


def run_one(
    seed: int,
    nodes: int = 5,
    duration_s: float = 30.0,
    faults: tuple[str, ...] = ALL_FAULTS,
    rate: float = 100.0,
    fault_every_s: float = 1.0,
    liveness_s: float = 2.0,
    settle_s: float = 5.0,
    snapshot_threshold: int = 500,
    on_cluster: Callable[[Cluster], Any] | None = None,
    keep_events: bool = False,
) -> RunResult:
    """Run one seeded fault schedule; see the module docstring."""
    cluster = Cluster(node_count=nodes, seed=seed, snapshot_threshold=snapshot_threshold)
    checker = SafetyChecker(cluster)
    Workload(cluster, rate=rate, seed=seed ^ 0x5EED)
    if on_cluster is not None:
        on_cluster(cluster)
    rng = random.Random(seed * 1_000_003 + 11)
    counts: dict[str, int] = {}
    leader_samples: list[tuple[float, bool]] = []
    cluster.every(0.01, lambda c: leader_samples.append((c.now, c._leader_node() is not None)))
    fault_window = duration_s
    kinds = tuple(faults)
    t = 0.5
    while kinds and t < fault_window:
        cluster.run_for(t - cluster.now)
        _inject(cluster, rng, rng.choice(kinds), counts)
        t += rng.uniform(0.3, 2.0) * fault_every_s
    cluster.run_for(max(fault_window - cluster.now, 0.0))
    # Heal everything and require liveness.
    cluster.heal()
    if cluster.network.loss or cluster.network.duplicate or cluster.network.reorder:
        cluster.set_network(loss=0.0, duplicate=0.0, reorder=0.0)
    for node in cluster.nodes:
        if not node.up:
            cluster.restart(node.node_id)
    healed_at = cluster.now
    got_leader = cluster.run_until(lambda: cluster.leader_id is not None, timeout=liveness_s)
    detail = ""
    if not got_leader:
        detail = f"no leader within {liveness_s}s after heal"
    if workload := cluster.workload:
        workload.paused = True
    converged = cluster.run_until(
        lambda: cluster.converged() and not cluster.outstanding, timeout=max(settle_s, 3.0)
    )
    if got_leader and not converged:
        detail = (f"not converged {cluster.now - healed_at:.1f}s after heal "
                  f"(outstanding orders: {len(cluster.outstanding)})")
    checker.check_final(cluster)
    applied = max((n.exchange.orders_accepted for n in cluster.nodes), default=0)
    stats = cluster.stats()
    return RunResult(
        seed=seed,
        violations=list(checker.violations),
        liveness_ok=got_leader and converged,
        liveness_detail=detail,
        faults=counts,
        leaderless_gaps_ms=_leaderless_gaps(cluster, leader_samples),
        orders_acknowledged=stats["orders_acknowledged"],
        orders_submitted=stats["orders_submitted"],
        orders_applied=applied,
        trace_hash=cluster.trace_hash,
        sim_seconds=cluster.now,
        events=list(cluster.fault_log) if keep_events else [],
    )


def _inject(cluster: Cluster, rng: random.Random, kind: str, counts: dict[str, int]) -> None:
    ids = cluster.node_ids
    up = [n.node_id for n in cluster.nodes if n.up]
    down = [n.node_id for n in cluster.nodes if not n.up]
    if kind == "crash":
        # Crash a random live node, leader included; allow losing quorum sometimes.
        if up:
            cluster.crash(rng.choice(up))
        else:
            return
    elif kind == "restart":
        if down:
            cluster.restart(rng.choice(down))
        else:
            return
    elif kind == "partition":
        if rng.random() < 0.3:
            cluster.heal()
        else:
            if len(ids) < 2:
                return
            shuffled = ids[:]
            rng.shuffle(shuffled)
            cut = rng.randint(1, len(ids) - 1)
            cluster.partition(shuffled[:cut], shuffled[cut:])
    elif kind == "loss":
        cluster.set_network(loss=0.0 if rng.random() < 0.3 else rng.uniform(0.01, 0.3))
    elif kind == "duplicate":
        cluster.set_network(duplicate=0.0 if rng.random() < 0.3 else rng.uniform(0.01, 0.2))
    elif kind == "reorder":
        cluster.set_network(reorder=0.0 if rng.random() < 0.3 else rng.uniform(0.05, 0.5))
    elif kind == "slow":
        cluster.slow(rng.choice(ids), rng.choice([1.0, 3.0, 10.0, 30.0]))
    counts[kind] = counts.get(kind, 0) + 1
    # Keep a crash-heavy schedule from leaving the cluster dead for the whole run.
    if len(down) >= len(ids) // 2 + 1 and rng.random() < 0.5:
        cluster.restart(rng.choice(down))

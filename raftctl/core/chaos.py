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

from raftctl.core.collector import SampleCollector
from raftctl.core.detection import DetectionReport, DetectionTracker
from raftctl.core.faults import CAMPAIGN_KINDS, FaultKind, parse_kinds
from raftctl.core.measures import percentile, quorum_size
from raftctl.core.safety import SafetyChecker
from raftctl.core.sim.simulation import Simulation
from raftctl.core.workload import Workload

__all__ = ["ALL_FAULTS", "CampaignConfig", "RunResult", "aggregate", "orders_applied", "parse_faults",
           "percentile", "run_one", "run_summary"]

# the fault kinds a campaign draws from (raftctl/core/faults.py), as their names
ALL_FAULTS: tuple[str, ...] = tuple(k.value for k in CAMPAIGN_KINDS)


def parse_faults(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``"crash,partition"`` -> ``("crash", "partition")``; ValueError naming the valid kinds."""
    return tuple(k.value for k in parse_kinds(text))


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
    events: list[tuple[float, str, tuple[Any, ...]]] = field(default_factory=list[Any])
    detection: DetectionReport | None = None
    timeline: list[tuple[float, str, str]] = field(default_factory=list)
    # steps of the schedule that undid a fault of that kind (a heal, a reset, a resume)
    heal_steps: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations and self.liveness_ok


def _leaderless_gaps(cluster: Simulation, samples: list[tuple[float, bool]]) -> list[float]:
    gaps, start = [], None
    for t, has_leader in samples:
        if not has_leader and start is None:
            start = t
        elif has_leader and start is not None:
            gaps.append((t - start) * 1000.0)
            start = None
    return gaps


def _make_cluster(nodes: int, seed: int, snapshot_threshold: int, shards: int) -> Simulation:
    return Simulation(node_count=nodes, seed=seed, snapshot_threshold=snapshot_threshold, shards=shards)


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
    on_cluster: Callable[[Simulation], Any] | None = None,
    keep_events: bool = False,
    detect: bool = False,
    collection_interval: float = 1.0,
    shards: int = 1,
    deadline_s: float = 2.0,
    collector_factory: Callable[..., SampleCollector] = SampleCollector,
) -> RunResult:
    """Run one seeded fault schedule; see the module docstring.

    With ``detect`` (campaigns turn it on) a SampleCollector samples the cluster every ``collection_interval``
    simulated seconds and a DetectionTracker compares what it reported with what was injected
    (``result.detection``, graded against ``deadline_s``). Neither touches the simulation's random
    streams, so the trace is the same with or without it. ``collector_factory`` lets a test plant
    a faulty collector to show the scorer failing it.
    """
    cluster = _make_cluster(nodes, seed, snapshot_threshold, shards)
    checker = SafetyChecker(cluster)
    Workload(cluster, rate=rate, seed=seed ^ 0x5EED)
    tracker: DetectionTracker | None = None
    if detect:
        tracker = DetectionTracker(cluster, collection_interval=collection_interval, deadline_s=deadline_s)
        collector = collector_factory(collection_interval=collection_interval,
                                     retention_period=collection_interval * 4,
                                     alert_callback=tracker.observe_alert)
        collector.set_cluster(cluster)
        observe = tracker.observe_sample
        cluster.every(collection_interval, lambda c: observe(collector.collect()))
    if on_cluster is not None:
        on_cluster(cluster)
    rng = random.Random(seed * 1_000_003 + 11)
    counts: dict[str, int] = {}
    heals: dict[str, int] = {}
    leader_samples: list[tuple[float, bool]] = []
    cluster.every(0.01, lambda c: leader_samples.append((c.now, c.leader_id is not None)))
    fault_window = duration_s
    kinds = tuple(faults)
    t = 0.5
    while kinds and t < fault_window:
        cluster.run_for(t - cluster.now)
        _inject(cluster, rng, rng.choice(kinds), counts, heals)
        t += rng.uniform(0.3, 2.0) * fault_every_s
    cluster.run_for(max(fault_window - cluster.now, 0.0))
    # Heal everything and require liveness.
    cluster.heal()
    for node in cluster.nodes:
        if node.paused:
            cluster.resume(node.node_id)
    net = cluster.network.config
    if net.loss or net.duplicate or net.reorder:
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
    applied = orders_applied(cluster)
    stats = cluster.stats()
    trace_hash, sim_seconds = cluster.trace_hash, cluster.now
    if tracker is not None:
        # more samples so the recovery (and the alerts it resolves) is on record, and every
        # incident opened before the heal can be judged; the run's own figures above are taken
        # first, so they do not depend on ``detect``
        cluster.run_for(max(2 * collection_interval, deadline_s))
        tracker.finish()
    detection = tracker.report() if tracker is not None else None
    timeline = _timeline(cluster, tracker) if keep_events else []
    return RunResult(
        seed=seed,
        violations=list(checker.violations),
        liveness_ok=got_leader and converged,
        liveness_detail=detail,
        faults=counts,
        heal_steps=heals,
        leaderless_gaps_ms=_leaderless_gaps(cluster, leader_samples),
        orders_acknowledged=stats["orders_acknowledged"],
        orders_submitted=stats["orders_submitted"],
        orders_applied=applied,
        trace_hash=trace_hash,
        sim_seconds=sim_seconds,
        events=list(cluster.fault_log) if keep_events else [],
        detection=detection,
        timeline=timeline,
    )


def orders_applied(cluster: Simulation) -> int:
    """Distinct client orders applied, as counted by the node that applied the fewest.

    Read from the client sessions (every order, cancels included, takes effect once there), so
    it is comparable with ``orders_acknowledged``.
    """
    counts = []
    for node in cluster.nodes:
        if not node.up:
            continue
        replicas = getattr(node, "replicas", None) or [node]
        counts.append(sum(low + len(above) for replica in replicas
                          for low, above in replica.sessions.values()))
    return min(counts, default=0)


def _describe_fault(kind: str, args: tuple[Any, ...]) -> str:
    if kind == FaultKind.PARTITION:
        groups = args[0] if args else ()
        return "partition " + " | ".join(",".join(g) for g in groups)
    if kind in (FaultKind.LOSS, FaultKind.DUPLICATE, FaultKind.REORDER, FaultKind.LATENCY) and len(args) == 2:
        return f"network {args[0]}={args[1]:.2f}"
    if kind == FaultKind.SLOW:
        return f"slow {args[0]} x{args[1]:g}"
    return " ".join([kind, *map(str, args)])


def _timeline(cluster: Simulation, tracker: DetectionTracker | None) -> list[tuple[float, str, str]]:
    """Every fault, leader change, alert event and detection verdict of a run, in time order."""
    rows: list[tuple[float, str, str]] = []
    for at, kind, args in cluster.fault_log:
        rows.append((at, "fault", _describe_fault(kind, args)))
    for entry in cluster.leadership_log:
        at, node, term = entry[0], entry[1], entry[2]
        if len(entry) > 3 and entry[3] != 0:
            continue
        rows.append((at, "leader", f"{node} elected leader of term {term}"))
    if tracker is not None:
        for event in tracker.alert_events:
            rows.append((event["t"], "alert", f"{event['name']} {event['status']}"))
        for incident in tracker.incidents:
            verdict = incident.verdict
            target = incident.target or ""
            seen = (f" after {incident.latency_s:.2f}s" if incident.detected_at is not None else "")
            rows.append((incident.start, "detect", f"{incident.kind} {target}: {verdict}{seen}".replace("  ", " ")))
    rows.sort(key=lambda row: (row[0], ("fault", "leader", "detect", "alert").index(row[1])))
    return rows


def _inject(cluster: Simulation, rng: random.Random, kind: str, counts: dict[str, int],
            heals: dict[str, int]) -> None:
    """One step of the schedule: inject a fault of ``kind`` (counted in ``counts``) or, as the
    schedule sometimes does, undo one of that kind (a heal, a reset, a resume: in ``heals``)."""
    ids = cluster.node_ids
    healed = False
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
            healed = True
        else:
            if len(ids) < 2:
                return
            shuffled = ids[:]
            rng.shuffle(shuffled)
            cut = rng.randint(1, len(ids) - 1)
            cluster.partition(shuffled[:cut], shuffled[cut:])
    elif kind == "loss":
        healed = rng.random() < 0.3
        cluster.set_network(loss=0.0 if healed else rng.uniform(0.01, 0.3))
    elif kind == "duplicate":
        healed = rng.random() < 0.3
        cluster.set_network(duplicate=0.0 if healed else rng.uniform(0.01, 0.2))
    elif kind == "reorder":
        healed = rng.random() < 0.3
        cluster.set_network(reorder=0.0 if healed else rng.uniform(0.05, 0.5))
    elif kind == "slow":
        cluster.slow(rng.choice(ids), rng.choice([1.0, 3.0, 10.0, 30.0]))
    elif kind == "pause":
        paused = [n.node_id for n in cluster.nodes if n.paused]
        running = [n for n in up if n not in paused]
        if paused and (rng.random() < 0.6 or not running):
            cluster.resume(rng.choice(paused))
            healed = True
        elif running:
            # the leader half the time: a paused leader is the case that fools monitors
            leader = cluster.leader_id
            cluster.pause(leader if leader in running and rng.random() < 0.5 else rng.choice(running))
        else:
            return
    elif kind == "monitor_partition":
        if cluster.network.monitor_group is not None and rng.random() < 0.4:
            cluster.heal()
            healed = True
        elif rng.random() < 0.3 or len(ids) < 2:
            # the monitor alone: it reaches no node (with one node, the only cut there is)
            cluster.partition(["monitor"])
        else:
            shuffled = ids[:]
            rng.shuffle(shuffled)
            cut = rng.randint(1, max(1, len(ids) - 1))
            cluster.partition(shuffled[:cut] + ["monitor"], shuffled[cut:])
    tally = heals if healed else counts
    tally[kind] = tally.get(kind, 0) + 1
    # Keep a crash-heavy schedule from leaving the cluster dead for the whole run.
    if len(down) >= quorum_size(len(ids)) and rng.random() < 0.5:
        cluster.restart(rng.choice(down))


# ---- campaigns ----------------------------------------------------------------------------

CAMPAIGN_RATE = 20.0  # orders/s per run: enough to exercise exactly-once, cheap enough for 1000 runs


@dataclass(frozen=True)
class CampaignConfig:
    """One campaign: run i uses seed ``seed + i``; everything else is shared by the runs."""

    runs: int = 1000
    seed: int = 1
    nodes: int = 5
    duration_s: float = 60.0
    faults: tuple[str, ...] = ALL_FAULTS
    rate: float = CAMPAIGN_RATE
    collection_interval: float = 1.0
    shards: int = 1
    deadline_s: float = 2.0

    def validate(self) -> "CampaignConfig":
        for name, low in (("runs", 1), ("nodes", 1), ("shards", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.nodes > 51:
            raise ValueError(f"nodes must be at most 51, got {self.nodes}")
        for name in ("duration_s", "collection_interval", "deadline_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e6:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if isinstance(self.rate, bool) or not isinstance(self.rate, (int, float)) or not 0 <= self.rate <= 100_000:
            raise ValueError(f"rate must be a number of orders/s in [0, 100000], got {self.rate!r}")
        parse_faults(self.faults)
        return self


def run_summary(seed: int, config: CampaignConfig) -> dict[str, Any]:
    """Run one seed of a campaign and return the compact, picklable figures aggregation needs."""
    result = run_one(seed, nodes=config.nodes, duration_s=config.duration_s, faults=config.faults,
                     rate=config.rate, collection_interval=config.collection_interval,
                     shards=config.shards, detect=True, deadline_s=config.deadline_s)
    detection = result.detection
    assert detection is not None  # detect=True
    return {
        "seed": seed,
        "violations": result.violations[:5],
        "liveness_ok": result.liveness_ok,
        "liveness_detail": result.liveness_detail,
        "faults": result.faults,
        "heal_steps": result.heal_steps,
        "leaderless_gaps_ms": result.leaderless_gaps_ms,
        "orders_submitted": result.orders_submitted,
        "orders_acknowledged": result.orders_acknowledged,
        "orders_applied": result.orders_applied,
        "sim_seconds": result.sim_seconds,
        "trace_hash": result.trace_hash,
        "incidents": detection.incidents,
        "latencies_s": detection.latencies_s,
        "alerts_fired": detection.alerts_fired,
        "false_alarms": detection.false_alarms,
        "missed": detection.missed,
        "unexplained_unhealthy": detection.unexplained_unhealthy,
        "samples": detection.samples,
    }


def aggregate(summaries: list[dict[str, Any]], config: CampaignConfig) -> dict[str, Any]:
    """Campaign figures from per-run summaries (any order in, seed order used)."""
    summaries = sorted(summaries, key=lambda s: s["seed"])
    faults: dict[str, int] = {kind: 0 for kind in config.faults}
    heal_steps: dict[str, int] = {}
    gaps: list[float] = []
    latencies: list[float] = []
    incidents: dict[str, dict[str, int]] = {}
    violation_seeds, liveness_seeds = [], []
    violations_total = 0
    false_alarms: list[dict[str, Any]] = []
    missed: list[dict[str, Any]] = []
    examples: list[str] = []
    totals = {"orders_submitted": 0, "orders_acknowledged": 0, "orders_applied": 0,
              "alerts_fired": 0, "unexplained_unhealthy": 0, "samples": 0}
    sim_seconds = 0.0
    for s in summaries:
        for kind, count in s["faults"].items():
            faults[kind] = faults.get(kind, 0) + count
        for kind, count in s.get("heal_steps", {}).items():
            heal_steps[kind] = heal_steps.get(kind, 0) + count
        gaps.extend(s["leaderless_gaps_ms"])
        latencies.extend(s["latencies_s"])
        for kind, row in s["incidents"].items():
            into = incidents.setdefault(kind, dict.fromkeys(row, 0))
            for key, value in row.items():
                into[key] = into.get(key, 0) + value
        if s["violations"]:
            violation_seeds.append(s["seed"])
            violations_total += len(s["violations"])
            examples.extend(s["violations"][:2])
        if not s["liveness_ok"]:
            liveness_seeds.append(s["seed"])
            examples.append(f"seed={s['seed']}: {s['liveness_detail']}")
        false_alarms.extend({"seed": s["seed"], "t": round(t, 3), "alert": name}
                            for t, name in s["false_alarms"])
        missed.extend({"seed": s["seed"], "t": round(t, 3), "incident": kind, "target": target}
                      for t, kind, target in s["missed"])
        for key in totals:
            totals[key] += s[key]
        sim_seconds += s["sim_seconds"]
    counted = sum(r["counted"] for r in incidents.values())
    detected = sum(r["detected"] for r in incidents.values())
    interval = config.collection_interval

    def _round(value: float | None, digits: int = 3) -> float | None:
        return None if value is None else round(value, digits)

    return {
        "runs": len(summaries),
        "first_seed": config.seed,
        "last_seed": config.seed + len(summaries) - 1,
        "nodes": config.nodes,
        "shards": config.shards,
        "duration_s": config.duration_s,
        "rate": config.rate,
        "fault_kinds": list(config.faults),
        "faults_injected": faults,
        "faults_injected_total": sum(faults.values()),
        # schedule steps that undid a fault of that kind (heal, reset, resume): not counted above
        "heal_steps": heal_steps,
        "heal_steps_total": sum(heal_steps.values()),
        "safety_violations": violations_total,
        "runs_with_safety_violations": len(violation_seeds),
        "liveness_failures": len(liveness_seeds),
        "failing_seeds": sorted(set(violation_seeds) | set(liveness_seeds)),
        "safety_violation_seeds": violation_seeds,
        "liveness_failure_seeds": liveness_seeds,
        "failure_examples": examples[:10],
        "leaderless_ms": {"median": _round(percentile(gaps, 0.5), 1), "p99": _round(percentile(gaps, 0.99), 1),
                          "max": _round(max(gaps) if gaps else None, 1), "periods": len(gaps)},
        "orders_submitted": totals["orders_submitted"],
        "orders_acknowledged": totals["orders_acknowledged"],
        "orders_applied": totals["orders_applied"],
        "collection_interval_s": interval,
        "deadline_s": config.deadline_s,
        "health_changing_incidents": incidents,
        "incidents_counted": counted,
        "incidents_detected": detected,
        "incidents_missed": counted - detected,
        "incidents_shorter_than_1s": sum(r.get("short", 0) for r in incidents.values()),
        "incidents_unjudged": sum(r.get("unjudged", 0) for r in incidents.values()),
        "recall": 1.0 if counted == 0 else round(detected / counted, 6),
        "missed_incidents": missed[:20],
        "alerts_fired": totals["alerts_fired"],
        "false_alarms": len(false_alarms),
        "false_alarm_examples": false_alarms[:20],
        "unexplained_unhealthy_samples": totals["unexplained_unhealthy"],
        "samples_collected": totals["samples"],
        "detection_latency_s": {"median": _round(percentile(latencies, 0.5)),
                                "p99": _round(percentile(latencies, 0.99)),
                                "max": _round(max(latencies) if latencies else None)},
        "detection_latency_intervals_max": _round(max(latencies) / interval if latencies else None, 3),
        "sim_seconds": round(sim_seconds, 1),
    }

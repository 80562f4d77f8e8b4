"""The demo's fault schedule: which fault happens at which tick, and how it heals.

Data-driven so a scenario library can replace it: a schedule is a list of ``FaultStep``;
``FaultInjector`` applies and heals them with the public Cluster API only.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TICKS = 200
DEFAULT_FAIL_AT = (30, 60, 100, 130)
DEFAULT_HEAL_TICKS = 18
# in schedule order; with more --fail-at ticks than kinds the list repeats
FAULT_KINDS = ("crash_follower", "crash_leader", "crash_majority", "isolate_leader")
FAULT_TITLES = {
    "crash_follower": "a follower crashes",
    "crash_leader": "the leader crashes",
    "crash_majority": "a majority crashes (quorum loss)",
    "isolate_leader": "the leader is cut off from the majority",
}


@dataclass(frozen=True)
class FaultStep:
    """One fault: injected at ``tick``, healed at ``heal_tick``."""

    tick: int
    kind: str
    heal_tick: int


@dataclass
class FaultRecord:
    """What a step actually did (which nodes), for healing and for the report."""

    step: FaultStep
    nodes: list[str] = field(default_factory=list)
    injected_at: float = 0.0
    healed_at: float | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "tick": self.step.tick,
            "kind": self.step.kind,
            "description": FAULT_TITLES.get(self.step.kind, self.step.kind),
            "nodes": list(self.nodes),
            "injected_at": round(self.injected_at, 3),
            "heal_tick": self.step.heal_tick,
            "healed_at": None if self.healed_at is None else round(self.healed_at, 3),
            "note": self.note,
        }


def parse_fail_at(text: str) -> list[int]:
    """``"30,60,100"`` -> ``[30, 60, 100]``; ``""`` or ``"none"`` -> no faults. ValueError otherwise."""
    text = (text or "").strip()
    if text.lower() in ("", "none"):
        return []
    ticks = []
    for part in text.split(","):
        part = part.strip()
        try:
            tick = int(part)
        except ValueError:
            raise ValueError(f"{part!r} is not a tick number (expected a list like 30,60,100,130)") from None
        if tick < 1:
            raise ValueError(f"tick {tick} is not positive (ticks count from 1)")
        ticks.append(tick)
    if len(set(ticks)) != len(ticks):
        raise ValueError("the same tick appears twice")
    return sorted(ticks)


def default_fail_at(ticks: int) -> list[int]:
    """The seed's 30/60/100/130 for 200 ticks, scaled to other run lengths."""
    if ticks == DEFAULT_TICKS:
        return list(DEFAULT_FAIL_AT)
    scaled = sorted({max(1, round(t * ticks / DEFAULT_TICKS)) for t in DEFAULT_FAIL_AT})
    return [t for t in scaled if t <= ticks]


def heal_ticks_for(ticks: int) -> int:
    """How long each fault lasts: 18 of 200 ticks (about 5 s), scaled, at least 1."""
    return max(1, round(DEFAULT_HEAL_TICKS * ticks / DEFAULT_TICKS))


def plan(fail_at: list[int], ticks: int, heal_ticks: int | None = None) -> list[FaultStep]:
    """Turn fault ticks into steps; the kinds follow FAULT_KINDS in order."""
    heal = heal_ticks if heal_ticks is not None else heal_ticks_for(ticks)
    steps = []
    for i, tick in enumerate(sorted(fail_at)):
        if tick > ticks:
            raise ValueError(f"fault tick {tick} is beyond the last tick ({ticks})")
        steps.append(FaultStep(tick=tick, kind=FAULT_KINDS[i % len(FAULT_KINDS)], heal_tick=min(tick + heal, ticks)))
    return steps


class FaultInjector:
    """Applies and heals fault steps on a Cluster; node choices come from the seeded ``rng``."""

    def __init__(self, cluster: Any, rng: random.Random) -> None:
        self.cluster = cluster
        self.rng = rng
        self.records: list[FaultRecord] = []
        self._active: list[FaultRecord] = []

    def inject(self, step: FaultStep) -> FaultRecord:
        cluster = self.cluster
        record = FaultRecord(step=step, injected_at=cluster.now)
        statuses = cluster.statuses()
        up = [nid for nid in cluster.node_ids if statuses[nid]["up"]]
        leader = cluster.leader_id  # shard 0's leader when sharded
        sharded = getattr(cluster, "shards", 1) > 1
        if step.kind == "crash_follower":
            followers = [nid for nid in up if nid != leader]
            if sharded:
                # a "follower" in a multi-Raft cluster is a node that leads no group at all
                idle = [nid for nid in followers if not statuses[nid].get("leader_of")]
                followers = idle or followers
            if followers:
                record.nodes = [self.rng.choice(followers)]
            else:
                record.note = "no live follower to crash"
        elif step.kind == "crash_leader":
            target = leader or (self.rng.choice(up) if up else None)
            if target:
                record.nodes = [target]
                if leader is None:
                    record.note = "no leader at that moment; crashed a live node"
            else:
                record.note = "no live node to crash"
        elif step.kind == "crash_majority":
            need = len(cluster.node_ids) // 2 + 1
            others = [nid for nid in up if nid != leader]
            self.rng.shuffle(others)
            chosen = ([leader] if leader else []) + others
            record.nodes = sorted(chosen[:need], key=cluster.node_ids.index)
            if len(record.nodes) < need:
                record.note = "fewer live nodes than a majority"
        elif step.kind == "isolate_leader":
            if leader and len(cluster.node_ids) > 1:
                record.nodes = [leader]
            else:
                record.note = "no leader to isolate"
        else:
            raise ValueError(f"unknown fault kind {step.kind!r}; known: {', '.join(FAULT_KINDS)}")
        if sharded and record.nodes and step.kind != "crash_majority":
            led = sorted({g for nid in record.nodes for g in statuses[nid].get("leader_of") or ()})
            if led:
                note = f"leads shard{'s' if len(led) > 1 else ''} {', '.join(map(str, led))}"
                record.note = f"{record.note}; {note}" if record.note else note
        for nid in record.nodes:
            if step.kind == "isolate_leader":
                cluster.isolate(nid)
            else:
                cluster.crash(nid)
        self.records.append(record)
        if record.nodes:
            self._active.append(record)
        return record

    def heal(self, record: FaultRecord) -> None:
        if record.healed_at is not None:
            return
        if record.step.kind == "isolate_leader":
            self.cluster.heal()
        else:
            for nid in record.nodes:
                self.cluster.restart(nid)
        record.healed_at = self.cluster.now
        if record in self._active:
            self._active.remove(record)

    def due_heals(self, tick: int) -> list[FaultRecord]:
        return [r for r in self._active if r.step.heal_tick <= tick]

    def heal_all(self) -> None:
        for record in list(self._active):
            self.heal(record)

    @property
    def active(self) -> list[FaultRecord]:
        return list(self._active)


def random_schedule(rng: random.Random, start_tick: int, count: int, tick_s: float) -> list[FaultStep]:
    """Seeded random faults for `serve --chaos random`: one every 20-45 s, each lasting 5-15 s."""
    steps = []
    tick = start_tick
    for _ in range(count):
        tick += int(rng.uniform(20.0, 45.0) / tick_s)
        length = max(1, int(rng.uniform(5.0, 15.0) / tick_s))
        steps.append(FaultStep(tick=tick, kind=rng.choice(FAULT_KINDS), heal_tick=tick + length))
        tick += length
    return steps

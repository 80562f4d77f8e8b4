"""Named fault scenarios: schedules of (offset, action) steps, each ending in a heal.

A :class:`Scenario` is plain data. ``scenario.start(cluster, at=t, rng=rng)`` returns a
:class:`ScenarioRun` that either schedules every step on the cluster's event queue
(``schedule()``, for fast and paced clusters alike) or applies the steps that are due when a
caller driving its own clock asks (``advance(now)``, for tick-based runs such as the demo).

Targets are resolved when a step runs, from the cluster as it is then: ``leader`` (the current
leader; nothing if there is none), ``leader_or_any`` (the leader, else a random live node),
``follower`` (a random live non-leader), ``majority`` (the leader plus random live nodes up to a
majority), ``minority_with_leader`` (the leader plus random others, one short of a majority) or
``ref:NAME`` (the nodes an earlier step remembered under ``ref=NAME``). Random choices come from
the ``rng`` passed in, in the same order as the demo's original injector, so a seed replays.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["Step", "Scenario", "ScenarioRun", "StepRecord", "SCENARIOS", "get", "names",
           "describe_all", "demo_scenario"]

ACTIONS = ("crash", "restart", "isolate", "partition", "heal", "slow", "network")


@dataclass(frozen=True)
class Step:
    """One action ``offset_s`` simulated seconds after the scenario starts."""

    offset_s: float
    action: str
    target: str = ""
    ref: str = ""
    params: tuple[tuple[str, float], ...] = ()
    label: str = ""

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown scenario action {self.action!r}; known: {', '.join(ACTIONS)}")
        if not self.offset_s >= 0:
            raise ValueError(f"step offset must be >= 0, got {self.offset_s!r}")


@dataclass(frozen=True)
class Scenario:
    """A named, healing fault schedule."""

    name: str
    description: str
    steps: tuple[Step, ...]

    @property
    def length_s(self) -> float:
        """Offset of the last step (the final heal)."""
        return max((s.offset_s for s in self.steps), default=0.0)

    def describe(self) -> str:
        """One line for help texts: name, what happens, how long."""
        return f"{self.name}: {self.description} (heals after {self.length_s:g} s)"

    def then(self, other: "Scenario", gap_s: float = 0.0, name: str | None = None) -> "Scenario":
        """This scenario followed by ``other`` starting ``gap_s`` after this one's last step."""
        shift = self.length_s + gap_s
        prefix = other.name + "."
        moved = tuple(replace(s, offset_s=s.offset_s + shift, ref=prefix + s.ref if s.ref else "",
                              target=("ref:" + prefix + s.target[4:]) if s.target.startswith("ref:") else s.target)
                      for s in other.steps)
        return Scenario(name or f"{self.name}+{other.name}", f"{self.description}; then {other.description}",
                        self.steps + moved)

    def start(self, cluster: Any, at: float | None = None, rng: random.Random | None = None) -> "ScenarioRun":
        """Bind to ``cluster`` with step 0 at simulated time ``at`` (default: now)."""
        return ScenarioRun(self, cluster, cluster.now if at is None else float(at),
                           rng if rng is not None else random.Random(0))


@dataclass
class StepRecord:
    """What a step did: when, to which nodes, and why it did nothing if it did nothing."""

    step: Step
    at: float
    nodes: list[str] = field(default_factory=list)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"at": round(self.at, 3), "action": self.step.action, "target": self.step.target,
                "label": self.step.label, "nodes": list(self.nodes), "note": self.note}


class ScenarioRun:
    """A scenario bound to one cluster and start time; see the module docstring."""

    def __init__(self, scenario: Scenario, cluster: Any, start: float, rng: random.Random) -> None:
        self.scenario = scenario
        self.cluster = cluster
        self.start_at = start
        self.rng = rng
        self.records: list[StepRecord] = []
        self.refs: dict[str, list[str]] = {}
        self._next = 0
        self._order = sorted(range(len(scenario.steps)), key=lambda i: (scenario.steps[i].offset_s, i))

    @property
    def done(self) -> bool:
        return self._next >= len(self._order)

    def due_at(self) -> float | None:
        """Simulated time of the next step, or None when every step ran."""
        if self.done:
            return None
        return self.start_at + self.scenario.steps[self._order[self._next]].offset_s

    def advance(self, now: float | None = None) -> list[StepRecord]:
        """Apply every step due at or before ``now`` (default: the cluster's clock)."""
        now = self.cluster.now if now is None else now
        applied = []
        while not self.done and self.due_at() <= now + 1e-9:
            applied.append(self._apply(self.scenario.steps[self._order[self._next]]))
            self._next += 1
        return applied

    def schedule(self) -> "ScenarioRun":
        """Put every remaining step on the cluster's event queue at its simulated time."""
        while not self.done:
            step = self.scenario.steps[self._order[self._next]]
            self._next += 1
            self.cluster.at(self.start_at + step.offset_s, lambda _c, step=step: self._apply(step))
        return self

    def heal_all(self) -> None:
        """Apply the remaining steps now (they end in the heal)."""
        while not self.done:
            self._apply(self.scenario.steps[self._order[self._next]])
            self._next += 1

    # ---- one step ------------------------------------------------------------------------

    def _resolve(self, target: str, record: StepRecord) -> list[str]:
        cluster = self.cluster
        statuses = cluster.statuses()
        up = [nid for nid in cluster.node_ids if statuses[nid]["up"]]
        leader = cluster.leader_id
        rng = self.rng
        if target.startswith("ref:"):
            return list(self.refs.get(target[4:], []))
        if target == "leader":
            if leader is None:
                record.note = "no leader at that moment"
            return [leader] if leader else []
        if target == "leader_or_any":
            chosen = leader or (rng.choice(up) if up else None)
            if chosen and leader is None:
                record.note = "no leader at that moment; chose a live node"
            elif not chosen:
                record.note = "no live node"
            return [chosen] if chosen else []
        if target == "follower":
            followers = [nid for nid in up if nid != leader]
            if not followers:
                record.note = "no live follower"
                return []
            return [rng.choice(followers)]
        if target in ("majority", "minority_with_leader"):
            need = len(cluster.node_ids) // 2 + 1
            if target == "minority_with_leader":
                need -= 1
            others = [nid for nid in up if nid != leader]
            rng.shuffle(others)
            chosen = ([leader] if leader else []) + others
            nodes = sorted(chosen[:need], key=cluster.node_ids.index)
            if len(nodes) < need:
                record.note = "fewer live nodes than needed"
            return nodes
        if target:
            cluster.node(target)  # a literal node id; ValueError if unknown
            return [target]
        return []

    def _apply(self, step: Step) -> StepRecord:
        cluster = self.cluster
        record = StepRecord(step, cluster.now)
        params = dict(step.params)
        if step.action == "heal":
            cluster.heal()
        elif step.action == "network":
            cluster.set_network(**params)
        else:
            nodes = self._resolve(step.target, record)
            record.nodes = nodes
            if step.action == "crash":
                for nid in nodes:
                    cluster.crash(nid)
            elif step.action == "restart":
                for nid in nodes:
                    cluster.restart(nid)
            elif step.action == "isolate":
                if nodes and len(cluster.node_ids) > 1:
                    if len(nodes) == 1:
                        cluster.isolate(nodes[0])
                    else:
                        cluster.partition(nodes, [n for n in cluster.node_ids if n not in nodes])
                elif not record.note:
                    record.note = "nothing to isolate"
            elif step.action == "partition":
                rest = [n for n in cluster.node_ids if n not in nodes]
                if nodes and rest:
                    cluster.partition(nodes, rest)
            elif step.action == "slow":
                for nid in nodes:
                    cluster.slow(nid, params.get("factor", 10.0))
        if step.ref:
            self.refs[step.ref] = list(record.nodes)
        self.records.append(record)
        return record


def _s(offset: float, action: str, target: str = "", ref: str = "", label: str = "", **params: float) -> Step:
    return Step(offset, action, target, ref, tuple(sorted(params.items())), label)


HOLD_S = 5.0  # how long each fault lasts: several collection intervals at 1 s

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("follower_crash", "a random follower crashes, then restarts",
             (_s(0, "crash", "follower", ref="victim", label="a follower crashes"),
              _s(HOLD_S, "restart", "ref:victim", label="the follower restarts"))),
    Scenario("leader_crash", "the leader crashes (a new one is elected), then restarts",
             (_s(0, "crash", "leader_or_any", ref="victim", label="the leader crashes"),
              _s(HOLD_S, "restart", "ref:victim", label="the old leader restarts"))),
    Scenario("quorum_loss", "a majority (the leader among them) crashes, then restarts",
             (_s(0, "crash", "majority", ref="victims", label="a majority crashes (quorum loss)"),
              _s(HOLD_S, "restart", "ref:victims", label="the majority restarts"))),
    Scenario("leader_isolation", "the leader is cut off from every other node, then healed",
             (_s(0, "isolate", "leader", ref="victim", label="the leader is cut off from the majority"),
              _s(HOLD_S, "heal", label="the network heals"))),
    Scenario("flapping_leader", "three times in a row the current leader is cut off for 1.5 s",
             tuple(step for i in range(3) for step in (
                 _s(i * 3.0, "isolate", "leader", ref=f"leader{i}", label=f"leader cut off ({i + 1} of 3)"),
                 _s(i * 3.0 + 1.5, "heal", label="the network heals")))),
    Scenario("slow_follower", "one follower's messages take 10x longer, then recover",
             (_s(0, "slow", "follower", ref="victim", factor=10.0, label="a follower becomes slow"),
              _s(HOLD_S, "heal", label="the follower is fast again"))),
    Scenario("lossy_network", "20% of all messages are lost, then the network recovers",
             (_s(0, "network", loss=0.2, label="20% message loss"),
              _s(HOLD_S, "network", loss=0.0, label="message loss ends"))),
    Scenario("split_brain_attempt",
             "the leader and one follower are cut off from the other three; the majority elects "
             "a new leader while the old one still believes it leads, then the network heals",
             (_s(0, "partition", "minority_with_leader", ref="minority",
                 label="the leader is partitioned with a minority"),
              _s(HOLD_S, "heal", label="the network heals"))),
)}


def names() -> list[str]:
    """Scenario names, in library order."""
    return list(SCENARIOS)


def get(name: str) -> Scenario:
    """The scenario called ``name``; ValueError listing the known ones otherwise."""
    try:
        return SCENARIOS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None


def describe_all() -> str:
    """Every scenario's ``describe()`` line, for --help texts."""
    return "\n".join(s.describe() for s in SCENARIOS.values())


# The demo's order of faults (raftctl/commands/faults.py FAULT_KINDS) as scenario names.
DEMO_KINDS = ("follower_crash", "leader_crash", "quorum_loss", "leader_isolation")


def demo_scenario(fail_at_ticks: list[int], tick_s: float, heal_ticks: int, ticks: int | None = None) -> Scenario:
    """The demo schedule as one scenario: at each tick the next of ``DEMO_KINDS``, healed
    ``heal_ticks`` ticks later (capped at ``ticks``), with the demo's node choices.

    With the defaults (ticks 30, 60, 100, 130; 0.3 s ticks; 18-tick heals) this is tick 30 a
    follower crash, 60 a leader crash, 100 a majority crash, 130 the leader cut off.
    """
    steps: list[Step] = []
    for i, tick in enumerate(sorted(fail_at_ticks)):
        base = get(DEMO_KINDS[i % len(DEMO_KINDS)])
        heal_tick = tick + heal_ticks if ticks is None else min(tick + heal_ticks, ticks)
        inject, heal = base.steps
        ref = f"f{i}"
        steps.append(replace(inject, offset_s=tick * tick_s, ref=ref))
        heal_target = f"ref:{ref}" if heal.target.startswith("ref:") else heal.target
        steps.append(replace(heal, offset_s=heal_tick * tick_s, target=heal_target))
    return Scenario("demo", "the demo's schedule: follower crash, leader crash, quorum loss, leader isolation",
                    tuple(steps))

"""Named fault scenarios: schedules of (offset, action) steps, each fault ended by a heal.

The single source of truth for injected faults: `raftctl demo` (its tick schedule and
``--scenario``), `serve --chaos demo|random` and the tests all play scenarios from here.

A :class:`Scenario` is plain data. ``scenario.start(cluster, at=t, rng=rng)`` returns a
:class:`ScenarioRun` that either schedules every step on the cluster's event queue
(``schedule()``, for fast and paced clusters alike) or applies the steps that are due when a
caller driving its own clock asks (``advance(now)``, for tick-based runs such as the demo).
:class:`ScenarioLoop` plays scenarios one after another (a fixed line-up, the demo schedule
repeated, or seeded random picks) for long runs.

A step without ``ends`` injects a fault (remembered under its ``ref``); a step with
``ends=REF`` heals the fault injected under ``REF``, and does nothing if that fault hit no node
(so a leaderless moment does not turn into a spurious heal). Each fault becomes a
:class:`Fault`: what was injected, on which nodes, when, and when it healed.

Targets are resolved when a step runs, from the cluster as it is then: ``leader`` (the current
leader, shard 0's in a sharded cluster; nothing if there is none), ``leader_or_any`` (the
leader, else a random live node), ``follower`` (a random live non-leader; in a sharded cluster
one that leads no shard when there is one), ``majority`` (the leader plus random live nodes up
to a majority), ``minority_with_leader`` (the leader plus random others, one short of a
majority) or ``ref:NAME`` (the nodes an earlier step remembered under ``ref=NAME``). In a sharded
cluster a single-node target's note lists the shards that node led. Random choices come from
the ``rng`` passed in, in a fixed order, so a seed replays.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Optional

from raftctl.core.faults import SCENARIO_ACTIONS
from raftctl.core.measures import quorum_size

__all__ = ["Step", "Scenario", "ScenarioRun", "ScenarioLoop", "StepRecord", "Fault", "SCENARIOS", "get",
           "names", "parse_names", "describe_all", "demo_scenario", "lineup", "lineup_loop", "repeat_loop",
           "random_loop"]

ACTIONS = tuple(SCENARIO_ACTIONS)  # the scenario verbs, from the one fault vocabulary
# what a target means for a fault's kind: "crash" + "leader_or_any" -> "crash_leader"
_TARGET_KIND = {"leader": "leader", "leader_or_any": "leader", "follower": "follower",
                "majority": "majority", "minority_with_leader": "minority"}
_SINGLE_TARGETS = ("leader", "leader_or_any", "follower")


@dataclass(frozen=True)
class Step:
    """One action ``offset_s`` simulated seconds after the scenario starts.

    ``ref`` names the fault this step injects; ``ends`` names the fault this step heals.
    """

    offset_s: float
    action: str
    target: str = ""
    ref: str = ""
    params: tuple[tuple[str, float], ...] = ()
    label: str = ""
    ends: str = ""

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown scenario action {self.action!r}; known: {', '.join(ACTIONS)}")
        if not self.offset_s >= 0:
            raise ValueError(f"step offset must be >= 0, got {self.offset_s!r}")

    @property
    def is_heal(self) -> bool:
        return bool(self.ends)

    @property
    def kind(self) -> str:
        """The fault's kind for reports, e.g. ``crash_follower``, ``isolate_leader``, ``network``."""
        if self.action == "network":
            return "network"
        return f"{self.action}_{_TARGET_KIND.get(self.target, 'node')}"


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
                              ends=prefix + s.ends if s.ends else "",
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
    """What a step did: when (``at`` on the cluster, ``due`` on the run's clock), to which nodes,
    why it did nothing if it did nothing, and the fault it injected or healed."""

    step: Step
    at: float
    nodes: list[str] = field(default_factory=list)
    note: str = ""
    due: float = 0.0
    fault: Optional["Fault"] = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"at": round(self.at, 3), "action": self.step.action, "target": self.step.target,
                "label": self.step.label, "nodes": list(self.nodes), "note": self.note}


@dataclass
class Fault:
    """One injected fault: its injecting step's record, when its heal is planned, and the heal."""

    scenario: str
    injected: StepRecord
    heal_due: float | None = None
    healed: StepRecord | None = None

    @property
    def kind(self) -> str:
        return self.injected.step.kind

    @property
    def label(self) -> str:
        return self.injected.step.label or self.kind.replace("_", " ")

    @property
    def nodes(self) -> list[str]:
        return list(self.injected.nodes)

    @property
    def effective(self) -> bool:
        """It changed the cluster (hit some node, or changed the network)."""
        return bool(self.injected.nodes) or self.injected.step.action == "network"

    @property
    def active(self) -> bool:
        return self.effective and self.healed is None

    @property
    def healed_at(self) -> float | None:
        """Cluster time of the heal, None if nothing was healed (never hit, or still active)."""
        return self.healed.at if self.healed is not None and self.effective else None


class ScenarioRun:
    """A scenario bound to one cluster and start time; see the module docstring."""

    def __init__(self, scenario: Scenario, cluster: Any, start: float, rng: random.Random) -> None:
        self.scenario = scenario
        self.cluster = cluster
        self.start_at = start
        self.rng = rng
        self.records: list[StepRecord] = []
        self.faults: list[Fault] = []
        self.refs: dict[str, list[str]] = {}
        self._open: dict[str, Fault] = {}
        self._next = 0
        self._order = sorted(range(len(scenario.steps)), key=lambda i: (scenario.steps[i].offset_s, i))

    @property
    def done(self) -> bool:
        return self._next >= len(self._order)

    @property
    def end_at(self) -> float:
        """Run-clock time of the last step."""
        return self.start_at + self.scenario.length_s

    @property
    def active(self) -> list[Fault]:
        """Faults injected and not healed yet."""
        return [f for f in self.faults if f.active]

    def due_at(self) -> float | None:
        """Simulated time of the next step, or None when every step ran."""
        if self.done:
            return None
        return self.start_at + self.scenario.steps[self._order[self._next]].offset_s

    def upcoming(self) -> list[tuple[float, Step]]:
        """Steps not run yet, with their due times, in order."""
        steps = self.scenario.steps
        return [(self.start_at + steps[i].offset_s, steps[i]) for i in self._order[self._next:]]

    def advance(self, now: float | None = None) -> list[StepRecord]:
        """Apply every step due at or before ``now`` (default: the cluster's clock)."""
        now = self.cluster.now if now is None else now
        applied = []
        while not self.done:
            due = self.due_at()
            if due is None or due > now + 1e-9:
                break
            applied.append(self._apply(self.scenario.steps[self._order[self._next]], due))
            self._next += 1
        return applied

    def schedule(self) -> "ScenarioRun":
        """Put every remaining step on the cluster's event queue at its simulated time."""
        while not self.done:
            step = self.scenario.steps[self._order[self._next]]
            self._next += 1
            due = self.start_at + step.offset_s
            self.cluster.at(due, lambda _c, step=step, due=due: self._apply(step, due))
        return self

    def heal_all(self) -> list[StepRecord]:
        """End the scenario now: heal what is still injected; faults not yet injected never are."""
        applied = []
        while not self.done:
            step = self.scenario.steps[self._order[self._next]]
            self._next += 1
            if step.is_heal and step.ends in self._open:
                applied.append(self._apply(step, self.start_at + step.offset_s))
        return applied

    # ---- one step ------------------------------------------------------------------------

    def _resolve(self, target: str, record: StepRecord) -> list[str]:
        cluster = self.cluster
        if target.startswith("ref:"):
            return list(self.refs.get(target[4:], []))
        statuses = cluster.statuses()
        up = [nid for nid in cluster.node_ids if statuses[nid]["up"]]
        leader = cluster.leader_id  # shard 0's leader when sharded
        rng = self.rng
        if target == "leader":
            if leader is None:
                record.note = "no leader at that moment"
            nodes = [leader] if leader else []
        elif target == "leader_or_any":
            chosen = leader or (rng.choice(up) if up else None)
            if chosen and leader is None:
                record.note = "no leader at that moment; chose a live node"
            elif not chosen:
                record.note = "no live node"
            nodes = [chosen] if chosen else []
        elif target == "follower":
            followers = [nid for nid in up if nid != leader]
            if getattr(cluster, "shards", 1) > 1:
                # in a multi-Raft cluster a follower is a node that leads no group at all
                idle = [nid for nid in followers if not statuses[nid].get("leader_of")]
                followers = idle or followers
            if not followers:
                record.note = "no live follower"
                return []
            nodes = [rng.choice(followers)]
        elif target in ("majority", "minority_with_leader"):
            need = quorum_size(len(cluster.node_ids))
            if target == "minority_with_leader":
                need -= 1
            others = [nid for nid in up if nid != leader]
            rng.shuffle(others)
            chosen = ([leader] if leader else []) + others
            nodes = sorted(chosen[:need], key=cluster.node_ids.index)
            if len(nodes) < need:
                record.note = "fewer live nodes than needed"
            return nodes
        elif target:
            cluster.node(target)  # a literal node id; ValueError if unknown
            nodes = [target]
        else:
            return []
        if nodes and getattr(cluster, "shards", 1) > 1:
            led = sorted({g for nid in nodes for g in statuses[nid].get("leader_of") or ()})
            if led:
                note = f"leads shard{'s' if len(led) > 1 else ''} {', '.join(map(str, led))}"
                record.note = f"{record.note}; {note}" if record.note else note
        return nodes

    def _apply(self, step: Step, due: float) -> StepRecord:
        cluster = self.cluster
        record = StepRecord(step, cluster.now, due=due)
        if step.is_heal:
            fault = self._open.pop(step.ends, None)
            record.fault = fault
            if fault is None or not fault.effective:
                record.note = "nothing to heal"
            else:
                fault.healed = record
                self._act(step, record)
        else:
            self._act(step, record)
            fault = Fault(self.scenario.name, record, heal_due=self._heal_due(step))
            record.fault = fault
            self.faults.append(fault)
            if step.ref:
                self._open[step.ref] = fault
        if step.ref:
            self.refs[step.ref] = list(record.nodes)
        self.records.append(record)
        return record

    def _heal_due(self, step: Step) -> float | None:
        if not step.ref:
            return None
        ends = [s.offset_s for s in self.scenario.steps if s.ends == step.ref and s.offset_s >= step.offset_s]
        return self.start_at + min(ends) if ends else None

    def _act(self, step: Step, record: StepRecord) -> None:
        cluster = self.cluster
        params = dict(step.params)
        if step.action == "heal":
            cluster.heal()
            return
        if step.action == "network":
            cluster.set_network(**params)
            return
        nodes = self._resolve(step.target, record)
        if step.action == "isolate" and len(cluster.node_ids) < 2:
            nodes = []
            record.note = record.note or "nothing to isolate"
        record.nodes = nodes
        if step.action == "crash":
            for nid in nodes:
                cluster.crash(nid)
        elif step.action == "restart":
            for nid in nodes:
                cluster.restart(nid)
        elif step.action == "isolate":
            if len(nodes) == 1:
                cluster.isolate(nodes[0])
            elif nodes:
                cluster.partition(nodes, [n for n in cluster.node_ids if n not in nodes])
            elif not record.note:
                record.note = "nothing to isolate"
        elif step.action == "partition":
            rest = [n for n in cluster.node_ids if n not in nodes]
            if nodes and rest:
                cluster.partition(nodes, rest)
            else:
                record.nodes = []
                record.note = record.note or "nothing to partition"
        elif step.action == "slow":
            for nid in nodes:
                cluster.slow(nid, params.get("factor", 10.0))
        elif step.action in ("pause", "resume"):
            for nid in nodes:
                getattr(cluster, step.action)(nid)
        elif step.action == "monitor_partition":
            rest = [n for n in cluster.node_ids if n not in nodes]
            if not nodes:
                record.note = record.note or "nothing to partition"
            cluster.partition(nodes + ["monitor"], *([rest] if rest else []))


class ScenarioLoop:
    """Scenarios one after another on one cluster, never two at once.

    ``plan(index, free_at)`` picks the next scenario and its start (at or after ``free_at``, the
    previous scenario's last step), or returns None to stop. The next scenario is planned as soon
    as the current one starts, so callers can show what comes next.
    """

    def __init__(self, cluster: Any, plan: Callable[[int, float], Optional[tuple[Scenario, float]]],
                 rng: random.Random, start: float = 0.0) -> None:
        self.cluster = cluster
        self.rng = rng
        self.runs: list[ScenarioRun] = []
        self._plan = plan
        self._pending = plan(0, start)
        self._current: ScenarioRun | None = None
        self._stopped = False

    @property
    def faults(self) -> list[Fault]:
        """Every fault injected so far, in order."""
        return [f for run in self.runs for f in run.faults]

    @property
    def active(self) -> list[Fault]:
        return [f for run in self.runs for f in run.active]

    @property
    def done(self) -> bool:
        return (self._current is None or self._current.done) and (self._pending is None or self._stopped)

    def advance(self, now: float | None = None) -> list[StepRecord]:
        """Apply every step due at or before ``now`` (default: the cluster's clock), starting
        planned scenarios as their time comes."""
        now = self.cluster.now if now is None else now
        applied: list[StepRecord] = []
        while True:
            if (self._current is None or self._current.done) and not self._stopped and self._pending is not None:
                scenario, start = self._pending
                if start > now + 1e-9:
                    break
                self._current = scenario.start(self.cluster, at=start, rng=self.rng)
                self.runs.append(self._current)
                free_at = max(start + scenario.length_s, now)
                self._pending = self._plan(len(self.runs), free_at)
            if self._current is None:
                break
            applied += self._current.advance(now)
            if not self._current.done or self._pending is None:
                break
        return applied

    def next_fault(self) -> tuple[float, Step] | None:
        """The next fault to be injected and when (on the loop's clock), if any is planned."""
        if self._current is not None:
            for due, step in self._current.upcoming():
                if not step.is_heal:
                    return due, step
        if self._pending is not None and not self._stopped:
            scenario, start = self._pending
            for step in sorted(scenario.steps, key=lambda s: s.offset_s):
                if not step.is_heal:
                    return start + step.offset_s, step
        return None

    def heal_all(self) -> list[StepRecord]:
        """Stop: heal the current scenario's active faults; planned scenarios never start."""
        self._stopped = True
        return self._current.heal_all() if self._current is not None else []


def _s(offset: float, action: str, target: str = "", ref: str = "", label: str = "", ends: str = "",
       **params: float) -> Step:
    return Step(offset, action, target, ref, tuple(sorted(params.items())), label, ends)


HOLD_S = 5.0  # how long each fault lasts: several collection intervals at 1 s

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("follower_crash", "a random follower crashes, then restarts",
             (_s(0, "crash", "follower", ref="victim", label="a follower crashes"),
              _s(HOLD_S, "restart", "ref:victim", ends="victim", label="the follower restarts"))),
    Scenario("leader_crash", "the leader crashes (a new one is elected), then restarts",
             (_s(0, "crash", "leader_or_any", ref="victim", label="the leader crashes"),
              _s(HOLD_S, "restart", "ref:victim", ends="victim", label="the old leader restarts"))),
    Scenario("quorum_loss", "a majority (the leader among them) crashes, then restarts",
             (_s(0, "crash", "majority", ref="victims", label="a majority crashes (quorum loss)"),
              _s(HOLD_S, "restart", "ref:victims", ends="victims", label="the majority restarts"))),
    Scenario("leader_isolation", "the leader is cut off from every other node, then healed",
             (_s(0, "isolate", "leader", ref="victim", label="the leader is cut off from the majority"),
              _s(HOLD_S, "heal", ends="victim", label="the network heals"))),
    Scenario("flapping_leader", "three times in a row the current leader is cut off for 1.5 s",
             tuple(step for i in range(3) for step in (
                 _s(i * 3.0, "isolate", "leader", ref=f"leader{i}", label=f"leader cut off ({i + 1} of 3)"),
                 _s(i * 3.0 + 1.5, "heal", ends=f"leader{i}", label="the network heals")))),
    Scenario("slow_follower", "one follower's messages take 10x longer, then recover",
             (_s(0, "slow", "follower", ref="victim", factor=10.0, label="a follower becomes slow"),
              _s(HOLD_S, "heal", ends="victim", label="the follower is fast again"))),
    Scenario("lossy_network", "20% of all messages are lost, then the network recovers",
             (_s(0, "network", ref="loss", loss=0.2, label="20% message loss"),
              _s(HOLD_S, "network", ends="loss", loss=0.0, label="message loss ends"))),
    Scenario("split_brain_attempt",
             "the leader and one follower are cut off from the other three; the majority elects "
             "a new leader while the old one still believes it leads, then the network heals",
             (_s(0, "partition", "minority_with_leader", ref="minority",
                 label="the leader is partitioned with a minority"),
              _s(HOLD_S, "heal", ends="minority", label="the network heals"))),
    Scenario("paused_leader",
             "the leader freezes (a GC pause, SIGSTOP): it stops answering, the others elect a new "
             "leader; woken, it still says LEADER in its old term until it hears the new one",
             (_s(0, "pause", "leader", ref="victim", label="the leader freezes"),
              _s(HOLD_S, "resume", "ref:victim", ends="victim", label="the old leader wakes up"))),
    Scenario("monitor_partition",
             "the monitor is cut off with one follower, which is cut off from the others too: it "
             "reaches 1 of N nodes and must not claim to know the rest, then the network heals",
             (_s(0, "monitor_partition", "follower", ref="cut", label="the monitor sees one follower only"),
              _s(HOLD_S, "heal", ends="cut", label="the network heals"))),
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


def parse_names(values: list[str] | tuple[str, ...] | str) -> list[str]:
    """Scenario names from repeated and/or comma-separated values, in order (repeats allowed).

    ValueError for an unknown name (listing the known ones) or for no name at all.
    """
    if isinstance(values, str):
        values = [values]
    out = []
    for value in values:
        for part in str(value).split(","):
            part = part.strip()
            if part:
                get(part)
                out.append(part)
    if not out:
        raise ValueError(f"no scenario named; known: {', '.join(SCENARIOS)}")
    return out


def describe_all() -> str:
    """Every scenario's ``describe()`` line, for --help texts."""
    return "\n".join(s.describe() for s in SCENARIOS.values())


# The demo's order of faults as scenario names; with more fault ticks than these the list repeats.
DEMO_KINDS = ("follower_crash", "leader_crash", "quorum_loss", "leader_isolation")


def demo_scenario(fail_at_ticks: list[int], tick_s: float, heal_ticks: int, ticks: int | None = None) -> Scenario:
    """The demo schedule as one scenario: at each tick the next of ``DEMO_KINDS``, healed
    ``heal_ticks`` ticks later (capped at ``ticks``).

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
        steps.append(replace(heal, offset_s=heal_tick * tick_s, target=heal_target, ends=ref))
    return Scenario("demo", "the demo's schedule: follower crash, leader crash, quorum loss, leader isolation",
                    tuple(steps))


def lineup(scenarios: list[Scenario], first_at: float, gap_s: float) -> list[tuple[Scenario, float]]:
    """Start times for ``scenarios`` played in order: the first at ``first_at``, each next one
    ``gap_s`` after the previous one's last step."""
    out = []
    at = first_at
    for scenario in scenarios:
        out.append((scenario, at))
        at += scenario.length_s + gap_s
    return out


def lineup_loop(cluster: Any, planned: list[tuple[Scenario, float]], rng: random.Random) -> ScenarioLoop:
    """A loop playing a fixed line-up (see :func:`lineup`) and then stopping."""
    def plan(index: int, free_at: float) -> Optional[tuple[Scenario, float]]:
        if index >= len(planned):
            return None
        scenario, start = planned[index]
        return scenario, max(start, free_at)

    return ScenarioLoop(cluster, plan, rng)


def repeat_loop(cluster: Any, scenario: Scenario, period_s: float, rng: random.Random,
                start: float = 0.0) -> ScenarioLoop:
    """``scenario`` again every ``period_s`` (e.g. the demo schedule for `serve --chaos demo`)."""
    if not period_s >= scenario.length_s or period_s <= 0:
        raise ValueError(f"period {period_s!r} s is shorter than the scenario ({scenario.length_s:g} s)")
    return ScenarioLoop(cluster, lambda index, free_at: (scenario, max(start + index * period_s, free_at)),
                        rng, start)


def random_loop(cluster: Any, rng: random.Random, choice_rng: random.Random, start: float = 0.0,
                gap_s: tuple[float, float] = (15.0, 40.0), first_s: tuple[float, float] = (5.0, 15.0),
                pool: list[str] | None = None) -> ScenarioLoop:
    """Seeded random library scenarios one at a time: the first a random ``first_s`` after
    ``start``, each next one a random ``gap_s`` after the previous one's last step.
    ``choice_rng`` picks scenarios and gaps, ``rng`` picks nodes, so the same seeds replay."""
    choices = list(pool) if pool else names()
    for name in choices:
        get(name)
    for low, high in (gap_s, first_s):
        if not 0 <= low <= high:
            raise ValueError(f"a gap range must satisfy 0 <= low <= high, got {(low, high)!r}")

    def plan(index: int, free_at: float) -> tuple[Scenario, float]:
        scenario = get(choice_rng.choice(choices))
        low, high = first_s if index == 0 else gap_s
        return scenario, free_at + choice_rng.uniform(low, high)

    return ScenarioLoop(cluster, plan, rng, start)

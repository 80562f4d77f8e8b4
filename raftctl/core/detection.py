"""Detection accuracy: does the collector see every injected fault, and nothing else?

Two independent records of one simulated run are compared:

* **ground truth** — :class:`DetectionTracker` listens to the cluster's fault and leadership
  events (``cluster.add_observer``) and keeps, from the simulator's own state, what really
  happened: which fault effects were in force when (``Effect``) and which *incidents* changed the
  cluster's health (``Incident``);
* **what the collector reported** — every sample's health, leader, leader-change counter,
  down nodes and firing alerts, plus every alert event (``observe_sample``, ``observe_alert``).

Incidents that must be detected (the recall denominator):

* ``node_down`` — a crash of a live node. Seen when a sample shows that node DOWN and the
  health not HEALTHY.
* ``quorum_loss`` — a crash that leaves fewer than a majority of nodes up. Seen when a sample is
  UNHEALTHY with ``quorum_loss`` firing.
* ``no_majority`` — nodes are up but no partition group holds a majority (a partition, or a crash
  inside one). Seen when a sample is UNHEALTHY. A minority leader legitimately keeps its office
  until Raft's check-quorum steps it down (``stepdown_s``), so such an incident is only
  observable from ``start + stepdown_s`` on.
* ``leader_loss`` — the leader crashes, or is cut off from a majority. Seen when a sample shows
  another leader (or none) or a higher leader-change count. If the cut heals before any node
  wins an election, nothing changed: the incident is counted as ``no_effect``, not as a miss.

An incident that ends before any sample could see it is ``too_short`` (reported, never hidden).
Detection latency is the simulated time from the fault to the first sample showing it.

False alarms: each alert name has the fault kinds that can cause it (``ALERT_CAUSES``); a firing
alert matches when such a fault was in force at some time in ``[t - recovery_s, t]`` (its
effects outlive a heal by a little: orders retried after a leader change still report their long
latency in the next interval). Every other firing alert is a false alarm. Samples that are not
HEALTHY with no fault of any kind in that window are counted as ``unexplained_unhealthy``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from raftctl.core.faults import STARTUP, FaultKind
from raftctl.core.measures import quorum_size

__all__ = [
    "ALERT_CAUSES", "Effect", "Incident", "DetectionTracker", "DetectionReport",
    "INCIDENT_KINDS",
]

INCIDENT_KINDS = ("node_down", "quorum_loss", "no_majority", "leader_loss")

# Which fault kinds can make each alert fire. "startup" is the first election of a fresh cluster.
_K = FaultKind
_OUTAGES = frozenset({_K.CRASH.value, _K.PARTITION.value, _K.LOSS.value, _K.SLOW.value})
ALERT_CAUSES: dict[str, frozenset[str]] = {
    "quorum_loss": frozenset({_K.CRASH.value}),
    "low_healthy_nodes": frozenset({_K.CRASH.value}),
    "cluster_unhealthy": _OUTAGES | {STARTUP},
    "leader_election_failure": _OUTAGES | {STARTUP},
    "high_latency": _OUTAGES | {STARTUP},
    "term_divergence": _OUTAGES,
    "consensus_misalignment": frozenset({_K.CORRUPT.value}),
}


@dataclass
class Effect:
    """A fault in force from ``start`` until ``end`` (None: still in force)."""

    kind: str
    target: Any
    start: float
    end: float | None = None


@dataclass
class Incident:
    """A health-changing consequence of a fault; see the module docstring for the kinds."""

    kind: str
    target: Any
    start: float
    cause: str
    end: float | None = None
    observable_from: float = 0.0
    leader: str | None = None
    baseline_changes: int = 0
    detected_at: float | None = None

    @property
    def latency_s(self) -> float | None:
        return None if self.detected_at is None else self.detected_at - self.start


@dataclass(frozen=True)
class Observation:
    """The parts of one collector sample that detection needs."""

    t: float
    health: str
    leader: str | None
    leader_changes: int
    down: frozenset[str]
    firing: frozenset[str]


@dataclass
class DetectionReport:
    """Detection figures of one run (or, summed with ``merge``, of a campaign)."""

    incidents: dict[str, dict[str, int]] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list)
    alerts_fired: int = 0
    false_alarms: list[tuple[float, str]] = field(default_factory=list)
    unexplained_unhealthy: int = 0
    missed: list[tuple[float, str, str]] = field(default_factory=list)
    samples: int = 0

    @property
    def observable(self) -> int:
        return sum(v["observable"] for v in self.incidents.values())

    @property
    def detected(self) -> int:
        return sum(v["detected"] for v in self.incidents.values())

    @property
    def recall(self) -> float:
        return 1.0 if self.observable == 0 else self.detected / self.observable


class DetectionTracker:
    """Ground truth and collector observations of one run; ``report()`` compares them.

    Attach before the run (``DetectionTracker(cluster)`` registers an observer); call
    ``note_leader(cluster)`` just before injecting a fault so the incident knows who led.
    """

    def __init__(self, cluster: Any, collection_interval: float = 1.0,
                 recovery_s: float | None = None, stepdown_s: float | None = None) -> None:
        self.cluster = cluster
        self.interval = float(collection_interval)
        self.recovery_s = 2.0 * self.interval if recovery_s is None else float(recovery_s)
        if stepdown_s is None:
            # a leader cut off from the majority notices within two check-quorum periods
            stepdown_s = 2.0 * cluster.config.election_timeout_min_ms / 1000.0
        self.stepdown_s = float(stepdown_s)
        self.quorum = quorum_size(len(cluster.node_ids))
        self.effects: list[Effect] = [Effect(STARTUP, None, 0.0)]
        self.incidents: list[Incident] = []
        self.observations: list[Observation] = []
        self.alert_events: list[dict[str, Any]] = []
        self.elections: list[float] = []
        self.leader: str | None = cluster.leader_id
        self._down: set[str] = {n.node_id for n in cluster.nodes if not n.up}
        self._groups: dict[str, int] | None = None
        self._open: dict[tuple[str, Any], Effect] = {}
        self._open_incidents: list[Incident] = []
        cluster.add_observer(self._on_event)

    # ---- ground truth ----------------------------------------------------------------------

    def note_leader(self, cluster: Any | None = None) -> None:
        """Record who leads right now (call just before injecting a fault)."""
        self.leader = (cluster or self.cluster).leader_id

    def _close(self, kind: str, target: Any, now: float) -> None:
        effect = self._open.pop((kind, target), None)
        if effect is not None:
            effect.end = now

    def _start(self, kind: str, target: Any, now: float) -> None:
        self._close(kind, target, now)
        effect = Effect(kind, target, now)
        self.effects.append(effect)
        self._open[(kind, target)] = effect

    def _on_event(self, event: str, details: dict[str, Any]) -> None:
        now = float(self.cluster.now)
        if event == "leader_elected":
            if details.get("shard", 0) != 0:
                return
            self.elections.append(now)
            self.leader = details.get("node_id")
            startup = self.effects[0]
            if startup.end is None:
                startup.end = now
            return
        args: tuple[Any, ...] = tuple(details.get("args") or ())
        before_leader = self.leader
        before_majority = self._has_majority()
        before_up = len(self.cluster.node_ids) - len(self._down)
        if event == FaultKind.CRASH:
            node = args[0]
            self._down.add(node)
            self._start(FaultKind.CRASH.value, node, now)
            self._open_incident("node_down", node, now, FaultKind.CRASH.value)
        elif event == FaultKind.RESTART:
            node = args[0]
            self._down.discard(node)
            self._close(FaultKind.CRASH.value, node, now)
            self._end_incidents(lambda i: i.kind == "node_down" and i.target == node, now)
        elif event == FaultKind.PARTITION:
            groups = args[0] if args else ()
            seen = {nid: gi for gi, group in enumerate(groups) for nid in group}
            self._groups = {nid: seen.get(nid, len(groups)) for nid in self.cluster.node_ids}
            self._start(FaultKind.PARTITION.value, None, now)
        elif event == FaultKind.HEAL:
            self._groups = None
            self._close(FaultKind.PARTITION.value, None, now)
            for key in [k for k in self._open if k[0] == FaultKind.SLOW.value]:
                self._close(*key, now)
        elif event == FaultKind.SLOW:
            node, factor = args[0], args[1]
            if factor > 1.0:
                self._start(FaultKind.SLOW.value, node, now)
            else:
                self._close(FaultKind.SLOW.value, node, now)
        elif event in (FaultKind.LOSS, FaultKind.DUPLICATE, FaultKind.REORDER) and len(args) == 2:
            name, value = args
            if name == event:  # reorder_max_ms changes the size of a reorder, not whether there is one
                if value > 0:
                    self._start(event, None, now)
                else:
                    self._close(event, None, now)
        elif event == FaultKind.CORRUPT:
            self._start(FaultKind.CORRUPT.value, args[0], now)
        else:
            return
        up = len(self.cluster.node_ids) - len(self._down)
        majority = self._has_majority()
        if before_up >= self.quorum > up:
            self._open_incident("quorum_loss", None, now, event)
        if up >= self.quorum and before_majority and not majority:
            self._open_incident("no_majority", None, now, event, observable_from=now + self.stepdown_s)
        if up >= self.quorum:
            self._end_incidents(lambda i: i.kind == "quorum_loss", now)
        if majority:
            self._end_incidents(lambda i: i.kind == "no_majority", now)
        if before_leader is not None and not self._leader_viable(before_leader):
            if not any(i.kind == "leader_loss" and i.leader == before_leader and i.end is None
                       for i in self._open_incidents):
                incident = self._open_incident("leader_loss", before_leader, now, event)
                incident.leader = before_leader
                incident.baseline_changes = self._leader_changes()
            self.leader = None
        for incident in self._open_incidents:
            if incident.kind == "leader_loss" and self._leader_viable(incident.leader):
                incident.end = now
        self._open_incidents = [i for i in self._open_incidents if i.end is None]

    def _leader_changes(self) -> int:
        return int(self.cluster.stats().get("leader_changes", 0))

    def _group_up(self, node: str) -> int:
        groups = self._groups
        if groups is None:
            return len(self.cluster.node_ids) - len(self._down)
        mine = groups.get(node)
        return sum(1 for nid, g in groups.items() if g == mine and nid not in self._down)

    def _leader_viable(self, node: str | None) -> bool:
        return node is not None and node not in self._down and self._group_up(node) >= self.quorum

    def _has_majority(self) -> bool:
        return any(self._group_up(nid) >= self.quorum for nid in self.cluster.node_ids
                   if nid not in self._down)

    def _open_incident(self, kind: str, target: Any, now: float, cause: str,
                       observable_from: float | None = None) -> Incident:
        incident = Incident(kind, target, now, cause,
                            observable_from=now if observable_from is None else observable_from)
        self.incidents.append(incident)
        self._open_incidents.append(incident)
        return incident

    def _end_incidents(self, match: Any, now: float) -> None:
        for incident in self._open_incidents:
            if incident.end is None and match(incident):
                incident.end = now

    def finish(self) -> None:
        """Close every open effect and incident at the cluster's current time."""
        now = float(self.cluster.now)
        for key in list(self._open):
            self._close(*key, now)
        for effect in self.effects:
            if effect.end is None:
                effect.end = now
        for incident in self._open_incidents:
            incident.end = now
        self._open_incidents = []

    # ---- what the collector reported --------------------------------------------------------

    def observe_sample(self, sample: dict[str, Any]) -> None:
        """Keep what detection needs from one collector sample."""
        cluster = sample["cluster"]
        down = frozenset(nid for nid, node in sample["nodes"].items() if not node["up"])
        firing = frozenset(a["name"] for a in sample.get("alerts") or () if a.get("status") == "firing")
        self.observations.append(Observation(
            float(sample["sim_time"]), cluster["health_status"], cluster["leader_node"],
            int(cluster.get("leader_changes", 0)), down, firing))

    def observe_alert(self, event: dict[str, Any]) -> None:
        """Keep one alert event (fired or resolved) from the collector's callback."""
        self.alert_events.append({
            "name": event["name"], "status": event["status"],
            "t": float(event["resolved_at_sim"] if event["status"] == "resolved"
                       else event["started_at_sim"]),
        })

    # ---- comparison --------------------------------------------------------------------------

    def _shows(self, incident: Incident, obs: Observation) -> bool:
        if incident.kind == "node_down":
            return incident.target in obs.down and obs.health != "HEALTHY"
        if incident.kind == "quorum_loss":
            return obs.health == "UNHEALTHY" and "quorum_loss" in obs.firing
        if incident.kind == "no_majority":
            return obs.health == "UNHEALTHY"
        return obs.leader != incident.leader or obs.leader_changes > incident.baseline_changes

    def _classify(self, incident: Incident) -> str:
        observations = self.observations
        end = incident.end if incident.end is not None else float("inf")
        if incident.kind == "leader_loss":
            # a cut healed before anyone won an election changed nothing a monitor could report
            horizon = end + self.recovery_s
            elected = any(incident.start < t <= horizon for t in self.elections)
            crashed = incident.cause == "crash" and incident.leader in incident_targets(
                self.incidents, "node_down", incident.start)
            if not (elected or crashed):
                return "no_effect"
            window = [o for o in observations if incident.start <= o.t <= horizon + self.interval]
        else:
            # inclusive: a sample due at the very instant of the heal runs before it
            window = [o for o in observations if incident.observable_from <= o.t <= end]
            if not window:
                return "too_short"
        for obs in window:
            if self._shows(incident, obs):
                incident.detected_at = obs.t
                return "detected"
        if not window:
            return "too_short"
        return "missed"

    def _explained(self, t: float, kinds: Iterable[str] | None) -> bool:
        allowed = None if kinds is None else set(kinds)
        for effect in self.effects:
            if allowed is not None and effect.kind not in allowed:
                continue
            end = effect.end if effect.end is not None else float("inf")
            if effect.start <= t and t <= end + self.recovery_s:
                return True
        return False

    def report(self) -> DetectionReport:
        """Compare ground truth with the collector's samples and alerts."""
        self.finish()
        out = DetectionReport(samples=len(self.observations))
        for kind in INCIDENT_KINDS:
            out.incidents[kind] = {"total": 0, "observable": 0, "detected": 0, "missed": 0,
                                   "too_short": 0, "no_effect": 0}
        for incident in self.incidents:
            verdict = self._classify(incident)
            row = out.incidents[incident.kind]
            row["total"] += 1
            row[verdict] += 1
            if verdict in ("detected", "missed"):
                row["observable"] += 1
            if verdict == "detected" and incident.latency_s is not None:
                out.latencies_s.append(round(incident.latency_s, 6))
            elif verdict == "missed":
                out.missed.append((incident.start, incident.kind, str(incident.target or incident.leader)))
        for event in self.alert_events:
            if event["status"] != "firing":
                continue
            out.alerts_fired += 1
            if not self._explained(event["t"], ALERT_CAUSES.get(event["name"], frozenset())):
                out.false_alarms.append((event["t"], event["name"]))
        for obs in self.observations:
            if obs.health != "HEALTHY" and not self._explained(obs.t, None):
                out.unexplained_unhealthy += 1
        return out


def incident_targets(incidents: list[Incident], kind: str, at: float) -> set[Any]:
    """Targets of incidents of ``kind`` that started exactly at ``at``."""
    return {i.target for i in incidents if i.kind == kind and i.start == at}

"""Honest detection scoring: did the monitor see every injected fault in time, and nothing else?

Two independent records of one simulated run are compared:

* **ground truth**, from the fault injector only (``cluster.add_observer``): which nodes were
  crashed, paused, cut off from their peers or from the monitor, and when. Each fault event also
  names the leader just before it. Nothing here comes from the collector, and nothing from the
  nodes' Raft state;
* **what the monitor reported**: every sample's health, reasons, leader and DOWN nodes, and every
  alert event (``observe_sample``, ``observe_alert``).

Incidents (the recall denominator) are the intervals in which a truth condition held:

* ``node_down`` X — X crashed, paused, or unreachable from the monitor. Seen when a sample shows X
  DOWN and the health not HEALTHY.
* ``quorum_loss`` — fewer than a majority of nodes alive (not crashed, not paused). Seen when a
  sample is UNHEALTHY.
* ``no_majority`` — a majority alive but no partition group holds one. A minority leader keeps
  its office until check-quorum steps it down, so its deadline runs from ``start + stepdown_s``.
  Seen when a sample is UNHEALTHY.
* ``monitor_blind`` — the monitor reaches fewer than a majority and some node it does not reach
  is silent rather than gone (paused, or behind a cut from the monitor; a crashed node refuses the
  poll, which is evidence). Seen when a sample is UNHEALTHY and says ``monitor_reach``.
* ``isolated`` X — X alive and reachable by the monitor, but its network group holds fewer than a
  majority of running (not crashed) nodes while some running node is outside it: cut off by a
  partition. A survivor of crashes whose every running peer it reaches is not cut off (the
  incident is the quorum loss). Seen when a sample is not HEALTHY and names X in a reason (or
  shows it DOWN).
* ``leader_loss`` L — the leader of the moment crashes, pauses, is cut off from a majority, or is
  left without a live majority in its group. Seen when a sample shows another leader, or none.
  In a sharded cluster the other groups' leaders lost the same way explain what follows
  (a group without a leader is UNHEALTHY); the incidents scored are shard 0's.

Every incident that lasts at least ``min_incident_s`` (1 s) counts, whatever the sampling
interval: nothing is excused as "too short to observe". It is detected when a sample taken no
later than ``deadline_s`` after its start (and not after its end) shows it; recall is detected /
counted. An incident still open when the run ends less than a deadline after its start is
``unjudged`` (reported, not counted either way).

False alarms: each alert has its own condition in ground truth (``ALERT_TRUTH``); a firing alert
is a false alarm unless that condition held at some instant within ``deadline_s`` before it.
``leader_election_failure`` needs no leader for ``max_no_leader_s`` first, so a leader loss up to
``max_no_leader_s + deadline_s`` before it explains it (a real cluster's election may take that
long: etcd's default election timeout is 1 s, randomized up to 2 s). ``commit_stalled`` likewise
needs ``max_commit_stall_s`` without a new commit: its window reaches that much further back.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

from raftctl.core.alerts import min_healthy_nodes as min_healthy_nodes_in_force
from raftctl.core.faults import FaultKind
from raftctl.core.measures import quorum_size
from raftctl.core.sim.network import MONITOR

__all__ = ["ALERT_TRUTH", "DetectionReport", "DetectionTracker", "INCIDENT_KINDS", "Incident", "Truth"]

INCIDENT_KINDS = ("node_down", "quorum_loss", "no_majority", "monitor_blind", "isolated", "leader_loss")


@dataclass(frozen=True)
class Truth:
    """What the injector had done to the cluster, from ``start`` on (until the next Truth)."""

    start: float
    crashed: frozenset[str] = frozenset()
    paused: frozenset[str] = frozenset()
    monitor_cut: frozenset[str] = frozenset()
    isolated: frozenset[str] = frozenset()  # alive, its transport reaches no majority (crashes, cuts)
    majority: bool = True                   # some group holds a majority of live nodes
    minority: frozenset[str] = frozenset()  # alive, but its group holds no majority of live nodes
    slow: frozenset[str] = frozenset()
    impaired: frozenset[str] = frozenset()  # network settings in force: loss, duplicate, ...
    corrupt: frozenset[str] = frozenset()
    startup: bool = False
    cut: frozenset[str] = frozenset()       # isolated, with a running node outside its group (a cut)

    @property
    def unavailable(self) -> frozenset[str]:
        return self.crashed | self.paused

    @property
    def dark(self) -> frozenset[str]:
        """Nodes the monitor cannot get an answer from."""
        return self.crashed | self.paused | self.monitor_cut

    @property
    def any_fault(self) -> bool:
        return bool(self.dark or self.isolated or not self.majority or self.slow or self.impaired
                    or self.corrupt or self.startup)


@dataclass
class Incident:
    kind: str
    target: str | None
    start: float
    end: float | None = None
    observable_from: float = 0.0
    detected_at: float | None = None
    verdict: str = ""

    @property
    def latency_s(self) -> float | None:
        return None if self.detected_at is None else self.detected_at - self.start


@dataclass(frozen=True)
class Observation:
    t: float
    health: str
    leader: str | None
    down: frozenset[str]
    reasons: tuple[str, ...]


@dataclass
class DetectionReport:
    """Detection figures of one run (or, summed, of a campaign)."""

    incidents: dict[str, dict[str, int]] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list)
    alerts_fired: int = 0
    false_alarms: list[tuple[float, str]] = field(default_factory=list)
    unexplained_unhealthy: int = 0
    missed: list[tuple[float, str, str | None]] = field(default_factory=list)  # target None: the cluster
    samples: int = 0

    @property
    def counted(self) -> int:
        return sum(v["counted"] for v in self.incidents.values())

    @property
    def detected(self) -> int:
        return sum(v["detected"] for v in self.incidents.values())

    @property
    def recall(self) -> float:
        return 1.0 if self.counted == 0 else self.detected / self.counted


def _node_fault(name: str) -> Callable[["DetectionTracker", Truth, str], bool]:
    def held(tracker: "DetectionTracker", truth: Truth, node: str) -> bool:
        if name == "node_down":
            return node in truth.dark
        if name == "node_isolated":
            return node in truth.isolated
        if name == "stale_leader":
            # a leader that can no longer be backed: frozen, cut off, or left without a live majority
            return node in truth.paused or node in truth.isolated or node in truth.minority
        # node_lagging: anything that can hold a follower back
        return (node in truth.dark or node in truth.isolated or node in truth.slow
                or bool(truth.impaired) or not truth.majority)
    return held


def _cluster_fault(name: str) -> Callable[["DetectionTracker", Truth, str], bool]:
    def held(tracker: "DetectionTracker", truth: Truth, node: str) -> bool:
        q = tracker.quorum
        alive = tracker.size - len(truth.unavailable)
        blind = tracker.size - len(truth.dark) < q
        if name == "quorum_loss":
            # fewer than a majority alive, or alive but no group of them reaching each other holds
            # one (the nodes' own reports of their peers say so: has_quorum is lost on that too)
            return alive < q or not truth.majority
        if name == "consensus_misalignment":
            return bool(truth.corrupt)
        if name == "low_healthy_nodes":
            verifiable = tracker.size - len(truth.dark | truth.isolated)
            return truth.startup or verifiable < tracker.healthy_floor
        if name in ("cluster_unhealthy", "leader_election_failure", "commit_stalled"):
            return (truth.startup or alive < q or not truth.majority or blind or bool(truth.corrupt)
                    or bool(truth.slow) or bool(truth.impaired))
        # high_latency, term_divergence: any fault that touches the nodes or their network
        return truth.any_fault and bool(truth.dark - truth.monitor_cut or truth.isolated or not truth.majority
                                        or truth.slow or truth.impaired or truth.startup)
    return held


# alert name -> its condition in ground truth (truth, node label) ; see the module docstring
ALERT_TRUTH: dict[str, Callable[["DetectionTracker", Truth, str], bool]] = {
    **{name: _node_fault(name) for name in ("node_down", "node_lagging", "stale_leader", "node_isolated")},
    **{name: _cluster_fault(name) for name in ("quorum_loss", "consensus_misalignment", "low_healthy_nodes",
                                               "cluster_unhealthy", "leader_election_failure",
                                               "commit_stalled", "high_latency", "term_divergence")},
    # the simulator's storage never loses what it made durable: no fault explains a lost commit
    "committed_entries_lost": lambda tracker, truth, node: False,
}

# leader losses, restarts and resumes explain what follows them within the deadline (for the
# per-node alerts, only the same node's: a restarted process reconnects to its peers, catches up)
_TRANSITIONS_EXPLAIN = frozenset({"cluster_unhealthy", "leader_election_failure", "commit_stalled", "high_latency",
                                  "term_divergence", "node_lagging", "stale_leader", "low_healthy_nodes",
                                  "node_isolated"})
_PER_NODE = frozenset({"node_lagging", "stale_leader", "node_isolated"})


class DetectionTracker:
    """Ground truth and monitor observations of one run; ``report()`` compares them.

    Attach before the run: ``DetectionTracker(cluster)`` registers an observer of the injector.
    """

    def __init__(self, cluster: Any, collection_interval: float = 1.0, deadline_s: float = 2.0,
                 min_incident_s: float = 1.0, stepdown_s: float | None = None,
                 min_healthy_nodes: int | None = None, max_no_leader_s: float = 2.0,
                 max_commit_stall_s: float = 5.0) -> None:
        self.cluster = cluster
        self.interval = float(collection_interval)
        self.deadline = float(deadline_s)
        self.min_incident = float(min_incident_s)
        if stepdown_s is None:
            stepdown_s = 2.0 * cluster.config.election_timeout_min_ms / 1000.0
        self.stepdown_s = float(stepdown_s)
        self.node_ids = list(cluster.node_ids)
        self.size = len(self.node_ids)
        self.quorum = quorum_size(self.size)
        # low_healthy_nodes' floor, as the alert rule computes it (None: scaled to the size)
        self.healthy_floor = min_healthy_nodes_in_force({"min_healthy_nodes": min_healthy_nodes}, self.size)
        # leader_election_failure fires only after this long without a leader: its own condition
        self.max_no_leader_s = float(max_no_leader_s)
        # commit_stalled likewise fires only after this long without a new commit
        self.max_commit_stall_s = float(max_commit_stall_s)
        self.startup_s = 3.0 * cluster.config.election_timeout_max_ms / 1000.0
        now = float(cluster.now)
        self.truths: list[Truth] = [Truth(now, startup=True)]
        self.transitions: list[tuple[float, str, str | None]] = []  # (t, what, node)
        self.leader_losses: list[tuple[float, str]] = []
        self._leader_out: set[str] = set()
        self._group_leaders: tuple[str, ...] = ()  # sharded: the other groups' leaders before the fault
        self._group_leader_out: set[str] = set()
        self._groups: dict[str, int] | None = None
        self._monitor_group: int | None = None
        self._state: dict[str, set[str]] = {k: set() for k in ("crashed", "paused", "slow", "impaired", "corrupt")}
        self.observations: list[Observation] = []
        self.alert_events: list[dict[str, Any]] = []
        self.incidents: list[Incident] = []
        self._end: float | None = None
        self._startup_closed = False
        cluster.add_observer(self._on_event)

    # ---- ground truth from the injector -------------------------------------------------------

    def _on_event(self, event: str, details: dict[str, Any]) -> None:
        try:
            kind = FaultKind(event)
        except ValueError:
            return  # leadership and other simulator events are not ground truth here
        now = float(self.cluster.now)
        args: tuple[Any, ...] = tuple(details.get("args") or ())
        leader = details.get("leader")
        self._group_leaders = tuple(details.get("group_leaders") or ())
        st = self._state
        if kind is FaultKind.CRASH:
            st["crashed"].add(args[0])
            st["paused"].discard(args[0])
        elif kind is FaultKind.RESTART:
            st["crashed"].discard(args[0])
            st["corrupt"].discard(args[0])
            self.transitions.append((now, "restart", args[0]))
        elif kind is FaultKind.PAUSE:
            st["paused"].add(args[0])
        elif kind is FaultKind.RESUME:
            st["paused"].discard(args[0])
            self.transitions.append((now, "resume", args[0]))
        elif kind is FaultKind.PARTITION:
            groups = args[0] if args else ()
            seen: dict[str, int] = {}
            self._monitor_group = None
            for gi, group in enumerate(groups):
                for nid in group:
                    if nid == MONITOR:
                        self._monitor_group = gi
                    else:
                        seen[nid] = gi
            self._groups = {nid: seen.get(nid, len(groups)) for nid in self.node_ids}
        elif kind is FaultKind.HEAL:
            self._groups = None
            self._monitor_group = None
            st["slow"].clear()
        elif kind is FaultKind.SLOW:
            (st["slow"].add if args[1] > 1.0 else st["slow"].discard)(args[0])
        elif kind in (FaultKind.LOSS, FaultKind.DUPLICATE, FaultKind.REORDER, FaultKind.LATENCY):
            name, value = args[0], args[1]
            if kind is FaultKind.LATENCY:
                latency = f"latency:{name}"
                (st["impaired"].add if value > 5.0 else st["impaired"].discard)(latency)
            elif name == kind.value:
                (st["impaired"].add if value > 0 else st["impaired"].discard)(kind.value)
        elif kind is FaultKind.CORRUPT:
            st["corrupt"].add(args[0])
        self._push(now, leader)

    def _push(self, now: float, leader: str | None) -> None:
        st = self._state
        unavailable = st["crashed"] | st["paused"]
        groups = self._groups or dict.fromkeys(self.node_ids, 0)
        live_per_group: dict[int, int] = {}
        reachable_per_group: dict[int, int] = {}  # a paused peer still holds its connections
        for nid, g in groups.items():
            if nid not in unavailable:
                live_per_group[g] = live_per_group.get(g, 0) + 1
            if nid not in st["crashed"]:
                reachable_per_group[g] = reachable_per_group.get(g, 0) + 1
        majority = any(n >= self.quorum for n in live_per_group.values())
        isolated = {nid for nid, g in groups.items()
                    if nid not in unavailable and reachable_per_group.get(g, 0) < self.quorum}
        running = len(groups) - len(st["crashed"] & groups.keys())
        cut = {nid for nid in isolated if reachable_per_group.get(groups[nid], 0) < running}
        minority = {nid for nid, g in groups.items()
                    if nid not in unavailable and live_per_group.get(g, 0) < self.quorum}
        groups = self._groups or {}
        monitor_cut: set[str] = set()
        if self._monitor_group is not None and groups:
            monitor_cut = {nid for nid, g in groups.items() if g != self._monitor_group}
        startup = self.truths[-1].startup and now < self.startup_s
        truth = Truth(now, frozenset(st["crashed"]), frozenset(st["paused"]), frozenset(monitor_cut),
                      frozenset(isolated - monitor_cut), majority, frozenset(minority), frozenset(st["slow"]),
                      frozenset(st["impaired"]), frozenset(st["corrupt"]), startup,
                      frozenset(cut - monitor_cut))
        out = truth.unavailable | isolated | minority
        if leader is not None and leader not in self._leader_out and leader in out:
            self.leader_losses.append((now, leader))
            self.transitions.append((now, "leader_loss", leader))
        self._leader_out = {n for n in self._leader_out if n in out}
        if leader is not None and leader in out:
            self._leader_out.add(leader)
        # a sharded cluster's other groups lose their leaders the same way: that explains what the
        # monitor says of those groups next (a shard without a leader is UNHEALTHY), though the
        # incidents scored for recall stay shard 0's (the cluster's own leader)
        for other in self._group_leaders:
            if other != leader and other in out and other not in self._group_leader_out:
                self.transitions.append((now, "leader_loss", other))
        self._group_leader_out = {n for n in self._group_leader_out | set(self._group_leaders) if n in out}
        self.truths.append(truth)

    def finish(self) -> None:
        """Mark the end of the run (the cluster's current time)."""
        self._end = float(self.cluster.now)

    # ---- what the monitor reported ----------------------------------------------------------

    def observe_sample(self, sample: dict[str, Any]) -> None:
        cluster = sample["cluster"]
        down = frozenset(nid for nid, node in sample["nodes"].items() if not node["up"])
        self.observations.append(Observation(
            float(sample["sim_time"]), cluster["health_status"], cluster["leader_node"], down,
            tuple(cluster.get("health_reasons") or ())))

    def observe_alert(self, event: dict[str, Any]) -> None:
        self.alert_events.append({
            "name": event["name"], "status": event["status"], "labels": dict(event.get("labels") or {}),
            "t": float(event["resolved_at_sim"] if event["status"] == "resolved" else event["started_at_sim"]),
        })

    # ---- incidents ----------------------------------------------------------------------------

    def _segments(self) -> list[tuple[float, float, Truth]]:
        end = self._end if self._end is not None else float(self.cluster.now)
        truths = self.truths
        out = []
        for i, truth in enumerate(truths):
            stop = truths[i + 1].start if i + 1 < len(truths) else end
            if truth.startup and stop > self.startup_s:
                # the first election is bounded: split the segment where it must be over
                out.append((truth.start, self.startup_s, truth))
                out.append((self.startup_s, stop, replace(truth, start=self.startup_s, startup=False)))
                continue
            if stop > truth.start or i + 1 == len(truths):
                out.append((truth.start, stop, truth))
        return out

    def _build_incidents(self) -> list[Incident]:
        segments = self._segments()
        predicates: dict[tuple[str, str | None], Callable[[Truth], bool]] = {
            ("quorum_loss", None): lambda t: self.size - len(t.unavailable) < self.quorum,
            ("no_majority", None): lambda t: self.size - len(t.unavailable) >= self.quorum and not t.majority,
            ("monitor_blind", None): lambda t: (self.size - len(t.dark) < self.quorum
                                                 and bool(t.dark - (t.crashed - t.monitor_cut))),
        }
        def dark(node: str) -> Callable[[Truth], bool]:
            return lambda t: node in t.dark

        def cut_off(node: str) -> Callable[[Truth], bool]:
            return lambda t: node in t.cut

        for nid in self.node_ids:
            predicates[("node_down", nid)] = dark(nid)
            predicates[("isolated", nid)] = cut_off(nid)
        incidents: list[Incident] = []
        for (kind, target), holds in predicates.items():
            current: Incident | None = None
            for start, stop, truth in segments:
                if holds(truth):
                    if current is None:
                        current = Incident(kind, target, start)
                    current.end = stop
                elif current is not None:
                    incidents.append(current)
                    current = None
            if current is not None:
                incidents.append(current)
        for at, leader in self.leader_losses:
            end = next((s for s, _e, t in segments if s > at and leader not in t.unavailable
                        and leader not in t.isolated and leader not in t.minority),
                       segments[-1][1] if segments else at)
            incidents.append(Incident("leader_loss", leader, at, end))
        for incident in incidents:
            incident.observable_from = incident.start + (self.stepdown_s if incident.kind == "no_majority" else 0.0)
        incidents.sort(key=lambda i: (i.start, i.kind, i.target or ""))
        return incidents

    @staticmethod
    def _shows(incident: Incident, obs: Observation) -> bool:
        kind, target = incident.kind, incident.target
        if kind == "node_down":
            return target in obs.down and obs.health != "HEALTHY"
        if kind in ("quorum_loss", "no_majority"):
            return obs.health == "UNHEALTHY"
        if kind == "monitor_blind":
            return obs.health == "UNHEALTHY" and any(r.startswith("monitor_reach:") for r in obs.reasons)
        if kind == "isolated":
            return obs.health != "HEALTHY" and (target in obs.down or any(
                r.rsplit(":", 1)[-1] == target for r in obs.reasons))
        return obs.leader != target  # leader_loss

    def _judge(self, incident: Incident, run_end: float) -> str:
        end = incident.end if incident.end is not None else run_end
        if end - incident.start < self.min_incident:
            return "short" if end < run_end else "unjudged"
        horizon = min(incident.observable_from + self.deadline, end)
        for obs in self.observations:
            if obs.t < incident.start or obs.t > horizon:
                continue
            if self._shows(incident, obs):
                incident.detected_at = obs.t
                return "detected"
        if run_end < incident.start + self.deadline and end >= run_end:
            return "unjudged"
        return "missed"

    # ---- false alarms -------------------------------------------------------------------------

    def _stalled_at(self) -> frozenset[float]:
        """The instants of the samples a commit stall made UNHEALTHY (reason ``commit_stalled``)."""
        return frozenset(obs.t for obs in self.observations
                         if any(r.rpartition(":")[2] == "commit_stalled" for r in obs.reasons))

    def _explained(self, name: str, node: str, t: float, segments: list[tuple[float, float, Truth]],
                   stalled: frozenset[float] = frozenset()) -> bool:
        holds = ALERT_TRUTH.get(name)
        if holds is None:
            return False
        # commit_stalled fires after max_commit_stall_s without a new commit; so does the
        # cluster_unhealthy of a sample made UNHEALTHY by that stall
        waits = name == "commit_stalled" or (name == "cluster_unhealthy" and t in stalled)
        low = t - self.deadline - (self.max_commit_stall_s if waits else 0.0)
        for start, stop, truth in segments:
            if start <= t and stop >= low and holds(self, truth, node):
                return True
        if name in _TRANSITIONS_EXPLAIN:
            # an alert that needs its condition to last (no leader for max_no_leader_s) is
            # explained by a leader loss that long, plus the deadline, before it
            since = low - self.max_no_leader_s if name == "leader_election_failure" else low
            for at, _what, who in self.transitions:
                if since <= at <= t and (name not in _PER_NODE or who == node):
                    return True
        return False

    def report(self) -> DetectionReport:
        """Compare ground truth with the monitor's samples and alerts."""
        if self._end is None:
            self.finish()
        run_end = float(self._end or 0.0)
        segments = self._segments()
        self.incidents = self._build_incidents()
        out = DetectionReport(samples=len(self.observations))
        for kind in INCIDENT_KINDS:
            out.incidents[kind] = {"total": 0, "counted": 0, "detected": 0, "missed": 0, "short": 0,
                                   "unjudged": 0}
        for incident in self.incidents:
            verdict = self._judge(incident, run_end)
            incident.verdict = verdict
            row = out.incidents[incident.kind]
            row["total"] += 1
            row[verdict] += 1
            if verdict in ("detected", "missed"):
                row["counted"] += 1
            if verdict == "detected" and incident.latency_s is not None:
                out.latencies_s.append(round(incident.latency_s, 6))
            elif verdict == "missed":
                out.missed.append((incident.start, incident.kind, incident.target))
        stalled = self._stalled_at()
        for event in self.alert_events:
            if event["status"] != "firing":
                continue
            out.alerts_fired += 1
            if not self._explained(event["name"], event["labels"].get("node", ""), event["t"], segments, stalled):
                out.false_alarms.append((event["t"], event["name"]))
        for obs in self.observations:
            if obs.health == "HEALTHY":
                continue
            low = obs.t - self.deadline - (self.max_commit_stall_s if obs.t in stalled else 0.0)
            if not any(start <= obs.t and stop >= low and truth.any_fault for start, stop, truth in segments) \
                    and not any(low <= at <= obs.t for at, _w, _n in self.transitions):
                out.unexplained_unhealthy += 1
        return out

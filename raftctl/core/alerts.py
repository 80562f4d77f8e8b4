"""Alert rules and the firing / resolved lifecycle.

``evaluate_conditions`` is a pure function: sample + thresholds -> the conditions that hold now.
``AlertEngine`` turns successive condition sets into events: an alert fires once when its
condition first holds, stays active (no duplicate events) while it holds, and resolves exactly
once when it clears. No I/O here; the collector delivers the events.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Mapping

from raftctl.core.commit_watch import CommitWatch, Lost
from raftctl.core.measures import cut_off_below, quorum_size

__all__ = [
    "ALERT_RULES", "DEFAULT_THRESHOLDS", "Condition", "AlertEngine", "evaluate_conditions",
    "validate_thresholds", "fingerprint", "min_healthy_nodes",
]

CRITICAL = "critical"
WARNING = "warning"

# name -> (severity, one-line description); the names are a stable public interface
ALERT_RULES: dict[str, tuple[str, str]] = {
    "cluster_unhealthy": (CRITICAL, "health_status is UNHEALTHY"),
    "leader_election_failure": (CRITICAL, "no leader for longer than max_no_leader_s"),
    "consensus_misalignment": (CRITICAL, "nodes at the same applied index hold different state"),
    "quorum_loss": (CRITICAL, "fewer than a majority of nodes are up"),
    "commit_stalled": (CRITICAL, "a leader is backed and proposals wait, but nothing committed for max_commit_stall_s"),
    "committed_entries_lost": (CRITICAL, "a leader committed an index below one committed before: "
                                         "acknowledged entries are gone (labels.shard when sharded)"),
    "high_latency": (WARNING, "avg_latency_ms above max_latency_ms"),
    "low_healthy_nodes": (WARNING, "healthy_nodes below min_healthy_nodes"),
    "term_divergence": (WARNING, "spread of live nodes' terms above max_term_difference"),
    "node_down": (WARNING, "a node does not answer the monitor (labels.node; the message says why)"),
    "node_lagging": (WARNING, "a follower lags the leader or the leader has not heard from it (labels.node)"),
    "stale_leader": (WARNING, "a node still says LEADER in an old term (labels.node)"),
    "node_isolated": (WARNING, "a node answers but its transport reaches no majority of its peers (labels.node)"),
}

# name -> its runbook in docs/runbooks/ (the Prometheus rule of the same condition in
# deploy/prometheus/raftctl-alerts.yml, whose runbook_url names the same file)
ALERT_RUNBOOKS: dict[str, str] = {
    "cluster_unhealthy": "RaftctlClusterUnhealthy",
    "leader_election_failure": "RaftctlNoLeader",
    "consensus_misalignment": "RaftctlConsensusMisaligned",
    "quorum_loss": "RaftctlQuorumLost",
    "commit_stalled": "RaftctlCommitStalled",
    "committed_entries_lost": "RaftctlCommittedEntriesLost",
    "high_latency": "RaftctlHighConsensusLatency",
    "low_healthy_nodes": "RaftctlLowHealthyNodes",
    "term_divergence": "RaftctlTermDivergence",
    "node_down": "RaftctlNodeDown",
    "node_lagging": "RaftctlFollowerLagging",
    "stale_leader": "RaftctlStaleLeader",
    "node_isolated": "RaftctlNodeIsolated",
}

# health reason prefix -> the per-node alert it raises
_NODE_REASONS = {
    "node_down": "node_down",
    "follower_lagging": "node_lagging",
    "follower_unreachable": "node_lagging",
    "stale_leader": "stale_leader",
    "node_isolated": "node_isolated",
}

# key -> (default, allowed types, description)
_THRESHOLD_SPECS: dict[str, tuple[Any, tuple[type, ...], str]] = {
    "max_latency_ms": (500.0, (int, float), "high_latency fires when avg_latency_ms exceeds it"),
    "min_healthy_nodes": (None, (int, type(None)),
                          "low_healthy_nodes fires when healthy_nodes is below it; null (the default) "
                          "scales with the cluster: min(cluster_size, cluster_size // 2 + 2), so it fires "
                          "when one more failure would lose the majority"),
    "max_term_difference": (2, (int,), "term_divergence fires when the term spread exceeds it"),
    "max_no_leader_s": (2.0, (int, float), "leader_election_failure after this long leaderless"),
    "max_commit_stall_s": (5.0, (int, float),
                           "commit_stalled when a backed leader's commit index has not moved this long "
                           "while proposals wait (the source must count them: not etcd)"),
    "max_replication_lag": (100, (int,), "DEGRADED when a live follower lags more entries"),
    "max_follower_contact_ms": (1000.0, (int, float),
                                "DEGRADED when the leader has not heard a live follower longer"),
    "node_alert_hold_s": (2.0, (int, float),
                          "node_lagging and node_isolated fire only once their condition has held this "
                          "long (as a Prometheus rule's for:): a node just restarted or woken is not heard "
                          "from, or reaches no peer, for a sample or two; 0 fires at once"),
}
# the per-node warnings a node coming back shows for a moment: held for node_alert_hold_s
HELD_NODE_ALERTS = frozenset({"node_lagging", "node_isolated"})
DEFAULT_THRESHOLDS: dict[str, Any] = {k: spec[0] for k, spec in _THRESHOLD_SPECS.items()}


def validate_thresholds(thresholds: Mapping[str, Any],
                        base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Check keys and value types; return ``base`` (default: the defaults) updated with them."""
    if not isinstance(thresholds, Mapping):
        raise ValueError(f"alert_thresholds must be a dict, got {type(thresholds).__name__}")
    unknown = sorted(set(thresholds) - set(_THRESHOLD_SPECS))
    if unknown:
        raise ValueError(f"unknown alert threshold(s) {', '.join(map(repr, unknown))}; "
                         f"known: {', '.join(_THRESHOLD_SPECS)}")
    merged = dict(DEFAULT_THRESHOLDS if base is None else base)
    for key, value in thresholds.items():
        _default, types, _doc = _THRESHOLD_SPECS[key]
        # bool is an int subclass but True as a latency limit is always a mistake
        if value is None and type(None) in types:
            merged[key] = None
            continue
        if isinstance(value, bool) or not isinstance(value, types):
            kind = "an integer" if int in types and float not in types else "a number"
            raise ValueError(f"alert threshold {key!r} must be {kind}{' or null' if type(None) in types else ''}, "
                             f"got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"alert threshold {key!r} must be finite, got {value!r}")
        if value < 0:  # type: ignore[operator]  # an int or float, checked just above
            raise ValueError(f"alert threshold {key!r} must be >= 0, got {value!r}")
        merged[key] = value
    return merged


def min_healthy_nodes(thresholds: Mapping[str, Any], cluster_size: int) -> int:
    """The healthy-node floor in force: the threshold given, else one that scales with the cluster
    (below it one more failure loses the majority; a cluster with every node healthy never
    crosses it, so a 1- or 2-node cluster does not warn all the time)."""
    given = thresholds.get("min_healthy_nodes")
    if given is not None:
        return int(given)
    return min(cluster_size, cluster_size // 2 + 2)


# alerts whose evidence a monitor that reaches less than a majority (monitor_reach) no longer has:
# firing when it goes blind, they hold until it sees again (they never fire while it is blind)
HELD_WHILE_BLIND = frozenset(("quorum_loss", "leader_election_failure"))


def fingerprint(name: str, labels: Mapping[str, str]) -> str:
    """Stable 16-hex-digit hash of an alert's name and labels (order-independent)."""
    text = name + "\x00" + "\x00".join(f"{k}={labels[k]}" for k in sorted(labels))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@lru_cache(maxsize=4096)
def _condition_fingerprint(name: str, labels: tuple[tuple[str, str], ...]) -> str:
    # an alert that holds is looked up by its fingerprint at every sample: hash it once
    return fingerprint(name, dict(labels))


@dataclass(frozen=True)
class Condition:
    """One alert condition that holds in a sample."""

    name: str
    message: str
    labels: tuple[tuple[str, str], ...] = ()
    # the Raft groups it holds in (one alert per kind lists them; not part of its identity)
    shards: tuple[int, ...] = ()

    @property
    def severity(self) -> str:
        return ALERT_RULES[self.name][0]

    @property
    def fingerprint(self) -> str:
        return _condition_fingerprint(self.name, self.labels)


def evaluate_conditions(sample: Mapping[str, Any], thresholds: Mapping[str, Any],
                        no_leader_for: float = 0.0,
                        shard_no_leader_for: Mapping[int, float] | None = None,
                        live_terms: tuple[int, int] | None = None,
                        commit_stalled_for: Mapping[int, float] | None = None,
                        commits_lost: Mapping[int, Lost] | None = None) -> list[Condition]:
    """Conditions holding in ``sample``; ``no_leader_for`` = seconds leaderless so far;
    ``commit_stalled_for``: per shard (0 unsharded), seconds its leader's commit index has stood
    still while proposals waited; ``commits_lost``: per shard, a leader that committed below what
    was committed before (both from ``commit_watch.CommitWatch``, which the engine keeps);
    ``live_terms``: the lowest and highest term of the live nodes when the caller knows them
    (``reports.Reading``), else they are read from the node documents.

    In a sharded sample (a ``shards`` list) leader and divergence alerts are raised once per kind,
    listing the shards they hold in (``Condition.shards``; the message names them), with
    ``shard_no_leader_for`` giving each shard's leaderless time.
    """
    cluster = sample["cluster"]
    performance = sample["performance"]
    shards = sample.get("shards")
    out: list[Condition] = []
    if cluster["health_status"] == "UNHEALTHY":
        reasons = ", ".join(cluster.get("health_reasons") or ()) or "unknown"
        out.append(Condition("cluster_unhealthy", f"cluster is UNHEALTHY ({reasons})"))
    limit = thresholds["max_no_leader_s"]
    if shards:
        waited = shard_no_leader_for or {}
        leaderless = {int(doc["shard"]): waited.get(doc["shard"], 0.0) for doc in shards
                      if doc["leader"] is None and waited.get(doc["shard"], 0.0) > limit}
        if leaderless:
            out.append(Condition(
                "leader_election_failure",
                f"{_shard_list(leaderless)}: no leader for up to {max(leaderless.values()):.1f} s "
                f"(threshold {limit} s)", shards=tuple(sorted(leaderless))))
        misaligned = sorted(int(doc["shard"]) for doc in shards if not doc["consensus_aligned"])
        if misaligned:
            out.append(Condition(
                "consensus_misalignment",
                f"{_shard_list(misaligned)}: replicas at the same applied index report different "
                "state digests", shards=tuple(misaligned)))
    else:
        if cluster["leader_node"] is None and no_leader_for > limit:
            out.append(Condition(
                "leader_election_failure",
                f"no leader for {no_leader_for:.1f} s (threshold {limit} s)"))
        if not cluster["consensus_aligned"]:
            out.append(Condition("consensus_misalignment",
                                 "live nodes at the same applied index report different state digests"))
    if commit_stalled_for:
        stall_limit = thresholds["max_commit_stall_s"]
        stalled = {shard: waited for shard, waited in commit_stalled_for.items() if waited > stall_limit}
        if stalled:
            pending = performance.get("proposals_pending")
            where = f"{_shard_list(stalled)}: " if shards else ""
            out.append(Condition(
                "commit_stalled",
                f"{where}nothing committed for {max(stalled.values()):.1f} s while {pending} proposal"
                f"{'' if pending == 1 else 's'} wait, with a leader backed (threshold {stall_limit} s)",
                shards=tuple(sorted(stalled)) if shards else ()))
    if commits_lost:
        for shard, (leader, term, index, mark) in sorted(commits_lost.items()):
            where = f"shard {shard}: " if shards else ""
            out.append(Condition(
                "committed_entries_lost",
                f"{where}leader {leader} (term {term}) committed index {index}, below index {mark} committed "
                f"before: its log lacks committed entries, so orders acknowledged up to index {mark} may be "
                "lost (a majority's logs lost acknowledged writes?)",
                (("shard", str(shard)),) if shards else ()))
    if cluster["has_quorum"] is False:  # None: the monitor cannot tell (monitor_reach says so)
        # nodes up, not healthy ones: a stale leader or a lagging follower is up (it was counted
        # as down); has_quorum is lost on refusals and on nodes cut off, so say how many of each
        nodes = sample.get("nodes") or {}
        size = int(cluster["cluster_size"])
        up = [node for node in nodes.values() if node.get("up")]
        refused = sum(1 for node in nodes.values() if node.get("down_reason") == "refused")
        short_of = cut_off_below(size, refused)
        cut = sum(1 for node in up if isinstance(node.get("peers_connected"), int)
                  and node["peers_connected"] < short_of)
        if cut:
            said = (f"only {len(up) - cut} of {size} nodes up and reaching a majority of their peers "
                    f"({refused} refused the poll: not running; {cut} answer but are cut off, reaching "
                    f"fewer than {quorum_size(size) - 1})")
        else:
            said = f"only {len(up)} of {size} nodes up ({refused} refused the poll: not running)"
        out.append(Condition("quorum_loss", f"{said}; a majority is {quorum_size(size)}"))
    latency = performance.get("avg_latency_ms")
    if latency is not None and latency > thresholds["max_latency_ms"]:
        out.append(Condition(
            "high_latency",
            f"average consensus latency {latency:.1f} ms > {thresholds['max_latency_ms']} ms"))
    floor = min_healthy_nodes(thresholds, int(cluster["cluster_size"]))
    if cluster["healthy_nodes"] < floor:
        out.append(Condition(
            "low_healthy_nodes",
            f"{cluster['healthy_nodes']} of {cluster['cluster_size']} nodes healthy, below {floor}"
            + (f" (min_healthy_nodes {floor} is more than the cluster has: this fires until it is lowered)"
               if floor > cluster["cluster_size"] else
               ": one more failure leaves no healthy majority"
               if cluster["healthy_nodes"] == quorum_size(cluster["cluster_size"]) else "")))
    nodes = sample["nodes"]
    named: set[tuple[str, str]] = set()
    for reason in cluster.get("health_reasons") or ():
        prefix, _, node_id = reason.partition(":")
        alert = _NODE_REASONS.get(prefix)
        if alert is None or not node_id or (alert, node_id) in named:
            continue
        named.add((alert, node_id))
        node = nodes.get(node_id) or {}
        node_labels: tuple[tuple[str, str], ...] = (("node", node_id),)
        if alert == "node_down":
            # the reason is in the message, not the labels: a node whose polls go from refused to
            # timeout (a process restarting) is one alert, not a resolution and a new firing
            why = str(node.get("down_reason") or "no answer")
            detail = node.get("down_detail")
            message = f"{node_id} does not answer the monitor ({why}{': ' + str(detail) if detail else ''})"
        elif alert == "node_lagging":
            lag, contact = node.get("replication_lag"), node.get("last_contact_ms")
            message = (f"{node_id} is {lag} entries behind the leader" if prefix == "follower_lagging"
                       else f"the leader has not heard from {node_id} for {_duration_ms(contact)}")
        elif alert == "stale_leader":
            message = f"{node_id} still says LEADER in term {node.get('term')}, which the other reports do not back"
        else:
            peers = node.get("peers_connected")
            message = f"{node_id} answers but reaches only {peers} peer{'' if peers == 1 else 's'}, no majority"
        out.append(Condition(alert, message, node_labels))
    if live_terms is None:
        terms = [node["term"] for node in nodes.values() if node["up"]]
        live_terms = (min(terms), max(terms)) if terms else None
    if live_terms is not None:
        low, high = live_terms
        spread = high - low
        if spread > thresholds["max_term_difference"]:
            out.append(Condition(
                "term_divergence",
                f"live nodes' terms span {low}..{high} "
                f"(difference {spread} > {thresholds['max_term_difference']})"))
    return out


def _nothing_holds(sample: Mapping[str, Any], thresholds: Mapping[str, Any], live_terms: tuple[int, int] | None,
                   commits: CommitWatch) -> bool:
    """True only where :func:`evaluate_conditions` finds nothing, checked without building it: an
    unsharded sample, HEALTHY with no reason, a leader, aligned, with quorum, every node healthy
    (the default healthy floor), the latency and the term spread within bounds, no commit stall or
    loss. False means "not known": the rules are evaluated in full."""
    cluster = sample["cluster"]
    if (cluster["health_status"] != "HEALTHY" or cluster.get("health_reasons") or live_terms is None
            or cluster["leader_node"] is None or not cluster["consensus_aligned"] or cluster["has_quorum"] is not True
            or commits.stalls or commits.losses or sample.get("shards")
            or cluster["healthy_nodes"] < cluster["cluster_size"] or thresholds["min_healthy_nodes"] is not None):
        return False
    latency = sample["performance"].get("avg_latency_ms")
    if latency is not None and latency > thresholds["max_latency_ms"]:
        return False
    return bool(live_terms[1] - live_terms[0] <= thresholds["max_term_difference"])


def _duration_ms(ms: Any) -> str:
    """``6654.278`` -> ``6.7 s``; ``250.5`` -> ``250 ms``: a contact age as a person reads it."""
    if not isinstance(ms, (int, float)) or isinstance(ms, bool):
        return f"{ms} ms"
    return f"{ms / 1000.0:.1f} s" if ms >= 1000.0 else f"{ms:.0f} ms"


def _shard_list(shards: Any) -> str:
    """``[2]`` -> ``"shard 2"``, ``[0, 1, 3]`` -> ``"shards 0, 1, 3"``."""
    ordered = sorted(shards)
    return ("shard " if len(ordered) == 1 else "shards ") + ", ".join(map(str, ordered))


@dataclass
class _Alert:
    name: str
    severity: str
    fingerprint: str
    labels: dict[str, str]
    message: str
    started_at: float
    started_at_sim: float
    status: str = "firing"
    resolved_at: float | None = None
    resolved_at_sim: float | None = None
    shards: tuple[int, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        doc = {
            "name": self.name, "severity": self.severity, "status": self.status,
            "fingerprint": self.fingerprint, "labels": dict(self.labels),
            "message": self.message, "started_at": self.started_at,
            "resolved_at": self.resolved_at, "started_at_sim": self.started_at_sim,
            "resolved_at_sim": self.resolved_at_sim,
        }
        if self.shards:
            doc["shards"] = list(self.shards)
        return doc


@dataclass
class AlertEngine:
    """Tracks active alerts across samples and emits firing / resolved events.

    Not thread-safe on its own; the collector calls it under its lock.
    """

    history_limit: int = 1000
    fired_total: int = 0
    resolved_total: int = 0
    _active: dict[str, _Alert] = field(default_factory=dict)
    _history: deque[Any] = field(default_factory=deque[Any])
    _no_leader_since: float | None = None
    _shard_no_leader_since: dict[str, Any] = field(default_factory=dict[str, Any])
    # each group's leader commit index over time: commit_stalled and committed_entries_lost
    _commits: CommitWatch = field(default_factory=CommitWatch)
    # HELD_NODE_ALERTS conditions seen and not fired yet: fingerprint -> sim_time first seen
    _pending: dict[str, float] = field(default_factory=dict[str, float])
    _hold_s: float = 0.0

    def __post_init__(self) -> None:
        if self.history_limit < 1:
            raise ValueError("history_limit must be >= 1")
        self._history = deque(maxlen=self.history_limit)

    def observe_commits(self, sample: Mapping[str, Any], thresholds: Mapping[str, Any]) -> list[str]:
        """Feed the sample's leaders' commit indexes to the commit watch (before ``evaluate``,
        which is then told ``commits_observed``) and return the health reasons the watch gives:
        ``commit_stalled`` (a stall longer than ``max_commit_stall_s``) and
        ``committed_entries_lost``, prefixed ``shardN:`` in a sharded sample; [] for none."""
        commits = self._commits
        commits.observe(sample, sample["sim_time"])
        stalls, losses = commits.stalls, commits.losses
        if stalls is None and losses is None:
            return []
        sharded = bool(sample.get("shards"))
        limit = thresholds["max_commit_stall_s"]
        found = [(shard, "commit_stalled") for shard, waited in (stalls or {}).items() if waited > limit]
        found += [(shard, "committed_entries_lost") for shard in (losses or {})]
        return [f"shard{shard}:{reason}" if sharded else reason for shard, reason in sorted(found)]

    def evaluate(self, sample: Mapping[str, Any], thresholds: Mapping[str, Any],
                 live_terms: tuple[int, int] | None = None, *, commits_observed: bool = False) -> list[dict[str, Any]]:
        """Update state from one sample; return the events (alert dicts) it produced
        (``live_terms``: see ``evaluate_conditions``; ``commits_observed``: ``observe_commits``
        has been given this sample already)."""
        sim_time = sample["sim_time"]
        cluster = sample["cluster"]
        # leaderless time counts only while the monitor can tell (not when it is cut off)
        reasons = cluster.get("health_reasons")
        blind = bool(reasons) and any(r.startswith("monitor_reach:") for r in reasons)
        # an alert of what a blind monitor cannot tell (HELD_WHILE_BLIND) firing when it went
        # blind is held, its clock too, until the monitor sees again: "resolved" would say "fine"
        holding_blind = blind and any(a.name in HELD_WHILE_BLIND for a in self._active.values())
        if cluster["leader_node"] is None and (not blind or "no_leader" in (reasons or ())):
            if self._no_leader_since is None:
                self._no_leader_since = sim_time
            no_leader_for = sim_time - self._no_leader_since
        else:
            if not (holding_blind and cluster["leader_node"] is None):
                self._no_leader_since = None
            no_leader_for = 0.0
        shard_waits: dict[int, float] = {}
        for doc in sample.get("shards") or ():
            shard = doc["shard"]
            # as for the cluster: a shard's leaderless time counts only while the monitor can tell
            # (shard 0's no_leader is the cluster's own, unprefixed)
            if doc["leader"] is None and (not blind or f"shard{shard}:no_leader" in (reasons or ())
                                          or (shard == 0 and "no_leader" in (reasons or ()))):
                since = self._shard_no_leader_since.setdefault(shard, sim_time)
                shard_waits[shard] = sim_time - since
            elif not (holding_blind and doc["leader"] is None):
                self._shard_no_leader_since.pop(shard, None)
        commits = self._commits
        if not commits_observed:
            commits.observe(sample, sim_time)
        self._hold_s = float(thresholds["node_alert_hold_s"])
        if _nothing_holds(sample, thresholds, live_terms, commits):  # the common, healthy sample
            if not self._active:
                if self._pending:
                    self._pending.clear()
                return []
            conditions = []
        else:
            conditions = evaluate_conditions(sample, thresholds, no_leader_for, shard_waits, live_terms,
                                             commits.stalls, commits.losses)
        if holding_blind:
            conditions = conditions + self._held_while_blind(conditions, reasons or ())
        return self.apply(conditions, sample["timestamp"], sim_time)

    def _held_while_blind(self, conditions: list[Condition], reasons: Any) -> list[Condition]:
        """The active alerts of HELD_WHILE_BLIND that no condition of this blind sample holds:
        their evidence is gone with the monitor's sight, not shown false."""
        reach = next((r.partition(":")[2] for r in reasons if r.startswith("monitor_reach:")), "?")
        holding = {c.fingerprint for c in conditions}
        note = f" (held: the monitor reaches only {reach} nodes and cannot tell)"
        held = []
        for fp, alert in self._active.items():
            if alert.name in HELD_WHILE_BLIND and fp not in holding:
                base = alert.message.split(" (held: ", 1)[0]
                held.append(Condition(alert.name, base + note, tuple(alert.labels.items()), alert.shards))
        return held

    def apply(self, conditions: list[Condition], timestamp: float, sim_time: float) -> list[dict[str, Any]]:
        """Fire new conditions, resolve vanished ones; return the events in that order."""
        events: list[dict[str, Any]] = []
        holding: set[str] = set()
        pending = self._pending
        seen: set[str] = set()
        for condition in conditions:
            fp = condition.fingerprint
            if fp in holding or fp in seen:
                continue
            active = self._active.get(fp)
            if active is None and condition.name in HELD_NODE_ALERTS and self._hold_s > 0:
                since = pending.setdefault(fp, sim_time)
                if sim_time - since < self._hold_s:
                    seen.add(fp)  # pending: not firing yet, and nothing of it to resolve
                    continue
            pending.pop(fp, None)
            holding.add(fp)
            if active is not None:
                # still firing: the active alert says what holds now (as Prometheus re-renders an
                # alert's annotations on every evaluation); the firing event keeps what held then
                active.message = condition.message
                if condition.shards:  # a grouped alert follows the groups it holds in
                    active.shards = condition.shards
                continue
            alert = _Alert(condition.name, condition.severity, fp, dict(condition.labels),
                           condition.message, timestamp, sim_time, shards=condition.shards)
            self._active[fp] = alert
            self._history.append(alert)
            self.fired_total += 1
            events.append(alert.as_dict())
        if len(pending) > len(seen):  # a pending condition that no longer holds starts over next time
            for fp in [fp for fp in pending if fp not in seen]:
                del pending[fp]
        # every fingerprint held is active now, so some active one is not held only when there
        # are more active than held (the common case, nothing to resolve, skips the scan)
        gone = [fp for fp in self._active if fp not in holding] if len(self._active) > len(holding) else ()
        for fp in gone:
            alert = self._active.pop(fp)
            alert.status = "resolved"
            alert.resolved_at = timestamp
            alert.resolved_at_sim = sim_time
            self.resolved_total += 1
            events.append(alert.as_dict())
        return events

    def active(self) -> list[dict[str, Any]]:
        """Firing alerts, oldest first."""
        return [alert.as_dict() for alert in self._active.values()]

    def history(self) -> list[dict[str, Any]]:
        """The last ``history_limit`` alerts (firing or resolved), oldest first."""
        return [alert.as_dict() for alert in self._history]

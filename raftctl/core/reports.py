"""From one poll's reports to the node and shard parts of a sample document (pure).

Only what the nodes said is used (``raftctl/core/source.py``): who leads comes from
``raftctl/core/leadership.py``, a node that did not answer is DOWN with its reason, a node that
still says LEADER against the reports is a STALE_LEADER. ``has_quorum`` is False only on evidence:
so many nodes *refused* the poll (their process is gone) that fewer than a majority can be alive.
A node that does not answer in time may be paused, overloaded or cut off from the monitor only;
a monitor that reaches fewer than a majority says so (``monitor_reach``) rather than claim a
quorum loss it cannot see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from raftctl.core.health import consensus_aligned, evaluate_health, replication_lags
from raftctl.core.leadership import LeaderView, find_leader
from raftctl.core.measures import quorum_size
from raftctl.core.sample import NodeState
from raftctl.core.source import Poll

__all__ = ["Reading", "read_nodes", "shard_documents"]

DOWN = NodeState.DOWN.value
STALE = NodeState.STALE_LEADER.value


@dataclass
class Reading:
    """The node-level facts of one poll."""

    nodes: dict[str, dict[str, Any]]
    leader: LeaderView
    reached: int
    healthy: int
    has_quorum: bool
    aligned: bool
    current_term: int
    total_trades: int | None
    commit_apply_lag: int


def _int(value: Any) -> int:
    if type(value) is int:  # the common case, first: this runs for every field of every node
        return value
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


_REMEMBERED = ("commit_index", "last_applied", "log_length", "term")
_MAX_TERM_RUNS = 64


def _term_runs(value: Any) -> list[list[int]] | None:
    """A report's ``log_terms`` if well formed (ascending ``[index, term]`` pairs), else None."""
    if type(value) is not list or not value or len(value) > _MAX_TERM_RUNS:
        return None
    previous = -1
    for run in value:
        if (type(run) is not list or len(run) != 2 or type(run[0]) is not int or type(run[1]) is not int
                or run[0] <= previous or run[1] < 0):
            return None
        previous = run[0]
    return value


def read_nodes(poll: Poll, max_contact_ms: float,
               last_known: Mapping[str, tuple[Mapping[str, Any], float]] | None = None,
               now: float | None = None) -> Reading:
    """``last_known``: node id -> (its last answering node doc, sim_time): a DOWN node shows those
    values, marked by ``last_seen``, rather than zeros."""
    reports: dict[str, Mapping[str, Any] | None] = {nid: a.report for nid, a in poll.answers.items()}
    size = len(reports)
    gone = frozenset(nid for nid, a in poll.answers.items() if a.reason == "refused")
    view = find_leader(reports, max_contact_ms, size, gone)
    leader = view.leader
    stale = set(view.stale)
    leader_report = reports.get(leader) if leader is not None else None
    contacts = (leader_report.get("last_contact_ms") or {}) if leader_report else {}
    # lag as health.replication_lags defines it, computed in the same pass
    match = (leader_report.get("match_index") or {}) if leader_report else {}
    leader_commit = _int(leader_report.get("commit_index")) if leader_report else 0
    nodes: dict[str, dict[str, Any]] = {}
    healthy = 0
    terms: list[int] = []
    trades: list[int] = []
    commit_apply_lag = 0
    for node_id, answer in poll.answers.items():
        report = answer.report
        if report is None:
            known = (last_known or {}).get(node_id)
            doc: dict[str, Any] = {"state": DOWN}
            for key in _REMEMBERED:
                doc[key] = known[0].get(key) if known else None
            if known and known[0].get("log_terms") is not None:
                doc["log_terms"] = known[0]["log_terms"]
            doc.update({"peers_connected": None, "up": False, "replication_lag": None,
                        "last_contact_ms": None, "state_digest": None, "leader_id": None,
                        "down_reason": answer.reason, "last_seen": known[1] if known else None})
            nodes[node_id] = doc
            continue
        commit_index = _int(report.get("commit_index"))
        last_applied = _int(report.get("last_applied"))
        term = _int(report.get("term"))
        contact = contacts.get(node_id) if node_id != leader else None
        is_stale = node_id in stale
        if not is_stale and (contact is None or contact <= max_contact_ms):
            healthy += 1
        terms.append(term)
        if report.get("trades_executed") is not None:
            trades.append(_int(report.get("trades_executed")))
        commit_apply_lag = max(commit_apply_lag, commit_index - last_applied)
        if leader_report is None:
            lag: int | None = None
        elif node_id == leader:
            lag = 0
        else:
            lag = max(0, leader_commit - max(_int(match.get(node_id, 0)), commit_index))
        doc = {
            "state": STALE if is_stale else str(report.get("state") or "FOLLOWER"),
            "commit_index": commit_index,
            "last_applied": last_applied,
            "log_length": _int(report.get("log_length")),
            "peers_connected": _int(report.get("peers_connected")),
            "term": term,
            "up": True,
            "replication_lag": lag,
            "last_contact_ms": None if contact is None else float(contact),
            "state_digest": report.get("state_digest"),
            "leader_id": report.get("leader_id"),
            "down_reason": None,
            "last_seen": poll.now if now is None else now,
        }
        runs = report.get("log_terms")
        if runs is not None and (runs := _term_runs(runs)) is not None:
            doc["log_terms"] = runs
        nodes[node_id] = doc
    reached = len(terms)
    refused = sum(1 for a in poll.answers.values() if a.reason == "refused")
    has_quorum = size > 0 and size - refused >= quorum_size(size)
    if leader_report is not None:
        current_term = _int(leader_report.get("term"))
        total_trades = (_int(leader_report.get("trades_executed"))
                        if leader_report.get("trades_executed") is not None else None)
    else:
        current_term = max(terms or [0])
        total_trades = max(trades) if trades else None
    return Reading(nodes, view, reached, healthy, has_quorum,
                   consensus_aligned(nodes.values()), current_term, total_trades, commit_apply_lag)


def shard_documents(poll: Poll, max_contact_ms: float, thresholds: Mapping[str, Any],
                    latencies: list[list[float]], acked: list[int], prev_acked: list[int] | None,
                    elapsed: float, node_shards: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per-shard summaries of a Multi-Raft cluster (docs/CONTRACTS.md, sharding), each shard
    judged like a cluster of its own replicas from the replicas' reports; each node's replica of
    each shard is added to ``node_shards`` (by node id)."""
    size = len(poll.answers)
    docs = []
    for shard in range(poll.shards):
        reports: dict[str, Mapping[str, Any] | None] = {}
        for node_id, answer in poll.answers.items():
            entries = (answer.report or {}).get("shards") or ()
            reports[node_id] = entries[shard] if answer.report is not None and shard < len(entries) else None
        gone = frozenset(nid for nid, a in poll.answers.items() if a.reason == "refused")
        view = find_leader(reports, max_contact_ms, size, gone)
        leader = view.leader
        statuses = {nid: dict(r, up=True) if r is not None else {"up": False} for nid, r in reports.items()}
        lags = replication_lags(statuses, leader)
        leader_entry = reports.get(leader) if leader is not None else None
        contacts = (leader_entry.get("last_contact_ms") or {}) if leader_entry else {}
        aligned = consensus_aligned(statuses.values())
        shard_nodes: dict[str, dict[str, Any]] = {}
        healthy = 0
        for node_id, entry in reports.items():
            contact = None if node_id == leader or entry is None else contacts.get(node_id)
            state = DOWN if entry is None else (STALE if node_id in view.stale else str(entry.get("state")))
            if entry is not None and state != STALE and (contact is None or contact <= max_contact_ms):
                healthy += 1
            said: Mapping[str, Any] = entry if entry is not None else {}
            node_shards.setdefault(node_id, []).append({
                "shard": shard, "state": state,
                "term": _int(said.get("term")) if said else None,
                "commit_index": _int(said.get("commit_index")) if said else None,
                "last_applied": _int(said.get("last_applied")) if said else None,
                "log_length": _int(said.get("log_length")) if said else None,
                "replication_lag": lags.get(node_id),
                "last_contact_ms": None if contact is None else float(contact),
            })
            shard_nodes[node_id] = {"up": entry is not None, "state": state,
                                    "replication_lag": lags.get(node_id), "last_contact_ms": contact,
                                    "peers_connected": _int(((poll.answers[node_id].report or {})
                                                             .get("peers_connected")))}
        reached = sum(1 for r in reports.values() if r is not None)
        refused = sum(1 for a in poll.answers.values() if a.reason == "refused")
        cluster_view = {
            "cluster_size": size, "healthy_nodes": healthy, "leader_node": leader,
            "consensus_aligned": aligned, "nodes_reached": reached,
            "has_quorum": size - refused >= quorum_size(size),
        }
        status_name, reasons = evaluate_health(
            {"cluster": cluster_view, "nodes": shard_nodes},
            max_replication_lag=thresholds["max_replication_lag"], max_contact_ms=max_contact_ms)
        done = acked[shard] if shard < len(acked) else 0
        if prev_acked is None:
            throughput = done / poll.now if poll.now > 0 else 0.0
        else:
            before = prev_acked[shard] if shard < len(prev_acked) else 0
            throughput = (done - before) / elapsed if elapsed > 0 else 0.0
        shard_latencies = latencies[shard] if shard < len(latencies) else []
        live_terms = [_int(r.get("term")) for r in reports.values() if r is not None]
        docs.append({
            "shard": shard,
            "leader": leader,
            "term": _int(leader_entry.get("term")) if leader_entry else max(live_terms or [0]),
            "commit_index": _int(leader_entry.get("commit_index")) if leader_entry else 0,
            "last_applied": _int(leader_entry.get("last_applied")) if leader_entry else 0,
            "health_status": status_name,
            "consensus_aligned": aligned,
            "throughput_ops": round(float(throughput), 3),
            "avg_latency_ms": round(sum(shard_latencies) / len(shard_latencies), 3)
            if shard_latencies else None,
            "_reasons": [r for r in reasons if not r.startswith(("node_down:", "monitor_reach:"))],
        })
    return docs

"""From one poll's reports to the node and shard parts of a sample document (pure).

Only what the nodes said is used (``raftctl/core/source.py``): who leads comes from
``raftctl/core/leadership.py``, a node that did not answer is DOWN with its reason, a node that
still says LEADER against the reports is a STALE_LEADER. ``has_quorum`` is False only on evidence:
so many nodes *refused* the poll (their process is gone) or answer but say their transport reaches
no majority of their peers (cut off) that fewer than a majority can be alive and reach each other.
A node that does not answer in time may be paused, overloaded or cut off from the monitor only;
a monitor that reaches fewer than a majority says so (``monitor_reach``) rather than claim a
quorum loss it cannot see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from raftctl.core.health import digest_agreement, evaluate_health, replication_lags
from raftctl.core.leadership import LeaderView, find_leader
from raftctl.core.measures import cut_off_below, quorum_size
from raftctl.core.sample import NodeState
from raftctl.core.source import Poll

__all__ = ["Reading", "read_nodes", "shard_documents"]

DOWN = NodeState.DOWN.value
LEADER = NodeState.LEADER.value
CANDIDATE = NodeState.CANDIDATE.value
_NONE_GONE: frozenset[str] = frozenset()
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
    # what the later per-node rules would look for, gathered in this pass so they need not loop
    # again: the fewest peers an answering node reaches, the most a follower lags, the lowest term
    min_peers: int | None = None
    max_lag: int = 0
    top_term: int = 0
    low_term: int | None = None
    # every node of ``previous`` (read_nodes' argument) is here, no other, each in the state it had
    # there: then no node event is due (``EventLog.record``'s ``states_unchanged``); False: not known
    states_unchanged: bool = False
    # some two live nodes' digests at one applied index were compared (``aligned`` is evidence);
    # False: none could be, and ``aligned`` True only means no divergence was seen
    compared: bool = False

    @property
    def live_terms(self) -> tuple[int, int] | None:
        """(lowest, highest) term of the nodes that answered, for the term-divergence alert; None
        when none did or a term is negative (``top_term`` starts at 0): the rule then reads them."""
        if self.low_term is None or self.low_term < 0:
            return None
        return self.low_term, self.top_term

    def nodes_quiet(self, max_replication_lag: int) -> bool:
        """True when no node can give ``health.evaluate_health`` a reason: every node answered
        and is healthy (no stale leader, none unheard), none reaches too few peers for a majority
        and none lags more than ``max_replication_lag``; its ``nodes_quiet`` hint."""
        size = len(self.nodes)
        if self.healthy != size:
            return False
        if size > 1 and (self.min_peers is None or self.min_peers < quorum_size(size) - 1):
            return False
        return self.max_lag <= max_replication_lag


def _int(value: Any) -> int:
    if type(value) is int:  # the common case, first: this runs for every field of every node
        return value
    if type(value) is float and value == value and abs(value) != float("inf"):
        return int(value)  # a float is truncated; NaN, infinities and anything else count as 0
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


_REMEMBERED = ("commit_index", "last_applied", "log_length", "term")
# the roles a node can say of itself (DOWN and STALE_LEADER are the monitor's words, never a node's)
# (a pre-candidate, etcd's StatePreCandidate under --pre-vote, is shown as the CANDIDATE it is about to be)
_PRE_CANDIDATE = "PRE_CANDIDATE"
_SAID_STATES = frozenset((NodeState.LEADER.value, NodeState.FOLLOWER.value, NodeState.CANDIDATE.value,
                          _PRE_CANDIDATE))
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


def read_nodes(poll: Poll, max_contact_ms: float, previous: Mapping[str, Mapping[str, Any]] | None = None,
               now: float | None = None) -> Reading:
    """``previous``: the node documents of the previous sample. A DOWN node shows the values it
    last reported, marked by ``last_seen``, rather than zeros: from its previous document, which
    is its last answer, or a DOWN document that already carries that answer's values.

    One pass over the answers builds every node document and, on the way, the lag
    (``health.replication_lags``' rule), the healthy count, the commit-apply lag and the digest
    check (``health.consensus_aligned``' rule): this runs for every node of every sample, so
    the common case (a well-formed report of ints) takes no function call per field.
    """
    answers = poll.answers
    reports: dict[str, Mapping[str, Any] | None] = {}
    refusing = []
    claimants = []
    unreadable: dict[str, str] = {}
    for nid, a in answers.items():
        given: Mapping[str, Any] | None = a.report
        if given is None:
            if a.reason == "refused":
                refusing.append(nid)
        elif (said := given.get("state")) is not None:
            if type(said) is not str or said not in _SAID_STATES:
                # a role the monitor cannot read is no report: it backs nobody, it is DOWN ("error")
                given = None
                unreadable[nid] = f"its report names no role the monitor knows (state {str(said)[:40]!r})"
            elif said == LEADER:
                claimants.append(nid)
        reports[nid] = given
    size = len(reports)
    gone = frozenset(refusing) if refusing else _NONE_GONE
    view = find_leader(reports, max_contact_ms, size, gone, claimants)
    leader = view.leader
    stale = view.stale
    leader_report = reports.get(leader) if leader is not None else None
    if leader_report is not None:
        contacts = leader_report.get("last_contact_ms")
        match = leader_report.get("match_index")
        if type(contacts) is not dict:  # a node's report is its word: a malformed part is no part
            contacts = {}
        if type(match) is not dict:
            match = {}
        leader_commit = _int(leader_report.get("commit_index"))
    else:
        contacts = match = {}
        leader_commit = 0
    seen_at = poll.now if now is None else now
    nodes: dict[str, dict[str, Any]] = {}
    healthy = 0
    reached = 0
    top_term = 0
    low_term: int | None = None
    min_peers: int | None = None
    max_lag = 0
    trades: list[int] = []
    commit_apply_lag = 0
    aligned = True
    digests: dict[int, Any] = {}
    digested = 0  # digests looked at: more than distinct indexes, some two were compared
    # cleared at the first node whose state differs from its previous document's (or is new)
    unchanged = previous is not None and len(previous) == size
    # an answering node whose own report says it reaches fewer peers than a majority needs, while
    # some peer it does not reach is running, is cut off: no part of a working majority (every
    # node cut off from every other: no quorum, on evidence; health's node_isolated rule)
    short_of = cut_off_below(size, len(gone))
    cut_off = 0
    for node_id, report in reports.items():
        if report is None:
            reason = answers[node_id].reason or "error"  # no reason: an unreadable report (above)
            known = previous.get(node_id) if previous else None
            if unchanged and (known is None or known.get("state") != DOWN):
                unchanged = False
            nodes[node_id] = doc = _down_doc(reason, known)
            detail = answers[node_id].detail or unreadable.get(node_id)
            if reason == "error" and detail:
                # "error" alone says nothing: what went wrong (an unresolvable address, a bad answer)
                doc["down_detail"] = detail
            continue
        get = report.get
        try:  # subscripts where every key is there (the common case: they are quicker than get())
            state = report["state"]
            commit_index, last_applied, term = report["commit_index"], report["last_applied"], report["term"]
            log_length, peers, said_leader = report["log_length"], report["peers_connected"], report["leader_id"]
        except KeyError:
            state = get("state")
            commit_index, last_applied, term = get("commit_index"), get("last_applied"), get("term")
            log_length, peers, said_leader = get("log_length"), get("peers_connected"), get("leader_id")
        state = state or "FOLLOWER"  # a report without a role: what a node that says nothing more is
        if state == _PRE_CANDIDATE:
            state = CANDIDATE
        if not (type(commit_index) is int and type(last_applied) is int and type(term) is int
                and type(log_length) is int and type(peers) is int):  # the rare case: clean them
            commit_index, last_applied, term, log_length, peers = map(
                _int, (commit_index, last_applied, term, log_length, peers))
        reached += 1
        if term > top_term:
            top_term = term
        if low_term is None or term < low_term:
            low_term = term
        if min_peers is None or peers < min_peers:
            min_peers = peers
        if peers < short_of:
            cut_off += 1
        if leader_report is None:
            executed = get("trades_executed")
            if executed is not None:
                trades.append(_int(executed))
        if commit_index - last_applied > commit_apply_lag:
            commit_apply_lag = commit_index - last_applied
        is_stale = bool(stale) and node_id in stale
        if node_id == leader:
            contact = None
            lag: int | None = 0
        else:
            contact = contacts.get(node_id)
            if contact is not None and type(contact) is not float:
                contact = float(contact) if type(contact) is int else None
            if leader_report is None:
                lag = None
            else:
                matched = match.get(node_id, 0)
                if type(matched) is not int:
                    matched = _int(matched)
                held = get("last_log_index")  # below the match: its log is lost (health.replication_lags)
                if type(held) is int and held < matched:
                    matched = held
                lag = leader_commit - (matched if matched > commit_index else commit_index)
                if lag < 0:
                    lag = 0
                elif lag > max_lag:
                    max_lag = lag
        if not is_stale and (contact is None or contact <= max_contact_ms):
            healthy += 1
        digest = get("state_digest")
        if digest is not None and aligned:
            first = digests.setdefault(last_applied, digest)
            if first != digest:
                aligned = False
            digested += 1
        shown = STALE if is_stale else state
        if unchanged:
            known = previous.get(node_id) if previous is not None else None
            if known is None or known.get("state") != shown:
                unchanged = False
        doc = {
            "state": shown,
            "commit_index": commit_index,
            "last_applied": last_applied,
            "log_length": log_length,
            "peers_connected": peers,
            "term": term,
            "up": True,
            "replication_lag": lag,
            "last_contact_ms": contact,
            "state_digest": digest,
            "leader_id": said_leader,
            "down_reason": None,
            "last_seen": seen_at,
        }
        runs = get("log_terms")
        if runs is not None and (runs := _term_runs(runs)) is not None:
            doc["log_terms"] = runs
        nodes[node_id] = doc
    refused = len(gone)
    has_quorum = size > 0 and size - refused - cut_off >= quorum_size(size)
    if leader_report is not None:
        current_term = _int(leader_report.get("term"))
        executed = leader_report.get("trades_executed")
        total_trades = _int(executed) if executed is not None else None
    else:
        current_term = top_term
        if not reached:  # nobody answered: the highest term last reported (a term never goes back), not 0
            current_term = max((t for d in nodes.values() if type(t := d.get("term")) is int), default=0)
        total_trades = max(trades) if trades else None
    return Reading(nodes, view, reached, healthy, has_quorum, aligned, current_term, total_trades,
                   commit_apply_lag, min_peers, max_lag, top_term, low_term, unchanged,
                   not aligned or digested > len(digests))


def _down_doc(reason: str | None, known: Mapping[str, Any] | None) -> dict[str, Any]:
    """A node that did not answer: DOWN with its reason and the values of its last answer, if any
    (``known``: its previous document, up or DOWN, which holds them)."""
    doc: dict[str, Any] = {"state": DOWN}
    for key in _REMEMBERED:
        doc[key] = known.get(key) if known else None
    if known and known.get("log_terms") is not None:
        doc["log_terms"] = known["log_terms"]
    doc.update({"peers_connected": None, "up": False, "replication_lag": None,
                "last_contact_ms": None, "state_digest": None, "leader_id": None,
                "down_reason": reason, "last_seen": known.get("last_seen") if known else None})
    return doc


def shard_documents(poll: Poll, max_contact_ms: float, thresholds: Mapping[str, Any],
                    latencies: list[list[float]], acked: list[int], prev_acked: list[int] | None,
                    elapsed: float, node_shards: dict[str, list[dict[str, Any]]],
                    pending: list[int] | None = None,
                    previous: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Per-shard summaries of a Multi-Raft cluster (docs/CONTRACTS.md, sharding), each shard
    judged like a cluster of its own replicas from the replicas' reports; each node's replica of
    each shard is added to ``node_shards`` (by node id). ``previous``: the last sample's shard
    documents, whose ``consensus_aligned`` stands for a shard whose replicas cannot be compared."""
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
        contacts = leader_entry.get("last_contact_ms") if leader_entry else None
        if type(contacts) is not dict:
            contacts = {}
        agreement = digest_agreement(statuses.values())
        if agreement is None:  # no two replicas could be compared: what the last sample knew
            known = previous[shard] if previous is not None and shard < len(previous) else None
            agreement = known.get("consensus_aligned", True) is not False if isinstance(known, dict) else True
        aligned = agreement
        shard_nodes: dict[str, dict[str, Any]] = {}
        healthy = 0
        apply_lag = 0  # the largest commit_index - last_applied over the group's live replicas
        for node_id, entry in reports.items():
            contact = None if node_id == leader or entry is None else contacts.get(node_id)
            if contact is not None:
                contact = float(contact) if type(contact) in (int, float) else None
            state = DOWN if entry is None else (STALE if node_id in view.stale else str(entry.get("state")))
            if state == _PRE_CANDIDATE:
                state = CANDIDATE
            if entry is not None and state != STALE and (contact is None or contact <= max_contact_ms):
                healthy += 1
            said: Mapping[str, Any] = entry if entry is not None else {}
            if said:
                apply_lag = max(apply_lag, _int(said.get("commit_index")) - _int(said.get("last_applied")))
            node_shards.setdefault(node_id, []).append({
                "shard": shard, "state": state,
                "term": _int(said.get("term")) if said else None,
                "commit_index": _int(said.get("commit_index")) if said else None,
                "last_applied": _int(said.get("last_applied")) if said else None,
                "log_length": _int(said.get("log_length")) if said else None,
                "replication_lag": lags.get(node_id),
                "last_contact_ms": contact,
            })
            shard_nodes[node_id] = {"up": entry is not None, "state": state,
                                    "down_reason": poll.answers[node_id].reason if entry is None else None,
                                    "replication_lag": lags.get(node_id), "last_contact_ms": contact,
                                    "peers_connected": _int(((poll.answers[node_id].report or {})
                                                             .get("peers_connected")))}
        reached = sum(1 for r in reports.values() if r is not None)
        refused = sum(1 for a in poll.answers.values() if a.reason == "refused")
        short_of = cut_off_below(size, refused)
        cut_off = sum(1 for doc in shard_nodes.values() if doc["up"] and doc["peers_connected"] < short_of)
        cluster_view = {
            "cluster_size": size, "healthy_nodes": healthy, "leader_node": leader,
            "consensus_aligned": aligned, "nodes_reached": reached,
            "has_quorum": size - refused - cut_off >= quorum_size(size),
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
            # no leader: no authoritative index, and a figure raftctl does not know is null, never 0
            "commit_index": _int(leader_entry.get("commit_index")) if leader_entry else None,
            "last_applied": _int(leader_entry.get("last_applied")) if leader_entry else None,
            "health_status": status_name,
            "consensus_aligned": aligned,
            "throughput_ops": round(float(throughput), 3),
            "avg_latency_ms": round(sum(shard_latencies) / len(shard_latencies), 3)
            if shard_latencies else None,
            "proposals_pending": pending[shard] if pending is not None and shard < len(pending) else None,
            "commit_apply_lag": apply_lag,
            # what is about a node or the monitor, not the group (a node's transport reaches its
            # peers for every group alike), is said once, at the cluster level
            "_reasons": [r for r in reasons if not r.startswith(("node_down:", "monitor_reach:", "node_isolated:"))],
        })
    return docs

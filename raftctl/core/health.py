"""Cluster health as pure functions of node statuses and a sample document.

Rules (the seed's, made precise):

* UNHEALTHY — no leader the reports support (``no_leader``), or quorum lost on evidence
  (``quorum_lost``: fewer than a majority answer and none of them reports a working leader), or
  the replicated state machines diverged (``consensus_misaligned``: two nodes that applied the
  same log prefix hold different order books, a safety violation), or the monitor reaches fewer
  than a majority and some node it does not reach may be running (``monitor_reach:k/N``: it
  cannot vouch for the cluster; a node that *refused* the poll is known to be gone, so refusals
  alone make a ``quorum_lost``, not a blind monitor). With fewer than a majority answering, a
  missing leader is only claimed together with ``quorum_lost``.
* DEGRADED — every UNHEALTHY test passes but some node does not answer (``node_down``), still
  says LEADER in an old term (``stale_leader``), answers but reaches no majority of its peers
  while some peer it does not reach may be running (``node_isolated``: cut off; a survivor whose
  other peers all refused the poll is not), lags the leader by more than ``max_replication_lag`` entries
  (``follower_lagging``), or the leader has not heard from it for longer than ``max_contact_ms``
  (``follower_unreachable``): the seed's "minor alignment issues".
* HEALTHY — all nodes up, a leader, consensus aligned, nobody lagging.

Two more UNHEALTHY reasons need the samples before this one, so the collector adds them from the
alert engine's commit watch (``core/commit_watch.py``): ``commit_stalled`` and
``committed_entries_lost``.

Reasons are short machine-readable codes (``node_down:node3``) so they are stable from one
sample to the next and cheap to retain.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from raftctl.core.measures import cut_off_below, quorum_size
from raftctl.core.sample import Health, NodeState

__all__ = [
    "HEALTHY", "DEGRADED", "UNHEALTHY", "quorum_size", "consensus_aligned", "digest_agreement",
    "replication_lags", "evaluate_health",
]

HEALTHY = Health.HEALTHY.value
DEGRADED = Health.DEGRADED.value
UNHEALTHY = Health.UNHEALTHY.value
STALE_LEADER = NodeState.STALE_LEADER.value


def consensus_aligned(statuses: Iterable[Mapping[str, Any]]) -> bool:
    """True unless two live nodes at the same ``last_applied`` report different state digests.

    Nodes at different applied indexes are only lagging (a health matter, not divergence), so
    they are compared within groups of equal ``last_applied``. Nodes without a digest are skipped.
    """
    return digest_agreement(statuses) is not False


def digest_agreement(statuses: Iterable[Mapping[str, Any]]) -> bool | None:
    """False when two live nodes at the same ``last_applied`` report different digests, True when
    at least two were compared and none differ, None when no two could be compared (no two live
    nodes with a digest at the same index): the monitor then cannot tell, and keeps what it knew."""
    seen: dict[int, object] = {}
    compared = False
    for status in statuses:
        if not status.get("up"):
            continue
        digest = status.get("state_digest")
        if digest is None:
            continue
        applied = status.get("last_applied", 0)
        if applied in seen:
            if seen[applied] != digest:
                return False
            compared = True
        else:
            seen[applied] = digest
    return True if compared else None


def replication_lags(statuses: Mapping[str, Mapping[str, Any]], leader_id: str | None) -> dict[str, int | None]:
    """Entries each node is behind the leader's commit index (leader: 0; no leader: None).

    A node is as far along as the better of two reports: the leader's ``match_index`` for it
    (what the leader knows was replicated) and the node's own commit index. A freshly elected
    leader knows no match yet (0); the follower's own word then keeps it from looking behind.
    A follower whose own ``last_log_index`` is below that match has lost its log (restarted on
    an empty data dir): it holds only what it says. A node that is down has no lag (None): it
    is down, which another reason says.
    """
    leader = statuses.get(leader_id) if leader_id is not None else None
    if leader is None:
        return {node_id: None for node_id in statuses}
    leader_commit = leader.get("commit_index", 0)
    match = leader.get("match_index") or {}
    lags: dict[str, int | None] = {}
    for node_id, status in statuses.items():
        if node_id == leader_id:
            lags[node_id] = 0
            continue
        if not status.get("up", True):
            lags[node_id] = None
            continue
        matched = match.get(node_id, 0)
        held = status.get("last_log_index")
        if type(held) is int and held < matched:
            matched = held
        replicated = max(matched, status.get("commit_index", 0))
        lags[node_id] = max(0, leader_commit - replicated)
    return lags


def evaluate_health(sample: Mapping[str, Any], max_replication_lag: int = 100,
                    max_contact_ms: float | None = None, nodes_quiet: bool = False) -> tuple[str, list[str]]:
    """Return ``(health_status, reasons)`` for a sample document.

    Reads ``sample["cluster"]`` (cluster_size, healthy_nodes, leader_node, consensus_aligned,
    and when present nodes_reached and has_quorum) and ``sample["nodes"]`` (up, down_reason,
    state, replication_lag, last_contact_ms, peers_connected).

    ``nodes_quiet``: the caller vouches that no node gives a reason (``reports.Reading.nodes_quiet``,
    worked out in the pass that built the node documents), so the per-node pass is skipped.
    """
    cluster = sample["cluster"]
    nodes = sample["nodes"]
    size = cluster["cluster_size"]
    leader = cluster["leader_node"]
    quorum = quorum_size(size)
    reached = cluster.get("nodes_reached")
    if reached is None:
        reached = sum(1 for node in nodes.values() if node["up"])
    has_quorum = cluster.get("has_quorum")
    if has_quorum is None:
        has_quorum = cluster["healthy_nodes"] >= quorum
    critical: list[str] = []
    minor: list[str] = []
    if leader is None and (reached >= quorum or not has_quorum):
        critical.append("no_leader")
    if not has_quorum:
        critical.append("quorum_lost")
    if not cluster["consensus_aligned"]:
        critical.append("consensus_misaligned")
    isolated_below = quorum - 1 if size > 1 else None
    refused = 0
    short: list[tuple[int, str, int]] = []  # (place in minor, node, peers): reaching no majority
    for node_id, node in () if nodes_quiet else nodes.items():
        if not node["up"]:
            minor.append(f"node_down:{node_id}")
            if node.get("down_reason") == "refused":
                refused += 1
            continue
        get = node.get
        if get("state") == STALE_LEADER:
            minor.append(f"stale_leader:{node_id}")
            continue
        peers = get("peers_connected")
        if isolated_below is not None and peers is not None and peers < isolated_below:
            short.append((len(minor), node_id, peers))  # decided below, once the refusals are counted
            continue
        if leader is None or node_id == leader:
            continue
        lag = get("replication_lag")
        if lag is not None and lag > max_replication_lag:
            minor.append(f"follower_lagging:{node_id}")
        if max_contact_ms is not None:
            contact = get("last_contact_ms")
            if contact is not None and contact > max_contact_ms:
                minor.append(f"follower_unreachable:{node_id}")
    if reached < quorum and reached + refused < size:
        # the monitor cannot vouch for a cluster it sees less than a majority of; nodes that
        # refused the poll are seen (their process is gone), so this is about the silent ones
        critical.append(f"monitor_reach:{reached}/{size}")
    if short:
        # cut off: it answers but its transport reaches no majority, and some peer it does not
        # reach may be running (a survivor whose every other peer refused is not cut off: the
        # quorum is lost, and that is said above)
        below = cut_off_below(size, refused)  # the rule has_quorum and quorum_loss count by too
        for place, node_id, peers in reversed(short):
            if peers < below:
                minor.insert(place, f"node_isolated:{node_id}")
    if critical:
        return UNHEALTHY, critical + minor
    if minor:
        return DEGRADED, minor
    return HEALTHY, []

"""What a leader's commit index says over time, per Raft group (pure; the alert engine's).

Two rules read it, from the reports alone:

* **commit_stalled** — a backed leader's commit index has not moved while the client counts
  proposals waiting. Counted from the last sample at which nothing was stuck: the index moved,
  nothing waited, or the group had no leader (that time is leader_election_failure's).
* **committed_entries_lost** — a leader committed an index below the highest the monitor has
  seen committed in this group. Raft's leader completeness makes that impossible for a correct
  cluster: a new leader holds every committed entry, so once it commits anything (its first
  entry of its term) its commit index passes every index committed before. Its commit index may
  start below that (it learns it by committing), so only a *move* that stays below counts. It
  means acknowledged entries vanished from a majority's logs (lost fsynced writes, a restored
  backup). It holds for the rest of that leader's term, and after it until a leader commits
  up to the mark again. A loss small enough for the new leader's
  first move to pass the old mark is not seen: this is evidence, never a proof of safety.
"""

from __future__ import annotations

from typing import Any, Mapping

__all__ = ["CommitWatch", "Lost"]


class Lost(tuple[str, int, int, int]):
    """(leader, term, committed index seen from it, highest index committed before)."""

    __slots__ = ()


class _Group:
    __slots__ = ("seen", "last", "tenure", "fine_at", "lost")

    def __init__(self) -> None:
        self.seen = -1  # the highest commit index seen from any leader
        self.last: int | None = None  # the leader's commit index at the previous sample
        self.tenure: tuple[Any, Any] | None = None  # (leader, term)
        self.fine_at = 0.0
        self.lost: Lost | None = None


class CommitWatch:
    """Feed every sample's leaders (``observe``); read ``stalls`` and ``losses`` after it."""

    quick = True  # take the common case's shortcut (a test compares it with the long way)

    def __init__(self) -> None:
        self._groups: dict[int, _Group] = {}
        self.stalls: dict[int, float] | None = None
        self.losses: dict[int, Lost] | None = None

    def observe(self, sample: Mapping[str, Any], sim_time: float) -> None:
        """``stalls``: {group: seconds stalled}; ``losses``: {group: Lost}; each None for none."""
        shards = sample.get("shards")
        if not shards and self.quick:  # the common case first: one group whose leader's commit moved on
            cluster = sample["cluster"]
            leader = cluster["leader_node"]
            group = self._groups.get(0)
            if leader is not None and group is not None and group.tenure == (leader, cluster.get("current_term")):
                node = sample["nodes"].get(leader)
                commit = node.get("commit_index") if node is not None else None
                if type(commit) is int and commit > group.seen:
                    group.seen = group.last = commit
                    group.fine_at = sim_time
                    self.stalls = None
                    self.losses = None if group.lost is None else {0: group.lost}
                    return
        pending = sample["performance"].get("proposals_pending")
        waiting = type(pending) is int and pending > 0
        if shards:
            # a shard stalls only while orders wait for it: others' pending orders say nothing of it
            # (a shard no symbol maps to is idle, not stalled); the cluster's count if none is given
            rows = [(doc["shard"], doc["leader"], doc.get("term"),
                     doc.get("commit_index") if doc["leader"] is not None else None,
                     waiting if (mine := doc.get("proposals_pending")) is None else type(mine) is int and mine > 0)
                    for doc in shards]
        else:
            cluster = sample["cluster"]
            leader = cluster["leader_node"]
            node = sample["nodes"].get(leader) if leader is not None else None
            rows = [(0, leader, cluster.get("current_term"), node.get("commit_index") if node is not None else None,
                     waiting)]
        stalls: dict[int, float] | None = None
        losses: dict[int, Lost] | None = None
        groups = self._groups
        for shard, leader, term, commit, waiting in rows:
            group = groups.get(shard)
            if group is None:
                group = groups[shard] = _Group()
                group.fine_at = sim_time
            if type(commit) is not int:  # no leader (or no figure): neither rule can say anything
                group.fine_at = sim_time
                group.last = None
                # a loss seen stays with its tenure: a sample in which the monitor saw no leader
                # does not end it, the same leader back in the same term still lacks those entries
                if group.lost is not None:
                    if losses is None:
                        losses = {}
                    losses[shard] = group.lost
                continue
            tenure = (leader, term)
            if tenure != group.tenure:  # a new leader, or a new term: its commit index starts where it is
                group.tenure = tenure
                # a loss seen holds until a leader commits up to the mark again: a new term of the
                # same leader, or another node of the same emptied majority, may lack those entries
                # too (resolved for one sample and firing again in the next, a tester saw)
                if group.lost is not None and commit >= group.lost[3]:
                    group.lost = None
                moved = False
            else:
                moved = group.last is not None and commit > group.last
            if commit > group.seen:
                group.seen = commit
                moved = True
            elif moved and commit < group.seen and group.lost is None:
                group.lost = Lost((str(leader), int(term) if type(term) is int else 0, commit, group.seen))
            group.last = commit
            if moved or not waiting:
                group.fine_at = sim_time
            else:
                if stalls is None:
                    stalls = {}
                stalls[shard] = sim_time - group.fine_at
            if group.lost is not None:
                if losses is None:
                    losses = {}
                losses[shard] = group.lost
        self.stalls, self.losses = stalls, losses

"""Continuous checks of Raft's safety properties (Raft paper, Figure 3) during a simulation.

Attach with ``SafetyChecker(cluster)``. The cluster calls the ``on_*`` hooks as things
happen (with the replica concerned: one node's member of one Raft group) and :meth:`check`
after each stretch of simulated time. Violations are collected (never raised mid-run) so a
campaign can report every failing seed. Every property is checked per Raft group (shard).

Checked:
- Election Safety: at most one leader per term.
- Log Matching: two logs that hold an entry with the same index and term agree on every
  entry up to it (checked on live nodes, over the parts not yet compacted).
- Leader Completeness: a new leader's log holds every entry committed so far.
- State Machine Safety: no two nodes apply different entries at the same index, and nodes
  at the same applied index have equal state digests.
- Exactly once: every order (client id, sequence) takes effect at one log index only, and
  every acknowledged order is in every node's state machine once the cluster converges.
- One vote per term: a replica's durable (term, votedFor) never goes back, and once it voted in a
  term its vote neither changes nor disappears (a restart included).
- Current leaders only: a follower in term T follows the leader of term T and no other node.
- Commit rule (§5.4.2): a leader's commit index, once it moved during its term, points at an
  entry of that term; and no node applies an entry before some leader committed (applied) it.

``raftctl chaos --mutants`` (raftctl/core/mutants.py) shows each of these firing on a planted bug.
"""

from __future__ import annotations

from typing import Any


class SafetyViolation(AssertionError):
    """Raised by :meth:`SafetyChecker.assert_ok` when a property did not hold."""


class _GroupState:
    __slots__ = ("leaders_by_term", "applied", "max_committed", "effective_at", "digest_at", "acked",
                 "votes", "leader_applied", "elected_commit")

    def __init__(self) -> None:
        self.leaders_by_term: dict[int, str] = {}
        # index -> (term, command identity) of the entry applied there (by any node)
        self.applied: dict[int, tuple[int, Any]] = {}
        self.max_committed = 0
        # (client, seq) -> index where it took effect
        self.effective_at: dict[tuple[str, int], int] = {}
        self.digest_at: dict[int, str] = {}
        self.acked: set[tuple[str, int]] = set()
        # node id -> (term, voted_for) last seen in its durable state
        self.votes: dict[str, tuple[int, str | None]] = {}
        # highest index a leader applied (so committed)
        self.leader_applied = 0
        # node id -> (term it leads, its commit index when elected)
        self.elected_commit: dict[str, tuple[int, int]] = {}


class SafetyChecker:
    """Watches one cluster; see the module docstring for the properties."""

    def __init__(self, cluster: Any, check_interval_s: float = 0.25, max_violations: int = 50) -> None:
        self.cluster = cluster
        self.check_interval_ms = check_interval_s * 1000.0
        self.max_violations = max_violations
        self.violations: list[str] = []
        self.groups = [_GroupState() for _ in range(getattr(cluster, "shards", 1))]
        self.checks_run = 0
        self._next_check = 0.0
        # attached to a running cluster: what happened before is taken as given
        for node in getattr(cluster, "nodes", []):
            for rep in getattr(node, "replicas", []):
                raft = rep.raft
                if raft is None:
                    continue
                g = self.groups[rep.group]
                g.leader_applied = max(g.leader_applied, raft.last_applied)
                if raft.state == "LEADER":
                    g.leaders_by_term[raft.term] = rep.node_id
        cluster.checker = self

    # ---- hooks ---------------------------------------------------------------------------

    def _violate(self, text: str) -> None:
        if len(self.violations) < self.max_violations:
            self.violations.append(f"t={self.cluster.now:.3f}s seed={self.cluster.seed}: {text}")

    @staticmethod
    def _where(rep: Any) -> str:
        return f"{rep.node_id}" if rep.group == 0 and len(rep.node.replicas) == 1 else f"{rep.node_id}/shard{rep.group}"

    def on_leader(self, rep: Any, term: int) -> None:
        g = self.groups[rep.group]
        previous = g.leaders_by_term.get(term)
        if previous is not None and previous != rep.node_id:
            self._violate(f"election safety: shard {rep.group}: {previous} and {rep.node_id} both leaders of term {term}")
        g.leaders_by_term[term] = rep.node_id
        g.elected_commit[rep.node_id] = (term, rep.raft.commit_index)
        self._check_votes(rep)
        # Leader completeness: every committed entry still held in logs must be in the leader's.
        raft = rep.raft
        start = max(raft.storage.snap_index + 1, 1)
        for index in range(start, g.max_committed + 1):
            known = g.applied.get(index)
            if known is None:
                continue
            term_here = raft.term_at(index)
            if term_here != known[0]:
                self._violate(
                    f"leader completeness: new leader {self._where(rep)} (term {term}) lacks committed "
                    f"entry {index} (term {known[0]}), has term {term_here}"
                )
                break

    def on_apply(self, rep: Any, index: int, term: int, command: Any, effective: bool) -> None:
        g = self.groups[rep.group]
        identity = None if command is None else (command[0], command[1])
        known = g.applied.get(index)
        if known is None:
            g.applied[index] = (term, identity)
        elif known != (term, identity):
            self._violate(
                f"state machine safety: {self._where(rep)} applied {identity} (term {term}) at index "
                f"{index}, another node applied {known[1]} (term {known[0]})"
            )
        if index > g.max_committed:
            g.max_committed = index
        raft = rep.raft
        if raft.state == "LEADER":
            if index > g.leader_applied:
                g.leader_applied = index
            elected = g.elected_commit.get(rep.node_id)
            commit = raft.commit_index
            if elected is not None and elected[0] == raft.term and commit > elected[1]:
                commit_term = raft.term_at(commit)
                if commit_term is not None and commit_term != raft.term:
                    self._violate(
                        f"commit rule: leader {self._where(rep)} of term {raft.term} moved its commit index "
                        f"to {commit}, an entry of term {commit_term} (counted replicas of an old term)"
                    )
                    g.elected_commit[rep.node_id] = (raft.term, commit)
        elif index > g.leader_applied:
            self._violate(
                f"apply before commit: {self._where(rep)} applied index {index} (term {term}), "
                f"no leader has committed past {g.leader_applied}"
            )
        if effective and identity is not None:
            where = g.effective_at.get(identity)
            if where is None:
                g.effective_at[identity] = index
            elif where != index:
                self._violate(
                    f"exactly once: order {identity[0]}:{identity[1]} took effect at index {where} "
                    f"and again at {index} on {self._where(rep)}"
                )
        if rep.raft.last_applied == index:
            digest = rep.exchange.digest()
            seen = g.digest_at.get(index)
            if seen is None:
                g.digest_at[index] = digest
            elif seen != digest:
                self._violate(
                    f"state machine safety: {self._where(rep)} state digest at applied index {index} "
                    f"differs from another node's"
                )

    def on_snapshot_install(self, rep: Any, snap_index: int) -> None:
        g = self.groups[rep.group]
        seen = g.digest_at.get(snap_index)
        digest = rep.exchange.digest()
        if seen is None:
            g.digest_at[snap_index] = digest
        elif seen != digest:
            self._violate(f"snapshot install on {self._where(rep)} at {snap_index} gave a different state")

    def on_restart(self, rep: Any) -> None:
        g = self.groups[rep.group]
        self._check_votes(rep)
        snap = rep.storage.snap_index
        if snap and snap in g.digest_at and g.digest_at[snap] != rep.exchange.digest():
            self._violate(f"{self._where(rep)} restarted from a snapshot whose state differs at {snap}")

    def on_ack(self, ticket: Any) -> None:
        self.groups[ticket.shard].acked.add((ticket.client_id, ticket.seq))

    # ---- periodic checks -----------------------------------------------------------------

    def _check_votes(self, rep: Any) -> None:
        """One vote per term, read from the replica's durable state."""
        g = self.groups[rep.group]
        st = rep.storage
        now = (st.current_term, st.voted_for)
        seen = g.votes.get(rep.node_id)
        if seen is not None and seen != now:
            if now[0] < seen[0]:
                self._violate(f"one vote per term: {self._where(rep)} went back from term {seen[0]} to {now[0]}")
            elif now[0] == seen[0] and seen[1] is not None:
                what = "forgot its vote" if now[1] is None else f"voted again, for {now[1]}"
                self._violate(
                    f"one vote per term: {self._where(rep)} voted for {seen[1]} in term {now[0]}, then {what}"
                )
        g.votes[rep.node_id] = now

    def _check_replicas(self, cluster: Any) -> None:
        """Cheap checks of every replica's durable vote and the leader it follows."""
        for node in cluster.nodes:
            for rep in node.replicas:
                self._check_votes(rep)
                raft = rep.raft
                if raft is None or raft.state != "FOLLOWER" or raft.leader_id is None:
                    continue
                leader = self.groups[rep.group].leaders_by_term.get(raft.term)
                if leader != raft.leader_id:
                    self._violate(
                        f"current leaders only: {self._where(rep)} follows {raft.leader_id} in term "
                        f"{raft.term}, whose leader is {leader} (accepted a stale leader)"
                    )

    def check(self, cluster: Any) -> None:
        self._check_replicas(cluster)
        if cluster.now_ms < self._next_check:
            return
        self._next_check = cluster.now_ms + self.check_interval_ms
        self.checks_run += 1
        for group, g in enumerate(self.groups):
            self._check_log_matching(cluster, group)
            if len(g.digest_at) > 50_000:
                # Keep memory bounded on long runs: forget the oldest half.
                for index in sorted(g.digest_at)[:25_000]:
                    del g.digest_at[index]

    def _check_log_matching(self, cluster: Any, group: int) -> None:
        live = [n.replicas[group] for n in cluster.nodes if n.up]
        for i, a in enumerate(live):
            for b in live[i + 1:]:
                ra, rb = a.raft, b.raft
                low = max(ra.storage.snap_index, rb.storage.snap_index) + 1
                high = min(ra.last_index, rb.last_index)
                if high < low:
                    continue
                # Find the highest index where the terms agree; everything below must match.
                index = high
                while index >= low and ra.term_at(index) != rb.term_at(index):
                    index -= 1
                if index < low:
                    continue
                la = ra.entries_from(low, index - low + 1)
                lb = rb.entries_from(low, index - low + 1)
                if la != lb:
                    for k, (ea, eb) in enumerate(zip(la, lb)):
                        if ea != eb:
                            self._violate(
                                f"log matching: {self._where(a)} and {self._where(b)} agree at index "
                                f"{index} but differ at {low + k}"
                            )
                            break

    def check_final(self, cluster: Any) -> None:
        """After the cluster converged: every acknowledged order took effect on every node."""
        for group, g in enumerate(self.groups):
            reps = [n.replicas[group] for n in cluster.nodes if n.up]
            digests = {self._where(r): r.exchange.digest() for r in reps}
            if len(set(digests.values())) > 1:
                self._violate(f"final state digests differ: {digests}")
            for rep in reps:
                missing = [key for key in g.acked if not rep.session_has(*key)]
                if missing:
                    self._violate(
                        f"{self._where(rep)} lacks {len(missing)} acknowledged orders, e.g. {missing[:3]}"
                    )

    @property
    def ok(self) -> bool:
        return not self.violations

    def assert_ok(self) -> None:
        if self.violations:
            raise SafetyViolation("\n".join(self.violations))

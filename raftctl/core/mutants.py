"""The checker, checked: planted-bug Raft variants ("mutants") and a campaign against each.

A safety checker that never fires proves nothing by itself. Each mutant here is the real node
code with one method overridden to carry one classic Raft bug; :func:`run_mutant_campaign`
runs a few short seeded fault schedules against a cluster of such nodes with the
:class:`~raftctl.core.safety.SafetyChecker` attached and reports, per mutant, the first seed on
which the checker caught it. The checker is trusted only because it catches every one.

A mutant gets into a simulated cluster the way any Raft implementation would: through
``NodeHost.raft_class`` (Raft bugs) or a host subclass (the exactly-once bug), passed to
``Simulation(node_class=...)``. Nothing in the production code reads a flag for them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable

from raftctl.core.chaos import _inject
from raftctl.core.node import Replica
from raftctl.core.raft import APPEND, LEADER, VOTE_RESP, Message, RaftConfig, RaftNode, Storage
from raftctl.core.safety import SafetyChecker
from raftctl.core.sim.simulation import ExchangeNode, Simulation
from raftctl.core.workload import Workload

__all__ = ["MUTANTS", "Mutant", "MutantResult", "mutant_names", "run_mutant", "run_mutant_campaign"]


# ---- the planted bugs ---------------------------------------------------------------------


class DoubleVoteRaft(RaftNode):
    """Grants every up-to-date candidate of the current term, even after voting for another."""

    def _on_vote(self, msg: Message) -> None:
        st = self.storage
        grant = msg.term == st.current_term and self._log_up_to_date(msg.last_log_index, msg.last_log_term)
        if grant:  # BUG: votedFor is not consulted
            st.voted_for = msg.src
            self._reset_election_timer()
        self.msgs.append(Message(VOTE_RESP, self.id, msg.src, st.current_term, granted=grant))


class CommitOldTermRaft(RaftNode):
    """Commits whatever a majority holds, whatever its term (breaks the §5.4.2 rule)."""

    def _maybe_commit(self) -> None:
        matches = sorted([self.last_index, *self.match_index.values()], reverse=True)
        candidate = matches[self.quorum - 1]
        if candidate > self.commit_index:  # BUG: no check that the entry is of this leader's term
            self.commit_index = candidate


class KeepConflictsRaft(RaftNode):
    """On a conflicting entry, keeps its own instead of truncating its log from there."""

    def _on_append(self, msg: Message) -> None:
        st = self.storage
        if msg.entries and msg.prev_index >= st.snap_index:
            last = self.last_index
            base = st.snap_index + 1
            kept = [
                st.log[index - base] if index <= last and st.log[index - base][0] != entry[0] else entry
                for index, entry in enumerate(msg.entries, msg.prev_index + 1)
            ]  # BUG: a conflict is not a reason to drop our entry
            if kept != msg.entries:
                msg = _copy(msg, entries=kept)
        super()._on_append(msg)


class ApplyBeforeCommitRaft(RaftNode):
    """A follower that applies what it has stored without waiting for the leader's commit index."""

    def _advance_commit(self, leader_commit: int, match: int) -> None:
        if match > self.commit_index:  # BUG: leader_commit ignored
            self.commit_index = match


class ForgetVoteRaft(RaftNode):
    """Comes back from a restart with votedFor forgotten (the vote was never made durable)."""

    def __init__(self, node_id: str, peers: list[str], storage: Storage, rng: random.Random,
                 config: RaftConfig | None = None, now_ms: float = 0.0, group: int = 0) -> None:
        storage.voted_for = None  # BUG: votedFor is persistent state (Figure 2)
        super().__init__(node_id, peers, storage, rng, config, now_ms, group)


class StaleAppendRaft(RaftNode):
    """Takes AppendEntries from a leader of an older term as if it were current."""

    def step(self, msg: Message, now_ms: float) -> None:
        if msg.kind == APPEND and msg.term < self.storage.current_term:
            self.now = now_ms
            self._on_append(msg)  # BUG: should reject and tell the stale leader the newer term
            return
        super().step(msg, now_ms)


class ApplyTwiceNode(ExchangeNode):
    """A host whose exactly-once session check is skipped: a retried order takes effect again."""

    def _apply(self, rep: Replica, raft: RaftNode, first_index: int, entries: list[tuple[int, Any]]) -> None:
        observer = self.observer
        is_leader = raft.state == LEADER
        exchange = rep.exchange
        for index, (term, command) in enumerate(entries, first_index):
            if command is None:
                if observer is not None:
                    observer.on_apply(rep, index, term, None, False)
                continue
            client_id, seq, order, order_id = command
            session = rep.sessions.setdefault(client_id, [0, set()])
            rejected_before = exchange.orders_rejected
            exchange.apply(order, order_id)  # BUG: no "seq already applied?" check first
            if seq > session[0]:
                session[1].add(seq)
                while session[0] + 1 in session[1]:
                    session[0] += 1
                    session[1].discard(session[0])
            if observer is not None:
                observer.on_apply(rep, index, term, command, True)
            if is_leader:
                rep.in_flight.pop(order_id, None)
                if (rep.group, client_id, seq) in self.waiting:
                    self.completions.append((rep.group, client_id, seq, exchange.orders_rejected != rejected_before))
        self._maybe_snapshot(rep, raft)


def _copy(msg: Message, **changes: Any) -> Message:
    out = Message(msg.kind, msg.src, msg.dst, msg.term)
    for name in Message.__slots__:
        setattr(out, name, getattr(msg, name))
    for name, value in changes.items():
        setattr(out, name, value)
    return out


def _raft_host(raft: type[RaftNode]) -> type[ExchangeNode]:
    return type(f"{raft.__name__}Host", (ExchangeNode,), {"raft_class": raft})


# ---- the catalogue -------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutant:
    """One planted bug and the short fault campaign that provokes it."""

    name: str
    description: str
    node_class: type[ExchangeNode]
    faults: tuple[str, ...]
    seeds: tuple[int, ...] = tuple(range(1, 13))
    duration_s: float = 10.0
    rate: float = 50.0
    fault_every_s: float = 0.5
    max_entries_per_append: int = 4096
    latency_ms: tuple[float, float] = (1.0, 5.0)
    # share of acknowledgements the client never hears (its retry then reaches the leader anew)
    ack_loss: float = 0.0


_RAFT_FAULTS = ("crash", "restart", "partition", "loss", "reorder")

MUTANTS: tuple[Mutant, ...] = (
    Mutant("double_vote", "a node votes twice in one term (grants a second candidate)",
           _raft_host(DoubleVoteRaft), ("crash", "restart", "partition"), latency_ms=(5.0, 40.0)),
    Mutant("commit_old_term", "a leader commits an old-term entry by counting replicas (breaks §5.4.2)",
           _raft_host(CommitOldTermRaft), _RAFT_FAULTS, max_entries_per_append=2, rate=100.0),
    Mutant("keep_conflicts", "a follower keeps conflicting entries instead of truncating",
           _raft_host(KeepConflictsRaft), _RAFT_FAULTS),
    Mutant("apply_before_commit", "a node applies entries before they are committed",
           _raft_host(ApplyBeforeCommitRaft), _RAFT_FAULTS),
    Mutant("forget_vote", "a restart forgets votedFor",
           _raft_host(ForgetVoteRaft), ("crash", "restart")),
    Mutant("stale_append", "a node accepts AppendEntries from a stale term",
           _raft_host(StaleAppendRaft), ("slow", "slow", "reorder", "crash", "restart"), latency_ms=(5.0, 40.0)),
    Mutant("apply_twice", "a host applies an order twice after a retry (session check skipped)",
           ApplyTwiceNode, ("crash", "restart", "partition", "loss"), ack_loss=0.2),
)


def mutant_names() -> list[str]:
    return [m.name for m in MUTANTS]


# ---- the campaign --------------------------------------------------------------------------


@dataclass(frozen=True)
class MutantResult:
    name: str
    caught: bool
    seed: int | None
    violation: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "caught": self.caught, "seed": self.seed, "violation": self.violation}


STEP_S = 0.005  # the checker's vote/leader scan runs after every step of this many simulated seconds


def run_mutant(mutant: Mutant, seed: int, node_class: type[ExchangeNode] | None = None) -> list[str]:
    """One seeded fault schedule against ``mutant`` (or ``node_class``); the checker's violations.

    An exception from the node code (its own defensive assertions) ends the run and is returned
    after whatever the checker reported before it.
    """
    from raftctl.core.sim.network import NetworkConfig

    config = RaftConfig(max_entries_per_append=mutant.max_entries_per_append)
    network = NetworkConfig(latency_min_ms=mutant.latency_ms[0], latency_max_ms=mutant.latency_ms[1])
    cluster = Simulation(node_count=5, seed=seed, raft_config=config, network=network,
                         snapshot_threshold=200, node_class=node_class or mutant.node_class)
    checker = SafetyChecker(cluster, check_interval_s=0.05)
    Workload(cluster, rate=mutant.rate, seed=seed ^ 0x5EED)
    if mutant.ack_loss:
        _lose_acks(cluster, mutant.ack_loss, random.Random(seed * 7919 + 3))
    rng = random.Random(seed * 1_000_003 + 17)
    counts: dict[str, int] = {}
    try:
        t = 0.3
        while t < mutant.duration_s and not checker.violations:
            _advance(cluster, t - cluster.now)
            _inject(cluster, rng, rng.choice(mutant.faults), counts, {})
            t += rng.uniform(0.3, 2.0) * mutant.fault_every_s
        if not checker.violations:
            cluster.heal()
            cluster.set_network(loss=0.0, duplicate=0.0, reorder=0.0)
            for node in cluster.nodes:
                if not node.up:
                    cluster.restart(node.node_id)
            workload = cluster.workload
            if workload is not None:
                workload.paused = True
            cluster.run_until(lambda: cluster.converged() and not cluster.outstanding, timeout=5.0,
                              step=STEP_S)
            checker.check_final(cluster)
    except Exception as err:  # noqa: BLE001 - the node code's own assertion is a finding too
        return [*checker.violations, f"t={cluster.now:.3f}s seed={seed}: node code raised "
                                     f"{type(err).__name__}: {err}"]
    return list(checker.violations)


def _lose_acks(cluster: Simulation, share: float, rng: random.Random) -> None:
    """A fault on the way back to the client: some answers are lost, so the client retries."""
    gateway = cluster.gateway
    deliver = gateway.ack

    def ack(shard: int, client_id: str, seq: int, rejected: bool) -> None:
        if rng.random() >= share:
            deliver(shard, client_id, seq, rejected)

    gateway.ack = ack  # type: ignore[method-assign]


def _advance(cluster: Simulation, seconds: float) -> None:
    if seconds > 0:
        checker = cluster.checker
        cluster.run_until(lambda: bool(checker.violations), timeout=seconds, step=STEP_S)


def run_mutant_campaign(names: list[str] | None = None,
                        run: Callable[[Mutant, int], list[str]] = run_mutant) -> list[MutantResult]:
    """Per mutant: its seeds in order until the checker reports a violation. Deterministic."""
    chosen = [m for m in MUTANTS if names is None or m.name in names]
    results = []
    for mutant in chosen:
        result = MutantResult(mutant.name, False, None, None)
        for seed in mutant.seeds:
            violations = run(mutant, seed)
            if violations:
                result = MutantResult(mutant.name, True, seed, violations[0])
                break
        results.append(result)
    return results

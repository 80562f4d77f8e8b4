"""The node host: one exchange node, whatever carries its messages.

A :class:`NodeHost` is Raft (one group per shard) + a matching engine per shard + client
sessions (exactly-once by ``(client_id, seq)``) + snapshots, over a :class:`LogStore`. It knows
nothing of the simulator or of sockets: the owner passes in the time, Raft messages and client
proposals, and reads back what to send (``outgoing``: destination -> messages), which requests
are done (``completions``) and when to call :meth:`NodeHost.tick` next (:meth:`next_deadline`).

The simulator (``raftctl/core/sim``) hosts N of them on one simulated network; a node process
hosts one behind a TCP transport and a write-ahead log. Each Raft Ready is handled in the order
``raftctl/core/raft.py`` states: persist (``store.persist``), then queue its messages, then apply.
"""

from __future__ import annotations

import random
from typing import Any, Container, Mapping, Protocol

from raftctl.core.exchange import Exchange
from raftctl.core.raft import LEADER, Message, RaftConfig, RaftNode, Ready, Storage

__all__ = ["Completion", "LogStore", "MemoryLogStore", "NodeHost", "NodeObserver", "Replica", "log_terms"]

# (shard, client_id, seq, rejected): a proposal this node, as leader, applied.
Completion = tuple[int, str, int, bool]

LOG_TERMS_TAIL = 256  # ``log_terms`` describes at most this many of the newest entries
LOG_TERMS_RUNS = 32   # and at most this many term runs (the newest)


def log_terms(storage: Storage, tail: int = LOG_TERMS_TAIL) -> list[list[int]]:
    """The terms of the newest ``tail`` entries held, as runs ``[[first index, term], ...]``
    (oldest first; each run lasts until the next one starts, the last until the last index).
    A Raft log's terms never decrease, so one comparison settles the usual case: one term."""
    log = storage.log
    held = len(log)
    if held == 0:
        return []
    start = max(0, held - tail)
    base = storage.snap_index + 1  # the index of log[0]
    first_term = log[start][0]
    if first_term == log[-1][0]:
        return [[base + start, first_term]]
    runs: list[list[int]] = []
    previous = None
    for offset in range(start, held):
        term = log[offset][0]
        if term != previous:
            runs.append([base + offset, term])
            previous = term
    return runs[-LOG_TERMS_RUNS:]


class LogStore(Protocol):
    """Where a node's Raft state becomes durable."""

    def persist(self, shard: int, ready: Ready) -> None:
        """Make ``ready``'s hard state, entries and received snapshot durable (fsync included)."""

    def save_snapshot(self, shard: int, index: int, term: int, data: Any) -> None:
        """Durably replace the log up to ``index`` with ``data`` (the node compacted its log)."""


class MemoryLogStore:
    """The simulator's store: each replica's :class:`Storage` object *is* its disk.

    A crash keeps the Storage objects and drops everything else, so nothing needs copying.
    """

    def persist(self, shard: int, ready: Ready) -> None:
        return None

    def save_snapshot(self, shard: int, index: int, term: int, data: Any) -> None:
        return None


class NodeObserver(Protocol):
    """Hooks for a checker that watches every node (the safety checker implements them)."""

    def on_leader(self, rep: "Replica", term: int) -> None: ...

    def on_apply(self, rep: "Replica", index: int, term: int, command: Any, effective: bool) -> None: ...

    def on_snapshot_install(self, rep: "Replica", snap_index: int) -> None: ...

    def on_restart(self, rep: "Replica") -> None: ...


class Replica:
    """One node's member of one Raft group: durable storage, Raft state, exchange state machine."""

    def __init__(self, node: "NodeHost", group: int) -> None:
        self.node = node
        self.node_id = node.node_id
        self.group = group
        self.storage = Storage()
        self.raft: RaftNode | None = None
        self.exchange = Exchange()
        # client id -> [highest seq below which all are applied, set of applied seqs above it]
        self.sessions: dict[str, list[Any]] = {}
        self.led_term = 0
        self.flush_pending = False
        self.pending_snapshot_data: Any = None
        self.pending_snapshot_index = 0
        self.snapshots_taken = 0
        self.snapshots_installed = 0
        self.duplicates_skipped = 0
        self.proposals_deduplicated = 0
        # as leader: order id ("client:seq") -> log index of entries in the log, not yet applied
        self.in_flight: dict[str, int] = {}

    def session_has(self, client_id: str, seq: int) -> bool:
        sess = self.sessions.get(client_id)
        return sess is not None and (seq <= sess[0] or seq in sess[1])

    def snapshot_state(self) -> tuple[Any, ...]:
        sessions = tuple(
            (cid, sess[0], tuple(sorted(sess[1]))) for cid, sess in sorted(self.sessions.items())
        )
        return (self.exchange.snapshot(), sessions)

    def load_state(self, data: tuple[Any, ...] | None) -> None:
        if data is None:
            self.exchange = Exchange()
            self.sessions = {}
            return
        exchange_bytes, sessions = data
        self.exchange = Exchange.restore(exchange_bytes)
        self.sessions = {cid: [low, set(above)] for cid, low, above in sessions}

    def wipe_volatile(self) -> None:
        self.raft = None
        self.exchange = Exchange()
        self.sessions = {}
        self.flush_pending = False
        self.pending_snapshot_data = None
        self.pending_snapshot_index = 0
        self.led_term = 0
        self.in_flight = {}

    @property
    def live_raft(self) -> RaftNode:
        """The Raft node of a replica that is up (a programming error otherwise)."""
        raft = self.raft
        if raft is None:
            raise RuntimeError(f"{self.node_id}/shard{self.group} is down")
        return raft

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<Replica {self.node_id}/shard{self.group}>"


class NodeHost:
    """One exchange node hosting one replica of every shard's Raft group.

    ``waiting`` holds the ``(shard, client_id, seq)`` keys whose application by this node as
    leader completes a client request (the simulator passes its clients' outstanding orders, a
    node process its pending HTTP requests); each such application appends a
    :data:`Completion` to ``completions``. ``elected`` collects the replicas that became leader
    of a new term. The owner drains ``outgoing``, ``completions`` and ``elected``.
    """

    def __init__(self, node_id: str, member_ids: list[str], *, shards: int = 1,
                 config: RaftConfig | None = None, snapshot_threshold: int = 2000,
                 store: LogStore | None = None, waiting: Container[tuple[int, str, int]] | None = None,
                 index: int = 0) -> None:
        if snapshot_threshold < 4:
            raise ValueError("snapshot_threshold must be >= 4")
        self.node_id = node_id
        self.index = index
        self.member_ids = list(member_ids)
        self.config = config or RaftConfig()
        self.snapshot_threshold = snapshot_threshold
        self.store: LogStore = store or MemoryLogStore()
        # the simulator's memory store has nothing to write: skip the call on the hot path
        self._persist = None if isinstance(self.store, MemoryLogStore) else self.store.persist
        self.waiting: Container[tuple[int, str, int]] = waiting if waiting is not None else frozenset()
        self.observer: NodeObserver | None = None
        self.replicas = [Replica(self, g) for g in range(shards)]
        self.up = False
        self.boots = 0
        self.outgoing: dict[str, list[Message]] = {}
        self.completions: list[Completion] = []
        self.elected: list[Replica] = []
        # entries the host may still apply before its loop next resets it (None: no limit); a
        # process node bounds each turn so a leader that committed thousands at once still ticks
        self.apply_budget: int | None = None

    #: the Raft implementation each replica runs (the checker's planted-bug variants replace it)
    raft_class: type[RaftNode] = RaftNode

    # ---- life cycle ------------------------------------------------------------------------

    def boot(self, now_ms: float, rng: random.Random) -> None:
        """Start (or restart) from durable state: snapshots reloaded, Raft rebuilt."""
        self.up = True
        self.boots += 1
        for rep in self.replicas:
            rep.led_term = 0
            rep.load_state(rep.storage.snap_data)
            rep.raft = self.raft_class(self.node_id, self.member_ids, rep.storage,
                                random.Random(rng.getrandbits(64)), self.config, now_ms,
                                group=rep.group)
            self.process(rep)

    def restore_commit(self, commits: Mapping[int, int]) -> int:
        """After :meth:`boot`, the commit index each group's durable hard state recorded
        (``{group: index}``; clamped to its log): the node then knows what it holds committed,
        applies it, and refuses a leader that would overwrite it (etcd restores ``HardState.Commit``
        likewise; without it a restarted follower would let such a leader replace committed
        entries). Returns the entries applied."""
        applied = 0
        for rep in self.replicas:
            raft = rep.raft
            known = min(int(commits.get(rep.group, 0)), rep.storage.last_index)
            if raft is not None and known > raft.commit_index:
                raft.commit_index = known
                applied += self.process(rep)
        return applied

    def crash(self) -> None:
        """Lose everything volatile; each replica's durable Storage survives."""
        self.up = False
        self.outgoing = {}
        for rep in self.replicas:
            rep.wipe_volatile()

    # ---- inputs ------------------------------------------------------------------------------

    def tick(self, now_ms: float) -> int:
        """Fire due timers of every replica; returns entries applied."""
        applied = 0
        for rep in self.replicas:
            rep.live_raft.tick(now_ms)
            applied += self.process(rep)
        return applied

    def apply_pending(self) -> int:
        """Apply what :attr:`apply_budget` held back earlier (as far as it now allows)."""
        applied = 0
        for rep in self.replicas:
            raft = rep.raft
            if raft is not None and raft.commit_index > raft.last_applied:
                applied += self.process(rep)
        return applied

    def unapplied(self) -> bool:
        """Whether a replica holds committed entries not yet applied."""
        return any(rep.raft is not None and rep.raft.commit_index > rep.raft.last_applied for rep in self.replicas)

    def step(self, msg: Message, now_ms: float) -> int:
        """Handle one Raft message; returns entries applied."""
        rep = self.replicas[msg.group]
        raft = rep.raft
        if raft is None:
            raise RuntimeError(f"{self.node_id} is down")
        raft.step(msg, now_ms)
        return self.process(rep)

    def propose(self, shard: int, entry: tuple[str, int, Any, str]) -> int | None:
        """Append a client entry ``(client_id, seq, command, order_id)`` as leader.

        Returns its log index (or that of the same ``(client_id, seq)`` already in the log and not
        yet applied: a retry never appends a second entry), or None when not the leader. Nothing
        is sent until :meth:`flush`.
        """
        rep = self.replicas[shard]
        raft = rep.raft
        if raft is None:
            return None
        key = entry[3]  # the order id, "client_id:seq": one string per (client_id, seq)
        in_flight = rep.in_flight
        if key in in_flight and raft.state == LEADER:
            rep.proposals_deduplicated += 1
            return in_flight[key]
        index = raft.propose(entry)
        if index is not None:
            in_flight[key] = index
        return index

    def flush(self, shard: int) -> None:
        """Send new entries of ``shard``'s group to the followers."""
        rep = self.replicas[shard]
        rep.flush_pending = False
        if rep.raft is not None:
            rep.raft.flush()
            self.process(rep)

    def transfer_leadership(self, shard: int, target: str) -> bool:
        rep = self.replicas[shard]
        if rep.raft is None or not rep.raft.transfer_leadership(target):
            return False
        self.process(rep)
        return True

    def next_deadline(self) -> float:
        """The time (ms) at which :meth:`tick` next has work."""
        deadline = float("inf")
        for rep in self.replicas:
            raft = rep.raft
            if raft is not None:
                d = raft.next_deadline()
                if d < deadline:
                    deadline = d
        return deadline

    def take_outgoing(self) -> dict[str, list[Message]]:
        out = self.outgoing
        self.outgoing = {}
        return out

    # ---- one Ready ---------------------------------------------------------------------------

    def process(self, rep: Replica) -> int:
        """Carry out one replica's Ready (persist, queue messages, apply); returns entries applied."""
        raft = rep.raft
        assert raft is not None, "process() on a replica that is down"
        rd = raft.ready()
        applied = 0
        if rd is not None:
            persist = self._persist
            if persist is not None and rd.must_persist:
                persist(rep.group, rd)
            budget = self.apply_budget
            if budget is not None and rd.committed:
                if len(rd.committed) > budget:  # the rest stays committed, applied by a later turn
                    rd.committed = rd.committed[:budget]
                self.apply_budget = budget - len(rd.committed)
            if rd.messages:
                outgoing = self.outgoing
                for msg in rd.messages:
                    queue = outgoing.get(msg.dst)
                    if queue is None:
                        outgoing[msg.dst] = [msg]
                    else:
                        queue.append(msg)
            raft.advance(rd)
            if rd.snapshot is not None:
                rep.load_state(rd.snapshot.data)
                rep.snapshots_installed += 1
                if self.observer is not None:
                    self.observer.on_snapshot_install(rep, rd.snapshot.index)
            if rd.committed:
                applied = len(rd.committed)
                self._apply(rep, raft, rd.committed_from, rd.committed)
        if raft.state == LEADER:
            term = raft.storage.current_term
            if rep.led_term != term:
                rep.led_term = term
                # entries of earlier terms not yet applied are in flight too
                first = raft.last_applied + 1
                rep.in_flight = {
                    cmd[3]: index
                    for index, (_, cmd) in enumerate(
                        raft.entries_from(first, raft.last_index - raft.last_applied), first)
                    if cmd is not None
                }
                self.elected.append(rep)
                if self.observer is not None:
                    self.observer.on_leader(rep, raft.term)
        elif rep.in_flight:
            rep.in_flight = {}
        return applied

    def _apply(self, rep: Replica, raft: RaftNode, first_index: int, entries: list[tuple[int, Any]]) -> None:
        exchange = rep.exchange
        apply = exchange.apply
        sessions = rep.sessions
        is_leader = raft.state == LEADER
        in_flight = rep.in_flight
        observer = self.observer
        waiting = self.waiting
        completions = self.completions
        group = rep.group
        index = first_index - 1
        for term, command in entries:
            index += 1
            if command is None:
                if observer is not None:
                    observer.on_apply(rep, index, term, None, False)
                continue
            client_id, seq, order, order_id = command
            sess = sessions.get(client_id)
            if sess is None:
                sess = sessions[client_id] = [0, set()]
            low = sess[0]
            rejected_before = exchange.orders_rejected
            if seq == low + 1:
                # The common case: the next order of this client, in sequence.
                above = sess[1]
                if above:
                    top = seq
                    while top + 1 in above:
                        top += 1
                        above.discard(top)
                    sess[0] = top
                else:
                    sess[0] = seq
                effective = True
                apply(order, order_id)
            elif seq <= low or seq in sess[1]:
                effective = False
                rep.duplicates_skipped += 1
            else:
                effective = True
                sess[1].add(seq)
                apply(order, order_id)
            if observer is not None:
                observer.on_apply(rep, index, term, command, effective)
            if is_leader:
                in_flight.pop(order_id, None)
                if (group, client_id, seq) in waiting:
                    completions.append((group, client_id, seq, exchange.orders_rejected != rejected_before))
        self._maybe_snapshot(rep, raft)

    def _maybe_snapshot(self, rep: Replica, raft: RaftNode) -> None:
        storage = raft.storage
        held = len(storage.log)
        half = self.snapshot_threshold // 2
        # Remember the state about half a threshold ago; compact there once the log is full,
        # so followers a little behind still catch up from the log rather than a snapshot.
        if rep.pending_snapshot_index <= storage.snap_index and held > half:
            rep.pending_snapshot_index = raft.last_applied
            rep.pending_snapshot_data = rep.snapshot_state()
        if held > self.snapshot_threshold and rep.pending_snapshot_index > storage.snap_index:
            index = rep.pending_snapshot_index
            data = rep.pending_snapshot_data
            raft.compact(index, data)
            self.store.save_snapshot(rep.group, index, storage.snap_term, data)
            rep.snapshots_taken += 1
            rep.pending_snapshot_data = None

    # ---- the node's own view -----------------------------------------------------------------

    def replica_report(self, rep: Replica, now_ms: float) -> dict[str, Any]:
        """What this node says about one of its replicas (the keys of ``Cluster.status``)."""
        raft = rep.raft
        storage = rep.storage
        if raft is None:
            return {
                "shard": rep.group, "state": "DOWN", "term": storage.current_term, "leader_id": None,
                "commit_index": 0, "last_applied": 0, "log_length": len(storage.log),
                "last_log_index": storage.last_index, "snapshot_index": storage.snap_index,
                "state_digest": None, "orders_applied": 0, "trades_executed": 0,
                "match_index": {}, "last_contact_ms": {}, "log_terms": log_terms(storage),
            }
        is_leader = raft.state == LEADER
        exchange = rep.exchange
        return {
            "shard": rep.group,
            "state": raft.reported_state,
            "term": storage.current_term,
            "leader_id": raft.leader_id,
            "commit_index": raft.commit_index,
            "last_applied": raft.last_applied,
            "log_length": len(storage.log),
            "last_log_index": storage.last_index,
            "snapshot_index": storage.snap_index,
            "state_digest": exchange.digest(),
            "orders_applied": exchange.orders_accepted,
            "trades_executed": exchange.trades_executed,
            "match_index": dict(raft.match_index) if is_leader else {},
            "last_contact_ms": (
                {p: round(now_ms - t, 3) for p, t in raft.last_contact.items()} if is_leader else {}
            ),
            "log_terms": log_terms(storage),
        }

    def report(self, now_ms: float, peers_connected: int) -> dict[str, Any]:
        """This node's own status report (docs/CONTRACTS.md, ``status(id)``)."""
        first = self.replica_report(self.replicas[0], now_ms)
        out: dict[str, Any] = {"node_id": self.node_id, "up": self.up, "peers_connected": peers_connected}
        out.update(first)
        del out["shard"]
        if len(self.replicas) > 1:
            shards = [first] + [self.replica_report(r, now_ms) for r in self.replicas[1:]]
            out["shards"] = shards
            out["leader_of"] = [s["shard"] for s in shards if s["state"] == "LEADER"]
            out["orders_applied"] = sum(s["orders_applied"] for s in shards)
            out["trades_executed"] = sum(s["trades_executed"] for s in shards)
        return out

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<NodeHost {self.node_id} up={self.up}>"

"""The cluster simulator: N exchange nodes running Raft over a simulated network.

One thread, one simulated clock (milliseconds internally, seconds in the public API), one
event queue, one ``random.Random`` seeded by the caller: the same seed replays the same run,
faults included. ``start()`` paces the simulation against the wall clock on a daemon thread
for live demos; everything else runs as fast as the CPU allows.
"""

from __future__ import annotations

import heapq
import random
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from raftctl.core.exchange import Exchange, validate_order
from raftctl.core.raft import (
    APPEND,
    LEADER,
    Message,
    RaftConfig,
    RaftNode,
    Storage,
)

# Event kinds in the queue.
_DELIVER = 0
_TIMER = 1
_FLUSH = 2
_CALL = 3

_MASK64 = (1 << 64) - 1


@dataclass
class NetworkConfig:
    """Simulated network behaviour. Probabilities are per message."""

    latency_min_ms: float = 1.0
    latency_max_ms: float = 5.0
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_max_ms: float = 30.0

    def validate(self) -> None:
        if not 0 <= self.latency_min_ms <= self.latency_max_ms:
            raise ValueError("network latency must satisfy 0 <= latency_min_ms <= latency_max_ms")
        for name in ("loss", "duplicate", "reorder"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(f"network {name} must be a probability in [0, 1), got {value!r}")
        if self.reorder_max_ms < 0:
            raise ValueError("reorder_max_ms must be >= 0")


class OrderTicket:
    """A client's handle on one submitted order: when it was sent, committed and acknowledged."""

    __slots__ = ("client_id", "seq", "command", "submitted_at", "committed_at", "latency_ms",
                 "acked", "attempts", "last_sent")

    def __init__(self, client_id: str, seq: int, command: dict, submitted_at: float) -> None:
        self.client_id = client_id
        self.seq = seq
        self.command = command
        self.submitted_at = submitted_at  # simulated seconds
        self.committed_at: float | None = None
        self.latency_ms: float | None = None
        self.acked = False
        self.attempts = 0
        self.last_sent = -1e18

    @property
    def order_id(self) -> str:
        return f"{self.client_id}:{self.seq}"

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<OrderTicket {self.order_id} acked={self.acked} latency_ms={self.latency_ms}>"


class ExchangeNode:
    """One cluster member: a Raft node, its durable storage and its exchange state machine."""

    def __init__(self, cluster: "Cluster", node_id: str, index: int) -> None:
        self.cluster = cluster
        self.node_id = node_id
        self.index = index
        self.storage = Storage()
        self.raft: RaftNode | None = None
        self.exchange = Exchange()
        # client id -> [highest seq below which all are applied, set of applied seqs above it]
        self.sessions: dict[str, list] = {}
        self.up = True
        self.timer_at = float("inf")
        self.flush_pending = False
        self.led_term = 0
        self.pending_snapshot_data: Any = None
        self.pending_snapshot_index = 0
        self.snapshots_taken = 0
        self.snapshots_installed = 0
        self.duplicates_skipped = 0

    @property
    def id(self) -> str:
        return self.node_id

    def status(self) -> dict:
        return self.cluster.status(self.node_id)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<ExchangeNode {self.node_id} up={self.up}>"

    # ---- state machine ------------------------------------------------------------------

    def session_has(self, client_id: str, seq: int) -> bool:
        sess = self.sessions.get(client_id)
        return sess is not None and (seq <= sess[0] or seq in sess[1])

    def snapshot_state(self) -> tuple:
        sessions = tuple(
            (cid, sess[0], tuple(sorted(sess[1]))) for cid, sess in sorted(self.sessions.items())
        )
        return (self.exchange.snapshot(), sessions)

    def load_state(self, data: tuple | None) -> None:
        if data is None:
            self.exchange = Exchange()
            self.sessions = {}
            return
        exchange_bytes, sessions = data
        self.exchange = Exchange.restore(exchange_bytes)
        self.sessions = {cid: [low, set(above)] for cid, low, above in sessions}


class Cluster:
    """A simulated Raft cluster of exchange nodes named ``node1`` … ``nodeN``."""

    def __init__(
        self,
        node_count: int = 5,
        seed: int = 0,
        *,
        prevote: bool = True,
        check_quorum: bool = True,
        raft_config: RaftConfig | None = None,
        network: NetworkConfig | None = None,
        snapshot_threshold: int = 2000,
        retry_after_s: float = 0.5,
        latency_window: int = 100_000,
    ) -> None:
        if isinstance(node_count, bool) or not isinstance(node_count, int) or node_count < 1:
            raise ValueError(f"node_count must be a positive integer, got {node_count!r}")
        if node_count > 1000:
            raise ValueError("node_count above 1000 is not supported")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        if snapshot_threshold < 4:
            raise ValueError("snapshot_threshold must be >= 4")
        if retry_after_s <= 0:
            raise ValueError("retry_after_s must be positive")
        self.seed = seed
        self.rng = random.Random(seed)
        self.config = raft_config or RaftConfig(prevote=prevote, check_quorum=check_quorum)
        self.network = network or NetworkConfig()
        self.network.validate()
        self.snapshot_threshold = snapshot_threshold
        self.retry_after_ms = retry_after_s * 1000.0
        self.node_ids = [f"node{i}" for i in range(1, node_count + 1)]
        self.nodes = [ExchangeNode(self, nid, i) for i, nid in enumerate(self.node_ids)]
        self._by_id = {n.node_id: n for n in self.nodes}
        self.now_ms = 0.0
        self._queue: list = []
        self._seq = 0
        self.lock = threading.RLock()
        self.trace_hash = 0
        self.events_processed = 0
        # partition group per node; None = fully connected
        self._groups: dict[str, int] | None = None
        self._slow: dict[str, float] = {}
        # clients
        self._client_seq: dict[str, int] = {}
        self.outstanding: dict[tuple[str, int], OrderTicket] = {}
        self._pending: deque[OrderTicket] = deque()
        self._latencies: deque[tuple[float, float]] = deque(maxlen=latency_window)
        self.counters = {
            "orders_submitted": 0,
            "orders_acknowledged": 0,
            "orders_rejected": 0,
            "orders_retried": 0,
            "elections_won": 0,
            "messages_sent": 0,
            "messages_dropped": 0,
            "messages_duplicated": 0,
            "faults_injected": 0,
        }
        self.leadership_log: list[tuple[float, str, int]] = []  # (sim s, node, term)
        self.fault_log: list[tuple[float, str, tuple]] = []
        self.checker: Any = None
        self.workload: Any = None
        self._observers: list[Callable[[str, dict], None]] = []
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._speed = 1.0
        for node in self.nodes:
            self._boot(node)
        self.every(0.05, self._retry_clients)

    # ---- basic properties ---------------------------------------------------------------

    @property
    def now(self) -> float:
        """Simulated seconds since the cluster was created."""
        return self.now_ms / 1000.0

    @property
    def node_count(self) -> int:
        return len(self.nodes)

    @property
    def quorum(self) -> int:
        return len(self.nodes) // 2 + 1

    def node(self, node_id: str) -> ExchangeNode:
        try:
            return self._by_id[node_id]
        except (KeyError, TypeError):
            raise ValueError(
                f"unknown node id {node_id!r}; known: {', '.join(self.node_ids)}"
            ) from None

    @property
    def leader_id(self) -> str | None:
        """The live leader of the highest term, or None."""
        return self._leader_node().node_id if self._leader_node() else None

    def _leader_node(self) -> ExchangeNode | None:
        best = None
        for node in self.nodes:
            raft = node.raft
            if raft is not None and raft.state == LEADER:
                if best is None or raft.term > best.raft.term:
                    best = node
        return best

    def add_observer(self, fn: Callable[[str, dict], None]) -> None:
        """Register ``fn(event, details)`` for fault and leadership events."""
        self._observers.append(fn)

    def _notify(self, event: str, **details: Any) -> None:
        for fn in self._observers:
            fn(event, details)

    # ---- event queue ---------------------------------------------------------------------

    def _push(self, at_ms: float, kind: int, payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (at_ms, self._seq, kind, payload))

    def every(self, interval_s: float, fn: Callable[["Cluster"], Any], start_s: float | None = None) -> None:
        """Call ``fn(cluster)`` every ``interval_s`` simulated seconds."""
        if interval_s <= 0:
            raise ValueError("interval must be positive")
        interval_ms = interval_s * 1000.0
        first = self.now_ms + interval_ms if start_s is None else start_s * 1000.0

        def repeat() -> None:
            fn(self)
            self._push(self.now_ms + interval_ms, _CALL, repeat)

        self._push(first, _CALL, repeat)

    def at(self, when_s: float, fn: Callable[["Cluster"], Any]) -> None:
        """Call ``fn(cluster)`` once at simulated time ``when_s``."""
        self._push(max(when_s * 1000.0, self.now_ms), _CALL, lambda: fn(self))

    def run_for(self, seconds: float) -> None:
        """Advance the simulation by ``seconds`` of simulated time."""
        if seconds < 0:
            raise ValueError("cannot run for a negative duration")
        with self.lock:
            self._run_to(self.now_ms + seconds * 1000.0)

    def run_until(self, predicate: Callable[[], bool], timeout: float = 10.0, step: float = 0.01) -> bool:
        """Advance in ``step`` increments until ``predicate()`` holds or ``timeout`` simulated s pass."""
        deadline = self.now_ms + timeout * 1000.0
        with self.lock:
            while not predicate():
                if self.now_ms >= deadline:
                    return False
                self._run_to(min(self.now_ms + step * 1000.0, deadline))
            return True

    def _run_to(self, target_ms: float) -> None:
        queue = self._queue
        pop = heapq.heappop
        while queue and queue[0][0] <= target_ms:
            at_ms, _, kind, payload = pop(queue)
            self.now_ms = at_ms
            self.events_processed += 1
            if kind == _DELIVER:
                self._deliver(payload)
            elif kind == _TIMER:
                node, epoch = payload
                if node.raft is not None and epoch is node.raft and at_ms == node.timer_at:
                    node.timer_at = float("inf")
                    node.raft.tick(at_ms)
                    self._after(node)
            elif kind == _FLUSH:
                payload.flush_pending = False
                if payload.raft is not None:
                    payload.raft.flush()
                    self._after(payload)
            else:
                payload()
        self.now_ms = max(self.now_ms, target_ms)
        if self.checker is not None:
            self.checker.check(self)

    # ---- network ------------------------------------------------------------------------

    def _connected(self, a: str, b: str) -> bool:
        groups = self._groups
        return groups is None or groups.get(a) == groups.get(b)

    def _send(self, msg: Message) -> None:
        net = self.network
        rng = self.rng
        self.counters["messages_sent"] += 1
        if not self._connected(msg.src, msg.dst) or (net.loss and rng.random() < net.loss):
            self.counters["messages_dropped"] += 1
            return
        copies = 2 if net.duplicate and rng.random() < net.duplicate else 1
        if copies == 2:
            self.counters["messages_duplicated"] += 1
        factor = max(self._slow.get(msg.src, 1.0), self._slow.get(msg.dst, 1.0)) if self._slow else 1.0
        for _ in range(copies):
            delay = rng.uniform(net.latency_min_ms, net.latency_max_ms) * factor
            if net.reorder and rng.random() < net.reorder:
                delay += rng.uniform(0.0, net.reorder_max_ms)
            self._push(self.now_ms + delay, _DELIVER, msg)

    def _deliver(self, msg: Message) -> None:
        node = self._by_id[msg.dst]
        raft = node.raft
        if raft is None or not self._connected(msg.src, msg.dst):
            self.counters["messages_dropped"] += 1
            return
        # Only ints go into the trace hash: str hashes are salted per process (PYTHONHASHSEED).
        self.trace_hash = hash((self.trace_hash, int(self.now_ms * 1000), msg.kind,
                                self._by_id[msg.src].index, node.index, msg.term, msg.prev_index,
                                len(msg.entries), msg.match_index, msg.granted)) & _MASK64
        raft.step(msg, self.now_ms)
        self._after(node)

    # ---- after a node did something ------------------------------------------------------

    def _after(self, node: ExchangeNode) -> None:
        raft = node.raft
        if raft.outbox:
            for msg in raft.take_outbox():
                self._send(msg)
        if raft.pending_snapshot is not None:
            data = raft.pending_snapshot
            raft.pending_snapshot = None
            node.load_state(data)
            node.snapshots_installed += 1
            if self.checker is not None:
                self.checker.on_snapshot_install(node, raft.storage.snap_index)
        if raft.commit_index > raft.last_applied:
            self._apply(node, *raft.take_committed_slice())
        if raft.state == LEADER and node.led_term != raft.term:
            node.led_term = raft.term
            self.counters["elections_won"] += 1
            self.leadership_log.append((self.now, node.node_id, raft.term))
            self._notify("leader_elected", node_id=node.node_id, term=raft.term)
            if self.checker is not None:
                self.checker.on_leader(node, raft.term)
            if self._pending:
                self._dispatch_pending()
        deadline = raft.next_deadline()
        if deadline < node.timer_at:
            node.timer_at = max(deadline, self.now_ms)
            self._push(node.timer_at, _TIMER, (node, raft))

    def _apply(self, node: ExchangeNode, first_index: int, entries: list) -> None:
        apply = node.exchange.apply
        sessions = node.sessions
        is_leader = node.raft.state == LEADER
        checker = self.checker
        outstanding = self.outstanding
        index = first_index - 1
        for term, command in entries:
            index += 1
            if command is None:
                if checker is not None:
                    checker.on_apply(node, index, term, None, False)
                continue
            client_id, seq, order = command
            sess = sessions.get(client_id)
            if sess is None:
                sess = sessions[client_id] = [0, set()]
            low = sess[0]
            if seq == low + 1:
                # The common case: the next order of this client, in sequence.
                above = sess[1]
                if above:
                    while seq + 1 in above:
                        seq += 1
                        above.discard(seq)
                    sess[0] = seq
                    seq = command[1]
                else:
                    sess[0] = seq
                effective = True
                apply(order, f"{client_id}:{seq}")
            elif seq <= low or seq in sess[1]:
                effective = False
                node.duplicates_skipped += 1
            else:
                effective = True
                sess[1].add(seq)
                apply(order, f"{client_id}:{seq}")
            if checker is not None:
                checker.on_apply(node, index, term, command, effective)
            if is_leader and (client_id, seq) in outstanding:
                self._ack(client_id, seq)
        self._maybe_snapshot(node)

    def _maybe_snapshot(self, node: ExchangeNode) -> None:
        raft = node.raft
        storage = raft.storage
        held = len(storage.log)
        half = self.snapshot_threshold // 2
        # Remember the state about half a threshold ago; compact there once the log is full,
        # so followers a little behind still catch up from the log rather than a snapshot.
        if node.pending_snapshot_index <= storage.snap_index and held > half:
            node.pending_snapshot_index = raft.last_applied
            node.pending_snapshot_data = node.snapshot_state()
        if held > self.snapshot_threshold and node.pending_snapshot_index > storage.snap_index:
            raft.compact(node.pending_snapshot_index, node.pending_snapshot_data)
            node.snapshots_taken += 1
            node.pending_snapshot_data = None

    # ---- clients ------------------------------------------------------------------------

    def submit(self, order: dict, client_id: str = "client") -> OrderTicket:
        """Validate and submit one order; returns its ticket. Retries until acknowledged."""
        if not isinstance(client_id, str) or not client_id or ":" in client_id:
            raise ValueError("client_id must be a non-empty string without ':'")
        command = validate_order(order)
        with self.lock:
            seq = self._client_seq.get(client_id, 0) + 1
            self._client_seq[client_id] = seq
            ticket = OrderTicket(client_id, seq, command, self.now)
            self.outstanding[(client_id, seq)] = ticket
            self.counters["orders_submitted"] += 1
            self._dispatch(ticket, self._leader_node())
            return ticket

    def _dispatch(self, ticket: OrderTicket, leader: ExchangeNode | None) -> None:
        if leader is None:
            self._pending.append(ticket)
            return
        ticket.attempts += 1
        if ticket.attempts > 1:
            self.counters["orders_retried"] += 1
        ticket.last_sent = self.now_ms
        leader.raft.propose((ticket.client_id, ticket.seq, ticket.command))
        if not leader.flush_pending:
            leader.flush_pending = True
            self._push(self.now_ms, _FLUSH, leader)

    def _dispatch_pending(self) -> None:
        leader = self._leader_node()
        if leader is None:
            return
        pending = self._pending
        self._pending = deque()
        for ticket in pending:
            if not ticket.acked:
                self._dispatch(ticket, leader)

    def _retry_clients(self, _cluster: "Cluster") -> None:
        if self._pending:
            self._dispatch_pending()
        if not self.outstanding:
            return
        cutoff = self.now_ms - self.retry_after_ms
        leader = self._leader_node()
        if leader is None:
            return
        for ticket in self.outstanding.values():
            if ticket.last_sent < cutoff:
                self._dispatch(ticket, leader)

    def _ack(self, client_id: str, seq: int) -> None:
        ticket = self.outstanding.pop((client_id, seq), None)
        if ticket is None:
            return
        ticket.acked = True
        ticket.committed_at = self.now
        ticket.latency_ms = (ticket.committed_at - ticket.submitted_at) * 1000.0
        self.counters["orders_acknowledged"] += 1
        self._latencies.append((self.now_ms, ticket.latency_ms))
        if self.checker is not None:
            self.checker.on_ack(ticket)

    def latencies_since(self, t: float) -> list[float]:
        """Consensus latencies (ms) of orders acknowledged after simulated time ``t`` (s)."""
        cutoff = t * 1000.0
        with self.lock:
            out = []
            for at_ms, latency in reversed(self._latencies):
                if at_ms <= cutoff:
                    break
                out.append(latency)
            out.reverse()
            return out

    # ---- faults --------------------------------------------------------------------------

    def _record_fault(self, kind: str, *args: Any) -> None:
        self.counters["faults_injected"] += 1
        self.fault_log.append((self.now, kind, args))
        stable = zlib.crc32(repr((kind, args)).encode())
        self.trace_hash = hash((self.trace_hash, int(self.now_ms * 1000), stable)) & _MASK64
        self._notify(kind, args=args, at=self.now)

    def crash(self, node_id: str) -> None:
        """Stop a node: its volatile state (and state machine) is lost; storage survives."""
        node = self.node(node_id)
        with self.lock:
            if not node.up:
                return
            node.up = False
            node.raft = None
            node.timer_at = float("inf")
            node.flush_pending = False
            node.exchange = Exchange()
            node.sessions = {}
            node.pending_snapshot_data = None
            node.pending_snapshot_index = 0
            self._record_fault("crash", node_id)

    def restart(self, node_id: str) -> None:
        """Bring a crashed node back: it reloads its snapshot and catches up from the leader."""
        node = self.node(node_id)
        with self.lock:
            if node.up:
                return
            self._record_fault("restart", node_id)
            self._boot(node)
            if self.checker is not None:
                self.checker.on_restart(node)

    def _boot(self, node: ExchangeNode) -> None:
        node.up = True
        node.led_term = 0
        node.load_state(node.storage.snap_data)
        node.raft = RaftNode(node.node_id, self.node_ids, node.storage,
                             random.Random(self.rng.getrandbits(64)), self.config, self.now_ms)
        node.timer_at = float("inf")
        self._after(node)

    def partition(self, *groups: Iterable[str]) -> None:
        """Split the network: nodes talk only within their group. Unlisted nodes form one more group."""
        if len(groups) < 1:
            raise ValueError("partition needs at least one group of node ids")
        seen: dict[str, int] = {}
        for gi, group in enumerate(groups):
            if isinstance(group, str):
                raise ValueError("each partition group must be a list of node ids, not a string")
            members = list(group)
            if not members:
                raise ValueError("partition groups must not be empty")
            for nid in members:
                self.node(nid)
                if nid in seen:
                    raise ValueError(f"node {nid!r} appears in more than one partition group")
                seen[nid] = gi
        rest = len(groups)
        with self.lock:
            self._groups = {nid: seen.get(nid, rest) for nid in self.node_ids}
            self._record_fault("partition", tuple(tuple(g) for g in groups))

    def isolate(self, node_id: str) -> None:
        """Cut one node off from all others."""
        self.node(node_id)
        self.partition([node_id], [n for n in self.node_ids if n != node_id])

    def heal(self) -> None:
        """Remove partitions and slowness; crashed nodes stay down (see ``restart``)."""
        with self.lock:
            self._groups = None
            self._slow = {}
            self._record_fault("heal")

    def slow(self, node_id: str, factor: float = 10.0) -> None:
        """Multiply the latency of every message to or from ``node_id`` by ``factor``."""
        self.node(node_id)
        if not isinstance(factor, (int, float)) or factor < 1.0:
            raise ValueError("slow factor must be a number >= 1")
        with self.lock:
            if factor == 1.0:
                self._slow.pop(node_id, None)
            else:
                self._slow[node_id] = float(factor)
            self._record_fault("slow", node_id, float(factor))

    def set_network(self, **settings: float) -> None:
        """Change network behaviour, e.g. ``set_network(loss=0.1, duplicate=0.05, reorder=0.1)``."""
        with self.lock:
            for name, value in settings.items():
                if not hasattr(self.network, name):
                    raise ValueError(f"unknown network setting {name!r}")
            candidate = NetworkConfig(**{**self.network.__dict__, **settings})
            candidate.validate()
            self.network = candidate
            self._record_fault("network", tuple(sorted(settings.items())))

    def corrupt_state(self, node_id: str) -> None:
        """Test hook: silently damage one node's state machine (as a bit flip would)."""
        node = self.node(node_id)
        with self.lock:
            if not node.up:
                raise ValueError(f"{node_id} is down; cannot corrupt its state")
            node.exchange.corrupt(random.Random(self.rng.getrandbits(32)))
            self._record_fault("corrupt", node_id)

    def is_connected(self, a: str, b: str) -> bool:
        return self._connected(a, b)

    # ---- observation ---------------------------------------------------------------------

    def status(self, node_id: str) -> dict:
        """A read-only snapshot of one node, cheap enough to take every second."""
        node = self.node(node_id)
        with self.lock:
            return self._status(node)

    def statuses(self) -> dict[str, dict]:
        """Every node's status, read consistently at one simulated instant."""
        with self.lock:
            return {node.node_id: self._status(node) for node in self.nodes}

    def _status(self, node: ExchangeNode) -> dict:
        storage = node.storage
        raft = node.raft
        if raft is None:
            return {
                "node_id": node.node_id, "up": False, "state": "DOWN",
                "term": storage.current_term, "leader_id": None,
                "commit_index": 0, "last_applied": 0, "log_length": len(storage.log),
                "last_log_index": storage.last_index, "snapshot_index": storage.snap_index,
                "peers_connected": 0, "state_digest": None, "orders_applied": 0,
                "trades_executed": 0, "match_index": {}, "last_contact_ms": {},
            }
        peers_connected = 0
        for other in self.nodes:
            if other is not node and other.up and self._connected(node.node_id, other.node_id):
                peers_connected += 1
        is_leader = raft.state == LEADER
        exchange = node.exchange
        return {
            "node_id": node.node_id,
            "up": True,
            "state": raft.reported_state,
            "term": storage.current_term,
            "leader_id": raft.leader_id,
            "commit_index": raft.commit_index,
            "last_applied": raft.last_applied,
            "log_length": len(storage.log),
            "last_log_index": storage.last_index,
            "snapshot_index": storage.snap_index,
            "peers_connected": peers_connected,
            "state_digest": exchange.digest(),
            "orders_applied": exchange.orders_accepted,
            "trades_executed": exchange.trades_executed,
            "match_index": dict(raft.match_index) if is_leader else {},
            "last_contact_ms": (
                {p: round(self.now_ms - t, 3) for p, t in raft.last_contact.items()} if is_leader else {}
            ),
        }

    def stats(self) -> dict:
        """Cluster-wide cumulative counters."""
        with self.lock:
            out = dict(self.counters)
            out["orders_pending"] = len(self.outstanding)
            out["leader_changes"] = max(0, self.counters["elections_won"] - 1)
            out["elections_started"] = sum(
                n.raft.elections_started for n in self.nodes if n.raft is not None
            )
            out["now"] = self.now
            return out

    def digests(self) -> dict[str, str | None]:
        with self.lock:
            return {n.node_id: (n.exchange.digest() if n.up else None) for n in self.nodes}

    def converged(self) -> bool:
        """All live nodes applied the same index with equal state digests, and a leader exists."""
        with self.lock:
            live = [n for n in self.nodes if n.raft is not None]
            if not live or self._leader_node() is None:
                return False
            applied = {n.raft.last_applied for n in live}
            digests = {n.exchange.digest() for n in live}
            return len(applied) == 1 and len(digests) == 1

    # ---- real-time pacing ----------------------------------------------------------------

    def start(self, speed: float = 1.0) -> None:
        """Run the simulation on a daemon thread, ``speed`` simulated seconds per wall second."""
        if speed <= 0:
            raise ValueError("speed must be positive")
        if self._thread is not None and self._thread.is_alive():
            return
        self._speed = speed
        self._stop_event.clear()
        self._thread = threading.Thread(target=self._pace, name="raftctl-cluster", daemon=True)
        self._thread.start()

    def _pace(self) -> None:
        wall0 = time.monotonic()
        sim0 = self.now_ms
        while not self._stop_event.is_set():
            target = sim0 + (time.monotonic() - wall0) * 1000.0 * self._speed
            with self.lock:
                # Advance in slices so readers (collector, server) get the lock often.
                while self.now_ms < target and not self._stop_event.is_set():
                    self._run_to(min(target, self.now_ms + 20.0))
            self._stop_event.wait(0.005)

    def stop(self) -> None:
        """Stop the pacing thread (the simulation state is kept)."""
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

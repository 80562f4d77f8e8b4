"""The cluster simulator: N exchange nodes running Raft over a simulated network.

One thread, one simulated clock (milliseconds internally, seconds in the public API), one
event queue, one ``random.Random`` seeded by the caller: the same seed replays the same run,
faults included. ``start()`` paces the simulation against the wall clock on a daemon thread
for live demos; everything else runs as fast as the CPU allows.
"""

from __future__ import annotations

import heapq
from array import array
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


@dataclass
class NodeCosts:
    """Simulated CPU time a node spends, so that a busy leader saturates (microseconds).

    All zero (the default) means nodes process instantly and only the network takes time.
    ``per_packet_us`` is paid per network packet sent or received (one packet carries every
    message one node has for another at that moment, across Raft groups), ``per_message_us``
    per Raft message in it, ``per_entry_us`` per log entry encoded or decoded (a leader encodes
    each entry once per follower), ``apply_us`` per entry applied to the state machine,
    ``client_request_us`` by a leader per client order it accepts. A leader whose queue of work
    exceeds ``max_queue_ms`` pushes back: clients hold the order and retry.
    """

    per_packet_us: float = 0.0
    per_message_us: float = 0.0
    per_entry_us: float = 0.0
    apply_us: float = 0.0
    client_request_us: float = 0.0
    max_queue_ms: float = 50.0

    @property
    def enabled(self) -> bool:
        return bool(self.per_packet_us or self.per_message_us or self.per_entry_us or self.apply_us
                    or self.client_request_us)

    @classmethod
    def realistic(cls) -> "NodeCosts":
        """Figures in the range of a real Raft server handling small requests.

        ``apply_us`` = 3 is what this project's matching engine costs per order
        (benchmarks/bench_matching.py: about 2.7 µs); a client request (RPC decode, validation,
        session lookup, reply) costs far more than an entry's encode or decode.
        """
        return cls(per_packet_us=20.0, per_message_us=5.0, per_entry_us=2.0, apply_us=3.0,
                   client_request_us=60.0)

    def validate(self) -> None:
        for name in ("per_packet_us", "per_message_us", "per_entry_us", "apply_us", "client_request_us",
                     "max_queue_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")


class OrderTicket:
    """A client's handle on one submitted order: when it was sent, committed and acknowledged."""

    __slots__ = ("client_id", "seq", "shard", "command", "submitted_at", "committed_at",
                 "latency_ms", "acked", "attempts", "last_sent", "held", "entry")

    def __init__(self, client_id: str, seq: int, command: dict, submitted_at: float, shard: int = 0) -> None:
        self.client_id = client_id
        self.seq = seq
        self.shard = shard
        self.command = command
        self.submitted_at = submitted_at  # simulated seconds
        self.committed_at: float | None = None
        self.latency_ms: float | None = None
        self.acked = False
        self.attempts = 0
        self.last_sent = -1e18
        self.held = False  # waiting in the client's queue for a leader with room
        # What goes into the Raft log: (client id, sequence, command, order id).
        self.entry = (client_id, seq, command, f"{client_id}:{seq}")

    @property
    def order_id(self) -> str:
        """The id the exchange gives the order (unique within its shard)."""
        return f"{self.client_id}:{self.seq}"

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<OrderTicket {self.order_id} shard={self.shard} acked={self.acked} latency_ms={self.latency_ms}>"


class _LatencyRing:
    """The last ``size`` acknowledged orders' (time, latency, shard), preallocated so memory is flat."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("latency_window must be >= 1")
        self.size = size
        self.at_ms = array("d", bytes(8 * size))
        self.latency_ms = array("d", bytes(8 * size))
        self.shard = array("H", bytes(2 * size))
        self.count = 0  # total ever appended

    def append(self, at_ms: float, latency_ms: float, shard: int) -> None:
        i = self.count % self.size
        self.at_ms[i] = at_ms
        self.latency_ms[i] = latency_ms
        self.shard[i] = shard
        self.count += 1

    def since(self, cutoff_ms: float, shard: int | None) -> list[float]:
        out = []
        size = self.size
        at, lat, sh = self.at_ms, self.latency_ms, self.shard
        for n in range(self.count - 1, max(self.count - size, 0) - 1, -1):
            i = n % size
            if at[i] <= cutoff_ms:
                break
            if shard is None or sh[i] == shard:
                out.append(lat[i])
        out.reverse()
        return out


class Replica:
    """One node's member of one Raft group: durable storage, Raft state, exchange state machine."""

    def __init__(self, node: "ExchangeNode", group: int) -> None:
        self.node = node
        self.node_id = node.node_id
        self.group = group
        self.storage = Storage()
        self.raft: RaftNode | None = None
        self.exchange = Exchange()
        # client id -> [highest seq below which all are applied, set of applied seqs above it]
        self.sessions: dict[str, list] = {}
        self.led_term = 0
        self.flush_pending = False
        self.pending_snapshot_data: Any = None
        self.pending_snapshot_index = 0
        self.snapshots_taken = 0
        self.snapshots_installed = 0
        self.duplicates_skipped = 0

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

    def wipe_volatile(self) -> None:
        self.raft = None
        self.exchange = Exchange()
        self.sessions = {}
        self.flush_pending = False
        self.pending_snapshot_data = None
        self.pending_snapshot_index = 0
        self.led_term = 0

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<Replica {self.node_id}/shard{self.group}>"


class ExchangeNode:
    """One cluster member. It hosts one replica of every shard's Raft group (one by default).

    ``raft``, ``storage``, ``exchange`` and ``sessions`` are those of shard 0, which with one
    shard is the whole node.
    """

    def __init__(self, cluster: "Cluster", node_id: str, index: int, shards: int = 1) -> None:
        self.cluster = cluster
        self.node_id = node_id
        self.index = index
        self.up = True
        self.timer_at = float("inf")
        self.busy_until = 0.0
        self.boots = 0
        self.replicas = [Replica(self, g) for g in range(shards)]

    @property
    def id(self) -> str:
        return self.node_id

    @property
    def raft(self) -> RaftNode | None:
        return self.replicas[0].raft

    @property
    def storage(self) -> Storage:
        return self.replicas[0].storage

    @property
    def exchange(self) -> Exchange:
        return self.replicas[0].exchange

    @property
    def sessions(self) -> dict:
        return self.replicas[0].sessions

    @property
    def snapshots_taken(self) -> int:
        return sum(r.snapshots_taken for r in self.replicas)

    @property
    def snapshots_installed(self) -> int:
        return sum(r.snapshots_installed for r in self.replicas)

    def session_has(self, client_id: str, seq: int, shard: int = 0) -> bool:
        return self.replicas[shard].session_has(client_id, seq)

    def status(self) -> dict:
        return self.cluster.status(self.node_id)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<ExchangeNode {self.node_id} up={self.up}>"


class Cluster:
    """A simulated Raft cluster of exchange nodes named ``node1`` … ``nodeN``.

    With ``shards=K`` every node hosts one replica of each of K Raft groups (multi-Raft, as
    TiKV and CockroachDB place ranges); symbols map to shards by a stable hash or by
    ``shard_map``, and each order goes to its shard's leader.
    """

    def __init__(
        self,
        node_count: int = 5,
        seed: int = 0,
        *,
        shards: int = 1,
        shard_map: dict[str, int] | None = None,
        prevote: bool = True,
        check_quorum: bool = True,
        raft_config: RaftConfig | None = None,
        network: NetworkConfig | None = None,
        costs: NodeCosts | None = None,
        snapshot_threshold: int = 2000,
        retry_after_s: float = 0.5,
        latency_window: int = 100_000,
        balance_leaders: bool = True,
    ) -> None:
        if isinstance(node_count, bool) or not isinstance(node_count, int) or node_count < 1:
            raise ValueError(f"node_count must be a positive integer, got {node_count!r}")
        if node_count > 1000:
            raise ValueError("node_count above 1000 is not supported")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= 256:
            raise ValueError(f"shards must be an integer from 1 to 256, got {shards!r}")
        if snapshot_threshold < 4:
            raise ValueError("snapshot_threshold must be >= 4")
        if retry_after_s <= 0:
            raise ValueError("retry_after_s must be positive")
        self.seed = seed
        self.rng = random.Random(seed)
        self.shards = shards
        self.shard_map = self._check_shard_map(shard_map or {}, shards)
        self.config = raft_config or RaftConfig(prevote=prevote, check_quorum=check_quorum)
        self.network = network or NetworkConfig()
        self.network.validate()
        self.costs = costs or NodeCosts()
        self.costs.validate()
        self._costly = self.costs.enabled  # read on every event; a property call costs more
        self.snapshot_threshold = snapshot_threshold
        self.retry_after_ms = retry_after_s * 1000.0
        self.node_ids = [f"node{i}" for i in range(1, node_count + 1)]
        self.nodes = [ExchangeNode(self, nid, i, shards) for i, nid in enumerate(self.node_ids)]
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
        self._client_seq: dict[tuple[str, int], int] = {}
        self.outstanding: dict[tuple[int, str, int], OrderTicket] = {}
        # Orders waiting for their shard to have a leader with room, oldest first, per shard.
        self._pending: list[deque[OrderTicket]] = [deque() for _ in range(shards)]
        self._latencies = _LatencyRing(latency_window)
        self.acked_by_shard = [0] * shards
        self.counters = {
            "orders_submitted": 0,
            "orders_acknowledged": 0,
            "orders_rejected": 0,
            "orders_retried": 0,
            "orders_backpressured": 0,
            "elections_won": 0,
            "leadership_transfers": 0,
            "messages_sent": 0,
            "messages_dropped": 0,
            "messages_duplicated": 0,
            "packets_sent": 0,
            "faults_injected": 0,
        }
        self.leadership_log: list[tuple[float, str, int, int]] = []  # (sim s, node, term, shard)
        self.fault_log: list[tuple[float, str, tuple]] = []
        self.checker: Any = None
        self.workload: Any = None
        self._observers: list[Callable[[str, dict], None]] = []
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._speed = 1.0
        for node in self.nodes:
            self._boot(node)
        self._retry_ticks = 0
        self.every(0.01, self._retry_clients)
        if shards > 1 and balance_leaders:
            self.every(1.0, self._balance_leaders)

    @staticmethod
    def _check_shard_map(shard_map: dict, shards: int) -> dict[str, int]:
        if not isinstance(shard_map, dict):
            raise ValueError("shard_map must map symbols to shard numbers")
        out = {}
        for symbol, shard in shard_map.items():
            if isinstance(shard, bool) or not isinstance(shard, int) or not 0 <= shard < shards:
                raise ValueError(f"shard_map[{symbol!r}] must be a shard number in 0..{shards - 1}, got {shard!r}")
            out[str(symbol).upper()] = shard
        return out

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

    def shard_of(self, symbol: str) -> int:
        """The shard that owns ``symbol``: ``shard_map`` if listed, else a stable hash."""
        if self.shards == 1:
            return 0
        symbol = symbol.upper()
        mapped = self.shard_map.get(symbol)
        if mapped is not None:
            return mapped
        return zlib.crc32(symbol.encode()) % self.shards

    @property
    def leader_id(self) -> str | None:
        """The live leader of the highest term (of shard 0 when sharded), or None."""
        rep = self._leader_replica(0)
        return rep.node_id if rep is not None else None

    def shard_leaders(self) -> dict[int, str | None]:
        """Each shard's current leader (None while it has none)."""
        with self.lock:
            out = {}
            for g in range(self.shards):
                rep = self._leader_replica(g)
                out[g] = rep.node_id if rep is not None else None
            return out

    def _leader_replica(self, group: int) -> Replica | None:
        best = None
        for node in self.nodes:
            rep = node.replicas[group]
            raft = rep.raft
            if raft is not None and raft.state == LEADER:
                if best is None or raft.term > best.raft.term:
                    best = rep
        return best

    def _leader_node(self) -> ExchangeNode | None:
        rep = self._leader_replica(0)
        return rep.node if rep is not None else None

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
                node, boots = payload
                if node.up and boots == node.boots and at_ms == node.timer_at:
                    node.timer_at = float("inf")
                    for rep in node.replicas:
                        rep.raft.tick(at_ms)
                        self._after(rep)
                    self._finish(node, self.now_ms)
            elif kind == _FLUSH:
                rep = payload
                rep.flush_pending = False
                if rep.raft is not None:
                    rep.raft.flush()
                    self._after(rep)
                    self._finish(rep.node, self.now_ms)
            else:
                payload()
        self.now_ms = max(self.now_ms, target_ms)
        if self.checker is not None:
            self.checker.check(self)

    # ---- network ------------------------------------------------------------------------

    def _connected(self, a: str, b: str) -> bool:
        groups = self._groups
        return groups is None or groups.get(a) == groups.get(b)

    def _send(self, src: str, dst: str, msgs: list, depart_ms: float) -> None:
        """Send one packet: every message one node has for another after one processing step."""
        net = self.network
        rng = self.rng
        counters = self.counters
        counters["messages_sent"] += len(msgs)
        counters["packets_sent"] += 1
        if not self._connected(src, dst) or (net.loss and rng.random() < net.loss):
            counters["messages_dropped"] += len(msgs)
            return
        copies = 2 if net.duplicate and rng.random() < net.duplicate else 1
        if copies == 2:
            counters["messages_duplicated"] += len(msgs)
        factor = max(self._slow.get(src, 1.0), self._slow.get(dst, 1.0)) if self._slow else 1.0
        payload = (src, dst, msgs, False)
        for _ in range(copies):
            delay = rng.uniform(net.latency_min_ms, net.latency_max_ms) * factor
            if net.reorder and rng.random() < net.reorder:
                delay += rng.uniform(0.0, net.reorder_max_ms)
            self._push(depart_ms + delay, _DELIVER, payload)

    def _deliver(self, payload: tuple) -> None:
        src, dst, msgs, reserved = payload
        node = self._by_id[dst]
        if not node.up or not self._connected(src, dst):
            self.counters["messages_dropped"] += len(msgs)
            return
        now = self.now_ms
        costs = self.costs
        work_ms = 0.0
        if self._costly:
            # Each node is a FIFO server: a packet is handled after the work queued before it.
            work_ms = (costs.per_packet_us + costs.per_message_us * len(msgs)
                       + costs.per_entry_us * sum(len(m.entries) for m in msgs)) / 1000.0
            if not reserved:
                start = node.busy_until if node.busy_until > now else now
                node.busy_until = start + work_ms
                if start > now:
                    self._push(start, _DELIVER, (src, dst, msgs, True))
                    return
        trace = self.trace_hash
        src_index = self._by_id[src].index
        replicas = node.replicas
        applied = 0
        for msg in msgs:
            rep = replicas[msg.group]
            # Only ints go into the trace hash: str hashes are salted per process (PYTHONHASHSEED).
            trace = hash((trace, int(now * 1000), msg.kind, msg.group, src_index, node.index,
                          msg.term, msg.prev_index, len(msg.entries), msg.match_index,
                          msg.granted)) & _MASK64
            rep.raft.step(msg, now)
            applied += self._after(rep)
        self.trace_hash = trace
        if self._costly:
            apply_ms = costs.apply_us * applied / 1000.0
            node.busy_until += apply_ms
            self._finish(node, now + work_ms + apply_ms)
        else:
            self._finish(node, now)

    # ---- after a node did something ------------------------------------------------------

    def _after(self, rep: Replica) -> int:
        """Carry out what one replica's Raft node asked for; returns entries applied."""
        raft = rep.raft
        applied = 0
        if raft.pending_snapshot is not None:
            data = raft.pending_snapshot
            raft.pending_snapshot = None
            rep.load_state(data)
            rep.snapshots_installed += 1
            if self.checker is not None:
                self.checker.on_snapshot_install(rep, raft.storage.snap_index)
        if raft.commit_index > raft.last_applied:
            first, entries = raft.take_committed_slice()
            applied = len(entries)
            self._apply(rep, first, entries)
        if raft.state == LEADER and rep.led_term != raft.term:
            rep.led_term = raft.term
            self.counters["elections_won"] += 1
            self.leadership_log.append((self.now, rep.node_id, raft.term, rep.group))
            self._notify("leader_elected", node_id=rep.node_id, term=raft.term, shard=rep.group)
            if self.checker is not None:
                self.checker.on_leader(rep, raft.term)
            if self._pending[rep.group]:
                self._dispatch_pending()
        return applied

    def _finish(self, node: ExchangeNode, depart: float) -> None:
        """Send what the node's replicas produced (one packet per peer) and re-arm its timer."""
        by_dst: dict[str, list] = {}
        deadline = float("inf")
        for rep in node.replicas:
            raft = rep.raft
            if raft.outbox:
                for msg in raft.take_outbox():
                    by_dst.setdefault(msg.dst, []).append(msg)
            d = raft.next_deadline()
            if d < deadline:
                deadline = d
        if by_dst:
            costs = self.costs
            for dst, msgs in by_dst.items():
                if self._costly:
                    # Sending costs the sender too: every entry is encoded once per follower.
                    send_ms = (costs.per_packet_us + costs.per_message_us * len(msgs)
                               + costs.per_entry_us * sum(len(m.entries) for m in msgs)) / 1000.0
                    depart += send_ms
                    node.busy_until = max(node.busy_until, self.now_ms) + send_ms
                self._send(node.node_id, dst, msgs, depart)
        if deadline < node.timer_at:
            node.timer_at = max(deadline, self.now_ms)
            self._push(node.timer_at, _TIMER, (node, node.boots))

    def _apply(self, rep: Replica, first_index: int, entries: list) -> None:
        apply = rep.exchange.apply
        sessions = rep.sessions
        is_leader = rep.raft.state == LEADER
        checker = self.checker
        outstanding = self.outstanding
        group = rep.group
        index = first_index - 1
        for term, command in entries:
            index += 1
            if command is None:
                if checker is not None:
                    checker.on_apply(rep, index, term, None, False)
                continue
            client_id, seq, order, order_id = command
            sess = sessions.get(client_id)
            if sess is None:
                sess = sessions[client_id] = [0, set()]
            low = sess[0]
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
            if checker is not None:
                checker.on_apply(rep, index, term, command, effective)
            if is_leader and (group, client_id, seq) in outstanding:
                self._ack(group, client_id, seq)
        self._maybe_snapshot(rep)

    def _maybe_snapshot(self, rep: Replica) -> None:
        raft = rep.raft
        storage = raft.storage
        held = len(storage.log)
        half = self.snapshot_threshold // 2
        # Remember the state about half a threshold ago; compact there once the log is full,
        # so followers a little behind still catch up from the log rather than a snapshot.
        if rep.pending_snapshot_index <= storage.snap_index and held > half:
            rep.pending_snapshot_index = raft.last_applied
            rep.pending_snapshot_data = rep.snapshot_state()
        if held > self.snapshot_threshold and rep.pending_snapshot_index > storage.snap_index:
            raft.compact(rep.pending_snapshot_index, rep.pending_snapshot_data)
            rep.snapshots_taken += 1
            rep.pending_snapshot_data = None

    # ---- clients ------------------------------------------------------------------------

    def submit(self, order: dict, client_id: str = "client") -> OrderTicket:
        """Validate and submit one order; returns its ticket. Retries until acknowledged.

        In a sharded cluster a cancel must name the order's ``symbol`` so it reaches the right
        shard: ``{"op": "cancel", "order_id": "trader1:7", "symbol": "BTC-USD"}``.
        """
        return self.submit_many([(order, client_id)])[0]

    def submit_many(self, orders: list[tuple[dict, str]]) -> list[OrderTicket]:
        """Submit ``[(order, client_id), ...]`` in one go (one lock, one leader lookup per shard).

        Every order is validated before any is submitted: a bad one raises ValueError and
        nothing is sent.
        """
        commands = []
        for order, client_id in orders:
            if not isinstance(client_id, str) or not client_id or ":" in client_id:
                raise ValueError("client_id must be a non-empty string without ':'")
            command = validate_order(order)
            if self.shards == 1:
                shard = 0
            elif command["op"] == "cancel":
                symbol = order.get("symbol")
                if not isinstance(symbol, str) or not symbol:
                    raise ValueError("in a sharded cluster a cancel needs the order's 'symbol' to find its shard")
                shard = self.shard_of(symbol)
            else:
                shard = self.shard_of(command["symbol"])
            commands.append((command, client_id, shard))
        tickets = []
        with self.lock:
            leaders = [self._leader_replica(g) for g in range(self.shards)]
            client_seq = self._client_seq
            outstanding = self.outstanding
            now = self.now
            for command, client_id, shard in commands:
                key = (client_id, shard)
                seq = client_seq.get(key, 0) + 1
                client_seq[key] = seq
                ticket = OrderTicket(client_id, seq, command, now, shard)
                outstanding[(shard, client_id, seq)] = ticket
                self._dispatch(ticket, leaders[shard])
                tickets.append(ticket)
            self.counters["orders_submitted"] += len(tickets)
        return tickets

    def _dispatch(self, ticket: OrderTicket, leader: Replica | None, requeue_front: bool = False) -> bool:
        if leader is None or (self._costly and
                              leader.node.busy_until - self.now_ms > self.costs.max_queue_ms):
            if leader is not None:
                self.counters["orders_backpressured"] += 1
            self._hold(ticket, requeue_front)
            return False
        if leader.raft.propose(ticket.entry) is None:
            self._hold(ticket, requeue_front)  # leader is handing over leadership
            return False
        node = leader.node
        costs = self.costs
        if self._costly:
            node.busy_until = max(node.busy_until, self.now_ms) + costs.client_request_us / 1000.0
        ticket.attempts += 1
        if ticket.attempts > 1:
            self.counters["orders_retried"] += 1
        ticket.last_sent = self.now_ms
        if not leader.flush_pending:
            leader.flush_pending = True
            self._push(max(self.now_ms, node.busy_until), _FLUSH, leader)
        return True

    def _hold(self, ticket: OrderTicket, front: bool) -> None:
        ticket.held = True
        if front:
            self._pending[ticket.shard].appendleft(ticket)
        else:
            self._pending[ticket.shard].append(ticket)

    def _dispatch_pending(self) -> None:
        """Send held orders, oldest first, to each shard's leader until it has no room."""
        for group, queue in enumerate(self._pending):
            if not queue:
                continue
            leader = self._leader_replica(group)
            if leader is None:
                continue
            while queue:
                ticket = queue.popleft()
                ticket.held = False
                if ticket.acked:
                    continue
                if not self._dispatch(ticket, leader, requeue_front=True):
                    break

    def _retry_clients(self, _cluster: "Cluster") -> None:
        if any(self._pending):
            self._dispatch_pending()
        self._retry_ticks += 1
        if not self.outstanding or self._retry_ticks % 5:
            return  # look for timed-out orders every 50 ms only
        cutoff = self.now_ms - self.retry_after_ms
        leaders = [self._leader_replica(g) for g in range(self.shards)]
        for ticket in list(self.outstanding.values()):
            if ticket.last_sent < cutoff and leaders[ticket.shard] is not None:
                ticket.last_sent = self.now_ms  # also when held back, so it waits a full period
                if not ticket.held:
                    self._dispatch(ticket, leaders[ticket.shard])

    def _ack(self, shard: int, client_id: str, seq: int) -> None:
        ticket = self.outstanding.pop((shard, client_id, seq), None)
        if ticket is None:
            return
        ticket.acked = True
        ticket.committed_at = self.now
        ticket.latency_ms = (ticket.committed_at - ticket.submitted_at) * 1000.0
        self.counters["orders_acknowledged"] += 1
        self.acked_by_shard[shard] += 1
        self._latencies.append(self.now_ms, ticket.latency_ms, shard)
        if self.checker is not None:
            self.checker.on_ack(ticket)

    def latencies_since(self, t: float, shard: int | None = None) -> list[float]:
        """Consensus latencies (ms) of orders acknowledged after simulated time ``t`` (s)."""
        with self.lock:
            return self._latencies.since(t * 1000.0, shard)

    # ---- leader placement -----------------------------------------------------------------

    def _balance_leaders(self, _cluster: "Cluster") -> None:
        """Spread shard leaders over live nodes (at most one transfer per overloaded node per round)."""
        live = [n for n in self.nodes if n.up]
        if len(live) < 2:
            return
        led: dict[str, list[int]] = {n.node_id: [] for n in live}
        for g in range(self.shards):
            rep = self._leader_replica(g)
            if rep is None:
                return  # an election is under way somewhere; leave things alone
            led[rep.node_id].append(g)
        fair = -(-self.shards // len(live))  # ceil
        for node_id, groups in led.items():
            if len(groups) <= fair:
                continue
            group = groups[-1]
            candidates = sorted(
                (n for n in live if n.node_id != node_id and self._connected(node_id, n.node_id)),
                key=lambda n: (len(led[n.node_id]), (n.index - group) % len(self.nodes)),
            )
            if not candidates or len(led[candidates[0].node_id]) + 1 > len(groups) - 1:
                continue
            target = candidates[0]
            rep = self._by_id[node_id].replicas[group]
            if rep.raft.transfer_leadership(target.node_id):
                self.counters["leadership_transfers"] += 1
                led[target.node_id].append(group)
                groups.remove(group)
                self._after(rep)
                self._finish(rep.node, self.now_ms)

    # ---- faults --------------------------------------------------------------------------

    def _record_fault(self, kind: str, *args: Any) -> None:
        self.counters["faults_injected"] += 1
        self.fault_log.append((self.now, kind, args))
        stable = zlib.crc32(repr((kind, args)).encode())
        self.trace_hash = hash((self.trace_hash, int(self.now_ms * 1000), stable)) & _MASK64
        self._notify(kind, args=args, at=self.now)

    def crash(self, node_id: str) -> None:
        """Stop a node: its volatile state (and state machines) is lost; storage survives."""
        node = self.node(node_id)
        with self.lock:
            if not node.up:
                return
            node.up = False
            node.timer_at = float("inf")
            node.busy_until = 0.0
            for rep in node.replicas:
                rep.wipe_volatile()
            self._record_fault("crash", node_id)

    def restart(self, node_id: str) -> None:
        """Bring a crashed node back: it reloads its snapshots and catches up from the leaders."""
        node = self.node(node_id)
        with self.lock:
            if node.up:
                return
            self._record_fault("restart", node_id)
            self._boot(node)
            if self.checker is not None:
                for rep in node.replicas:
                    self.checker.on_restart(rep)

    def _boot(self, node: ExchangeNode) -> None:
        node.up = True
        node.boots += 1
        node.timer_at = float("inf")
        node.busy_until = self.now_ms
        for rep in node.replicas:
            rep.led_term = 0
            rep.load_state(rep.storage.snap_data)
            rep.raft = RaftNode(node.node_id, self.node_ids, rep.storage,
                                random.Random(self.rng.getrandbits(64)), self.config, self.now_ms,
                                group=rep.group)
            self._after(rep)
        self._finish(node, self.now_ms)

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
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor >= 1.0:
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
            for name in settings:
                if name not in NetworkConfig.__dataclass_fields__:
                    raise ValueError(f"unknown network setting {name!r}")
            candidate = NetworkConfig(**{**self.network.__dict__, **settings})
            candidate.validate()
            self.network = candidate
            self._record_fault("network", tuple(sorted(settings.items())))

    def corrupt_state(self, node_id: str, shard: int = 0) -> None:
        """Test hook: silently damage one node's state machine (as a bit flip would)."""
        node = self.node(node_id)
        if not 0 <= shard < self.shards:
            raise ValueError(f"shard must be in 0..{self.shards - 1}")
        with self.lock:
            if not node.up:
                raise ValueError(f"{node_id} is down; cannot corrupt its state")
            node.replicas[shard].exchange.corrupt(random.Random(self.rng.getrandbits(32)))
            self._record_fault("corrupt", node_id, shard)

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

    def _replica_status(self, rep: Replica) -> dict:
        raft = rep.raft
        storage = rep.storage
        if raft is None:
            return {
                "shard": rep.group, "state": "DOWN", "term": storage.current_term, "leader_id": None,
                "commit_index": 0, "last_applied": 0, "log_length": len(storage.log),
                "last_log_index": storage.last_index, "snapshot_index": storage.snap_index,
                "state_digest": None, "orders_applied": 0, "trades_executed": 0,
                "match_index": {}, "last_contact_ms": {},
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
                {p: round(self.now_ms - t, 3) for p, t in raft.last_contact.items()} if is_leader else {}
            ),
        }

    def _status(self, node: ExchangeNode) -> dict:
        peers_connected = 0
        if node.up:
            for other in self.nodes:
                if other is not node and other.up and self._connected(node.node_id, other.node_id):
                    peers_connected += 1
        first = self._replica_status(node.replicas[0])
        out = {"node_id": node.node_id, "up": node.up, "peers_connected": peers_connected}
        out.update(first)
        del out["shard"]
        if self.shards > 1:
            shards = [first] + [self._replica_status(r) for r in node.replicas[1:]]
            out["shards"] = shards
            out["leader_of"] = [s["shard"] for s in shards if s["state"] == "LEADER"]
            out["orders_applied"] = sum(s["orders_applied"] for s in shards)
            out["trades_executed"] = sum(s["trades_executed"] for s in shards)
        return out

    def stats(self) -> dict:
        """Cluster-wide cumulative counters."""
        with self.lock:
            out = dict(self.counters)
            out["orders_pending"] = len(self.outstanding)
            out["leader_changes"] = max(0, self.counters["elections_won"] - self.shards)
            out["elections_started"] = sum(
                r.raft.elections_started for n in self.nodes for r in n.replicas if r.raft is not None
            )
            out["shards"] = self.shards
            out["orders_acknowledged_by_shard"] = list(self.acked_by_shard)
            out["now"] = self.now
            return out

    def digests(self) -> dict[str, str | None]:
        """Each node's state digest (of all its shards' state machines when sharded)."""
        with self.lock:
            out = {}
            for n in self.nodes:
                if not n.up:
                    out[n.node_id] = None
                elif self.shards == 1:
                    out[n.node_id] = n.exchange.digest()
                else:
                    out[n.node_id] = "/".join(r.exchange.digest()[:16] for r in n.replicas)
            return out

    def converged(self) -> bool:
        """Every shard has a leader, and its live replicas applied the same index with equal digests."""
        with self.lock:
            live = [n for n in self.nodes if n.up]
            if not live:
                return False
            for g in range(self.shards):
                if self._leader_replica(g) is None:
                    return False
                reps = [n.replicas[g] for n in live]
                if len({r.raft.last_applied for r in reps}) != 1:
                    return False
                if len({r.exchange.digest() for r in reps}) != 1:
                    return False
            return True

    # ---- real-time pacing ----------------------------------------------------------------

    def start(self, speed: float = 1.0) -> None:
        """Run the simulation on a daemon thread, ``speed`` simulated seconds per wall second."""
        if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not speed > 0:
            raise ValueError("speed must be a positive number")
        if self._thread is not None and self._thread.is_alive():
            return
        self._speed = float(speed)
        self._stop_event.clear()
        self._thread = threading.Thread(target=self._pace, name="raftctl-cluster", daemon=True)
        self._thread.start()

    def _pace(self) -> None:
        wall0 = time.monotonic()
        sim0 = self.now_ms
        while not self._stop_event.is_set():
            target = sim0 + (time.monotonic() - wall0) * 1000.0 * self._speed
            # Advance in slices, releasing the lock between them so readers (collector, server)
            # never wait long.
            while self.now_ms < target and not self._stop_event.is_set():
                with self.lock:
                    self._run_to(min(target, self.now_ms + 20.0))
                # Let a reader waiting on the lock in (the collector, the server) take it
                # before this thread grabs it again: Python locks are not fair.
                time.sleep(0)
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

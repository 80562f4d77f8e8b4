"""The Simulation: N exchange nodes running Raft over a simulated network, on one clock.

One thread, one simulated clock (milliseconds internally, seconds in the public API), one event
queue, one ``random.Random`` seeded by the caller: the same seed replays the same run, faults
included. Everything here is pure: ``raftctl.Cluster`` (raftctl/runtime/cluster.py) adds the lock
and the wall-clock pacing for live use.
"""

from __future__ import annotations

import heapq
import math
import random
import zlib
from typing import Any, Callable, ContextManager

from raftctl.core.health import quorum_size
from raftctl.core.node import NodeHost, Replica
from raftctl.core.raft import RaftConfig, RaftNode
from raftctl.core.sim.balancer import balance_leaders
from raftctl.core.sim.costs import NodeCosts
from raftctl.core.sim.events import CALL, DELIVER, FLUSH, TIMER, EventQueue
from raftctl.core.sim.faults import FaultInjector
from raftctl.core.sim.gateway import ClientGateway, OrderTicket
from raftctl.core.sim.network import Network, NetworkConfig
from raftctl.core.sim.views import StatusViews

__all__ = ["ExchangeNode", "Simulation", "NullLock"]

_MASK64 = (1 << 64) - 1


class NullLock:
    """A lock that does nothing: a Simulation driven from one thread needs none.

    ``raftctl.Cluster`` replaces it with a real ``threading.RLock``.
    """

    def __enter__(self) -> "NullLock":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return True

    def release(self) -> None:
        return None


class ExchangeNode(NodeHost):
    """One cluster member as the simulator hosts it: a NodeHost plus its simulated CPU and timer.

    ``raft``, ``storage``, ``exchange`` and ``sessions`` are those of shard 0, which with one
    shard is the whole node.
    """

    def __init__(self, cluster: "Simulation", node_id: str, index: int, shards: int = 1) -> None:
        super().__init__(node_id, cluster.node_ids, shards=shards, config=cluster.config,
                         snapshot_threshold=cluster.snapshot_threshold,
                         waiting=cluster.gateway.outstanding, index=index)
        self.cluster = cluster
        self.timer_at = float("inf")
        self.busy_until = 0.0
        # paused (pause/resume faults): packets wait here, in arrival order, until resume
        self.paused = False
        self.held: list[tuple[str, str, list[Any], bool]] = []

    @property
    def id(self) -> str:
        return self.node_id

    @property
    def raft(self) -> RaftNode | None:
        return self.replicas[0].raft

    @property
    def storage(self) -> Any:
        return self.replicas[0].storage

    @property
    def exchange(self) -> Any:
        return self.replicas[0].exchange

    @property
    def sessions(self) -> dict[str, list[Any]]:
        return self.replicas[0].sessions

    @property
    def snapshots_taken(self) -> int:
        return sum(r.snapshots_taken for r in self.replicas)

    @property
    def snapshots_installed(self) -> int:
        return sum(r.snapshots_installed for r in self.replicas)

    def session_has(self, client_id: str, seq: int, shard: int = 0) -> bool:
        return self.replicas[shard].session_has(client_id, seq)

    def status(self) -> dict[str, Any]:
        return self.cluster.status(self.node_id)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<ExchangeNode {self.node_id} up={self.up}>"


class Simulation(FaultInjector, StatusViews):
    """A simulated Raft cluster of exchange nodes named ``node1`` … ``nodeN``.

    With ``shards=K`` every node hosts one replica of each of K Raft groups (multi-Raft, as
    TiKV and CockroachDB place ranges); symbols map to shards by a stable hash or by
    ``shard_map``, and each order goes to its shard's leader.
    """

    lock: ContextManager[Any]

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
        node_class: type[ExchangeNode] | None = None,
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
        if not hasattr(self, "lock"):
            self.lock = NullLock()
        self.seed = seed
        self.rng = random.Random(seed)
        self.shards = shards
        self.shard_map = self._check_shard_map(shard_map or {}, shards)
        self.config = raft_config or RaftConfig(prevote=prevote, check_quorum=check_quorum)
        self.network = Network(network or NetworkConfig(), self.rng)
        self.costs = costs or NodeCosts()
        self.costs.validate()
        self.costly = self.costs.enabled  # read on every event; a property call costs more
        self.snapshot_threshold = snapshot_threshold
        self.node_ids = [f"node{i}" for i in range(1, node_count + 1)]
        self.events = EventQueue()
        self.trace_hash = 0
        self.events_processed = 0
        self.counters = {
            "orders_submitted": 0,
            "orders_acknowledged": 0,
            "orders_rejected": 0,
            "orders_retried": 0,
            "orders_backpressured": 0,
            "proposals_failed": 0,
            "elections_won": 0,
            "leadership_transfers": 0,
            "faults_injected": 0,
        }
        self.gateway = ClientGateway(self, retry_after_s, latency_window, seed)
        # node_class: a subclass of ExchangeNode (the checker's planted-bug variants use one)
        factory = node_class or ExchangeNode
        self.nodes = [factory(self, nid, i, shards) for i, nid in enumerate(self.node_ids)]
        self._by_id = {n.node_id: n for n in self.nodes}
        self.leadership_log: list[tuple[float, str, int, int]] = []  # (sim s, node, term, shard)
        self.fault_log: list[tuple[float, str, tuple[Any, ...]]] = []
        self._checker: Any = None
        self.workload: Any = None
        self._observers: list[Callable[[str, dict[str, Any]], None]] = []
        for node in self.nodes:
            self.boot(node)
        self.every(0.01, lambda _sim: self.gateway.retry())
        if shards > 1 and balance_leaders:
            self.every(1.0, balance_leaders_round)

    @staticmethod
    def _check_shard_map(shard_map: dict[str, int], shards: int) -> dict[str, int]:
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
    def node_count(self) -> int:
        return len(self.nodes)

    @property
    def quorum(self) -> int:
        return quorum_size(len(self.nodes))

    @property
    def outstanding(self) -> dict[tuple[int, str, int], OrderTicket]:
        """Orders submitted and not yet acknowledged, by (shard, client_id, seq)."""
        return self.gateway.outstanding


    def shard_of(self, symbol: str) -> int:
        """The shard that owns ``symbol``: ``shard_map`` if listed, else a stable hash."""
        if self.shards == 1:
            return 0
        symbol = symbol.upper()
        mapped = self.shard_map.get(symbol)
        if mapped is not None:
            return mapped
        return zlib.crc32(symbol.encode()) % self.shards


    # ---- scheduling ----------------------------------------------------------------------

    def every(self, interval_s: float, fn: Callable[["Simulation"], Any], start_s: float | None = None) -> None:
        """Call ``fn(cluster)`` every ``interval_s`` simulated seconds."""
        _seconds("interval", interval_s)
        if interval_s <= 0:
            raise ValueError("interval must be positive")
        _callable("every", fn)
        if start_s is not None:
            _seconds("start_s", start_s)
        interval_ms = interval_s * 1000.0
        events = self.events

        def repeat() -> None:
            fn(self)
            events.push(events.now_ms + interval_ms, CALL, repeat)

        with self.lock:
            first = events.now_ms + interval_ms if start_s is None else start_s * 1000.0
            events.push(first, CALL, repeat)

    def at(self, when_s: float, fn: Callable[["Simulation"], Any]) -> None:
        """Call ``fn(cluster)`` once at simulated time ``when_s``."""
        _seconds("at", when_s)
        _callable("at", fn)
        with self.lock:
            self.events.push(max(when_s * 1000.0, self.events.now_ms), CALL, lambda: fn(self))

    def schedule_flush(self, rep: Replica) -> None:
        node = rep.node
        assert isinstance(node, ExchangeNode)
        self.events.push(max(self.events.now_ms, node.busy_until), FLUSH, rep)

    # ---- running -------------------------------------------------------------------------

    def run_for(self, seconds: float) -> None:
        """Advance the simulation by ``seconds`` of simulated time."""
        _seconds("run_for", seconds)
        if seconds < 0:
            raise ValueError("cannot run for a negative duration")
        with self.lock:
            self.run_to(self.events.now_ms + seconds * 1000.0)

    def run_until(self, predicate: Callable[[], bool], timeout: float = 10.0, step: float = 0.01) -> bool:
        """Advance in ``step`` increments until ``predicate()`` holds or ``timeout`` simulated s pass."""
        _callable("run_until", predicate)
        _seconds("timeout", timeout)
        _seconds("step", step)
        if timeout < 0 or step <= 0:  # a step of 0 never moved the clock: run_until never returned
            raise ValueError(f"run_until needs timeout >= 0 and step > 0, got timeout={timeout!r} step={step!r}")
        with self.lock:
            deadline = self.events.now_ms + timeout * 1000.0
            while not predicate():
                if self.events.now_ms >= deadline:
                    return False
                self.run_to(min(self.events.now_ms + step * 1000.0, deadline))
            return True

    def run_to(self, target_ms: float) -> None:
        """Process every event due at or before ``target_ms`` (simulated ms); the caller holds the lock."""
        events = self.events
        queue = events.heap
        pop = heapq.heappop
        while queue and queue[0][0] <= target_ms:
            at_ms, _, kind, payload = pop(queue)
            events.now_ms = at_ms
            self.events_processed += 1
            if kind == DELIVER:
                self._deliver(payload)
            elif kind == TIMER:
                node, boots = payload
                if node.up and boots == node.boots and at_ms == node.timer_at:
                    node.timer_at = float("inf")
                    if not node.paused:  # a paused node's timers fire when it resumes
                        node.tick(at_ms)
                        self.finish(node, at_ms)
            elif kind == FLUSH:
                rep = payload
                node = rep.node
                if node.up and not node.paused:
                    node.flush(rep.group)
                    self.finish(node, at_ms)
                elif not node.up:
                    rep.flush_pending = False
                # paused: flush_pending stays set and resume() flushes
            else:
                payload()
        if target_ms > events.now_ms:
            events.now_ms = target_ms
        if self.checker is not None:
            self.checker.check(self)

    def boot(self, node: ExchangeNode) -> None:
        node.timer_at = float("inf")
        node.busy_until = self.events.now_ms
        node.observer = self.checker
        node.boot(self.events.now_ms, self.rng)
        self.finish(node, self.events.now_ms)

    # ---- network ------------------------------------------------------------------------

    def _deliver(self, payload: tuple[str, str, list[Any], bool]) -> None:
        src, dst, msgs, reserved = payload
        node = self._by_id[dst]
        network = self.network
        if not node.up or not network.connected(src, dst):
            network.messages_dropped += len(msgs)
            return
        if node.paused:
            node.held.append((src, dst, msgs, False))  # waits in the socket buffer
            return
        now = self.events.now_ms
        work_ms = 0.0
        if self.costly:
            # Each node is a FIFO server: a packet is handled after the work queued before it.
            work_ms = self.costs.packet_ms(msgs)
            if not reserved:
                start = node.busy_until if node.busy_until > now else now
                node.busy_until = start + work_ms
                if start > now:
                    self.events.push(start, DELIVER, (src, dst, msgs, True))
                    return
        trace = self.trace_hash
        src_index = self._by_id[src].index
        applied = 0
        replicas = node.replicas
        process = node.process
        for msg in msgs:
            # Only ints go into the trace hash: str hashes are salted per process (PYTHONHASHSEED).
            trace = hash((trace, int(now * 1000), msg.kind, msg.group, src_index, node.index,
                          msg.term, msg.prev_index, len(msg.entries), msg.match_index,
                          msg.granted)) & _MASK64
            # NodeHost.step without its call: the node is up (checked above)
            rep = replicas[msg.group]
            rep.raft.step(msg, now)
            applied += process(rep)
        self.trace_hash = trace
        if self.costly:
            apply_ms = self.costs.apply_us * applied / 1000.0
            node.busy_until += apply_ms
            self.finish(node, now + work_ms + apply_ms)
        else:
            self.finish(node, now)

    def finish(self, node: ExchangeNode, depart: float) -> None:
        """After a node did something: record elections, acknowledge completed orders, send what
        it queued (one packet per peer) and re-arm its timer."""
        if node.elected:
            self._on_elected(node)
        if node.completions:
            ack = self.gateway.ack
            for shard, client_id, seq, rejected in node.completions:
                ack(shard, client_id, seq, rejected)
            node.completions = []
        by_dst = node.outgoing
        if by_dst:
            node.outgoing = {}
            network = self.network
            push = self.events.push
            now_ms = self.events.now_ms
            for dst, msgs in by_dst.items():
                if self.costly:
                    # Sending costs the sender too: every entry is encoded once per follower.
                    send_ms = self.costs.packet_ms(msgs)
                    depart += send_ms
                    node.busy_until = max(node.busy_until, now_ms) + send_ms
                payload = (node.node_id, dst, msgs, False)
                delay = network.transit(node.node_id, dst, len(msgs))
                if delay >= 0.0:
                    push(depart + delay, DELIVER, payload)
                    if network.duplicate_delay >= 0.0:
                        push(depart + network.duplicate_delay, DELIVER, payload)
        deadline = node.next_deadline()
        if deadline < node.timer_at:
            node.timer_at = max(deadline, self.events.now_ms)
            self.events.push(node.timer_at, TIMER, (node, node.boots))

    def _on_elected(self, node: ExchangeNode) -> None:
        elected, node.elected = node.elected, []
        for rep in elected:
            term = rep.live_raft.term
            self.counters["elections_won"] += 1
            self.leadership_log.append((self.now, rep.node_id, term, rep.group))
            self.notify("leader_elected", node_id=rep.node_id, term=term, shard=rep.group)
            if self.gateway.pending[rep.group]:
                self.gateway.dispatch_pending()

    # ---- clients ------------------------------------------------------------------------

    def submit(self, order: dict[str, Any], client_id: str = "client") -> OrderTicket:
        """Validate and submit one order; returns its ticket. Retries until acknowledged.

        In a sharded cluster a cancel must name the order's ``symbol`` so it reaches the right
        shard: ``{"op": "cancel", "order_id": "trader1:7", "symbol": "BTC-USD"}``.
        """
        return self.submit_many([(order, client_id)])[0]

    def submit_many(self, orders: list[tuple[dict[str, Any], str]]) -> list[OrderTicket]:
        """Submit ``[(order, client_id), ...]`` in one go (one lock, one leader lookup per shard).

        Every order is validated before any is submitted: a bad one raises ValueError and
        nothing is sent.
        """
        commands = self.gateway.prepare(orders)
        with self.lock:
            return self.gateway.submit(commands)


def balance_leaders_round(sim: Simulation) -> None:
    balance_leaders(sim)


def _seconds(name: str, value: Any) -> None:
    """A number of simulated seconds, or a ValueError saying what was given."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} needs a finite number of seconds, got {value!r}")


def _callable(name: str, fn: Any) -> None:
    if not callable(fn):
        raise ValueError(f"{name} needs a function to call, got {type(fn).__name__} {fn!r}"[:200])

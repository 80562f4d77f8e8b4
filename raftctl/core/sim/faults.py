"""The fault injector: the faults a test, a scenario or a campaign can inflict on a Simulation.

Each fault is recorded once, under its :class:`~raftctl.core.faults.FaultKind`, in
``fault_log`` and in the trace digest, and announced to the observers (the detection scorer's
ground truth).
"""

from __future__ import annotations

import random
import zlib
from typing import Any, Iterable

from raftctl.core.faults import NETWORK_KINDS, FaultKind
from raftctl.core.sim.base import SimulationBase
from raftctl.core.sim.events import CALL
from raftctl.core.sim.network import MONITOR, NetworkConfig


__all__ = ["FaultInjector"]

_MASK64 = (1 << 64) - 1

# how long after resume() a paused node is running again (ms of simulated time)
WAKE_MS = 1.0


class FaultInjector(SimulationBase):
    """Mixed into :class:`~raftctl.core.sim.simulation.Simulation`: its fault methods."""

    def _other_group_leaders(self) -> tuple[str, ...]:
        """The leaders of the Raft groups other than shard 0 (Multi-Raft), for ground truth."""
        if self.shards <= 1:
            return ()
        return tuple(lead for shard, lead in self.shard_leaders().items() if shard != 0 and lead is not None)

    def _record_fault(self, kind: FaultKind, *args: Any, leader: str | None = None,
                      others: tuple[str, ...] = ()) -> None:
        """``leader``: who led (shard 0) just before this fault, ``others``: the other groups'
        leaders then (sharded), for the scorer's ground truth."""
        self.counters["faults_injected"] += 1
        self.fault_log.append((self.now, kind.value, args))
        stable = zlib.crc32(repr((kind.value, args)).encode())
        self.trace_hash = hash((self.trace_hash, int(self.now_ms * 1000), stable)) & _MASK64
        self.notify(kind.value, args=args, at=self.now, leader=leader, group_leaders=others)

    def crash(self, node_id: str) -> None:
        """Stop a node: its volatile state (and state machines) is lost; storage survives."""
        node = self.node(node_id)
        with self.lock:
            if not node.up:
                return
            leader, others = self.leader_id, self._other_group_leaders()
            node.crash()
            node.timer_at = float("inf")
            node.busy_until = 0.0
            node.paused = False
            node.held = []
            self._record_fault(FaultKind.CRASH, node_id, leader=leader, others=others)

    def pause(self, node_id: str) -> None:
        """Freeze a node (a GC pause, SIGSTOP): it keeps its state and timers but processes
        nothing and answers nobody; what is sent to it waits until :meth:`resume`."""
        node = self.node(node_id)
        with self.lock:
            if not node.up or node.paused:
                return
            leader, others = self.leader_id, self._other_group_leaders()
            node.paused = True
            self._record_fault(FaultKind.PAUSE, node_id, leader=leader, others=others)

    def resume(self, node_id: str) -> None:
        """Let a paused node carry on. It wakes ``WAKE_MS`` later (a woken process is scheduled
        again): then its due timers fire and what waited for it is handled in order. Until then
        it answers from the state it froze in, as a leader woken in an old term does."""
        node = self.node(node_id)
        with self.lock:
            if not node.paused:
                return
            node.paused = False
            self._record_fault(FaultKind.RESUME, node_id)
            held, node.held = node.held, []
            node.timer_at = float("inf")
            self.events.push(self.events.now_ms + WAKE_MS, CALL, lambda: self._wake(node, held))

    def _wake(self, node: Any, held: list[Any]) -> None:
        if not node.up or node.paused:
            node.held = held + node.held if node.paused else []
            return
        now = self.events.now_ms
        if node.next_deadline() <= now:
            node.tick(now)  # the timers that came due while it slept
        for payload in held:
            self._deliver(payload)
        for rep in node.replicas:
            if rep.flush_pending:
                node.flush(rep.group)
        self.finish(node, now)

    def restart(self, node_id: str) -> None:
        """Bring a crashed node back: it reloads its snapshots and catches up from the leaders."""
        node = self.node(node_id)
        with self.lock:
            if node.up:
                return
            self._record_fault(FaultKind.RESTART, node_id)
            self.boot(node)
            if self.checker is not None:
                for rep in node.replicas:
                    self.checker.on_restart(rep)

    def partition(self, *groups: Iterable[str]) -> None:
        """Split the network: nodes talk only within their group. Unlisted nodes form one more group.

        A group may list ``"monitor"``: the collector's source then reaches only that group's
        nodes. A partition that does not name it leaves the monitor reaching every node.
        """
        if len(groups) < 1:
            raise ValueError("partition needs at least one group of node ids")
        seen: dict[str, int] = {}
        monitor_group: int | None = None
        for gi, group in enumerate(groups):
            if isinstance(group, str):
                raise ValueError("each partition group must be a list of node ids, not a string")
            members = list(group)
            if not members:
                raise ValueError("partition groups must not be empty")
            for nid in members:
                if nid == MONITOR:
                    if monitor_group is not None:
                        raise ValueError("'monitor' appears in more than one partition group")
                    monitor_group = gi
                    continue
                self.node(nid)
                if nid in seen:
                    raise ValueError(f"node {nid!r} appears in more than one partition group")
                seen[nid] = gi
        rest = len(groups)
        with self.lock:
            leader, others = self.leader_id, self._other_group_leaders()
            self.network.groups = {nid: seen.get(nid, rest) for nid in self.node_ids}
            self.network.monitor_group = monitor_group
            self._record_fault(FaultKind.PARTITION, tuple(tuple(g) for g in groups), leader=leader,
                               others=others)

    def isolate(self, node_id: str) -> None:
        """Cut one node off from all others."""
        self.node(node_id)
        self.partition([node_id], [n for n in self.node_ids if n != node_id])

    def heal(self) -> None:
        """Remove partitions and slowness; crashed nodes stay down (see ``restart``)."""
        with self.lock:
            self.network.groups = None
            self.network.monitor_group = None
            self.network.slow = {}
            self._record_fault(FaultKind.HEAL)

    def slow(self, node_id: str, factor: float = 10.0) -> None:
        """Multiply the latency of every message to or from ``node_id`` by ``factor``."""
        self.node(node_id)
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor >= 1.0:
            raise ValueError("slow factor must be a number >= 1")
        with self.lock:
            if factor == 1.0:
                self.network.slow.pop(node_id, None)
            else:
                self.network.slow[node_id] = float(factor)
            self._record_fault(FaultKind.SLOW, node_id, float(factor))

    def set_network(self, **settings: float) -> None:
        """Change network behaviour, e.g. ``set_network(loss=0.1, duplicate=0.05, reorder=0.1)``.

        Each changed setting is recorded as the fault kind it stands for (loss, duplicate,
        reorder, latency).
        """
        with self.lock:
            for name in settings:
                if name not in NetworkConfig.__dataclass_fields__:
                    raise ValueError(f"unknown network setting {name!r}")
            candidate = NetworkConfig(**{**self.network.config.__dict__, **settings})
            candidate.validate()
            self.network.config = candidate
            for name, value in sorted(settings.items()):
                self._record_fault(NETWORK_KINDS[name], name, value)

    def corrupt_state(self, node_id: str, shard: int = 0) -> None:
        """Test hook: silently damage one node's state machine (as a bit flip would)."""
        node = self.node(node_id)
        if not 0 <= shard < self.shards:
            raise ValueError(f"shard must be in 0..{self.shards - 1}")
        with self.lock:
            if not node.up:
                raise ValueError(f"{node_id} is down; cannot corrupt its state")
            node.replicas[shard].exchange.corrupt(random.Random(self.rng.getrandbits(32)))
            self._record_fault(FaultKind.CORRUPT, node_id, shard)

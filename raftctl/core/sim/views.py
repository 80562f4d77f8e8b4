"""Status views of a Simulation: what each node reports, cluster counters, digests, convergence."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from raftctl.core.raft_messages import LEADER
from raftctl.core.sim.base import SimulationBase

if TYPE_CHECKING:
    from raftctl.core.node import Replica
    from raftctl.core.sim.simulation import ExchangeNode

__all__ = ["StatusViews"]


class StatusViews(SimulationBase):
    """Mixed into :class:`~raftctl.core.sim.simulation.Simulation`: its read-only views."""

    def leader_replica(self, group: int) -> "Replica | None":
        """The live leader of the highest term of one Raft group, or None."""
        best = None
        best_term = -1
        for node in self.nodes:
            rep = node.replicas[group]
            raft = rep.raft
            if raft is not None and raft.state == LEADER and raft.term > best_term:
                best = rep
                best_term = raft.term
        return best

    @property
    def leader_id(self) -> str | None:
        """The live leader of the highest term (of shard 0 when sharded), or None."""
        rep = self.leader_replica(0)
        return rep.node_id if rep is not None else None

    def shard_leaders(self) -> dict[int, str | None]:
        """Each shard's current leader (None while it has none)."""
        with self.lock:
            out = {}
            for g in range(self.shards):
                rep = self.leader_replica(g)
                out[g] = rep.node_id if rep is not None else None
            return out

    def status(self, node_id: str) -> dict[str, Any]:
        """A read-only snapshot of one node, cheap enough to take every second."""
        node = self.node(node_id)
        with self.lock:
            return self._status(node)

    def statuses(self) -> dict[str, dict[str, Any]]:
        """Every node's status, read consistently at one simulated instant."""
        with self.lock:
            return {node.node_id: self._status(node) for node in self.nodes}

    def _status(self, node: "ExchangeNode") -> dict[str, Any]:
        peers_connected = 0
        if node.up:
            connected = self.network.connected
            for other in self.nodes:
                if other is not node and other.up and connected(node.node_id, other.node_id):
                    peers_connected += 1
        return node.report(self.now_ms, peers_connected)

    def stats(self) -> dict[str, Any]:
        """Cluster-wide cumulative counters (docs/CONTRACTS.md)."""
        with self.lock:
            out: dict[str, Any] = dict(self.counters)
            net = self.network
            out["messages_sent"] = net.messages_sent
            out["messages_dropped"] = net.messages_dropped
            out["messages_duplicated"] = net.messages_duplicated
            out["packets_sent"] = net.packets_sent
            out["orders_pending"] = len(self.gateway.outstanding)
            out["leader_changes"] = max(0, self.counters["elections_won"] - self.shards)
            out["elections_started"] = sum(
                r.raft.elections_started for n in self.nodes for r in n.replicas if r.raft is not None
            )
            out["proposals_deduplicated"] = sum(r.proposals_deduplicated for n in self.nodes for r in n.replicas)
            out["shards"] = self.shards
            out["orders_acknowledged_by_shard"] = list(self.gateway.acked_by_shard)
            out["now"] = self.now
            return out

    def latencies_since(self, t: float, shard: int | None = None) -> list[float]:
        """Consensus latencies (ms) of orders acknowledged after simulated time ``t`` (s)."""
        with self.lock:
            return self.gateway.latencies.since(t * 1000.0, shard)

    def latencies_after(self, position: int | None = 0, shard: int | None = None) -> tuple[list[float], int]:
        """(consensus latencies (ms) of the orders acknowledged since ``position``, the position
        to pass next time; ``None``: none, only the position now): a reader that takes them at
        intervals misses none, not even those acknowledged at the very instant of its previous
        read (``latencies_since`` would, by its time cutoff)."""
        with self.lock:
            ring = self.gateway.latencies
            return ([] if position is None else ring.appended_from(position, shard)), ring.count

    def digests(self) -> dict[str, str | None]:
        """Each node's state digest (of all its shards' state machines when sharded)."""
        with self.lock:
            out: dict[str, str | None] = {}
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
                if self.leader_replica(g) is None:
                    return False
                reps = [n.replicas[g] for n in live]
                if len({r.live_raft.last_applied for r in reps}) != 1:
                    return False
                if len({r.exchange.digest() for r in reps}) != 1:
                    return False
            return True

    def is_connected(self, a: str, b: str) -> bool:
        return self.network.connected(a, b)

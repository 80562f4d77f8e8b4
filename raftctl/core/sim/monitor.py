"""The simulated source: the monitor's view of a Simulation, through its network.

The monitor is the endpoint ``monitor`` of the simulated network. A poll gets, from each node
the monitor can reach, that node's own report (``NodeHost.report``); from the others nothing but
the reason a real poll would give: ``refused`` when the process is gone (a crashed node) and
``timeout`` when nothing comes back (a paused node, or a partition between the monitor and the
node). It never reads who leads or who is up from the simulator: the collector works that out.

A poll is synchronous at the simulated instant, so ``collector.collect()`` stays one call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from raftctl.core.source import ClientView, NodeAnswer, Poll

if TYPE_CHECKING:
    from raftctl.core.sim.simulation import Simulation

__all__ = ["SimSource"]

_REQUIRED = ("nodes", "network", "lock", "now", "gateway", "counters", "node_ids")


class SimSource:
    """``sim``: the built-in cluster, seen only through its nodes' reports."""

    name = "sim"

    def __init__(self, cluster: "Simulation") -> None:
        for attribute in _REQUIRED:
            if not hasattr(cluster, attribute):
                raise ValueError(f"the sim source needs a raftctl Cluster; "
                                 f"{type(cluster).__name__} has no {attribute!r}")
        self.cluster = cluster
        self._fault_pos = 0  # faults of cluster.fault_log already handed out
        # (now_ms, latencies appended) at the last poll that handed out faults: a poll "since"
        # that instant takes the latencies appended after it by position, so an order
        # acknowledged at that same millisecond, after the poll, is not lost to a time cutoff
        self._latency_mark: tuple[float, int] | None = None

    @property
    def now(self) -> float:
        return float(self.cluster.now)

    @property
    def lock(self) -> Any:
        return self.cluster.lock

    def members(self) -> list[str]:
        return list(self.cluster.node_ids)

    def poll(self, since: float | None = None) -> Poll:
        """One poll; it hands out the faults injected since the previous poll."""
        return self._poll(since, consume=True)

    def peek(self) -> Poll:
        """A poll that hands out no faults (a look that must not take them from the next sample)."""
        return self._poll(None, consume=False)

    def _poll(self, since: float | None, consume: bool) -> Poll:
        cluster = self.cluster
        with cluster.lock:
            net = cluster.network
            now_ms = cluster.now_ms
            answers: dict[str, NodeAnswer] = {}
            for node in cluster.nodes:
                node_id = node.node_id
                if not net.monitor_reaches(node_id):
                    answers[node_id] = NodeAnswer.silent(node_id, "timeout", "no answer before the poll timeout")
                elif not node.up:
                    answers[node_id] = NodeAnswer.silent(node_id, "refused", "connection refused")
                elif node.paused:
                    answers[node_id] = NodeAnswer.silent(node_id, "timeout", "no answer before the poll timeout")
                else:
                    answers[node_id] = NodeAnswer(node_id, self._report(node, now_ms))
            gateway = cluster.gateway
            counters = cluster.counters
            t = -1.0 if since is None else float(since)
            shards = int(cluster.shards)
            ring = gateway.latencies
            mark = self._latency_mark
            if mark is not None and since is not None and t * 1000.0 == mark[0]:
                position = mark[1]

                def latencies(shard: int | None) -> list[float]:
                    return ring.appended_from(position, shard)
            else:
                def latencies(shard: int | None) -> list[float]:
                    return ring.since(t * 1000.0, shard)
            if consume:
                self._latency_mark = (now_ms, ring.count)
            client = ClientView(
                orders_submitted=int(counters["orders_submitted"]),
                orders_acknowledged=int(counters["orders_acknowledged"]),
                orders_pending=len(gateway.outstanding),
                proposals_failed=int(counters["proposals_failed"]),
                acknowledged_by_shard=list(gateway.acked_by_shard),
                pending_by_shard=_pending_by_shard(gateway.outstanding, shards) if shards > 1 else None,
                latencies_ms=latencies(None),
                shard_latencies_ms=[latencies(g) for g in range(shards)] if shards > 1 else None,
            )
            faults: list[tuple[float, str, tuple[Any, ...]]] = []
            if consume:
                log = cluster.fault_log
                faults = list(log[self._fault_pos:])
                self._fault_pos = len(log)
            return Poll(now_ms / 1000.0, answers, client, shards, faults=faults)

    def _report(self, node: Any, now_ms: float) -> dict[str, Any]:
        # peers its transport reaches: a crashed peer's port is closed; a paused one keeps its
        # connections open (as a SIGSTOPped process does), so it still counts
        cluster = self.cluster
        connected = cluster.network.connected
        peers = 0
        for other in cluster.nodes:
            if other is not node and other.up and connected(node.node_id, other.node_id):
                peers += 1
        report: dict[str, Any] = node.report(now_ms, peers)
        report.pop("up", None)
        return report

    def close(self) -> None:
        return None


def _pending_by_shard(outstanding: Mapping[tuple[int, str, int], Any], shards: int) -> list[int]:
    counts = [0] * shards
    for shard, _client, _seq in outstanding:
        counts[shard] += 1
    return counts

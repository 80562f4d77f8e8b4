"""The shard-leader balancer: spreads Raft group leaders over live nodes by leadership transfer."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from raftctl.core.sim.simulation import Simulation

__all__ = ["balance_leaders"]


def balance_leaders(sim: "Simulation") -> None:
    """One round: at most one transfer away from each node that leads more than its share."""
    live = [n for n in sim.nodes if n.up]
    if len(live) < 2:
        return
    led: dict[str, list[int]] = {n.node_id: [] for n in live}
    for g in range(sim.shards):
        rep = sim.leader_replica(g)
        if rep is None:
            return  # an election is under way somewhere; leave things alone
        led[rep.node_id].append(g)
    fair = -(-sim.shards // len(live))  # ceil
    for node_id, groups in led.items():
        if len(groups) <= fair:
            continue
        group = groups[-1]
        candidates = sorted(
            (n for n in live if n.node_id != node_id and sim.network.connected(node_id, n.node_id)),
            key=lambda n: (len(led[n.node_id]), (n.index - group) % len(sim.nodes)),
        )
        if not candidates or len(led[candidates[0].node_id]) + 1 > len(groups) - 1:
            continue
        target = candidates[0]
        node = sim.node(node_id)
        if node.transfer_leadership(group, target.node_id):
            sim.counters["leadership_transfers"] += 1
            led[target.node_id].append(group)
            groups.remove(group)
            sim.finish(node, sim.now_ms)

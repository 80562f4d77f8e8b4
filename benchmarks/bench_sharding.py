"""Multi-Raft scaling curve: committed orders per simulated second at 1, 2, 4 and 8 shards.

Usage: .venv/bin/python benchmarks/bench_sharding.py [--nodes 5] [--shards 1,2,4,8] [--seconds 3]

Nodes pay simulated CPU time per message, per entry and per client request
(``NodeCosts.realistic()``), so a leader saturates; a closed-loop workload keeps every shard
busy. Symbols are spread evenly over shards with an explicit shard map, and the cluster
balances shard leaders over the nodes. Also prints network packets vs Raft messages per
second on an idle cluster, to show heartbeat coalescing (one packet per node pair per step).
"""

from __future__ import annotations

import argparse
import time

from raftctl import Cluster, NodeCosts
from raftctl.core.workload import Workload

SYMBOLS = [f"SYM{i:02d}" for i in range(32)]


def measure(nodes: int, shards: int, seconds: float, seed: int) -> dict:
    shard_map = {s: i % shards for i, s in enumerate(SYMBOLS)}
    cluster = Cluster(node_count=nodes, seed=seed, shards=shards, shard_map=shard_map,
                      costs=NodeCosts.realistic(), snapshot_threshold=20_000)
    workload = Workload(cluster, rate=400_000.0, symbols=SYMBOLS, traders=64,
                        max_outstanding=1500 * shards)
    workload.keep_tickets = False
    cluster.run_for(3.0)  # elections and leader balancing
    acked0 = cluster.stats()["orders_acknowledged"]
    t0 = cluster.now
    wall0 = time.perf_counter()
    cluster.run_for(seconds)
    wall = time.perf_counter() - wall0
    acked = cluster.stats()["orders_acknowledged"] - acked0
    leaders = cluster.shard_leaders()
    return {
        "shards": shards,
        "per_sim_s": acked / (cluster.now - t0),
        "leader_nodes": len({v for v in leaders.values() if v}),
        "leaders": leaders,
        "wall": wall,
        "p99": sorted(cluster.latencies_since(t0))[int(0.99 * max(1, len(cluster.latencies_since(t0)) - 1))]
        if cluster.latencies_since(t0) else 0.0,
    }


def coalescing(nodes: int, shards: int, seed: int) -> tuple[float, float]:
    cluster = Cluster(node_count=nodes, seed=seed, shards=shards)
    cluster.run_for(5.0)
    before = cluster.stats()
    cluster.run_for(10.0)
    after = cluster.stats()
    return ((after["messages_sent"] - before["messages_sent"]) / 10.0,
            (after["packets_sent"] - before["packets_sent"]) / 10.0)


def main() -> None:
    parser = argparse.ArgumentParser(description="multi-Raft scaling curve")
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--shards", default="1,2,4,8")
    parser.add_argument("--seconds", type=float, default=3.0, help="simulated seconds measured per point")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    counts = [int(x) for x in args.shards.split(",")]
    costs = NodeCosts.realistic()
    print(f"{args.nodes} nodes; simulated CPU per node: {costs.client_request_us:g} µs/client request, "
          f"{costs.per_packet_us:g} µs/packet, {costs.per_message_us:g} µs/message, "
          f"{costs.per_entry_us:g} µs/entry encoded or decoded, {costs.apply_us:g} µs/entry applied; "
          f"seed {args.seed}")
    print(f"{'shards':>6} {'orders/sim-s':>13} {'x vs 1':>7} {'leader nodes':>13} {'p99 ms':>8} {'wall s':>7}")
    base = None
    for k in counts:
        r = measure(args.nodes, k, args.seconds, args.seed)
        base = base or r["per_sim_s"]
        print(f"{k:>6} {r['per_sim_s']:>13,.0f} {r['per_sim_s'] / base:>7.2f} {r['leader_nodes']:>13} "
              f"{r['p99']:>8.1f} {r['wall']:>7.1f}")
    print("target: >= 3x at 4 shards vs 1")
    print()
    print("idle cluster, heartbeats only (per simulated second):")
    print(f"{'shards':>6} {'raft messages':>14} {'packets':>9}")
    for k in counts:
        msgs, packets = coalescing(args.nodes, k, args.seed)
        print(f"{k:>6} {msgs:>14,.0f} {packets:>9,.0f}")


if __name__ == "__main__":
    main()

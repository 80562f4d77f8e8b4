"""Replicated throughput of the simulator.

Usage: .venv/bin/python benchmarks/bench_replication.py [--nodes 5] [--seconds 10]

1. Fast mode, saturating: committed (acknowledged) orders per wall-clock second through a
   5-node cluster, every node applying every order to its own matching engine.
2. Simulated-time speed at 1,000 orders/s: simulated seconds per wall second.
"""

from __future__ import annotations

import argparse
import time

from raftctl import Cluster
from raftctl.core.workload import Workload


def run(nodes: int, rate: float, sim_seconds: float, seed: int) -> tuple[float, int, float]:
    cluster = Cluster(node_count=nodes, seed=seed, snapshot_threshold=20_000)
    workload = Workload(cluster, rate=rate)
    workload.keep_tickets = False
    cluster.run_until(lambda: cluster.leader_id is not None, timeout=5.0)
    start_acked = cluster.stats()["orders_acknowledged"]
    sim0 = cluster.now
    wall0 = time.perf_counter()
    cluster.run_for(sim_seconds)
    wall = time.perf_counter() - wall0
    acked = cluster.stats()["orders_acknowledged"] - start_acked
    return wall, acked, cluster.now - sim0


def main() -> None:
    parser = argparse.ArgumentParser(description="replicated throughput of the simulator")
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0, help="simulated seconds per measurement")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--saturating-rate", type=float, default=60_000.0)
    args = parser.parse_args()

    wall, acked, sim = run(args.nodes, args.saturating_rate, min(args.seconds, 3.0), args.seed)
    print(f"fast mode, {args.nodes} nodes, offered {args.saturating_rate:,.0f} orders/s simulated:")
    print(f"  {acked:,} orders committed and applied on every node in {wall:.2f} s wall "
          f"-> {acked / wall:,.0f} committed orders per wall second (target >= 30,000)")

    wall, acked, sim = run(args.nodes, 1000.0, args.seconds, args.seed)
    print(f"simulated-time speed at 1,000 orders/s, {args.nodes} nodes:")
    print(f"  {sim:.1f} simulated s in {wall:.2f} wall s -> {sim / wall:.1f}x real time (target >= 50x); "
          f"{acked:,} orders committed")


if __name__ == "__main__":
    main()

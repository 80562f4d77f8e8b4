"""Time without a leader after the leader crashes, over many crashes in a 5-node cluster.

Usage: .venv/bin/python benchmarks/bench_election.py [--crashes 1000] [--nodes 5] [--seed 1]
Prints median / p99 / max of the leaderless gap in simulated milliseconds, measured from the
crash to the moment a new leader (of a higher term) exists, sampled every 1 ms.
"""

from __future__ import annotations

import argparse
import statistics
import time

from raftctl import Cluster


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crashes", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--prevote", choices=["on", "off"], default="on")
    args = parser.parse_args()
    cluster = Cluster(node_count=args.nodes, seed=args.seed, prevote=args.prevote == "on")
    assert cluster.run_until(lambda: cluster.leader_id is not None, timeout=5.0)
    gaps = []
    wall0 = time.perf_counter()
    for _ in range(args.crashes):
        cluster.run_for(0.3)  # steady state between crashes
        old = cluster.leader_id
        old_term = cluster.node(old).raft.term
        cluster.crash(old)
        t0 = cluster.now
        ok = cluster.run_until(
            lambda old_term=old_term: (cluster.leader_id is not None
                                       and cluster.node(cluster.leader_id).raft.term > old_term),
            timeout=10.0, step=0.001,
        )
        if not ok:
            raise SystemExit(f"no new leader within 10 s (seed {args.seed})")
        gaps.append((cluster.now - t0) * 1000.0)
        cluster.restart(old)
    wall = time.perf_counter() - wall0
    print(f"leader crashes: {len(gaps)} in a {args.nodes}-node cluster, prevote={args.prevote}, seed={args.seed}")
    print(f"time without leader (simulated ms): median {statistics.median(gaps):.0f}  "
          f"p99 {percentile(gaps, 99):.0f}  max {max(gaps):.0f}  min {min(gaps):.0f}")
    print("targets: median <= 300 ms, p99 <= 600 ms")
    print(f"wall time {wall:.1f} s")


if __name__ == "__main__":
    main()

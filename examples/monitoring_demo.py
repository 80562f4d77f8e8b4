#!/usr/bin/env python3
"""The seed's full demo through the Python API: 5 nodes, trading, faults, live metrics, web UI.

Run:  .venv/bin/python examples/monitoring_demo.py [--port 8080] [--no-browser] [--fast]

1. creates a 5-node cluster      2. starts metrics collection
3. serves the dashboard          4. opens the browser (when there is a display)
5. runs a 200-tick trading simulation (0.3 s per tick, about a minute)
6. injects failures at ticks 30, 60, 100 and 130 and heals each 18 ticks later
7. prints metrics in the terminal while the web UI shows them too

`raftctl demo` is the same demo with a live panel and a final report.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import webbrowser
from pathlib import Path

try:
    from raftctl import Cluster, DashboardServer, MetricsCollector, Workload
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from raftctl import Cluster, DashboardServer, MetricsCollector, Workload

TICK_S = 0.3
HEAL_AFTER = 18


def crash_follower(cluster):
    victim = next(n for n in cluster.node_ids if n != cluster.leader_id and cluster.status(n)["up"])
    cluster.crash(victim)
    return f"follower {victim} crashed", lambda: cluster.restart(victim)


def crash_leader(cluster):
    victim = cluster.leader_id or cluster.node_ids[0]
    cluster.crash(victim)
    return f"leader {victim} crashed", lambda: cluster.restart(victim)


def crash_majority(cluster):
    leader = cluster.leader_id
    victims = ([leader] if leader else []) + [n for n in cluster.node_ids if n != leader]
    victims = victims[: len(cluster.node_ids) // 2 + 1]
    for victim in victims:
        cluster.crash(victim)

    def heal():
        for victim in victims:
            cluster.restart(victim)

    return f"majority {', '.join(victims)} crashed (quorum lost)", heal


def isolate_leader(cluster):
    victim = cluster.leader_id or cluster.node_ids[0]
    cluster.isolate(victim)
    return f"leader {victim} cut off from the majority", cluster.heal


FAULTS = {30: crash_follower, 60: crash_leader, 100: crash_majority, 130: isolate_leader}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080, help="dashboard port (0 = any free port)")
    parser.add_argument("--ticks", type=int, default=200)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--fast", action="store_true", help="do not pace ticks to real time")
    args = parser.parse_args()
    if args.ticks < 1:
        parser.error("--ticks must be at least 1")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be 0 to 65535 (0 picks a free port)")

    cluster = Cluster(node_count=5, seed=args.seed)
    cluster.run_until(lambda: cluster.leader_id is not None, timeout=10.0)
    Workload(cluster, rate=100, seed=args.seed)
    print(f"✓ 5-node cluster created, leader: {cluster.leader_id}")

    collector = MetricsCollector(collection_interval=1.0, retention_period=300,
                                 alert_callback=lambda a: print(f"  ALERT {a['status']}: {a['name']} - {a['message']}"))
    collector.set_cluster(cluster)
    # one sample per simulated second, taken inside the simulation so it never races it
    cluster.every(1.0, lambda c: collector.collect())
    print("✓ Metrics collection started")

    dashboard = DashboardServer(collector=collector, host="127.0.0.1", port=args.port)
    try:
        dashboard.start()
    except OSError as err:
        print(f"✗ {err.strerror or err} (try --port 0)", file=sys.stderr)
        return 1
    print(f"✓ Dashboard at {dashboard.url}/")
    if not args.no_browser and (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                                or sys.platform in ("darwin", "win32")):
        webbrowser.open(dashboard.url + "/")

    heals: dict[int, list] = {}
    started = time.monotonic()
    try:
        for tick in range(1, args.ticks + 1):
            for heal in heals.pop(tick, []):
                heal()
                print(f"[tick {tick}] fault healed")
            if tick in FAULTS:
                text, heal = FAULTS[tick](cluster)
                heals.setdefault(min(tick + HEAL_AFTER, args.ticks), []).append(heal)
                print(f"[tick {tick}] {text}")
            cluster.run_for(TICK_S)
            if tick % 10 == 0:
                c = collector.latest()["cluster"]
                p = collector.latest()["performance"]
                # avg_latency_ms is null while nothing commits (a quorum loss): no latency, not 0
                latency = "—" if p["avg_latency_ms"] is None else f"{p['avg_latency_ms']:.1f} ms"
                print(f"[tick {tick}] Healthy: {c['healthy_nodes']}/{c['cluster_size']}, Leader: {c['leader_node']}, "
                      f"Status: {c['health_status'].lower()}, {p['throughput_ops']:.0f} ops/s, {latency}")
            if not args.fast:
                time.sleep(max(0.0, started + tick * TICK_S - time.monotonic()))
        for pending in heals.values():
            for heal in pending:
                heal()
        cluster.workload.paused = True
        converged = cluster.run_until(cluster.converged, timeout=30.0)
        collector.collect()
        final = collector.latest()["cluster"]
        print(f"✓ Final: {final['health_status']}, leader {final['leader_node']}, "
              f"state digests {'equal' if converged else 'NOT equal'}")
        return 0 if converged and final["health_status"] == "HEALTHY" else 1
    except KeyboardInterrupt:
        return 130
    finally:
        dashboard.stop()
        collector.stop()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The seed's "Production Usage" snippet, runnable: custom thresholds, an alert hook, a dashboard.

Run:  .venv/bin/python examples/production_usage.py [--port 9090] [--seconds 20]

The seed listens on host '0.0.0.0', which exposes the dashboard on every network interface;
this example keeps 127.0.0.1 unless you pass --host 0.0.0.0 on purpose.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

try:
    from raftctl import Cluster, Workload
    from raftctl.monitoring import DashboardServer, MetricsCollector
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from raftctl import Cluster, Workload
    from raftctl.monitoring import DashboardServer, MetricsCollector


def send_to_pagerduty(alert: dict) -> None:
    """Stand-in for a real pager integration: called once at firing, once at resolution."""
    print(f"PAGE {alert['status'].upper()}: [{alert['severity']}] {alert['name']}: {alert['message']}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description="The seed's production usage snippet")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9090, help="0 picks a free port")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to run (wall clock)")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    if not 0 <= args.port <= 65535:
        parser.error("--port must be 0 to 65535 (0 picks a free port)")
    if not args.seconds > 0:
        parser.error("--seconds must be a positive number of seconds")

    cluster = Cluster(node_count=5, seed=args.seed)
    cluster.run_until(lambda: cluster.leader_id is not None, timeout=10.0)
    Workload(cluster, rate=100, seed=args.seed)
    cluster.start(speed=1.0)
    exchanges = cluster.nodes  # the seed's "exchanges": the cluster's nodes

    # --- the seed's snippet -------------------------------------------------------------
    # Create collector with custom settings
    collector = MetricsCollector(
        collection_interval=1.0,      # Collect every second
        retention_period=3600,         # Keep 1 hour
        alert_callback=send_to_pagerduty  # Custom alert handler
    )

    # Set alert thresholds
    collector.alert_thresholds = {
        'max_latency_ms': 500,        # Alert if latency > 500ms
        'min_healthy_nodes': 3,       # Alert if < 3 nodes healthy
        'max_term_difference': 2,     # Alert if term spread > 2
    }

    # Start monitoring
    collector.set_cluster(exchanges)
    collector.start()

    # Start dashboard on custom port
    dashboard = DashboardServer(
        collector=collector,
        host=args.host,  # the seed uses '0.0.0.0' (all interfaces); keep it local unless needed
        port=args.port
    )
    try:
        dashboard.start()
    except OSError as err:
        print(f"cannot start the dashboard: {err.strerror or err} (try --port 0)", file=sys.stderr)
        collector.stop()
        cluster.stop()
        return 1
    # --------------------------------------------------------------------------------------

    print(f"Dashboard: {dashboard.url}/  (running {args.seconds:g} s)", flush=True)
    third = args.seconds / 3
    try:
        time.sleep(third)
        victims = [n for n in cluster.node_ids if n != cluster.leader_id][:3]
        print(f"crashing {', '.join(victims)} to show the alert hook", flush=True)
        for victim in victims:
            cluster.crash(victim)
        time.sleep(third)
        for victim in victims:
            cluster.restart(victim)
        time.sleep(third)
    except KeyboardInterrupt:
        pass
    finally:
        dashboard.stop()
        collector.stop()
        cluster.stop()
    latest = collector.latest() or {}
    print(f"final health: {(latest.get('cluster') or {}).get('health_status')}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

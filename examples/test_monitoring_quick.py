#!/usr/bin/env python3
"""Quick monitoring check: a 3-node cluster for about 5 seconds, the collector and the REST API.

Run:  .venv/bin/python examples/test_monitoring_quick.py
Exits 0 when every check passes, 1 otherwise. The dashboard takes a free port, so this never
clashes with a running `raftctl serve` or demo.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from pathlib import Path

try:
    from raftctl import Cluster, DashboardServer, MetricsCollector, Workload
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from raftctl import Cluster, DashboardServer, MetricsCollector, Workload

SECONDS = 5
SEED = 1


def wait_for(predicate, timeout: float) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` wall seconds pass."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:  # /api/health answers 503 when UNHEALTHY
        return err.code, json.loads(err.read())


def main() -> int:
    failures: list[str] = []

    def check(ok: bool, text: str) -> None:
        print(("✓ " if ok else "✗ ") + text, flush=True)
        if not ok:
            failures.append(text)

    cluster = Cluster(node_count=3, seed=SEED)
    elected = cluster.run_until(lambda: cluster.leader_id is not None, timeout=5.0)
    check(elected, f"Cluster created, leader: {cluster.leader_id}")
    if not elected:
        return 1
    Workload(cluster, rate=50, seed=SEED)

    collector = MetricsCollector(collection_interval=1.0, retention_period=300)
    collector.set_cluster(cluster)
    cluster.start(speed=1.0)  # the simulation follows the wall clock, like a real cluster
    collector.start()
    dashboard = DashboardServer(collector=collector, host="127.0.0.1", port=0)
    try:
        check(wait_for(lambda: collector.latest() is not None, 5.0), "Metrics collector started")
        seen = 0
        statuses = []
        for index in range(1, SECONDS + 1):
            if not wait_for(lambda seen=seen: collector.version > seen, 3.0):
                check(False, f"sample {index} arrived")
                break
            sample = collector.latest()
            seen = sample["sequence"]
            c = sample["cluster"]
            statuses.append(c["health_status"])
            print(f"[{index}] Healthy: {c['healthy_nodes']}/{c['cluster_size']}, "
                  f"Leader: {c['leader_node']}, Status: {c['health_status'].lower()}", flush=True)
        latest = collector.latest()
        check(bool(statuses) and set(statuses) == {"HEALTHY"}, "Cluster healthy in every sample")
        check(latest["performance"]["total_orders"] > 0, f"Orders flowing: {latest['performance']['total_orders']}")

        dashboard.start()
        status, health = get_json(dashboard.url + "/api/health")
        check(status == 200 and health.get("status") == "HEALTHY", f"Health API: {str(health.get('status')).lower()}")
        status, summary = get_json(dashboard.url + "/api/summary")
        nodes = len(summary.get("nodes") or {})
        check(status == 200 and nodes == 3, f"Summary API: {nodes} nodes")
        status, history = get_json(dashboard.url + "/api/metrics/history?duration=60")
        samples = history.get("samples") if isinstance(history, dict) else history
        check(status == 200 and len(samples or []) >= SECONDS, f"History API: {len(samples or [])} samples")
    finally:
        dashboard.stop()
        collector.stop()
        cluster.stop()

    if failures:
        print(f"✗ MONITORING TEST FAILED ({len(failures)} check(s))", flush=True)
        return 1
    print("✓ MONITORING TEST COMPLETE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

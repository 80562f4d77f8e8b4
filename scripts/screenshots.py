"""Make the README's dashboard screenshots (docs/dashboard-*.png) from a seeded simulated run.

Usage: .venv/bin/python scripts/screenshots.py [--out docs] [--seed 11]

The run: 5 nodes at 100 orders/s, one follower slowed, then the leader crashed; the page is shot
a few seconds after the election, when the strips hold entries of both terms, the slow follower
is behind, the crashed leader is DOWN with its last-seen values and the timeline shows the fault
and the election. Headless Chromium from Debian (``chromium`` on PATH), driven by Playwright.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raftctl import Cluster, MetricsCollector  # noqa: E402
from raftctl.core.workload import Workload  # noqa: E402
from raftctl.dashboard.server import DashboardServer  # noqa: E402


def run(seed: int) -> MetricsCollector:
    cluster = Cluster(node_count=5, seed=seed)
    Workload(cluster, rate=100.0, seed=seed)
    collector = MetricsCollector(collection_interval=1.0, retention_period=300)
    collector.set_cluster(cluster)
    if not cluster.run_until(lambda: cluster.leader_id is not None, timeout=10.0):
        raise SystemExit(f"seed {seed}: no leader in 10 s")

    def step(seconds: float = 1.0) -> None:
        cluster.run_for(seconds)
        collector.collect()

    for _ in range(40):
        step()
    leader = cluster.leader_id
    slow = next(n for n in cluster.node_ids if n != leader)
    cluster.slow(slow, 30)
    for _ in range(4):
        step()
    cluster.crash(leader)
    if not cluster.run_until(lambda: cluster.leader_id not in (None, leader), timeout=10.0):
        raise SystemExit(f"seed {seed}: no new leader after the crash")
    step(0.02)  # a few entries of the new term: the strips show both terms
    return collector


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs", help="directory for the PNG files")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("error: chromium is not on PATH (apt-get install chromium)", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    collector = run(args.seed)
    server = DashboardServer(collector, port=0).start()
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, headless=True,
                                                 args=["--no-sandbox", "--disable-gpu"])
            try:
                for name, width in (("desktop", 1400), ("400px", 400)):
                    page = browser.new_page(viewport={"width": width, "height": 1000})
                    page.goto(server.url + "/?refresh=1")
                    page.wait_for_selector(".raft-node .term-band", timeout=10_000)
                    page.wait_for_timeout(500)  # charts drawn
                    page.screenshot(path=str(out / f"dashboard-{name}.png"), full_page=True)
                    if width == 400:
                        page.locator("#raft-panel").screenshot(path=str(out / "dashboard-raft-400px.png"))
                    page.close()
            finally:
                browser.close()
    finally:
        server.stop()
    for name in ("dashboard-desktop.png", "dashboard-400px.png", "dashboard-raft-400px.png"):
        print(out / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

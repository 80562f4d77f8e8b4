"""`raftctl watch`'s footer gives the sample's own time: against a replay that is the
recording's, not the moment watch fetched it (it looked live)."""

from __future__ import annotations

import time

from rich.console import Console

from raftctl import Cluster, MetricsCollector
from raftctl.commands.watch import Watcher

SEED = 3


def test_the_footer_shows_when_the_sample_was_taken_not_when_it_was_fetched():
    cluster = Cluster(node_count=3, seed=SEED)
    cluster.run_for(2.0)
    collector = MetricsCollector()
    collector.set_cluster(cluster)
    recorded = time.time() - 5 * 3600.0 - 17.0  # a recording from hours ago
    sample = dict(collector.collect(), timestamp=recorded)
    watcher = Watcher("http://127.0.0.1:1", 1.0)
    watcher.summary, watcher.updated_at = sample, time.time()
    watcher.history.append(sample)
    console = Console(width=120, record=True, force_terminal=False)
    console.print(watcher.frame(120))
    text = console.export_text()
    assert "sample of " + time.strftime("%H:%M:%S", time.localtime(recorded)) in text, f"seed={SEED}"
    assert "updated " + time.strftime("%H:%M", time.localtime(watcher.updated_at)) not in text

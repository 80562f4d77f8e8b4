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


def test_a_short_terminal_keeps_the_alerts_and_the_footer():
    """At 80x24 with 4 shards watch showed the node and shard tables, then "...": no alerts (one
    was firing) and no footer; at 80x30 in a quorum loss 2 of 7 alerts were gone, uncounted. The
    shard table and the performance lines give way first, then the alerts say how many more."""
    from raftctl.commands._common import sharded_symbols
    from raftctl.commands.watch import _frame_height

    symbols, shard_map = sharded_symbols(4)
    cluster = Cluster(node_count=5, seed=SEED, shards=4, shard_map=shard_map)
    from raftctl import Workload

    Workload(cluster, rate=50.0, seed=SEED, symbols=symbols)
    collector = MetricsCollector(collection_interval=1.0)
    collector.set_cluster(cluster)
    cluster.run_for(3.0)
    collector.collect()
    for node_id in ("node1", "node2", "node3"):
        cluster.crash(node_id)
    for _ in range(4):
        cluster.run_for(1.0)
        sample = collector.collect()
    firing = [a for a in sample["alerts"] if a["status"] == "firing"]
    assert len(firing) >= 4, f"seed={SEED}: {[a['name'] for a in firing]}"
    watcher = Watcher("http://127.0.0.1:1", 1.0)
    watcher.summary, watcher.updated_at = sample, time.time()
    assert _frame_height(watcher.frame(80), 80) > 24  # the whole frame does not fit
    for height in (24, 30, 40):
        frame = watcher.frame(80, height)
        console = Console(width=80, height=height - 1, record=True, force_terminal=False)
        console.print(frame)
        # what a terminal of that height shows of it: its first lines (rich cuts the rest)
        text = "\n".join(console.export_text().splitlines()[:height - 1])
        assert "Ctrl-C quits" in text, (height, text)  # the footer
        shown = [a["name"] for a in firing if a["name"] in text]
        assert shown, (height, text)
        if len(shown) < len(firing):
            assert f"+{len(firing) - len(shown)} more alert" in text, (height, text)
        if height == 24:
            # the alerts and the footer before the node table, which the terminal cuts
            assert "─ nodes ─" not in text or text.index("─ alerts ─") < text.index("─ nodes ─"), text
    assert "hidden" not in (lambda c: (c.print(watcher.frame(80, 200)), c.export_text())[1])(
        Console(width=80, record=True, force_terminal=False))


def test_a_lost_server_leaves_a_frame_marked_stale_not_a_bright_healthy():
    """After the server died, watch kept its last frame: a bright green HEALTHY, no age, under a
    red "disconnected" line. It now says STALE, and what the last sample said and when."""
    cluster = Cluster(node_count=3, seed=SEED)
    cluster.run_for(2.0)
    collector = MetricsCollector()
    collector.set_cluster(cluster)
    sample = collector.collect()
    assert sample["cluster"]["health_status"] == "HEALTHY", f"seed={SEED}"
    watcher = Watcher("http://127.0.0.1:1", 1.0)
    # sampled 43 s ago, fetched 42 s ago: the banner says the sample's time, as the footer does
    sample = {**sample, "timestamp": time.time() - 43.0}
    watcher.summary, watcher.updated_at = sample, time.time() - 42.0
    watcher.history.append(sample)
    assert not watcher.poll()  # nothing listens on port 1
    console = Console(width=120, record=True, force_terminal=False)
    console.print(watcher.frame(120))
    text = console.export_text()
    assert "disconnected, retrying" in text and " STALE   leader node" in text, text
    assert "HEALTHY   leader" not in text and "the last sample, HEALTHY as of" in text and "(43 s ago)" in text, text
    import re
    said = re.search(r"HEALTHY as of[\s│]*(\d\d:\d\d:\d\d)", text).group(1)
    assert f"sample of {said}" in text, text
    assert watcher.summary["cluster"]["health_status"] == "HEALTHY"  # the sample itself is left as it was

"""`--shards` on the CLI, as subprocesses: the demo's shard report, bad values, serve, summary, watch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import pytest

from raftctl import Cluster, DashboardServer, MetricsCollector, Workload
from raftctl.commands._common import sharded_symbols

from cli_helpers import RAFTCTL, run_cli

SEED = 3


run = run_cli


def test_demo_with_four_shards_reports_every_shard():
    proc = run("demo", "--fast", "--no-browser", "--no-dashboard", "--shards", "4", "--json",
               "--ticks", "120", "--seed", str(SEED))
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["ok"] is True and report["shard_count"] == 4, f"seed {SEED}"
    shards = report["shards"]
    assert [s["shard"] for s in shards] == [0, 1, 2, 3]
    for shard in shards:
        assert shard["leader"] is not None and shard["digests_equal"] is True, f"seed {SEED}: {shard}"
        assert shard["digest"] and shard["health_status"] == "HEALTHY", f"seed {SEED}: {shard}"
        assert shard["orders_acknowledged"] > 0 and shard["last_applied"] == shard["commit_index"] > 0
        assert shard["leader_changes"] >= 0
    assert sum(s["orders_acknowledged"] for s in shards) == report["orders"]["acknowledged"]
    # progress lines keep the seed's format and add the shard leadership
    assert "[1] Healthy: 5/5, Leader: node" in proc.stderr and ", Shards led: 4/4" in proc.stderr
    # every node holds the same state in every shard at the end
    final = report["final"]
    assert final["digests_equal"] is True and len(set(final["digests"].values())) == 1
    assert all(len(applied) == 4 for applied in final["last_applied"].values())
    # the leader crash takes down shard 0's leader; the report says which shards it led
    crash = next(f for f in report["faults"] if f["kind"] == "crash_leader")
    assert "leads shard" in crash["note"] and "0" in crash["note"], crash
    # the quorum loss leaves groups leaderless: one alert per kind, listing the shards
    shard_alerts = [a for a in report["alerts"] if "shards" in a]
    assert shard_alerts and all(set(a["shards"]) <= {0, 1, 2, 3} for a in shard_alerts), report["alerts"]
    episodes = [(a["name"], a["fired_at"]) for a in shard_alerts]
    assert len(episodes) == len(set(episodes)), report["alerts"]
    # per-node alerts name their node in the report (and its Alerts table)
    downs = [a for a in report["alerts"] if a["name"] == "node_down"]
    assert downs and all(str(a.get("node", "")).startswith("node") for a in downs), report["alerts"]


def test_demo_human_report_has_a_shards_table():
    proc = run("demo", "--fast", "--no-dashboard", "--shards", "3", "--ticks", "40", "--seed", str(SEED))
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    out = proc.stdout
    assert "3 shards" in out and "Shards" in out and "RESULT: OK" in out
    assert "shards led, state digests equal in every shard" in out


@pytest.mark.parametrize("command", ["demo", "serve"])
@pytest.mark.parametrize("value", ["0", "abc", "65"])
def test_bad_shards_value_is_a_one_line_usage_error(command, value):
    proc = run(command, "--shards", value, "--port", "0")
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--shards" in lines[0], proc.stderr
    assert proc.stdout == ""


@pytest.fixture
def sharded_server():
    symbols, shard_map = sharded_symbols(4)
    # three nodes for four groups: some node leads two of them
    cluster = Cluster(node_count=3, seed=SEED, shards=4, shard_map=shard_map)
    Workload(cluster, rate=80, seed=SEED, symbols=symbols)
    collector = MetricsCollector(collection_interval=1.0, retention_period=300)
    collector.set_cluster(cluster)
    assert cluster.run_until(lambda: None not in cluster.shard_leaders().values(), timeout=10.0), f"seed {SEED}"
    for _ in range(4):
        cluster.run_for(1.0)
        collector.collect()
    server = DashboardServer(collector=collector, host="127.0.0.1", port=0).start()
    try:
        yield cluster, server
    finally:
        server.stop()
        collector.stop()


def _table_rows(text: str, first_cell: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.replace("┃", "│").split("│")]
        while cells and not cells[0]:  # borders of the table and of watch's panel around it
            cells.pop(0)
        while cells and not cells[-1]:
            cells.pop()
        if cells and cells[0] == first_cell:
            rows.append(cells)
    return rows


def test_summary_and_watch_show_the_shards_table(sharded_server):
    cluster, server = sharded_server
    leaders = cluster.shard_leaders()
    for args in (("summary",), ("watch", "--once")):
        proc = run(*args, "--url", server.url)
        assert proc.returncode == 0, proc.stderr
        assert "shards led 4/4" in proc.stdout, proc.stdout
        headers = _table_rows(proc.stdout, "shard")
        assert headers and headers[0][:3] == ["shard", "leader", "term"], proc.stdout
        for shard, leader in leaders.items():
            row = _table_rows(proc.stdout, str(shard))
            assert row and row[0][1] == leader and row[0][5] == "HEALTHY", (shard, proc.stdout)
        assert max(len([g for g in leaders if leaders[g] == n]) for n in cluster.node_ids) >= 2, leaders
        # the node table lists the shards each node leads, and says whose figures it shows
        assert "figures: each node's shard 0 replica (every shard's below)" in proc.stdout, proc.stdout
        node_header = _table_rows(proc.stdout, "node")[0]
        leads_at = node_header.index("leads")
        for node_id in cluster.node_ids:
            led = sorted(g for g, leader in leaders.items() if leader == node_id)
            row = _table_rows(proc.stdout, node_id)[0]
            assert row[leads_at] == (",".join(map(str, led)) or "-"), (node_id, proc.stdout)


def test_serve_with_shards_publishes_them_and_stops_on_sigterm():
    proc = subprocess.Popen([*RAFTCTL, "serve", "--port", "0", "--interval", "0.2", "--shards", "2",
                             "--seed", str(SEED)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NO_COLOR": "1"})
    try:
        found: list[str] = []

        def reader() -> None:
            for line in proc.stderr:
                if "dashboard at" in line:
                    found.append(line)
                    return

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        thread.join(30)
        assert found, "serve did not announce its dashboard within 30 s"
        assert "2 shards" in found[0]
        url = found[0].split("dashboard at ", 1)[1].split("/ ", 1)[0].rstrip("/")
        deadline = time.monotonic() + 20
        while True:  # bounded wait until both groups have committed orders
            summary = run("summary", "--url", url, "--json")
            doc = json.loads(summary.stdout) if summary.returncode == 0 else {}
            shards = doc.get("shards") or []
            if len(shards) == 2 and all(s["leader"] and s["commit_index"] > 0 for s in shards):
                break
            assert time.monotonic() < deadline, (summary.stderr, doc)
            time.sleep(0.1)
        assert doc["cluster"]["shard_count"] == 2
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

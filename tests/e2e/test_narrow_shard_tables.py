"""Sharded tables at 80 columns: every header and every value whole, nothing cropped.

The node table of a sharded document (with its ``leads`` column and a "DOWN (refused)" state)
ran past watch's panel at 80 columns, cropping ``lag`` to "l" and losing its values; the shards
table and the demo's Shards table shortened headers and values with an ellipsis ("sha…",
"UNHEALT…", "leader chang…"). A column that gives way at a narrow width is named under its
table; at 200 columns every column is there and nothing is named.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from typing import Any

from rich.console import Console

from raftctl.commands import render
from raftctl.commands.demo_run import shard_report_table
from raftctl.runtime.ports import free_ports

from cli_helpers import RAFTCTL

NODE_HEADERS = ("node", "state", "leads", "term", "commit", "applied", "log", "peers", "lag")
SHARD_HEADERS = ("shard", "leader", "term", "commit", "applied", "health", "aligned", "ops/s", "latency")
REPORT_HEADERS = ("shard", "leader", "term", "commit", "applied", "orders", "leader changes", "health", "digests")
NOTE = "not shown at this width:"


def sharded_doc(big: bool = False) -> dict[str, Any]:
    """Five nodes over four shards, two DOWN with reasons, a leaderless UNHEALTHY shard that is
    not aligned; ``big``: six-digit indexes, four-digit throughput and latency."""
    index = 123_456 if big else 296
    nodes = {}
    for i in range(1, 6):
        nodes[f"node{i}"] = {"state": "FOLLOWER", "commit_index": index, "last_applied": index,
                             "log_length": index + 1, "peers_connected": 4, "term": 12, "up": True,
                             "replication_lag": 0, "state_digest": "ab12cd34ef56ab12", "down_reason": None}
    for node_id, reason in (("node1", "timeout"), ("node2", "refused")):
        nodes[node_id].update(state="DOWN", up=False, peers_connected=None, replication_lag=None,
                              state_digest=None, down_reason=reason)
    shards = []
    for shard, (leader, health) in enumerate((("node4", "DEGRADED"), (None, "UNHEALTHY"),
                                              ("node3", "DEGRADED"), ("node5", "DEGRADED"))):
        shards.append({"shard": shard, "leader": leader, "term": 3 + shard, "commit_index": index + shard,
                       "last_applied": index + shard, "health_status": health, "consensus_aligned": shard != 1,
                       "throughput_ops": 1234.5 if big else 26.0, "avg_latency_ms": 1366.7 if big else 5.3})
    return {
        "sequence": 9, "sim_time": 9.0, "timestamp": 1.0,
        "cluster": {"cluster_size": 5, "healthy_nodes": 3, "leader_node": "node4", "health_status": "UNHEALTHY",
                    "current_term": 12, "consensus_aligned": False, "has_quorum": True, "leader_changes": 4,
                    "health_reasons": [], "nodes_reached": 3},
        "performance": {"total_orders": 1000, "total_trades": 500, "throughput_ops": 100.0, "avg_latency_ms": 5.0},
        "nodes": nodes, "shards": shards, "alerts": [],
    }


def report_shards(doc: dict[str, Any], applied_lags: bool = False) -> list[dict[str, Any]]:
    """The demo report's shard entries for ``doc``'s shards (one with DIFFERENT digests)."""
    return [{"shard": s["shard"], "leader": s["leader"], "term": s["term"], "commit_index": s["commit_index"],
             "last_applied": s["last_applied"] - (1 if applied_lags and s["shard"] == 0 else 0),
             "orders_acknowledged": s["commit_index"] - 4, "leader_changes": 13, "health_status": s["health_status"],
             "digests_equal": s["shard"] != 2} for s in doc["shards"]]


def text_of(renderable: Any, width: int) -> str:
    console = Console(width=width, record=True, color_system=None, file=open(os.devnull, "w"))
    console.print(renderable)
    return console.export_text()


def header_rows(text: str) -> list[list[str]]:
    """The headers of every table in ``text``, a two-line header joined ("leader changes")."""
    tables: list[list[str]] = []
    block: list[list[str]] = []
    for line in text.splitlines():
        if "┃" in line:
            block.append([cell.strip() for cell in line.split("┃")[1:-1]])
        elif block:
            tables.append([" ".join(part for part in parts if part) for parts in zip(*block, strict=True)])
            block = []
    return tables


def left_out(text: str) -> str:
    """What the notes under the tables name (a note wrapped by a panel joined up again)."""
    notes = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if NOTE in line:
            tail = [line.split(NOTE, 1)[1]]
            for more in lines[i + 1:]:
                inner = more.strip().strip("│").strip()
                if not inner or inner[0] in "┏━─╰" or NOTE in inner:
                    break
                tail.append(inner)
            notes.append(" ".join(part.strip().strip("│").strip() for part in tail))
    return " | ".join(notes)


def assert_whole(text: str, width: int, expected: tuple[str, ...]) -> list[str]:
    """Nothing past ``width``, no ellipsis, each header of ``expected`` shown whole or named in a
    note; returns the headers shown."""
    assert max(len(line) for line in text.splitlines()) <= width, text
    assert "…" not in text, text
    tables = header_rows(text)
    shown = next((headers for headers in tables if headers[:2] == list(expected[:2])), None)
    assert shown is not None, (expected, tables, text)
    notes = left_out(text)
    for name in expected:
        assert name in shown or re.search(rf"(^|[ ,]){re.escape(name)}\b", notes), (name, shown, notes, text)
    assert set(shown) <= {*expected, "digest"}, (shown, text)
    return shown


def cells_of(text: str, first: str) -> list[str]:
    """The cells of the row whose first cell is ``first`` (the panel's borders dropped)."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("│")]
        while cells and not cells[0]:
            cells.pop(0)
        while cells and not cells[-1]:
            cells.pop()
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in\n{text}")


def test_watch_panel_at_80_columns_keeps_lag_and_every_header_of_the_node_table():
    for big in (False, True):
        doc = sharded_doc(big)
        text = text_of(render.dashboard(doc, [], title="raftctl watch"), 80)
        shown = assert_whole(text, 80, NODE_HEADERS)
        for name in ("node", "state", "term", "commit", "applied", "lag"):
            assert name in shown, (name, shown, text)
        # the tester's case: lag was cut to "l" and its values lost beside a "DOWN (refused)"
        for node_id in ("node3", "node4", "node5"):
            row = cells_of(text, node_id)
            assert row[1] == "LEADER" and row[shown.index("lag")] == "0", (row, text)
        assert cells_of(text, "node2")[shown.index("lag")] == "—", text
        # whole, on one line or (when the room is short) on two
        assert cells_of(text, "node2")[1] in ("DOWN (refused)", "DOWN") and "(refused)" in text, text
        assert cells_of(text, "node1")[1] in ("DOWN (timeout)", "DOWN") and "(timeout)" in text, text
        if big:
            assert text.count("123,456") >= 10, text
        # the shards table in the same panel, whole too
        assert_whole(text, 80, SHARD_HEADERS)
        assert "UNHEALTHY" in text and cells_of(text, "1")[:2] == ["1", "none"], text


def test_node_table_of_a_sharded_summary_in_a_pipe_at_80_columns():
    for big in (False, True):
        text = text_of(render.node_table(sharded_doc(big), title=None, max_width=80), 80)
        shown = assert_whole(text, 80, NODE_HEADERS)
        assert "lag" in shown and "leads" in shown, (shown, text)
        assert ["node4", "LEADER", "0"] == cells_of(text, "node4")[:3], text


def test_shard_table_at_80_columns_cuts_no_header_and_no_value():
    for big in (False, True):
        doc = sharded_doc(big)
        # as `raftctl summary` prints it (no max_width: the width it is printed at) and as told
        for told in ({}, {"max_width": 80}):
            text = text_of(render.shard_table(doc, title=None, **told), 80)
            shown = assert_whole(text, 80, SHARD_HEADERS)
            for name in ("shard", "leader", "commit", "health", "aligned"):
                assert name in shown, (name, shown, text)
            unhealthy = cells_of(text, "1")
            assert unhealthy[1] == "none" and "UNHEALTHY" in unhealthy and "NO" in unhealthy, text
            assert [cells_of(text, str(s))[1] for s in (0, 2, 3)] == ["node4", "node3", "node5"], text
            assert cells_of(text, "0")[shown.index("health")] == "DEGRADED", text


def test_demo_shards_report_at_80_columns_cuts_no_header_and_no_value():
    for big in (False, True):
        for applied_lags in (False, True):
            shards = report_shards(sharded_doc(big), applied_lags)
            text = text_of(shard_report_table(shards), 80)
            shown = assert_whole(text, 80, REPORT_HEADERS)
            for name in ("shard", "leader", "commit", "leader changes", "health", "digests"):
                assert name in shown, (name, shown, text)
            if applied_lags:  # applied differs from commit somewhere: it stays
                assert "applied" in shown, (shown, text)
            elif "applied" not in shown:
                assert "applied (equal to commit in every shard)" in left_out(text), text
            assert "UNHEALTHY" in text and "DIFFERENT" in text and text.count("equal") >= 3, text
            assert cells_of(text, "0")[shown.index("leader changes")] == "13", text


def test_200_columns_show_every_column_and_name_nothing():
    doc = sharded_doc(big=True)
    frame = text_of(render.dashboard(doc, [], title="raftctl watch"), 200)
    assert "…" not in frame and NOTE not in frame, frame
    tables = header_rows(frame)
    assert [*NODE_HEADERS, "digest"] in tables and list(SHARD_HEADERS) in tables, tables
    assert "DOWN (refused)" in frame and "ab12cd34ef" in frame and "1,366.7 ms" in frame
    for view, headers in ((render.node_table(doc, title=None, max_width=200), [*NODE_HEADERS, "digest"]),
                          (render.shard_table(doc, title=None), list(SHARD_HEADERS)),
                          (shard_report_table(report_shards(doc)), list(REPORT_HEADERS))):
        text = text_of(view, 200)
        assert "…" not in text and NOTE not in text, text
        assert header_rows(text) == [headers], text


def test_non_sharded_tables_keep_their_columns_at_80_columns():
    doc = sharded_doc()
    del doc["shards"]
    text = text_of(render.dashboard(doc, [], title="raftctl watch"), 80)
    assert "…" not in text and NOTE not in text, text
    assert [h for h in NODE_HEADERS if h != "leads"] in header_rows(text), text
    assert "DOWN (refused)" in text and "DOWN (timeout)" in text


# -- the real CLI ---------------------------------------------------------------------------

def _env80() -> dict[str, str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "80"}
    env.pop("RAFTCTL_URL", None)
    return env


def test_summary_of_a_sharded_serve_in_a_pipe_at_80_columns():
    port = free_ports(1)[0]
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([*RAFTCTL, "serve", "--shards", "4", "--port", str(port), "--interval", "0.2"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env80())
    try:
        deadline = time.monotonic() + 30
        while True:  # until every shard has a leader in a few samples
            try:
                with urllib.request.urlopen(url + "/api/summary", timeout=2) as answer:
                    doc = json.loads(answer.read())
                if doc.get("sequence", 0) >= 3 and all(s.get("leader") for s in doc.get("shards") or [None]):
                    break
            except OSError:
                pass
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "serve --shards 4 gave no sample with four led shards"
            time.sleep(0.2)
        proc = subprocess.run([*RAFTCTL, "summary", "--url", url], capture_output=True, text=True, timeout=60,
                              env=_env80())
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        out = proc.stdout
        assert "shards led 4/4" in out, out
        assert_whole(out, 80, NODE_HEADERS)
        shown = assert_whole(out, 80, SHARD_HEADERS)
        for shard in range(4):
            row = cells_of(out, str(shard))
            assert re.fullmatch(r"node\d", row[1]) and row[shown.index("health")] == "HEALTHY", out
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stderr:
            server.stderr.close()


def test_demo_report_with_four_shards_at_80_columns():
    proc = subprocess.run([*RAFTCTL, "demo", "--shards", "4", "--ticks", "60", "--fast", "--no-dashboard",
                           "--no-browser", "--seed", "42"], capture_output=True, text=True, timeout=120, env=_env80())
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr[-2000:]
    out = proc.stdout
    report = out[out.index("\nShards"):]
    shown = assert_whole(report, 80, REPORT_HEADERS)
    assert "leader changes" in shown and "health" in shown and "digests" in shown, report
    for shard in range(4):
        row = cells_of(report, str(shard))
        assert row[shown.index("health")] == "HEALTHY" and row[shown.index("digests")] == "equal", report

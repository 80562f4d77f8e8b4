"""The terminal views (summary, watch, the demo panel) show what nodes report (issue 11).

A stale leader is amber and never styled as the leader, a DOWN node carries its reason, and a
monitor that reaches only part of the cluster says so; at 80 columns none of it is cut.
"""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console

from raftctl.commands import render


def sample(reached: int = 5, size: int = 5) -> dict[str, Any]:
    nodes = {}
    for i in range(1, size + 1):
        nodes[f"node{i}"] = {"state": "FOLLOWER", "commit_index": 1200, "last_applied": 1200, "log_length": 1201,
                             "peers_connected": size - 1, "term": 4, "up": True, "replication_lag": 0,
                             "last_contact_ms": 10.0, "state_digest": "ab12cd34ef56", "leader_id": f"node{size}",
                             "down_reason": None}
    nodes[f"node{size}"]["state"] = "LEADER"
    return {
        "timestamp": 1.0, "sim_time": 1.0, "sequence": 1,
        "cluster": {"cluster_size": size, "healthy_nodes": size, "leader_node": f"node{size}",
                    "leader": f"node{size}", "health_status": "HEALTHY", "current_term": 4,
                    "consensus_aligned": True, "has_quorum": True, "leader_changes": 1, "health_reasons": [],
                    "nodes_reached": reached},
        "performance": {"total_orders": 10, "total_trades": 2, "throughput_ops": 5.0, "avg_latency_ms": None,
                        "p50_latency_ms": None, "p99_latency_ms": None, "commit_apply_lag": 0},
        "nodes": nodes, "alerts": [], "collector": {"collection_interval": 1.0},
    }


def degraded() -> dict[str, Any]:
    doc = sample(reached=3)
    doc["nodes"]["node1"].update(state="DOWN", up=False, term=0, peers_connected=0, replication_lag=None,
                                 last_contact_ms=None, state_digest=None, leader_id=None, down_reason="timeout")
    doc["nodes"]["node2"].update(state="DOWN", up=False, term=0, peers_connected=0, replication_lag=None,
                                 last_contact_ms=None, state_digest=None, leader_id=None, down_reason="refused")
    doc["nodes"]["node3"].update(state="STALE_LEADER", term=3, leader_id="node3")
    doc["cluster"].update(health_status="DEGRADED",
                          health_reasons=["node_down:node1", "node_down:node2", "stale_leader:node3"])
    return doc


def text_of(renderable: Any, width: int = 80) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def rows_by_node(text: str) -> dict[str, list[str]]:
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.replace("┃", "│").split("│")]
        cells = [c for c in cells if c]
        if cells and re.fullmatch(r"node\d+", cells[0]):
            rows[cells[0]] = cells
    return rows


def test_state_labels():
    doc = degraded()
    assert render.state_label(doc["nodes"]["node1"]) == "DOWN (timeout)"
    assert render.state_label(doc["nodes"]["node2"]) == "DOWN (refused)"
    assert render.state_label(doc["nodes"]["node3"]) == "STALE LEADER"
    assert render.state_label(doc["nodes"]["node5"]) == "LEADER"
    # an older server's document: DOWN without a reason, and no up flag
    assert render.state_label({"state": "DOWN"}) == "DOWN"
    assert render.state_label({"state": "FOLLOWER", "up": False}) == "DOWN"


def test_node_table_at_80_columns_keeps_names_and_states_whole():
    for view in (render.node_table(degraded(), title=None),
                 render.dashboard(degraded(), [], title="raftctl watch")):
        rows = rows_by_node(text_of(view, 80))
        assert {n: r[1] for n, r in rows.items()} == {
            "node1": "DOWN (timeout)", "node2": "DOWN (refused)", "node3": "STALE LEADER",
            "node4": "FOLLOWER", "node5": "LEADER"}


def test_stale_leader_is_amber_and_never_the_leader_style():
    table = render.node_table(degraded(), title=None)
    styles = dict(zip(sorted(degraded()["nodes"]), (row.style for row in table.rows)))
    assert styles["node5"] == render.STATE_STYLE["LEADER"] == "bold cyan"
    assert styles["node3"] == "bold yellow"
    assert styles["node1"] == styles["node2"] == "red"
    console = Console(width=80, record=True, force_terminal=True, color_system="standard")
    console.print(table)
    html = console.export_html(inline_styles=True)
    stale_line = next(line for line in html.splitlines() if "STALE LEADER" in line)
    assert "#808000" in stale_line or "yellow" in stale_line  # standard-colour yellow
    assert "#008080" not in stale_line  # cyan, the leader's


def test_monitor_reach_line_only_when_some_node_is_not_reached():
    assert "monitor reaches" not in text_of(render.health_header(sample(reached=5)))
    assert render.monitor_reach(sample(reached=5)) is None
    header = text_of(render.health_header(sample(reached=2)))
    assert "monitor reaches 2/5 nodes" in header
    assert render.monitor_reach(sample(reached=4)) == (4, 5)
    # an older document without nodes_reached: nothing claimed
    doc = sample()
    del doc["cluster"]["nodes_reached"]
    assert render.monitor_reach(doc) is None
    assert "monitor reaches" not in text_of(render.dashboard(doc, []))
    frame = text_of(render.dashboard(degraded(), [], title="raftctl watch"), 80)
    assert "monitor reaches 3/5 nodes" in frame


def test_monitor_reach_below_a_majority_is_red_above_it_amber():
    below = render.health_header(sample(reached=2))
    above = render.health_header(sample(reached=4))

    def style_of(text: Any, needle: str) -> str:
        start = text.plain.index(needle)
        return " ".join(str(span.style) for span in text.spans if span.start <= start < span.end)

    assert "red" in style_of(below, "monitor reaches")
    assert "yellow" in style_of(above, "monitor reaches") and "red" not in style_of(above, "monitor reaches")


def test_quorum_is_unknown_not_held_when_no_majority_answers_the_monitor() -> None:
    # has_quorum is False only on evidence (refused polls); two silent nodes of three are not
    # evidence, but the header must not say "yes" for a cluster the monitor cannot see
    blind = sample(reached=2, size=5)
    assert "quorum unknown" in text_of(render.health_header(blind))
    assert "quorum yes" in text_of(render.health_header(sample(reached=3, size=5)))
    lost = sample(reached=2, size=5)
    lost["cluster"]["has_quorum"] = False
    assert "quorum LOST" in text_of(render.health_header(lost))


def test_aligned_is_not_claimed_when_no_node_reports_a_state_digest() -> None:
    # etcd publishes no state digest: consensus_aligned stays true (no divergence seen), but the
    # header said "aligned yes" as if the replicas had been compared
    compared = sample()
    assert "aligned yes" in text_of(render.health_header(compared))
    unchecked = sample()
    for node in unchecked["nodes"].values():
        node["state_digest"] = None
    header = text_of(render.health_header(unchecked))
    assert "aligned n/a" in header and "aligned yes" not in header
    diverged = sample()
    diverged["cluster"]["consensus_aligned"] = False
    assert "aligned NO" in text_of(render.health_header(diverged))
    # a source that reports digests keeps its word while some nodes show none (DOWN, no report yet)
    one = sample()
    for node_id, node in one["nodes"].items():
        if node_id != "node1":
            node["state_digest"] = None
    assert "aligned yes" in text_of(render.health_header(one))


def test_one_latency_is_shown_without_percentiles() -> None:
    # etcd measures one probe read per interval: "p50 / p99 2.2 / 2.2 ms" read as a distribution
    doc = sample()
    doc["performance"].update(avg_latency_ms=2.2, p50_latency_ms=2.2, p99_latency_ms=2.2, latency_count=1)
    text = text_of(render.performance_lines(doc, []))
    assert "n/a (1 measured)" in text and "2.2 / 2.2" not in text
    doc["performance"].update(p99_latency_ms=9.0, latency_count=40)
    assert "2.2 / 9.0 ms" in text_of(render.performance_lines(doc, []))


def test_the_same_reason_of_many_shards_is_told_once():
    """16 shards in a quorum loss gave 35 reasons: watch spent 12 lines on them and alerts said
    '+33 more', hiding that three nodes were down."""
    from raftctl.commands.alerts import _reasons
    from raftctl.commands.render import reasons_line

    raw = ["no_leader", "quorum_lost", "node_down:node1"] + [
        f"shard{i}:{kind}" for i in range(1, 16) for kind in ("no_leader", "quorum_lost")] + ["shard7:commit_stalled"]
    assert reasons_line(raw) == ("no_leader; quorum_lost; node_down:node1; shards 1-15: no_leader; "
                                 "shards 1-15: quorum_lost; shard 7: commit_stalled")
    assert reasons_line(["shard1:no_leader", "shard3:no_leader", "shard4:no_leader"]) == "shards 1, 3-4: no_leader"
    assert _reasons({"cluster": {"health_reasons": raw}}, "UNHEALTHY") == [
        "no leader", "quorum lost", "node1 down", "no leader in shards 1-15", "quorum lost in shards 1-15",
        "commit stalled in shard 7"]

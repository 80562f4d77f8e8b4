"""`watch` and the demo panel at 80 and 200 columns: nothing cut, event lines kept (issue 15, part 4)."""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console
from rich.text import Text

from raftctl.commands import render


def wide_sample() -> dict[str, Any]:
    """Five nodes, two DOWN with reasons, six-digit indexes, wide latency figures, an alert firing."""
    nodes = {}
    for i in range(1, 6):
        nodes[f"node{i}"] = {"state": "FOLLOWER", "commit_index": 123_456, "last_applied": 123_456,
                             "log_length": 12_345, "peers_connected": 4, "term": 12, "up": True,
                             "replication_lag": 0, "state_digest": "ab12cd34ef56ab12", "down_reason": None}
    nodes["node5"]["state"] = "LEADER"
    for node_id, reason in (("node1", "timeout"), ("node2", "refused")):
        nodes[node_id].update(state="DOWN", up=False, peers_connected=None, replication_lag=None,
                              state_digest=None, down_reason=reason)
    return {
        "sequence": 9, "sim_time": 9.0, "timestamp": 1.0,
        "cluster": {"cluster_size": 5, "healthy_nodes": 3, "leader_node": "node5", "health_status": "DEGRADED",
                    "current_term": 12, "consensus_aligned": True, "has_quorum": True, "leader_changes": 4,
                    "health_reasons": ["node_down:node1", "node_down:node2"], "nodes_reached": 3},
        "performance": {"total_orders": 1_234_567, "total_trades": 654_321, "throughput_ops": 1234.5,
                        "avg_latency_ms": 1366.7, "p50_latency_ms": 1271.9, "p99_latency_ms": 3381.9},
        "nodes": nodes,
        "alerts": [{"name": "node_down", "severity": "warning", "status": "firing",
                    "message": "node1 does not answer the monitor (timeout)"}],
    }


def history() -> list[dict[str, Any]]:
    return [{"performance": {"throughput_ops": 100.0 + i, "avg_latency_ms": 5.0 + i * 50}} for i in range(60)]


EVENTS = ["tick 36: the leader crashes: node4", "tick 37: alert firing: node_down (warning)"]


def frame_text(width: int) -> str:
    extra = Text("\n".join(EVENTS))
    view = render.dashboard(wide_sample(), history(), title="raftctl demo · 5 nodes", width=60, extra=extra)
    console = Console(width=width, record=True, color_system=None, file=open("/dev/null", "w"))
    console.print(view)
    return console.export_text()


def test_80_columns_cut_nothing_and_keep_the_events():
    text = frame_text(80)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in text, text  # no cell, header or figure ends in an ellipsis
    for node_id, state in (("node1", "DOWN (timeout)"), ("node2", "DOWN (refused)"), ("node5", "LEADER")):
        row = next(line for line in lines if f"│ {node_id} " in line)
        assert state in row, row
    header = next(line for line in lines if " node " in line and " state " in line)
    for name in ("term", "commit", "applied", "log", "peers", "lag"):
        assert f" {name} " in header, header
    assert "123,456" in text and "1,271.9 / 3,381.9 ms" in text
    assert re.search(r"max 2,9\d\d\.\d │", text)  # the sparkline shortened, its "max" whole
    for event in EVENTS:
        assert event in text
    assert "digest" not in text  # what gave way at 80 columns


def test_200_columns_show_the_digest_too():
    text = frame_text(200)
    assert "digest" in text and "ab12cd34ef" in text
    assert "…" not in text
    for event in EVENTS:
        assert event in text


def test_the_check_catches_a_table_that_does_not_fit():
    """Without the room it has (max_width), the node table keeps the digest at 80 columns and so
    runs past the edge (its numbers are never cut): the checks above see it."""
    table = render.node_table(wide_sample(), title=None)
    console = Console(width=80, record=True, color_system=None, file=open("/dev/null", "w"))
    console.print(table)
    text = console.export_text()
    assert "123,456" in text and "…" not in text  # the numbers are whole...
    assert " digest " not in text and "ab12cd34ef" not in text  # ...and the digest falls off the edge


def test_summary_in_a_pipe_fits_80_columns_and_cuts_no_number():
    """`raftctl summary | cat`: the table gets the console's width, so the digest gives way, not
    the commit indexes (they read "100,8…" with a DOWN node's wider state)."""
    console = Console(width=80, record=True, color_system=None, file=open("/dev/null", "w"))
    console.print(render.node_table(wide_sample(), title=None, max_width=console.width))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80 and "…" not in text
    assert text.count("123,456") == 10 and text.count("12,345") == 5


def test_a_real_campaign_row_wraps_under_its_value_on_a_terminal_and_stays_one_line_in_a_pipe():
    from raftctl.commands.chaos import _row

    value = ("100.00% (8/8 incidents of 2 s or more seen within 2 s: node_down 3/3, isolated 1/1, "
             "leader_loss 4/4)")
    for width in (60, 80, 120):
        lines = _row("detection recall", value, width).splitlines()
        assert all(len(line) <= width for line in lines), (width, lines)
        assert lines[0].startswith("detection recall ") and all(line.startswith(" " * 25) for line in lines[1:])
        assert " ".join(" ".join(lines).split()) == "detection recall " + value  # nothing lost or cut
    assert _row("detection recall", value, 0) == f"{'detection recall':<24} {value}\n"


def test_no_digest_column_when_no_node_reports_one():
    # etcd publishes no state digest: a column that can only be empty is left out at any width
    doc = wide_sample()
    for node in doc["nodes"].values():
        node["state_digest"] = None
    console = Console(width=200, record=True, color_system=None, file=open("/dev/null", "w"))
    console.print(render.node_table(doc, max_width=200))
    text = console.export_text()
    assert "digest" not in text and " lag " in text, text


def test_the_header_moves_leader_changes_to_an_indented_line_only_when_it_does_not_fit():
    narrow, wide = frame_text(80).splitlines(), frame_text(120).splitlines()
    assert any(line.startswith("│   leader changes 4 ") for line in narrow), "\n".join(narrow[:4])
    assert any("quorum yes  leader changes 4" in line for line in wide), "\n".join(wide[:4])
    console = Console(width=80, record=True, color_system=None, file=open("/dev/null", "w"))
    console.print(render.health_header(wide_sample(), max_width=80))
    assert console.export_text().splitlines()[1] == "  leader changes 4"


def test_narrow_terminals_lose_whole_columns_named_under_the_table_never_cut_ones():
    """Down to 40 columns the node table fits: columns give way whole (applied, term, lag after
    log and peers), each named in the note under it; the header breaks between items only."""
    headers = ["node", "state", "term", "commit", "applied", "log", "peers", "lag"]
    for width in (40, 44, 50, 56, 60, 70):
        console = Console(width=width, record=True, color_system=None, file=open("/dev/null", "w"))
        console.print(render.node_table(wide_sample(), title=None, max_width=width))
        text = console.export_text()
        lines = text.splitlines()
        assert max(len(line) for line in lines) <= width, f"{width}:\n{text}"
        table = [line for line in lines if line.startswith(("┃", "│"))]
        assert all(line.rstrip().endswith(("┃", "│")) for line in table), f"{width}: cut on the right\n{text}"
        shown = [h for h in headers if f" {h} " in table[0]]
        note = " ".join(" ".join(line for line in lines if not line.startswith(("┏", "┃", "┡", "│", "└"))).split())
        note = note.replace("DOWN rows show what each node last reported", "")
        for header in headers:
            assert (header in shown) != (re.search(rf"\b{header}\b", note) is not None), f"{width}: {header}\n{text}"
        assert {"node", "state", "commit"} <= set(shown), f"{width}\n{text}"
        console = Console(width=width, record=True, color_system=None, file=open("/dev/null", "w"))
        console.print(render.health_header(wide_sample(), max_width=width))
        header = console.export_text()
        assert max(len(line) for line in header.splitlines()) <= width, f"{width}:\n{header}"
        for item in ("leader node5", "term 12", "healthy 3/5", "aligned yes", "quorum yes", "leader changes 4"):
            assert item in header, f"{width}: {item!r} split\n{header}"


def test_down_rows_are_said_to_show_what_each_node_last_reported():
    """A DOWN node's figures are its last answer's, not current ones: the table says so, and
    says nothing when no DOWN node has figures (never answered) or none is DOWN."""
    def caption(doc):
        console = Console(width=120, record=True, color_system=None, file=open("/dev/null", "w"))
        console.print(render.node_table(doc, title=None, max_width=120))
        return console.export_text()

    assert "DOWN rows show what each node last reported" in caption(wide_sample())
    never = wide_sample()
    for node_id in ("node1", "node2"):
        never["nodes"][node_id].update(commit_index=None, last_applied=None, log_length=None, term=None)
    assert "last reported" not in caption(never)
    healthy = wide_sample()
    for node_id in ("node1", "node2"):
        healthy["nodes"][node_id].update(state="FOLLOWER", up=True, down_reason=None)
    assert "last reported" not in caption(healthy)

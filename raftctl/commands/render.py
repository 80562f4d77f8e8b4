"""Pure rendering of sample documents (the /api/summary shape) for the terminal.

Each function takes plain data and returns a rich renderable or a string, so the live views
(`watch`, `demo`) just rebuild them on every refresh and tests can check them directly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from raftctl.core.measures import quorum_size

SPARK_CHARS = "▁▂▃▄▅▆▇█"
HEALTH_STYLE = {"HEALTHY": "bold green", "DEGRADED": "bold yellow", "UNHEALTHY": "bold red"}
# a stale leader (says LEADER in an old term, the reports back another) is amber, never the leader's cyan
STATE_STYLE = {"LEADER": "bold cyan", "FOLLOWER": "", "CANDIDATE": "yellow", "DOWN": "red",
               "STALE_LEADER": "bold yellow"}
STATE_LABEL = {"STALE_LEADER": "STALE LEADER"}  # upper case, like the states beside it
SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow"}


def sparkline(values: Sequence[float | None], width: int = 40) -> str:
    """Unicode block sparkline of the last ``width`` values, scaled from 0 to their maximum.

    Missing values (None / NaN) show as a blank so gaps in the data stay visible.
    """
    tail = list(values)[-width:]
    clean: list[float] = [v for v in tail if v is not None and _is_number(v)]
    if not clean:
        return ""
    top = max(clean)
    out = []
    for value in tail:
        if value is None or not _is_number(value):
            out.append(" ")
        elif top <= 0:
            out.append(SPARK_CHARS[0])
        else:
            index = int(round((max(value, 0.0) / top) * (len(SPARK_CHARS) - 1)))
            out.append(SPARK_CHARS[index])
    return "".join(out)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def fmt_num(value: Any, digits: int = 1, unit: str = "") -> str:
    """Format a number for a table cell; '—' for missing values (and then no unit)."""
    if not _is_number(value):
        return "—"
    if isinstance(value, int):
        return f"{value:,}{unit}"
    return f"{value:,.{digits}f}{unit}"


def plain_line(summary: dict[str, Any], index: int) -> str:
    """The seed's progress line: ``[1] Healthy: 3/3, Leader: node1, Status: healthy``."""
    cluster = summary.get("cluster") or {}
    leader = cluster.get("leader_node") or cluster.get("leader") or "none"
    status = str(cluster.get("health_status", "UNKNOWN")).lower()
    line = (
        f"[{index}] Healthy: {cluster.get('healthy_nodes', '?')}/{cluster.get('cluster_size', '?')}, "
        f"Leader: {leader}, Status: {status}"
    )
    shards = summary.get("shards")
    if isinstance(shards, list) and shards:
        # the seed's fields stay first and unchanged (Leader is shard 0's), so parsers keep working
        led = sum(1 for doc in shards if isinstance(doc, dict) and doc.get("leader"))
        line += f", Shards led: {led}/{len(shards)}"
    return line


def state_label(node: dict[str, Any]) -> str:
    """How a node's state is shown: ``DOWN (timeout)`` with its reason, ``STALE LEADER``, else the state."""
    state = str(node.get("state", "?"))
    if node.get("up") is False or state == "DOWN":
        reason = node.get("down_reason")
        return f"DOWN ({reason})" if reason else "DOWN"
    return STATE_LABEL.get(state, state)


def monitor_reach(summary: dict[str, Any]) -> tuple[int, int] | None:
    """``(nodes_reached, cluster_size)`` when the monitor reached fewer nodes than the cluster has."""
    cluster = summary.get("cluster") or {}
    reached, size = cluster.get("nodes_reached"), cluster.get("cluster_size")
    if not isinstance(reached, (int, float)) or not isinstance(size, (int, float)):
        return None
    if not _is_number(reached) or not _is_number(size) or reached >= size:
        return None
    return int(reached), int(size)


def firing_alerts(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Alerts of the document whose status is firing (critical first, then by name)."""
    alerts = [a for a in summary.get("alerts") or [] if isinstance(a, dict) and a.get("status", "firing") == "firing"]
    alerts.sort(key=lambda a: (a.get("severity") != "critical", str(a.get("name"))))
    return alerts


def digests_reported(summary: dict[str, Any]) -> bool:
    """Whether some node of the document reports a state digest: only then can the monitor compare
    replicas (``consensus_aligned`` true without one means no divergence was seen, not agreement)."""
    nodes = summary.get("nodes")
    if not isinstance(nodes, dict) or not nodes:
        return True  # a document without node detail: nothing says digests are missing
    return any(isinstance(node, dict) and node.get("state_digest") is not None for node in nodes.values())


def health_header(summary: dict[str, Any], max_width: int | None = None):
    """One line: health, leader, term, healthy n/N, aligned, quorum, leader changes; given
    ``max_width``, a line breaks between two items (never inside one, ``aligned`` apart from its
    ``yes``), the next line indented."""
    from rich.text import Text

    cluster = summary.get("cluster") or {}
    status = str(cluster.get("health_status", "UNKNOWN"))
    items: list[list[tuple[str, str]]] = [[(f" {status} ", HEALTH_STYLE.get(status, "bold") + " reverse")]]
    shards = summary.get("shards") if isinstance(summary.get("shards"), list) else None
    if shards:
        led = sum(1 for doc in shards if isinstance(doc, dict) and doc.get("leader"))
        items.append([("shards led ", ""), (f"{led}/{len(shards)}", "bold" if led == len(shards) else "bold red")])
    else:
        items.append([("leader ", ""), (str(cluster.get("leader_node") or "none"), "bold")])
    items.append([("term ", ""), (str(cluster.get("current_term", "-")), "bold")])
    items.append([("healthy ", ""), (f"{cluster.get('healthy_nodes', '?')}/{cluster.get('cluster_size', '?')}",
                                     "bold")])
    aligned = cluster.get("consensus_aligned")
    if aligned and not digests_reported(summary):
        # nothing to compare (etcd publishes no state digest): no divergence seen is no "yes"
        items.append([("aligned ", ""), ("n/a", "dim")])
    else:
        items.append([("aligned ", ""), ("yes" if aligned else "NO", "green" if aligned else "bold red")])
    reach = monitor_reach(summary)
    if "has_quorum" in cluster:
        quorum = cluster.get("has_quorum")
        if quorum is None or (quorum and reach is not None and reach[0] < quorum_size(reach[1])):
            # not lost on evidence, but the monitor sees no majority answer: it cannot say "yes"
            items.append([("quorum ", ""), ("unknown", "yellow")])
        else:
            items.append([("quorum ", ""), ("yes" if quorum else "LOST", "green" if quorum else "bold red")])
    if "leader_changes" in cluster:
        items.append([(f"leader changes {cluster.get('leader_changes')}", "")])
    text = Text()
    column = 0
    for i, item in enumerate(items):
        size = sum(len(part) for part, _ in item)
        if i:
            # wrapped by the terminal a line would start at the edge, or split an item: break
            # between items instead, the next line indented
            if max_width is not None and column + 2 + size > max_width:
                text.append("\n  ")
                column = 2
            else:
                text.append("  ")
                column += 2
        for part, style in item:
            text.append(part, style=style or None)
        column += size
    if reach is not None:
        reached, size = reach
        # below a majority it cannot vouch for the cluster (health says monitor_reach)
        text.append(f"\n  monitor reaches {reached}/{size} nodes",
                    style="bold red" if reached < quorum_size(size) else "yellow")
    reasons = cluster.get("health_reasons") or []
    if reasons:
        text.append("\n  " + reasons_line(reasons), style="dim")
    return text


def shard_ranges(shards: list[int]) -> str:
    """[1, 2, 3, 5] -> '1-3, 5'."""
    parts: list[str] = []
    ordered = sorted(set(shards))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ", ".join(parts)


def grouped_reasons(reasons: list[Any]) -> list[tuple[str, list[int]]]:
    """Health reasons with the same reason of several shards told once: ``shard3:no_leader``,
    ``shard4:no_leader`` -> ``("no_leader", [3, 4])``; others as they are, ``(reason, [])``; in
    the order each first appears (16 shards without a leader made 35 lines of reasons)."""
    out: dict[str, list[int]] = {}
    for raw in reasons:
        reason = str(raw)
        head, _, rest = reason.partition(":")
        if rest and head.startswith("shard") and head[5:].isdigit():
            out.setdefault("shard:" + rest, []).append(int(head[5:]))
        else:
            out.setdefault(reason, [])
    return [(key[len("shard:"):] if shards else key, shards) for key, shards in out.items()]


def reasons_line(reasons: list[Any]) -> str:
    """``no_leader; quorum_lost; shards 1-15: no_leader``."""
    return "; ".join(f"shard{'s' if len(shards) > 1 else ''} {shard_ranges(shards)}: {reason}" if shards else reason
                     for reason, shards in grouped_reasons(reasons))


def shard_leads(summary: dict[str, Any]) -> dict[str, list[int]] | None:
    """{node: [shards it leads]} of a sharded document; None when the document has no shards."""
    shards = summary.get("shards")
    if not isinstance(shards, list) or not shards:
        return None
    leads: dict[str, list[Any]] = {}
    for doc in shards:
        if isinstance(doc, dict) and doc.get("leader") is not None:
            leads.setdefault(str(doc["leader"]), []).append(doc.get("shard"))
    return leads


# A table laid out for the room it has: columns as (key, header, justify), rows as {key: cell}
# (a str or a rich Text; a "\n" starts a second line), and the steps that make it narrower, tried
# in order until it fits; each returns the new columns and rows and what the reader is told.
Columns = list[tuple[str, str, str]]
Rows = list[dict[str, Any]]


def _cell_width(cell: Any) -> int:
    from rich.cells import cell_len

    plain = getattr(cell, "plain", None)
    text = plain if isinstance(plain, str) else str(cell)
    return max((cell_len(line) for line in text.split("\n")), default=0)


def _column_widths(columns: Columns, rows: Rows) -> list[int]:
    return [max([_cell_width(header), *(_cell_width(row.get(key, "")) for row in rows)])
            for key, header, _ in columns]


def _table_width(columns: Columns, rows: Rows) -> int:
    # each column its widest cell or header, plus padding and one border each, plus one
    return sum(_column_widths(columns, rows)) + 3 * len(columns) + 1


def fit_columns(columns: Columns, rows: Rows, max_width: int | None, steps: Sequence[Any]) -> tuple[Columns, Rows, list[str]]:
    """Apply ``steps`` (each ``(columns, rows) -> (columns, rows, note or None)``) one after
    another until the table fits ``max_width``; the notes of the steps taken, in order."""
    notes: list[str] = []
    for step in steps:
        if max_width is None or _table_width(columns, rows) <= max_width:
            break
        columns, rows, note = step(columns, rows)
        if note:
            notes.append(note)
    return columns, rows, notes


def drop_column(key: str, note: str | None = None):
    """A step: leave out column ``key`` (the note names it, or says where else it is)."""
    def step(columns: Columns, rows: Rows):
        if not any(k == key for k, _, _ in columns):
            return columns, rows, None
        return [c for c in columns if c[0] != key], rows, (key if note is None else note)
    return step


def header_as(key: str, header: str):
    """A step: another (shorter, or two-line) header for column ``key``."""
    def step(columns: Columns, rows: Rows):
        return [(k, header if k == key else h, j) for k, h, j in columns], rows, None
    return step


def two_lines(key: str):
    """A step: the cells of column ``key`` break at their first space onto a second line."""
    def step(columns: Columns, rows: Rows):
        out = []
        for row in rows:
            cell = row.get(key)
            if isinstance(cell, str) and " " in cell:
                row = {**row, key: cell.replace(" ", "\n", 1)}
            out.append(row)
        return columns, out, None
    return step


def left_out_note(notes: list[str]) -> str | None:
    return f"not shown at this width: {', '.join(notes)}" if notes else None


def build_table(columns: Columns, rows: Rows, title: str | None, caption: str | None,
                 styles: Sequence[str] | None = None, keep: dict[str, int] | None = None):
    """A rich Table of the fitted columns; every column keeps its widest cell (``keep`` may give
    a column less), so Rich never shortens a cell with an ellipsis."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", expand=False, header_style="bold",
                  caption=caption, caption_justify="left", caption_style="dim")
    for (key, header, justify), width in zip(columns, _column_widths(columns, rows), strict=True):
        table.add_column(header, justify=justify, no_wrap=True,  # type: ignore[arg-type]
                         min_width=(keep or {}).get(key, width))
    for i, row in enumerate(rows):
        table.add_row(*(row.get(key, "") for key, _, _ in columns), style=styles[i] if styles else None)
    return table


def node_table(summary: dict[str, Any], title: str | None = "Nodes", max_width: int | None = None):
    """The per-node table (state, term, commit, applied, log, peers, lag, digest).

    In a sharded document a ``leads`` column lists the shards each node leads, and a node that
    leads any shard shows as LEADER (term, indexes and digest stay shard 0's). Given
    ``max_width`` (the room the table has), the digest column is left out when the table would
    not fit with it, or when no node reports a digest (etcd); if it still does not fit, the log
    column gives way, then a two-word state (``DOWN (refused)``) takes two lines, then the leads,
    peers, applied, term and lag columns give way, those left out named under the table: node
    names, states, numbers and every header stay whole at 80 columns, and no column is cut at 40.
    """
    leads = shard_leads(summary)
    columns: Columns = [(name, name, justify) for name, justify in (
        ("node", "left"), ("state", "left"), ("term", "right"), ("commit", "right"), ("applied", "right"),
        ("log", "right"), ("peers", "right"), ("lag", "right"), ("digest", "left"))]
    if leads is not None:
        columns.insert(2, ("leads", "leads", "left"))
    nodes = summary.get("nodes") or {}
    rows: Rows = []
    styles: list[str] = []
    for node_id in sorted(nodes, key=_node_sort_key):
        node = nodes[node_id] or {}
        state = str(node.get("state", "?"))
        up = node.get("up", state != "DOWN")
        led = (leads or {}).get(node_id) if up else None
        shown = state_label(node)
        if led:
            state = shown = "LEADER"
        styles.append(STATE_STYLE.get(state, "") if up else "red")
        rows.append({"node": node_id, "state": shown,
                     "leads": ",".join(str(g) for g in led) if led else "-",
                     "term": fmt_num(node.get("term")), "commit": fmt_num(node.get("commit_index")),
                     "applied": fmt_num(node.get("last_applied")), "log": fmt_num(node.get("log_length")),
                     "peers": fmt_num(node.get("peers_connected")), "lag": fmt_num(node.get("replication_lag")),
                     "digest": str(node.get("state_digest") or "")[:10]})
    if not any(row["digest"] for row in rows):  # etcd publishes none: no empty column
        columns = [c for c in columns if c[0] != "digest"]
    # the digest gives way first, unannounced ("aligned" says whether the digests agree); then the
    # log length (shard 0's, in a sharded document), before a state on two lines and the leads,
    # which the shards table repeats
    # below 60 columns the applied index, the term and the lag give way too, in that order: the
    # node, its state and its commit index are the last to go
    steps = [drop_column("digest", ""), drop_column("log"), two_lines("state"),
             drop_column("leads", "leads (see the shards table)"), drop_column("peers"),
             drop_column("applied"), drop_column("term"), drop_column("lag")]
    columns, rows, notes = fit_columns(columns, rows, max_width, steps)
    caption = left_out_note(notes)
    if leads is not None:  # the figures are one replica's: say which, or they read as the node's
        said = "figures: each node's shard 0 replica (every shard's below)"
        caption = said if caption is None else said + "\n" + caption
    if any(not (nodes[row["node"]] or {}).get("up", True) and row["commit"] != "—" for row in rows):
        # a DOWN node's figures are those of its last answer (the monitor cannot see further)
        last = "DOWN rows show what each node last reported"
        caption = last if caption is None else caption + "\n" + last
    # node names, states, numbers and headers are never cut (which node is down and how far
    # along each is are the point); only the digest, without max_width, may be
    return build_table(columns, rows, title, caption, styles, keep={"digest": len("digest")})


class FitWidth:
    """A renderable built for the width it gets at render time (``build(max_width)``)."""

    def __init__(self, build: Any) -> None:
        self.build = build

    def __rich_console__(self, console: Any, options: Any):
        yield self.build(options.max_width)

    def __rich_measure__(self, console: Any, options: Any):
        from rich.measure import Measurement

        return Measurement.get(console, options, self.build(options.max_width))


def shard_table(summary: dict[str, Any], title: str | None = "Shards", max_width: int | None = None):
    """Per-shard table of a sharded document (leader, term, commit, applied, health, throughput).

    Laid out for ``max_width``, or, without it, for the width it is rendered at: when the table
    would not fit, the per-shard latency, then ops/s (the cluster's are in the performance
    lines), then term and applied give way, named under the table, so that every header and
    every value stays whole (at 80 columns: "UNHEALTHY", never "UNHEALT…").
    """
    if max_width is None:
        return FitWidth(lambda width: shard_table(summary, title, max_width=width))
    from rich.text import Text

    columns: Columns = [(name, name, justify) for name, justify in (
        ("shard", "right"), ("leader", "left"), ("term", "right"), ("commit", "right"), ("applied", "right"),
        ("health", "left"), ("aligned", "left"), ("ops/s", "right"), ("latency", "right"))]
    rows: Rows = []
    for doc in summary.get("shards") or []:
        if not isinstance(doc, dict):
            continue
        health = str(doc.get("health_status", "?"))
        leader = doc.get("leader")
        rows.append({
            "shard": str(doc.get("shard", "?")),
            "leader": Text(str(leader), style="bold cyan") if leader else Text("none", style="bold red"),
            "term": fmt_num(doc.get("term")),
            "commit": fmt_num(doc.get("commit_index")) if leader else "-",  # no leader: no authoritative index
            "applied": fmt_num(doc.get("last_applied")) if leader else "-",
            "health": Text(health, style=HEALTH_STYLE.get(health, "")),
            "aligned": Text("yes", style="green") if doc.get("consensus_aligned") else Text("NO", style="bold red"),
            "ops/s": fmt_num(doc.get("throughput_ops"), 1),
            "latency": fmt_num(doc.get("avg_latency_ms"), 1, " ms"),
        })
    steps = [drop_column("latency"), drop_column("ops/s"), drop_column("term"), drop_column("applied")]
    columns, rows, notes = fit_columns(columns, rows, max_width, steps)
    return build_table(columns, rows, title, left_out_note(notes))


def _node_sort_key(node_id: str) -> tuple[str, int]:
    # node2 before node10
    stem = node_id.rstrip("0123456789")
    digits = node_id[len(stem):]
    return (stem, int(digits) if digits else -1)


def performance_lines(summary: dict[str, Any], history: Iterable[dict[str, Any]] = (), width: int = 40,
                      max_width: int | None = None):
    """Orders, trades, throughput and latency, with sparklines over ``history`` when given.

    ``width`` is the sparklines' length; given ``max_width`` (the room the lines have) they are
    shortened so that labels, values and the "max" after them stay whole.
    """
    from rich.table import Table

    perf = summary.get("performance") or {}
    samples = list(history)
    throughput = [(s.get("performance") or {}).get("throughput_ops") for s in samples]
    latency = [(s.get("performance") or {}).get("avg_latency_ms") for s in samples]
    rows = [
        ("orders / trades", f"{fmt_num(perf.get('total_orders'))} / {fmt_num(perf.get('total_trades'))}", None),
        ("throughput", fmt_num(perf.get("throughput_ops"), 1, " ops/s"), (throughput, "cyan")),
        ("latency avg", fmt_num(perf.get("avg_latency_ms"), 1, " ms"), (latency, "magenta")),
    ]
    if perf.get("latency_count") == 1 and perf.get("avg_latency_ms") is not None:
        # one latency (etcd's one probe read per interval) has no distribution to take percentiles of
        rows.append(("latency p50 / p99", "n/a (1 measured)", None))
    elif "p50_latency_ms" in perf or "p99_latency_ms" in perf:
        rows.append(("latency p50 / p99",
                     f"{fmt_num(perf.get('p50_latency_ms'), 1)} / {fmt_num(perf.get('p99_latency_ms'), 1, ' ms')}", None))
    if max_width is not None:
        fixed = max(len(r[0]) for r in rows) + max(len(r[1]) for r in rows) + 4  # two gaps of 2
        peaks = [float(v) for series in (throughput, latency) for v in series if v is not None and _is_number(v)]
        suffix = len(f"  max {max(peaks):,.1f}") if peaks else 0
        width = max(4, min(width, max_width - fixed - suffix))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(justify="right", no_wrap=True)
    grid.add_column(no_wrap=True)
    for label, value, spark in rows:
        grid.add_row(label, value, "" if spark is None else _spark(spark[0], width, spark[1]))
    note = perf.get("latency_note")
    if perf.get("avg_latency_ms") is None and isinstance(note, str) and note:
        from rich.console import Group
        from rich.text import Text

        # why there is no latency (an etcd probe refused, timed out): wrapped under the figures
        return Group(grid, Text(f"latency not measured: {note}", style="yellow"))
    return grid


def _spark(values: list[Any], width: int, style: str):
    from rich.text import Text

    line = sparkline(values, width)
    if not line:
        return Text("")
    peak = max(v for v in values[-width:] if _is_number(v))
    text = Text(line, style=style)
    text.append(f"  max {peak:,.1f}", style="dim")
    return text


def alerts_block(summary: dict[str, Any], limit: int | None = None):
    """Active alerts, critical first; a calm line when there are none. ``limit``: at most that
    many lines, the last saying how many more fire when they do not all fit."""
    from rich.text import Text

    alerts = firing_alerts(summary)
    if not alerts:
        return Text("No active alerts", style="green")
    hidden = 0
    if limit is not None and len(alerts) > max(1, limit):
        keep = max(1, limit)
        alerts, hidden = alerts[:keep], len(alerts) - keep
    text = Text()
    for i, alert in enumerate(alerts):
        severity = str(alert.get("severity", "warning"))
        if i:
            text.append("\n")
        text.append(f"{severity.upper():<8}", style=SEVERITY_STYLE.get(severity, "bold"))
        text.append(f" {alert.get('name', '?')}", style="bold")
        message = alert.get("message")
        if message:
            text.append(f"  {message}")
    if hidden:
        text.append(f"\n+{hidden} more alert{'' if hidden == 1 else 's'} firing (`raftctl summary` lists all)",
                    style="bold")
    return text


def dashboard(summary: dict[str, Any] | None, history: Iterable[dict[str, Any]] = (), *,
              title: str = "raftctl", status_line: str | None = None, width: int = 40, extra: Any = None,
              omit: tuple[str, ...] = (), alerts_limit: int | None = None, alerts_first: bool = False):
    """A whole "top"-like frame: header, node table, performance, alerts, optional extras.
    ``omit``: parts left out ("shards", "performance") for a terminal too short for them, said
    in a line of their own; ``alerts_limit``: see ``alerts_block``; ``alerts_first``: the alerts
    and the extras right under the header, the node table last (what a too short terminal cuts)."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.rule import Rule
    from rich.text import Text

    parts: list[Any] = []
    samples = list(history)  # read at render time, maybe twice (measure, then render)
    if status_line:
        parts.append(Text(status_line, style="bold red"))
    if summary is None:
        parts.append(Text("waiting for the first sample…", style="dim"))
    else:
        parts.append(FitWidth(lambda room: health_header(summary, max_width=room)))
        if alerts_first:
            parts.append(Rule("alerts", style="dim"))
            parts.append(alerts_block(summary, alerts_limit))
            if extra is not None:
                parts.append(Rule(style="dim"))
                parts.append(extra)
            parts.append(Rule("nodes", style="dim"))
            parts.append(FitWidth(lambda width: node_table(summary, title=None, max_width=width)))
            return Panel(Group(*parts), title=title, title_align="left", expand=False)
        parts.append(Text(""))
        parts.append(FitWidth(lambda width: node_table(summary, title=None, max_width=width)))
        if summary.get("shards") and "shards" not in omit:
            parts.append(FitWidth(lambda width: shard_table(summary, title=None, max_width=width)))
        if "performance" not in omit:
            parts.append(Rule(style="dim"))
            # the sparklines take what the labels, values and "max ..." leave
            parts.append(FitWidth(lambda room: performance_lines(summary, samples, width, max_width=room)))
        left_out = [name for name in ("shards", "performance") if name in omit
                    and (name != "shards" or summary.get("shards"))]
        if left_out:
            parts.append(Text(f"({' and '.join(left_out)} hidden: the terminal is too short)", style="dim"))
        parts.append(Rule("alerts", style="dim"))
        parts.append(alerts_block(summary, alerts_limit))
    if extra is not None:
        parts.append(Rule(style="dim"))
        parts.append(extra)
    return Panel(Group(*parts), title=title, title_align="left", expand=False)

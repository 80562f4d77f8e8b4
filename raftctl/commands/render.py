"""Pure rendering of sample documents (the /api/summary shape) for the terminal.

Each function takes plain data and returns a rich renderable or a string, so the live views
(`watch`, `demo`) just rebuild them on every refresh and tests can check them directly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

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


def health_header(summary: dict[str, Any], max_width: int | None = None):
    """One line: health, leader, term, healthy n/N, aligned, quorum, leader changes; given
    ``max_width``, the leader changes start a line of their own when they would not fit."""
    from rich.text import Text

    cluster = summary.get("cluster") or {}
    status = str(cluster.get("health_status", "UNKNOWN"))
    text = Text()
    text.append(f" {status} ", style=HEALTH_STYLE.get(status, "bold") + " reverse")
    shards = summary.get("shards") if isinstance(summary.get("shards"), list) else None
    if shards:
        led = sum(1 for doc in shards if isinstance(doc, dict) and doc.get("leader"))
        text.append("  shards led ")
        text.append(f"{led}/{len(shards)}", style="bold" if led == len(shards) else "bold red")
    else:
        text.append("  leader ")
        text.append(str(cluster.get("leader_node") or "none"), style="bold")
    text.append("  term ")
    text.append(str(cluster.get("current_term", "-")), style="bold")
    text.append("  healthy ")
    text.append(f"{cluster.get('healthy_nodes', '?')}/{cluster.get('cluster_size', '?')}", style="bold")
    aligned = cluster.get("consensus_aligned")
    text.append("  aligned ")
    text.append("yes" if aligned else "NO", style="green" if aligned else "bold red")
    reach = monitor_reach(summary)
    if "has_quorum" in cluster:
        quorum = cluster.get("has_quorum")
        text.append("  quorum ")
        if quorum and reach is not None and reach[0] < reach[1] // 2 + 1:
            # not lost on evidence, but the monitor sees no majority answer: it cannot say "yes"
            text.append("unknown", style="yellow")
        else:
            text.append("yes" if quorum else "LOST", style="green" if quorum else "bold red")
    if "leader_changes" in cluster:
        changes = f"leader changes {cluster.get('leader_changes')}"
        # wrapped by the terminal it would start at the edge; on a line of its own it is indented
        fits = max_width is None or len(text.plain) + 2 + len(changes) <= max_width
        text.append(("  " if fits else "\n  ") + changes)
    if reach is not None:
        reached, size = reach
        # below a majority it cannot vouch for the cluster (health says monitor_reach)
        text.append(f"\n  monitor reaches {reached}/{size} nodes",
                    style="bold red" if reached < size // 2 + 1 else "yellow")
    reasons = cluster.get("health_reasons") or []
    if reasons:
        text.append("\n  " + "; ".join(str(r) for r in reasons), style="dim")
    return text


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


def node_table(summary: dict[str, Any], title: str | None = "Nodes", max_width: int | None = None):
    """The per-node table (state, term, commit, applied, log, peers, lag, digest).

    In a sharded document a ``leads`` column lists the shards each node leads, and a node that
    leads any shard shows as LEADER (term, indexes and digest stay shard 0's). Given
    ``max_width`` (the room the table has), the digest column is left out when the table would
    not fit with it, or when no node reports a digest (etcd): node names, states, numbers and every
    header stay whole at 80 columns.
    """
    from rich.table import Table

    leads = shard_leads(summary)
    table = Table(title=title, title_justify="left", expand=False, header_style="bold")
    columns: tuple[tuple[str, str], ...] = (
        ("node", "left"),
        ("state", "left"),
        ("term", "right"),
        ("commit", "right"),
        ("applied", "right"),
        ("log", "right"),
        ("peers", "right"),
        ("lag", "right"),
        ("digest", "left"),
    )
    if leads is not None:
        columns = columns[:2] + (("leads", "left"),) + columns[2:]
    nodes = summary.get("nodes") or {}
    rows: list[tuple[list[str], str]] = []
    for node_id in sorted(nodes, key=_node_sort_key):
        node = nodes[node_id] or {}
        state = str(node.get("state", "?"))
        up = node.get("up", state != "DOWN")
        led = (leads or {}).get(node_id) if up else None
        shown = state_label(node)
        if led:
            state = shown = "LEADER"
        style = STATE_STYLE.get(state, "") if up else "red"
        extra = [] if leads is None else [",".join(str(g) for g in led) if led else "-"]
        cells = [node_id, shown, *extra, fmt_num(node.get("term")), fmt_num(node.get("commit_index")),
                 fmt_num(node.get("last_applied")), fmt_num(node.get("log_length")),
                 fmt_num(node.get("peers_connected")), fmt_num(node.get("replication_lag")),
                 str(node.get("state_digest") or "")[:10]]
        rows.append((cells, style))
    # widths: each column its widest cell or header, plus padding and one border each, plus one
    widths = [max([len(name), *(len(cells[i]) for cells, _ in rows)]) for i, (name, _) in enumerate(columns)]
    no_digests = not any(cells[-1] for cells, _ in rows)  # etcd publishes none: no empty column
    if no_digests or (max_width is not None and sum(widths) + 3 * len(widths) + 1 > max_width):
        columns, widths = columns[:-1], widths[:-1]  # the digest gives way ("aligned" says whether they agree)
        rows = [(cells[:-1], style) for cells, style in rows]
    for (name, justify), width in zip(columns, widths, strict=True):
        # node names, states, numbers and headers are never cut (which node is down and how far
        # along each is are the point); only the digest, first to give way, may be
        keep = len(name) if name == "digest" else width
        table.add_column(name, justify=justify, no_wrap=True, min_width=keep)  # type: ignore[arg-type]
    for cells, style in rows:
        table.add_row(*cells, style=style)
    return table


class FitWidth:
    """A renderable built for the width it gets at render time (``build(max_width)``)."""

    def __init__(self, build: Any) -> None:
        self.build = build

    def __rich_console__(self, console: Any, options: Any):
        yield self.build(options.max_width)

    def __rich_measure__(self, console: Any, options: Any):
        from rich.measure import Measurement

        return Measurement.get(console, options, self.build(options.max_width))


def shard_table(summary: dict[str, Any], title: str | None = "Shards"):
    """Per-shard table of a sharded document (leader, term, commit, applied, health, throughput)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left", expand=False, header_style="bold")
    for name, justify in (("shard", "right"), ("leader", "left"), ("term", "right"), ("commit", "right"),
                          ("applied", "right"), ("health", "left"), ("aligned", "left"),
                          ("ops/s", "right"), ("latency", "right")):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for doc in summary.get("shards") or []:
        if not isinstance(doc, dict):
            continue
        health = str(doc.get("health_status", "?"))
        aligned = doc.get("consensus_aligned")
        leader = doc.get("leader")
        table.add_row(
            str(doc.get("shard", "?")),
            Text(str(leader), style="bold cyan") if leader else Text("none", style="bold red"),
            fmt_num(doc.get("term")),
            fmt_num(doc.get("commit_index")) if leader else "-",  # no leader: no authoritative index
            fmt_num(doc.get("last_applied")) if leader else "-",
            Text(health, style=HEALTH_STYLE.get(health, "")),
            Text("yes", style="green") if aligned else Text("NO", style="bold red"),
            fmt_num(doc.get("throughput_ops"), 1),
            fmt_num(doc.get("avg_latency_ms"), 1, " ms"),
        )
    return table


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
    if "p50_latency_ms" in perf or "p99_latency_ms" in perf:
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


def alerts_block(summary: dict[str, Any]):
    """Active alerts, critical first; a calm line when there are none."""
    from rich.text import Text

    alerts = firing_alerts(summary)
    if not alerts:
        return Text("No active alerts", style="green")
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
    return text


def dashboard(summary: dict[str, Any] | None, history: Iterable[dict[str, Any]] = (), *,
              title: str = "raftctl", status_line: str | None = None, width: int = 40, extra: Any = None):
    """A whole "top"-like frame: header, node table, performance, alerts, optional extras."""
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
        parts.append(Text(""))
        parts.append(FitWidth(lambda width: node_table(summary, title=None, max_width=width)))
        if summary.get("shards"):
            parts.append(shard_table(summary, title=None))
        parts.append(Rule(style="dim"))
        # the sparklines take what the labels, values and "max ..." leave
        parts.append(FitWidth(lambda room: performance_lines(summary, samples, width, max_width=room)))
        parts.append(Rule("alerts", style="dim"))
        parts.append(alerts_block(summary))
    if extra is not None:
        parts.append(Rule(style="dim"))
        parts.append(extra)
    return Panel(Group(*parts), title=title, title_align="left", expand=False)

"""The demo's engine (DemoRun) and its terminal presentation (DemoView).

DemoRun drives everything from one thread on the simulated clock: the cluster advances one tick
at a time, the collector samples every interval of simulated time (scheduled inside the
simulation, so samples land at exact instants), and faults start and heal at tick boundaries.
The faults are scenarios from raftctl/core/scenarios.py played by a ScenarioLoop on the tick
clock (tick k is at k * tick_s). Real-time mode paces the same steps against the wall clock with
the one pacer (raftctl/runtime/pacer.py); the same seed gives the same run either way.
"""

from __future__ import annotations

import random
import time
from collections import deque
from typing import Any, Callable, Optional

from raftctl.commands._common import CliError, count_of, page_refresh_seconds
from raftctl.commands.faults import describe_step, fault_entry, tick_at
from raftctl.core.sample import HEALTH_STATES

HEALTH_ORDER = HEALTH_STATES
SETTLE_LIMIT_S = 30.0  # simulated seconds allowed to converge after the last tick


class DemoRun:
    """Builds the cluster, workload, collector (and optionally dashboard) and runs the schedule."""

    def __init__(self, *, nodes: int, ticks: int, lineup: list[tuple[Any, float]], seed: int, tick_s: float,
                 interval: float, rate: float, sinks: list[Any], fast: bool, shards: int = 1) -> None:
        """``lineup``: (Scenario, start) pairs on the tick clock, e.g. from scenarios.lineup()."""
        self.nodes = nodes
        self.shards = shards
        self.ticks = ticks
        self.lineup = list(lineup)
        self.seed = seed
        self.tick_s = tick_s
        self.interval = interval
        self.rate = rate
        self.sinks = sinks
        self.fast = fast
        self.tick = 0
        self.cluster: Any = None
        self.collector: Any = None
        self.dashboard: Any = None
        self.faults: Any = None  # the ScenarioLoop, once set up
        self.samples = 0
        self.latest: Optional[dict[str, Any]] = None
        self.history: deque[dict[str, Any]] = deque(maxlen=60)
        self.health_timeline: list[dict[str, Any]] = []
        self.alert_events: list[dict[str, Any]] = []
        self.latencies: list[float] = []
        self.peak_throughput = 0.0
        self.wall_started = 0.0
        self.settle_seconds = 0.0
        self._view: Any = None
        self._latency_position = 0  # of cluster.latencies_after: the orders acknowledged so far

    # -- lifecycle ----------------------------------------------------------------------------

    def setup(self) -> None:
        from raftctl.commands._common import build_trading_cluster
        from raftctl.runtime.collector import MetricsCollector

        self.cluster = build_trading_cluster(self.nodes, self.seed, self.shards, self.rate)
        from raftctl.core.scenarios import lineup_loop

        self.faults = lineup_loop(self.cluster, self.lineup, random.Random(self.seed * 1_000_003 + 7))
        wall_clock: Callable[[], float] = time.time
        if self.fast:
            # a --fast run lives in simulated time: its samples, alerts and events are stamped as if
            # it ran in real time from now, so a recording of it replays on one consistent timeline
            # (real stamps would put a minute of simulated faults within the same wall second)
            cluster, wall_base, sim_base = self.cluster, time.time(), self.cluster.now

            def simulated_wall_clock() -> float:
                return wall_base + (cluster.now - sim_base)
            wall_clock = simulated_wall_clock
        self.collector = MetricsCollector(collection_interval=self.interval, retention_period=300,
                                          alert_callback=self._on_alert, sinks=self.sinks,
                                          wall_clock=wall_clock)
        self.collector.set_cluster(self.cluster)
        # the report's latencies are those of the orders acknowledged from here on
        self._latency_position = self.cluster.latencies_after(None)[1]
        self.cluster.every(self.interval, self._collect)

    def start_dashboard(self, host: str, port: int) -> str:
        from raftctl.dashboard.server import DashboardServer

        try:
            self.dashboard = DashboardServer(collector=self.collector, host=host, port=port,
                                            refresh_seconds=page_refresh_seconds(self.collector.collection_interval)).start()
        except OSError as err:
            import errno

            hint = ("; choose another --port (0 picks a free one) or --no-dashboard"
                    if err.errno == errno.EADDRINUSE else "; or use --no-dashboard")
            raise CliError(f"{err.strerror or err}{hint}") from None
        for sink in self.collector.sinks:
            sink.set_dashboard_url(self.dashboard.url)  # alert sinks link back to it (generatorURL)
        return self.dashboard.url

    def close(self) -> None:
        if self.dashboard is not None:
            self.dashboard.stop()
            self.dashboard = None
        if self.collector is not None:
            self.collector.stop()  # drains and closes the sinks

    # -- running ------------------------------------------------------------------------------

    def execute(self, view: Any) -> dict[str, Any]:
        """Run every tick, then heal, converge and return the report."""
        self._view = view
        self.wall_started = time.monotonic()
        from raftctl.runtime.pacer import Pacer

        pacer = None if self.fast else Pacer(self.cluster, speed=1.0, on_fall_behind=self.collector.count_missed)
        base = self.cluster.now
        with view.live():
            # the first sample shows the healthy cluster before anything happens
            self._collect(self.cluster)
            for tick in range(1, self.ticks + 1):
                self.tick = tick
                self._apply_faults(tick)
                # both modes stop at the very same instant, k * tick_s from the start (run_for's
                # sum of steps drifts from it by a float ulp: an event due exactly then ran
                # before the tick's fault with --fast, after it in real time, and the runs parted)
                target = base + tick * self.tick_s
                if pacer is None:
                    with self.cluster.lock:
                        self.cluster.run_to(target * 1000.0)
                else:
                    pacer.advance_to(target)
                view.on_tick(tick)
            self._settle()
            view.on_tick(self.ticks)  # the last frame shows the converged cluster
        return self.report()

    def _apply_faults(self, tick: int) -> None:
        applied = False
        for record in self.faults.advance(tick * self.tick_s):
            text = describe_step(record, f"tick {tick}")
            if text:
                self._view.on_fault(text)
                applied = True
        if applied:
            # what the monitor makes of it at that very instant (a look: no sample, no alert)
            # said so: the next sample, a moment later, may already show the cluster recovering
            self._view.on_fault(f"tick {tick}: the monitor sees {describe_look(self.collector.look())} "
                                "(at that instant; samples and alerts follow)")

    def next_fault(self) -> tuple[int, str] | None:
        """The next fault's tick and title, for the live view."""
        upcoming = self.faults.next_fault() if self.faults is not None else None
        if upcoming is None:
            return None
        due, step = upcoming
        return tick_at(due, self.tick_s), step.label or step.kind.replace("_", " ")

    def _settle(self) -> None:
        """Heal what is left, pause the orders, and let the cluster converge for the final check."""
        if self.faults.active:
            self.faults.heal_all()
            self._view.on_fault("end: healed the remaining faults")
        workload = self.cluster.workload
        if workload is not None:
            workload.paused = True  # equal digests need every node at the same applied index
        start = self.cluster.now

        def settled() -> bool:
            latest = self.latest or {}
            return (self.cluster.converged()
                    and (latest.get("cluster") or {}).get("health_status") == "HEALTHY"
                    and not self.collector.active_alerts()
                    and (latest.get("sim_time") or 0) > start)

        self.cluster.run_until(settled, timeout=SETTLE_LIMIT_S, step=0.1)
        self.settle_seconds = self.cluster.now - start
        # a last sample at the final instant, so the report and the dashboard agree
        self._collect(self.cluster)

    def _collect(self, cluster: Any) -> None:
        sample = self.collector.collect(now=cluster.now)
        self.samples += 1
        self.latest = sample
        self.history.append(sample)
        taken, self._latency_position = cluster.latencies_after(self._latency_position)
        self.latencies.extend(taken)
        perf = sample.get("performance") or {}
        throughput = perf.get("throughput_ops")
        if isinstance(throughput, (int, float)):
            self.peak_throughput = max(self.peak_throughput, float(throughput))
        status = (sample.get("cluster") or {}).get("health_status")
        if not self.health_timeline or self.health_timeline[-1]["status"] != status:
            self.health_timeline.append({"status": status, "sim_time": round(cluster.now, 3), "tick": self.tick})
        if self._view is not None:
            self._view.on_sample(self.samples, sample)

    def _on_alert(self, alert: dict[str, Any]) -> None:
        self.alert_events.append({
            "name": alert.get("name"), "severity": alert.get("severity"), "status": alert.get("status"),
            "fingerprint": alert.get("fingerprint"), "started_at_sim": alert.get("started_at_sim"),
            "sim_time": round(self.cluster.now, 3), "tick": self.tick, "message": alert.get("message"),
        })
        if alert.get("shards"):
            self.alert_events[-1]["shards"] = list(alert["shards"])
        node = (alert.get("labels") or {}).get("node")
        if node is not None:
            self.alert_events[-1]["node"] = node
        if self._view is not None:
            self._view.on_alert(alert, self.tick)

    # -- report -------------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """The final report (plain data; the CLI prints it as text or JSON)."""
        cluster = self.cluster
        stats = cluster.stats()
        statuses = cluster.statuses()
        latest = self.latest or {}
        all_up = all(st.get("up") for st in statuses.values())
        shard_reports: list[dict[str, Any]] | None = None
        if self.shards > 1:
            shard_reports = shard_summary(statuses, cluster.shard_leaders(), stats, latest,
                                          getattr(cluster, "leadership_log", None))
            digests = cluster.digests()
            applied = {nid: [entry.get("last_applied") for entry in st.get("shards") or ()]
                       for nid, st in statuses.items()}
            digests_equal = all_up and all(s["digests_equal"] for s in shard_reports)
        else:
            digests = {nid: st.get("state_digest") for nid, st in statuses.items()}
            applied = {nid: st.get("last_applied") for nid, st in statuses.items()}
            digests_equal = all_up and len(set(digests.values())) == 1 and len(set(applied.values())) == 1
        final_health = (latest.get("cluster") or {}).get("health_status")
        visited = [s for s in HEALTH_ORDER if any(h["status"] == s for h in self.health_timeline)]
        perf = latest.get("performance") or {}
        sim_seconds = cluster.now
        acked = stats.get("orders_acknowledged", 0)
        report = {
            "ok": bool(final_health == "HEALTHY" and digests_equal),
            "seed": self.seed,
            "nodes": self.nodes,
            "ticks": self.ticks,
            "tick_seconds": self.tick_s,
            "fast": self.fast,
            "sim_seconds": round(sim_seconds, 3),
            "wall_seconds": round(time.monotonic() - self.wall_started, 3),
            "settle_seconds": round(self.settle_seconds, 3),
            "samples": self.samples,
            "orders": {
                "submitted": stats.get("orders_submitted", 0),
                "acknowledged": acked,
                "rejected": stats.get("orders_rejected", 0),
                "pending": stats.get("orders_pending", 0),
            },
            "trades": perf.get("total_trades", 0),
            "throughput_ops": {
                "average": round(acked / sim_seconds, 2) if sim_seconds > 0 else 0.0,
                "peak": round(self.peak_throughput, 2),
            },
            "latency_ms": latency_summary(self.latencies),
            "leader_changes": stats.get("leader_changes", 0),
            "health_states_visited": visited,
            "health_timeline": self.health_timeline,
            "faults": [fault_entry(f, self.tick_s) for f in (self.faults.faults if self.faults else [])],
            "alerts": pair_alerts(self.alert_events),
            "final": {
                "health_status": final_health,
                "leader": cluster.leader_id,
                "term": (latest.get("cluster") or {}).get("current_term"),
                "digests_equal": digests_equal,
                "digests": digests,
                "last_applied": applied,
            },
        }
        if shard_reports is not None:
            report["shard_count"] = self.shards
            report["shards"] = shard_reports
        return report


def shard_summary(statuses: dict[str, dict[str, Any]], leaders: dict[int, Any], stats: dict[str, Any],
                  latest: dict[str, Any], leadership_log: Any = None) -> list[dict[str, Any]]:
    """Per shard at the end of a run: leader, term, indexes, digest agreement, orders, leader changes.

    A shard's digests are equal when every node is up and all its replicas applied the same
    index with the same state digest.
    """
    count = max([len(st.get("shards") or ()) for st in statuses.values()] or [0])
    acked = list(stats.get("orders_acknowledged_by_shard") or [])
    health = {doc.get("shard"): doc.get("health_status") for doc in latest.get("shards") or ()}
    elections: dict[int, int] | None = None
    if leadership_log is not None:
        elections = {}
        for record in list(leadership_log):
            elections[record[3]] = elections.get(record[3], 0) + 1
    out = []
    for shard in range(count):
        replicas = {nid: (st.get("shards") or [])[shard] if shard < len(st.get("shards") or []) else {}
                    for nid, st in statuses.items()}
        leader = leaders.get(shard)
        lead = (replicas.get(leader) or {}) if leader is not None else {}
        digests = {r.get("state_digest") for r in replicas.values()}
        applied = {r.get("last_applied") for r in replicas.values()}
        equal = (all(st.get("up") for st in statuses.values()) and len(digests) == 1
                 and None not in digests and len(applied) == 1)
        terms = [r.get("term", 0) for r in replicas.values()]
        entry: dict[str, Any] = {
            "shard": shard,
            "leader": leader,
            "term": lead.get("term") if lead else max(terms or [0]),
            "commit_index": lead.get("commit_index"),
            "last_applied": lead.get("last_applied"),
            "health_status": health.get(shard),
            "digests_equal": equal,
            "digest": next(iter(digests)) if equal else None,
            "orders_acknowledged": acked[shard] if shard < len(acked) else None,
        }
        if elections is not None:
            # the first leadership of each group is its birth, not a change (as stats() counts)
            entry["leader_changes"] = max(0, elections.get(shard, 0) - 1)
        out.append(entry)
    return out


def describe_look(look: dict[str, Any]) -> str:
    """``leader node3 (term 3); node4 STALE_LEADER term 2; DEGRADED`` — the nodes not plainly
    following, then the health."""
    leader = look.get("leader_node")
    parts = [f"leader {leader} (term {look['nodes'][leader]['term']})" if leader else "no leader"]
    for node_id, node in look["nodes"].items():
        state = node["state"]
        if state == "DOWN":
            parts.append(f"{node_id} DOWN ({node.get('down_reason') or 'no answer'})")
        elif state == "STALE_LEADER":
            parts.append(f"{node_id} STALE_LEADER in term {node['term']}")
        elif state == "CANDIDATE":
            parts.append(f"{node_id} CANDIDATE")
    return "; ".join(parts) + f"; {look['health_status']}"


def latency_summary(values: list[float]) -> dict[str, Any]:
    """Count, average and nearest-rank percentiles of consensus latencies (ms)."""
    from raftctl.core.measures import sorted_percentile

    if not values:
        return {"count": 0, "avg": None, "p50": None, "p90": None, "p99": None, "max": None}
    ordered = sorted(values)

    def pct(fraction: float) -> float:
        return round(sorted_percentile(ordered, fraction), 3)

    return {"count": len(ordered), "avg": round(sum(ordered) / len(ordered), 3), "p50": pct(0.50),
            "p90": pct(0.90), "p99": pct(0.99), "max": round(ordered[-1], 3)}


def pair_alerts(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Join firing and resolved events of the same episode: name, fired/resolved times and ticks."""
    episodes: dict[tuple[Any, Any], dict[str, Any]] = {}
    order: list[tuple[Any, Any]] = []
    for event in events:
        key = (event.get("fingerprint") or event.get("name"), event.get("started_at_sim"))
        if key not in episodes:
            episodes[key] = {"name": event.get("name"), "severity": event.get("severity"),
                             "message": event.get("message"), "fired_at": None, "fired_tick": None,
                             "resolved_at": None, "resolved_tick": None}
            if event.get("node") is not None:
                episodes[key]["node"] = event["node"]
            order.append(key)
        episode = episodes[key]
        if event.get("shards"):  # a grouped alert: every shard it held in during the episode
            episode["shards"] = sorted(set(episode.get("shards", [])) | set(event["shards"]))
        if event.get("status") == "firing":
            episode["fired_at"], episode["fired_tick"] = event.get("sim_time"), event.get("tick")
        else:
            episode["resolved_at"], episode["resolved_tick"] = event.get("sim_time"), event.get("tick")
    return [episodes[key] for key in order]


class DemoView:
    """Progress on stderr: a rich live panel on a terminal, the seed's plain lines otherwise."""

    def __init__(self, run: DemoRun) -> None:
        from raftctl.commands._common import stderr_console

        self.run = run
        self.console = stderr_console()
        self.interactive = self.console.is_terminal
        self.events: deque[str] = deque(maxlen=6)
        self._live: Any = None

    def live(self):
        import contextlib

        if not self.interactive:
            return contextlib.nullcontext()
        from rich.live import Live

        self._live = Live(self._frame(), console=self.console, refresh_per_second=4, transient=False)
        return self._live

    def note(self, text: str) -> None:
        self._print(text)

    def on_tick(self, tick: int) -> None:
        if self._live is not None:
            self._live.update(self._frame())

    def on_sample(self, index: int, sample: dict[str, Any]) -> None:
        if self._live is None:
            from raftctl.commands.render import plain_line

            self._print(plain_line(sample, index))

    def on_fault(self, text: str) -> None:
        self.events.append(text)
        if self._live is None:
            self._print(text)

    def on_alert(self, alert: dict[str, Any], tick: int) -> None:
        text = f"tick {tick}: alert {alert.get('status')}: {alert.get('name')} ({alert.get('severity')})"
        self.events.append(text)
        if self._live is None:
            self._print(text)

    def _print(self, text: str) -> None:
        if self._live is not None:
            self._live.console.print(text, markup=False, highlight=False)
        else:
            import sys

            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    def _frame(self):
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        from raftctl.commands.render import dashboard

        run = self.run
        bar = Table.grid(padding=(0, 1))
        bar.add_column(no_wrap=True)
        bar.add_column(width=30)
        bar.add_column(no_wrap=True)
        bar.add_row(
            Text(f"tick {run.tick}/{run.ticks}", style="bold"),
            ProgressBar(total=run.ticks, completed=run.tick, width=30),
            Text(f"sim {run.cluster.now if run.cluster else 0:.1f}s  seed {run.seed}"
                 + ("  fast" if run.fast else ""), style="dim"),
        )
        upcoming = run.next_fault()
        lines: list[Any] = [bar]
        if upcoming:
            lines.append(Text(f"next: tick {upcoming[0]}: {upcoming[1]}", style="dim"))
        for event in self.events:
            lines.append(Text(event, style="yellow" if "alert firing" in event else ""))
        nodes = f"{run.nodes} node{'' if run.nodes == 1 else 's'}"
        title = f"raftctl demo · {nodes}" + (f" · {run.shards} shards" if run.shards > 1 else "")
        return dashboard(run.latest, run.history, title=title, width=40,
                         extra=Group(*lines))

    # -- final report -------------------------------------------------------------------------

    def print_report(self, report: dict[str, Any]) -> None:
        """The human report on stdout."""
        from rich.table import Table
        from rich.text import Text

        from raftctl.commands._common import stdout_console

        out = stdout_console()
        ok = report["ok"]
        final = report["final"]
        out.print(Text("Demo report", style="bold underline"))
        lat = report["latency_ms"]
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        shards = f"{report['shard_count']} shards, " if report.get("shard_count") else ""
        count = report["nodes"]
        ticks = count_of(report["ticks"], "tick")
        grid.add_row("run", f"{count_of(count, 'node')}, {shards}{ticks}, seed {report['seed']}, "
                            f"{report['sim_seconds']:.1f} s simulated in {report['wall_seconds']:.1f} s")
        orders = report["orders"]
        grid.add_row("orders", f"{orders['submitted']:,} submitted, {orders['acknowledged']:,} committed, "
                               f"{orders['pending']:,} pending")
        grid.add_row("trades", f"{report['trades']:,}")
        grid.add_row("throughput", f"{report['throughput_ops']['average']:,.1f} ops/s average, "
                                   f"{report['throughput_ops']['peak']:,.1f} peak")
        if lat["count"]:
            grid.add_row("latency (ms)", f"avg {lat['avg']:.1f}, p50 {lat['p50']:.1f}, p90 {lat['p90']:.1f}, "
                                         f"p99 {lat['p99']:.1f}, max {lat['max']:.1f} ({lat['count']:,} orders)")
        grid.add_row("leader changes", str(report["leader_changes"]))
        grid.add_row("health visited", ", ".join(report["health_states_visited"]) or "-")
        timeline = " → ".join(f"{h['status']}@{h['sim_time']:.0f}s" for h in report["health_timeline"])
        grid.add_row("health timeline", timeline)
        out.print(grid)
        if report["faults"]:
            faults = Table(title="Faults", title_justify="left", header_style="bold")
            for column in ("tick", "fault", "nodes", "healed at tick"):
                faults.add_column(column)
            for fault in report["faults"]:
                # "end": still in effect when the run ended; "-": nothing to heal (it had no effect)
                faults.add_row(str(fault["tick"]), fault["description"], ", ".join(fault["nodes"]) or "-",
                               str(fault["heal_tick"]) if fault["healed_at"] is not None
                               else ("-" if fault["heal_tick"] is None or not fault["effective"] else "end"))
            out.print(faults)
        if report["alerts"]:
            alerts = Table(title="Alerts", title_justify="left", header_style="bold")
            for column in ("alert", "severity", "fired", "resolved"):
                alerts.add_column(column)
            for alert in report["alerts"]:
                name = alert["name"] + (f" (shards {','.join(map(str, alert['shards']))})" if alert.get("shards") else "") \
                    + (f" ({alert['node']})" if alert.get("node") else "")
                fired = f"{alert['fired_at']:.1f}s (tick {alert['fired_tick']})" if alert["fired_at"] is not None else "-"
                resolved = (f"{alert['resolved_at']:.1f}s (tick {alert['resolved_tick']})"
                            if alert["resolved_at"] is not None else "still firing")
                alerts.add_row(name, alert["severity"], fired, resolved)
            out.print(alerts)
        else:
            out.print("Alerts: none fired")
        if report.get("shards"):
            out.print(shard_report_table(report["shards"]))
        digest_note = "equal" if final["digests_equal"] else "DIFFERENT"
        verdict = Text()
        verdict.append("Final: ", style="bold")
        verdict.append(str(final["health_status"]), style="bold green" if final["health_status"] == "HEALTHY" else "bold red")
        if report.get("shards"):
            led = sum(1 for shard in report["shards"] if shard["leader"])
            verdict.append(f", {led}/{len(report['shards'])} shards led, state digests {digest_note}"
                           + (" in every shard" if final["digests_equal"] else ""))
        else:
            verdict.append(f", leader {final['leader']}, term {final['term']}, state digests {digest_note}")
        out.print(verdict)
        out.print(Text("RESULT: OK" if ok else "RESULT: FAILED", style="bold green" if ok else "bold red"))


def shard_report_table(shards: list[dict[str, Any]], max_width: int | None = None):
    """The demo report's per-shard table, laid out for ``max_width`` or, without it, for the
    width it is printed at: when it would not fit, "leader changes" takes two lines, then the
    applied column gives way where it equals the commit in every shard, then term and orders
    (named under the table), so that every header and value stays whole at 80 columns."""
    from rich.text import Text

    from raftctl.commands.render import (HEALTH_STYLE, FitWidth, build_table, drop_column, fit_columns, fmt_num,
                                         header_as, left_out_note)

    if max_width is None:
        return FitWidth(lambda width: shard_report_table(shards, max_width=width))
    columns = [(name, name, justify) for name, justify in (
        ("shard", "right"), ("leader", "left"), ("term", "right"), ("commit", "right"), ("applied", "right"),
        ("orders", "right"), ("leader changes", "right"), ("health", "left"), ("digests", "left"))]
    rows = []
    for shard in shards:
        health = shard.get("health_status") or "-"
        rows.append({"shard": str(shard["shard"]), "leader": shard.get("leader") or "none",
                     "term": fmt_num(shard.get("term")), "commit": fmt_num(shard.get("commit_index")),
                     "applied": fmt_num(shard.get("last_applied")),
                     "orders": fmt_num(shard.get("orders_acknowledged")),
                     "leader changes": fmt_num(shard.get("leader_changes")),
                     "health": Text(health, style=HEALTH_STYLE.get(health, "")),
                     "digests": Text("equal") if shard.get("digests_equal") else Text("DIFFERENT", style="bold red")})
    applied_is_commit = all(s.get("last_applied") == s.get("commit_index") for s in shards)
    steps = [header_as("leader changes", "leader\nchanges"),
             *([drop_column("applied", "applied (equal to commit in every shard)")] if applied_is_commit else []),
             drop_column("term"), drop_column("orders")]
    columns, rows, notes = fit_columns(columns, rows, max_width, steps)
    return build_table(columns, rows, "Shards", left_out_note(notes))

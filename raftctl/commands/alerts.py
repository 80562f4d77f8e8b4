"""`raftctl alerts`: a Nagios plugin checking a running server, optionally forwarding alerts.

Exit codes follow the Nagios plugin conventions: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; a
usage error is UNKNOWN too (``raftctl.cli`` asks :func:`usage_error_exit`). The line before
``|`` stays under 80 characters and says why the check is not OK; perfdata carries the
thresholds given with ``-w/-c`` (healthy nodes) and ``--warning-latency/--critical-latency``
(average consensus latency, ms) in the plugin range syntax.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Self

import typer

from raftctl.commands._common import finite_float, stderr_line
from raftctl.commands.summary import UrlOption, url_or_usage_error

HELP = "Nagios plugin: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; can forward alerts to sinks."
EPILOG = (
    "Thresholds use the Nagios range syntax: 10 (alert outside 0..10), 10: (below 10), ~:10 (above 10), "
    "10:20 (outside 10..20), @10:20 (inside 10..20).\n\n"
    "Examples:\n\n"
    "  raftctl alerts\n\n"
    "  raftctl alerts -w 5: -c 3: --warning-latency 50 --critical-latency 200 -t 5\n\n"
    "  raftctl alerts --json\n\n"
    "  * * * * * raftctl alerts --url http://127.0.0.1:8080 --sink webhook:http://127.0.0.1:9093/hook"
)

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATUS_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
USAGE_EXIT_CODE = UNKNOWN
MAX_TEXT = 79  # the Nagios guideline: the part before '|' under 80 characters
DEFAULT_TIMEOUT_S = 10.0


def default_state_file() -> Path:
    """$XDG_CACHE_HOME/raftctl/alerts-state.json, or ~/.cache/raftctl/alerts-state.json."""
    cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(cache) if cache else Path.home() / ".cache"
    return base / "raftctl" / "alerts-state.json"


def _usage_text(message: str) -> str:
    """Click's usage message in the fewest words that keep its cause: "Invalid value for '-w':
    '5:3' is ..." -> "-w '5:3' is ..."; "No such option: --x (Possible options: --url)" -> the
    same without the trailing period Click adds after the parenthesis."""
    import re

    text = " ".join(str(message).split())
    text = re.sub(r"^Invalid value for '([^']+)'(?: / '[^']+')*: ", r"\1 ", text)
    text = re.sub(r"^Invalid value for ([^:]+): ", r"\1 ", text)
    text = text.replace(" is not a Nagios range: ", ": ").replace(" is not a valid server URL: ", ": ")
    return text.rstrip(".") if text.endswith(").") else text


def usage_error_exit(message: str) -> int:
    """A usage error of this command: the plugin's UNKNOWN line on stdout, exit code 3."""
    line = _fit(f"RAFTCTL UNKNOWN - usage: {_usage_text(message)}")
    try:
        print(line, flush=True)
    except (OSError, ValueError):
        pass
    return USAGE_EXIT_CODE


# -- Nagios ranges ------------------------------------------------------------------------

@dataclass(frozen=True)
class NagiosRange:
    """A threshold in the plugin range syntax: alert outside [start, end], or inside with '@'."""

    text: str
    start: float
    end: float
    inside: bool = False

    def alerts(self, value: float) -> bool:
        within = self.start <= value <= self.end
        return within if self.inside else not within

    def describe(self) -> str:
        return self.text


def _range_number(text: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{spec!r} is not a Nagios range: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{spec!r} is not a Nagios range: {text!r} is not a finite number")
    return value


def parse_range(spec: str) -> NagiosRange:
    """``10``, ``10:``, ``~:10``, ``10:20``, ``@10:20`` -> NagiosRange; ValueError otherwise."""
    text = spec.strip()
    if not text:
        raise ValueError("a Nagios range must not be empty (e.g. 10, 10:, ~:10, 10:20, @10:20)")
    inside = text.startswith("@")
    body = text[1:] if inside else text
    if ":" in body:
        low, _, high = body.partition(":")
        start = -math.inf if low == "~" else (_range_number(low, spec) if low else 0.0)
        end = _range_number(high, spec) if high else math.inf
    else:
        start, end = 0.0, _range_number(body, spec)
    if start > end:
        raise ValueError(f"{spec!r} is not a Nagios range: its start is above its end")
    return NagiosRange(text=text, start=start, end=end, inside=inside)


def _range_option(value: str | None, option: str) -> NagiosRange | None:
    if value is None:
        return None
    try:
        return parse_range(value)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint=f"'{option}'") from None


def _version_callback(value: bool) -> None:
    if value:
        from raftctl import __version__

        print(f"raftctl alerts {__version__}")
        raise typer.Exit(0)


def command(
    url: UrlOption = None,
    warning: Annotated[str | None, typer.Option(
        "--warning", "-w", metavar="RANGE",
        help="WARNING when the number of healthy nodes is outside RANGE (e.g. 5: = fewer than 5).")] = None,
    critical: Annotated[str | None, typer.Option(
        "--critical", "-c", metavar="RANGE",
        help="CRITICAL when the number of healthy nodes is outside RANGE (e.g. 3:).")] = None,
    warning_latency: Annotated[str | None, typer.Option(
        "--warning-latency", metavar="RANGE",
        help="WARNING when the average consensus latency in ms is outside RANGE (e.g. 50 = above 50).")] = None,
    critical_latency: Annotated[str | None, typer.Option(
        "--critical-latency", metavar="RANGE",
        help="CRITICAL when the average consensus latency in ms is outside RANGE (e.g. 200).")] = None,
    timeout: Annotated[float, typer.Option(
        "--timeout", "-t", metavar="SECONDS", callback=finite_float("--timeout", 0.1, 3600),
        help="Give up (UNKNOWN) after this long, forwarding included (0.1 to 3600).")] = DEFAULT_TIMEOUT_S,
    json_output: Annotated[bool, typer.Option("--json", help="Print the check result as JSON.")] = False,
    sink: Annotated[
        list[str] | None,
        typer.Option("--sink", metavar="SPEC", help="Forward alerts that fired or resolved since the last run "
                     "(e.g. webhook:http://host/hook). Repeatable."),
    ] = None,
    state_file: Annotated[
        Path | None,
        typer.Option("--state-file", metavar="PATH", dir_okay=False,
                     help="Where forwarded alerts are remembered \\[default: raftctl/alerts-state.json in "
                          "$XDG_CACHE_HOME, else in ~/.cache]."),
    ] = None,
    version: Annotated[bool | None, typer.Option(
        "--version", "-V", callback=_version_callback, is_eager=True, help="Show the plugin's version and exit.")] = None,
) -> None:
    """Check a running raftctl server's health and alerts as a Nagios plugin."""
    started = time.monotonic()
    base = url_or_usage_error(url)
    if not math.isfinite(timeout):
        raise typer.BadParameter(f"{timeout!r} is not a number of seconds", param_hint="'-t' / '--timeout'")
    if not 0 < timeout <= 3600:
        raise typer.BadParameter(f"{timeout:g} must be more than 0 and at most 3600 seconds",
                                 param_hint="'-t' / '--timeout'")
    thresholds = {
        "healthy_nodes": (_range_option(warning, "-w"), _range_option(critical, "-c")),
        "avg_latency_ms": (_range_option(warning_latency, "--warning-latency"),
                           _range_option(critical_latency, "--critical-latency")),
    }
    from raftctl.commands._common import CliError, build_sinks, fetch_summary, redact_url, replay_state

    try:
        sinks = build_sinks(sink)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="'--sink'") from None
    try:
        summary = fetch_summary(base, timeout=timeout)
    except CliError as err:
        _close_quietly(sinks)
        # the line drops the server's URL (the check's own argument) to keep room for the cause
        shown = err.message.replace(redact_url(base) + "/", "/").replace(redact_url(base), "the server")
        _report({"status": "UNKNOWN", "exit_code": UNKNOWN, "error": err.message},
                _fit(f"RAFTCTL UNKNOWN - {shown}"), json_output)
        raise CliError(err.message, exit_code=UNKNOWN) from None
    stale = stale_sample(summary, time.time())
    if stale is None:
        # a recording is no cluster, however fresh its stamps (demo --fast stamps simulated time
        # ahead of the wall clock, so a replay of it passed the age check and paged its alerts)
        replay = replay_state(base, timeout=max(0.1, timeout - (time.monotonic() - started)))
        if replay is not None:
            stale = f"not a live cluster: raftctl replay of {replay['file']}"
    if stale is not None:
        # yesterday's state is no verdict on today's cluster, and no alert of it goes to a pager
        _close_quietly(sinks)
        _report({"status": "UNKNOWN", "exit_code": UNKNOWN, "error": stale}, _fit(f"RAFTCTL UNKNOWN - {stale}"),
                json_output)
        raise CliError(stale, exit_code=UNKNOWN)
    result = evaluate(summary, thresholds)
    if sinks:
        path = state_file or default_state_file()
        try:
            remaining = max(0.1, timeout - (time.monotonic() - started))
            sent = forward_alerts(base, summary, sinks, path, timeout=remaining)
            result["forwarded"] = sent
        except CliError as err:
            result["forward_error"] = err.message
            _warn(f"alerts not forwarded: {err.message}")
        except Exception as err:  # a bug while forwarding must not cost the check its status line
            if os.environ.get("RAFTCTL_DEBUG"):
                raise
            _close_quietly(sinks)
            message = f"internal error: {type(err).__name__}: {err}"
            result["forward_error"] = message
            _warn(f"alerts not forwarded: {message} (set RAFTCTL_DEBUG=1 for the traceback)")
    _report(result, result["text"], json_output)
    raise typer.Exit(result["exit_code"])


def _warn(message: str) -> None:
    """One ``raftctl alerts: warning: ...`` line on stderr (the status line stays alone on stdout)."""
    stderr_line(f"raftctl alerts: warning: {message}")


def _report(result: dict[str, Any], line: str, json_output: bool) -> None:
    if json_output:
        from raftctl.commands._common import write_json

        write_json(result)
    else:
        print(line, flush=True)


def _fit(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3].rstrip() + "..."


_REASON_WORDS = {"node_down": "down", "follower_lagging": "lagging", "follower_unreachable": "unreachable",
                 "node_isolated": "cut off", "stale_leader": "stale leader"}
_REASON_TEXT = {"no_leader": "no leader", "quorum_lost": "quorum lost", "consensus_misaligned": "digests differ"}


def health_reason_text(reason: str) -> str:
    """``node_down:node3`` -> ``node3 down``; ``shard1:no_leader`` -> ``shard1 no leader``."""
    if reason.startswith("shard") and ":" in reason:
        shard, _, rest = reason.partition(":")
        if shard[5:].isdigit():
            return f"{shard} {health_reason_text(rest)}"
    kind, _, node = reason.partition(":")
    if node and kind in _REASON_WORDS:
        return f"{node} {_REASON_WORDS[kind]}"
    if kind == "monitor_reach" and node:
        return f"monitor reaches {node}"
    return _REASON_TEXT.get(reason, reason.replace("_", " "))


def _reasons(summary: dict[str, Any], health: str) -> list[str]:
    cluster = summary.get("cluster") or {}
    raw = cluster.get("health_reasons")
    from raftctl.commands.render import grouped_reasons, shard_ranges

    # node reasons first: "node2 down" says more than the same "no leader" of every shard
    grouped = sorted(grouped_reasons(raw), key=lambda item: bool(item[1])) if isinstance(raw, list) else []
    reasons = [health_reason_text(reason) + (f" in shard{'s' if len(shards) > 1 else ''} {shard_ranges(shards)}"
                                             if shards else "") for reason, shards in grouped]
    if not reasons and health in ("DEGRADED", "UNHEALTHY"):
        nodes = summary.get("nodes") or {}
        reasons = [f"{node_id} down" for node_id, node in nodes.items()
                   if isinstance(node, dict) and node.get("up") is False]
        if health == "UNHEALTHY" and not cluster.get("leader_node"):
            reasons.insert(0, "no leader")
    return list(dict.fromkeys(reasons))


def _listed(items: list[str], keep: int) -> str:
    if keep >= len(items):
        return ", ".join(items)
    return ", ".join(items[:keep]) + f", +{len(items) - keep} more"


def _compose(head: str, reasons: list[str], names: list[str], nodes_text: str, firing_count: int) -> str:
    """The most telling variant of the text line that fits in MAX_TEXT: at least one reason
    and one alert name if possible, then as many of both as fit, then the node counts."""
    best: tuple[tuple[int, int, int, bool], str] | None = None
    for keep_reasons in range(len(reasons), -1, -1):
        for keep_names in range(len(names), -1, -1):
            for with_nodes in (True, False):
                text = head
                if reasons and keep_reasons:
                    text += ": " + _listed(reasons, keep_reasons)
                elif reasons:
                    text += f": {len(reasons)} problem{'s' if len(reasons) != 1 else ''}"
                if with_nodes:
                    text += ("; " if reasons else ", ") + nodes_text
                if names and keep_names:
                    text += "; firing: " + _listed(names, keep_names)
                elif firing_count:
                    text += f"; {firing_count} alert{'s' if firing_count != 1 else ''} firing"
                elif not reasons and with_nodes:
                    text += "; no alerts firing"
                if len(text) > MAX_TEXT:
                    continue
                score = (bool(keep_reasons) + bool(keep_names), min(keep_reasons, 2) + min(keep_names, 2),
                         keep_reasons + keep_names, with_nodes)
                if best is None or score > best[0]:
                    best = (score, text)
    return best[1] if best is not None else _fit(head)


def _threshold_code(value: Any, pair: tuple[NagiosRange | None, NagiosRange | None]) -> tuple[int, str]:
    warn, crit = pair
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return OK, ""
    if crit is not None and crit.alerts(value):
        return CRITICAL, crit.text
    if warn is not None and warn.alerts(value):
        return WARNING, warn.text
    return OK, ""


STALE_MIN_S = 30.0  # a sample older than this, and than 3 collection intervals, is no verdict


def stale_sample(summary: dict[str, Any], now: float) -> str | None:
    """Why the newest sample is too old to judge the cluster by (pure), else None: older than 3
    collection intervals and ``STALE_MIN_S``, by its own ``timestamp`` (a stopped collector, a
    paused or finished ``raftctl replay``, a server frozen with SIGSTOP). A sample stamped ahead
    of ``now`` (``demo --fast`` runs in simulated time) is not judged."""
    stamp = summary.get("timestamp")
    if isinstance(stamp, bool) or not isinstance(stamp, (int, float)) or not math.isfinite(stamp):
        return None
    interval = (summary.get("collector") or {}).get("collection_interval")
    every = float(interval) if isinstance(interval, (int, float)) and not isinstance(interval, bool) \
        and math.isfinite(interval) and interval > 0 else 1.0
    age = now - float(stamp)
    if age <= max(3.0 * every, STALE_MIN_S):
        return None
    return (f"the newest sample is {_age_text(age)} old (a stopped collector, or a recording served "
            f"by raftctl replay): no verdict on the cluster now")


def _age_text(seconds: float) -> str:
    whole = int(seconds)
    if whole < 120:
        return f"{whole} s"
    if whole < 7200:
        return f"{whole // 60} min"
    if whole < 172_800:
        return f"{whole // 3600} h {whole % 3600 // 60} min"
    return f"{whole // 86400} days"


def evaluate(summary: dict[str, Any],
             thresholds: dict[str, tuple[NagiosRange | None, NagiosRange | None]] | None = None,
             ) -> dict[str, Any]:
    """The Nagios verdict for one sample document (pure): status, exit code, text line, perfdata."""
    from raftctl.commands.render import firing_alerts

    thresholds = thresholds or {}
    cluster = summary.get("cluster") or {}
    perf = summary.get("performance") or {}
    health = str(cluster.get("health_status", "UNKNOWN"))
    firing = firing_alerts(summary)
    critical = [a for a in firing if a.get("severity") == "critical"]
    # health counts too: an UNHEALTHY cluster is critical even before an alert's hold time passes
    if critical or health == "UNHEALTHY":
        code = CRITICAL
    elif firing or health == "DEGRADED":
        code = WARNING
    else:
        code = OK
    reasons = _reasons(summary, health) if code != OK or health != "HEALTHY" else []
    healthy, latency = cluster.get("healthy_nodes"), perf.get("avg_latency_ms")
    for metric, value, label in (("healthy_nodes", healthy, "healthy nodes"),
                                 ("avg_latency_ms", latency, "latency")):
        pair = thresholds.get(metric)
        if pair is None:
            continue
        note = perf.get("latency_note") if metric == "avg_latency_ms" and value is None else None
        if note and code != CRITICAL:
            # asked to check a latency the monitor cannot measure (an etcd probe refused, say):
            # no verdict on it, never a silent OK (an idle cluster has no note: nothing to measure)
            reasons.insert(0, "latency not measured")  # why: the JSON's latency_note (the line has 80 chars)
            code = UNKNOWN
            continue
        level, spec = _threshold_code(value, pair)
        if level != OK:
            shown = _perf_value(value) + (" ms" if metric == "avg_latency_ms" else "")
            said = f"{label} {shown} outside {spec}"
            # a threshold that raised the status says so first: the line's "+N more" hides the tail
            if level > code:
                reasons.insert(0, said)
            else:
                reasons.append(said)
            code = max(code, level)
    size = cluster.get("cluster_size")

    def limits(metric: str) -> str:
        warn, crit = thresholds.get(metric, (None, None))
        return f";{warn.text if warn else ''};{crit.text if crit else ''}"

    perfdata = {
        "healthy_nodes": (healthy, "", f"{limits('healthy_nodes')};0;{_perf_value(size)}"),
        "cluster_size": (size, "", ""),
        "throughput_ops": (perf.get("throughput_ops"), "", ""),
        "avg_latency_ms": (latency, "ms", limits("avg_latency_ms") + ";0;"
                           if any(thresholds.get("avg_latency_ms", (None, None))) else ""),
        "p50_latency_ms": (perf.get("p50_latency_ms"), "ms", ""),
        "p99_latency_ms": (perf.get("p99_latency_ms"), "ms", ""),
        "total_orders": (perf.get("total_orders"), "c", ""),
        "total_trades": (perf.get("total_trades"), "c", ""),
        "current_term": (cluster.get("current_term"), "", ""),
        "leader_changes": (cluster.get("leader_changes"), "c", ""),
        "firing_alerts": (len(firing), "", ""),
    }
    perf_text = " ".join(
        f"{name}={_perf_value(value)}{unit if _perf_value(value) != 'U' else ''}{suffix}"
        for name, (value, unit, suffix) in perfdata.items()
        if name not in ("p50_latency_ms", "p99_latency_ms", "leader_changes") or value is not None
    )
    leader = cluster.get("leader_node") or "none"
    nodes_text = (f"{cluster.get('healthy_nodes', '?')}/{size if size is not None else '?'} "
                  f"nodes healthy, leader {leader}")
    status = STATUS_NAMES[code]
    # cluster_unhealthy says what the UNHEALTHY in the header says; the room goes to the others
    names = [alert_title(a) for a in firing
             if not (health == "UNHEALTHY" and a.get("name") == "cluster_unhealthy" and len(firing) > 1)]
    detail = _compose(f"RAFTCTL {status} - {health}", reasons, names, nodes_text, len(firing))
    return {
        "status": status,
        "exit_code": code,
        "health_status": health,
        "reasons": reasons,
        "firing": [{k: a.get(k) for k in ("name", "severity", "message", "fingerprint", "started_at", "labels")}
                   | ({"shards": a["shards"]} if a.get("shards") else {}) for a in firing],
        "perfdata": {name: value for name, (value, _u, _s) in perfdata.items()},
        "thresholds": {metric: {"warning": w.text if w else None, "critical": c.text if c else None}
                       for metric, (w, c) in thresholds.items()},
        "text": f"{detail} | {perf_text}",
        "latency_note": perf.get("latency_note"),
    }


def alert_title(alert: dict[str, Any]) -> str:
    """An alert's name with the shards it holds in, e.g. ``leader_election_failure[shard=0,2]``."""
    shards = alert.get("shards")
    if isinstance(shards, list) and shards:
        return f"{alert.get('name')}[shard={','.join(map(str, shards))}]"
    return str(alert.get("name"))


def _perf_value(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return "U"  # Nagios: undetermined
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if math.isfinite(value) else "U"
    return "U"


# -- forwarding ---------------------------------------------------------------------------

def alert_key(alert: dict[str, Any]) -> str:
    """One firing episode of one alert: its fingerprint plus when it started."""
    return f"{alert.get('fingerprint') or alert.get('name')}@{alert.get('started_at')}"


def collect_alerts(doc: Any) -> list[dict[str, Any]]:
    """Every alert dict in an /api/alerts answer (a list, or an object holding lists)."""
    found: list[dict[str, Any]] = []
    lists = [doc] if isinstance(doc, list) else [v for v in doc.values() if isinstance(v, list)] if isinstance(doc, dict) else []
    seen: set[str] = set()
    for items in lists:
        for alert in items:
            if isinstance(alert, dict) and alert.get("name") and alert.get("status") in ("firing", "resolved"):
                key = alert_key(alert) + "/" + str(alert.get("status"))
                if key not in seen:
                    seen.add(key)
                    found.append(alert)
    return found


def plan_events(alerts: list[dict[str, Any]], sent: dict[str, str], first_run: bool,
                recovering: bool = False, remembered: Mapping[str, dict[str, Any]] | None = None,
                now: float | None = None) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Decide which alert events to send (pure). Returns (events in order, new sent-state).

    ``sent`` maps alert_key -> the last status sent. A resolution is sent once after its firing;
    an episode that fired and resolved between two runs is sent as both. On the first run
    (no state yet) only alerts firing now are sent, so history is not replayed to a pager.
    ``recovering``: ``sent`` was (partly) lost with a damaged state file: alerts firing now are
    sent (the webhook spool drops those it delivered already), and so is the resolution, only,
    of every resolved episode it does not know, so no receiver keeps an alert open for ever.
    ``remembered``: the alerts last sent as firing (alert_key -> alert); one the server no longer
    lists at all (it restarted, or the resolution aged out of its history) is sent as resolved at
    ``now``, for the same reason.
    """
    by_key: dict[str, dict[str, Any]] = {}
    for alert in alerts:
        key = alert_key(alert)
        # a resolved record wins over a stale firing copy of the same episode
        if key not in by_key or alert.get("status") == "resolved":
            by_key[key] = alert
    events: list[dict[str, Any]] = []
    new_state: dict[str, str] = {}
    for key, alert in sorted(by_key.items(), key=lambda kv: (kv[1].get("resolved_at") or kv[1].get("started_at") or 0)):
        status = alert.get("status")
        previous = sent.get(key)
        if status == "firing":
            if previous != "firing":
                events.append(alert)
            new_state[key] = "firing"
        else:
            if previous == "firing" or (previous is None and recovering):
                events.append(alert)
            elif previous is None and not first_run:
                events.append({**alert, "status": "firing", "resolved_at": None})
                events.append(alert)
            new_state[key] = "resolved"
    for key, previous in sent.items():
        gone = (remembered or {}).get(key)
        if previous == "firing" and key not in by_key and isinstance(gone, dict):
            message = str(gone.get("message") or gone.get("name"))
            events.append({**gone, "status": "resolved", "resolved_at": now,
                           "message": f"{message} (resolved: the server no longer reports it; it restarted "
                                      f"or its alert history moved on)"})
            new_state[key] = "resolved"
    return events, new_state


_REMEMBERED_FIELDS = ("name", "severity", "fingerprint", "labels", "message", "started_at", "started_at_sim")


def forward_alerts(base_url: str, summary: dict[str, Any], sinks: list[Any], path: Path,
                   timeout: float = DEFAULT_TIMEOUT_S) -> int:
    """Send new alert events to the sinks, remembering them in ``path``. Returns events sent.

    An event a sink did not deliver keeps its old state, so the next run sends it again; the
    webhook sink's spool knows its idempotency key and never queues it twice.
    """
    from raftctl.commands._common import CliError, http_get_json

    deadline = time.monotonic() + timeout
    try:
        alerts = collect_alerts(http_get_json(base_url, "/api/alerts", timeout=timeout))
    except CliError:
        alerts = collect_alerts({"alerts": summary.get("alerts") or []})
    with _StateFile(path) as state:
        if state.problems:
            _warn(state.warning())
        servers = state.data.setdefault("servers", {})
        recovering = state.reset_all or base_url in state.reset_servers
        first_run = base_url not in servers
        previous = servers.get(base_url, {})
        # the alerts last sent as firing, whole: to resolve one the server no longer lists
        firing_docs = state.data.get("firing")
        if not isinstance(firing_docs, dict):
            firing_docs = state.data["firing"] = {}
        remembered = firing_docs.get(base_url)
        if not isinstance(remembered, dict):
            remembered = {}
        events, new_state = plan_events(alerts, previous, first_run, recovering=recovering,
                                        remembered=remembered, now=time.time())
        # what the receiver was last told is firing: a fresh webhook sink needs it to send
        # whole groups, as Alertmanager does
        told_firing = {}
        for key, doc in remembered.items():
            if previous.get(key) == "firing" and isinstance(doc, dict):
                told_firing[key] = dict(doc, status="firing", resolved_at=None)
        for alert in alerts:
            if previous.get(alert_key(alert)) == "firing":
                told_firing[alert_key(alert)] = dict(alert, status="firing", resolved_at=None)
        failed_keys: set[str] = set()
        try:
            for sink in sinks:
                if hasattr(sink, "set_dashboard_url") and not getattr(sink, "dashboard_url", None):
                    sink.set_dashboard_url(base_url)
                left = max(0.0, deadline - time.monotonic())
                if hasattr(sink, "drain"):
                    sink.drain = min(float(sink.drain), left)
                if hasattr(sink, "timeout"):
                    # a request in flight is bounded by what is left of -t too, not only by the
                    # sink's own timeout= (which a close waits out); what it does not deliver
                    # stays spooled for the next run
                    sink.timeout = max(0.05, min(float(sink.timeout), left))
                _open(sink)
                prime = getattr(sink, "prime", None)
                if callable(prime):
                    prime(list(told_firing.values()))
            for event in events:
                for sink in sinks:
                    if not _emit_alert(sink, event):
                        failed_keys.add(alert_key(event))
        finally:
            failures = _close_all(sinks)
        for sink in sinks:
            outcome = getattr(sink, "outcome", None)
            if callable(outcome):
                for event in events:
                    if outcome(event) in (None, "pending"):  # expired / refused ones are final
                        failed_keys.add(alert_key(event))
        for key in failed_keys:
            # not delivered: keep the old state so the next run tries again
            if key in previous:
                new_state[key] = previous[key]
            else:
                new_state.pop(key, None)
        servers[base_url] = new_state
        listed = {alert_key(alert): alert for alert in alerts}
        firing_docs[base_url] = {
            key: {field: doc.get(field) for field in _REMEMBERED_FIELDS}
            for key, status in new_state.items() if status == "firing"
            for doc in (listed.get(key) or remembered.get(key),) if isinstance(doc, dict)}
        state.save()
        if failures or failed_keys:
            raise CliError("; ".join(failures) or f"{len(failed_keys)} alert event(s) not delivered yet; "
                           "will retry next run")
    return len(events)


def _open(sink: Any) -> None:
    sink.open()


def _emit_alert(sink: Any, alert: dict[str, Any]) -> bool:
    """Hand one event to a sink; False when the sink reports a failure at once."""
    failed_before = getattr(sink, "failed", 0)
    try:
        sink.emit_alert(alert)
    except Exception:  # noqa: BLE001 - any sink failure means "not delivered, retry next run"
        return False
    failed_after = getattr(sink, "failed", 0)
    return not (isinstance(failed_after, int) and failed_after > failed_before)


def _close_all(sinks: list[Any]) -> list[str]:
    failures = []
    for sink in sinks:
        try:
            sink.close()
        except Exception as err:  # noqa: BLE001 - one broken sink must not hide the others' results
            failures.append(f"{getattr(sink, 'name', type(sink).__name__)}: {err}")
    return failures


def _close_quietly(sinks: list[Any]) -> None:
    try:
        _close_all(sinks)
    except Exception:  # noqa: BLE001, S110 - the check's verdict matters more than closing
        pass


STATE_VERSION = 1
_SENT_STATUSES = ("firing", "resolved")


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _shown(text: str, limit: int = 60) -> str:
    """``text`` as a JSON string, shortened to ``limit`` characters."""
    import orjson

    quoted = orjson.dumps(text).decode()
    return quoted if len(quoted) <= limit else quoted[: limit - 4] + '..."'


@dataclass
class LoadedState:
    """A state document checked at every level: what is usable, and what was not (reset)."""

    data: dict[str, Any]
    problems: list[str]
    reset_all: bool = False  # nothing could be used: every server starts over
    reset_servers: set[str] = field(default_factory=set)  # servers whose entries were (partly) dropped


def load_state(raw: bytes) -> LoadedState:
    """Parse and check a state file's bytes (pure): ``{"version": 1, "servers": {URL: {alert_key:
    "firing"|"resolved"}}, "firing": {URL: {alert_key: the alert last sent as firing}}}``. Keeps
    every part that has the right shape, drops the rest and says what in ``problems``; other
    top-level keys are kept as they are."""
    import orjson

    if not raw.strip():
        return LoadedState({}, ["it is empty"], reset_all=True)
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        return LoadedState({}, [f"it is not JSON ({' '.join(str(err).split())})"], reset_all=True)
    if not isinstance(doc, dict):
        return LoadedState({}, [f"the document is {_json_kind(doc)}, not an object"], reset_all=True)
    if "version" in doc and not (type(doc["version"]) is int and doc["version"] == STATE_VERSION):
        version = doc["version"]
        shown = str(version) if type(version) is int else _json_kind(version)
        return LoadedState({}, [f'"version" is {shown}, not {STATE_VERSION}'], reset_all=True)
    servers = doc.get("servers", {})
    if not isinstance(servers, dict):
        return LoadedState({}, [f'"servers" is {_json_kind(servers)}, not an object'], reset_all=True)
    problems: list[str] = []
    reset: set[str] = set()
    data = dict(doc)
    if "servers" in doc:
        data["servers"] = _checked_per_server("servers", servers, _status_problem, problems, reset)
    if "firing" in doc:
        firing = doc["firing"]
        if isinstance(firing, dict):
            data["firing"] = _checked_per_server("firing", firing, _remembered_problem, problems, reset)
        else:
            problems.append(f'"firing" is {_json_kind(firing)}, not an object')
            data["firing"] = {}
    return LoadedState(data, problems, reset_servers=reset)


def _remembered_problem(alert: Any) -> str | None:
    """What is wrong with one remembered firing alert (``_REMEMBERED_FIELDS``), None if usable:
    a resolution is made of it later, and a webhook's group of it, so every field has its type."""
    if not isinstance(alert, dict):
        return f"is {_json_kind(alert)}, not an object"
    name = alert.get("name")
    if not isinstance(name, str) or not name:
        return '"name" is missing' if name is None else f'"name" is {_json_kind(name)}, not a name'
    for text in ("severity", "fingerprint", "message"):
        value = alert.get(text)
        if value is not None and not isinstance(value, str):
            return f'"{text}" is {_json_kind(value)}, not a string'
    for number in ("started_at", "started_at_sim"):
        value = alert.get(number)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value)):
            return f'"{number}" is {_json_kind(value)}, not a number of seconds'
    labels = alert.get("labels")
    if labels is not None and (not isinstance(labels, dict)
                               or not all(isinstance(v, str) for v in labels.values())):
        return '"labels" is not an object of strings'
    return None


def _status_problem(status: Any) -> str | None:
    """What is wrong with one ``servers`` entry (the status last sent), None if usable."""
    if status in _SENT_STATUSES:
        return None
    shown = _shown(status, 20) if isinstance(status, str) else _json_kind(status)
    return f'is {shown}, not "firing" or "resolved"'


def _checked_per_server(part: str, by_server: dict[str, Any], problem: Callable[[Any], str | None],
                        problems: list[str], reset: set[str]) -> dict[str, dict[str, Any]]:
    """A part of the state (URL -> alert_key -> entry), each entry checked by ``problem``; what is
    broken is dropped and said in ``problems``, and its server is ``reset`` (recovering: what fires
    now is sent again, and the webhook spool drops what it delivered already)."""
    kept: dict[str, dict[str, Any]] = {}
    for url, entries in by_server.items():
        where = f"{part}[{_shown(url)}]"
        if not isinstance(entries, dict):
            problems.append(f"{where} is {_json_kind(entries)}, not an object")
            reset.add(url)
            continue
        usable: dict[str, Any] = {}
        for key, entry in entries.items():
            wrong = problem(entry)
            if wrong is None:
                usable[key] = entry
            else:
                problems.append(f"{where}[{_shown(key)}] {wrong}")
                reset.add(url)
        kept[url] = usable
    return kept


class _StateFile:
    """The JSON state file, locked against a concurrent run and replaced atomically on save.

    A file that is there but cannot be used (empty, not JSON, the wrong shape at any level) is
    reset, entirely or in the parts that are wrong; ``problems`` says what was wrong (the caller
    warns once: the next save writes a good file)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path).expanduser()
        self.data: dict[str, Any] = {}
        self.problems: list[str] = []
        self.reset_all = False
        self.reset_servers: set[str] = set()
        self._lock_file: Any = None

    def __enter__(self) -> Self:
        from raftctl.commands._common import CliError

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_file = open(str(self.path) + ".lock", "a+b")
        except OSError as err:
            raise CliError(f"cannot use state file {self.path}: {err.strerror or err}") from None
        try:
            import fcntl

            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX)
        except ImportError:  # not POSIX: run without the lock
            pass
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return self  # a first run
        except OSError as err:
            self._lock_file.close()
            raise CliError(f"cannot read state file {self.path}: {err.strerror or err}") from None
        loaded = load_state(raw)
        self.data, self.problems = loaded.data, loaded.problems
        self.reset_all, self.reset_servers = loaded.reset_all, loaded.reset_servers
        return self

    def warning(self) -> str:
        """One line: what was wrong with the file and that it was reset."""
        shown = self.problems[:3]
        more = len(self.problems) - len(shown)
        what = "; ".join(shown) + (f" (+{more} more)" if more > 0 else "")
        return f"state file {self.path} was {'reset' if self.reset_all else 'partly reset'}: {what}"

    def save(self) -> None:
        import tempfile

        import orjson

        from raftctl.commands._common import CliError

        self.data["version"] = STATE_VERSION
        tmp: str | None = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=".alerts-state.", dir=str(self.path.parent))
            with os.fdopen(fd, "wb") as handle:
                handle.write(orjson.dumps(self.data, option=orjson.OPT_INDENT_2))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
            tmp = None
            _fsync_directory(self.path.parent)
        except OSError as err:
            raise CliError(f"cannot write state file {self.path}: {err.strerror or err}") from None
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass

    def __exit__(self, *exc: object) -> None:
        if self._lock_file is not None:
            self._lock_file.close()


def _fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (best effort: not every system can open a directory)."""
    try:
        fd = os.open(str(directory), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

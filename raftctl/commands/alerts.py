"""`raftctl alerts`: a Nagios-style check of a running server, optionally forwarding alerts.

Exit codes follow the Nagios plugin conventions: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from raftctl.commands.summary import UrlOption, url_or_usage_error

HELP = "Nagios-style check: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; can forward alerts to sinks."
EPILOG = (
    "Examples:\n\n"
    "  raftctl alerts\n\n"
    "  raftctl alerts --json\n\n"
    "  * * * * * raftctl alerts --url http://127.0.0.1:8080 --sink webhook:http://127.0.0.1:9093/hook"
)

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATUS_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}


def default_state_file() -> Path:
    """$XDG_CACHE_HOME/raftctl/alerts-state.json, or ~/.cache/raftctl/alerts-state.json."""
    cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(cache) if cache else Path.home() / ".cache"
    return base / "raftctl" / "alerts-state.json"


def command(
    url: UrlOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the check result as JSON.")] = False,
    sink: Annotated[
        Optional[list[str]],
        typer.Option("--sink", metavar="SPEC", help="Forward alerts that fired or resolved since the last run "
                     "(e.g. webhook:http://host/hook). Repeatable."),
    ] = None,
    state_file: Annotated[
        Optional[Path],
        typer.Option("--state-file", metavar="PATH", dir_okay=False,
                     help="Where forwarded alerts are remembered \\[default: ~/.cache/raftctl/alerts-state.json]."),
    ] = None,
) -> None:
    """Check a running raftctl server's health and alerts, Nagios style."""
    base = url_or_usage_error(url)
    from raftctl.commands._common import CliError, build_sinks, fetch_summary

    try:
        sinks = build_sinks(sink)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="'--sink'") from None
    try:
        summary = fetch_summary(base)
    except CliError as err:
        _close_quietly(sinks)
        _report({"status": "UNKNOWN", "exit_code": UNKNOWN, "error": err.message},
                f"RAFTCTL UNKNOWN - {err.message}", json_output)
        raise CliError(err.message, exit_code=UNKNOWN) from None
    result = evaluate(summary)
    if sinks:
        path = state_file or default_state_file()
        try:
            sent = forward_alerts(base, summary, sinks, path)
            result["forwarded"] = sent
        except CliError as err:
            result["forward_error"] = err.message
            import sys

            sys.stderr.write(f"raftctl alerts: warning: alerts not forwarded: {err.message}\n")
    _report(result, result["text"], json_output)
    raise typer.Exit(result["exit_code"])


def _report(result: dict[str, Any], line: str, json_output: bool) -> None:
    if json_output:
        from raftctl.commands._common import write_json

        write_json(result)
    else:
        print(line, flush=True)


def evaluate(summary: dict[str, Any]) -> dict[str, Any]:
    """The Nagios verdict for one sample document (pure): status, exit code, text line, perfdata."""
    from raftctl.commands.render import firing_alerts

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
    size = cluster.get("cluster_size")
    perfdata = {
        "healthy_nodes": (cluster.get("healthy_nodes"), "", f";;;0;{_perf_value(size)}"),
        "cluster_size": (size, "", ""),
        "throughput_ops": (perf.get("throughput_ops"), "", ""),
        "avg_latency_ms": (perf.get("avg_latency_ms"), "ms", ""),
        "p50_latency_ms": (perf.get("p50_latency_ms"), "ms", ""),
        "p99_latency_ms": (perf.get("p99_latency_ms"), "ms", ""),
        "total_orders": (perf.get("total_orders"), "c", ""),
        "total_trades": (perf.get("total_trades"), "c", ""),
        "current_term": (cluster.get("current_term"), "", ""),
        "leader_changes": (cluster.get("leader_changes"), "c", ""),
        "firing_alerts": (len(firing), "", ""),
    }
    perf_text = " ".join(
        f"{name}={_perf_value(value)}{unit if value is not None else ''}{suffix}"
        for name, (value, unit, suffix) in perfdata.items()
        if name not in ("p50_latency_ms", "p99_latency_ms", "leader_changes") or value is not None
    )
    leader = cluster.get("leader_node") or "none"
    detail = f"{health}, {cluster.get('healthy_nodes', '?')}/{size if size is not None else '?'} nodes healthy, leader {leader}"
    if firing:
        names = ", ".join(f"{alert_title(a)} ({a.get('severity', 'warning')})" for a in firing)
        detail += f"; firing: {names}"
    else:
        detail += "; no alerts firing"
    status = STATUS_NAMES[code]
    return {
        "status": status,
        "exit_code": code,
        "health_status": health,
        "firing": [{k: a.get(k) for k in ("name", "severity", "message", "fingerprint", "started_at", "labels")}
                   for a in firing],
        "perfdata": {name: value for name, (value, _u, _s) in perfdata.items()},
        "text": f"RAFTCTL {status} - {detail} | {perf_text}",
    }


def alert_title(alert: dict[str, Any]) -> str:
    """An alert's name with its shard label, e.g. ``leader_election_failure[shard=2]``."""
    labels = alert.get("labels")
    shard = labels.get("shard") if isinstance(labels, dict) else None
    return f"{alert.get('name')}[shard={shard}]" if shard is not None else str(alert.get("name"))


def _perf_value(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return "U"  # Nagios: undetermined
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value == value else "U"
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


def plan_events(alerts: list[dict[str, Any]], sent: dict[str, str], first_run: bool) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Decide which alert events to send (pure). Returns (events in order, new sent-state).

    ``sent`` maps alert_key -> the last status sent. A resolution is sent once after its firing;
    an episode that fired and resolved between two runs is sent as both. On the first run
    (no state yet) only alerts firing now are sent, so history is not replayed to a pager.
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
            if previous == "firing":
                events.append(alert)
            elif previous is None and not first_run:
                events.append({**alert, "status": "firing", "resolved_at": None})
                events.append(alert)
            new_state[key] = "resolved"
    return events, new_state


def forward_alerts(base_url: str, summary: dict[str, Any], sinks: list[Any], path: Path) -> int:
    """Send new alert events to the sinks, remembering them in ``path``. Returns events sent."""
    from raftctl.commands._common import CliError, http_get_json

    try:
        alerts = collect_alerts(http_get_json(base_url, "/api/alerts"))
    except CliError:
        alerts = collect_alerts({"alerts": summary.get("alerts") or []})
    with _StateFile(path) as state:
        servers = state.data.setdefault("servers", {})
        first_run = base_url not in servers
        events, new_state = plan_events(alerts, servers.get(base_url, {}), first_run)
        failed_keys: set[str] = set()
        try:
            for sink in sinks:
                _open(sink)
            for event in events:
                for sink in sinks:
                    if not _emit_alert(sink, event):
                        failed_keys.add(alert_key(event))
        finally:
            failures = _close_all(sinks)
        previous = servers.get(base_url, {})
        for key in failed_keys:
            # not delivered: keep the old state so the next run tries again
            if key in previous:
                new_state[key] = previous[key]
            else:
                new_state.pop(key, None)
        servers[base_url] = new_state
        state.save()
        if failures or failed_keys:
            raise CliError("; ".join(failures) or f"{len(failed_keys)} alert event(s) not delivered; will retry next run")
    return len(events)


def _open(sink: Any) -> None:
    sink.open()


def _emit_alert(sink: Any, alert: dict[str, Any]) -> bool:
    """Deliver one event synchronously; False when the sink reports a failure."""
    failed_before = getattr(sink, "failed", 0)
    try:
        sink.emit_alert(alert)
    except Exception:
        return False
    failed_after = getattr(sink, "failed", 0)
    return not (isinstance(failed_after, int) and failed_after > failed_before)


def _close_all(sinks: list[Any]) -> list[str]:
    failures = []
    for sink in sinks:
        try:
            sink.close()
        except Exception as err:  # one broken sink must not hide the others' results
            failures.append(f"{getattr(sink, 'name', type(sink).__name__)}: {err}")
    return failures


def _close_quietly(sinks: list[Any]) -> None:
    try:
        _close_all(sinks)
    except Exception:
        pass


class _StateFile:
    """The JSON state file, locked against a concurrent run and replaced atomically on save."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path).expanduser()
        self.data: dict[str, Any] = {}
        self._lock_file: Any = None

    def __enter__(self) -> "_StateFile":
        import orjson

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
            raw = b""
        except OSError as err:
            raise CliError(f"cannot read state file {self.path}: {err.strerror or err}") from None
        if raw:
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError:
                data = {}  # a damaged state file costs at most one repeated notification
            self.data = data if isinstance(data, dict) else {}
        return self

    def save(self) -> None:
        import tempfile

        import orjson

        from raftctl.commands._common import CliError

        self.data["version"] = 1
        try:
            fd, tmp = tempfile.mkstemp(prefix=".alerts-state.", dir=str(self.path.parent))
            with os.fdopen(fd, "wb") as handle:
                handle.write(orjson.dumps(self.data, option=orjson.OPT_INDENT_2))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except OSError as err:
            raise CliError(f"cannot write state file {self.path}: {err.strerror or err}") from None

    def __exit__(self, *exc: Any) -> None:
        if self._lock_file is not None:
            self._lock_file.close()

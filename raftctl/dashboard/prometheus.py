"""Render a sample document as Prometheus text format 0.0.4 or OpenMetrics 1.0.0.

A sample dict in, bytes out; the only input from outside the document is this process's own
``process_*`` figures, read from ``/proc`` (pass ``process=`` to render without reading it).

Names follow the Prometheus conventions: the ``raftctl_`` prefix, base units (seconds, not ms),
``_total`` on counters, counts named for what they count (``_entries``, ``_nodes``, ``_peers``),
consensus latency as a histogram. Series about one Raft group carry a ``shard`` label on every
cluster, ``shard="0"`` when there is only one group; per-shard breakdowns of the performance
figures appear only when the cluster is sharded. No series carries a label named ``alertname``
(Prometheus sets that label on its own alerts, and a rule over a series that has it fails).
A field the document lacks, or holds as null, yields no series: no fake 0. The shipped rules and
dashboard (``deploy/``) are written against these names; README.md lists the renamed ones.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from raftctl.core.sample import HEALTH_STATES, NODE_STATES
from raftctl.core.source import NO_ANSWER_REASONS

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# labels an alert's own labels may not override or add: ours, and the one Prometheus reserves
_RESERVED_ALERT_LABELS = frozenset({"alert", "severity", "alertname"})

# (sample-name suffix, labels, value)
Sample = tuple[str, dict[str, str], float]
ProcessReader = Callable[[], "Mapping[str, float]"]


def wants_openmetrics(accept: str | None) -> bool:
    """True when an Accept header lists application/openmetrics-text (with q > 0)."""
    if not accept:
        return False
    for item in accept.split(","):
        parts = [p.strip() for p in item.split(";")]
        if parts[0].lower() != "application/openmetrics-text":
            continue
        q = 1.0
        for param in parts[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0:
            return True
    return False


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def _format_value(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _format_le(bound: float) -> str:
    """A bucket bound as Go's client and client_python print it: 0.005, 1.0, +Inf."""
    if math.isinf(bound):
        return "+Inf"
    return repr(float(bound))


def _number(value: Any) -> float | None:
    """Numeric value of a document field; None when absent, null, not a number or NaN."""
    if isinstance(value, bool):
        return 1 if value else 0
    if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
        return value
    return None


def _seconds(millis: Any) -> float | None:
    number = _number(millis)
    # round off the binary noise of ms / 1000 (5.486 ms -> 0.005486 s, not 0.0054859999999999996)
    return None if number is None else round(number / 1000.0, 9)


class _Family:
    __slots__ = ("help", "kind", "name", "samples")

    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.name = name
        self.kind = kind  # gauge | counter | histogram | info
        self.help = help_text
        self.samples: list[Sample] = []

    def add(self, value: Any, labels: Mapping[str, str] | None = None, suffix: str = "") -> None:
        number = _number(value)
        if number is not None:
            self.samples.append((suffix, dict(labels or {}), number))


class _Builder:
    def __init__(self) -> None:
        self.families: list[_Family] = []

    def __call__(self, name: str, kind: str, help_text: str) -> _Family:
        fam = _Family(name, kind, help_text)
        self.families.append(fam)
        return fam


def _version() -> str:
    try:
        from raftctl import __version__
    except ImportError:  # pragma: no cover - the package always has one
        return "unknown"
    return str(__version__)


def _families(doc: Mapping[str, Any] | None, process: Mapping[str, float] | None) -> list[_Family]:
    family = _Builder()
    family("raftctl_build", "info", "raftctl build information").add(1, {"version": _version()})
    family("raftctl_sample_available", "gauge", "1 when the collector has taken at least one sample").add(
        doc is not None
    )
    if doc is not None:
        _cluster_families(family, doc)
    if process:
        _process_families(family, process)
    return family.families


def _cluster_families(family: _Builder, doc: Mapping[str, Any]) -> None:
    cluster = doc.get("cluster") or {}
    perf = doc.get("performance") or {}
    nodes = doc.get("nodes") or {}
    collector = doc.get("collector") or {}
    raw_shards = doc.get("shards")
    raw_list: list[Any] = raw_shards if isinstance(raw_shards, list) else []
    sharded = bool(raw_list)
    shard_docs = [d for d in raw_list if isinstance(d, dict) and d.get("shard") is not None]

    # whole cluster
    family("raftctl_cluster_nodes", "gauge", "Nodes in the cluster").add(cluster.get("cluster_size"))
    family("raftctl_cluster_nodes_reached", "gauge",
           "Nodes that answered the monitor's last poll (fewer than a majority: it cannot vouch for "
           "the cluster)").add(cluster.get("nodes_reached"))
    family("raftctl_cluster_healthy_nodes", "gauge",
           "Nodes up and, when there is a leader, heard from by it recently").add(cluster.get("healthy_nodes"))
    status = cluster.get("health_status")
    health = family("raftctl_cluster_health_status", "gauge",
                    "Cluster health (the worst shard's): 1 for the current status, 0 for the others")
    if status is not None:
        for state in HEALTH_STATES:
            health.add(state == status, {"status": state})
    family("raftctl_cluster_has_quorum", "gauge",
           "0 when so many nodes refused the poll that no majority can be up; 1 when a majority answered "
           "and none is lost; no sample when fewer than a majority answered (unknown)").add(cluster.get("has_quorum"))
    family("raftctl_cluster_consensus_aligned", "gauge",
           "1 when, in every shard, live replicas at the same applied index hold the same state").add(
        cluster.get("consensus_aligned"))
    family("raftctl_cluster_shards", "gauge", "Raft groups (shards) in the cluster").add(
        len(raw_list) if sharded else 1)
    family("raftctl_cluster_leader_changes", "counter",
           "Leader changes beyond each shard's first leader since start").add(cluster.get("leader_changes"))

    # performance (whole cluster; a per-shard breakdown below when sharded)
    family("raftctl_orders_submitted", "counter", "Orders submitted by clients since start").add(
        perf.get("total_orders"))
    family("raftctl_trades_executed", "counter", "Trades executed by the matching engine since start").add(
        perf.get("total_trades"))
    family("raftctl_committed_orders", "counter",
           "Orders the client saw committed (etcd: proposals the cluster committed) since the "
           "source started; rate() of it is the throughput").add(perf.get("total_committed"))
    _latency_histogram(family, doc.get("latency_histogram"))
    family("raftctl_committed_orders_per_second", "gauge",
           "Orders committed per second over the last collection interval; "
           "prefer rate(raftctl_committed_orders_total[1m])").add(perf.get("throughput_ops"))
    for key, name, text in (
        ("avg_latency_ms", "raftctl_consensus_latency_avg_seconds", "Mean"),
        ("p50_latency_ms", "raftctl_consensus_latency_p50_seconds", "Median"),
        ("p99_latency_ms", "raftctl_consensus_latency_p99_seconds", "99th percentile"),
    ):
        family(name, "gauge", f"{text} submit-to-commit latency of the orders committed in the last "
                              "collection interval (absent when none committed)").add(_seconds(perf.get(key)))
    family("raftctl_proposals_pending", "gauge", "Orders submitted and neither committed nor failed yet").add(
        perf.get("proposals_pending"))
    family("raftctl_proposals_failed", "counter", "Orders whose proposal failed since start").add(
        perf.get("proposals_failed"))

    _group_families(family, doc, shard_docs if sharded else None)
    _node_families(family, nodes, shard_docs if sharded else None, cluster)

    alerts_fam = family("raftctl_alert_firing", "gauge",
                        "1 for each alert raftctl's own rules fire; label alert is its name")
    for alert in doc.get("alerts") or []:
        if not isinstance(alert, dict) or alert.get("status", "firing") != "firing":
            continue
        labels = {"alert": str(alert.get("name", "")), "severity": str(alert.get("severity", ""))}
        # per-shard alerts share a name; their labels (e.g. shard) keep the series distinct
        for key, value in sorted((alert.get("labels") or {}).items()):
            key = str(key)
            if key not in _RESERVED_ALERT_LABELS and _LABEL_NAME.match(key) and not key.startswith("__"):
                labels[key] = str(value)
        alerts_fam.add(1, labels)

    family("raftctl_collector_interval_seconds", "gauge", "Configured time between two samples").add(
        collector.get("collection_interval"))
    family("raftctl_collector_samples_retained", "gauge", "Samples held in the retention window").add(
        collector.get("samples_retained"))
    family("raftctl_collector_collection_duration_seconds", "gauge", "Time the last collection took").add(
        _seconds(collector.get("collection_ms")))
    for key, name, text in (
        ("samples_collected", "raftctl_collector_samples_collected", "Samples taken since start"),
        ("alerts_fired", "raftctl_collector_alerts_fired", "Alerts raftctl's rules fired since start"),
        ("alerts_resolved", "raftctl_collector_alerts_resolved", "Alerts raftctl's rules resolved since start"),
        ("missed_ticks", "raftctl_collector_missed_ticks", "Collection ticks skipped because one ran late"),
        ("sink_events_dropped", "raftctl_collector_sink_events_dropped",
         "Sink events dropped because a queue was full"),
        ("sink_errors", "raftctl_collector_sink_errors", "Exceptions raised by sinks"),
        ("sink_delivery_failures", "raftctl_collector_sink_delivery_failures",
         "Events a sink gave up delivering"),
        ("sink_delivered", "raftctl_collector_sink_delivered",
         "Events a sink delivered (a webhook: its receiver answered 2xx)"),
        ("sink_expired", "raftctl_collector_sink_expired", "Events a sink gave up on after its max_age"),
    ):
        family(name, "counter", text).add(collector.get(key))
    # a receiver that refuses every push counts no failure until max_age: the backlog shows it at once
    family("raftctl_collector_sink_pending", "gauge",
           "Events queued or spooled by sinks and not delivered yet (retrying)").add(collector.get("sink_pending"))
    family("raftctl_last_sample_timestamp_seconds", "gauge", "Unix time of the newest sample").add(
        doc.get("timestamp"))


def _latency_histogram(family: _Builder, hist: Any) -> None:
    """The sample's ``latency_histogram`` as a histogram; nothing when absent or malformed."""
    fam = family("raftctl_consensus_latency_seconds", "histogram",
                 "Submit-to-commit latency of committed orders since the collector started")
    if not isinstance(hist, dict):
        return
    bounds, counts = hist.get("le"), hist.get("counts")
    count, total = _number(hist.get("count")), _number(hist.get("sum"))
    if not isinstance(bounds, list) or not isinstance(counts, list) or len(bounds) != len(counts):
        return
    if count is None or total is None:
        return
    pairs = [(_number(b), _number(c)) for b, c in zip(bounds, counts)]
    if any(b is None or c is None for b, c in pairs):
        return
    previous_bound, previous_count = -math.inf, 0.0
    for bound, bucket in pairs:
        assert bound is not None and bucket is not None
        # buckets must be cumulative over increasing bounds, or the histogram means nothing
        if bound <= previous_bound or bucket < previous_count or bucket > count:
            return
        previous_bound, previous_count = bound, bucket
    for bound, bucket in pairs:
        assert bound is not None
        fam.add(bucket, {"le": _format_le(bound)}, "_bucket")
    fam.add(count, {"le": "+Inf"}, "_bucket")
    fam.add(total, None, "_sum")
    fam.add(count, None, "_count")


def _group_families(family: _Builder, doc: Mapping[str, Any], shard_docs: list[dict] | None) -> None:
    """One series per Raft group: ``shard`` from the ``shards`` list, or ``shard="0"`` unsharded."""
    cluster = doc.get("cluster") or {}
    nodes = doc.get("nodes") or {}
    perf = doc.get("performance") or {}
    if shard_docs is None:
        leader = cluster.get("leader_node") or cluster.get("leader")
        leader_doc = nodes.get(leader) if leader is not None else None
        groups = [{
            "shard": 0, "leader": leader, "term": cluster.get("current_term"),
            "commit_index": (leader_doc or {}).get("commit_index"),
            "last_applied": (leader_doc or {}).get("last_applied"),
            "consensus_aligned": cluster.get("consensus_aligned"),
            "health_status": cluster.get("health_status"),
        }]
    else:
        groups = shard_docs
    has_leader = family("raftctl_shard_has_leader", "gauge", "1 when the shard has a live leader")
    leader_fam = family("raftctl_shard_leader", "gauge", "1 for the node leading the shard, 0 for the others")
    term = family("raftctl_shard_term", "gauge", "Raft term of the shard's leader (highest live term without one)")
    commit = family("raftctl_shard_commit_index", "gauge",
                    "Commit index of the shard's leader (absent while leaderless)")
    applied = family("raftctl_shard_last_applied", "gauge",
                     "Last applied index of the shard's leader (absent while leaderless)")
    aligned = family("raftctl_shard_consensus_aligned", "gauge",
                     "1 when the shard's live replicas at the same applied index hold the same state")
    health = family("raftctl_shard_health_status", "gauge",
                    "Shard health: 1 for the current status, 0 for the others")
    pending = family("raftctl_shard_proposals_pending", "gauge",
                     "Orders submitted for the shard and not yet acknowledged (unsharded: the cluster's)")
    changes = family("raftctl_shard_leader_changes", "counter",
                     "Leader changes of the shard beyond its first leader since start (unsharded: the cluster's)")
    if shard_docs is None:
        groups[0]["proposals_pending"] = perf.get("proposals_pending")
        groups[0]["leader_changes"] = cluster.get("leader_changes")
    for group in groups:
        shard = {"shard": str(group["shard"])}
        leader = group.get("leader")
        has_leader.add(leader is not None, shard)
        for node_id in nodes:
            leader_fam.add(node_id == leader, {**shard, "node": str(node_id)})
        term.add(group.get("term"), shard)
        if leader is not None:  # a leaderless group has no authoritative index; a gap beats a drop to 0
            commit.add(group.get("commit_index"), shard)
            applied.add(group.get("last_applied"), shard)
        aligned.add(group.get("consensus_aligned"), shard)
        pending.add(group.get("proposals_pending"), shard)  # absent when the source cannot split them
        changes.add(group.get("leader_changes"), shard)
        status = group.get("health_status")
        if status is not None:
            for state in HEALTH_STATES:
                health.add(state == status, {**shard, "status": state})
    # per shard from the shard documents; unsharded, the collector's over the node reports
    apply_lag = family("raftctl_commit_apply_lag_entries", "gauge",
                       "Largest commit_index - last_applied over the shard's live replicas")
    if shard_docs is None:
        apply_lag.add(perf.get("commit_apply_lag"), {"shard": "0"})
    else:
        for group in shard_docs:
            apply_lag.add(group.get("commit_apply_lag"), {"shard": str(group["shard"])})
    if shard_docs is not None:
        throughput = family("raftctl_shard_committed_orders_per_second", "gauge",
                            "Orders per second the shard committed over the last collection interval")
        latency = family("raftctl_shard_consensus_latency_avg_seconds", "gauge",
                         "Mean submit-to-commit latency of the shard's orders in the last collection interval")
        for group in shard_docs:
            shard = {"shard": str(group["shard"])}
            throughput.add(group.get("throughput_ops"), shard)
            latency.add(_seconds(group.get("avg_latency_ms")), shard)


_REPORTED_BY_NODE = frozenset({"term", "commit_index", "last_applied", "log_length"})


def _node_families(family: _Builder, nodes: Mapping[str, Any], shard_docs: list[dict] | None,
                   cluster: Mapping[str, Any]) -> None:
    family_up = family("raftctl_node_up", "gauge", "1 when the node answers the monitor")
    peers = family("raftctl_node_connected_peers", "gauge",
                   "Peers the node's own transport is connected to (as it reports them)")
    down = family("raftctl_node_down_reason", "gauge",
                  "Why a node did not answer the monitor (timeout, refused, error): 1 for the reason, "
                  "0 for the others; absent for a node that answers")
    for node_id, node in nodes.items():
        node = node or {}
        family_up.add(node.get("up"), {"node": str(node_id)})
        if node.get("up") is not False:  # a node that does not answer reports no peers
            peers.add(node.get("peers_connected"), {"node": str(node_id)})
        reason = node.get("down_reason")
        if node.get("up") is False and reason is not None:
            for known in NO_ANSWER_REASONS:
                down.add(known == reason, {"node": str(node_id), "reason": known})
    # one series per node and Raft group: a sharded sample lists every replica in
    # nodes[id]["shards"]; otherwise the node's own fields are its replica of shard 0
    replicas: list[tuple[str, str, Mapping[str, Any]]] = []
    # what a node that does not answer would report is unknown: no series, never a made-up 0
    silent = {str(node_id) for node_id, node in nodes.items() if (node or {}).get("up") is False}
    for node_id, node in nodes.items():
        node = node or {}
        listed = node.get("shards")
        if isinstance(listed, list) and listed:
            replicas += [(str(node_id), str(replica.get("shard")), replica)
                         for replica in listed if isinstance(replica, dict)]
        else:
            replicas.append((str(node_id), "0", node))
    for key, name, text, scale in (
        ("term", "raftctl_node_term", "Raft term of the node's replica (absent while it does not answer)", None),
        ("commit_index", "raftctl_node_commit_index", "Highest log index the replica knows committed", None),
        ("last_applied", "raftctl_node_last_applied", "Highest log index the replica applied", None),
        ("log_length", "raftctl_node_log_entries", "Log entries the replica holds (after compaction)", None),
        ("replication_lag", "raftctl_node_replication_lag_entries",
         "Entries the replica is behind its leader's commit index (absent without a leader)", None),
        ("last_contact_ms", "raftctl_node_last_contact_seconds",
         "Time since the shard's leader last heard from this follower (absent for the leader)", 1000.0),
    ):
        fam = family(name, "gauge", text)
        for node_id, shard, replica in replicas:
            if node_id in silent and key in _REPORTED_BY_NODE:
                continue
            value = replica.get(key)
            if scale is not None:
                value = _seconds(value)
            fam.add(value, {"node": node_id, "shard": shard})
    state_fam = family("raftctl_node_state", "gauge", "Replica role: 1 for the current state, 0 for the others")
    for node_id, shard, replica in replicas:
        current = replica.get("state")
        if current is None:
            continue
        for state in NODE_STATES:
            state_fam.add(state == current, {"node": node_id, "shard": shard, "state": state})
    leads = family("raftctl_node_leader_shards", "gauge", "Shards the node leads")
    counts = {str(node_id): 0 for node_id in nodes}
    if shard_docs is None:
        leaders = [cluster.get("leader_node") or cluster.get("leader")]
    else:
        leaders = [d.get("leader") for d in shard_docs]
    for leader in leaders:
        if leader is not None and str(leader) in counts:
            counts[str(leader)] += 1
    for node_id, count in counts.items():
        leads.add(count, {"node": node_id})


# ---------------------------------------------------------------------------------------------
# process_* metrics, as client_python's process collector names them on Linux

_PROCESS_HELP = {
    "process_virtual_memory_bytes": ("gauge", "Virtual memory size in bytes."),
    "process_resident_memory_bytes": ("gauge", "Resident memory size in bytes."),
    "process_start_time_seconds": ("gauge", "Start time of the process since unix epoch in seconds."),
    "process_cpu_seconds": ("counter", "Total user and system CPU time spent in seconds."),
    "process_open_fds": ("gauge", "Number of open file descriptors."),
    "process_max_fds": ("gauge", "Maximum number of open file descriptors."),
}

_BOOT_TIMES: dict[str, float] = {}  # per proc root; the boot time does not change while we run


def _read_boot_time(proc: str) -> float | None:
    if proc not in _BOOT_TIMES:
        try:
            with open(os.path.join(proc, "stat"), "rb") as handle:
                for line in handle:
                    if line.startswith(b"btime "):
                        _BOOT_TIMES[proc] = float(line.split()[1])
                        break
        except (OSError, ValueError, IndexError):
            return None
    return _BOOT_TIMES.get(proc)


def read_process_stats(proc: str = "/proc", pid: str = "self") -> dict[str, float]:
    """This process's CPU, memory, start time and file descriptors from ``/proc``.

    Keys are the ``process_*`` family names (``process_cpu_seconds`` is rendered with
    ``_total``). Empty where ``/proc`` is missing (not Linux); a figure that cannot be read is
    left out rather than guessed.
    """
    out: dict[str, float] = {}
    base = os.path.join(proc, pid)
    try:
        with open(os.path.join(base, "stat"), "rb") as handle:
            raw = handle.read()
    except OSError:
        return out
    # the command name (field 2) is in parentheses and may hold spaces; fields resume after it
    fields = raw[raw.rfind(b")") + 2:].split()
    try:
        ticks = float(os.sysconf("SC_CLK_TCK"))
        page = float(os.sysconf("SC_PAGE_SIZE"))
        # fields[0] is field 3 (state); utime is field 14, stime 15, starttime 22, vsize 23, rss 24
        out["process_cpu_seconds"] = (float(fields[11]) + float(fields[12])) / ticks
        out["process_virtual_memory_bytes"] = float(fields[20])
        out["process_resident_memory_bytes"] = float(fields[21]) * page
        boot = _read_boot_time(proc)
        if boot is not None:
            out["process_start_time_seconds"] = boot + float(fields[19]) / ticks
    except (IndexError, ValueError, OSError):
        return {}
    try:
        out["process_open_fds"] = float(len(os.listdir(os.path.join(base, "fd"))))
    except OSError:
        pass
    try:
        with open(os.path.join(base, "limits"), "rb") as handle:
            for line in handle:
                if line.startswith(b"Max open files"):
                    soft = line.split()[3]
                    out["process_max_fds"] = math.inf if soft == b"unlimited" else float(soft)
                    break
    except (OSError, IndexError, ValueError):
        pass
    return out


def _process_families(family: _Builder, process: Mapping[str, float]) -> None:
    for name, (kind, text) in _PROCESS_HELP.items():
        family(name, kind, text).add(process.get(name))


# ---------------------------------------------------------------------------------------------
# text formats

def _format_labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{key}="{_escape_label(value)}"' for key, value in labels.items())
    return "{" + inner + "}"


def _render(families: Iterable[_Family], openmetrics: bool) -> bytes:
    lines: list[str] = []
    for fam in families:
        if not fam.samples:
            continue
        if fam.kind == "counter":
            # 0.0.4 names the counter family with its _total suffix; OpenMetrics names it without.
            suffix, meta_name, kind = "_total", (fam.name if openmetrics else fam.name + "_total"), "counter"
        elif fam.kind == "info":
            # OpenMetrics has an info type (family x, sample x_info); 0.0.4 shows it as a gauge
            suffix, meta_name, kind = "_info", (fam.name if openmetrics else fam.name + "_info"), \
                ("info" if openmetrics else "gauge")
        else:
            suffix, meta_name, kind = "", fam.name, fam.kind
        lines.append(f"# HELP {meta_name} {_escape_help(fam.help)}")
        lines.append(f"# TYPE {meta_name} {kind}")
        for sample_suffix, labels, value in fam.samples:
            name = fam.name + (sample_suffix or suffix)
            lines.append(f"{name}{_format_labels(labels)} {_format_value(value)}")
    if openmetrics:
        lines.append("# EOF")
    return ("\n".join(lines) + "\n").encode("utf-8")


_LIVE: Any = object()


def _process(process: Mapping[str, float] | None | Any) -> Mapping[str, float] | None:
    return read_process_stats() if process is _LIVE else process


def render_prometheus(doc: Mapping[str, Any] | None, process: Mapping[str, float] | None | Any = _LIVE) -> bytes:
    """Prometheus text exposition format 0.0.4 for one sample document (None: no sample yet).

    ``process``: the ``process_*`` figures (default: this process's, read now; None: leave out).
    """
    return _render(_families(doc, _process(process)), openmetrics=False)


def render_openmetrics(doc: Mapping[str, Any] | None, process: Mapping[str, float] | None | Any = _LIVE) -> bytes:
    """OpenMetrics 1.0.0 text for one sample document, ending in ``# EOF``."""
    return _render(_families(doc, _process(process)), openmetrics=True)


__all__ = [
    "OPENMETRICS_CONTENT_TYPE",
    "PROMETHEUS_CONTENT_TYPE",
    "read_process_stats",
    "render_openmetrics",
    "render_prometheus",
    "wants_openmetrics",
]


"""Render a sample document as Prometheus text format 0.0.4 or OpenMetrics 1.0.0.

Pure functions: a sample dict in, bytes out. Names follow Prometheus conventions (``raftctl_``
prefix, base units in seconds, counters end in ``_total``) so existing scrapers, recording rules
and Grafana dashboards accept the output unchanged.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

NODE_STATES = ("LEADER", "FOLLOWER", "CANDIDATE", "DOWN")
HEALTH_STATES = ("HEALTHY", "DEGRADED", "UNHEALTHY")
HEALTH_CODES = {state: code for code, state in enumerate(HEALTH_STATES)}
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

Sample = tuple[dict[str, str], float]


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


def _number(value: Any) -> float | None:
    """Numeric value of a document field, None when absent or not a number."""
    if isinstance(value, bool):
        return 1 if value else 0
    if isinstance(value, (int, float)):
        return value
    return None


class _Family:
    __slots__ = ("name", "kind", "help", "samples")

    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.name = name
        self.kind = kind
        self.help = help_text
        self.samples: list[Sample] = []

    def add(self, value: Any, labels: Mapping[str, str] | None = None) -> None:
        number = _number(value)
        if number is not None:
            self.samples.append((dict(labels or {}), number))


def _families(doc: Mapping[str, Any] | None) -> list[_Family]:
    families: list[_Family] = []

    def family(name: str, kind: str, help_text: str) -> _Family:
        fam = _Family(name, kind, help_text)
        families.append(fam)
        return fam

    family("raftctl_sample_available", "gauge", "1 when the collector has taken at least one sample").add(
        doc is not None
    )
    if doc is None:
        return families

    cluster = doc.get("cluster") or {}
    perf = doc.get("performance") or {}
    nodes = doc.get("nodes") or {}
    collector = doc.get("collector") or {}

    family("raftctl_cluster_size", "gauge", "Total nodes in the cluster").add(cluster.get("cluster_size"))
    family("raftctl_cluster_healthy_nodes", "gauge", "Nodes currently operational").add(
        cluster.get("healthy_nodes")
    )
    status = cluster.get("health_status")
    health = family(
        "raftctl_cluster_health_status", "gauge", "Cluster health: 1 for the current status, 0 for the others"
    )
    for state in HEALTH_STATES:
        health.add(state == status, {"status": state})
    leader = cluster.get("leader_node") or cluster.get("leader")
    family("raftctl_cluster_has_leader", "gauge", "1 when the cluster has a live leader").add(leader is not None)
    leader_fam = family("raftctl_cluster_leader", "gauge", "1 for the node that is the current leader, 0 for others")
    for node_id in nodes:
        leader_fam.add(node_id == leader, {"node": str(node_id)})
    family("raftctl_cluster_current_term", "gauge", "Highest Raft term among live nodes").add(
        cluster.get("current_term")
    )
    family("raftctl_cluster_consensus_aligned", "gauge", "1 when live nodes agree on the committed state").add(
        cluster.get("consensus_aligned")
    )
    family("raftctl_cluster_has_quorum", "gauge", "1 when a majority of nodes is up").add(cluster.get("has_quorum"))
    family("raftctl_cluster_leader_changes", "counter", "Leader changes observed since start").add(
        cluster.get("leader_changes")
    )

    family("raftctl_orders", "counter", "Cumulative orders submitted").add(perf.get("total_orders"))
    family("raftctl_trades", "counter", "Cumulative trades executed").add(perf.get("total_trades"))
    family("raftctl_throughput_ops", "gauge", "Current throughput in orders per second").add(
        perf.get("throughput_ops")
    )
    for key, name, text in (
        ("avg_latency_ms", "raftctl_consensus_latency_avg_seconds", "Average consensus latency"),
        ("p50_latency_ms", "raftctl_consensus_latency_p50_seconds", "Median consensus latency"),
        ("p99_latency_ms", "raftctl_consensus_latency_p99_seconds", "99th percentile consensus latency"),
    ):
        millis = _number(perf.get(key))
        family(name, "gauge", text + " in seconds").add(None if millis is None else millis / 1000.0)
    family("raftctl_commit_apply_lag", "gauge", "Committed but not yet applied entries on the leader").add(
        perf.get("commit_apply_lag")
    )

    node_fields = (
        ("up", "raftctl_node_up", "1 when the node is running"),
        ("term", "raftctl_node_term", "Raft term of the node"),
        ("commit_index", "raftctl_node_commit_index", "Highest committed log index"),
        ("last_applied", "raftctl_node_last_applied", "Highest applied log index"),
        ("log_length", "raftctl_node_log_length", "Total log entries held by the node"),
        ("peers_connected", "raftctl_node_peers_connected", "Number of connected peers"),
        ("replication_lag", "raftctl_node_replication_lag", "Entries the node is behind the leader's commit"),
    )
    for key, name, text in node_fields:
        fam = family(name, "gauge", text)
        for node_id, node in nodes.items():
            fam.add((node or {}).get(key), {"node": str(node_id)})
    state_fam = family("raftctl_node_state", "gauge", "Node role: 1 for the current state, 0 for the others")
    for node_id, node in nodes.items():
        current = (node or {}).get("state")
        for state in NODE_STATES:
            state_fam.add(state == current, {"node": str(node_id), "state": state})

    shards = doc.get("shards")
    if isinstance(shards, list) and shards:
        _shard_families(family, shards, nodes)

    alerts_fam = family("raftctl_alert_firing", "gauge", "1 for each firing alert (like Prometheus ALERTS)")
    for alert in doc.get("alerts") or []:
        if alert.get("status", "firing") == "firing":
            labels = {"alertname": str(alert.get("name", "")), "severity": str(alert.get("severity", ""))}
            # per-shard alerts share a name; their labels (e.g. shard) keep the series distinct
            for key, value in sorted((alert.get("labels") or {}).items()):
                if key not in labels and _LABEL_NAME.match(str(key)) and not str(key).startswith("__"):
                    labels[str(key)] = str(value)
            alerts_fam.add(1, labels)

    family("raftctl_collector_samples_retained", "gauge", "Samples held in the retention window").add(
        collector.get("samples_retained")
    )
    millis = _number(collector.get("collection_ms"))
    family("raftctl_collector_collection_seconds", "gauge", "Time the last collection took").add(
        None if millis is None else millis / 1000.0
    )
    family("raftctl_collector_sink_events_dropped", "counter", "Sink events dropped because a queue was full").add(
        collector.get("sink_events_dropped")
    )
    family("raftctl_last_sample_timestamp_seconds", "gauge", "Unix time of the newest sample").add(
        doc.get("timestamp")
    )
    return families


def _shard_families(family: Any, shards: list[Any], nodes: Mapping[str, Any]) -> None:
    """Series labelled ``shard`` for a Multi-Raft document (only emitted when it has shards)."""
    docs = [d for d in shards if isinstance(d, dict) and d.get("shard") is not None]
    family("raftctl_cluster_shards", "gauge", "Raft groups (shards) in the cluster").add(len(shards))
    has_leader = family("raftctl_shard_has_leader", "gauge", "1 when the shard has a live leader")
    leader_fam = family("raftctl_shard_leader", "gauge", "1 for the node leading the shard, 0 for the others")
    leads = family("raftctl_node_leader_shards", "gauge", "Number of shards the node leads")
    counts = {str(node_id): 0 for node_id in nodes}
    for doc in docs:
        shard = str(doc["shard"])
        leader = doc.get("leader")
        has_leader.add(leader is not None, {"shard": shard})
        for node_id in nodes:
            leader_fam.add(node_id == leader, {"shard": shard, "node": str(node_id)})
        if leader is not None and str(leader) in counts:
            counts[str(leader)] += 1
    for node_id, count in counts.items():
        leads.add(count, {"node": node_id})
    for key, name, text in (
        ("term", "raftctl_shard_term", "Raft term of the shard's leader (highest live term without one)"),
        ("commit_index", "raftctl_shard_commit_index", "Commit index of the shard's leader"),
        ("last_applied", "raftctl_shard_last_applied", "Last applied index of the shard's leader"),
        ("consensus_aligned", "raftctl_shard_consensus_aligned", "1 when the shard's replicas agree on their state"),
        ("throughput_ops", "raftctl_shard_throughput_ops", "Orders per second committed by the shard"),
    ):
        fam = family(name, "gauge", text)
        for doc in docs:
            if key in ("commit_index", "last_applied") and doc.get("leader") is None:
                continue  # a leaderless group has no authoritative index; a gap beats a fake drop to 0
            fam.add(doc.get(key), {"shard": str(doc["shard"])})
    latency = family("raftctl_shard_consensus_latency_avg_seconds", "gauge",
                     "Average consensus latency of the shard in seconds")
    code = family("raftctl_shard_health", "gauge", "Shard health: 0 HEALTHY, 1 DEGRADED, 2 UNHEALTHY")
    onehot = family("raftctl_shard_health_status", "gauge",
                    "Shard health: 1 for the current status, 0 for the others")
    for doc in docs:
        shard = str(doc["shard"])
        millis = _number(doc.get("avg_latency_ms"))
        latency.add(None if millis is None else millis / 1000.0, {"shard": shard})
        status = doc.get("health_status")
        code.add(HEALTH_CODES.get(status), {"shard": shard})
        for state in HEALTH_STATES:
            onehot.add(state == status, {"shard": shard, "status": state})


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
        sample_name = fam.name + "_total" if fam.kind == "counter" else fam.name
        # 0.0.4 names the counter family with its _total suffix; OpenMetrics names it without.
        meta_name = fam.name if openmetrics else sample_name
        lines.append(f"# HELP {meta_name} {_escape_help(fam.help)}")
        lines.append(f"# TYPE {meta_name} {fam.kind}")
        for labels, value in fam.samples:
            lines.append(f"{sample_name}{_format_labels(labels)} {_format_value(value)}")
    if openmetrics:
        lines.append("# EOF")
    return ("\n".join(lines) + "\n").encode("utf-8")


def render_prometheus(doc: Mapping[str, Any] | None) -> bytes:
    """Prometheus text exposition format 0.0.4 for one sample document (None: no sample yet)."""
    return _render(_families(doc), openmetrics=False)


def render_openmetrics(doc: Mapping[str, Any] | None) -> bytes:
    """OpenMetrics 1.0.0 text for one sample document, ending in ``# EOF``."""
    return _render(_families(doc), openmetrics=True)

"""The sample document's types: one definition of every field the collector publishes.

``GET /api/summary`` is a :class:`Sample`; ``/api/metrics/history`` returns
:class:`HistorySample` entries (rebuilt from the ring buffers of ``core/timeseries.py``). The
OpenAPI schemas, the ring-buffer layout and the Prometheus families are checked against these
definitions by ``tests/unit/test_sample_types.py``, so a renamed field fails a test instead of
silently dropping a series. The state and health vocabularies are the enums below.
"""

from __future__ import annotations

import typing
from enum import Enum
from typing import Any, Optional, TypedDict

__all__ = [
    "NodeState", "Health", "Severity", "NODE_STATES", "HEALTH_STATES",
    "ClusterDoc", "PerformanceDoc", "NodeDoc", "NodeShardDoc", "ShardDoc", "AlertDoc", "CollectorDoc",
    "LatencyHistogramDoc", "Sample", "HistoryCluster", "HistoryPerformance", "HistoryNode",
    "HistorySample", "field_types", "json_schema",
]


class NodeState(str, Enum):
    """A node's role as the monitor shows it (a pre-candidate is shown as a CANDIDATE).

    STALE_LEADER: the node says LEADER, but the reports back another leader, or none (a leader
    that was paused or cut off and still believes in its old term). DOWN: it did not answer.
    """

    LEADER = "LEADER"
    FOLLOWER = "FOLLOWER"
    CANDIDATE = "CANDIDATE"
    DOWN = "DOWN"
    STALE_LEADER = "STALE_LEADER"

    def __str__(self) -> str:
        return self.value


class Health(str, Enum):
    """Cluster health, from best to worst."""

    HEALTHY = "HEALTHY"
    DEGRADED = "DEGRADED"
    UNHEALTHY = "UNHEALTHY"

    def __str__(self) -> str:
        return self.value

    @property
    def rank(self) -> int:
        return HEALTH_STATES.index(self.value)


class Severity(str, Enum):
    WARNING = "warning"
    CRITICAL = "critical"

    def __str__(self) -> str:
        return self.value


NODE_STATES: tuple[str, ...] = tuple(s.value for s in NodeState)
HEALTH_STATES: tuple[str, ...] = tuple(h.value for h in Health)


class _ClusterRequired(TypedDict):
    cluster_size: int
    healthy_nodes: int
    leader_node: Optional[str]
    leader: Optional[str]
    health_status: Health
    current_term: int
    consensus_aligned: bool
    has_quorum: Optional[bool]  # None: fewer than a majority answered and none is known lost
    leader_changes: int
    health_reasons: list[str]


class ClusterDoc(_ClusterRequired, total=False):
    """``sample["cluster"]``; ``shard_count`` only when sharded. ``nodes_reached``: how many
    nodes answered the monitor's poll (always present; not kept in history)."""

    shard_count: int
    nodes_reached: int


class _PerformanceFields(TypedDict):
    """``sample["performance"]``. Latencies in ms over the last interval. ``total_orders`` and
    ``total_trades`` are None for a source without an exchange (etcd). ``total_committed`` is the
    count ``throughput_ops`` is the rate of: orders the client saw committed, else (etcd) the
    proposals the cluster committed, since the source's clock's zero."""

    total_orders: Optional[int]
    total_trades: Optional[int]
    total_committed: Optional[int]
    throughput_ops: float
    avg_latency_ms: Optional[float]
    p50_latency_ms: Optional[float]
    p99_latency_ms: Optional[float]
    commit_apply_lag: int
    proposals_pending: Optional[int]
    proposals_failed: Optional[int]


class PerformanceDoc(_PerformanceFields):
    """``_PerformanceFields``, ``latency_count``: how many latencies the interval's avg/p50/p99 come
    from (0 for none; on etcd one probe read, so its percentiles are that one read), and
    ``latency_note``: why no latency was measured, when the source measures it with probes of its
    own and the last one failed (etcd: its read refused, timed out); None when latency was
    measured or the source has no such probe."""

    latency_count: int
    latency_note: Optional[str]


class _NodeFields(TypedDict):
    """A DOWN node's commit_index, last_applied, log_length and term are its last report's
    (see ``last_seen``), None if it never answered; its peers_connected is None."""

    state: NodeState
    commit_index: Optional[int]
    last_applied: Optional[int]
    log_length: Optional[int]
    peers_connected: Optional[int]
    term: Optional[int]
    up: bool
    replication_lag: Optional[int]
    last_contact_ms: Optional[float]


class NodeShardDoc(TypedDict):
    """One node's replica of one Raft group (``nodes[id]["shards"]``, sharded clusters only)."""

    shard: int
    state: NodeState
    term: Optional[int]
    commit_index: Optional[int]
    last_applied: Optional[int]
    log_length: Optional[int]
    replication_lag: Optional[int]
    last_contact_ms: Optional[float]


class _NodeDocRequired(_NodeFields):
    state_digest: Optional[str]
    leader_id: Optional[str]      # the leader this node believes in (its own report)
    down_reason: Optional[str]    # why it did not answer: timeout, refused or error (None if it did)
    last_seen: Optional[float]    # sim_time of its last answer (this sample's when up; None: never)


class NodeDoc(_NodeDocRequired, total=False):
    """``sample["nodes"][node_id]``: the top-level fields are its replica of shard 0; with
    shards, ``shards`` lists every replica. ``log_terms`` (when the source reports it; not etcd):
    the terms of the newest entries the node holds (up to 256), as runs ``[[first index, term],
    ...]``, oldest first, each lasting until the next starts (a DOWN node: its last report's).
    ``down_detail``: only on a DOWN node whose ``down_reason`` is ``error``."""

    shards: list[NodeShardDoc]
    log_terms: list[list[int]]
    down_detail: str  # a DOWN node whose down_reason is "error": what the poll ran into


class _ShardRequired(TypedDict):
    shard: int
    leader: Optional[str]
    term: int
    commit_index: Optional[int]  # None while the shard has no leader
    last_applied: Optional[int]
    health_status: Health
    consensus_aligned: bool
    throughput_ops: float
    avg_latency_ms: Optional[float]
    proposals_pending: Optional[int]  # the shard's orders submitted, not yet acknowledged
    commit_apply_lag: int  # the largest commit_index - last_applied over the shard's live replicas
    leader_changes: int  # the shard's leader changes beyond its first leader, since the collector began


class ShardDoc(_ShardRequired):
    """One entry of ``sample["shards"]`` (sharded clusters only)."""


class _AlertRequired(TypedDict):
    name: str
    severity: Severity
    status: str
    fingerprint: str
    labels: dict[str, str]
    message: str
    started_at: float
    resolved_at: Optional[float]
    started_at_sim: float
    resolved_at_sim: Optional[float]


class AlertDoc(_AlertRequired, total=False):
    """One alert, firing or resolved (``sample["alerts"]`` holds the firing ones). In a sharded
    cluster a leader or divergence alert is raised once per kind: ``shards`` lists the groups it
    holds in (absent otherwise)."""

    shards: list[int]


class CollectorDoc(TypedDict):
    """``sample["collector"]``: the collector's own figures."""

    collection_interval: float
    retention_period: float
    samples_retained: int
    samples_collected: int
    alerts_fired: int
    alerts_resolved: int
    sink_events_dropped: int
    sink_errors: int
    sink_delivery_failures: int
    sink_delivered: int
    sink_pending: int
    sink_expired: int
    missed_ticks: int
    collection_ms: float
    # ``timestamp`` of this collector's first sample for its source: a new value means a new run
    # (a restarted server, another source), so a client holding history starts it over
    started_at: float


class LatencyHistogramDoc(TypedDict):
    """Cumulative consensus-latency buckets since the collector started (seconds)."""

    le: list[float]
    counts: list[int]
    count: int
    sum: float


class _SampleRequired(TypedDict):
    timestamp: float
    sim_time: float
    sequence: int
    cluster: ClusterDoc
    performance: PerformanceDoc
    nodes: dict[str, NodeDoc]
    alerts: list[AlertDoc]
    latency_histogram: LatencyHistogramDoc
    collector: CollectorDoc


class Sample(_SampleRequired, total=False):
    """The whole sample document (``GET /api/summary``); ``shards`` only when sharded."""

    shards: list[ShardDoc]


class HistoryCluster(_ClusterRequired):
    """``ClusterDoc`` as history keeps it (no ``shard_count``)."""


class HistoryPerformance(_PerformanceFields):
    """``PerformanceDoc`` as history keeps it (without ``latency_count`` and ``latency_note``)."""


class HistoryNode(_NodeFields):
    """``NodeDoc`` as history keeps it: without ``state_digest``."""


class HistorySample(TypedDict):
    """One entry of ``/api/metrics/history``: a sample without alerts, digests and collector."""

    timestamp: float
    sim_time: float
    sequence: int
    cluster: HistoryCluster
    performance: HistoryPerformance
    nodes: dict[str, HistoryNode]
    alerts_firing: int


def field_types(doc_type: Any) -> dict[str, Any]:
    """Field name -> type of a TypedDict (inherited fields included)."""
    return dict(typing.get_type_hints(doc_type))


def _is_typed_dict(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__total__")


def json_schema(tp: Any, refs: dict[Any, str] | None = None) -> dict[str, Any]:
    """An OpenAPI 3.0 schema for a type used in these documents.

    TypedDicts named in ``refs`` become ``$ref``s to ``#/components/schemas/<name>``; others are
    expanded. Required keys are the TypedDict's required keys.
    """
    refs = refs or {}
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        schema = json_schema(inner[0], refs)
        if "$ref" in schema:
            return {"allOf": [schema], "nullable": True}
        return {**schema, "nullable": True}
    if tp in refs:
        return {"$ref": f"#/components/schemas/{refs[tp]}"}
    if isinstance(tp, type) and issubclass(tp, Enum):
        return {"type": "string", "enum": [m.value for m in tp]}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if tp is str:
        return {"type": "string"}
    if origin is list:
        return {"type": "array", "items": json_schema(args[0], refs)}
    if origin is dict:
        return {"type": "object", "additionalProperties": json_schema(args[1], refs)}
    if _is_typed_dict(tp):
        hints = typing.get_type_hints(tp)
        return {
            "type": "object",
            "required": sorted(tp.__required_keys__),
            "properties": {name: json_schema(t, refs) for name, t in hints.items()},
        }
    raise TypeError(f"no JSON schema for {tp!r}")

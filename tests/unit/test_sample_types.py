"""The typed sample (raftctl/core/sample.py) against everything that reads or writes it.

A renamed field must fail here instead of silently dropping a series: the published documents,
the history rebuilt from the ring buffers, the ring layout, the OpenAPI schemas and the keys the
Prometheus renderer reads are all checked against the one set of types.
"""

from __future__ import annotations

import re
import typing
from enum import Enum
from pathlib import Path
from typing import Any

import pytest

from raftctl import Cluster, MetricsCollector, Workload
from raftctl.core import sample as types
from raftctl.core import timeseries
from raftctl.dashboard import openapi

SEED = 2024


def mismatches(doc: Any, tp: Any, where: str = "sample") -> list[str]:
    """Every way ``doc`` differs from type ``tp``: missing or unknown keys, wrong value types."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union:
        if doc is None and type(None) in args:
            return []
        inner = [a for a in args if a is not type(None)]
        return mismatches(doc, inner[0], where)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return [] if doc in {m.value for m in tp} else [f"{where}: {doc!r} not one of {tp.__name__}"]
    if tp is float:
        return [] if isinstance(doc, (int, float)) and not isinstance(doc, bool) else [f"{where}: {doc!r} is not a number"]
    if tp in (int, str, bool):
        ok = isinstance(doc, tp) and (tp is bool or not isinstance(doc, bool))
        return [] if ok else [f"{where}: {doc!r} is not {tp.__name__}"]
    if origin is list:
        if not isinstance(doc, list):
            return [f"{where}: not a list"]
        return [m for i, item in enumerate(doc) for m in mismatches(item, args[0], f"{where}[{i}]")]
    if origin is dict:
        if not isinstance(doc, dict):
            return [f"{where}: not an object"]
        return [m for k, v in doc.items() for m in mismatches(v, args[1], f"{where}.{k}")]
    hints = typing.get_type_hints(tp)
    if not isinstance(doc, dict):
        return [f"{where}: not an object"]
    out = [f"{where}: missing {k}" for k in sorted(tp.__required_keys__) if k not in doc]
    out += [f"{where}: unknown field {k}" for k in sorted(doc) if k not in hints]
    for key, value in doc.items():
        if key in hints:
            out += mismatches(value, hints[key], f"{where}.{key}")
    return out


def _sampled(shards: int = 1, seconds: float = 6.0) -> tuple[dict, list[dict]]:
    cluster = Cluster(node_count=3, seed=SEED, shards=shards)
    Workload(cluster, rate=50)
    collector = MetricsCollector(collection_interval=1.0, retention_period=60)
    collector.set_cluster(cluster)
    for _ in range(int(seconds)):
        cluster.run_for(1.0)
        collector.collect()
    cluster.crash("node3")  # a DOWN node and a firing alert are part of the shape too
    for _ in range(4):
        cluster.run_for(1.0)
        collector.collect()
    latest = collector.latest()
    assert latest is not None
    return latest, collector.history(None)


@pytest.mark.parametrize("shards", [1, 3])
def test_the_published_sample_is_exactly_its_type(shards):
    latest, _ = _sampled(shards)
    assert latest["alerts"], f"seed={SEED}: expected a firing alert after a crash"
    assert ("shards" in latest) == (shards > 1)
    assert mismatches(latest, types.Sample) == [], f"seed={SEED}"


def test_history_entries_are_exactly_their_type():
    _, history = _sampled()
    assert len(history) >= 10
    for entry in history:
        assert mismatches(entry, types.HistorySample) == [], f"seed={SEED}"


def test_the_checker_catches_a_renamed_field():
    """Planted defects: the type check above must fail on each."""
    latest, history = _sampled(seconds=3)
    renamed = dict(latest, performance=dict(latest["performance"]))
    renamed["performance"]["throughput"] = renamed["performance"].pop("throughput_ops")
    found = mismatches(renamed, types.Sample)
    assert "sample.performance: missing throughput_ops" in found
    assert "sample.performance: unknown field throughput" in found
    wrong_type = dict(history[-1], sequence="12")
    assert mismatches(wrong_type, types.HistorySample) == ["sample.sequence: '12' is not int"]
    bad_state = dict(latest, nodes={"node1": dict(latest["nodes"]["node1"], state="ZOMBIE")})
    assert any("ZOMBIE" in m for m in mismatches(bad_state, types.Sample))


def test_ring_layout_names_only_fields_of_the_history_types():
    fields = (set(types.field_types(types.HistoryCluster)) | set(types.field_types(types.HistoryPerformance))
              | set(types.field_types(types.HistorySample)))
    # codes the ring keeps for fields under another name (health_status, consensus_aligned, ...)
    encoded = {"health": "health_status", "aligned": "consensus_aligned", "quorum": "has_quorum",
               "leader": "leader_node"}
    for name in timeseries._FLOATS + timeseries._INTS:
        assert encoded.get(name, name) in fields, f"ring column {name!r} is no history field"
    node_fields = set(types.field_types(types.HistoryNode))
    node_encoded = {"last_contact_us": "last_contact_ms"}
    for name in timeseries._NODE:
        assert node_encoded.get(name, name) in node_fields, f"ring node column {name!r} is no node field"
    assert timeseries.STATE_NAMES == types.NODE_STATES
    assert timeseries.HEALTH_NAMES == types.HEALTH_STATES


def test_openapi_document_schemas_are_derived_from_the_types():
    schemas = openapi.build_openapi(300.0)["components"]["schemas"]
    for name, tp in openapi._DOCUMENTS.items():
        assert set(schemas[name]["properties"]) == set(types.field_types(tp)), name
        assert set(schemas[name]["required"]) == set(tp.__required_keys__), name
    assert schemas["NodeMetrics"]["properties"]["state"]["enum"] == list(types.NODE_STATES)


# which sample type each variable in dashboard/prometheus.py holds
_PROMETHEUS_VARIABLES = {
    "cluster": types.ClusterDoc,
    "perf": types.PerformanceDoc,
    "node": types.NodeDoc,
    "leader_doc": types.NodeDoc,
    "group": types.ShardDoc,
    "collector": types.CollectorDoc,
    "hist": types.LatencyHistogramDoc,
    "doc": types.Sample,
    "alert": types.AlertDoc,
    "replica": types.NodeShardDoc,
}


def prometheus_reads(source: str) -> list[tuple[str, str]]:
    """(variable, key) of every ``variable.get("key")`` / ``(variable or {}).get("key")``."""
    pattern = re.compile(r"\(?\b(\w+)(?: or \{\}\))?\.get\(\"(\w+)\"")
    return [(m.group(1), m.group(2)) for m in pattern.finditer(source)
            if m.group(1) in _PROMETHEUS_VARIABLES]


def unknown_reads(source: str) -> list[str]:
    return sorted({f"{var}.{key}" for var, key in prometheus_reads(source)
                   if key not in types.field_types(_PROMETHEUS_VARIABLES[var])})


def test_prometheus_renderer_reads_only_fields_the_types_define():
    path = Path(__file__).resolve().parents[2] / "raftctl" / "dashboard" / "prometheus.py"
    source = path.read_text()
    assert len(prometheus_reads(source)) >= 20, "the scan found too few reads: has the renderer changed shape?"
    assert unknown_reads(source) == []
    # a planted rename is caught
    assert unknown_reads(source.replace('perf.get("total_orders")', 'perf.get("total_order")')) == \
        ["perf.total_order"]


def test_sharded_node_series_carry_every_shard():
    """Per-node Raft series exist for each node's replica of each shard, with its own values."""
    from raftctl.dashboard.prometheus import render_prometheus

    latest, _ = _sampled(shards=3, seconds=4)
    body = render_prometheus(latest, process=None).decode()
    found = {}
    for line in body.splitlines():
        match = re.match(r'raftctl_node_commit_index\{node="(\w+)",shard="(\d+)"\} (\d+)', line)
        if match:
            found[(match.group(1), int(match.group(2)))] = int(match.group(3))
    expected = {(node_id, replica["shard"]): replica["commit_index"]
                for node_id, node in latest["nodes"].items() for replica in node["shards"] if node["up"]}
    down = [node_id for node_id, node in latest["nodes"].items() if not node["up"]]
    # a node that does not answer has no Raft series: its values are unknown, not 0
    assert len(expected) == 3 * (len(latest["nodes"]) - len(down)) and found == expected, f"seed={SEED}"
    assert all(f'raftctl_node_commit_index{{node="{n}"' not in body for n in down)


def test_latency_histogram_counts_are_exact_both_ways():
    import random as _random

    from raftctl.core.measures import LatencyHistogram

    rng = _random.Random(SEED)
    values = [rng.choice([0.5, 1.0, 2.5, 3.0, 9.99, 10.0, 10.01, 300.0, 12_000.0]) for _ in range(5000)]
    one, other = LatencyHistogram(), LatencyHistogram()
    one.observe_ms(values)
    other.observe_sorted_ms(sorted(values), sum(values))
    assert one.document() == other.document()
    doc = one.document()
    for bound, count in zip(doc["le"], doc["counts"]):
        assert count == sum(1 for v in values if v <= bound * 1000.0), bound
    assert doc["count"] == 5000


def test_latency_histogram_counts_match_a_count_by_hand_for_any_spread_of_values():
    """observe_sorted_ms bisects only the bounds that fall among the values: narrow, wide,
    on-bound and out-of-range batches must all count as a value-by-value count would."""
    import random as _random

    from raftctl.core.measures import LATENCY_BUCKETS_S, LatencyHistogram

    rng = _random.Random(SEED)
    histogram = LatencyHistogram()
    seen: list[float] = []
    for batch in range(300):
        low = rng.choice([0.0, 0.5, 1.0, 2.5, 7.0, 100.0, 9999.0, 20000.0])
        width = rng.choice([0.0, 0.01, 3.0, 50.0, 5000.0])
        values = [rng.choice([low, low + width, low + rng.random() * width]) for _ in range(rng.randrange(0, 30))]
        values += rng.sample([b * 1000.0 for b in LATENCY_BUCKETS_S], rng.randrange(0, 3))
        histogram.observe_sorted_ms(sorted(values), sum(values))
        seen += values
        doc = histogram.document()
        assert doc["counts"] == [sum(1 for v in seen if v <= b * 1000.0) for b in LATENCY_BUCKETS_S], \
            f"seed {SEED} batch {batch}"
        assert doc["count"] == len(seen)


def test_a_second_workload_on_one_cluster_is_refused():
    """Two would both submit (twice the rate) while only the newer is cluster.workload."""
    from raftctl import Cluster, Workload

    cluster = Cluster(node_count=3, seed=SEED)
    first = Workload(cluster, rate=50)
    with pytest.raises(ValueError, match="already has a Workload"):
        Workload(cluster, rate=50)
    assert cluster.workload is first

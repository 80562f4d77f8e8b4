"""A real 5-node, 4-shard cluster behind a real DashboardServer: shards in the API and /metrics.

The cluster runs on the simulated clock; the test takes each sample itself, so a crash lands
between two samples at an exact instant.
"""

from __future__ import annotations

import orjson
import pytest
from openapi_schema_validator import OAS30Validator
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from dashboard_fixtures import get, step
from raftctl import Cluster, DashboardServer, MetricsCollector, Workload
from raftctl.commands._common import sharded_symbols
from raftctl.dashboard import openapi, prometheus

SEED = 7
SHARDS = 4


def _sharded(rate: float = 100.0, interval: float = 1.0):
    """A seeded 5-node, SHARDS-group cluster under load, every group with a leader, and its collector."""
    symbols, shard_map = sharded_symbols(SHARDS)
    cluster = Cluster(node_count=5, seed=SEED, shards=SHARDS, shard_map=shard_map)
    Workload(cluster, rate=rate, seed=SEED, symbols=symbols)
    collector = MetricsCollector(collection_interval=interval, retention_period=300)
    collector.set_cluster(cluster)
    assert cluster.run_until(lambda: None not in cluster.shard_leaders().values(), timeout=10.0), f"seed={SEED}"
    return cluster, collector


@pytest.fixture
def sharded():
    cluster, collector = _sharded()
    for _ in range(6):
        step(cluster, collector)
    with DashboardServer(collector, port=0) as server:
        yield cluster, collector, server


def get_json(server, path):
    status, headers, body = get(server.url, path)
    assert headers["content-type"] == "application/json", (path, headers)
    return status, orjson.loads(body)


def scrape(server, openmetrics: bool = False) -> dict:
    """/metrics parsed by prometheus_client -> {family name: {frozenset(labels): value}}."""
    headers = {"Accept": "application/openmetrics-text; version=1.0.0"} if openmetrics else {}
    status, _headers, body = get(server.url, "/metrics", headers=headers)
    assert status == 200
    parse = parse_openmetrics if openmetrics else text_string_to_metric_families
    out: dict = {}
    for family in parse(body.decode()):
        for sample in family.samples:
            key = frozenset(sample.labels.items())
            assert key not in out.setdefault(sample.name, {}), f"duplicate series {sample.name}{sample.labels}"
            out[sample.name][key] = sample.value
    return out


def by_shard(series: dict) -> dict[str, float]:
    return {dict(labels)["shard"]: value for labels, value in series.items()}


def test_summary_lists_every_shard_with_a_leader_and_orders(sharded):
    cluster, _collector, server = sharded
    status, doc = get_json(server, "/api/summary")
    assert status == 200
    assert doc["cluster"]["shard_count"] == SHARDS
    shards = doc["shards"]
    assert [s["shard"] for s in shards] == list(range(SHARDS)), f"seed={SEED}"
    leaders = cluster.shard_leaders()
    for s in shards:
        assert s["leader"] == leaders[s["shard"]] is not None, f"seed={SEED}: {s}"
        assert s["health_status"] == "HEALTHY" and s["consensus_aligned"] is True, f"seed={SEED}: {s}"
        # the round-robin symbol map gives every group its share of the orders
        assert s["throughput_ops"] > 0 and s["commit_index"] > 0, f"seed={SEED}: {s}"
    # leaders are spread: no node leads every group
    assert len(set(leaders.values())) > 1, f"seed={SEED}: {leaders}"
    # the published document matches what the OpenAPI document says a Sample is
    spec = openapi.build_openapi(300)
    schema = dict(spec["components"]["schemas"]["Sample"], components=spec["components"])
    OAS30Validator(schema).validate(doc)
    bad = dict(doc, shards=[dict(shards[0], health_status="FINE")])
    assert not OAS30Validator(schema).is_valid(bad)


def test_metrics_expose_shard_labelled_series_in_both_formats(sharded):
    cluster, _collector, server = sharded
    leaders = cluster.shard_leaders()
    for openmetrics in (False, True):
        metrics = scrape(server, openmetrics)
        expected = {str(g) for g in range(SHARDS)}
        for name in ("raftctl_shard_has_leader", "raftctl_shard_term", "raftctl_shard_commit_index",
                     "raftctl_shard_last_applied", "raftctl_shard_committed_orders_per_second",
                     "raftctl_shard_consensus_aligned"):
            assert set(by_shard(metrics[name])) == expected, (name, openmetrics)
        assert set(by_shard(metrics["raftctl_shard_has_leader"]).values()) == {1.0}
        assert all(v > 0 for v in by_shard(metrics["raftctl_shard_commit_index"]).values())
        ones = {(dict(k)["shard"], dict(k)["node"]) for k, v in metrics["raftctl_shard_leader"].items() if v == 1}
        assert ones == {(str(g), node) for g, node in leaders.items()}, f"seed={SEED}"
        onehot = {(dict(k)["shard"], dict(k)["status"]) for k, v in metrics["raftctl_shard_health_status"].items() if v == 1}
        assert onehot == {(str(g), "HEALTHY") for g in range(SHARDS)}
        led = {dict(k)["node"]: v for k, v in metrics["raftctl_node_leader_shards"].items()}
        assert sum(led.values()) == SHARDS and set(led) == set(cluster.node_ids)
        assert metrics["raftctl_cluster_shards"] == {frozenset(): float(SHARDS)}


def test_crashing_a_shard_leader_shows_in_api_and_metrics(sharded):
    cluster, collector, server = sharded
    before = cluster.shard_leaders()
    _status, doc = get_json(server, "/api/summary")
    term_before = doc["shards"][2]["term"]
    target_shard = 2
    victim = before[target_shard]
    victim_shards = {g for g, node in before.items() if node == victim}
    cluster.crash(victim)
    cluster.run_for(0.05)  # too short for an election: the group is leaderless at this sample
    collector.collect()

    _status, doc = get_json(server, "/api/summary")
    shard_docs = {s["shard"]: s for s in doc["shards"]}
    for g in range(SHARDS):
        if g in victim_shards:
            assert shard_docs[g]["leader"] is None and shard_docs[g]["health_status"] == "UNHEALTHY", f"seed={SEED}"
        else:  # other groups keep their leader; a node down is only a degradation for them
            assert shard_docs[g]["leader"] == before[g], f"seed={SEED}"
            assert shard_docs[g]["health_status"] == "DEGRADED", f"seed={SEED}"
    assert doc["cluster"]["health_status"] == "UNHEALTHY"  # the worst shard's
    assert f"shard{target_shard}:no_leader" in doc["cluster"]["health_reasons"]
    status, health = get_json(server, "/api/health")
    assert status == 503 and health["status"] == "UNHEALTHY"
    metrics = scrape(server)
    assert by_shard(metrics["raftctl_shard_has_leader"])[str(target_shard)] == 0
    unhealthy = {dict(k)["shard"] for k, v in metrics["raftctl_shard_health_status"].items()
                 if v == 1 and dict(k)["status"] == "UNHEALTHY"}
    assert str(target_shard) in unhealthy
    assert unhealthy == {str(g) for g in victim_shards}
    assert str(target_shard) not in by_shard(metrics["raftctl_shard_commit_index"])  # a gap, not a drop to 0

    # the group elects a new leader among the survivors; the next sample shows it
    assert cluster.run_until(lambda: cluster.shard_leaders()[target_shard] is not None, timeout=5.0), f"seed={SEED}"
    step(cluster, collector)
    after = cluster.shard_leaders()
    assert after[target_shard] not in (None, victim)
    _status, doc = get_json(server, "/api/summary")
    assert doc["shards"][target_shard]["leader"] == after[target_shard]
    assert doc["shards"][target_shard]["term"] > term_before
    metrics = scrape(server, openmetrics=True)
    leader_series = metrics["raftctl_shard_leader"]
    assert leader_series[frozenset({("shard", str(target_shard)), ("node", after[target_shard])})] == 1
    assert leader_series[frozenset({("shard", str(target_shard)), ("node", victim)})] == 0
    assert by_shard(metrics["raftctl_shard_has_leader"]) == {str(g): 1.0 for g in range(SHARDS)}

    # per-node and history endpoints keep working in a sharded cluster, the crashed node too
    status, node = get_json(server, f"/api/node?node_id={victim}&duration=30")
    assert status == 200 and node["current"]["state"] == "DOWN" and node["history"]
    status, history = get_json(server, "/api/metrics/history?duration=30")
    assert status == 200 and len(history["samples"]) >= 8
    assert history["samples"][-1]["cluster"]["healthy_nodes"] == 4


def test_per_shard_alerts_are_distinct_series():
    doc = {
        "cluster": {"health_status": "UNHEALTHY", "leader_node": None},
        "nodes": {"node1": {"up": True}},
        "alerts": [
            {"name": "leader_election_failure", "severity": "critical", "status": "firing", "labels": {"shard": "1"}},
            {"name": "leader_election_failure", "severity": "critical", "status": "firing", "labels": {"shard": "3"}},
        ],
    }
    for render, parse in ((prometheus.render_prometheus, text_string_to_metric_families),
                          (prometheus.render_openmetrics, parse_openmetrics)):
        families = {f.name: f for f in parse(render(doc).decode())}
        shards = sorted(s.labels["shard"] for s in families["raftctl_alert_firing"].samples)
        assert shards == ["1", "3"]


def test_single_shard_documents_label_their_one_group_shard_0():
    cluster = Cluster(node_count=3, seed=SEED)
    Workload(cluster, rate=50.0, seed=SEED)
    collector = MetricsCollector()
    collector.set_cluster(cluster)
    cluster.run_for(2.0)
    doc = collector.collect()
    assert "shards" not in doc and "shard_count" not in doc["cluster"]
    for render, parse in ((prometheus.render_prometheus, text_string_to_metric_families),
                          (prometheus.render_openmetrics, parse_openmetrics)):
        families = {f.name: f for f in parse(render(doc).decode())}
        shard_values = {s.labels["shard"] for f in families.values() for s in f.samples if "shard" in s.labels}
        assert shard_values == {"0"}
        assert families["raftctl_cluster_shards"].samples[0].value == 1
        # the per-shard breakdowns of the performance figures appear only when sharded
        assert "raftctl_shard_committed_orders_per_second" not in families


def test_leader_changes_count_every_shard_s_elections_not_shard_0_s_only():
    """cluster.leader_changes is the sum over the groups of leader changes beyond each one's
    first leader (what raftctl_cluster_leader_changes_total's help says), counted from the
    shard documents the samples themselves carry."""
    cluster, collector = _sharded(rate=50.0, interval=0.5)
    seen: dict[int, tuple] = {}
    expected = 0
    per_shard = dict.fromkeys(range(SHARDS), 0)

    def take() -> None:
        nonlocal expected
        sample = collector.collect()
        for doc in sample["shards"]:
            if doc["leader"] is not None:
                key = (doc["leader"], doc["term"])
                changed = seen.get(doc["shard"], key) != key
                expected += changed
                per_shard[doc["shard"]] += changed
                seen[doc["shard"]] = key
        assert sample["cluster"]["leader_changes"] == expected, f"seed={SEED} at {cluster.now:.1f}"
        # each shard document carries its own count (what RaftctlHighNumberOfLeaderChanges reads)
        assert {d["shard"]: d["leader_changes"] for d in sample["shards"]} == per_shard, \
            f"seed={SEED} at {cluster.now:.1f}"

    for _ in range(3):
        for _ in range(4):
            cluster.run_for(0.5)
            take()
        # crash the leader of a group other than 0 (a node that does not lead group 0 if any), and back
        leaders = cluster.shard_leaders()
        others = [lead for shard, lead in leaders.items() if shard != 0 and lead is not None]
        victim = next((lead for lead in others if lead != leaders.get(0)), others[0])
        cluster.crash(victim)
        for _ in range(4):
            cluster.run_for(0.5)
            take()
        cluster.restart(victim)
    assert expected >= 2, f"seed={SEED}: too few elections to tell ({expected})"
    assert max(per_shard.values()) < expected, f"seed={SEED}: one shard had every change {per_shard}"
    body = prometheus.render_prometheus(collector.latest(), None).decode()
    families = {f.name: f for f in text_string_to_metric_families(body)}
    series = {s.labels["shard"]: s.value for s in families["raftctl_shard_leader_changes"].samples
              if s.name.endswith("_total")}
    assert series == {str(k): float(v) for k, v in per_shard.items()}, f"seed={SEED}"


def test_a_node_cut_off_is_one_reason_not_one_per_shard():
    """A node's transport reaches its peers for every group alike: node_isolated is said once,
    at the cluster level, not again as shardN:node_isolated for each group."""
    cluster, collector = _sharded(rate=50.0, interval=0.5)
    cluster.isolate("node3")
    cluster.run_for(3.0)
    reasons = collector.collect()["cluster"]["health_reasons"]
    isolated = [r for r in reasons if "node_isolated" in r]
    assert isolated == ["node_isolated:node3"], f"seed={SEED}: {reasons}"


def test_a_crashed_node_has_no_replication_lag_in_any_shard():
    """A DOWN node's replicas lag nothing: they are down (node_down says so). A lag series per
    shard for it fired RaftctlFollowerLagging once per shard on top of RaftctlNodeDown, where the
    unsharded cluster exports none."""
    cluster, collector = _sharded(rate=100.0, interval=0.5)
    victim = next(n for n in cluster.node_ids if n not in cluster.shard_leaders().values())
    cluster.crash(victim)
    for _ in range(8):
        cluster.run_for(0.5)
        sample = collector.collect()
    doc = sample["nodes"][victim]
    assert doc["state"] == "DOWN" and doc["replication_lag"] is None
    assert [entry["replication_lag"] for entry in doc["shards"]] == [None] * SHARDS, doc["shards"]
    body = prometheus.render_prometheus(sample, None).decode()
    lagging = [line for line in body.splitlines()
               if line.startswith("raftctl_node_replication_lag_entries{") and f'node="{victim}"' in line]
    assert lagging == [], lagging

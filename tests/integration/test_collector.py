"""MetricsCollector against the real simulated Cluster, on the simulated clock.

Every scenario runs from a fixed seed; assertion messages carry it so a failure can be replayed.
"""

from __future__ import annotations

import threading
import time

import orjson
import pytest

from raftctl import Cluster, MetricsCollector
from raftctl.core.collector import UnknownNodeError
from raftctl.core.workload import Workload
from raftctl.core.source import ClientView, NodeAnswer, Poll

SEED = 3


def boot(node_count: int = 5, seed: int = SEED, rate: float = 100.0, **cluster_options):
    cluster = Cluster(node_count=node_count, seed=seed, **cluster_options)
    if rate:
        Workload(cluster, rate=rate, seed=seed)
    assert cluster.run_until(lambda: cluster.leader_id is not None, timeout=5.0), f"seed={seed}"
    return cluster


def step(cluster, collector, seconds: float = 1.0) -> dict:
    cluster.run_for(seconds)
    return collector.collect()


def firing(sample: dict) -> set[str]:
    return {alert["name"] for alert in sample["alerts"]}


def followers(cluster) -> list[str]:
    return [n for n in cluster.node_ids if n != cluster.leader_id]


class Recorder:
    """alert_callback that records (status, name) events."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def __call__(self, alert: dict) -> None:
        self.events.append(alert)

    def count(self, name: str, status: str) -> int:
        return sum(1 for e in self.events if e["name"] == name and e["status"] == status)


# ---------------------------------------------------------------- the document

def test_sample_has_every_contract_field():
    cluster = boot()
    collector = MetricsCollector()
    collector.set_cluster(cluster)
    sample = step(cluster, collector)
    assert set(sample) >= {"timestamp", "sim_time", "sequence", "cluster", "performance", "nodes",
                           "alerts", "collector"}
    assert set(sample["cluster"]) >= {
        "cluster_size", "healthy_nodes", "leader_node", "leader", "health_status", "current_term",
        "consensus_aligned", "has_quorum", "leader_changes", "health_reasons"}
    assert set(sample["performance"]) >= {
        "total_orders", "total_trades", "throughput_ops", "avg_latency_ms", "p50_latency_ms",
        "p99_latency_ms", "commit_apply_lag"}
    assert set(sample["collector"]) >= {
        "collection_interval", "retention_period", "samples_retained", "sink_events_dropped",
        "collection_ms", "samples_collected", "alerts_fired"}
    assert sorted(sample["nodes"]) == cluster.node_ids
    for node in sample["nodes"].values():
        assert set(node) >= {"state", "commit_index", "last_applied", "log_length",
                             "peers_connected", "term", "up", "replication_lag", "state_digest"}
        assert node["state"] in {"LEADER", "FOLLOWER", "CANDIDATE", "DOWN"}
    cl = sample["cluster"]
    assert cl["leader"] == cl["leader_node"] == cluster.leader_id
    assert (cl["cluster_size"], cl["healthy_nodes"], cl["health_status"]) == (5, 5, "HEALTHY")
    assert cl["consensus_aligned"] is True and cl["has_quorum"] is True
    assert sample["sim_time"] == cluster.now and sample["sequence"] == 1
    assert abs(sample["timestamp"] - time.time()) < 60


def test_performance_metrics_follow_the_workload():
    cluster = boot(rate=200.0)
    collector = MetricsCollector()
    collector.set_cluster(cluster)
    step(cluster, collector)
    samples = [step(cluster, collector) for _ in range(3)]
    for sample in samples:
        perf = sample["performance"]
        assert 180 <= perf["throughput_ops"] <= 220, f"seed={SEED} {perf}"
        assert 0 < perf["p50_latency_ms"] <= perf["p99_latency_ms"], f"seed={SEED} {perf}"
        assert perf["avg_latency_ms"] > 0
    totals = [s["performance"]["total_orders"] for s in samples]
    assert totals == sorted(totals) and totals[-1] - totals[0] >= 350
    assert samples[-1]["performance"]["total_trades"] > 0
    stats = cluster.stats()
    assert samples[-1]["performance"]["total_orders"] == stats["orders_submitted"]


@pytest.mark.parametrize("node_count", [1, 3])
def test_every_acknowledged_order_is_in_the_latency_histogram(node_count):
    """A 1-node cluster commits an order in the millisecond it is submitted, so orders are
    acknowledged at the very instant of a sample, after its read. A time cutoff ("since the
    previous sample's time") lost them: the histogram counted fewer orders than were committed
    (and the demo's report said 1,487 orders under 1,500 committed)."""
    cluster = boot(node_count=node_count, rate=200.0)
    collector = MetricsCollector()
    collector.set_cluster(cluster)
    samples: list[dict] = []
    # collecting as an event of the cluster's own clock, as the demo does: other events of the
    # same millisecond (a submission and its commit) can come after it
    cluster.every(1.0, lambda _cluster: samples.append(collector.collect()))
    cluster.run_for(6.5)
    sample = samples[-1]
    acked = sample["performance"]["total_committed"]
    assert acked > 1000, f"seed={SEED}"
    assert sample["latency_histogram"]["count"] == acked == sample["performance"]["total_committed"], \
        f"seed={SEED} nodes={node_count}"
    # the cluster's own reader by position agrees, and takes each order once
    first, position = cluster.latencies_after(0)
    more, later = cluster.latencies_after(position)
    assert len(first) == cluster.stats()["orders_acknowledged"] and more == [] and later == position


def test_latest_bytes_version_and_copies():
    cluster = boot(rate=0)
    collector = MetricsCollector()
    assert collector.latest() is None and collector.latest_bytes() is None and collector.version == 0
    collector.set_cluster(cluster)
    sample = step(cluster, collector)
    assert collector.version == 1
    assert orjson.loads(collector.latest_bytes()) == collector.latest() == orjson.loads(orjson.dumps(sample))
    mine = collector.latest()
    mine["cluster"]["health_status"] = "tampered"
    assert collector.latest()["cluster"]["health_status"] == "HEALTHY"
    step(cluster, collector)
    assert collector.version == 2 and collector.latest()["sequence"] == 2


# ---------------------------------------------------------------- acceptance scenarios

def test_one_follower_down_is_degraded_then_healthy_after_restart():
    cluster = boot()
    collector = MetricsCollector(collection_interval=1.0)
    collector.set_cluster(cluster)
    assert step(cluster, collector)["cluster"]["health_status"] == "HEALTHY"
    victim = followers(cluster)[0]
    cluster.crash(victim)
    sample = step(cluster, collector)
    assert sample["cluster"]["health_status"] == "DEGRADED", f"seed={SEED}"
    assert f"node_down:{victim}" in sample["cluster"]["health_reasons"]
    assert sample["nodes"][victim]["state"] == "DOWN" and sample["cluster"]["healthy_nodes"] == 4
    cluster.restart(victim)
    statuses = [step(cluster, collector)["cluster"]["health_status"] for _ in range(3)]
    assert statuses[-1] == "HEALTHY", f"seed={SEED} statuses after restart {statuses}"
    # a single follower down pages nobody: one warning naming it, nothing critical
    alerts = collector.alert_history()
    assert {(a["name"], a["severity"], a["labels"].get("node")) for a in alerts} == {
        ("node_down", "warning", victim)}, f"seed={SEED}"
    assert alerts[-1]["status"] == "resolved" and alerts[-1]["message"].endswith("(refused)")


def test_quorum_loss_fires_within_two_intervals_and_resolves_once():
    recorder = Recorder()
    cluster = boot()
    collector = MetricsCollector(alert_callback=recorder)
    collector.set_cluster(cluster)
    step(cluster, collector)
    victims = followers(cluster)[:3]
    for victim in victims:
        cluster.crash(victim)
    samples = [step(cluster, collector) for _ in range(2)]
    assert samples[-1]["cluster"]["health_status"] == "UNHEALTHY", f"seed={SEED}"
    assert {"quorum_loss", "cluster_unhealthy"} <= firing(samples[-1]), f"seed={SEED}"
    assert samples[-1]["cluster"]["has_quorum"] is False
    for _ in range(3):  # condition lasts: no duplicates; leaderless long enough to page
        step(cluster, collector)
    assert "leader_election_failure" in firing(collector.latest()), f"seed={SEED}"
    for victim in victims:
        cluster.restart(victim)
    for _ in range(5):
        step(cluster, collector)
    final = collector.latest()
    assert final["cluster"]["health_status"] == "HEALTHY", f"seed={SEED} {final['cluster']}"
    for name in ("quorum_loss", "cluster_unhealthy", "leader_election_failure"):
        assert recorder.count(name, "firing") == 1, f"seed={SEED} {name}"
        assert recorder.count(name, "resolved") == 1, f"seed={SEED} {name}"
    assert collector.active_alerts() == []
    resolved = [a for a in collector.alert_history() if a["name"] == "quorum_loss"]
    assert len(resolved) == 1 and resolved[0]["status"] == "resolved"
    assert resolved[0]["resolved_at"] >= resolved[0]["started_at"]
    assert resolved[0]["resolved_at_sim"] > resolved[0]["started_at_sim"]


def test_partitioned_leader_is_replaced_on_the_majority_side():
    cluster = boot()
    collector = MetricsCollector()
    collector.set_cluster(cluster)
    before = step(cluster, collector)["cluster"]
    old_leader, old_term = before["leader_node"], before["current_term"]
    majority = [n for n in cluster.node_ids if n != old_leader]
    cluster.partition([old_leader], majority)
    samples = [step(cluster, collector) for _ in range(3)]
    leader = samples[-1]["cluster"]["leader_node"]
    assert leader in majority, f"seed={SEED} leader={leader}"
    assert samples[-1]["cluster"]["current_term"] > old_term
    assert samples[-1]["nodes"][old_leader]["state"] != "LEADER", "check-quorum should depose it"
    assert samples[-1]["cluster"]["leader_changes"] >= 1
    assert samples[-1]["cluster"]["health_status"] == "DEGRADED", f"seed={SEED}"
    cluster.heal()
    assert [step(cluster, collector) for _ in range(2)][-1]["cluster"]["health_status"] == "HEALTHY"


@pytest.mark.parametrize("prevote", [False, True])
def test_isolated_node_term_divergence_depends_on_prevote(prevote):
    cluster = boot(prevote=prevote)
    collector = MetricsCollector(alert_thresholds={"max_term_difference": 2})
    collector.set_cluster(cluster)
    step(cluster, collector)
    victim = followers(cluster)[0]
    start_term = cluster.status(victim)["term"]
    cluster.isolate(victim)
    samples = [step(cluster, collector) for _ in range(4)]
    climbed = samples[-1]["nodes"][victim]["term"] - start_term
    names = {a["name"] for a in collector.alert_history()}
    if prevote:
        assert climbed == 0, f"seed={SEED}: PreVote should keep the isolated term still"
        assert "term_divergence" not in names
    else:
        assert climbed > 2, f"seed={SEED}: term climbed only {climbed}"
        assert "term_divergence" in names, f"seed={SEED}"
        cluster.heal()
        for _ in range(3):
            step(cluster, collector)
        assert "term_divergence" not in firing(collector.latest()), f"seed={SEED}"


@pytest.mark.parametrize("rate", [0.0, 100.0])
def test_corrupted_state_machine_fires_consensus_misalignment(rate):
    recorder = Recorder()
    cluster = boot(rate=rate)
    collector = MetricsCollector(alert_callback=recorder)
    collector.set_cluster(cluster)
    for _ in range(2):
        assert step(cluster, collector)["cluster"]["consensus_aligned"] is True, f"seed={SEED}"
    cluster.corrupt_state(followers(cluster)[0])
    # with orders flowing the damaged part of the book may be traded away later, so sample at
    # once; with an idle book the damage stays and a full interval later it is still caught
    sample = step(cluster, collector, 1.0 if rate == 0 else 0.0)
    assert sample["cluster"]["consensus_aligned"] is False, f"seed={SEED} rate={rate}"
    assert sample["cluster"]["health_status"] == "UNHEALTHY"
    assert "consensus_misalignment" in firing(sample)
    step(cluster, collector, 0.0)
    assert recorder.count("consensus_misalignment", "firing") == 1


def test_raising_callback_does_not_stop_collection(caplog):
    calls = []

    def explode(alert: dict) -> None:
        calls.append(alert["name"])
        raise RuntimeError("pager down")

    cluster = boot()
    collector = MetricsCollector(alert_callback=explode)
    collector.set_cluster(cluster)
    step(cluster, collector)
    for victim in followers(cluster)[:3]:
        cluster.crash(victim)
    for _ in range(3):
        step(cluster, collector)
    assert collector.samples_collected == 4
    assert "quorum_loss" in calls and collector.callback_errors == len(calls)
    assert "pager down" in caplog.text


def test_high_latency_and_low_healthy_nodes_follow_thresholds():
    cluster = boot()
    collector = MetricsCollector()
    collector.alert_thresholds = {"max_latency_ms": 0.001, "min_healthy_nodes": 5}
    collector.set_cluster(cluster)
    step(cluster, collector)
    cluster.crash(followers(cluster)[0])
    sample = step(cluster, collector)
    assert {"high_latency", "low_healthy_nodes"} <= firing(sample)
    by_name = {a["name"]: a for a in sample["alerts"]}
    assert by_name["high_latency"]["severity"] == "warning"


def test_latency_count_says_how_many_latencies_the_figures_come_from():
    """On etcd there is one probe read per interval, so its p50 and p99 are that read: the count
    lets the views say so instead of showing three equal figures as a distribution."""
    cluster = boot(rate=200.0)
    collector = MetricsCollector()
    collector.set_cluster(cluster)
    previous = collector.collect()
    for _ in range(3):
        sample = step(cluster, collector)
        committed = sample["performance"]["total_committed"] - previous["performance"]["total_committed"]
        assert committed > 1 and sample["performance"]["latency_count"] == committed, f"seed={SEED}"
        previous = sample

    class OneProbe:
        name = "one-probe"
        now = 0.0

        def members(self):
            return ["m1"]

        def close(self):
            pass

        def poll(self, since=None):
            self.now += 1.0
            report = {"state": "LEADER", "term": 2, "leader_id": "m1", "commit_index": 5, "last_applied": 5,
                      "log_length": 5, "peers_connected": 0}
            probe = [] if self.now > 2 else [1.5]  # the third probe fails: no latency, a count of 0
            return Poll(self.now, {"m1": NodeAnswer("m1", report)},
                        ClientView(proposals_committed=5, latencies_ms=probe,
                                   latency_note=None if probe else "timeout"))

    watcher = MetricsCollector()
    watcher.set_source(OneProbe())
    assert watcher.collect()["performance"]["latency_count"] == 1
    assert watcher.collect()["performance"]["p99_latency_ms"] == 1.5
    perf = watcher.collect()["performance"]
    assert (perf["latency_count"], perf["avg_latency_ms"], perf["latency_note"]) == (0, None, "timeout")


# ---------------------------------------------------------------- history and reads

def test_history_is_bounded_by_retention():
    cluster = boot(rate=50.0)
    collector = MetricsCollector(collection_interval=1.0, retention_period=5)
    collector.set_cluster(cluster)
    for _ in range(12):
        step(cluster, collector)
    everything = collector.history(None)
    assert len(everything) == 5
    assert [s["sequence"] for s in everything] == list(range(8, 13))
    assert collector.latest()["collector"]["samples_retained"] == 5
    latest = collector.latest()
    recent = collector.history(2.5)
    assert [s["sim_time"] for s in recent] == [s["sim_time"] for s in everything[-3:]]
    # history keeps every cluster field but nodes_reached (docs/CONTRACTS.md)
    assert recent[-1]["cluster"] == {k: v for k, v in latest["cluster"].items() if k != "nodes_reached"}
    # and every performance field but latency_count and latency_note (the interval's detail, not series)
    assert recent[-1]["performance"] == {k: v for k, v in latest["performance"].items()
                                         if k not in ("latency_count", "latency_note")}
    nodes = collector.node_history("node2", duration=60)
    assert len(nodes) == 5
    assert nodes[-1]["commit_index"] == latest["nodes"]["node2"]["commit_index"]
    with pytest.raises(KeyError):
        collector.node_history("node9")
    with pytest.raises(ValueError, match="node9"):
        collector.node_history("node9")
    for bad in (0, -1, float("nan"), "60", True):
        with pytest.raises(ValueError):
            collector.history(bad)


def test_node_history_tracks_a_crash():
    cluster = boot()
    collector = MetricsCollector()
    collector.set_cluster(cluster)
    victim = followers(cluster)[0]
    step(cluster, collector)
    cluster.crash(victim)
    step(cluster, collector)
    rows = collector.node_history(victim, duration=None)
    assert [r["up"] for r in rows] == [True, False]
    assert rows[1]["state"] == "DOWN"
    assert issubclass(UnknownNodeError, KeyError) and issubclass(UnknownNodeError, ValueError)


def test_collect_clock_may_be_given_but_never_goes_back():
    cluster = boot(rate=0)
    collector = MetricsCollector()
    collector.set_cluster(cluster)
    assert collector.collect(now=100.0)["sim_time"] == 100.0
    collector.collect(now=100.0)
    with pytest.raises(ValueError, match="backwards"):
        collector.collect(now=99.0)
    with pytest.raises(ValueError):
        collector.collect(now=float("inf"))


# ---------------------------------------------------------------- configuration

def test_set_cluster_accepts_the_nodes_list():
    cluster = boot(node_count=3, rate=0)
    collector = MetricsCollector()
    collector.set_cluster(cluster.nodes)
    assert collector.cluster is cluster
    assert collector.collect()["cluster"]["cluster_size"] == 3
    other = boot(node_count=5, rate=0)
    collector.set_cluster(other)
    assert collector.history(None) == [] and collector.latest() is None
    sample = collector.collect()
    assert sample["cluster"]["cluster_size"] == 5
    assert sample["sequence"] == collector.version == 2, "versions never repeat across clusters"


@pytest.mark.parametrize("bad", [None, 42, [], ["node1"], object()])
def test_set_cluster_rejects_other_things(bad):
    with pytest.raises(ValueError):
        MetricsCollector().set_cluster(bad)


def test_collect_without_cluster_is_a_clear_error():
    with pytest.raises(RuntimeError, match="set_cluster"):
        MetricsCollector().collect()


@pytest.mark.parametrize("kwargs", [
    {"collection_interval": 0}, {"collection_interval": -1}, {"collection_interval": "1"},
    {"collection_interval": True}, {"retention_period": 0}, {"retention_period": float("nan")},
    {"alert_callback": "not callable"}, {"alert_thresholds": {"max_latency_ms": "fast"}},
    {"alert_thresholds": {"unknown_key": 1}}, {"sinks": ["nosuchsink"]}, {"sinks": [object()]},
    {"leader_election_timeout": 0}, {"retention_period": 1e9, "collection_interval": 1e-3},
])
def test_constructor_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        MetricsCollector(**kwargs)


def test_threshold_assignment_validates_and_merges():
    collector = MetricsCollector(leader_election_timeout=3.0)
    assert collector.alert_thresholds["max_no_leader_s"] == 3.0
    collector.alert_thresholds = {"max_latency_ms": 500, "min_healthy_nodes": 3, "max_term_difference": 2}
    assert collector.alert_thresholds["max_no_leader_s"] == 3.0
    with pytest.raises(ValueError, match="min_healthy_nodes"):
        collector.alert_thresholds = {"min_healthy_nodes": "3"}
    with pytest.raises(ValueError, match="bogus"):
        collector.alert_thresholds = {"bogus": 1}
    assert collector.alert_thresholds["min_healthy_nodes"] == 3
    # one key at a time adds up: a later assignment keeps what an earlier one set
    collector.alert_thresholds = {"max_latency_ms": 100}
    collector.alert_thresholds = {"max_term_difference": 5}
    assert (collector.alert_thresholds["max_latency_ms"], collector.alert_thresholds["max_term_difference"]) == (100, 5)
    # reading gives a read-only view: changing it in place is an error, not a silent no-op
    with pytest.raises(TypeError):
        collector.alert_thresholds["max_latency_ms"] = 1  # type: ignore[index]
    assert collector.alert_thresholds["max_latency_ms"] == 100


# ---------------------------------------------------------------- wall-clock sampling

def test_start_samples_on_the_wall_clock_and_stop_halts_it():
    cluster = boot(rate=50.0)
    collector = MetricsCollector(collection_interval=0.02)
    collector.set_cluster(cluster)
    cluster.start(speed=1.0)
    try:
        collector.start()
        deadline = time.monotonic() + 10.0
        while collector.samples_collected < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert collector.samples_collected >= 5
        assert collector.running
    finally:
        collector.stop()
        cluster.stop()
    assert not collector.running
    times = [s["sim_time"] for s in collector.history(None)]
    assert times == sorted(times) and times[-1] > times[0], "the cluster clock advanced"
    assert not any(t.name == "raftctl-collector" for t in threading.enumerate())


class StandIn:
    """A source with scripted reports, for edge cases the simulator rarely hits."""

    name = "stand-in"

    def __init__(self, latencies: list[float]) -> None:
        self.now = 1.0
        self._latencies = latencies

    def members(self) -> list[str]:
        return ["node1", "node2", "node3"]

    def poll(self, since=None) -> Poll:
        answers = {nid: NodeAnswer(nid, {
            "state": "LEADER" if nid == "node1" else "FOLLOWER", "term": 2, "leader_id": "node1",
            "commit_index": 5, "last_applied": 5, "log_length": 5, "peers_connected": 2,
            "state_digest": "d", "trades_executed": 1, "match_index": {}, "last_contact_ms": {}})
            for nid in self.members()}
        return Poll(self.now, answers, ClientView(10, 10, 0, 0, latencies_ms=list(self._latencies)))

    def close(self) -> None:
        pass


def test_latency_summary_on_a_large_interval():
    seed = 17
    rng = __import__("random").Random(seed)
    latencies = [float(v) for v in range(1, 20_001)]
    rng.shuffle(latencies)
    collector = MetricsCollector()
    collector.set_source(StandIn(latencies))
    perf = collector.collect()["performance"]
    assert perf["avg_latency_ms"] == pytest.approx(10_000.5), f"seed={seed}"
    assert perf["p50_latency_ms"] == pytest.approx(10_000, rel=0.03), f"seed={seed} {perf}"
    assert perf["p99_latency_ms"] == pytest.approx(19_800, rel=0.01), f"seed={seed} {perf}"
    small = MetricsCollector()
    small.set_source(StandIn([5.0, 1.0, 3.0, 2.0, 4.0]))
    perf = small.collect()["performance"]
    assert (perf["avg_latency_ms"], perf["p50_latency_ms"], perf["p99_latency_ms"]) == (3.0, 3.0, 5.0)


def test_the_sample_percentiles_are_the_shared_nearest_rank_rule():
    # the collector takes p50/p99 from its one sort without calling sorted_percentile (a hot
    # path); they must be exactly that function's, for every size, ints and floats alike
    from raftctl.core.measures import sorted_percentile
    seed = 23
    rng = __import__("random").Random(seed)
    for size in [*range(1, 130), 199, 200, 201, 999, 1000, 1001]:
        latencies = [rng.choice((float(rng.randrange(1, 50)), rng.uniform(0.1, 90.0), rng.randrange(1, 9)))
                     for _ in range(size)]
        collector = MetricsCollector()
        collector.set_source(StandIn(latencies))
        perf = collector.collect()["performance"]
        ordered = sorted(latencies)
        expected = (round(sorted_percentile(ordered, 0.50), 3), round(sorted_percentile(ordered, 0.99), 3))
        got = (perf["p50_latency_ms"], perf["p99_latency_ms"])
        assert got == expected and all(type(v) is float for v in got), f"seed={seed} size={size} {got} {expected}"


def test_sharded_cluster_reports_each_shard_and_lists_the_shards_of_its_alerts():
    seed = 2
    cluster = Cluster(node_count=5, seed=seed, shards=3)
    assert cluster.run_until(lambda: all(v is not None for v in cluster.shard_leaders().values()),
                             timeout=10.0), f"seed={seed}"
    recorder = Recorder()
    collector = MetricsCollector(alert_callback=recorder)
    collector.set_cluster(cluster)
    sample = step(cluster, collector)
    assert sample["cluster"]["shard_count"] == 3
    assert [d["shard"] for d in sample["shards"]] == [0, 1, 2]
    for doc in sample["shards"]:
        assert set(doc) == {"shard", "leader", "term", "commit_index", "last_applied",
                            "health_status", "consensus_aligned", "throughput_ops", "avg_latency_ms", "proposals_pending",
                            "commit_apply_lag", "leader_changes"}
        assert doc["leader"] == cluster.shard_leaders()[doc["shard"]]
        assert doc["health_status"] == "HEALTHY"
        assert isinstance(doc["proposals_pending"], int) and doc["proposals_pending"] >= 0
    # damage shard 1 on a node that does not lead it: only shard 1 is misaligned
    victim = next(n for n in cluster.node_ids if n != cluster.shard_leaders()[1])
    cluster.corrupt_state(victim, shard=1)
    sample = step(cluster, collector, 0.0)
    by_shard = {d["shard"]: d for d in sample["shards"]}
    assert by_shard[1]["consensus_aligned"] is False, f"seed={seed}"
    assert by_shard[0]["consensus_aligned"] and by_shard[2]["consensus_aligned"]
    assert sample["cluster"]["consensus_aligned"] is False
    assert sample["cluster"]["health_status"] == "UNHEALTHY"
    assert "shard1:consensus_misaligned" in sample["cluster"]["health_reasons"]
    alerts = [a for a in sample["alerts"] if a["name"] == "consensus_misalignment"]
    assert [(a["labels"], a["shards"]) for a in alerts] == [({}, [1])], f"seed={seed}"
    step(cluster, collector, 0.0)
    assert recorder.count("consensus_misalignment", "firing") == 1


def test_started_at_is_the_first_samples_stamp_and_changes_with_the_source():
    clock = iter(float(t) for t in range(1000, 2000))
    collector = MetricsCollector(wall_clock=lambda: next(clock))
    first = Cluster(node_count=3, seed=5)
    collector.set_cluster(first)
    stamps = [step(first, collector) for _ in range(3)]
    assert [s["collector"]["started_at"] for s in stamps] == [stamps[0]["timestamp"]] * 3 == [1000.0] * 3
    second = Cluster(node_count=3, seed=6)
    collector.set_cluster(second)  # a new run: a page holding the old history must start over
    again = step(second, collector)
    assert again["collector"]["started_at"] == again["timestamp"] == 1003.0


def test_a_started_collector_samples_on_the_collector_clock_of_a_sped_up_cluster():
    """collection_interval is seconds of the collector clock, the cluster's simulated one: at
    speed 10 samples came 10x the interval apart in simulated time (history too short by 10x)."""
    cluster = Cluster(node_count=3, seed=1)
    collector = MetricsCollector(collection_interval=0.5, retention_period=30)
    collector.set_cluster(cluster)
    cluster.start(speed=10)
    try:
        collector.start()
        deadline = time.monotonic() + 20
        while len(collector.history(None)) < 8:
            assert time.monotonic() < deadline, "8 samples within 20 s"
            time.sleep(0.02)
        collector.stop()
        times = [s["sim_time"] for s in collector.history(None)]
        gaps = sorted(b - a for a, b in zip(times, times[1:]))
        assert gaps[len(gaps) // 2] < 1.5, gaps  # about 0.5 simulated s (5.0 before)
        # a second start() at another speed goes on at that speed (it was ignored)
        cluster.start(speed=2)
        assert cluster.speed == 2.0
    finally:
        collector.stop()
        cluster.stop()
    assert cluster.speed is None


def test_sink_delivered_counts_what_a_file_sink_wrote(tmp_path):
    """sink_delivered summed only what a sink's own stats called delivered, which a jsonl sink
    does not report: 0 while it wrote every sample."""
    cluster = Cluster(node_count=3, seed=1)
    collector = MetricsCollector(sinks=[f"jsonl:{tmp_path / 'out.jsonl'}"])
    collector.set_cluster(cluster)
    try:
        for _ in range(5):
            cluster.run_for(1.0)
            collector.collect()
        assert collector.flush(5.0)
        written = len((tmp_path / "out.jsonl").read_bytes().splitlines())
        cluster.run_for(1.0)
        doc = collector.collect()
    finally:
        collector.stop()
    assert written >= 5
    assert doc["collector"]["sink_delivered"] >= written

"""The collector's health, leader and alerts on a real etcd cluster (issue 12's test list).

The collector reads only the etcd source (``set_source``); the faults are real signals to real
processes (``etcd3``, tests/etcd_fixtures.py). Samples are taken every ~0.25 s until a condition
holds or a deadline passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from etcd_fixtures import etcd3, put_key  # noqa: F401 - the fixture

from raftctl.core.collector import SampleCollector
from raftctl.runtime.etcd_cluster import EtcdCluster
from raftctl.sources import build_source
from raftctl.sources.etcd import EtcdSource

INTERVAL_S = 0.25
Sample = dict[str, Any]


class Watch:
    """A collector on the etcd source, sampled on demand."""

    def __init__(self, cluster: EtcdCluster) -> None:
        source = build_source(f"etcd:{cluster.client_urls[0]}", timeout=0.2, interval=INTERVAL_S)
        assert isinstance(source, EtcdSource)
        self.source = source
        self.collector = SampleCollector(collection_interval=INTERVAL_S, retention_period=600,
                                         wall_clock=time.time)
        self.collector.set_source(source)
        self.samples: list[Sample] = []

    def sample(self) -> Sample:
        sample = self.collector.collect()
        self.samples.append(sample)
        return sample

    def until(self, predicate: Callable[[Sample], Any], timeout: float, what: str) -> Sample:
        deadline = time.monotonic() + timeout
        while True:
            sample = self.sample()
            if predicate(sample):
                return sample
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout} s; last sample: {brief(sample)}")
            time.sleep(INTERVAL_S)

    def healthy(self, timeout: float = 15.0) -> Sample:
        return self.until(lambda s: s["cluster"]["health_status"] == "HEALTHY"
                          and s["cluster"]["healthy_nodes"] == 3 and not firing(s), timeout, "HEALTHY")


def brief(sample: Sample) -> dict[str, Any]:
    cluster = sample["cluster"]
    return {"health": cluster["health_status"], "reasons": cluster["health_reasons"],
            "leader": cluster["leader_node"],
            "nodes": {n: (d["state"], d["term"], d.get("down_reason")) for n, d in sample["nodes"].items()},
            "alerts": sorted(firing(sample))}


def firing(sample: Sample) -> set[tuple[str, str]]:
    return {(a["name"], a["labels"].get("node", "")) for a in sample["alerts"] if a["status"] == "firing"}


@pytest.fixture
def watch(etcd3: EtcdCluster) -> Iterator[Watch]:  # noqa: F811 - the fixture
    watching = Watch(etcd3)
    try:
        yield watching
    finally:
        watching.source.close()


def resolved(watch: Watch, names: set[str]) -> None:
    """Every alert of those names that fired during the test has resolved."""
    history = [a for a in watch.collector.alert_history() if a["name"] in names]
    assert {a["name"] for a in history} == names, history
    assert all(a["status"] == "resolved" and a["resolved_at"] is not None for a in history), history
    assert watch.collector.active_alerts() == []


def test_kill_9_of_a_follower_degrades_and_a_restart_heals(etcd3: EtcdCluster, watch: Watch) -> None:  # noqa: F811
    sample = watch.healthy()
    leader = sample["cluster"]["leader_node"]
    assert leader == etcd3.leader()
    assert sample["performance"]["avg_latency_ms"] is not None  # the probe read's round trip
    victim = next(n for n in etcd3.members if n != leader)
    etcd3.kill(victim)
    sample = watch.sample()  # the very next sample sees it: a dead port refuses at once
    assert sample["cluster"]["health_status"] == "DEGRADED", brief(sample)
    node = sample["nodes"][victim]
    assert node["state"] == "DOWN" and node["up"] is False and node["down_reason"] == "refused"
    assert sample["cluster"]["leader_node"] == leader and sample["cluster"]["has_quorum"] is True
    assert ("node_down", victim) in firing(sample)
    down = next(a for a in sample["alerts"] if a["name"] == "node_down")
    assert down["labels"] == {"node": victim} and down["message"].endswith("(refused)"), down

    etcd3.restart(victim)
    sample = watch.healthy(20)
    assert sample["nodes"][victim]["state"] == "FOLLOWER"
    assert sample["cluster"]["leader_node"] == leader
    resolved(watch, {"node_down", "low_healthy_nodes"})


def test_kill_9_of_two_members_is_unhealthy_with_quorum_loss_then_heals(
        etcd3: EtcdCluster, watch: Watch) -> None:  # noqa: F811
    sample = watch.healthy()
    leader = sample["cluster"]["leader_node"]
    victims = [n for n in etcd3.members if n != leader][:1] + [leader]
    for name in victims:
        etcd3.kill(name)
    sample = watch.until(lambda s: ("quorum_loss", "") in firing(s), 10, "quorum_loss")
    assert sample["cluster"]["health_status"] == "UNHEALTHY", brief(sample)
    assert sample["cluster"]["has_quorum"] is False and sample["cluster"]["leader_node"] is None
    assert {sample["nodes"][n]["down_reason"] for n in victims} == {"refused"}
    assert ("cluster_unhealthy", "") in firing(sample)
    # no leader: the probe read cannot be served, so no latency is claimed
    assert sample["performance"]["avg_latency_ms"] is None
    # leaderless past max_no_leader_s (2 s): the election alert fires too
    watch.until(lambda s: ("leader_election_failure", "") in firing(s), 10, "leader_election_failure")

    for name in victims:
        etcd3.restart(name)
    watch.healthy(30)
    resolved(watch, {"quorum_loss", "cluster_unhealthy", "leader_election_failure", "node_down"})


def test_sigstop_of_the_leader_elects_another_and_sigcont_brings_a_follower(
        etcd3: EtcdCluster, watch: Watch) -> None:  # noqa: F811
    sample = watch.healthy()
    old = sample["cluster"]["leader_node"]
    old_term = sample["cluster"]["current_term"]
    changes = sample["cluster"]["leader_changes"]
    etcd3.pause(old)
    started = time.monotonic()
    sample = watch.sample()
    assert time.monotonic() - started < 0.2 + 0.3  # a stopped member costs at most the timeout
    assert sample["nodes"][old]["state"] == "DOWN" and sample["nodes"][old]["down_reason"] == "timeout"
    sample = watch.until(lambda s: s["cluster"]["leader_node"] not in (None, old), 15, "a new leader")
    new = sample["cluster"]["leader_node"]
    assert sample["cluster"]["current_term"] > old_term
    assert sample["cluster"]["leader_changes"] == changes + 1
    assert sample["nodes"][old]["state"] == "DOWN"
    assert sample["cluster"]["health_status"] == "DEGRADED", brief(sample)
    assert ("node_down", old) in firing(sample)

    etcd3.resume(old)
    sample = watch.healthy(20)
    assert sample["nodes"][old]["state"] == "FOLLOWER"
    assert sample["cluster"]["leader_node"] == new
    resolved(watch, {"node_down"} | ({"low_healthy_nodes"} & {a["name"] for a in watch.collector.alert_history()}))
    # no sample ever showed two leaders, nor the paused one as leading after the election
    for s in watch.samples:
        leading = [n for n, d in s["nodes"].items() if d["state"] == "LEADER"]
        assert len(leading) <= 1, brief(s)


def test_etcd_has_no_orders_and_the_sample_says_so(etcd3: EtcdCluster, watch: Watch) -> None:  # noqa: F811
    sample = watch.healthy()
    for node in sample["nodes"].values():
        assert node["state_digest"] is None
    assert sample["cluster"]["consensus_aligned"] is True  # nothing to compare is not a divergence


def test_throughput_counts_from_the_first_poll_not_from_etcds_history(
        etcd3: EtcdCluster, watch: Watch) -> None:  # noqa: F811
    # etcd committed these before raftctl watched it: no throughput of this run (it read as
    # hundreds of thousands of proposals/s on the first sample, the history over a few ms)
    url = etcd3.client_urls[0]
    for i in range(300):
        put_key(url, f"before-{i}")
    first = watch.sample()
    assert first["performance"]["throughput_ops"] == 0.0, first["performance"]
    for i in range(100):
        put_key(url, f"during-{i}")
    later = watch.sample()
    committed = later["performance"]["throughput_ops"] * (later["sim_time"] - first["sim_time"])
    # each put is one entry; etcd may add one of its own (a lease or leader entry)
    assert 99.5 <= committed <= 105.5, (committed, later["performance"])


# ---------------------------------------------------------------------- membership changes


def left_and_joined(watch: Watch) -> list[tuple[str, str]]:
    return [(e["node"], e["member"]) for e in watch.collector.events() if e["kind"] == "node" and e.get("member")]


def test_a_member_removed_while_watched_leaves_the_count_and_its_down_alert_resolves(
        etcd3: EtcdCluster, watch: Watch) -> None:  # noqa: F811
    """kill -9 a follower, then `etcdctl member remove` it: the monitor re-reads the member
    list (the leader's progress no longer names it), counts 2 members with a quorum of 2, and
    the node_down alert of a member that is no longer in the cluster resolves."""
    leader = watch.healthy()["cluster"]["leader_node"]
    victim = next(n for n in etcd3.members if n != leader)
    etcd3.kill(victim)
    watch.until(lambda s: ("node_down", victim) in firing(s), 10.0, f"node_down for {victim}")
    etcd3.remove_member(victim)
    sample = watch.until(lambda s: victim not in s["nodes"], 10.0, f"{victim} out of the membership")
    assert watch.source.members() == sorted(n for n in etcd3.members)
    sample = watch.until(lambda s: s["cluster"]["health_status"] == "HEALTHY" and not firing(s), 10.0,
                         "HEALTHY with 2 members")
    cluster = sample["cluster"]
    assert (cluster["cluster_size"], cluster["healthy_nodes"], cluster["has_quorum"]) == (2, 2, True), brief(sample)
    resolved(watch, {"node_down"})
    assert (victim, "left") in left_and_joined(watch)
    # a running member removed: the poll in which the leader's progress drops it reads the list
    # at once, so it leaves the sample without a DOWN sample (and a node_down) first
    other = next(n for n in etcd3.members if n != sample["cluster"]["leader_node"])
    etcd3.remove_member(other)
    sample = watch.until(lambda s: other not in s["nodes"], 10.0, f"{other} out of the membership")
    assert sample["cluster"]["cluster_size"] == 1 and sample["cluster"]["health_status"] == "HEALTHY", brief(sample)
    assert all(s["nodes"][other]["state"] != "DOWN" for s in watch.samples if other in s["nodes"])
    assert [a["labels"].get("node") for a in watch.collector.alert_history() if a["name"] == "node_down"] == [victim]


def test_a_learner_counts_once_promoted_and_a_voter_added_but_not_started_is_down(
        etcd3: EtcdCluster, watch: Watch) -> None:  # noqa: F811
    """A learner does not vote: added and started it is no member of the majority; promoted
    it is one. A voter added but not started is one that is DOWN (etcd needs it for its
    quorum: 3 of 5), named by its ID until it starts."""
    watch.healthy()
    etcd3.add_member("etcd4", learner=True)
    watch.until(lambda s: watch.source.learners() == ["etcd4"], 10.0, "the learner known by name")
    for _ in range(5):  # every member's /metrics asked again since the learner started (metrics_every 3)
        sample = watch.sample()
        time.sleep(INTERVAL_S)
    assert "etcd4" not in sample["nodes"] and sample["cluster"]["cluster_size"] == 3, brief(sample)
    # the learner's stream is no voter peer (it said 3 of 2 possible, and could hide a cut-off voter)
    assert all(n["peers_connected"] <= 2 for n in sample["nodes"].values()), sample["nodes"]
    etcd3.promote_member("etcd4")
    sample = watch.until(lambda s: s["nodes"].get("etcd4", {}).get("state") == "FOLLOWER", 15.0, "etcd4 a voter")
    assert sample["cluster"]["cluster_size"] == 4
    watch.until(lambda s: s["cluster"]["health_status"] == "HEALTHY" and s["cluster"]["healthy_nodes"] == 4,
                15.0, "HEALTHY with 4 members")
    added = etcd3.add_member("etcd5", start=False)
    unstarted = format(added.member_id, "x")
    sample = watch.until(lambda s: unstarted in s["nodes"], 10.0, "the unstarted voter")
    node = sample["nodes"][unstarted]
    assert node["state"] == "DOWN" and "not started" in str(node.get("down_detail")), node
    assert (sample["cluster"]["cluster_size"], sample["cluster"]["has_quorum"]) == (5, True), brief(sample)
    assert left_and_joined(watch)[:2] == [("etcd4", "joined"), (unstarted, "joined")]

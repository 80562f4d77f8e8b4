"""The ``raftctl`` source against real node processes: reports, silence with its reason, the collector."""

from __future__ import annotations

import os
import signal
import statistics
import time

import pytest
from node_fixtures import process_cluster

from raftctl.core.source import REPORT_KEYS, Source
from raftctl.runtime.stopping import sigstop
from raftctl.sources import SourceError, build_source

pytestmark = pytest.mark.timeout(120)

TIMEOUT_S = 0.3


def test_the_source_reads_every_node_and_says_why_one_is_silent(tmp_path):
    with process_cluster(tmp_path, nodes=3) as cluster:
        cluster.start_all()
        leader = cluster.wait_ready(20)  # names come from the nodes: all of them must be up
        spec = "raftctl:" + ",".join(cluster.urls[n] for n in cluster.ids)
        source = build_source(spec, timeout=TIMEOUT_S)
        try:
            assert isinstance(source, Source) and source.members() == cluster.ids
            poll = source.poll()
            assert poll.reached == 3
            for nid, answer in poll.answers.items():
                assert answer.report is not None and answer.report["node_id"] == nid
                assert set(REPORT_KEYS) <= set(answer.report)
            assert poll.answers[leader].report["state"] == "LEADER"  # type: ignore[index]
            # collection cost: median time for one node's answer over HTTP
            costs = []
            for _ in range(50):
                costs += [a.poll_ms for a in source.poll().answers.values() if a.poll_ms is not None]
            median_ms = statistics.median(costs)
            print(f"collection cost per node: median {median_ms:.3f} ms over {len(costs)} answers")
            assert median_ms < 20, median_ms  # the 1 ms target is measured by bench_durable.py on a quiet machine

            # a stopped process (SIGSTOP) is a timeout, and the poll still ends on time
            follower = next(n for n in cluster.ids if n != leader)
            # (the signal is queued at once but takes hold only as the process next runs)
            assert sigstop(cluster.procs[follower].pid), "the follower did not stop within 2 s"
            try:
                started = time.monotonic()
                poll = source.poll()
                took = time.monotonic() - started
                assert poll.answers[follower].reason == "timeout", poll.answers[follower]
                assert took < TIMEOUT_S + 0.3, took
                assert poll.answers[leader].report is not None
            finally:
                os.kill(cluster.procs[follower].pid, signal.SIGCONT)
            # a killed one is refused (its port is closed)
            cluster.kill(follower)
            poll = source.poll()
            assert poll.answers[follower].reason == "refused", poll.answers[follower]
            # names come from the nodes; a source built while one is down still names it
            other = build_source(spec, timeout=TIMEOUT_S)
            try:
                assert other.members() == cluster.ids
            finally:
                other.close()
        finally:
            source.close()


def test_the_collector_watches_a_real_cluster_through_the_source(tmp_path):
    from raftctl.runtime.collector import MetricsCollector

    with process_cluster(tmp_path, nodes=3) as cluster:
        cluster.start_all()
        leader = cluster.wait_ready(20)  # names come from the nodes: all of them must be up
        named = ",".join(f"{n}={cluster.urls[n]}" for n in cluster.ids)
        source = build_source("raftctl:" + named, timeout=TIMEOUT_S)
        collector = MetricsCollector(collection_interval=0.5, retention_period=60)
        try:
            collector.set_source(source)

            def healthy() -> bool:
                collector.collect()
                doc = collector.latest() or {"cluster": {}}
                return doc["cluster"].get("health_status") == "HEALTHY"

            # a loaded machine may need a poll or two before every node has answered in time
            cluster.wait_for(healthy, 10, "a HEALTHY sample of the fresh cluster", interval=0.1)
            doc = collector.latest()
            assert doc is not None
            assert doc["cluster"]["leader"] == leader
            assert doc["cluster"]["healthy_nodes"] == 3
            cluster.kill(leader)
            new = cluster.wait_leader(10)

            def degraded() -> bool:
                collector.collect()
                latest = collector.latest()
                if latest is None:
                    return False
                return latest["cluster"]["leader"] == new and latest["cluster"]["health_status"] == "DEGRADED"

            cluster.wait_for(degraded, 10, "the collector to see the new leader and one node down", interval=0.1)
            assert (collector.latest() or {})["nodes"][leader]["state"] == "DOWN"
        finally:
            source.close()


def test_one_nodes_url_watches_the_whole_cluster_through_kills_and_restarts(tmp_path):
    """`serve --source raftctl:URL` of one member: the collector sees all three, the leader, a
    member killed (DOWN, refused) and the given node restarted (its peers' word is kept)."""
    from raftctl.runtime.collector import MetricsCollector

    with process_cluster(tmp_path, nodes=3) as cluster:
        cluster.start_all()
        leader = cluster.wait_ready(20)
        given = next(n for n in cluster.ids if n != leader)
        source = build_source("raftctl:" + cluster.urls[given], timeout=TIMEOUT_S)
        collector = MetricsCollector(collection_interval=0.5, retention_period=60)
        try:
            assert source.members() == cluster.ids
            collector.set_source(source)

            def sample() -> dict:
                collector.collect()
                return collector.latest() or {"cluster": {}, "nodes": {}}

            def healthy_with(lead: str) -> bool:
                doc = sample()["cluster"]
                return (doc.get("health_status") == "HEALTHY" and doc.get("leader") == lead
                        and doc.get("cluster_size") == 3 and doc.get("healthy_nodes") == 3)

            cluster.wait_for(lambda: healthy_with(leader), 10, f"HEALTHY, 3 nodes, {leader} leading", interval=0.1)
            other = next(n for n in cluster.ids if n not in (leader, given))
            cluster.kill(other)

            def other_down() -> bool:
                doc = sample()
                node = doc["nodes"].get(other) or {}
                return (node.get("state") == "DOWN" and node.get("down_reason") == "refused"
                        and doc["cluster"].get("health_status") == "DEGRADED")

            cluster.wait_for(other_down, 10, f"{other} DOWN (refused), the cluster DEGRADED", interval=0.1)
            cluster.start(other)
            cluster.wait_for(lambda: healthy_with(leader) or healthy_with(cluster.leader() or ""), 20,
                             f"{other} back", interval=0.1)
            # the node the membership came from restarts: it knows no peer's URL for a while
            cluster.kill(given)
            cluster.start(given)
            cluster.wait_for(lambda: healthy_with(cluster.leader() or "-"), 20,
                             f"HEALTHY again after {given} restarted", interval=0.1)
            assert source.members() == cluster.ids
            assert source.member_urls() == cluster.urls
        finally:
            source.close()


def test_bad_specs_are_one_clear_error():
    for spec, message in [
        ("raftctl:", "needs the nodes' HTTP URLs"),
        ("raftctl:ftp://x:1", "must be http://HOST:PORT"),
        ("raftctl:http://127.0.0.1:7101/api", "no path"),
        ("raftctl:http://127.0.0.1:7101,http://127.0.0.1:7101", "listed twice"),
        ("raftctl:http://127.0.0.1", "HOST:PORT"),
    ]:
        with pytest.raises(SourceError, match=message):
            build_source(spec, timeout=0.2)
    from node_fixtures import free_ports

    (port,) = free_ports(1)
    with pytest.raises(SourceError, match="did not answer GET /api/status: connection refused"):
        build_source(f"raftctl:http://127.0.0.1:{port}", timeout=0.2)

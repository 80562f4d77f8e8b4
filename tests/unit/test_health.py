"""Health rules: pure functions of statuses and a sample."""

from __future__ import annotations

import pytest

from raftctl.core.health import (DEGRADED, HEALTHY, UNHEALTHY, consensus_aligned,
                                 evaluate_health, quorum_size, replication_lags)


def status(up=True, applied=10, digest="aaa", commit=None, **extra):
    out = {"up": up, "last_applied": applied, "state_digest": digest if up else None,
           "commit_index": applied if commit is None else commit}
    out.update(extra)
    return out


def sample(nodes: dict, leader="node1", aligned=True) -> dict:
    return {
        "cluster": {"cluster_size": len(nodes), "healthy_nodes": sum(n["up"] for n in nodes.values()),
                    "leader_node": leader, "consensus_aligned": aligned},
        "nodes": nodes,
    }


def node(up=True, state="FOLLOWER", lag=0, contact=None):
    return {"up": up, "state": state if up else "DOWN", "replication_lag": lag,
            "last_contact_ms": contact}


def five_up():
    nodes = {f"node{i}": node() for i in range(1, 6)}
    nodes["node1"]["state"] = "LEADER"
    return nodes


@pytest.mark.parametrize("size,quorum", [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (7, 4)])
def test_quorum_size(size, quorum):
    assert quorum_size(size) == quorum


def test_aligned_when_equal_digests_at_equal_index():
    assert consensus_aligned([status(), status(), status()])


def test_divergence_at_same_index_is_caught():
    assert not consensus_aligned([status(), status(digest="bbb"), status()])


def test_lagging_nodes_are_not_misaligned():
    # different applied indexes legitimately have different digests
    assert consensus_aligned([status(applied=10, digest="a"), status(applied=7, digest="b"),
                              status(applied=10, digest="a"), status(applied=3, digest="c")])


def test_divergence_found_in_any_group():
    assert not consensus_aligned([status(applied=10, digest="a"), status(applied=7, digest="b"),
                                  status(applied=7, digest="c"), status(applied=10, digest="a")])


def test_down_nodes_and_missing_digests_ignored():
    assert consensus_aligned([status(), status(up=False), status(digest=None)])


def test_replication_lag_uses_match_index():
    statuses = {
        "node1": status(applied=100, match_index={"node2": 100, "node3": 40}),
        "node2": status(applied=90),
        "node3": status(applied=40),
        "node4": status(applied=20),  # no match_index entry: falls back to its commit index
    }
    assert replication_lags(statuses, "node1") == {"node1": 0, "node2": 0, "node3": 60, "node4": 80}


def test_replication_lag_believes_a_follower_that_holds_less_than_its_match_and_none_when_down():
    statuses = {"node1": status(commit=100, match_index={"node2": 100, "node3": 100}),
                "node2": status(commit=0, last_log_index=0), "node3": status(up=False, commit=40)}
    assert replication_lags(statuses, "node1") == {"node1": 0, "node2": 100, "node3": None}


def test_replication_lag_unknown_without_leader():
    statuses = {"node1": status(), "node2": status()}
    assert replication_lags(statuses, None) == {"node1": None, "node2": None}


def test_all_good_is_healthy():
    assert evaluate_health(sample(five_up())) == (HEALTHY, [])


def test_one_down_with_quorum_is_degraded():
    nodes = five_up()
    nodes["node4"] = node(up=False)
    assert evaluate_health(sample(nodes)) == (DEGRADED, ["node_down:node4"])


def test_quorum_lost_is_unhealthy():
    nodes = five_up()
    for nid in ("node3", "node4", "node5"):
        nodes[nid] = node(up=False)
    status_name, reasons = evaluate_health(sample(nodes))
    assert status_name == UNHEALTHY
    assert "quorum_lost" in reasons and "node_down:node5" in reasons


def test_no_leader_is_unhealthy():
    status_name, reasons = evaluate_health(sample(five_up(), leader=None))
    assert status_name == UNHEALTHY and reasons == ["no_leader"]


def test_divergence_is_unhealthy():
    status_name, reasons = evaluate_health(sample(five_up(), aligned=False))
    assert status_name == UNHEALTHY and reasons == ["consensus_misaligned"]


def test_lagging_follower_is_degraded_only_beyond_threshold():
    nodes = five_up()
    nodes["node2"]["replication_lag"] = 50
    assert evaluate_health(sample(nodes), max_replication_lag=50)[0] == HEALTHY
    assert evaluate_health(sample(nodes), max_replication_lag=49) == (DEGRADED, ["follower_lagging:node2"])


def test_unreachable_follower_is_degraded():
    nodes = five_up()
    nodes["node3"]["last_contact_ms"] = 5000.0
    assert evaluate_health(sample(nodes), max_contact_ms=None)[0] == HEALTHY
    assert evaluate_health(sample(nodes), max_contact_ms=1000.0) == (DEGRADED, ["follower_unreachable:node3"])

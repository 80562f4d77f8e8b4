"""A node process's own /metrics (raftctl/node/metrics.py): node families only."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from raftctl.node.metrics import render_node_metrics


def test_a_node_exports_its_own_series_and_no_cluster_verdict():
    """One node's view is no cluster verdict: a candidate cut off from its leader exported
    raftctl_shard_has_leader 0 and the shipped RaftctlNoLeader paged for the node's own target."""
    report = {"node_id": "node2", "state": "CANDIDATE", "term": 7, "leader_id": None, "commit_index": 40,
              "last_applied": 40, "log_length": 41, "peers_connected": 0, "up": True}
    body = render_node_metrics(report, {"wal_syncs": 3, "orders_acknowledged": 2}).decode()
    names = {f.name for f in text_string_to_metric_families(body)}
    assert {"raftctl_node_term", "raftctl_node_state", "raftctl_node_commit_index", "raftctl_node_wal_fsyncs",
            "raftctl_node_orders_acknowledged", "raftctl_build_info"} <= names, names
    assert not [n for n in names if n.startswith(("raftctl_shard_", "raftctl_cluster_", "raftctl_alert",
                                                   "raftctl_collector_", "raftctl_committed"))], names
    assert 'raftctl_node_term{node="node2",shard="0"} 7' in body

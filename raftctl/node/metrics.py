"""A node process's ``GET /metrics``: the dashboard's families for this one node, then its own.

The node's report goes through the dashboard's renderer (``raftctl/dashboard/prometheus.py``) as
a one-node sample, so the per-node series (``raftctl_node_term``, ``raftctl_node_commit_index``,
``raftctl_node_state``, ...) have exactly the dashboard's names, labels and format; what only a
process has (its write-ahead log, its transport, its clients) follows as ``raftctl_node_*``
families built with the same helpers. Only node families are kept (and ``raftctl_build_info``,
``process_*``): a one-node "sample" has cluster and shard series too (``raftctl_shard_has_leader``,
``raftctl_cluster_*``), but one node's view is no cluster verdict, and the shipped rules read
those names as the monitor's: an isolated node's own target paged RaftctlNoLeader.
"""

from __future__ import annotations

import time
from typing import Any

from raftctl.dashboard.prometheus import _LIVE, _Builder, _families, _process, _render

__all__ = ["render_node_metrics"]

# stats key -> (family name, kind, help)
_PROCESS_FAMILIES = {
    "wal_syncs": ("raftctl_node_wal_fsyncs", "counter", "Group commits of the write-ahead log (one write + fsync each)"),
    "wal_bytes_written": ("raftctl_node_wal_written_bytes", "counter", "Bytes written to the write-ahead log"),
    "wal_records_written": ("raftctl_node_wal_records", "counter", "Records appended to the write-ahead log"),
    "wal_snapshots_saved": ("raftctl_node_snapshots_saved", "counter", "Snapshots written (taken or received)"),
    "wal_compactions": ("raftctl_node_wal_compactions", "counter", "Log compactions (a new log generation)"),
    "wal_truncated_bytes": ("raftctl_node_wal_truncated_bytes", "gauge", "Bytes of torn tail cut off at start"),
    "orders_received": ("raftctl_node_orders_received", "counter", "Orders received over HTTP"),
    "orders_acknowledged": ("raftctl_node_orders_acknowledged", "counter",
                            "Orders answered 200 after being applied by this node as leader"),
    "orders_duplicate": ("raftctl_node_orders_duplicate", "counter",
                         "Orders answered as already applied (a resubmitted client_id and seq)"),
    "orders_redirected": ("raftctl_node_orders_redirected", "counter", "Order requests answered 421 (not the leader)"),
    "orders_unavailable": ("raftctl_node_orders_unavailable", "counter", "Order requests answered 503 (no leader)"),
    "orders_waiting": ("raftctl_node_orders_waiting", "gauge", "Orders proposed and not yet applied"),
    "turns": ("raftctl_node_loop_turns", "counter", "Turns of the node's loop (each ends with one sync)"),
    "transport_messages_sent": ("raftctl_node_transport_sent_messages", "counter", "Raft messages sent to peers"),
    "transport_messages_received": ("raftctl_node_transport_received_messages", "counter",
                                    "Raft messages received from peers"),
    "transport_bytes_sent": ("raftctl_node_transport_sent_bytes", "counter", "Bytes sent to peers"),
    "transport_dropped_queue_full": ("raftctl_node_transport_dropped_queue_full", "counter",
                                     "Messages dropped because a peer's queue was full"),
    "transport_dropped_unreachable": ("raftctl_node_transport_dropped_unreachable", "counter",
                                      "Messages dropped because the peer could not be reached"),
    "transport_dropped_isolated": ("raftctl_node_transport_dropped_isolated", "counter",
                                   "Messages dropped by the isolation fault rule"),
    "transport_connect_failures": ("raftctl_node_transport_connect_failures", "counter",
                                   "Failed connection attempts to peers"),
}


def render_node_metrics(report: dict[str, Any], stats: dict[str, Any]) -> bytes:
    """Prometheus text 0.0.4 for one node: its report as the dashboard renders a node, then its counters."""
    node_id = str(report.get("node_id"))
    doc = {
        "timestamp": time.time(),
        "cluster": {"leader_node": report.get("leader_id"), "current_term": report.get("term")},
        "nodes": {node_id: report},
    }
    kept = [f for f in _families(doc, _process(_LIVE))
            if f.name.startswith(("raftctl_node_", "process_")) or f.name == "raftctl_build"]
    family = _Builder()
    labels = {"node": node_id}
    for key, (name, kind, text) in _PROCESS_FAMILIES.items():
        family(name, kind, text).add(stats.get(key), labels)
    isolated = family("raftctl_node_isolated_peers", "gauge", "Peers the isolation fault rule cuts this node off from")
    isolated.add(len(stats.get("isolated_peers") or []), labels)
    return _render(kept + family.families, openmetrics=False)

"""A node cut off by a partition is up, but not counted as a healthy (operational) node."""

from raftctl import Cluster, MetricsCollector
from raftctl.core.workload import Workload


def test_isolated_node_is_not_counted_healthy_and_health_is_degraded():
    seed = 8
    cluster = Cluster(node_count=5, seed=seed)
    Workload(cluster, rate=100.0)
    collector = MetricsCollector(collection_interval=1.0, retention_period=60)
    collector.set_cluster(cluster)
    cluster.run_for(2.0)
    sample = collector.collect()
    assert sample["cluster"]["healthy_nodes"] == 5 and sample["cluster"]["health_status"] == "HEALTHY"
    old_leader = cluster.leader_id
    cluster.isolate(old_leader)
    for _ in range(3):
        cluster.run_for(1.0)
        sample = collector.collect()
    assert cluster.leader_id not in (None, old_leader), f"seed {seed}"
    assert sample["nodes"][old_leader]["up"] is True
    assert sample["cluster"]["healthy_nodes"] == 4, f"seed {seed}: {sample['cluster']}"
    assert sample["cluster"]["health_status"] == "DEGRADED"
    cluster.heal()
    for _ in range(3):
        cluster.run_for(1.0)
        sample = collector.collect()
    assert sample["cluster"]["healthy_nodes"] == 5 and sample["cluster"]["health_status"] == "HEALTHY"

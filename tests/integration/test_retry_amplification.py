"""Client retries must not flood the log (issue 16, defect 4).

The reproducer: a slow, jittery network (0-120 ms per message, so messages overtake each other)
and one entry per AppendEntries, 1,000 orders at 50 orders/s, no faults, 300 s simulated. Before
the fix, 645 of 1,000 orders were acknowledged after 312k retries, with a log of 307k entries.
"""

from __future__ import annotations

from raftctl import Cluster, NetworkConfig
from raftctl.core.raft import RaftConfig
from raftctl.core.sim.gateway import MAX_BACKOFF

SEED = 1


def _reproducer(seed: int = SEED) -> tuple[Cluster, list]:
    cluster = Cluster(5, seed=seed, network=NetworkConfig(latency_min_ms=0, latency_max_ms=120),
                      raft_config=RaftConfig(max_entries_per_append=1))
    tickets: list = []

    def submit(c: Cluster) -> None:
        if len(tickets) < 1000:
            tickets.append(c.submit({"op": "new", "symbol": "BTC-USD", "side": "buy", "type": "limit",
                                     "price": 100.0 + len(tickets) % 7, "qty": 1}, client_id="c1"))

    cluster.every(0.02, submit)
    cluster.run_for(300.0)
    return cluster, tickets


def test_slow_network_orders_are_acknowledged_and_the_log_stays_small():
    cluster, tickets = _reproducer()
    assert len(tickets) == 1000
    on_time = [t for t in tickets if t.acked and t.latency_ms <= 30_000]
    assert len(on_time) >= 990, f"seed={SEED}: {len(on_time)}/1000 acknowledged within 30 s"
    leader = cluster.node(cluster.leader_id)
    assert leader.raft.last_index <= 1.1 * 1000, f"seed={SEED}: log of {leader.raft.last_index} entries"
    stats = cluster.stats()
    assert stats["orders_acknowledged"] == 1000 and stats["orders_pending"] == 0


def test_retries_back_off_with_jitter_and_a_cap():
    cluster = Cluster(3, seed=SEED, retry_after_s=0.5)
    gateway = cluster.gateway
    for attempts, nominal in ((1, 500.0), (2, 1000.0), (3, 2000.0), (4, 4000.0), (9, 500.0 * MAX_BACKOFF)):
        draws = [gateway.retry_timeout_ms(attempts) for _ in range(200)]
        assert all(0.75 * nominal <= d < 1.25 * nominal for d in draws), (attempts, min(draws), max(draws))
        assert max(draws) - min(draws) > 0.3 * nominal, "no jitter"


def test_retries_during_an_outage_are_bounded():
    """With no leader for 20 s, 50 orders/s are held, not resent every period to nobody."""
    cluster = Cluster(3, seed=SEED)
    cluster.run_until(lambda: cluster.leader_id is not None, timeout=5.0)
    for node_id in ("node1", "node2"):
        cluster.crash(node_id)
    tickets = []
    cluster.every(0.02, lambda c: tickets.append(
        c.submit({"op": "new", "symbol": "X", "side": "sell", "type": "limit", "price": 5, "qty": 1}, "c2")))
    cluster.run_for(20.0)
    retried = cluster.stats()["orders_retried"]
    assert retried <= 2 * len(tickets), f"seed={SEED}: {retried} retries for {len(tickets)} orders"
    for node_id in ("node1", "node2"):
        cluster.restart(node_id)
    assert cluster.run_until(lambda: not cluster.outstanding, timeout=30.0), f"seed={SEED}"

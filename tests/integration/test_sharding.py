"""Multi-Raft sharding in the simulator: routing, leader balance, isolation of faults, safety."""

from __future__ import annotations

import random

import pytest

from raftctl import Cluster, NodeCosts
from raftctl.core.safety import SafetyChecker
from raftctl.core.workload import Workload

SYMBOLS = ["BTC-USD", "ETH-USD", "SOL-USD", "ADA-USD", "XRP-USD", "DOT-USD", "LTC-USD", "AVAX-USD"]


def test_one_shard_status_is_unchanged():
    cluster = Cluster(node_count=3, seed=1)
    cluster.run_for(1.0)
    status = cluster.status("node1")
    assert "shards" not in status and "leader_of" not in status
    assert cluster.shard_leaders() == {0: cluster.leader_id}


def test_symbols_route_to_shards_by_stable_hash_or_explicit_map():
    a = Cluster(node_count=3, seed=1, shards=4)
    b = Cluster(node_count=3, seed=99, shards=4)
    assert [a.shard_of(s) for s in SYMBOLS] == [b.shard_of(s) for s in SYMBOLS]
    assert len({a.shard_of(s) for s in SYMBOLS}) > 1
    mapped = Cluster(node_count=3, seed=1, shards=4, shard_map={"BTC-USD": 3, "eth-usd": 2})
    assert mapped.shard_of("BTC-USD") == 3 and mapped.shard_of("ETH-USD") == 2
    with pytest.raises(ValueError, match="shard_map"):
        Cluster(node_count=3, shards=2, shard_map={"BTC-USD": 5})
    with pytest.raises(ValueError, match="shards"):
        Cluster(node_count=3, shards=0)


def test_orders_reach_their_shard_and_cancels_need_a_symbol():
    cluster = Cluster(node_count=3, seed=4, shards=3)
    cluster.run_for(1.0)
    ticket = cluster.submit({"symbol": "ETH-USD", "side": "buy", "price": 10, "qty": 1})
    cluster.run_for(0.2)
    assert ticket.acked and ticket.shard == cluster.shard_of("ETH-USD")
    shard = ticket.shard
    for node in cluster.nodes:
        assert node.replicas[shard].exchange.resting_orders == 1
        assert all(r.exchange.resting_orders == 0 for r in node.replicas if r.group != shard)
    with pytest.raises(ValueError, match="symbol"):
        cluster.submit({"op": "cancel", "order_id": ticket.order_id})
    cancel = cluster.submit({"op": "cancel", "order_id": ticket.order_id, "symbol": "ETH-USD"})
    cluster.run_for(0.2)
    assert cancel.acked
    assert all(n.replicas[shard].exchange.resting_orders == 0 for n in cluster.nodes)


def test_leaders_are_spread_over_nodes():
    seed = 11
    cluster = Cluster(node_count=5, seed=seed, shards=4)
    Workload(cluster, rate=200.0, symbols=SYMBOLS)
    cluster.run_for(6.0)
    leaders = cluster.shard_leaders()
    assert None not in leaders.values(), f"seed {seed}: {leaders}"
    assert len(set(leaders.values())) == 4, f"seed {seed}: leaders not balanced: {leaders}"


def test_crash_of_a_node_disturbs_only_the_shards_it_led():
    seed = 21
    cluster = Cluster(node_count=5, seed=seed, shards=4)
    checker = SafetyChecker(cluster)
    Workload(cluster, rate=300.0, symbols=SYMBOLS)
    cluster.run_for(6.0)
    leaders = cluster.shard_leaders()
    terms = {g: cluster.node(n).replicas[g].raft.term for g, n in leaders.items()}
    victim = leaders[0]
    led = {g for g, n in leaders.items() if n == victim}
    cluster.crash(victim)
    cluster.run_for(1.0)
    after = cluster.shard_leaders()
    for g, node_id in after.items():
        if g in led:
            assert node_id not in (None, victim), f"seed {seed}: shard {g} has no new leader"
        else:
            assert node_id == leaders[g], f"seed {seed}: shard {g} leader changed though {victim} did not lead it"
            assert cluster.node(node_id).replicas[g].raft.term == terms[g]
    cluster.restart(victim)
    cluster.workload.paused = True
    assert cluster.run_until(lambda: cluster.converged() and not cluster.outstanding, timeout=5.0)
    checker.check_final(cluster)
    checker.assert_ok()


@pytest.mark.parametrize("seed", range(8))
def test_sharded_cluster_under_random_faults_is_safe(seed):
    cluster = Cluster(node_count=5, seed=seed, shards=4, snapshot_threshold=200)
    checker = SafetyChecker(cluster)
    Workload(cluster, rate=200.0, symbols=SYMBOLS)
    rng = random.Random(seed)
    for _ in range(15):
        cluster.run_for(rng.uniform(0.3, 1.5))
        roll = rng.random()
        victim = rng.choice(cluster.node_ids)
        if roll < 0.3:
            cluster.crash(victim)
        elif roll < 0.55:
            cluster.restart(victim)
        elif roll < 0.75:
            ids = cluster.node_ids[:]
            rng.shuffle(ids)
            cut = rng.randint(1, 4)
            cluster.partition(ids[:cut], ids[cut:])
        elif roll < 0.9:
            cluster.heal()
        else:
            cluster.set_network(loss=rng.uniform(0, 0.2), duplicate=rng.uniform(0, 0.1))
    cluster.heal()
    cluster.set_network(loss=0.0, duplicate=0.0)
    for node_id in cluster.node_ids:
        cluster.restart(node_id)
    cluster.workload.paused = True
    assert cluster.run_until(lambda: cluster.converged() and not cluster.outstanding, timeout=10.0), \
        f"seed {seed}: no convergence after heal"
    checker.check_final(cluster)
    assert checker.ok, f"seed {seed}: {checker.violations[:3]}"


def test_heartbeats_are_coalesced_per_node_pair():
    cluster = Cluster(node_count=3, seed=2, shards=8, balance_leaders=False)
    cluster.run_for(3.0)
    before = cluster.stats()
    cluster.run_for(5.0)
    after = cluster.stats()
    messages = after["messages_sent"] - before["messages_sent"]
    packets = after["packets_sent"] - before["packets_sent"]
    assert packets < messages * 0.8, f"{packets} packets for {messages} messages"


def test_busy_leader_saturates_and_pushes_back():
    cluster = Cluster(node_count=3, seed=5, costs=NodeCosts.realistic())
    workload = Workload(cluster, rate=100_000.0, max_outstanding=2000)
    workload.keep_tickets = False
    cluster.run_for(2.0)
    stats = cluster.stats()
    per_s = stats["orders_acknowledged"] / 2.0
    assert stats["orders_backpressured"] > 0
    assert per_s < 30_000, "a leader paying 60 µs per request cannot commit more than ~16k/s"
    assert stats["elections_won"] == 1, "saturation must not cause elections"

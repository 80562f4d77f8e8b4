"""The Cluster's public API: names, shapes and clear errors for bad input."""

import pytest

from raftctl import Cluster


def test_public_names_and_status_shape():
    cluster = Cluster(node_count=5, seed=42)
    assert cluster.node_ids == ["node1", "node2", "node3", "node4", "node5"]
    assert [n.node_id for n in cluster.nodes] == cluster.node_ids
    cluster.run_for(2.0)
    assert cluster.leader_id in cluster.node_ids
    ticket = cluster.submit({"symbol": "BTC-USD", "side": "buy", "price": 100, "qty": 3, "type": "limit"})
    cluster.run_for(0.1)
    assert ticket.acked and ticket.latency_ms is not None and ticket.latency_ms > 0
    status = cluster.status("node2")
    for key in ("node_id", "up", "state", "term", "leader_id", "commit_index", "last_applied",
                "log_length", "peers_connected", "state_digest", "orders_applied", "trades_executed"):
        assert key in status
    assert status["state"] in ("LEADER", "FOLLOWER", "CANDIDATE")
    cluster.crash("node2")
    assert cluster.status("node2")["state"] == "DOWN" and cluster.status("node2")["up"] is False
    cluster.restart("node2")
    cluster.partition(["node1", "node2"], ["node3", "node4", "node5"])
    cluster.heal()


@pytest.mark.parametrize("order, message", [
    ({"symbol": "BTC-USD", "side": "hold", "price": 1, "qty": 1}, "side"),
    ({"symbol": "BTC-USD", "side": "buy", "price": 1, "qty": 1, "type": "stop"}, "type"),
    ({"side": "buy", "price": 1, "qty": 1}, "symbol"),
    ({"symbol": "BTC-USD", "side": "buy", "price": 0, "qty": 1}, "price"),
    ({"symbol": "BTC-USD", "side": "buy", "price": 5, "qty": -2}, "qty"),
    ({"symbol": "BTC-USD", "side": "buy", "qty": 2}, "price"),
])
def test_submit_rejects_bad_orders_clearly(order, message):
    cluster = Cluster(node_count=3, seed=1)
    with pytest.raises(ValueError, match=message):
        cluster.submit(order)
    assert cluster.stats()["orders_submitted"] == 0


def test_fault_calls_reject_unknown_ids_and_overlapping_groups():
    cluster = Cluster(node_count=3, seed=1)
    for call in (cluster.crash, cluster.restart, cluster.isolate):
        with pytest.raises(ValueError, match="unknown node id"):
            call("node9")
    with pytest.raises(ValueError, match="more than one"):
        cluster.partition(["node1", "node2"], ["node2", "node3"])
    with pytest.raises(ValueError, match="unknown node id"):
        cluster.partition(["node1"], ["nodeX"])
    with pytest.raises(ValueError):
        cluster.partition("node1")
    with pytest.raises(ValueError):
        cluster.slow("node1", 0.5)
    with pytest.raises(ValueError):
        cluster.set_network(loss=1.5)
    with pytest.raises(ValueError):
        cluster.set_network(bogus=1)
    with pytest.raises(ValueError):
        cluster.run_for(-1)


@pytest.mark.parametrize("kwargs", [{"node_count": 0}, {"node_count": -3}, {"node_count": "abc"},
                                    {"seed": "x"}, {"shards": 0}, {"snapshot_threshold": 1}])
def test_constructor_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        Cluster(**kwargs)


def test_paced_mode_runs_in_real_time_and_stops():
    import time

    cluster = Cluster(node_count=3, seed=3)
    cluster.start(speed=20.0)
    deadline = time.monotonic() + 5.0
    while cluster.leader_id is None and time.monotonic() < deadline:
        time.sleep(0.01)
    cluster.stop()
    assert cluster.leader_id is not None
    frozen = cluster.now
    time.sleep(0.05)
    assert cluster.now == frozen and not cluster.running


def test_latency_window_is_a_fixed_ring():
    from raftctl.core.sim.gateway import LatencyRing as _LatencyRing

    ring = _LatencyRing(4)
    for i in range(10):
        ring.append(float(i), float(100 + i), i % 2)
    assert ring.since(5.0, None) == [106.0, 107.0, 108.0, 109.0]
    assert ring.since(7.5, None) == [108.0, 109.0]
    assert ring.since(-1.0, None) == [106.0, 107.0, 108.0, 109.0], "only the last 4 are kept"
    assert ring.since(5.0, 1) == [107.0, 109.0]

"""Ring buffers and the sample store: bounded, ordered, lossless for what they keep."""

from __future__ import annotations

import random
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftctl.core.timeseries import RowRing, SampleStore


def make_sample(seq: int, rng: random.Random, node_ids=("node1", "node2", "node3")) -> dict:
    """A sample document of the contract's shape with seeded values."""
    leader = rng.choice(list(node_ids) + [None])
    nodes = {}
    for node_id in node_ids:
        up = rng.random() > 0.2
        nodes[node_id] = {
            "state": ("LEADER" if node_id == leader else "FOLLOWER") if up else "DOWN",
            "commit_index": rng.randrange(10_000), "last_applied": rng.randrange(10_000),
            "log_length": rng.randrange(500), "peers_connected": rng.randrange(3),
            "term": rng.randrange(1, 9), "up": up,
            "replication_lag": rng.choice([None, rng.randrange(50)]),
            "last_contact_ms": rng.choice([None, round(rng.random() * 100, 3)]),
            "state_digest": f"{rng.getrandbits(64):016x}",
        }
    return {
        "timestamp": 1_700_000_000.0 + seq, "sim_time": float(seq), "sequence": seq,
        "cluster": {
            "cluster_size": len(node_ids), "healthy_nodes": sum(n["up"] for n in nodes.values()),
            "leader_node": leader, "leader": leader,
            "health_status": rng.choice(["HEALTHY", "DEGRADED", "UNHEALTHY"]),
            "current_term": rng.randrange(1, 9), "consensus_aligned": rng.random() > 0.1,
            "has_quorum": rng.choice((True,) * 8 + (False, None)), "leader_changes": seq // 3,
            "health_reasons": rng.choice([[], ["node_down:node2"], ["no_leader", "quorum_lost"]]),
        },
        "performance": {
            "total_orders": seq * 10, "total_trades": seq * 3, "total_committed": seq * 9, "throughput_ops": rng.random() * 100,
            "avg_latency_ms": rng.random() * 20, "p50_latency_ms": rng.random() * 20,
            "p99_latency_ms": rng.random() * 90, "commit_apply_lag": rng.randrange(5),
            "proposals_pending": rng.randrange(9), "proposals_failed": rng.randrange(3),
        },
        "nodes": nodes,
        "alerts": [{"name": "x"}] * rng.randrange(3),
    }


def expected_row(sample: dict) -> dict:
    """What history gives back for a stored sample: no digests, an alert count."""
    nodes = {nid: {k: v for k, v in node.items() if k != "state_digest"}
             for nid, node in sample["nodes"].items()}
    return {
        "timestamp": sample["timestamp"], "sim_time": sample["sim_time"],
        "sequence": sample["sequence"], "cluster": sample["cluster"],
        "performance": sample["performance"], "nodes": nodes,
        "alerts_firing": len(sample["alerts"]),
    }


def test_ring_keeps_newest_rows_in_order():
    ring = RowRing("q", 2, 4)
    for value in range(10):
        ring.append((value, -value))
    assert len(ring) == 4
    assert ring.tail(4) == [[6, -6], [7, -7], [8, -8], [9, -9]]
    assert ring.tail(2) == [[8, -8], [9, -9]]
    assert ring.tail(10) == ring.tail(4)
    assert ring.tail(0) == []


def test_ring_memory_is_flat_once_full():
    ring = RowRing("d", 3, 5)
    sizes = set()
    for value in range(50):
        ring.append((value, value / 2, -1.0))
        if value >= 5:
            sizes.add(ring.nbytes())
    assert len(sizes) == 1


@settings(derandomize=True, max_examples=200)
@given(capacity=st.integers(1, 9), width=st.integers(1, 4),
       values=st.lists(st.integers(-(2**62), 2**62), max_size=40), count=st.integers(0, 12))
def test_ring_matches_bounded_deque(capacity, width, values, count):
    ring = RowRing("q", width, capacity)
    model: deque[list[int]] = deque(maxlen=capacity)
    for value in values:
        row = [value + k for k in range(width)] if abs(value) < 2**61 else [value] * width
        ring.append(tuple(row))
        model.append(row)
    expected_tail = list(model)[-count:] if count else []
    assert ring.tail(count) == expected_tail
    assert len(ring) == len(model)


def test_store_round_trips_samples():
    seed = 11
    rng = random.Random(seed)
    store = SampleStore(capacity=50)
    samples = [make_sample(seq, rng) for seq in range(1, 21)]
    for sample in samples:
        store.append(sample)
    rows = store.window(None)
    assert rows == [expected_row(s) for s in samples], f"seed={seed}"


def test_store_is_bounded_and_memory_flat():
    seed = 3
    rng = random.Random(seed)
    store = SampleStore(capacity=30)
    sizes = []
    samples = []
    for seq in range(1, 200):
        samples.append(make_sample(seq, rng))
        store.append(samples[-1])
        if seq >= 30:
            sizes.append(store.nbytes())
    assert len(store) == 30
    assert len(set(sizes)) == 1, "memory kept growing after the ring filled"
    rows = store.window(None)
    assert [r["sequence"] for r in rows] == list(range(170, 200))
    assert rows == [expected_row(s) for s in samples[-30:]], f"seed={seed}"
    assert store.window(195.5) == [expected_row(s) for s in samples[-4:]], f"seed={seed}"


def test_window_is_strictly_after_since():
    rng = random.Random(5)
    store = SampleStore(capacity=100)
    for seq in range(1, 11):
        store.append(make_sample(seq, rng))
    assert [r["sim_time"] for r in store.window(7.0)] == [8.0, 9.0, 10.0]
    assert [r["sim_time"] for r in store.window(7.5)] == [8.0, 9.0, 10.0]
    assert store.window(10.0) == []
    assert len(store.window(-5.0)) == 10


def test_window_after_wrap_uses_ring_order():
    rng = random.Random(8)
    store = SampleStore(capacity=7)
    for seq in range(1, 24):
        store.append(make_sample(seq, rng))
    assert [r["sequence"] for r in store.window(19.5)] == [20, 21, 22, 23]


def test_node_seen_later_is_absent_from_earlier_rows():
    rng = random.Random(9)
    store = SampleStore(capacity=10)
    store.append(make_sample(1, rng, node_ids=("node1", "node2")))
    store.append(make_sample(2, rng, node_ids=("node1", "node2", "node3")))
    rows = store.window(None)
    assert sorted(rows[0]["nodes"]) == ["node1", "node2"]
    assert sorted(rows[1]["nodes"]) == ["node1", "node2", "node3"]
    node3 = store.node_window("node3")
    assert [r["sim_time"] for r in node3] == [2.0]
    assert node3[0]["node_id"] == "node3"
    with pytest.raises(KeyError):
        store.node_window("node9")


def test_nodes_that_come_and_go_after_the_rings_wrapped_keep_their_own_rows():
    """Node rows are written at one offset for all nodes: a node first seen after the rings are
    full (and wrapped) must land in step with the samples, as must one that leaves and returns."""
    seed = 21
    rng = random.Random(seed)
    store = SampleStore(capacity=7)
    sets = [("node1", "node2")] * 10 + [("node1", "node2", "node3")] * 5 + [("node1", "node3")] * 3 \
        + [("node1", "node2", "node3", "node4")] * 4
    samples = [make_sample(seq, rng, node_ids=ids) for seq, ids in enumerate(sets, 1)]
    for count, sample in enumerate(samples, 1):
        store.append(sample)
        kept = samples[max(0, count - 7):count]
        assert store.window(None) == [expected_row(s) for s in kept], f"seed={seed} after {count}"
        for node_id in ("node3", "node4"):
            if store.has_node(node_id):
                got = [(r["sim_time"], r["term"]) for r in store.node_window(node_id, None)]
                want = [(s["sim_time"], s["nodes"][node_id]["term"]) for s in kept if node_id in s["nodes"]]
                assert got == want, f"seed={seed} {node_id} after {count}"


def test_numbers_beyond_64_bits_are_kept_as_the_bound_and_the_rings_stay_in_step():
    rng = random.Random(31)
    store = SampleStore(capacity=4)
    samples = [make_sample(seq, rng) for seq in range(1, 11)]
    for i in (1, 6):  # once while the rings grow, once when they are full
        samples[i]["nodes"]["node2"]["commit_index"] = 2 ** 70
        samples[i]["cluster"]["current_term"] = -(2 ** 70)
    for count, sample in enumerate(samples, 1):
        store.append(sample)
        rows = store.window(None)
        kept = samples[max(0, count - 4):count]
        assert [r["sequence"] for r in rows] == [s["sequence"] for s in kept]
        for row, sample_ in zip(rows, kept):
            want = sample_["nodes"]["node2"]["commit_index"]
            assert row["nodes"]["node2"]["commit_index"] == min(want, 2 ** 63 - 1), count
            assert row["cluster"]["current_term"] == max(sample_["cluster"]["current_term"], -(2 ** 63)), count
            assert row["nodes"]["node1"] == expected_row(sample_)["nodes"]["node1"], count


def test_a_node_that_answered_with_odd_gauges_is_stored_as_the_long_way_stores_it():
    """Once the rings are full an answering node's row is packed as it is (its gauges are ints);
    a None, a bool or a number beyond 64 bits must still come back as the long way keeps it
    (None, the int, the bound), and every other node's row and the rings stay in step."""
    for seed in range(40):
        rng = random.Random(seed)
        store = SampleStore(capacity=3)
        samples = [make_sample(seq, rng) for seq in range(1, 13)]
        for sample in samples:
            for node in sample["nodes"].values():
                if node["up"] and rng.random() < 0.4:
                    key = rng.choice(["commit_index", "last_applied", "log_length", "peers_connected", "term"])
                    node[key] = rng.choice([None, True, 2 ** 70, -(2 ** 70)])
        for count, sample in enumerate(samples, 1):
            store.append(sample)
            kept = samples[max(0, count - 3):count]
            for row, stored in zip(store.window(None), kept):
                for nid, node in expected_row(stored)["nodes"].items():
                    want = {k: (min(max(v, -(2 ** 63)), 2 ** 63 - 1) if type(v) is int else v)
                            for k, v in node.items()}
                    got = row["nodes"][nid]
                    assert {k: got[k] for k in want} == {k: (int(v) if type(v) is bool else v)
                                                         for k, v in want.items()}, f"seed {seed} step {count}"

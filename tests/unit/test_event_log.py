"""The timeline's event log (core/event_log.py): what changed between samples, numbered once."""

from __future__ import annotations

import pytest

from raftctl.core.event_log import EventLog


def sample(t, leader="node1", term=1, health="HEALTHY", states=None, reasons=()):
    states = states or {"node1": "LEADER", "node2": "FOLLOWER", "node3": "FOLLOWER"}
    return {"sim_time": t, "timestamp": 1000.0 + t,
            "cluster": {"leader_node": leader, "current_term": term, "health_status": health,
                        "health_reasons": list(reasons)},
            "nodes": {n: {"state": s, "down_reason": "refused" if s == "DOWN" else None} for n, s in states.items()}}


def kinds(events):
    return [(e["kind"], e.get("leader", e.get("to", e.get("name", e.get("fault"))))) for e in events]


def test_changes_become_events_in_order_and_steady_samples_add_none():
    log = EventLog()
    first = sample(1.0)
    log.record(None, first)
    assert kinds(log.since()) == [("leader", "node1"), ("health", "HEALTHY")]
    log.record(first, sample(2.0))
    assert len(log) == 2
    down = sample(3.0, leader="node2", term=2, health="DEGRADED",
                  states={"node1": "DOWN", "node2": "LEADER", "node3": "FOLLOWER"}, reasons=["node_down:node1"])
    log.record(sample(2.0), down, alert_events=[{"name": "node_down", "status": "firing", "severity": "warning",
                                                  "labels": {"node": "node1"}, "message": "m"}],
               faults=[(2.5, "crash", ("node1",))])
    new = log.since(2)
    assert kinds(new) == [("fault", "crash"), ("leader", "node2"), ("node", "DOWN"), ("health", "DEGRADED"),
                          ("alert", "node_down")]
    fault = new[0]
    assert fault["t"] == 2.5 and fault["timestamp"] == pytest.approx(1002.5) and fault["args"] == ["node1"]
    node = new[2]
    assert (node["node"], node["from"], node["reason"]) == ("node1", "LEADER", "refused")
    assert [e["seq"] for e in log.since()] == list(range(1, 8))


def test_an_election_in_the_same_leader_and_a_stale_leader_are_events():
    log = EventLog()
    a = sample(1.0)
    log.record(None, a)
    b = sample(2.0, term=2)  # re-elected in a new term
    log.record(a, b)
    c = sample(3.0, leader="node2", term=3, health="DEGRADED",
               states={"node1": "STALE_LEADER", "node2": "LEADER", "node3": "FOLLOWER"})
    log.record(b, c)
    assert kinds(log.since(2)) == [("leader", "node1"), ("leader", "node2"), ("node", "STALE_LEADER"),
                                   ("health", "DEGRADED")]
    lost = sample(4.0, leader=None, term=3, health="UNHEALTHY")
    log.record(c, lost)
    assert log.since(log.sequence - 3)[0]["leader"] is None


def test_bounded_and_numbers_never_reused():
    log = EventLog(limit=3)
    prev = None
    for i in range(10):
        s = sample(float(i), health="HEALTHY" if i % 2 else "DEGRADED")
        log.record(prev, s)
        prev = s
    assert len(log) == 3 and [e["seq"] for e in log.since()] == [log.sequence - 2, log.sequence - 1, log.sequence]
    with pytest.raises(ValueError):
        EventLog(limit=0)


def test_the_quick_no_change_check_agrees_with_the_node_by_node_comparison():
    """record() skips its node-by-node comparison when the nodes, their order and their states
    are unchanged; on random pairs of node sets the skip must be taken only where that
    comparison finds nothing."""
    import random

    from raftctl.core.event_log import _same_states

    states = ["LEADER", "FOLLOWER", "DOWN", "STALE_LEADER", "CANDIDATE"]
    skipped = 0
    for seed in range(3000):
        rng = random.Random(seed)
        ids = [f"n{i}" for i in range(rng.randrange(0, 5))]
        old = {nid: {"state": rng.choice(states), "down_reason": None} for nid in ids}
        new = {nid: dict(doc) for nid, doc in old.items()}
        change = rng.randrange(5)
        if change == 1 and ids:
            new[rng.choice(ids)]["state"] = rng.choice(states)
        elif change == 2:
            new = dict(reversed(list(new.items())))  # same states, other order: the pairing differs
            for doc, state in zip(new.values(), [d["state"] for d in old.values()]):
                doc["state"] = state
        elif change == 3 and ids:
            del new[rng.choice(ids)]
        elif change == 4:
            new["n9"] = {"state": rng.choice(states)}
        log = EventLog()
        log._node_events(1.0, 1.0, old, new)
        if _same_states(old, new):
            skipped += 1
            assert len(log) == 0, f"seed {seed}: skipped a change"
    assert skipped > 600


def test_the_node_pass_knows_when_no_node_changed_state():
    """read_nodes tells the event log when every node of the previous sample is back in the same
    state (Reading.states_unchanged), so record() skips its own comparison: on random sequences of
    polls (nodes silenced, refused, unreadable, stale claimants, nodes added and removed) the hint
    may be given only where the node-by-node comparison finds no event, and the event logs
    written with and without it must be the same."""
    import random

    from raftctl.core.reports import read_nodes
    from raftctl.core.source import NodeAnswer, Poll

    def poll(rng: random.Random, ids: list[str], leader: str) -> Poll:
        answers = {}
        for nid in ids:
            roll = rng.random()
            if roll < 0.08:
                answers[nid] = NodeAnswer.silent(nid, rng.choice(["timeout", "refused", "error"]))
                continue
            state = "LEADER" if nid == leader else "FOLLOWER"
            term = 5
            if roll < 0.16:
                state = rng.choice(["CANDIDATE", "LEADER", "WEIRD", None])
                term = rng.choice([4, 5, 6])
            report = {"state": state, "term": term, "leader_id": leader, "commit_index": 10, "last_applied": 10,
                      "log_length": 10, "peers_connected": len(ids) - 1, "state_digest": None}
            if nid == leader:
                report["last_contact_ms"] = {p: 5.0 for p in ids if p != nid}
            answers[nid] = NodeAnswer(nid, report)
        return Poll(1.0, answers)

    hinted_skips = 0
    for seed in range(400):
        rng = random.Random(seed)
        ids = [f"n{i}" for i in range(rng.randrange(1, 7))]
        plain, hinted = EventLog(), EventLog()
        previous = None
        repeat = None
        for step in range(12):
            if rng.random() < 0.15:
                ids = ids[:-1] if len(ids) > 1 and rng.random() < 0.5 else ids + [f"n{len(ids) + step}"]
            # the same poll again is the common case: nothing changed
            current = repeat if repeat is not None and rng.random() < 0.5 and set(repeat.answers) == set(ids) \
                else poll(rng, ids, ids[0])
            repeat = current
            reading = read_nodes(current, 1000.0, previous["nodes"] if previous is not None else None)
            sample_doc = {"sim_time": float(step), "timestamp": float(step), "nodes": reading.nodes,
                          "cluster": {"leader_node": reading.leader.leader, "current_term": reading.current_term,
                                      "health_status": "HEALTHY", "health_reasons": []}}
            if reading.states_unchanged:
                hinted_skips += 1
                check = EventLog()
                check._node_events(1.0, 1.0, previous["nodes"], reading.nodes)
                assert len(check) == 0, f"seed {seed} step {step}: hinted unchanged, but {check.since()}"
            plain.record(previous, sample_doc)
            hinted.record(previous, sample_doc, states_unchanged=reading.states_unchanged)
            previous = sample_doc
        assert plain.since() == hinted.since(), f"seed {seed}"
    assert hinted_skips > 800  # the skip was exercised, not only refused


def test_a_sharded_cluster_logs_every_shards_leader_changes():
    """Shard 1's leader crashed and moved twice; the log compared only the cluster-level
    (shard 0's) leader and showed none of it, while leader_changes counted both."""
    from raftctl import Cluster, MetricsCollector
    from raftctl.core.workload import Workload

    cluster = Cluster(5, seed=1, shards=4)
    Workload(cluster, rate=50)
    collector = MetricsCollector()
    collector.set_cluster(cluster)
    for _ in range(3):
        cluster.run_for(1)
        collector.collect()
    first = [e for e in collector.events() if e["kind"] == "leader"]
    assert sorted(e["shard"] for e in first) == [0, 1, 2, 3]  # each group's first leader
    lead1 = cluster.shard_leaders()[1]
    assert lead1 != cluster.shard_leaders()[0], "seed 1: shard 1 has its own leader"
    cluster.crash(lead1)
    for _ in range(4):
        cluster.run_for(1)
        collector.collect()
    moved = [e for e in collector.events() if e["kind"] == "leader" and e["seq"] > first[-1]["seq"]]
    assert moved and {e["shard"] for e in moved} == {1}, moved
    assert moved[0]["previous"] == lead1 and all(e["leader"] != lead1 for e in moved)
    assert len(moved) == collector.latest()["cluster"]["leader_changes"]


def test_a_member_added_or_removed_while_watched_is_a_membership_event():
    """An etcd member added (started or not) or removed while watched: the node set changes
    between two samples. The first sample's nodes are no joins; a steady set adds nothing."""
    log = EventLog()
    three = sample(1.0)
    log.record(None, three)
    four = sample(2.0, states={"node1": "LEADER", "node2": "FOLLOWER", "node3": "FOLLOWER", "node4": "DOWN"})
    log.record(three, four)
    log.record(four, sample(3.0, states={"node1": "LEADER", "node2": "FOLLOWER", "node3": "FOLLOWER",
                                         "node4": "DOWN"}))
    left = sample(4.0, states={"node1": "LEADER", "node3": "FOLLOWER", "node4": "DOWN"})
    log.record(four, left)
    members = [(e["node"], e["member"], e["from"], e["to"]) for e in log.since() if e.get("member")]
    assert members == [("node4", "joined", None, "DOWN"), ("node2", "left", "FOLLOWER", None)]
    joined = next(e for e in log.since() if e.get("member") == "joined")
    assert joined["reason"] == "refused"
    assert [e["kind"] for e in log.since()].count("node") == 2  # no DOWN event besides the join

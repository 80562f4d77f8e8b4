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

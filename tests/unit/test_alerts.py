"""Alert rules and the firing / resolved lifecycle."""

from __future__ import annotations

import math
import random

import pytest

from raftctl.core.alerts import (ALERT_RULES, DEFAULT_THRESHOLDS, AlertEngine, Condition,
                                 evaluate_conditions, fingerprint, validate_thresholds)

ALERT_KEYS = {"name", "severity", "status", "fingerprint", "labels", "message", "started_at",
              "resolved_at", "started_at_sim", "resolved_at_sim"}


def sample(sim_time=0.0, *, health="HEALTHY", leader="node1", aligned=True, up=5, size=5,
           latency=1.0, terms=(3, 3, 3, 3, 3)) -> dict:
    nodes = {f"node{i + 1}": {"up": i < up, "term": terms[i] if i < len(terms) else 3}
             for i in range(size)}
    return {
        "timestamp": 1_700_000_000.0 + sim_time, "sim_time": sim_time,
        "cluster": {"cluster_size": size, "healthy_nodes": up, "leader_node": leader,
                    "health_status": health, "consensus_aligned": aligned,
                    "has_quorum": up >= size // 2 + 1, "health_reasons": []},
        "performance": {"avg_latency_ms": latency},
        "nodes": nodes,
    }


def names(conditions) -> set[str]:
    return {c.name for c in conditions}


# ---------------------------------------------------------------- thresholds

def test_thresholds_merge_with_defaults():
    merged = validate_thresholds({"max_latency_ms": 100})
    assert merged["max_latency_ms"] == 100
    assert merged["min_healthy_nodes"] == DEFAULT_THRESHOLDS["min_healthy_nodes"]
    assert set(merged) == set(DEFAULT_THRESHOLDS)


@pytest.mark.parametrize("bad", [
    {"max_latency": 5},                      # unknown key
    {"max_latency_ms": "500"},               # wrong type
    {"min_healthy_nodes": 2.5},              # float where an int is needed
    {"max_term_difference": True},           # bool is not a number here
    {"max_latency_ms": -1},                  # negative
    {"max_latency_ms": math.nan},            # not finite
    {"max_no_leader_s": math.inf},
])
def test_bad_thresholds_raise_value_error(bad):
    with pytest.raises(ValueError) as info:
        validate_thresholds(bad)
    assert next(iter(bad)) in str(info.value)


@pytest.mark.parametrize("size, healthy, fires", [
    (1, 1, False), (1, 0, True),             # a whole 1- or 2-node cluster never warns (issue 15)
    (2, 2, False), (2, 1, True),
    (3, 3, False), (3, 2, True),             # 3 nodes: any unhealthy node, as before
    (5, 4, False), (5, 3, True),             # 5 nodes: a bare majority left
    (7, 4, True), (7, 5, False),
])
def test_low_healthy_nodes_scales_with_the_cluster_by_default(size, healthy, fires):
    doc = sample(up=healthy, size=size, terms=(3,) * size)
    conditions = [c for c in evaluate_conditions(doc, DEFAULT_THRESHOLDS) if c.name == "low_healthy_nodes"]
    assert bool(conditions) is fires, (size, healthy, conditions)
    if fires and healthy == size // 2 + 1:
        assert "one more failure leaves no healthy majority" in conditions[0].message
    # an explicit floor is the floor, whatever the size; null goes back to the scaled one
    pinned = validate_thresholds({"min_healthy_nodes": 3})
    assert any(c.name == "low_healthy_nodes" for c in evaluate_conditions(doc, pinned)) is (healthy < 3)
    assert validate_thresholds({"min_healthy_nodes": None}, pinned)["min_healthy_nodes"] is None


def test_thresholds_must_be_a_mapping():
    with pytest.raises(ValueError, match="dict"):
        validate_thresholds([("max_latency_ms", 5)])


# ---------------------------------------------------------------- rules

def test_fingerprint_is_stable_and_label_order_free():
    assert fingerprint("quorum_loss", {"a": "1", "b": "2"}) == fingerprint("quorum_loss", {"b": "2", "a": "1"})
    assert fingerprint("quorum_loss", {}) != fingerprint("cluster_unhealthy", {})
    assert len(fingerprint("x", {})) == 16


def test_quiet_sample_raises_nothing():
    assert evaluate_conditions(sample(), DEFAULT_THRESHOLDS) == []


def test_each_rule_fires_on_its_condition():
    t = dict(DEFAULT_THRESHOLDS)
    assert names(evaluate_conditions(sample(health="UNHEALTHY"), t)) == {"cluster_unhealthy"}
    assert names(evaluate_conditions(sample(aligned=False), t)) == {"consensus_misalignment"}
    assert names(evaluate_conditions(sample(latency=501.0), t)) == {"high_latency"}
    assert names(evaluate_conditions(sample(up=2, health="UNHEALTHY"), t)) == {
        "cluster_unhealthy", "quorum_loss", "low_healthy_nodes"}
    assert names(evaluate_conditions(sample(terms=(3, 3, 3, 3, 6)), t)) == {"term_divergence"}
    assert names(evaluate_conditions(sample(terms=(3, 3, 3, 3, 5)), t)) == set()
    assert names(evaluate_conditions(sample(leader=None), t, no_leader_for=2.5)) == {
        "leader_election_failure"}
    assert names(evaluate_conditions(sample(leader=None), t, no_leader_for=1.5)) == set()


def test_down_nodes_terms_do_not_count_for_divergence():
    # node5 is down with a stale term: not a live divergence
    assert evaluate_conditions(sample(up=4, terms=(9, 9, 9, 9, 1)), DEFAULT_THRESHOLDS) == []


def test_every_rule_has_a_known_severity():
    assert set(ALERT_RULES) == {"cluster_unhealthy", "leader_election_failure",
                                "consensus_misalignment", "quorum_loss", "high_latency",
                                "low_healthy_nodes", "term_divergence", "node_down",
                                "node_lagging", "stale_leader", "node_isolated", "commit_stalled",
                                "committed_entries_lost"}
    assert {sev for sev, _ in ALERT_RULES.values()} == {"critical", "warning"}


# ---------------------------------------------------------------- lifecycle

def test_fires_once_and_resolves_once():
    engine = AlertEngine()
    events = engine.evaluate(sample(0.0, aligned=False), DEFAULT_THRESHOLDS)
    assert [(e["name"], e["status"]) for e in events] == [("consensus_misalignment", "firing")]
    fired = events[0]
    assert set(fired) == ALERT_KEYS
    assert fired["severity"] == "critical" and fired["resolved_at"] is None
    assert fired["started_at"] == 1_700_000_000.0 and fired["started_at_sim"] == 0.0
    for t in (1.0, 2.0, 3.0):
        assert engine.evaluate(sample(t, aligned=False), DEFAULT_THRESHOLDS) == []
    assert [a["name"] for a in engine.active()] == ["consensus_misalignment"]
    events = engine.evaluate(sample(4.0), DEFAULT_THRESHOLDS)
    assert [(e["name"], e["status"]) for e in events] == [("consensus_misalignment", "resolved")]
    assert events[0]["resolved_at"] == 1_700_000_004.0 and events[0]["resolved_at_sim"] == 4.0
    assert events[0]["fingerprint"] == fired["fingerprint"]
    assert engine.evaluate(sample(5.0), DEFAULT_THRESHOLDS) == []
    assert engine.active() == []
    history = engine.history()
    assert len(history) == 1 and history[0]["status"] == "resolved"
    assert (engine.fired_total, engine.resolved_total) == (1, 1)


def test_leader_election_failure_needs_time_without_leader():
    engine = AlertEngine()
    fired = []
    for step in range(8):
        t = step * 0.5
        events = engine.evaluate(sample(t, leader=None, health="UNHEALTHY"), DEFAULT_THRESHOLDS)
        fired += [(t, e["name"]) for e in events if e["status"] == "firing"]
    # leaderless since 0.0: cluster_unhealthy at once, election failure once 2 s have passed
    assert fired == [(0.0, "cluster_unhealthy"), (2.5, "leader_election_failure")]
    # a leader returns: the clock restarts
    engine.evaluate(sample(4.0), DEFAULT_THRESHOLDS)
    events = engine.evaluate(sample(5.0, leader=None, health="UNHEALTHY"), DEFAULT_THRESHOLDS)
    assert [e["name"] for e in events] == ["cluster_unhealthy"]


def test_history_is_bounded():
    engine = AlertEngine(history_limit=5)
    for step in range(20):
        engine.evaluate(sample(float(step), aligned=step % 2 == 1), DEFAULT_THRESHOLDS)
    history = engine.history()
    assert len(history) == 5
    assert engine.fired_total == 10 and engine.resolved_total == 10


def test_random_condition_sequences_keep_lifecycle_invariants():
    seed = 20240601
    rng = random.Random(seed)
    engine = AlertEngine()
    states: dict[str, str] = {}
    for step in range(300):
        conditions = [Condition(name, "m") for name in ALERT_RULES if rng.random() < 0.3]
        events = engine.apply(conditions, 1000.0 + step, float(step))
        for event in events:
            previous = states.get(event["fingerprint"], "resolved")
            assert previous != event["status"], f"seed={seed} step={step}: repeated {event}"
            states[event["fingerprint"]] = event["status"]
        active = {a["name"] for a in engine.active()}
        assert active == {c.name for c in conditions}, f"seed={seed} step={step}"


def test_sharded_leader_alerts_are_one_per_kind_listing_their_shards():
    """One quorum loss over many Raft groups is one leader alert, not one per group (issue 15)."""
    engine = AlertEngine()

    def sharded(t: float, leaderless: set[int], misaligned: frozenset[int] = frozenset()) -> dict:
        doc = sample(t)
        doc["shards"] = [{"shard": g, "leader": None if g in leaderless else "node1",
                          "consensus_aligned": g not in misaligned} for g in range(4)]
        return doc

    fired = []
    for step in range(6):
        events = engine.evaluate(sharded(float(step), {1, 2, 3}), DEFAULT_THRESHOLDS)
        fired += [(step, e["name"], e["labels"], e.get("shards")) for e in events]
    assert fired == [(3, "leader_election_failure", {}, [1, 2, 3])]
    assert engine.active()[0]["message"].startswith("shards 1, 2, 3: no leader for up to")
    # shard 3 gets its leader back: the same alert (no new event) now lists 1 and 2
    assert engine.evaluate(sharded(6.0, {1, 2}), DEFAULT_THRESHOLDS) == []
    [active] = engine.active()
    assert active["shards"] == [1, 2] and active["message"].startswith("shards 1, 2:")
    # divergence in two groups: one alert for both
    events = engine.evaluate(sharded(7.0, {1, 2}, frozenset({0, 3})), DEFAULT_THRESHOLDS)
    assert [(e["name"], e["shards"]) for e in events] == [("consensus_misalignment", [0, 3])]
    events = engine.evaluate(sharded(8.0, set()), DEFAULT_THRESHOLDS)
    assert sorted((e["status"], e["name"]) for e in events) == [
        ("resolved", "consensus_misalignment"), ("resolved", "leader_election_failure")]


def test_a_shard_s_leaderless_time_counts_only_while_the_monitor_can_tell():
    """A monitor cut off from the cluster sees no shard's leader: that is monitor_reach, not a
    failed election in every shard (as for an unsharded cluster); a shard whose replicas the
    monitor does see leaderless (shardN:no_leader) still counts."""
    def blind(t: float, reasons: list[str]) -> dict:
        doc = sample(t, health="UNHEALTHY", leader=None, up=1)
        doc["cluster"]["health_reasons"] = ["monitor_reach:1/5", *reasons]
        doc["shards"] = [{"shard": g, "leader": None, "consensus_aligned": True} for g in range(3)]
        return doc

    engine = AlertEngine()
    for step in range(8):
        events = engine.evaluate(blind(float(step), []), DEFAULT_THRESHOLDS)
        assert "leader_election_failure" not in [e["name"] for e in events], step
    seen = AlertEngine()
    fired = []
    for step in range(8):
        fired += [e for e in seen.evaluate(blind(float(step), ["no_leader", "shard2:no_leader"]), DEFAULT_THRESHOLDS)
                  if e["name"] == "leader_election_failure"]
    assert [e["shards"] for e in fired] == [[0, 2]]


def test_a_firing_alert_says_what_holds_now_and_its_firing_event_what_held_then():
    engine = AlertEngine()
    fired = engine.evaluate(sample(1.0, up=3, size=5), DEFAULT_THRESHOLDS)
    (event,) = [e for e in fired if e["name"] == "low_healthy_nodes"]
    assert event["message"].startswith("3 of 5 nodes healthy"), event
    later = engine.evaluate(sample(2.0, up=2, size=5), DEFAULT_THRESHOLDS)
    assert "low_healthy_nodes" not in {e["name"] for e in later}  # still the same alert: no new event
    (active,) = [a for a in engine.active() if a["name"] == "low_healthy_nodes"]
    assert active["message"].startswith("2 of 5 nodes healthy"), active
    assert active["started_at_sim"] == 1.0 and event["message"].startswith("3 of 5")


def test_a_down_node_whose_reason_changes_is_one_alert_that_says_the_new_reason():
    """A killed etcd member's polls are refused; restarted, it accepts and times out while it
    starts. That is one outage: node_down keeps firing (no resolution, no second firing, which
    a pager would read as recovered and down again); its message says the reason now."""
    engine = AlertEngine()

    def down(t, reason):
        doc = sample(t, health="DEGRADED", up=4)
        doc["cluster"]["health_reasons"] = ["node_down:node5"]
        doc["nodes"]["node5"].update(down_reason=reason)
        return engine.evaluate(doc, DEFAULT_THRESHOLDS)

    (fired,) = [e for e in down(1.0, "refused") if e["name"] == "node_down"]
    assert fired["labels"] == {"node": "node5"} and "(refused)" in fired["message"], fired
    assert down(2.0, "timeout") == [] and down(3.0, "timeout") == []
    (active,) = [a for a in engine.active() if a["name"] == "node_down"]
    assert active["message"] == "node5 does not answer the monitor (timeout)" and active["started_at_sim"] == 1.0
    (resolved,) = engine.evaluate(sample(4.0), DEFAULT_THRESHOLDS)
    assert resolved["name"] == "node_down" and resolved["status"] == "resolved"


def test_critical_alerts_firing_when_the_monitor_goes_blind_hold_until_it_sees_again():
    """Two of three etcd members killed: quorum_loss and leader_election_failure fire. Restarted,
    they accept the poll and time out while they start: the monitor reaches 1 of 3, so the
    evidence becomes monitor_reach. Both resolved then, 3 s before any leader existed; a pager
    read "fine". They hold (saying why) until the monitor sees again, and never fire while blind."""
    engine = AlertEngine()

    def doc(t, *, reasons, leader=None, up=1, has_quorum=False):
        d = sample(t, health="UNHEALTHY" if leader is None else "HEALTHY", leader=leader, up=up, size=3,
                   terms=(2, 2, 2))
        d["cluster"].update(health_reasons=reasons, has_quorum=has_quorum)
        return d

    events = []
    for t in range(5):  # refused: evidence of a lost quorum
        events += engine.evaluate(doc(float(t), reasons=["no_leader", "quorum_lost", "node_down:node2",
                                                         "node_down:node3"]), DEFAULT_THRESHOLDS)
    assert {(e["name"], e["status"]) for e in events} >= {("quorum_loss", "firing"),
                                                          ("leader_election_failure", "firing")}
    for t in range(5, 8):  # restarting: they time out, the monitor is blind
        blind = doc(float(t), reasons=["monitor_reach:1/3", "node_down:node2", "node_down:node3"], has_quorum=True)
        resolved = [e["name"] for e in engine.evaluate(blind, DEFAULT_THRESHOLDS) if e["status"] == "resolved"]
        assert "quorum_loss" not in resolved and "leader_election_failure" not in resolved, (t, resolved)
    held = {a["name"]: a["message"] for a in engine.active()}
    assert held["quorum_loss"].endswith("(held: the monitor reaches only 1/3 nodes and cannot tell)"), held
    assert held["leader_election_failure"].startswith("no leader for"), held
    # it sees again, still without a leader: the election has failed all along, one alert
    again = doc(8.0, reasons=["no_leader", "node_down:node3"], up=2, has_quorum=True)
    assert [e for e in engine.evaluate(again, DEFAULT_THRESHOLDS) if e["name"] == "leader_election_failure"] == []
    (lef,) = [a for a in engine.active() if a["name"] == "leader_election_failure"]
    assert lef["message"].startswith("no leader for 8.0 s"), lef
    # a leader and every node: both resolve now, not before
    final = {e["name"]: e["status"] for e in engine.evaluate(doc(9.0, reasons=[], leader="node1", up=3,
                                                                   has_quorum=True), DEFAULT_THRESHOLDS)}
    assert final.get("leader_election_failure") == "resolved" and "quorum_loss" not in {a["name"] for a in engine.active()}
    # a monitor blind from the start fires neither
    fresh = AlertEngine()
    for t in range(8):
        blind = doc(float(t), reasons=["monitor_reach:1/3", "node_down:node2", "node_down:node3"], has_quorum=True)
        assert [e["name"] for e in fresh.evaluate(blind, DEFAULT_THRESHOLDS)
                if e["name"] in ("quorum_loss", "leader_election_failure")] == []


def test_node_alert_messages_read_as_a_person_would_write_them():
    doc = sample(health="DEGRADED")
    doc["cluster"]["health_reasons"] = ["follower_unreachable:node2", "node_isolated:node3",
                                        "node_isolated:node4", "follower_unreachable:node5"]
    doc["nodes"]["node2"].update(last_contact_ms=6654.278)
    doc["nodes"]["node3"].update(peers_connected=1)
    doc["nodes"]["node4"].update(peers_connected=0)
    doc["nodes"]["node5"].update(last_contact_ms=250.4)
    messages = {dict(c.labels)["node"]: c.message for c in evaluate_conditions(doc, dict(DEFAULT_THRESHOLDS))}
    assert messages == {
        "node2": "the leader has not heard from node2 for 6.7 s",
        "node3": "node3 answers but reaches only 1 peer, no majority",
        "node4": "node4 answers but reaches only 0 peers, no majority",
        "node5": "the leader has not heard from node5 for 250 ms",
    }


def test_a_floor_above_the_cluster_size_says_so_in_its_message():
    """min_healthy_nodes 7 on a 5-node cluster fires forever: the message names the cause."""
    doc = sample(up=5, size=5, terms=(3,) * 5)
    [condition] = [c for c in evaluate_conditions(doc, validate_thresholds({"min_healthy_nodes": 7}))
                   if c.name == "low_healthy_nodes"]
    assert "5 of 5 nodes healthy, below 7" in condition.message
    assert "more than the cluster has" in condition.message
    [fitting] = [c for c in evaluate_conditions(sample(up=3, size=5, terms=(3,) * 5),
                                                validate_thresholds({"min_healthy_nodes": 5}))
                 if c.name == "low_healthy_nodes"]
    assert "more than the cluster has" not in fitting.message


# ---------------------------------------------------------------- commit_stalled

def stalling(t: float, commit: int | None, pending: int | None, leader: str | None = "node1") -> dict:
    doc = sample(t, leader=leader)
    doc["performance"]["proposals_pending"] = pending
    if leader is not None:
        doc["nodes"][leader]["commit_index"] = commit
    return doc


def run(engine: AlertEngine, steps) -> list[tuple[float, str, str]]:
    """Feed (t, commit, pending[, leader]) samples; the commit_stalled events as (t, status, message)."""
    out = []
    for step in steps:
        for event in engine.evaluate(stalling(*step), DEFAULT_THRESHOLDS):
            if event["name"] == "commit_stalled":
                out.append((step[0], event["status"], event["message"]))
    return out


def test_commit_stalled_fires_when_a_backed_leader_commits_nothing_while_proposals_wait():
    engine = AlertEngine()
    # commits move every second with orders waiting: quiet
    assert run(engine, [(float(t), 100 + t, 4) for t in range(10)]) == []
    # from t=10 the commit index stands at 109 (it last moved at t=9) with orders waiting
    events = run(engine, [(float(t), 109, 7) for t in range(10, 20)])
    assert [(t, status) for t, status, _ in events] == [(15.0, "firing")]  # 6 s > 5 s; at 14, 5 s is not above
    assert events[0][2] == "nothing committed for 6.0 s while 7 proposals wait, with a leader backed (threshold 5.0 s)"
    [active] = engine.active()
    assert active["severity"] == "critical" and active["message"].startswith("nothing committed for 10.0 s")
    # one entry commits: resolved at once
    assert [(t, s) for t, s, _ in run(engine, [(20.0, 110, 7)])] == [(20.0, "resolved")]


def test_commit_stalled_needs_waiting_proposals_and_a_leader_and_says_nothing_without_a_count():
    engine = AlertEngine()
    # idle: nothing waits, nothing needs to commit
    assert run(engine, [(float(t), 50, 0) for t in range(30)]) == []
    # a source that does not count proposals (etcd): no evidence, no alert
    assert run(engine, [(float(t), 50, None) for t in range(30, 60)]) == []
    # leaderless for 20 s with orders waiting: leader_election_failure's time, not this rule's;
    # the returned leader gets its own 5 s, counted from the last leaderless sample (79), as a
    # stall is counted from the last sample that saw a commit
    assert run(engine, [(float(t), None, 9, None) for t in range(60, 80)]) == []
    events = run(engine, [(float(t), 50, 9) for t in range(80, 90)])
    assert [(t, s) for t, s, _ in events] == [(85.0, "firing")]


def events_of(engine: AlertEngine, steps, term_of=lambda leader: 1) -> list[tuple[float, str, str]]:
    """Feed (t, commit, pending, leader) samples; every event as (t, name, status)."""
    out = []
    for t, commit, pending, leader in steps:
        doc = stalling(t, commit, pending, leader)
        doc["cluster"]["current_term"] = term_of(leader)
        out += [(t, e["name"], e["status"]) for e in engine.evaluate(doc, DEFAULT_THRESHOLDS)]
    return out


def test_a_new_leader_starts_below_the_mark_and_passes_it_at_its_first_commit():
    # a new leader learns the commit index by committing: it may first report one below its
    # predecessor's; its first move passes every index committed before (leader completeness)
    engine = AlertEngine()
    steps = [(0.0, 200, 3, "node1"), (1.0, 201, 3, "node1"), (2.0, 198, 3, "node2"), (3.0, 205, 3, "node2"),
             (4.0, 230, 3, "node2")]
    assert events_of(engine, steps, term_of={"node1": 1, "node2": 2}.get) == []
    # a new leader that never commits stays below: no progress, so commit_stalled (from t=4, the
    # last sample that saw a commit), never a loss: it committed nothing below the mark
    steps = [(float(t), 228, 3, "node3") for t in range(5, 12)]
    assert events_of(engine, steps, term_of={"node3": 3}.get) == [(10.0, "commit_stalled", "firing")]


def test_a_leader_that_commits_below_what_was_committed_has_lost_committed_entries():
    """Two of three logs lose their newer entries; they elect a leader that commits again from
    where its log ended: its commit index moves, but below the mark. Raft never does that."""
    engine = AlertEngine()
    terms = {"node1": 1, "node3": 2, "node2": 3}.get
    assert events_of(engine, [(float(t), 300 + 10 * t, 5, "node1") for t in range(5)], terms) == []  # mark 340
    # node3's first report (136) may be a commit index it has yet to learn: not a loss
    assert events_of(engine, [(5.0, 136, 5, "node3")], terms) == []
    assert events_of(engine, [(6.0, 236, 5, "node3")], terms) == [(6.0, "committed_entries_lost", "firing")]
    [lost] = [a for a in engine.active() if a["name"] == "committed_entries_lost"]
    assert lost["severity"] == "critical" and lost["labels"] == {}
    assert lost["message"].startswith("leader node3 (term 2) committed index 236, below index 340 committed before")
    # it stays while that leader leads in that term, even once past the mark (the entries are gone)
    assert events_of(engine, [(7.0, 336, 5, "node3"), (8.0, 436, 5, "node3")], terms) == []
    # no stall meanwhile: its commit index moves
    assert [a["name"] for a in engine.active()] == ["committed_entries_lost"]
    # a new term (node2) ends it; node2 is past the mark at once
    assert events_of(engine, [(9.0, 437, 5, "node2"), (10.0, 500, 5, "node2")], terms) == [
        (9.0, "committed_entries_lost", "resolved")]


def test_a_lost_commit_holds_across_a_term_change_until_a_leader_is_past_the_mark():
    """Session 23's tester: the leader of an emptied majority moved to a new term, still below the
    mark: committed_entries_lost resolved for one sample, then fired again (a critical page
    resolved and re-sent). It holds until a leader commits up to the mark."""
    engine = AlertEngine()
    terms = {"node1": 1, "node3": 2}.get
    assert events_of(engine, [(float(t), 300 + 10 * t, 5, "node1") for t in range(5)], terms) == []  # mark 340
    assert events_of(engine, [(5.0, 136, 5, "node3"), (6.0, 236, 5, "node3")], terms) == [
        (6.0, "committed_entries_lost", "firing")]
    later = {"node1": 1, "node3": 3}.get  # node3 again, in term 3, still below 340
    assert events_of(engine, [(7.0, 240, 5, "node3"), (8.0, 250, 5, "node3")], later) == []
    assert [a["name"] for a in engine.active()] == ["committed_entries_lost"]
    assert events_of(engine, [(9.0, 341, 5, "node1")], {"node1": 4}.get) == [(9.0, "committed_entries_lost", "resolved")]


def test_commit_stalled_in_a_sharded_cluster_names_the_shards_that_stand_still():
    engine = AlertEngine()

    def sharded(t: float, stuck: set[int]) -> dict:
        doc = sample(t)
        doc["performance"]["proposals_pending"] = 12
        doc["shards"] = [{"shard": g, "leader": "node1", "consensus_aligned": True,
                          "commit_index": 40 if g in stuck else 40 + int(t)} for g in range(4)]
        return doc

    fired = []
    for t in range(1, 12):
        fired += [(t, e["name"], e.get("shards")) for e in engine.evaluate(sharded(float(t), {1, 3}), DEFAULT_THRESHOLDS)]
    assert fired == [(7, "commit_stalled", [1, 3])]
    assert engine.active()[0]["message"].startswith("shards 1, 3: nothing committed for")
    # shard 3 moves again: the same alert now names shard 1 only; then shard 1 moves: resolved
    assert engine.evaluate(sharded(12.0, {1}), DEFAULT_THRESHOLDS) == []
    assert engine.active()[0]["shards"] == [1]
    assert [e["status"] for e in engine.evaluate(sharded(13.0, set()), DEFAULT_THRESHOLDS)] == ["resolved"]


def test_a_shard_no_order_waits_for_is_idle_not_stalled():
    """A shard no symbol maps to commits nothing and nothing waits for it: the cluster's pending
    orders are another shard's. It was called stalled (a critical alert on a healthy cluster)."""
    engine = AlertEngine()

    def sharded(t: float, pending: list[int]) -> dict:
        doc = sample(t)
        doc["performance"]["proposals_pending"] = sum(pending)
        doc["shards"] = [{"shard": g, "leader": "node1", "consensus_aligned": True, "proposals_pending": pending[g],
                          "commit_index": 40 + int(t) if g == 0 else 40} for g in range(3)]
        return doc

    fired = []
    for t in range(1, 12):
        fired += [(t, e["name"]) for e in engine.evaluate(sharded(float(t), [3, 0, 0]), DEFAULT_THRESHOLDS)]
    assert fired == []
    # orders wait for shard 2 and its commit index stands still: that is a stall, of shard 2
    for t in range(12, 20):
        fired += [(t, e["name"], e.get("shards")) for e in engine.evaluate(sharded(float(t), [3, 0, 2]),
                                                                           DEFAULT_THRESHOLDS)]
    assert fired == [(17, "commit_stalled", [2])]  # 6 s after t=11, when nothing waited for it


def test_a_sharded_simulated_cluster_with_idle_shards_stays_healthy():
    from raftctl import Cluster, MetricsCollector
    from raftctl.core.workload import Workload

    cluster = Cluster(node_count=5, seed=1, shards=4)
    Workload(cluster, rate=100)
    collector = MetricsCollector()
    collector.set_cluster(cluster)
    for _ in range(12):
        cluster.run_for(1.0)
        doc = collector.collect()
        assert doc["cluster"]["health_status"] == "HEALTHY", (doc["sim_time"], doc["cluster"]["health_reasons"])
    pending = [shard["proposals_pending"] for shard in doc["shards"]]
    assert sum(pending) == doc["performance"]["proposals_pending"]
    assert doc["alerts"] == []


def test_max_commit_stall_s_is_a_threshold_like_the_others():
    assert DEFAULT_THRESHOLDS["max_commit_stall_s"] == 5.0
    assert validate_thresholds({"max_commit_stall_s": 30})["max_commit_stall_s"] == 30
    for bad in (-1, True, "5", float("nan")):
        with pytest.raises(ValueError, match="max_commit_stall_s"):
            validate_thresholds({"max_commit_stall_s": bad})
    engine = AlertEngine()
    events = [e for t in range(40) for e in engine.evaluate(stalling(float(t), 7, 2), dict(DEFAULT_THRESHOLDS,
                                                                                          max_commit_stall_s=30))]
    assert [(e["name"], e["started_at_sim"]) for e in events] == [("commit_stalled", 31.0)]


def test_a_lost_commit_in_one_shard_is_that_shard_s_alert():
    engine = AlertEngine()

    def sharded(t: float, shard2: tuple[str, int, int]) -> dict:
        doc = sample(t)
        doc["performance"]["proposals_pending"] = 4
        doc["shards"] = [{"shard": g, "leader": "node1", "term": 1, "consensus_aligned": True,
                          "commit_index": 100 + int(t)} for g in range(3)]
        doc["shards"][2].update(leader=shard2[0], term=shard2[1], commit_index=shard2[2])
        return doc

    events = []
    for t, shard2 in [(1.0, ("node1", 1, 500)), (2.0, ("node3", 2, 300)), (3.0, ("node3", 2, 320))]:
        events += [(t, e["name"], e["labels"]) for e in engine.evaluate(sharded(t, shard2), DEFAULT_THRESHOLDS)]
    assert events == [(3.0, "committed_entries_lost", {"shard": "2"})]
    assert engine.active()[0]["message"].startswith("shard 2: leader node3 (term 2) committed index 320, below index 500")


def test_the_commit_watch_shortcut_agrees_with_the_long_way():
    """CommitWatch.observe takes a shortcut when one group's leader, in the same term, moved its
    commit index past every one seen; on random sequences (leader and term changes, stalls,
    losses, no leader, no pending count) both ways must say the same at every sample."""
    from raftctl.core.commit_watch import CommitWatch

    shortcut_taken = 0
    for seed in range(300):
        rng = random.Random(seed)
        quick, slow = CommitWatch(), CommitWatch()
        slow.quick = False
        commit, leader, term = 100, "node1", 1
        for step in range(40):
            roll = rng.random()
            if roll < 0.1:
                leader, term = rng.choice(["node1", "node2", "node3"]), term + rng.choice([0, 1])
                commit = max(0, commit + rng.randrange(-80, 5))
            elif roll < 0.6:
                commit += rng.randrange(1, 20)
            elif roll < 0.7:
                commit -= rng.randrange(0, 5)
            shown = None if rng.random() < 0.05 else leader
            doc = stalling(float(step), commit, rng.choice([0, 3, None]), shown)
            doc["cluster"]["current_term"] = term
            before = quick._groups.get(0)
            fast = before is not None and shown is not None and before.tenure == (shown, term) and commit > before.seen
            shortcut_taken += fast
            quick.observe(doc, float(step))
            slow.observe(doc, float(step))
            assert (quick.stalls, quick.losses) == (slow.stalls, slow.losses), f"seed {seed} step {step}"
    assert shortcut_taken > 2000


def test_the_quiet_sample_shortcut_is_taken_only_where_no_rule_holds():
    """AlertEngine skips evaluate_conditions when _nothing_holds says no rule can hold; on random
    samples near healthy (each field now and then off) it may say so only where the rules find
    nothing, and the engine's events must be those of the full evaluation."""
    from raftctl.core.alerts import _nothing_holds
    from raftctl.core.commit_watch import CommitWatch

    said_quiet = 0
    for seed in range(3000):
        rng = random.Random(seed)
        size = rng.randrange(1, 8)
        up = size if rng.random() < 0.7 else rng.randrange(0, size + 1)
        terms = tuple(rng.choice([5, 5, 5, 6, 9]) for _ in range(size))
        doc = sample(1.0, health=rng.choice(["HEALTHY"] * 6 + ["DEGRADED", "UNHEALTHY"]),
                     leader=None if rng.random() < 0.1 else "node1", aligned=rng.random() < 0.95, up=up, size=size,
                     latency=rng.choice([None, 1.0, 499.0, 500.0, 501.0, 2000.0]), terms=terms)
        if rng.random() < 0.1:
            doc["cluster"]["health_reasons"] = [rng.choice(["node_down:node2", "follower_lagging:node3", "x"])]
        if rng.random() < 0.05:
            doc["cluster"]["has_quorum"] = False
        thresholds = dict(DEFAULT_THRESHOLDS)
        if rng.random() < 0.2:
            thresholds["min_healthy_nodes"] = rng.randrange(0, 9)
        if rng.random() < 0.2:
            thresholds["max_term_difference"] = rng.randrange(0, 5)
        if rng.random() < 0.2:
            thresholds["max_latency_ms"] = rng.choice([0.5, 100.0, 1000.0])
        live = [terms[i] for i in range(size) if doc["nodes"][f"node{i + 1}"]["up"]]
        live_terms = (min(live), max(live)) if live else None
        watch = CommitWatch()
        watch.stalls = {0: 9.0} if rng.random() < 0.05 else None
        watch.losses = None
        if _nothing_holds(doc, thresholds, live_terms, watch):
            said_quiet += 1
            found = evaluate_conditions(doc, thresholds, 0.0, {}, live_terms, watch.stalls, watch.losses)
            assert found == [], f"seed {seed}: said quiet, but {found}"
    assert said_quiet > 250  # the shortcut itself was exercised, not only its refusals


def test_a_sample_without_health_reasons_is_still_evaluated():
    # the quiet-sample shortcut must read a cluster without health_reasons as the rules do (none)
    doc = sample(1.0)
    del doc["cluster"]["health_reasons"]
    assert AlertEngine().evaluate(doc, DEFAULT_THRESHOLDS) == []


# ---------------------------------------------------------------- what the commit watch does to health

class _CommitSource:
    """Three nodes, node1 leading in term ``term``; each poll's commit index and waiting orders
    come from ``script`` [(commit, pending, term)], one second apart."""

    name = "scripted"

    def __init__(self, script):
        self.script = list(script)
        self.now = 0.0

    def members(self):
        return ["node1", "node2", "node3"]

    def close(self):
        pass

    def poll(self, since=None):
        from raftctl.core.source import ClientView, NodeAnswer, Poll

        commit, pending, term = self.script.pop(0)
        self.now += 1.0
        answers = {}
        for nid in self.members():
            report = {"state": "LEADER" if nid == "node1" else "FOLLOWER", "term": term, "leader_id": "node1",
                      "commit_index": commit, "last_applied": commit, "log_length": commit, "peers_connected": 2,
                      "state_digest": f"d{commit}"}
            if nid == "node1":
                report["match_index"] = {"node2": commit, "node3": commit}
                report["last_contact_ms"] = {"node2": 10.0, "node3": 10.0}
            answers[nid] = NodeAnswer(nid, report)
        return Poll(self.now, answers, ClientView(orders_pending=pending, orders_acknowledged=commit))


def _health_over(script):
    from raftctl.core.collector import SampleCollector

    collector = SampleCollector()
    collector.set_source(_CommitSource(script))
    rows = []
    for _ in script:
        sample = collector.collect()
        rows.append((sample["cluster"]["health_status"], sample["cluster"]["health_reasons"],
                     sorted(a["name"] for a in sample["alerts"])))
    return rows


def test_a_stalled_commit_makes_the_cluster_unhealthy_until_it_moves():
    """Past max_commit_stall_s (5 s) without a commit while orders wait, health says UNHEALTHY
    (reason commit_stalled), with cluster_unhealthy and commit_stalled firing; the next commit
    makes it HEALTHY again."""
    script = [(100 + t, 3, 2) for t in range(3)] + [(102, 3, 2)] * 7 + [(110, 3, 2)]
    rows = _health_over(script)
    # the index stood still from t=3 s; more than 5 s later (t=9 s) it is a stall
    assert [r[0] for r in rows[:8]] == ["HEALTHY"] * 8, rows
    assert rows[8] == ("UNHEALTHY", ["commit_stalled"], ["cluster_unhealthy", "commit_stalled"]), rows[8]
    assert rows[9][0] == "UNHEALTHY" and rows[10] == ("HEALTHY", [], []), rows


def test_no_waiting_order_is_no_stall_and_a_lost_commit_is_unhealthy_for_the_term():
    idle = _health_over([(100, 0, 2)] * 12)
    assert {r[0] for r in idle} == {"HEALTHY"}, idle
    # node1 commits to 500 in term 2, then leads term 3 from a log that lacks 300 of them
    rows = _health_over([(500, 1, 2), (200, 1, 3), (210, 1, 3), (220, 1, 3)])
    assert rows[1][0] == "HEALTHY"  # a new leader's commit index starts where it is
    assert rows[2] == ("UNHEALTHY", ["committed_entries_lost"], ["cluster_unhealthy", "committed_entries_lost"])
    assert rows[3][0] == "UNHEALTHY"


def test_a_stalled_shard_is_unhealthy_and_so_is_the_cluster():
    """Sharded: the shard whose leader stands still with orders waiting says UNHEALTHY, the
    cluster too (reason shard1:commit_stalled); the shard that commits stays HEALTHY."""
    from raftctl.core.collector import SampleCollector
    from raftctl.core.source import ClientView, NodeAnswer, Poll

    class Sharded(_CommitSource):
        def poll(self, since=None):
            self.now += 1.0
            t = int(self.now)
            commits = [100 + t, 100 + min(t, 3)]  # shard 1 stops at t=3 s
            answers = {}
            for nid in self.members():
                entries = []
                for commit in commits:
                    entry = {"state": "LEADER" if nid == "node1" else "FOLLOWER", "term": 2, "leader_id": "node1",
                             "commit_index": commit, "last_applied": commit, "log_length": commit,
                             "state_digest": f"d{commit}"}
                    if nid == "node1":
                        entry["match_index"] = {"node2": commit, "node3": commit}
                        entry["last_contact_ms"] = {"node2": 10.0, "node3": 10.0}
                    entries.append(entry)
                report = dict(entries[0], peers_connected=2, shards=entries)
                answers[nid] = NodeAnswer(nid, report)
            return Poll(self.now, answers, ClientView(orders_pending=2, orders_acknowledged=t,
                                                      acknowledged_by_shard=[t, 3], shard_latencies_ms=[[], []]),
                        shards=2)

    collector = SampleCollector()
    collector.set_source(Sharded([]))
    seen = []
    for _ in range(12):
        sample = collector.collect()
        seen.append((sample["cluster"]["health_status"], [d["health_status"] for d in sample["shards"]],
                     sample["cluster"]["health_reasons"]))
    assert seen[5] == ("HEALTHY", ["HEALTHY", "HEALTHY"], []), seen
    assert seen[-1] == ("UNHEALTHY", ["HEALTHY", "UNHEALTHY"], ["shard1:commit_stalled"]), seen


def test_a_sample_without_a_leader_does_not_end_a_loss_held_for_its_tenure():
    """The monitor may miss the leader for a sample (a report a turn stale): the same leader back
    in the same term still lacks the lost entries, so committed_entries_lost stays; a new term
    ends it."""
    engine = AlertEngine()
    terms = {"node1": 1, "node3": 2, "node2": 3, None: 2}.get
    events_of(engine, [(float(t), 300 + 10 * t, 5, "node1") for t in range(5)], terms)
    assert ("committed_entries_lost", "firing") in [
        (n, s) for _t, n, s in events_of(engine, [(5.0, 136, 5, "node3"), (6.0, 236, 5, "node3")], terms)]
    lost = [(n, s) for _t, n, s in events_of(engine, [(7.0, None, 5, None), (8.0, 246, 5, "node3"),
                                                          (9.0, 256, 5, "node3")], terms)
            if n == "committed_entries_lost"]
    assert lost == [], lost
    assert "committed_entries_lost" in [a["name"] for a in engine.active()]
    resolved = events_of(engine, [(10.0, 500, 5, "node2")], terms)
    assert (10.0, "committed_entries_lost", "resolved") in resolved, resolved


def test_quorum_loss_counts_the_nodes_up_not_the_healthy_ones():
    """Three of five crashed: node4 and node5 are up (one of them a stale leader, up but not
    healthy). The message said 'only 1 of 5 nodes up'."""
    from raftctl import Cluster, MetricsCollector
    from raftctl.core.workload import Workload

    cluster = Cluster(5, seed=2)
    Workload(cluster, rate=50)
    collector = MetricsCollector()
    collector.set_cluster(cluster)
    cluster.run_for(3)
    collector.collect()
    for node in ("node1", "node2", "node3"):
        cluster.crash(node)
    doc = collector.collect()
    assert doc["cluster"]["healthy_nodes"] < 2  # what the old message reported as "up"
    [alert] = [a for a in doc["alerts"] if a["name"] == "quorum_loss"]
    assert alert["message"] == "only 2 of 5 nodes up (3 refused the poll: not running); a majority is 3"


def test_every_node_cut_off_from_every_other_is_no_quorum_and_a_cut_off_minority_is_one():
    """Each of three nodes alone in its partition: all answered the monitor, none reached a peer,
    no leader, yet the sample said has_quorum true and the page "quorum held". A node's own
    report that it reaches no majority is evidence, as a refused poll is."""
    from raftctl import Cluster, MetricsCollector
    from raftctl.core.workload import Workload

    for seed in (2, 3):
        cluster = Cluster(3, seed=seed)
        Workload(cluster, rate=50)
        collector = MetricsCollector()
        collector.set_cluster(cluster)
        cluster.run_for(3)
        assert collector.collect()["cluster"]["has_quorum"], f"seed {seed}"
        cluster.partition(["node1"], ["node2"], ["node3"])
        cluster.run_for(3)
        doc = collector.collect()
        cluster_doc = doc["cluster"]
        assert cluster_doc["nodes_reached"] == 3 and cluster_doc["leader_node"] is None, f"seed {seed}"
        assert cluster_doc["has_quorum"] is False and "quorum_lost" in cluster_doc["health_reasons"], \
            f"seed {seed}: {cluster_doc}"
        [alert] = [a for a in doc["alerts"] if a["name"] == "quorum_loss"]
        assert alert["message"] == ("only 0 of 3 nodes up and reaching a majority of their peers (0 refused the "
                                    "poll: not running; 3 answer but are cut off, reaching fewer than 1); "
                                    "a majority is 2"), alert["message"]
        # the majority side of a split still is a quorum; the node cut off from it is DEGRADED
        cluster.heal()
        cluster.run_for(3)
        leader = cluster.leader_id
        assert leader is not None, f"seed {seed}"
        cluster.partition([leader], [n for n in cluster.node_ids if n != leader])
        cluster.run_for(3)
        cluster_doc = collector.collect()["cluster"]
        assert cluster_doc["has_quorum"] is True and f"node_isolated:{leader}" in cluster_doc["health_reasons"], \
            f"seed {seed}: {cluster_doc}"


def test_a_node_back_for_a_moment_does_not_page_and_one_cut_off_for_longer_does():
    """A node just restarted reaches no peer for a sample, a node woken from SIGSTOP is not heard
    from by the leader for a sample: node_isolated and node_lagging fired and resolved a second
    later, paging through every sink. They now wait node_alert_hold_s (2 s) as a rule's for: does;
    0 fires at once, and a node cut off for longer fires once the hold has passed."""
    from raftctl import Cluster, MetricsCollector
    from raftctl.core.workload import Workload

    def run(hold: float | None, cut_samples: int) -> list[tuple[float, str, str]]:
        cluster = Cluster(3, seed=4)
        Workload(cluster, rate=50)
        collector = MetricsCollector()
        if hold is not None:
            collector.alert_thresholds = {"node_alert_hold_s": hold}
        collector.set_cluster(cluster)
        cluster.run_for(3)
        collector.collect()
        follower = next(n for n in cluster.node_ids if n != cluster.leader_id)
        fired = []
        cluster.partition([follower], [n for n in cluster.node_ids if n != follower])
        for _ in range(cut_samples):
            cluster.run_for(1.0)
            doc = collector.collect()
            assert f"node_isolated:{follower}" in doc["cluster"]["health_reasons"], doc["cluster"]
        cluster.heal()
        for _ in range(3):
            cluster.run_for(1.0)
            collector.collect()
        for event in collector.events():
            if event.get("kind") == "alert" and event.get("name") in ("node_isolated", "node_lagging"):
                fired.append((event["t"], event["name"], event["status"]))
        return fired

    assert run(None, 1) == [], "a one-sample blip paged"
    assert run(None, 2) == [], "held 1 s of 2"
    held = run(None, 4)
    assert ("node_isolated", "firing") in [(name, status) for _, name, status in held], held
    assert [status for _, name, status in held if name == "node_isolated"] == ["firing", "resolved"], held
    at_once = run(0.0, 1)
    assert [(name, status) for _, name, status in at_once if name == "node_isolated"] == \
        [("node_isolated", "firing"), ("node_isolated", "resolved")], at_once

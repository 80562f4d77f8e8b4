"""The pause fault (a GC pause, SIGSTOP): state and timers kept, nothing processed, messages wait."""

from __future__ import annotations

import pytest

from raftctl import Cluster, SafetyChecker, Workload

SEED = 31


def _cluster(seed: int = SEED) -> Cluster:
    cluster = Cluster(5, seed=seed)
    Workload(cluster, rate=100, seed=seed)
    assert cluster.run_until(lambda: cluster.leader_id is not None, timeout=5.0), f"seed={seed}"
    cluster.run_for(1.0)
    return cluster


def test_a_paused_leader_is_replaced_wakes_stale_and_steps_down():
    cluster = _cluster()
    checker = SafetyChecker(cluster)
    old = cluster.leader_id
    old_term = cluster.node(old).raft.term
    cluster.pause(old)
    assert cluster.fault_log[-1][1:] == ("pause", (old,))
    # a new leader of a higher term, within the election timeout and a little
    assert cluster.run_until(
        lambda: any(n.raft and n.raft.state == "LEADER" and n.raft.term > old_term
                    for n in cluster.nodes if n.node_id != old), timeout=1.0), f"seed={SEED}"
    cluster.run_for(1.0)
    frozen = cluster.node(old)
    assert frozen.raft.state == "LEADER" and frozen.raft.term == old_term, "a paused node changes nothing"
    assert frozen.held, "messages to a paused node wait for it"
    assert cluster.leader_id != old
    cluster.resume(old)
    assert cluster.fault_log[-1][1:] == ("resume", (old,))
    assert not frozen.held
    assert cluster.run_until(lambda: frozen.raft.state == "FOLLOWER", timeout=1.0), f"seed={SEED}"
    assert frozen.raft.term > old_term
    workload = cluster.workload
    workload.paused = True
    assert cluster.run_until(lambda: cluster.converged() and not cluster.outstanding, timeout=10.0), f"seed={SEED}"
    checker.check_final(cluster)
    assert checker.ok, checker.violations


def test_orders_wait_while_the_leader_is_paused_and_none_is_lost():
    cluster = _cluster(SEED + 1)
    leader = cluster.leader_id
    cluster.pause(leader)
    tickets = [cluster.submit({"op": "new", "symbol": "BTC-USD", "side": "buy", "type": "limit",
                               "price": 100, "qty": 1}, client_id="c9") for _ in range(20)]
    cluster.run_for(3.0)
    cluster.resume(leader)
    assert cluster.run_until(lambda: all(t.acked for t in tickets), timeout=10.0), f"seed={SEED + 1}"
    node = cluster.node(cluster.leader_id)
    assert all(node.session_has("c9", t.seq) for t in tickets)


def test_pause_and_resume_are_idempotent_and_check_their_node():
    cluster = _cluster()
    with pytest.raises(ValueError, match="unknown node id"):
        cluster.pause("node9")
    with pytest.raises(ValueError, match="unknown node id"):
        cluster.resume("nope")
    cluster.resume("node1")  # not paused: nothing happens
    cluster.pause("node2")
    cluster.pause("node2")
    assert [k for _, k, _ in cluster.fault_log].count("pause") == 1
    cluster.crash("node2")  # a crash ends the pause too
    assert not cluster.node("node2").paused
    cluster.restart("node2")
    assert cluster.run_until(lambda: cluster.converged(), timeout=10.0), f"seed={SEED}"


def test_a_paused_run_replays_exactly():
    def run() -> int:
        cluster = _cluster()
        cluster.at(cluster.now + 0.5, lambda c: c.pause(c.leader_id))
        cluster.run_for(2.0)
        for node in cluster.nodes:
            if node.paused:
                cluster.resume(node.node_id)
        cluster.run_for(2.0)
        return cluster.trace_hash

    assert run() == run()

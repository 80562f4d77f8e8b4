"""The node host driven by hand: no simulator, just hosts, a list of messages and a clock.

Also the persist-before-send rule: a recording store checks, whenever a message leaves, that the
state it promises is already durable; and the check is shown to fail on a host that sends first.
"""

from __future__ import annotations

import random

import pytest

from raftctl.core.node import NodeHost
from raftctl.core.raft import APPEND_RESP, LEADER, VOTE_RESP, Message, RaftConfig, Ready

IDS = ["n1", "n2", "n3"]


class RecordingStore:
    """A disk log as a host would write it: hard state and entries, durable once persisted."""

    def __init__(self) -> None:
        self.term = 0
        self.voted_for: str | None = None
        self.entries: dict[int, int] = {}  # index -> term
        self.snapshot_index = 0
        self.deferred: list[tuple[int, Ready]] = []

    def persist(self, shard: int, ready: Ready) -> None:
        if ready.hard_state is not None:
            self.term, self.voted_for = ready.hard_state.term, ready.hard_state.voted_for
        if ready.entries:
            for index in [i for i in self.entries if i >= ready.entries_from]:
                del self.entries[index]  # the log is replaced from entries_from on
            for offset, (term, _command) in enumerate(ready.entries):
                self.entries[ready.entries_from + offset] = term
        if ready.snapshot is not None:
            self.snapshot_index = ready.snapshot.index

    def save_snapshot(self, shard: int, index: int, term: int, data: object) -> None:
        self.snapshot_index = index

    def durable_through(self, index: int) -> bool:
        return all(i in self.entries or i <= self.snapshot_index for i in range(1, index + 1))


class LateStore(RecordingStore):
    """A planted bug: writes each Ready only when the next one comes (sends before persisting)."""

    def persist(self, shard: int, ready: Ready) -> None:
        self.deferred.append((shard, ready))
        if len(self.deferred) > 1:
            super().persist(*self.deferred.pop(0))


def promise_broken(store: RecordingStore, msg: Message) -> str | None:
    """What a message claims that its sender's store does not hold yet (None if nothing)."""
    if msg.kind == VOTE_RESP and msg.granted and (store.term, store.voted_for) != (msg.term, msg.dst):
        return f"{msg.src} granted its vote in term {msg.term} before persisting it"
    if msg.kind == APPEND_RESP and msg.success and not store.durable_through(msg.match_index):
        return f"{msg.src} acknowledged index {msg.match_index} before persisting it"
    return None


class Hand:
    """Hosts wired by hand: ``deliver`` moves every queued message, checking each as it leaves."""

    def __init__(self, store_type: type[RecordingStore] = RecordingStore, seed: int = 7) -> None:
        self.now = 0.0
        self.waiting: set[tuple[int, str, int]] = set()
        self.stores = {nid: store_type() for nid in IDS}
        self.hosts = {nid: NodeHost(nid, IDS, config=RaftConfig(), store=self.stores[nid], waiting=self.waiting,
                                    index=i) for i, nid in enumerate(IDS)}
        rng = random.Random(seed)
        for host in self.hosts.values():
            host.boot(self.now, rng)
        self.broken: list[str] = []

    def deliver(self, rounds: int = 50) -> None:
        for _ in range(rounds):
            batch = []
            for nid, host in self.hosts.items():
                for msgs in host.take_outgoing().values():
                    for msg in msgs:
                        problem = promise_broken(self.stores[nid], msg)
                        if problem:
                            self.broken.append(problem)
                        batch.append(msg)
            if not batch:
                return
            for msg in batch:
                self.hosts[msg.dst].step(msg, self.now)

    def run(self, ms: float) -> None:
        end = self.now + ms
        while self.now < end:
            self.now += 1.0
            for host in self.hosts.values():
                if host.next_deadline() <= self.now:
                    host.tick(self.now)
            self.deliver()

    def leader(self) -> NodeHost | None:
        found = [h for h in self.hosts.values() if h.replicas[0].raft and h.replicas[0].raft.state == LEADER]
        return found[0] if found else None


def order(seq: int, client: str = "c1") -> tuple[str, int, dict, str]:
    command = {"op": "new", "symbol": "BTC-USD", "side": "buy", "type": "limit", "ticks": 10_000 + seq, "qty": 1}
    return (client, seq, command, f"{client}:{seq}")


def test_three_hosts_elect_replicate_and_complete_requests_without_a_simulator():
    hand = Hand()
    hand.run(600)
    leader = hand.leader()
    assert leader is not None, "no leader within 600 ms"
    for seq in range(1, 21):
        hand.waiting.add((0, "c1", seq))
        assert leader.propose(0, order(seq)) is not None
    leader.flush(0)
    hand.deliver()
    hand.run(100)  # a heartbeat carries the commit index to the followers
    done = {(shard, client, seq) for shard, client, seq, _rejected in leader.completions}
    assert done == {(0, "c1", s) for s in range(1, 21)}
    digests = {h.replicas[0].exchange.digest() for h in hand.hosts.values()}
    applied = {h.replicas[0].raft.last_applied for h in hand.hosts.values()}
    assert len(digests) == 1 and len(applied) == 1
    assert hand.broken == []


def test_a_leader_never_appends_a_second_entry_for_an_entry_in_flight():
    hand = Hand()
    hand.run(600)
    leader = hand.leader()
    raft = leader.replicas[0].raft
    first = leader.propose(0, order(1))
    before = raft.last_index
    assert leader.propose(0, order(1)) == first, "a retry of an in-flight entry must return its index"
    assert raft.last_index == before, "the retry appended a second entry"
    leader.flush(0)
    hand.deliver()
    hand.run(100)
    assert leader.replicas[0].session_has("c1", 1)
    # once applied, a resubmission is a new entry that the session table applies at most once
    again = leader.propose(0, order(1))
    assert again == raft.last_index and again != first
    leader.flush(0)
    hand.deliver()
    assert leader.replicas[0].duplicates_skipped >= 1


def test_every_message_leaves_only_after_what_it_promises_is_durable():
    hand = Hand()
    hand.run(2000)
    leader = hand.leader()
    for seq in range(1, 50):
        leader.propose(0, order(seq))
        if seq % 7 == 0:
            leader.flush(0)
            hand.deliver()
    hand.run(300)
    assert hand.broken == []


def test_the_rule_check_catches_a_host_that_sends_before_persisting():
    hand = Hand(store_type=LateStore)
    hand.run(2000)
    leader = hand.leader()
    assert leader is not None
    for seq in range(1, 10):
        leader.propose(0, order(seq))
    leader.flush(0)
    hand.deliver()
    hand.run(200)
    assert hand.broken, "a store that persists one Ready late must break a promise"


def test_a_down_host_refuses_steps():
    hand = Hand()
    host = hand.hosts["n2"]
    host.crash()
    with pytest.raises(RuntimeError):
        host.step(Message(APPEND_RESP, "n1", "n2", 1), 0.0)


def test_an_apply_budget_applies_committed_entries_in_order_over_several_turns():
    """A process node bounds what one loop turn applies: the rest stays committed, unapplied,
    until :meth:`NodeHost.apply_pending` runs with a fresh budget; nothing is lost or reordered."""
    hand = Hand()
    hand.run(600)
    leader = hand.leader()
    assert leader is not None
    raft = leader.replicas[0].raft
    start = raft.last_applied
    for seq in range(1, 26):
        hand.waiting.add((0, "c1", seq))
        leader.propose(0, order(seq))
    leader.apply_budget = 10
    leader.flush(0)
    hand.deliver()  # the followers acknowledge all 25: the leader commits them, applies 10
    assert raft.commit_index == start + 25
    assert raft.last_applied == start + 10 and leader.apply_budget == 0 and leader.unapplied()
    assert [seq for _, _, seq, _ in leader.completions] == list(range(1, 11))
    assert leader.apply_pending() == 0, "an exhausted budget applies nothing"
    leader.apply_budget = 10
    assert leader.apply_pending() == 10 and raft.last_applied == start + 20
    leader.apply_budget = None  # no limit: the rest at once
    assert leader.apply_pending() == 5 and not leader.unapplied()
    assert [seq for _, _, seq, _ in leader.completions] == list(range(1, 26))
    follower = next(h for h in hand.hosts.values() if h is not leader)
    hand.run(100)  # a heartbeat brings the commit to the followers, who apply without a budget
    assert follower.replicas[0].exchange.digest() == leader.replicas[0].exchange.digest()

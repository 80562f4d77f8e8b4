"""The Raft state machine, driven message by message (sections of the Raft paper)."""

from __future__ import annotations

import random

import pytest

from raftctl.core.raft import (
    APPEND,
    APPEND_RESP,
    CANDIDATE,
    FOLLOWER,
    LEADER,
    PRE_CANDIDATE,
    PRE_VOTE,
    PRE_VOTE_RESP,
    SNAPSHOT,
    VOTE,
    VOTE_RESP,
    Message,
    RaftConfig,
    RaftNode,
    Storage,
)

IDS = ["n1", "n2", "n3"]


def take(node):
    """Act as the node's host for one Ready: returns its messages (and marks it done)."""
    rd = node.ready()
    if rd is None:
        return []
    node.advance(rd)
    return rd.messages


class Net:
    """A hand-driven network and host: messages wait in ``pending`` until a test delivers them.

    ``collect`` handles each node's Ready as a host would: its messages go to ``pending``, its
    committed entries to ``applied[node]`` as (index, term, command), a snapshot to
    ``snapshots[node]``.
    """

    def __init__(self, ids=IDS, prevote=True, seed=0, check_quorum=True):
        self.now = 0.0
        cfg = RaftConfig(prevote=prevote, check_quorum=check_quorum)
        self.nodes = {
            nid: RaftNode(nid, ids, Storage(), random.Random(seed + i), cfg) for i, nid in enumerate(ids)
        }
        self.pending: list[Message] = []
        self.cut: set[str] = set()
        self.applied: dict[str, list] = {nid: [] for nid in ids}
        self.snapshots: dict[str, object] = {}

    def take(self, node):
        rd = node.ready()
        if rd is None:
            return []
        if rd.snapshot is not None:
            self.snapshots[node.id] = rd.snapshot.data
        self.applied[node.id].extend(
            (rd.committed_from + i, term, command) for i, (term, command) in enumerate(rd.committed))
        node.advance(rd)
        return rd.messages

    def collect(self):
        for node in self.nodes.values():
            self.pending.extend(self.take(node))

    def deliver_all(self, rounds=20):
        for _ in range(rounds):
            self.collect()
            if not self.pending:
                return
            batch, self.pending = self.pending, []
            for msg in batch:
                if msg.src in self.cut or msg.dst in self.cut:
                    continue
                self.nodes[msg.dst].step(msg, self.now)

    def advance(self, ms, deliver=True):
        end = self.now + ms
        while self.now < end:
            self.now += 1.0
            for node in self.nodes.values():
                node.tick(self.now)
            if deliver:
                self.deliver_all()

    def leader(self):
        leaders = [n for n in self.nodes.values() if n.state == LEADER]
        return leaders[0] if leaders else None


def elect(net, nid="n1"):
    """Make ``nid`` time out first and win."""
    node = net.nodes[nid]
    node.election_deadline = net.now  # fire now
    node.tick(net.now)
    net.deliver_all()
    assert node.state == LEADER
    return node


# ---- §5.2 leader election ---------------------------------------------------------------


def test_follower_times_out_and_wins_election_with_prevote():
    net = Net()
    n1 = net.nodes["n1"]
    n1.election_deadline = 0.0
    n1.tick(0.0)
    assert n1.state == PRE_CANDIDATE
    assert n1.term == 0, "PreVote must not bump the term"
    out = take(n1)
    assert {m.kind for m in out} == {PRE_VOTE} and {m.dst for m in out} == {"n2", "n3"}
    assert all(m.term == 1 for m in out)
    for m in out:
        net.nodes[m.dst].step(m, 0.0)
    net.deliver_all()
    assert n1.state == LEADER and n1.term == 1
    assert all(net.nodes[n].leader_id == "n1" for n in ("n2", "n3"))


def test_election_without_prevote_bumps_term_and_votes_once_per_term():
    net = Net(prevote=False)
    n1, n2, n3 = (net.nodes[n] for n in IDS)
    n1.election_deadline = 0.0
    n1.tick(0.0)
    assert n1.state == CANDIDATE and n1.term == 1 and n1.storage.voted_for == "n1"
    requests = take(n1)
    assert {m.kind for m in requests} == {VOTE}
    # n2 votes for n1; a second candidate in the same term is refused.
    n2.step(requests[0] if requests[0].dst == "n2" else requests[1], 0.0)
    reply = take(n2)[0]
    assert reply.kind == VOTE_RESP and reply.granted
    rival = Message(VOTE, "n3", "n2", 1, last_log_index=0, last_log_term=0)
    n2.step(rival, 0.0)
    assert not take(n2)[0].granted
    n1.step(reply, 1.0)
    assert n1.state == LEADER


def test_vote_refused_to_candidate_with_stale_log():
    net = Net(prevote=False, check_quorum=False)
    leader = elect(net)
    leader.propose("x")
    leader.flush()
    net.deliver_all()
    n3 = net.nodes["n3"]
    stale = Message(VOTE, "n2", "n3", leader.term + 1, last_log_index=0, last_log_term=0)
    n3.step(stale, net.now)
    resp = take(n3)[0]
    assert resp.kind == VOTE_RESP and not resp.granted
    assert n3.term == leader.term + 1  # the higher term is still adopted


def test_vote_request_ignored_inside_leader_lease():
    net = Net(prevote=False)
    leader = elect(net)
    n3 = net.nodes["n3"]
    n3.step(Message(VOTE, "n2", "n3", leader.term + 1,
                    last_log_index=9, last_log_term=9), net.now)
    assert take(n3) == [] and n3.term == leader.term, \
        "CheckQuorum: a follower that just heard from its leader ignores disruptive candidates"


def test_randomized_timeouts_come_from_injected_rng():
    a = RaftNode("n1", IDS, Storage(), random.Random(7))
    b = RaftNode("n1", IDS, Storage(), random.Random(7))
    c = RaftNode("n1", IDS, Storage(), random.Random(8))
    assert a.election_deadline == b.election_deadline != c.election_deadline
    assert 150 <= a.election_deadline < 300


# ---- PreVote (thesis §9.6) ----------------------------------------------------------------


def test_prevote_keeps_isolated_node_term_stable():
    net = Net(prevote=True)
    elect(net)
    net.cut = {"n3"}
    net.advance(2000)
    assert net.nodes["n3"].term == 1, "an isolated node must not inflate its term with PreVote"
    assert net.nodes["n3"].state == PRE_CANDIDATE
    net.cut = set()
    net.advance(200)
    assert net.leader().id == "n1" and net.leader().term == 1, "rejoining must not depose the leader"


def test_without_prevote_isolated_node_term_climbs():
    net = Net(prevote=False)
    elect(net)
    net.cut = {"n3"}
    net.advance(2000)
    assert net.nodes["n3"].term >= 5


def test_prevote_refused_while_leader_is_alive():
    net = Net()
    leader = elect(net)
    net.advance(20)
    n2 = net.nodes["n2"]
    probe = Message(PRE_VOTE, "n3", "n2", leader.term + 1,
                    last_log_index=leader.last_index, last_log_term=leader.term)
    n2.step(probe, net.now)
    resp = take(n2)[0]
    assert resp.kind == PRE_VOTE_RESP and not resp.granted


# ---- §5.3 log replication ------------------------------------------------------------------


def test_leader_appends_noop_and_replicates_batches():
    net = Net()
    leader = elect(net)
    assert leader.storage.log[0] == (1, None), "a new leader appends a no-op of its term"
    for i in range(10):
        leader.propose(f"cmd{i}")
    leader.flush()
    appends = [m for m in net.take(leader) if m.kind == APPEND]
    assert len(appends) == 2 and all(len(m.entries) == 10 for m in appends), \
        "ten proposals travel in one AppendEntries per follower"
    for m in appends:
        net.nodes[m.dst].step(m, net.now)
    net.deliver_all()
    assert leader.commit_index == 11
    committed = net.applied["n1"]
    assert [c[2] for c in committed] == [None] + [f"cmd{i}" for i in range(10)]
    net.advance(60)  # heartbeat carries the commit index
    for nid in ("n2", "n3"):
        assert net.nodes[nid].commit_index == 11


def test_follower_rejects_gap_and_leader_backs_off():
    net = Net()
    leader = elect(net)
    net.cut = {"n3"}
    for i in range(5):
        leader.propose(i)
    leader.flush()
    net.deliver_all()
    n3 = net.nodes["n3"]
    assert n3.last_index == 1
    net.cut = set()
    net.advance(60)
    assert n3.last_index == leader.last_index == 6
    assert n3.storage.log == leader.storage.log


def test_conflicting_uncommitted_entries_are_overwritten():
    follower = RaftNode("n2", IDS, Storage(), random.Random(1))
    follower.storage.current_term = 2
    follower.storage.log = [(1, "a"), (2, "stale1"), (2, "stale2")]
    msg = Message(APPEND, "n1", "n2", 3, prev_index=1, prev_term=1,
                  entries=[(3, "new")], commit=1)
    follower.step(msg, 0.0)
    resp = take(follower)[0]
    assert resp.kind == APPEND_RESP and resp.success and resp.match_index == 2
    assert follower.storage.log == [(1, "a"), (3, "new")]


def test_entries_over_committed_ones_are_refused_before_the_log_is_touched():
    # only possible when acknowledged entries vanished from a majority (a lost disk, a restored
    # backup): the follower refuses, naming both terms, and keeps its log as it was
    from raftctl.core.raft import CommittedEntryConflict

    follower = RaftNode("n2", IDS, Storage(), random.Random(1))
    follower.storage.current_term = 1
    follower.storage.log = [(1, "a"), (1, "b"), (1, "c")]
    follower.step(Message(APPEND, "n1", "n2", 1, prev_index=3, prev_term=1, entries=[], commit=3), 0.0)
    assert follower.commit_index == 3
    take(follower)
    with pytest.raises(CommittedEntryConflict) as caught:
        follower.step(Message(APPEND, "n3", "n2", 2, prev_index=1, prev_term=1, entries=[(2, "x")], commit=2), 0.0)
    err = caught.value
    assert (err.node, err.leader, err.term, err.index, err.held_term, err.sent_term) == ("n2", "n3", 2, 2, 1, 2)
    assert "would overwrite index 2, which n2 holds committed (term 1" in str(err)
    assert follower.storage.log == [(1, "a"), (1, "b"), (1, "c")] and follower.commit_index == 3
    assert isinstance(err, AssertionError)  # the simulator's safety checks still see an assertion


def test_mismatch_hint_skips_whole_term():
    follower = RaftNode("n2", IDS, Storage(), random.Random(1))
    follower.storage.current_term = 3
    follower.storage.log = [(1, "a")] + [(2, f"x{i}") for i in range(10)]
    msg = Message(APPEND, "n1", "n2", 3, prev_index=11, prev_term=3, entries=[], commit=0)
    follower.step(msg, 0.0)
    resp = take(follower)[0]
    assert not resp.success and resp.hint == 2, "back off to the first index of the conflicting term"


def test_duplicated_and_reordered_appends_are_harmless():
    follower = RaftNode("n2", IDS, Storage(), random.Random(1))
    first = Message(APPEND, "n1", "n2", 1, prev_index=0, prev_term=0, entries=[(1, "a"), (1, "b")], commit=0)
    second = Message(APPEND, "n1", "n2", 1, prev_index=2, prev_term=1, entries=[(1, "c")], commit=2)
    follower.step(first, 0.0)
    follower.step(second, 1.0)
    follower.step(first, 2.0)  # an old duplicate arrives late
    assert follower.storage.log == [(1, "a"), (1, "b"), (1, "c")], "a stale append must not truncate"
    assert follower.commit_index == 2


# ---- §5.4.2 committing entries from previous terms -----------------------------------------


def test_leader_does_not_commit_previous_term_entry_by_counting():
    """Figure 8: an entry from an older term is not committed just because a majority holds it."""
    storage = Storage()
    storage.current_term = 3
    storage.log = [(1, "a"), (2, "old")]
    leader = RaftNode("n1", IDS, storage, random.Random(1))
    leader.storage.current_term = 4
    leader.state = LEADER
    leader.next_index = {"n2": 3, "n3": 3}
    leader.match_index = {"n2": 0, "n3": 0}
    leader.last_contact = {}
    leader.commit_index = 1
    # n2 acknowledges index 2 (term 2) — a majority holds it, but it is not of term 4.
    leader.step(Message(APPEND_RESP, "n2", "n1", 4, success=True, match_index=2), 0.0)
    assert leader.commit_index == 1
    # Once an entry of the current term is replicated, everything before it commits too.
    leader.storage.log.append((4, None))
    leader.step(Message(APPEND_RESP, "n2", "n1", 4, success=True, match_index=3), 1.0)
    assert leader.commit_index == 3


def test_new_leader_commits_old_entries_through_its_noop():
    net = Net()
    leader = elect(net)
    leader.propose("x")
    leader.flush()
    net.deliver_all()
    net.cut = {"n1"}
    net.advance(700)
    new = net.leader()
    assert new is not None and new.id != "n1" and new.term > 1
    assert new.commit_index == new.last_index  # its no-op committed, carrying "x" with it
    assert any(e[1] == "x" for e in new.storage.log)


# ---- stepping down -------------------------------------------------------------------------


def test_stale_leader_steps_down_on_higher_term():
    net = Net()
    leader = elect(net)
    leader.step(Message(APPEND_RESP, "n2", "n1", leader.term + 5, success=False), net.now)
    assert leader.state == FOLLOWER and leader.term == 6


def test_check_quorum_makes_cut_off_leader_step_down():
    net = Net()
    leader = elect(net)
    net.cut = {"n2", "n3"}
    net.advance(400, deliver=True)
    assert leader.state != LEADER, "a leader that cannot reach a majority must step down"


# ---- §7 snapshots ---------------------------------------------------------------------------


def test_compaction_and_install_snapshot_for_lagging_follower():
    net = Net()
    leader = elect(net)
    net.cut = {"n3"}
    for i in range(50):
        leader.propose(i)
    leader.flush()
    net.deliver_all()
    net.collect()
    leader.compact(40, "STATE@40")
    assert leader.storage.snap_index == 40 and len(leader.storage.log) == 11
    assert leader.term_at(30) is None and leader.term_at(40) == 1
    net.cut = set()
    n3 = net.nodes["n3"]
    # Heartbeats until the leader notices n3 is behind the compacted prefix.
    sent = []
    for _ in range(200):
        net.now += 1
        for node in net.nodes.values():
            node.tick(net.now)
        net.collect()
        sent.extend(m.kind for m in net.pending)
        batch, net.pending = net.pending, []
        for m in batch:
            net.nodes[m.dst].step(m, net.now)
    assert SNAPSHOT in sent
    assert n3.storage.snap_index == 40 and net.snapshots["n3"] == "STATE@40"
    assert n3.last_index == leader.last_index
    assert n3.last_applied >= 40


def _fifty_replicated():
    """A cluster whose leader n1 replicated 50 orders (indexes 2-51) to every follower."""
    net = Net()
    leader = elect(net)
    for i in range(50):
        leader.propose(i)
    leader.flush()
    net.deliver_all()
    return net, leader


@pytest.mark.parametrize("compacted", [True, False])
def test_a_follower_that_lost_its_log_catches_up_on_an_idle_cluster(compacted):
    """A follower restarted on an empty data dir rejects the leader's appends from its old match
    index on; the leader must believe it (its rejection carries its last index, 0) and resend from
    the start, a snapshot if compacted, though no new entry comes to prompt it."""
    net, leader = _fifty_replicated()
    net.collect()
    if compacted:
        leader.compact(40, "STATE@40")
    assert leader.match_index["n3"] == leader.last_index == 51
    # n3 comes back with nothing: a new node on an empty storage, the same id
    net.nodes["n3"] = n3 = RaftNode("n3", IDS, Storage(), random.Random(9), RaftConfig())
    net.applied["n3"] = []
    net.advance(300)  # heartbeats only: nothing is proposed
    assert n3.last_index == leader.last_index and n3.commit_index == leader.commit_index == 51
    assert leader.match_index["n3"] == 51
    if compacted:
        assert n3.storage.snap_index == 40 and net.snapshots["n3"] == "STATE@40"
    else:
        assert [cmd for _, _, cmd in net.applied["n3"] if cmd is not None] == list(range(50))


@pytest.mark.parametrize("compacted", [True, False])
def test_nodes_rejoining_on_empty_data_dirs_elect_nobody_until_a_leader_brings_them_up(compacted):
    """Two of three nodes wiped (n2, n3) and the leader away: empty and voting, the two elected
    each other and acknowledged orders that the old leader's snapshot then replaced. Rejoining,
    they do not campaign and vote only for a candidate that holds entries: no leader until the
    old one is back (it may have to campaign again: it gets their votes); once it has brought
    them up to its commit index they are voters like any other."""
    net, leader = _fifty_replicated()
    net.collect()
    if compacted:
        leader.compact(40, "STATE@40")
    net.cut.add("n1")  # the leader is paused
    for nid, seed in (("n2", 11), ("n3", 12)):
        net.nodes[nid] = node = RaftNode(nid, IDS, Storage(), random.Random(seed), RaftConfig())
        node.rejoining = True
        net.applied[nid] = []
    net.advance(3000)  # many election timeouts
    assert [n.state for n in (net.nodes["n2"], net.nodes["n3"])] == [FOLLOWER, FOLLOWER]
    assert net.nodes["n2"].term == net.nodes["n3"].term == 0 and net.nodes["n2"].elections_started == 0
    # a vote asked of a rejoining node by another empty one is refused, in its term too
    n2 = net.nodes["n2"]
    n2.step(Message(VOTE, "n3", "n2", 1, last_log_index=0, last_log_term=0), net.now)
    assert [m.granted for m in take(n2) if m.kind == VOTE_RESP] == [False] and n2.storage.voted_for is None
    n2.step(Message(PRE_VOTE, "n3", "n2", 2, last_log_index=0, last_log_term=0), net.now)
    assert [m.granted for m in take(n2) if m.kind == PRE_VOTE_RESP] == [False]
    net.cut.clear()  # the old leader is back: it brings them up, then they are voters again
    net.advance(1000)
    assert net.leader() is leader
    for nid in ("n2", "n3"):
        node = net.nodes[nid]
        assert node.commit_index == leader.commit_index >= 51 and node.rejoining is False
    if compacted:
        assert net.snapshots["n2"] == "STATE@40"
    # a voter again: with the leader gone for good, the two elect one of themselves
    net.cut.add("n1")
    net.advance(3000)
    assert net.leader() is not None and net.leader().id in ("n2", "n3")


def test_a_rejection_overtaken_by_a_later_success_does_not_lower_the_match():
    """The simulated network reorders: a gap rejection (the follower's last index 4) can arrive after
    the success that followed it (match 51). Only a resend refused again shows a lost log."""
    net, leader = _fifty_replicated()
    assert leader.match_index["n2"] == 51
    late = Message(APPEND_RESP, "n2", "n1", leader.term, success=False, match_index=4, hint=5,
                   epoch=leader.append_epoch["n2"])
    leader.step(late, net.now)
    assert leader.match_index["n2"] == 51
    net.deliver_all()  # the resend from the match is taken: nothing was lost
    assert leader.match_index["n2"] == 51 and net.nodes["n2"].last_index == 51


def test_compact_past_last_applied_is_refused():
    net = Net()
    leader = elect(net)
    leader.propose("a")
    with pytest.raises(ValueError):
        leader.compact(2, "x")


def test_config_validation():
    with pytest.raises(ValueError):
        RaftConfig(heartbeat_ms=400)
    with pytest.raises(ValueError):
        RaftConfig(election_timeout_min_ms=300, election_timeout_max_ms=200)

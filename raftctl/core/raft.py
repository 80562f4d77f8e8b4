"""A Raft node as a pure state machine.

No sockets, no wall clock, no global random: the host passes the current time (milliseconds)
into :meth:`RaftNode.tick` and :meth:`RaftNode.step`, and after each call asks
:meth:`RaftNode.ready` for everything the node wants done, as one :class:`Ready` value (in the
manner of etcd-io/raft's ``Ready``/``Advance``). Randomness (election timeouts) comes from a
``random.Random`` handed in by the host.

The host handles each Ready by the persist-before-send rule of ``raft_messages.py``.

Implements leader election with randomized timeouts and PreVote (§9.6 of Ongaro's thesis), CheckQuorum,
log replication with batching and pipelining, conflict back-off by term, the §5.4.2 commit rule (only
entries of the leader's own term are committed by counting), a no-op entry at the start of each term,
snapshots with log compaction and InstallSnapshot; followers keep appends that overtake a gap, and
leaders drop rejections that predate their last rewind and believe a follower that lost its log. A
node that lost its state (``rejoining``: a node on an empty data dir that voted before) does not
campaign, and votes only for a candidate that holds entries, as far as the highest commit index a
leader told it, until it holds that itself: a majority of empty nodes must not elect a leader
without the entries the cluster acknowledged (it forgot its votes: see docs/CONTRACTS.md).
"""

from __future__ import annotations

import random
from typing import Any

from raftctl.core.measures import quorum_size

__all__ = ["APPEND", "APPEND_RESP", "CANDIDATE", "FOLLOWER", "KIND_NAMES", "LEADER", "PRE_CANDIDATE", "PRE_VOTE",
           "PRE_VOTE_RESP", "SNAPSHOT", "TIMEOUT_NOW", "VOTE", "VOTE_RESP", "HardState", "Message", "RaftConfig",
           "RaftNode", "Ready", "SnapshotData", "Storage", "CommittedEntryConflict"]
from raftctl.core.raft_messages import (  # re-exported: the raft module's public names
    APPEND, APPEND_RESP, CANDIDATE, FOLLOWER, KIND_NAMES, LEADER, PRE_CANDIDATE, PRE_VOTE, PRE_VOTE_RESP,
    SNAPSHOT, TIMEOUT_NOW, VOTE, VOTE_RESP, CommittedEntryConflict, HardState, Message, RaftConfig, Ready,
    SnapshotData, Storage,
)

_NOTHING: list[Any] = []  # shared empty list for a Ready's committed entries: hosts only read it
STASH_LIMIT = 256  # out-of-order appends a follower keeps per leader
CATCH_UP_BURST = 4  # AppendEntries one flush may send a follower that is behind


class RaftNode:
    """One Raft participant. Drive it with ``tick(now_ms)`` and ``step(msg, now_ms)``."""

    def __init__(self, node_id: str, peers: list[str], storage: Storage, rng: random.Random,
                 config: RaftConfig | None = None, now_ms: float = 0.0, group: int = 0) -> None:
        self.id = node_id
        self.group = group
        self.peers = [p for p in peers if p != node_id]
        self.storage = storage
        self.rng = rng
        self.config = config or RaftConfig()
        self.quorum = quorum_size(len(self.peers) + 1)
        self.now = now_ms
        self.state = FOLLOWER
        self.leader_id: str | None = None
        self.commit_index = storage.snap_index
        self.last_applied = storage.snap_index
        self.msgs: list[Message] = []  # to send once the next Ready is durable
        self._received_snapshot: SnapshotData | None = None
        # lowest log index not yet handed to the host to persist (always <= last_index + 1);
        # the durable hard state
        self._unstable_from = storage.snap_index + len(storage.log) + 1
        self._hs_term = storage.current_term
        self._hs_vote = storage.voted_for
        self._hs_commit = storage.snap_index
        self.votes: set[str] = set()
        self.next_index: dict[str, int] = {}
        self.append_epoch: dict[str, int] = {}
        self.match_index: dict[str, int] = {}
        self.last_contact: dict[str, float] = {}
        self.recent_active: set[str] = set()
        self.last_leader_contact = -1e18
        self.heartbeat_due = 0.0
        self.quorum_check_due = 0.0
        self.election_deadline = 0.0
        self.elections_started = 0
        self.transfer_target: str | None = None
        self.transfer_deadline = 0.0
        # appends that arrived ahead of a gap (reordered), by prev_index, kept until the gap fills
        self.stashed: dict[int, Message] = {}
        self.rejoining = False  # set by the host: no campaign, votes only for a full log (module docstring)
        self.rejoin_floor = 1  # the log a candidate must reach for a rejoining node's vote
        self._reset_election_timer()

    # ---- log helpers -------------------------------------------------------------------

    @property
    def term(self) -> int:
        return self.storage.current_term

    @property
    def last_index(self) -> int:
        return self.storage.snap_index + len(self.storage.log)

    def term_at(self, index: int) -> int | None:
        """Term of the entry at ``index``; None when compacted away or beyond the log."""
        st = self.storage
        if index == st.snap_index:
            return st.snap_term
        if index < st.snap_index or index > st.snap_index + len(st.log):
            return None
        return st.log[index - st.snap_index - 1][0]

    def last_term(self) -> int:
        st = self.storage
        return st.log[-1][0] if st.log else st.snap_term

    def entries_from(self, start: int, limit: int) -> list[Any]:
        off = start - self.storage.snap_index - 1
        return self.storage.log[off:off + limit]

    # ---- timers ------------------------------------------------------------------------

    def _reset_election_timer(self) -> None:
        cfg = self.config
        self.election_deadline = self.now + self.rng.uniform(cfg.election_timeout_min_ms, cfg.election_timeout_max_ms)

    def next_deadline(self) -> float:
        """The simulated time (ms) at which ``tick`` next has something to do."""
        if self.state == LEADER:
            return min(self.heartbeat_due, self.quorum_check_due) if self.config.check_quorum \
                else self.heartbeat_due
        return self.election_deadline

    def tick(self, now_ms: float) -> None:
        """Advance the clock to ``now_ms`` and fire any expired timer."""
        self.now = now_ms
        if self.state == LEADER:
            if self.config.check_quorum and now_ms >= self.quorum_check_due:
                active = len(self.recent_active) + 1
                self.recent_active = set()
                self.quorum_check_due = now_ms + self.config.election_timeout_min_ms
                if active < self.quorum:
                    # Cut off from the majority: stop acting as leader so clients go elsewhere.
                    self._become_follower(self.term, None)
                    return
            if self.transfer_target is not None and now_ms >= self.transfer_deadline:
                self.transfer_target = None
            if now_ms >= self.heartbeat_due:
                self._broadcast_append(heartbeat=True)
        elif now_ms >= self.election_deadline:
            if self.rejoining:
                self._reset_election_timer()
            elif self.config.prevote:
                self._start_prevote()
            else:
                self._start_election()

    # ---- state transitions -------------------------------------------------------------

    def _become_follower(self, term: int, leader_id: str | None) -> None:
        st = self.storage
        if term > st.current_term:
            st.current_term = term
            st.voted_for = None
        self.state = FOLLOWER
        self.leader_id = leader_id
        self.votes = set()
        self.stashed = {}
        self._reset_election_timer()

    def _start_prevote(self) -> None:
        self.state = PRE_CANDIDATE
        self.leader_id = None
        self.votes = {self.id}
        self._reset_election_timer()
        if len(self.votes) >= self.quorum:
            self._start_election()
            return
        proposed = self.term + 1
        last_index, last_term = self.last_index, self.last_term()
        for peer in self.peers:
            self.msgs.append(Message(PRE_VOTE, self.id, peer, proposed,
                                       last_log_index=last_index, last_log_term=last_term))

    def _start_election(self, force: bool = False) -> None:
        st = self.storage
        st.current_term += 1
        st.voted_for = self.id
        self.state = CANDIDATE
        self.leader_id = None
        self.votes = {self.id}
        self.elections_started += 1
        self._reset_election_timer()
        if len(self.votes) >= self.quorum:
            self._become_leader()
            return
        last_index, last_term = self.last_index, self.last_term()
        for peer in self.peers:
            self.msgs.append(Message(VOTE, self.id, peer, st.current_term, force=force,
                                       last_log_index=last_index, last_log_term=last_term))

    def _become_leader(self) -> None:
        self.state = LEADER
        self.leader_id = self.id
        self.votes = set()
        nxt = self.last_index + 1
        self.next_index = {p: nxt for p in self.peers}
        self.append_epoch = {p: 0 for p in self.peers}
        self.doubted: dict[str, int] = {}  # per peer: the epoch of a resend checking for a lost log
        self.match_index = {p: 0 for p in self.peers}
        self.last_contact = {p: self.now for p in self.peers}
        self.recent_active = set()
        self.quorum_check_due = self.now + self.config.election_timeout_min_ms
        # A no-op of the new term lets earlier-term entries commit (§5.4.2, §8).
        self.storage.log.append((self.term, None))
        self._maybe_commit()
        self._broadcast_append(heartbeat=False)

    # ---- client interface --------------------------------------------------------------

    def propose(self, command: Any) -> int | None:
        """Append ``command`` to the leader's log; returns its index, or None if not leader.

        Nothing is sent here: the host calls :meth:`flush` once per batch, so many
        proposals travel in one AppendEntries.
        """
        if self.state != LEADER or self.transfer_target is not None:
            return None  # during a leadership transfer the log must stop growing
        # _unstable_from <= last_index + 1 always holds, so an append needs no bookkeeping
        self.storage.log.append((self.storage.current_term, command))
        if not self.peers:
            self._maybe_commit()
        return self.last_index

    def transfer_leadership(self, target: str) -> bool:
        """Hand leadership to ``target`` once its log is up to date; False if not possible now."""
        if self.state != LEADER or target not in self.next_index or self.transfer_target is not None:
            return False
        self.transfer_target = target
        self.transfer_deadline = self.now + self.config.election_timeout_min_ms
        if self.match_index[target] == self.last_index:
            self._send_timeout_now(target)
        else:
            self._send_append(target)
        return True

    def _send_timeout_now(self, peer: str) -> None:
        self.transfer_target = None
        self.msgs.append(Message(TIMEOUT_NOW, self.id, peer, self.term))

    def flush(self) -> None:
        """Send new entries to every follower that is not yet known to have them."""
        if self.state == LEADER:
            self._broadcast_append(heartbeat=False)

    # ---- outgoing replication ----------------------------------------------------------

    def _broadcast_append(self, heartbeat: bool) -> None:
        # Heartbeats fall on a shared grid of the heartbeat period, so the heartbeats of many
        # Raft groups led by one node leave together and the host can coalesce them.
        hb = self.config.heartbeat_ms
        self.heartbeat_due = (self.now // hb + 1) * hb
        last = self.last_index
        next_index = self.next_index
        for peer in self.peers:
            if heartbeat or next_index[peer] <= last:
                self._send_append(peer)
                # a follower behind by more than one message's worth gets a few more at once
                # (only when max_entries_per_append is small), so it can catch up
                burst = 1
                while next_index[peer] <= last and burst < CATCH_UP_BURST and next_index[peer] > self.storage.snap_index:
                    self._send_append(peer)
                    burst += 1

    def _send_append(self, peer: str) -> None:
        st = self.storage
        nxt = self.next_index[peer]
        if nxt <= st.snap_index:
            self.msgs.append(Message(SNAPSHOT, self.id, peer, st.current_term,
                                       snap_index=st.snap_index, snap_term=st.snap_term,
                                       snap_data=st.snap_data, commit=self.commit_index))
            return
        prev = nxt - 1
        entries = self.entries_from(nxt, self.config.max_entries_per_append)
        self.msgs.append(Message(APPEND, self.id, peer, st.current_term,
                                   prev_index=prev, prev_term=self.term_at(prev),
                                   entries=entries, commit=self.commit_index,
                                   epoch=self.append_epoch[peer]))
        if entries:
            # Pipeline: assume delivery; a rejection moves next_index back.
            self.next_index[peer] = prev + len(entries) + 1

    # ---- incoming ----------------------------------------------------------------------

    def step(self, msg: Message, now_ms: float) -> None:
        """Handle one message at simulated time ``now_ms``."""
        self.now = now_ms
        st = self.storage
        kind = msg.kind
        if msg.term > st.current_term:
            if kind == PRE_VOTE or (kind == PRE_VOTE_RESP and msg.granted):
                pass  # PreVote terms are proposals; they change nothing.
            elif kind in (VOTE, PRE_VOTE_RESP) and not msg.force and self._in_leader_lease():
                # A disruptive candidate while we hear from a live leader: ignore (CheckQuorum lease).
                if kind == VOTE:
                    return
            else:
                leader = msg.src if kind in (APPEND, SNAPSHOT) else None
                self._become_follower(msg.term, leader)
        elif msg.term < st.current_term:
            if kind in (APPEND, SNAPSHOT):
                # Tell a stale leader about the newer term.
                self.msgs.append(Message(APPEND_RESP, self.id, msg.src, st.current_term,
                                           success=False, hint=0))
            elif kind == PRE_VOTE:
                self.msgs.append(Message(PRE_VOTE_RESP, self.id, msg.src, st.current_term,
                                           granted=False))
            return

        if kind == APPEND:
            self._on_append(msg)
            if self.stashed:
                self._drain_stash()
        elif kind == APPEND_RESP:
            self._on_append_resp(msg)
        elif kind == VOTE:
            self._on_vote(msg)
        elif kind == VOTE_RESP:
            self._on_vote_resp(msg)
        elif kind == PRE_VOTE:
            self._on_prevote(msg)
        elif kind == PRE_VOTE_RESP:
            self._on_prevote_resp(msg)
        elif kind == SNAPSHOT:
            self._on_snapshot(msg)
        elif kind == TIMEOUT_NOW:
            if self.state == FOLLOWER and msg.src == self.leader_id and not self.rejoining:
                # Leadership transfer (thesis §3.10): campaign at once, past the lease.
                self._start_election(force=True)

    def _in_leader_lease(self) -> bool:
        return (
            self.config.check_quorum
            and self.leader_id is not None
            and self.now - self.last_leader_contact < self.config.election_timeout_min_ms
        )

    def _log_up_to_date(self, last_log_index: int, last_log_term: int) -> bool:
        my_term = self.last_term()
        return last_log_term > my_term or (last_log_term == my_term and last_log_index >= self.last_index)

    def _on_prevote(self, msg: Message) -> None:
        grant = (
            msg.term > self.term and (not self.rejoining or msg.last_log_index >= self.rejoin_floor)
            and not self._in_leader_lease()
            and self.state != LEADER
            and self._log_up_to_date(msg.last_log_index, msg.last_log_term)
        )
        self.msgs.append(Message(PRE_VOTE_RESP, self.id, msg.src,
                                   msg.term if grant else self.term, granted=grant))

    def _on_prevote_resp(self, msg: Message) -> None:
        if self.state != PRE_CANDIDATE or not msg.granted or msg.term != self.term + 1:
            return
        self.votes.add(msg.src)
        if len(self.votes) >= self.quorum:
            self._start_election()

    def _on_vote(self, msg: Message) -> None:
        st = self.storage
        grant = (
            msg.term == st.current_term and (not self.rejoining or msg.last_log_index >= self.rejoin_floor)
            and st.voted_for in (None, msg.src)
            and self._log_up_to_date(msg.last_log_index, msg.last_log_term)
        )
        if grant:
            st.voted_for = msg.src
            self._reset_election_timer()
        self.msgs.append(Message(VOTE_RESP, self.id, msg.src, st.current_term, granted=grant))

    def _on_vote_resp(self, msg: Message) -> None:
        if self.state != CANDIDATE or msg.term != self.term or not msg.granted:
            return
        self.votes.add(msg.src)
        if len(self.votes) >= self.quorum:
            self._become_leader()

    def _heard_from_leader(self, leader: str) -> None:
        if self.state != FOLLOWER:
            self.state = FOLLOWER
            self.votes = set()
        self.leader_id = leader
        self.last_leader_contact = self.now
        self._reset_election_timer()

    def _on_append(self, msg: Message) -> None:
        self._heard_from_leader(msg.src)
        st = self.storage
        prev, prev_term, entries = msg.prev_index, msg.prev_term, msg.entries
        if prev < st.snap_index:  # the prefix is already in our snapshot (hence committed): skip that part
            skip = st.snap_index - prev
            if skip >= len(entries):
                self._reply_append(msg.src, True, st.snap_index if not entries
                                   else max(st.snap_index, prev + len(entries)))
                self._advance_commit(msg.commit, min(st.snap_index, prev + len(entries)))
                return
            entries = entries[skip:]
            prev, prev_term = st.snap_index, st.snap_term
        last = self.last_index
        if prev > last:
            # A gap: earlier entries are late or lost. Say so (the leader rewinds if they are
            # lost), and keep this append to use at once if they are only late (reordered).
            if msg.entries and len(self.stashed) < STASH_LIMIT:
                self.stashed[prev] = msg
            self._reply_append(msg.src, False, last, hint=last + 1, epoch=msg.epoch)
            return
        local_term = self.term_at(prev)
        if local_term != prev_term:
            if prev <= self.commit_index and prev_term is not None:  # the leader lacks our committed entry
                raise CommittedEntryConflict(self.id, msg.src, msg.term, prev, local_term, prev_term)
            # Back off a whole term at a time: the first index of the conflicting term.
            hint = prev
            while hint - 1 > max(self.commit_index, st.snap_index) and self.term_at(hint - 1) == local_term:
                hint -= 1
            self._reply_append(msg.src, False, last, hint=max(hint, self.commit_index + 1), epoch=msg.epoch)
            return
        if entries:
            base = st.snap_index + 1  # index of log[0]
            idx = prev + 1
            n = len(entries)
            i = 0
            log = st.log
            # Skip entries we already hold with the same term; truncate at the first conflict.
            while i < n and idx + i <= last:
                if log[idx + i - base][0] != entries[i][0]:
                    if idx + i <= self.commit_index:
                        raise CommittedEntryConflict(self.id, msg.src, msg.term, idx + i,
                                                     log[idx + i - base][0], entries[i][0])
                    del log[idx + i - base:]
                    break
                i += 1
            if i < n:
                if idx + i < self._unstable_from:
                    self._unstable_from = idx + i
                log.extend(entries[i:])
        match = prev + len(entries)
        self._advance_commit(msg.commit, match)
        self._reply_append(msg.src, True, match)

    def _drain_stash(self) -> None:
        """Use stashed appends that now follow the log; drop those the log has passed."""
        stashed = self.stashed
        while stashed:
            last = self.last_index
            msg = stashed.pop(last, None)
            if msg is None:
                for prev in [p for p in stashed if p < last]:
                    del stashed[prev]
                return
            if msg.term != self.term or msg.src != self.leader_id or self.state != FOLLOWER:
                stashed.clear()  # from an earlier leader: useless now
                return
            self._on_append(msg)
            if self.last_index == last:
                return  # nothing appended (a conflict): stop here

    def _advance_commit(self, leader_commit: int, match: int) -> None:
        new_commit = min(leader_commit, match)
        if new_commit > self.commit_index:
            self.commit_index = new_commit
        if self.rejoining:  # votes again once it holds all a leader has committed
            self.rejoin_floor, self.rejoining = max(self.rejoin_floor, leader_commit), match < leader_commit

    def _reply_append(self, leader: str, success: bool, match: int, hint: int = 0, epoch: int = 0) -> None:
        self.msgs.append(Message(APPEND_RESP, self.id, leader, self.term,
                                   success=success, match_index=match, hint=hint, epoch=epoch))

    def _on_append_resp(self, msg: Message) -> None:
        if self.state != LEADER or msg.term != self.term:
            return
        peer = msg.src
        if peer not in self.next_index:
            return
        self.recent_active.add(peer)
        self.last_contact[peer] = self.now
        if msg.success:
            if msg.match_index > self.match_index[peer]:
                self.match_index[peer] = msg.match_index
                self._maybe_commit()
            if self.next_index[peer] <= msg.match_index:
                self.next_index[peer] = msg.match_index + 1
            if self.next_index[peer] <= self.last_index and self.match_index[peer] + 1 == self.next_index[peer]:
                self._send_append(peer)  # more to send (batch limit hit)
            if peer == self.transfer_target and self.match_index[peer] == self.last_index:
                self._send_timeout_now(peer)
        elif msg.hint and msg.epoch == self.append_epoch[peer]:
            # Rejected: rewind to the follower's hint, never past our own log nor below what it
            # holds; one of an append sent before the last rewind (an older epoch) is stale. Its last
            # index below its match: overtaken by a later success, or its log lost (restarted empty),
            # if the resend from the match is refused too; then a snapshot may be due.
            if msg.match_index < self.match_index[peer]:
                if self.doubted.get(peer) == msg.epoch:
                    self.match_index[peer] = msg.match_index
                self.doubted[peer] = msg.epoch + 1
            self.append_epoch[peer] += 1
            self.next_index[peer] = max(1, self.match_index[peer] + 1, min(msg.hint, self.last_index + 1))
            self._send_append(peer)

    def _maybe_commit(self) -> None:
        matches = sorted([self.last_index, *self.match_index.values()], reverse=True)
        candidate = matches[self.quorum - 1]
        if candidate > self.commit_index and self.term_at(candidate) == self.term:
            self.commit_index = candidate

    def _on_snapshot(self, msg: Message) -> None:
        self._heard_from_leader(msg.src)
        st = self.storage
        if msg.snap_index <= self.commit_index:
            self._reply_snapshot(msg.src, self.commit_index)
            return
        if self.term_at(msg.snap_index) == msg.snap_term:
            # We hold the snapshot's last entry: keep the suffix after it.
            del st.log[:msg.snap_index - st.snap_index]
        else:
            st.log = []
            self._unstable_from = msg.snap_index + 1  # nothing after the snapshot to persist
        st.snap_index, st.snap_term, st.snap_data = msg.snap_index, msg.snap_term, msg.snap_data
        self.commit_index = max(self.commit_index, msg.snap_index)
        self.last_applied = msg.snap_index
        if self._unstable_from <= msg.snap_index:
            self._unstable_from = msg.snap_index + 1
        self._received_snapshot = SnapshotData(msg.snap_index, msg.snap_term, msg.snap_data)
        self._reply_snapshot(msg.src, msg.snap_index)

    def _reply_snapshot(self, leader: str, match: int) -> None:
        # Answered as a successful append: the leader only needs the new match index.
        self.msgs.append(Message(APPEND_RESP, self.id, leader, self.term, success=True, match_index=match))

    # ---- the host's interface: Ready / advance ---------------------------------------

    def ready(self) -> Ready | None:
        """Everything the host must do now, or None when there is nothing.

        Handle it as the module docstring says, then call :meth:`advance` with it before the
        next ``tick`` or ``step``.
        """
        st = self.storage
        snap_index = st.snap_index
        log = st.log
        last = snap_index + len(log)
        commit = self.commit_index
        applied = self.last_applied
        unstable = self._unstable_from
        msgs = self.msgs
        changed = (st.current_term != self._hs_term or st.voted_for != self._hs_vote
                   or commit != self._hs_commit)
        if (not changed and not msgs and commit <= applied and unstable > last
                and self._received_snapshot is None):
            return None
        if msgs:
            self.msgs = []
            if self.group:
                for msg in msgs:
                    msg.group = self.group
        base = snap_index + 1  # index of log[0]
        return Ready(
            changed, st.current_term, st.voted_for, commit,
            unstable,
            log,
            base,
            self._received_snapshot,
            msgs,
            applied + 1,
            log[applied + 1 - base:commit - base + 1] if commit > applied else _NOTHING,
            last,
        )

    def advance(self, rd: Ready) -> None:
        """Tell the node the host carried out ``rd``: its state is durable and applied."""
        if rd.hs_changed:
            self._hs_term, self._hs_vote, self._hs_commit = rd.term, rd.voted_for, rd.commit
        if rd._last_index + 1 > self._unstable_from:
            self._unstable_from = rd._last_index + 1
        if rd.snapshot is not None and rd.snapshot is self._received_snapshot:
            self._received_snapshot = None
        if rd.committed:
            applied = rd.committed_from + len(rd.committed) - 1
            if applied > self.last_applied:
                self.last_applied = applied

    def compact(self, upto_index: int, snapshot_data: Any) -> None:
        """Replace the log prefix up to ``upto_index`` (already applied) with a snapshot."""
        st = self.storage
        if upto_index <= st.snap_index:
            return
        if upto_index > self.last_applied:
            raise ValueError("cannot compact past last_applied")
        term = self.term_at(upto_index)
        assert term is not None  # upto_index is within the log: above snap_index, at most last_applied
        del st.log[:upto_index - st.snap_index]
        st.snap_index, st.snap_term, st.snap_data = upto_index, term, snapshot_data

    @property
    def reported_state(self) -> str:
        """State as the monitor spells it (a pre-candidate is a CANDIDATE to outsiders)."""
        return CANDIDATE if self.state == PRE_CANDIDATE else self.state

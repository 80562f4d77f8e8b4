"""What a Raft node exchanges with its host and its peers: messages, storage, the Ready value.

The constants and data types of ``raftctl/core/raft.py`` (which re-exports them): node states,
message kinds, :class:`Message`, the in-memory :class:`Storage`, :class:`HardState`,
:class:`SnapshotData`, :class:`Ready` and :class:`RaftConfig`.

The host handles a Ready in this order, and the order is the persist-before-send rule:

1. make ``hard_state`` (term, vote, commit), ``entries`` (from ``entries_from`` on; anything the
   log held at or after that index is replaced) and ``snapshot`` durable;
2. only then send ``messages`` — a vote granted, an append acknowledged or a commit index
   announced must never reach a peer before the state it promises survives a crash;
3. load ``snapshot`` into the state machine if there is one, then apply ``committed``
   (entries from ``committed_from`` on), which are never ahead of what step 1 made durable;
4. call :meth:`RaftNode.advance` with the Ready (any time after step 2; the node host calls it
   before applying, so the applied index the checker reads is already the new one).

The in-memory :class:`Storage` is the node's working copy of its durable state; a host with a
disk log writes the Ready's parts to it in step 1 (see ``raftctl/core/node.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from raftctl.core.sample import NodeState

# Node states.
FOLLOWER = NodeState.FOLLOWER.value
CANDIDATE = NodeState.CANDIDATE.value
PRE_CANDIDATE = "PRE_CANDIDATE"
LEADER = NodeState.LEADER.value

# Message kinds. Small ints: cheap to compare and to fold into the trace digest.
PRE_VOTE = 1
PRE_VOTE_RESP = 2
VOTE = 3
VOTE_RESP = 4
APPEND = 5
APPEND_RESP = 6
SNAPSHOT = 7
TIMEOUT_NOW = 9

KIND_NAMES = {
    PRE_VOTE: "PreVote",
    PRE_VOTE_RESP: "PreVoteResp",
    VOTE: "RequestVote",
    VOTE_RESP: "RequestVoteResp",
    APPEND: "AppendEntries",
    APPEND_RESP: "AppendEntriesResp",
    SNAPSHOT: "InstallSnapshot",
    TIMEOUT_NOW: "TimeoutNow",
}


class CommittedEntryConflict(AssertionError):
    """A leader sent entries that would replace one this node holds committed. Raft never does
    that unless acknowledged entries vanished from a majority's logs (a disk that lost fsynced
    writes, ``--no-fsync`` and a power loss, a restored backup, an edited log): the node refuses
    them before touching its log, which may hold the only copy of what was committed."""

    def __init__(self, node: str, leader: str, term: int, index: int, held_term: int | None,
                 sent_term: int | None) -> None:
        self.node, self.leader, self.term, self.index = node, leader, term, index
        self.held_term, self.sent_term = held_term, sent_term
        super().__init__(
            f"{node}: leader {leader} (term {term}) sent entries that would overwrite index {index}, "
            f"which {node} holds committed (term {held_term}; the leader's is term {sent_term}): committed "
            "entries are gone from a majority of the logs (a disk that lost acknowledged writes, "
            "--no-fsync and a power loss, a restored backup or an edited log); "
            f"{node} refuses them and keeps its log as it is")


@dataclass
class RaftConfig:
    """Timing and batching knobs, in simulated milliseconds."""

    election_timeout_min_ms: float = 150.0
    election_timeout_max_ms: float = 300.0
    heartbeat_ms: float = 50.0
    prevote: bool = True
    check_quorum: bool = True
    max_entries_per_append: int = 4096

    def __post_init__(self) -> None:
        if not 0 < self.heartbeat_ms < self.election_timeout_min_ms:
            raise ValueError("heartbeat_ms must be positive and below election_timeout_min_ms")
        if self.election_timeout_max_ms <= self.election_timeout_min_ms:
            raise ValueError("election_timeout_max_ms must exceed election_timeout_min_ms")
        if self.max_entries_per_append < 1:
            raise ValueError("max_entries_per_append must be >= 1")


class Message:
    """One Raft RPC or response. Fields not used by a kind keep their defaults."""

    __slots__ = (
        "kind", "src", "dst", "term", "group", "force",
        "last_log_index", "last_log_term", "granted",
        "prev_index", "prev_term", "entries", "commit",
        "success", "match_index", "hint",
        "snap_index", "snap_term", "snap_data", "epoch",
    )

    def __init__(self, kind: int, src: str, dst: str, term: int, *, group: int = 0, force: bool = False,
                 last_log_index: int = 0, last_log_term: int = 0, granted: bool = False,
                 prev_index: int = 0, prev_term: int | None = 0, entries: list[Any] | None = None,
                 commit: int = 0, success: bool = False, match_index: int = 0, hint: int = 0,
                 snap_index: int = 0, snap_term: int = 0, snap_data: Any = None, epoch: int = 0) -> None:
        # explicit keywords, stored directly: messages are built on the hottest path
        self.kind = kind
        self.src = src
        self.dst = dst
        self.term = term
        self.group = group
        self.force = force
        self.last_log_index = last_log_index
        self.last_log_term = last_log_term
        self.granted = granted
        self.prev_index = prev_index
        self.prev_term = prev_term
        self.entries: list[Any] = [] if entries is None else entries
        self.commit = commit
        self.success = success
        self.match_index = match_index
        self.hint = hint
        self.snap_index = snap_index
        self.snap_term = snap_term
        self.snap_data = snap_data
        # AppendEntries: the leader's rewind count for this follower, echoed in the response, so
        # a rejection of an append sent before the last rewind is known to be stale
        self.epoch = epoch

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<{KIND_NAMES.get(self.kind, self.kind)} {self.src}->{self.dst} t{self.term}>"


class Storage:
    """What survives a crash: current term, vote, the log and the latest snapshot.

    ``log[i]`` is the entry at index ``snap_index + 1 + i``; an entry is ``(term, command)``.
    """

    __slots__ = ("current_term", "voted_for", "log", "snap_index", "snap_term", "snap_data")

    def __init__(self) -> None:
        self.current_term = 0
        self.voted_for: str | None = None
        self.log: list[tuple[int, Any]] = []
        self.snap_index = 0
        self.snap_term = 0
        self.snap_data: Any = None

    @property
    def last_index(self) -> int:
        return self.snap_index + len(self.log)


class HardState:
    """The durable scalars: current term, vote of that term, and the commit index."""

    __slots__ = ("term", "voted_for", "commit")

    def __init__(self, term: int, voted_for: str | None, commit: int) -> None:
        self.term = term
        self.voted_for = voted_for
        self.commit = commit

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, HardState) and self.term == other.term
                and self.voted_for == other.voted_for and self.commit == other.commit)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"HardState(term={self.term}, voted_for={self.voted_for!r}, commit={self.commit})"


class SnapshotData:
    """A snapshot received from the leader: the state machine up to ``index`` (of ``term``)."""

    __slots__ = ("index", "term", "data")

    def __init__(self, index: int, term: int, data: Any) -> None:
        self.index = index
        self.term = term
        self.data = data


class Ready:
    """Everything one node asks its host to do, in the order of the module docstring.

    ``hard_state`` is None when unchanged since the last Ready; ``entries`` are the log entries
    ``(term, command)`` from index ``entries_from`` on that are not yet durable (empty when none),
    read from the log when asked (so a host that keeps no disk log pays nothing: read them before
    applying, as the rule's order has it); ``committed`` are entries ``(term, command)`` from
    ``committed_from`` on, to apply.
    """

    __slots__ = ("hs_changed", "term", "voted_for", "commit", "entries_from", "_log", "_base", "snapshot",
                 "messages", "committed_from", "committed", "_last_index")

    def __init__(self, hs_changed: bool, term: int, voted_for: str | None, commit: int, entries_from: int,
                 log: list[tuple[int, Any]], log_base: int, snapshot: SnapshotData | None,
                 messages: list["Message"], committed_from: int, committed: list[tuple[int, Any]],
                 last_index: int) -> None:
        # the hard state travels as plain fields (no object per Ready on the hot path)
        self.hs_changed = hs_changed
        self.term = term
        self.voted_for = voted_for
        self.commit = commit
        self.entries_from = entries_from
        self._log = log
        self._base = log_base  # index of log[0]
        self.snapshot = snapshot
        self.messages = messages
        self.committed_from = committed_from
        self.committed = committed
        self._last_index = last_index

    @property
    def hard_state(self) -> HardState | None:
        """Term, vote and commit index to make durable; None when unchanged since the last Ready."""
        return HardState(self.term, self.voted_for, self.commit) if self.hs_changed else None

    @property
    def entries(self) -> list[tuple[int, Any]]:
        if self.entries_from > self._last_index:
            return []
        return self._log[self.entries_from - self._base:self._last_index - self._base + 1]

    @property
    def must_persist(self) -> bool:
        """True when this Ready carries state that must be durable before its messages leave."""
        return (self.hs_changed or self.entries_from <= self._last_index
                or self.snapshot is not None)

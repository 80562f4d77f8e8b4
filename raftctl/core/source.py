"""The collector's only input: what each node says about itself, or why it said nothing.

A *source* stands between the collector and a cluster it cannot see directly. One
:meth:`Source.poll` asks every member for its own report and returns a :class:`Poll`: for each
member either that node's report (:data:`REPORT_KEYS`) or a :class:`NodeAnswer` without one and
with the reason (``timeout``, ``refused`` or ``error``). Nothing in a poll is the simulator's
truth: who leads, who is up and whether there is a quorum are for the collector to work out from
the reports (``raftctl/core/leadership.py``).

Sources are plugins in the entry-point group ``raftctl.sources``, named by a spec string
(``sim``, ``etcd:URL,...``, ``raftctl:URL,...``); see ``raftctl/sources/__init__.py``.

A node's report (what a node can know about itself):

``state``           LEADER, FOLLOWER, CANDIDATE or PRE_CANDIDATE (the node's own role)
``term``            its current term
``leader_id``       the leader it believes in (None when it knows of none)
``commit_index``, ``last_applied``, ``log_length``
``peers_connected`` peers its transport reaches right now
``match_index``     as leader: per follower, the highest index known replicated there
``last_contact_ms`` as leader: per follower, ms since it last heard from it
``state_digest``    optional: a digest of the state machine at ``last_applied``
``trades_executed``, ``orders_applied``  optional: exchange counters (None for etcd)
``shards``          optional (Multi-Raft): one such report per shard, each with ``shard``

Besides the nodes, a source may carry what its own client measured (:class:`ClientView`): the
load generator's orders and their latencies, or a probe's. That is a client's knowledge, not a
node's, and it is what throughput and latency come from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["NO_ANSWER_REASONS", "REPORT_KEYS", "ClientView", "NodeAnswer", "Poll", "Source",
           "SourceError"]

NO_ANSWER_REASONS = ("timeout", "refused", "error")

REPORT_KEYS = ("state", "term", "leader_id", "commit_index", "last_applied", "log_length",
               "peers_connected", "match_index", "last_contact_ms")


class SourceError(ValueError):
    """A source cannot be built or reached as specified (a bad spec, an unusable URL)."""


@dataclass(slots=True)
class NodeAnswer:
    """One member's answer to one poll: its report, or why there is none. (Not frozen: a source
    builds one per member per poll, and a frozen dataclass's __init__ costs several times more.)"""

    node_id: str
    report: dict[str, Any] | None
    reason: str | None = None     # one of NO_ANSWER_REASONS when report is None
    detail: str = ""              # free text for people ("connection refused", "HTTP 500")
    poll_ms: float | None = None  # how long the answer took, when the source measures it

    def __post_init__(self) -> None:
        if self.report is None and self.reason not in NO_ANSWER_REASONS:
            raise ValueError(f"a node that did not answer needs a reason in {NO_ANSWER_REASONS}, "
                             f"got {self.reason!r}")

    @property
    def answered(self) -> bool:
        return self.report is not None

    @classmethod
    def silent(cls, node_id: str, reason: str, detail: str = "",
               poll_ms: float | None = None) -> "NodeAnswer":
        return cls(node_id, None, reason, detail, poll_ms)


@dataclass
class ClientView:
    """What the source's own client measured: cumulative counters from the source clock's zero
    (the collector's first sample averages them over ``Poll.now``), latencies since the previous poll."""

    orders_submitted: int | None = None
    orders_acknowledged: int | None = None
    orders_pending: int | None = None
    proposals_failed: int | None = None
    acknowledged_by_shard: list[int] | None = None
    # orders submitted and not yet acknowledged, per shard (sharded sources)
    pending_by_shard: list[int] | None = None
    # proposals the cluster committed (cumulative), when the source has no orders of its own (etcd)
    proposals_committed: int | None = None
    latencies_ms: list[float] = field(default_factory=list)
    shard_latencies_ms: list[list[float]] | None = None
    # why latencies_ms is empty, for a source that measures latency with probes of its own (etcd)
    latency_note: str | None = None


@dataclass
class Poll:
    """One poll of every member, at one instant of the source's clock (``now``, seconds)."""

    now: float
    answers: dict[str, NodeAnswer]
    client: ClientView | None = None
    shards: int = 1
    # faults the source itself injected since ``since`` (the simulator's): (time, kind, args)
    faults: list[tuple[float, str, tuple[Any, ...]]] = field(default_factory=list)

    @property
    def reached(self) -> int:
        return sum(1 for a in self.answers.values() if a.report is not None)


@runtime_checkable
class Source(Protocol):
    """What the collector reads. ``poll(since)`` gives latencies measured after ``since``
    (the previous poll's ``now``; None for all so far)."""

    name: str

    @property
    def now(self) -> float: ...

    def members(self) -> list[str]: ...

    def poll(self, since: float | None = None) -> Poll: ...

    def close(self) -> None: ...

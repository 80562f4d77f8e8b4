"""``--source etcd:URL[,URL...]``: a real etcd (v3.4+) cluster, seen through its members' HTTP APIs.

One client URL is enough: :func:`build` asks the seeds for ``POST /v3/cluster/member/list`` and
polls every voting member it names, by member name: a learner (``isLearner``) does not vote, so it
is left out rather than counted in the majority, and a member added but not started yet (no
name, no client URL) is a voter that is DOWN (``error``) until it starts. Each poll asks every member, in parallel (one
persistent thread and one keep-alive connection per member), for ``GET /debug/vars``
(its ``raft.status``), under one deadline ``timeout`` (below the collector's interval): a member
that has not answered by then is ``timeout``, one whose port is closed is ``refused``, a bad answer
is ``error``. A stopped member therefore never delays a poll by more than the timeout.

**Membership.** The list is read again while the source runs (:func:`read_membership`, in its own
thread, the leader asked first; the next poll takes it): within ``RELIST_SOON_S`` of a report
saying it changed (the leader's ``progress`` names other IDs than the list, a member answers with
another ID than the list gives it), while a member is not started yet (it gets its name and URL
when it starts) or a learner is listed (a promotion shows in no report), and every
``RELIST_EVERY_S`` whatever the reports say. A member removed leaves the polls (its connection and
thread closed), a member added or promoted joins them; ``members()`` follows. When a report
says the list changed, the poll waits for the list (until its deadline) and takes it at once: a
member removed leaves that very poll, not DOWN for one sample before it goes. When the list
cannot be read, the one before stands and ``membership_error`` says why.

``GET /metrics`` (150 KB, 2-3 ms of the member's CPU: 85 % of a poll that asks for it) is asked
after it, on the same connection, every ``metrics_every``-th poll of a member (default 3,
staggered so the members take turns), on the first answer after a member was silent or new, and
of every member for ``metrics_every`` polls after the cluster changed (a member fell silent or
came back, or the leader changed: then the leader's view of its followers' streams, which backs
its claim, must not be one from before the change); between those the report reuses the member's
last parsed series and says how old they are (``metrics_age_s``). At a
1 s interval the series that come from it (``peers_connected``, the leader's active streams,
``has_leader`` and the proposal counters) are at most 3 s old; etcd's own ``active_peers`` takes
about 4 s to drop for a stopped peer. Raft's state (``/debug/vars``) is fresh on every poll.

What a member's report holds, and where it comes from (``raft.status`` = ``/debug/vars``):

==================  ===========================================================================
``state``           ``raft.status.raftState``: StateLeader/StateFollower/StateCandidate/
                    StatePreCandidate -> LEADER/FOLLOWER/CANDIDATE/PRE_CANDIDATE
``term``            ``raft.status.term`` (the live term; maintenance/status ``raftTerm`` lags it)
``leader_id``       ``raft.status.lead`` (hex member ID) mapped to the member name; None for "0"
``commit_index``    ``raft.status.commit``
``last_applied``    ``raft.status.applied``
``log_length``      the highest log index the member is known to hold: on the leader its own
                    ``progress`` match (its last index), elsewhere its commit index (etcd does not
                    show a follower's uncommitted tail, and it compacts the log at snapshots, so
                    no count of retained entries exists)
``peers_connected`` ``etcd_network_active_peers`` series of this member at 1 (the leader: at least
                    the members whose reports in the same poll follow it in its term)
``match_index``     on the leader: ``progress[peer].match`` per other member (by name)
``last_contact_ms`` on the leader, per other member: 0 while the leader's transport has an active
                    stream to it (``etcd_network_active_peers{Remote=peer}`` 1) and its progress
                    is StateReplicate; otherwise the ms since the last poll where that held, or
                    since the first poll that saw this leader in this term (it was just
                    elected). A member whose own report in the same poll says it follows that
                    leader in that term counts as heard from (0) too: it has heard from it within
                    its election timeout, though a member just back from a restart is so before
                    the leader's progress and stream metrics catch up (a leader that cannot hear
                    a follower which still hears it is then not seen). A poll-resolution
                    estimate: etcd 3.4 exposes no "last heard from" time.
``state_digest``, ``trades_executed``, ``orders_applied``: None (no etcd meaning)
==================  ===========================================================================

Extra keys (not read by the health rules): ``member_id`` (hex), ``metrics_age_s`` (how old the
``/metrics`` series in this report were when the poll began: 0 when asked in this poll, see
above), ``has_leader``
(``etcd_server_has_leader``), ``leader_changes_seen`` (``etcd_server_leader_changes_seen_total``;
per process, resets on restart), ``proposals_committed`` (``etcd_server_proposals_committed_total``:
a gauge etcd sets to its commit index), ``proposals_pending``, ``proposals_failed``.

The client view (:class:`EtcdClientView`): one linearizable read per poll of a key nobody writes
(``POST /v3/kv/range`` with ``count_only``; it goes through Raft's ReadIndex, never writes), sent to
the member that led at the previous poll before the members are asked (so it is timed alone);
its round trip is the poll's latency sample. When it fails (no leader, refused) there is no
sample, and the sample's ``performance.latency_note`` says why. On a cluster with authentication
enabled the read needs a user: ``RAFTCTL_ETCD_USER`` and ``RAFTCTL_ETCD_PASSWORD`` (environment
only, never echoed) give one; its token comes from ``/v3/auth/authenticate`` and is renewed when
etcd stops taking it. The other calls (``/debug/vars``, ``/metrics``, member list) need none.
``proposals_committed`` is how far the highest commit index any member reported has grown since
the first poll that had an answer (the client view counts from the source clock's zero, as every
source's does: what etcd committed before raftctl watched it is no throughput of this run). Its
rate is the cluster's committed proposals per second (etcd's own entries, such as a new leader's
empty entry, included). There are no orders: the order counters are None.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from typing import Any, Sequence

from raftctl.core.source import ClientView, NodeAnswer, Poll, SourceError
from raftctl.sources.etcd_http import Connection, parse_urls
from raftctl.sources.etcd_members import EtcdMemberInfo, Membership, discover, read_membership
from raftctl.sources.members import CommitGrowth, MemberSource, Silent

__all__ = ["DEFAULT_TIMEOUT_S", "EtcdClientView", "EtcdMemberInfo", "EtcdSource", "Membership", "build", "discover",
           "parse_urls"]

DEFAULT_TIMEOUT_S = 0.5
# an auth-enabled cluster's user for the latency probe, from the environment only (never echoed)
USER_ENV = "RAFTCTL_ETCD_USER"
PASSWORD_ENV = "RAFTCTL_ETCD_PASSWORD"
# the member list is read again this often whatever the reports say, and at most this often
# while they say it changed (see "Membership" in the module docstring)
RELIST_EVERY_S = 30.0
RELIST_SOON_S = 1.0
# a member's /metrics is asked every this many polls (see the module docstring)
DEFAULT_METRICS_EVERY = 3
# how long the members' requests wait for the probe read to finish alone (a leaderless cluster
# cannot answer it: then the members are asked anyway, and the probe runs on until the deadline)
PROBE_HEAD_START_S = 0.05
PROBE_KEY = base64.b64encode(b"\x00raftctl/probe").decode()  # read only, never written
# an answer that says the probe's token is missing, expired or no longer known to the member
_TOKEN_REFUSED = re.compile(r"invalid auth token|user name is empty|auth token is expired|token.*not found")
_PROBE_BODY = json.dumps({"key": PROBE_KEY, "count_only": True}).encode()
_STATES = {"StateLeader": "LEADER", "StateFollower": "FOLLOWER", "StateCandidate": "CANDIDATE",
           "StatePreCandidate": "PRE_CANDIDATE"}
# the /metrics series a report uses, found with bytes.find in the 150 KB text (0.03 ms, not a regex pass)
_SCALARS = ("etcd_server_has_leader", "etcd_server_leader_changes_seen_total",
            "etcd_server_proposals_committed_total", "etcd_server_proposals_pending",
            "etcd_server_proposals_failed_total")
_ACTIVE_PEERS = b"\netcd_network_active_peers{"
_REMOTE = re.compile(rb'Remote="([0-9a-fA-F]+)"')


@dataclass
class EtcdClientView(ClientView):
    """A ClientView plus what only an etcd source has (see the module docstring)."""

    probe_member: str | None = None
    probe_error: str | None = None


def _parse_metrics(text: bytes) -> dict[str, Any]:
    """``{"active_remotes": {peer id: active}, series name: value}`` from a /metrics body."""
    text = b"\n" + text
    remotes: dict[int, bool] = {}
    out: dict[str, Any] = {"active_remotes": remotes}
    at = text.find(_ACTIVE_PEERS)
    while at >= 0:
        end = text.find(b"\n", at + 1)
        line = text[at + 1:end if end >= 0 else len(text)]
        remote = _REMOTE.search(line)
        labels_end = line.rfind(b"} ")
        if remote is not None and labels_end > 0:
            try:
                remotes[int(remote.group(1), 16)] = float(line[labels_end + 2:]) >= 1
            except ValueError:
                pass
        at = text.find(_ACTIVE_PEERS, at + 1)
    for name in _SCALARS:
        key = b"\n" + name.encode() + b" "
        at = text.find(key)
        if at < 0:
            continue
        end = text.find(b"\n", at + len(key))
        try:
            out[name] = float(text[at + len(key):end if end >= 0 else len(text)])
        except ValueError:
            continue
    return out


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


class EtcdSource(MemberSource):
    """``etcd:URL,...``: see the module docstring."""

    name = "etcd"

    def __init__(self, members: list[EtcdMemberInfo], *, timeout: float = DEFAULT_TIMEOUT_S,
                 seeds: list[str] | None = None, clock: Any = time.monotonic,
                 metrics_every: int = DEFAULT_METRICS_EVERY, user: str | None = None,
                 password: str | None = None, learners: Sequence[tuple[int, str]] = ()) -> None:
        if not members:
            raise SourceError("the etcd cluster lists no members")
        if isinstance(metrics_every, bool) or not isinstance(metrics_every, int) or metrics_every < 1:
            raise SourceError(f"metrics_every must be a whole number of polls >= 1, got {metrics_every!r}")
        self.timeout = float(timeout)
        self.metrics_every = metrics_every
        self._polls = 0
        # (members that answered, leader) of the last poll; a change asks everyone for /metrics
        # for the next metrics_every polls (see the module docstring)
        self._shape: tuple[frozenset[str], str | None] | None = None
        self._unsettled_until = 0
        # per member: (monotonic time fetched, parsed /metrics) of its last answer to /metrics
        self._metrics: dict[str, tuple[float, dict[str, Any]]] = {}
        self.seeds = list(seeds or [m.url for m in members])
        super().__init__(clock)
        self._members: list[EtcdMemberInfo] = []
        self._membership = Membership((), ())
        self._names: dict[int, str] = {}
        # per member one keep-alive connection and one thread: the members are asked in parallel
        self._connections: dict[str, Connection] = {}
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._pending: dict[str, Future[NodeAnswer]] = {}
        # the member list, read again while the source runs (see "Membership" in the docstring)
        self._listing_pool = ThreadPoolExecutor(1, thread_name_prefix="etcd-members")
        self._listing: Future[Membership] | None = None
        self._listed_at = clock()
        self._list_doubted = False  # a member answered with another ID than the list gives it
        self.membership_error: str | None = None  # why the last reading of the list failed
        self._probe_pool = ThreadPoolExecutor(1, thread_name_prefix="etcd-probe")
        self._probe_connections: dict[str, Connection] = {}
        self._probe_pending: Future[tuple[str, float | None, str | None]] | None = None
        self._last_leader: str | None = None
        self._reign: tuple[str, int] | None = None  # (leader, term) the contact times are counted for
        self._last_ok: dict[str, float] = {}
        self._latencies: deque[tuple[float, float]] = deque(maxlen=10_000)
        self._committed = CommitGrowth()
        # an auth-enabled cluster's probe read needs a user (RAFTCTL_ETCD_USER / _PASSWORD): its
        # token, got from /v3/auth/authenticate when first needed and again when etcd drops it
        self._user = user or None
        self._password = password or ""
        self._token: str | None = None
        self._take_membership(Membership(tuple(members), tuple(learners)))

    # ------------------------------------------------------------------ membership

    def _take_membership(self, membership: Membership) -> None:
        """Poll ``membership``'s voters from now on: a member removed, renamed (started: it has
        its name now) or moved to another URL loses its connection and thread, a new one gets
        them. Called in the poll thread (or the constructor), under the poll lock."""
        old = {m.member_id: m for m in self._members}
        new = {m.member_id: m for m in membership.voters}
        for member_id, member in old.items():
            if new.get(member_id) != member:
                self._drop_member(member)
        for member in membership.voters:
            if old.get(member.member_id) != member:
                if member.url:
                    self._connections[member.name] = Connection(member.url)
                self._pools[member.name] = ThreadPoolExecutor(1, thread_name_prefix=f"etcd-poll-{member.name}")
        changed = bool(old) and (old != new or membership.learners != self._membership.learners)
        self._members = list(membership.voters)
        self._voter_ids = frozenset(m.member_id for m in membership.voters)
        self._membership = membership
        self._names = {**dict(membership.learners), **{m.member_id: m.name for m in membership.voters}}
        if changed:  # every member's /metrics at once: the streams to a new member, none to a removed one
            self._unsettled_until = self._polls + self.metrics_every

    def learners(self) -> list[str]:
        """The learners the member list names: members that do not vote and are not polled."""
        return [name for _, name in self._membership.learners]

    def _drop_member(self, member: EtcdMemberInfo) -> None:
        name = member.name
        pool = self._pools.pop(name, None)
        conn = self._connections.pop(name, None)
        if pool is not None:
            if conn is not None:
                pool.submit(conn.close)  # after a request still running on it, in its own thread
            pool.shutdown(wait=False)
        probe_conn = self._probe_connections.pop(name, None)
        if probe_conn is not None:
            self._probe_pool.submit(probe_conn.close)
        for state in (self._pending, self._metrics, self._last_ok):
            state.pop(name, None)
        if self._last_leader == name:
            self._last_leader = None

    def _collect_listing(self) -> None:
        """Take the member list read since the last poll, if it is in."""
        listing = self._listing
        if listing is None or not listing.done():
            return
        self._listing = None
        try:
            membership = listing.result()
        except SourceError as exc:
            self.membership_error = str(exc)  # the old list stands; asked again later
            return
        except Exception as exc:  # noqa: BLE001 - a thread's surprise must not end the watch
            self.membership_error = f"{type(exc).__name__}: {exc}"
            return
        self.membership_error = None
        self._list_doubted = False
        self._take_membership(membership)

    def _maybe_relist(self, progress_ids: frozenset[int] | None, deadline: float) -> bool:
        """Read the member list again, in the background, when it may have changed: the leader's
        progress names other members than the list, a member answered with another ID, a member
        is not started yet (it gets its name and URL when it starts) or is a learner (which may
        be promoted); at most every ``RELIST_SOON_S``, and every ``RELIST_EVERY_S`` whatever the
        reports say. When the reports say so (not only may), the list is waited for until the
        poll's ``deadline`` and taken in this poll: True when the membership changed (a member
        removed then leaves this very poll, not DOWN for one sample first)."""
        if self._listing is not None:
            return False
        waited = self._clock() - self._listed_at
        membership = self._membership
        said = self._list_doubted or (progress_ids is not None and progress_ids != membership.ids())
        # a learner's promotion shows in no report: while there is one, the list is asked often
        doubted = said or bool(membership.unstarted) or bool(membership.learners)
        if waited < RELIST_EVERY_S and not (doubted and waited >= RELIST_SOON_S):
            return False
        self._listed_at = self._clock()
        urls = self.member_urls()
        candidates = [urls[self._last_leader]] if self._last_leader is not None and urls.get(self._last_leader) else []
        candidates += [u for u in urls.values() if u and u not in candidates]
        candidates += [u for u in self.seeds if u not in candidates]
        known = {m.member_id: m.url for m in self._members if m.url}
        self._listing = listing = self._listing_pool.submit(read_membership, candidates, known,
                                                            max(self.timeout, 1.0))
        if not said:
            return False
        wait_futures([listing], timeout=max(0.05, deadline - time.monotonic()))
        before = self._membership
        self._collect_listing()
        return self._membership != before

    # ------------------------------------------------------------------ Source (see MemberSource)

    def _poll(self, since: float | None) -> Poll:
        self._collect_listing()
        started = self._clock()
        deadline = time.monotonic() + self.timeout
        # the probe goes first, alone: measured while this process and the members are busy
        # serving /metrics it would time their CPU and our GIL, not the read (2 ms become 20)
        probe_target = self._probe_target()
        probe: Future[tuple[str, float | None, str | None]] | None = None
        if probe_target is not None and (self._probe_pending is None or self._probe_pending.done()):
            probe = self._probe_pool.submit(self._probe, probe_target, deadline)
            self._probe_pending = probe
            wait_futures([probe], timeout=min(PROBE_HEAD_START_S, self.timeout / 4))
        futures: dict[str, Future[NodeAnswer]] = {}
        self._polls += 1
        for index, member in enumerate(self._members):
            previous = self._pending.get(member.name)
            if previous is not None and not previous.done():
                continue  # still answering the previous poll (past its deadline): a timeout again
            # the members take turns with /metrics; one without fresh-enough series asks at once
            with_metrics = (member.name not in self._metrics or self._polls <= self._unsettled_until
                            or (self._polls + index) % self.metrics_every == 0)
            future = self._pools[member.name].submit(self._ask, member, deadline, with_metrics)
            self._pending[member.name] = future
            futures[member.name] = future
        waiting: list[Future[Any]] = list(futures.values())
        if probe is not None:
            waiting.append(probe)
        wait_futures(waiting, timeout=max(0.0, deadline - time.monotonic()) + 0.05)
        # the poll's instant is its start, when the members were asked: a member stuck until the
        # deadline must not stamp the others' counters late (throughput over too short a span)
        now = started - self._started
        answers: dict[str, NodeAnswer] = {}
        raws: dict[str, dict[str, Any]] = {}
        for member in self._members:
            pending = futures.get(member.name)
            if pending is None or not pending.done():
                self._metrics.pop(member.name, None)  # silent: its next answer brings new series
                answers[member.name] = NodeAnswer.silent(
                    member.name, "timeout", f"no answer within {self.timeout * 1000:.0f} ms",
                    round((self._clock() - started) * 1000.0, 3))
                continue
            answer = pending.result()
            if answer.report is not None:
                raws[member.name] = answer.report
            else:
                self._metrics.pop(member.name, None)  # silent: its next answer brings new series
            answers[member.name] = answer
        progress_ids = self._finish_reports(raws, now)
        if self._maybe_relist(progress_ids, deadline):  # the members polled are no longer the membership
            voters = set(self.members())
            answers = {name: answer for name, answer in answers.items() if name in voters}
            raws = {name: report for name, report in raws.items() if name in voters}
        shape = (frozenset(raws), self._last_leader)
        if shape != self._shape:
            self._shape = shape
            self._unsettled_until = self._polls + self.metrics_every
        client = self._client_view(probe, raws, now, since)
        return Poll(float(now), answers, client, 1)

    def _shutdown(self) -> None:
        for pool in [*self._pools.values(), self._probe_pool, self._listing_pool]:
            pool.shutdown(wait=False, cancel_futures=True)
        for conn in [*self._connections.values(), *self._probe_connections.values()]:
            conn.close()

    # ------------------------------------------------------------------ one member

    def _ask(self, member: EtcdMemberInfo, deadline: float, with_metrics: bool = True) -> NodeAnswer:
        started = time.monotonic()
        conn = self._connections.get(member.name)
        if conn is None:
            return NodeAnswer.silent(member.name, "error", "added to the cluster but not started: the member "
                                     "list gives it no name and no client URL", 0.0)
        cached = self._metrics.get(member.name)  # one read: the poll thread may drop it meanwhile
        try:
            vars_body = conn.request("GET", "/debug/vars", deadline)
            if with_metrics or cached is None:
                # after /debug/vars on the same connection: asked side by side on two, the two
                # answers took 5.3 ms here against 3.1 ms one after the other (2 cores, the GIL)
                cached = (time.monotonic(), _parse_metrics(conn.request("GET", "/metrics", deadline)))
            assert cached is not None
            report = self._report(member, vars_body, cached, started)
            self._metrics[member.name] = cached
        except Silent as silent:
            return NodeAnswer.silent(member.name, silent.reason, silent.detail,
                                     round((time.monotonic() - started) * 1000.0, 3))
        return NodeAnswer(member.name, report, poll_ms=round((time.monotonic() - started) * 1000.0, 3))

    def _name(self, hex_id: Any) -> str | None:
        try:
            member_id = int(str(hex_id), 16)
        except ValueError:
            return str(hex_id)
        if member_id == 0:
            return None
        return self._names.get(member_id, format(member_id, "x"))

    def _report(self, member: EtcdMemberInfo, vars_body: bytes,
                metrics_at: tuple[float, dict[str, Any]], asked: float) -> dict[str, Any]:
        try:
            raft = json.loads(vars_body)["raft.status"]
            state = _STATES.get(raft["raftState"], str(raft["raftState"]).removeprefix("State").upper())
            own_id = int(raft["id"], 16)
            term = int(raft["term"])
            commit = int(raft["commit"])
            applied = int(raft["applied"])
            lead = raft.get("lead", "0")
            progress = raft.get("progress") or {}
        except (ValueError, KeyError, TypeError) as exc:
            raise Silent("error", f"/debug/vars has no usable raft.status ({type(exc).__name__}: {exc})") from None
        if own_id != member.member_id:
            self._list_doubted = True
            raise Silent("error", f"{member.url} is etcd member {own_id:x}, not {member.name} "
                                   f"({member.member_id:x}): the member list is out of date")
        fetched, metrics = metrics_at
        active: dict[int, bool] = metrics["active_remotes"]
        match_index: dict[str, int] = {}
        replicating: dict[str, bool] = {}
        log_length = commit
        members_seen: frozenset[int] | None = None
        if state == "LEADER":
            seen: set[int] = set()
            for peer_hex, peer in progress.items():
                try:
                    peer_id = int(peer_hex, 16)
                except (ValueError, TypeError):
                    continue
                seen.add(peer_id)  # every member the leader's progress names, whatever its figures
                try:
                    match = int(peer["match"])
                except (ValueError, KeyError, TypeError):
                    continue
                if peer_id == own_id:
                    log_length = max(commit, match)
                    continue
                name = self._names.get(peer_id, format(peer_id, "x"))
                match_index[name] = match
                replicating[name] = peer.get("state") == "StateReplicate" and active.get(peer_id, False)
            members_seen = frozenset(seen)
        has_leader = metrics.get("etcd_server_has_leader")
        return {
            "node_id": member.name,
            "state": state,
            "term": term,
            "leader_id": self._name(lead),
            "commit_index": commit,
            "last_applied": applied,
            "log_length": log_length,
            # voters only: a learner's stream counted too could hide a voter cut off from the majority
            "peers_connected": sum(1 for peer_id, on in active.items()
                                   if on and peer_id != own_id and peer_id in self._voter_ids),
            "match_index": match_index,
            "last_contact_ms": replicating,  # turned into ms by _finish_reports (needs the poll's clock)
            "state_digest": None,
            "orders_applied": None,
            "trades_executed": None,
            "member_id": format(own_id, "x"),
            "has_leader": None if has_leader is None else has_leader >= 1,
            "leader_changes_seen": _opt_int(metrics.get("etcd_server_leader_changes_seen_total")),
            "proposals_committed": _opt_int(metrics.get("etcd_server_proposals_committed_total")),
            "proposals_pending": _opt_int(metrics.get("etcd_server_proposals_pending")),
            "proposals_failed": _opt_int(metrics.get("etcd_server_proposals_failed_total")),
            "metrics_age_s": round(max(0.0, asked - fetched), 3),  # 0: asked in this poll
            "_members_seen": members_seen,  # taken out by _finish_reports
        }

    def _finish_reports(self, raws: dict[str, dict[str, Any]], now: float) -> frozenset[int] | None:
        """Turn the leaders' per-peer "replicating" flags into ms since the last poll they held;
        return the IDs the leader's ``progress`` names (None: no leader answered).

        Only the claimant of the highest term moves the "last held" times: a stale leader that
        just woke up cannot vouch for anyone. A new leader (or a new term) starts its own count
        at the first poll that sees it: it was just elected by a majority, and its progress is
        StateProbe until its first appends are answered, so the old leader's times are not its.
        """
        leader: str | None = None
        seen: dict[str, frozenset[int] | None] = {name: report.pop("_members_seen", None) for name, report in raws.items()}
        for name, report in raws.items():
            if report["state"] == "LEADER" and (leader is None or report["term"] > raws[leader]["term"]):
                leader = name
        reign = None if leader is None else (leader, raws[leader]["term"])
        if reign is not None and reign != self._reign:
            for peer in raws[leader]["last_contact_ms"]:  # type: ignore[index]
                self._last_ok[peer] = now
        if reign is not None:
            self._reign = reign
        # the members whose own report in this poll follows the leader in its term: they heard
        # from it within their election timeout, though etcd's active_peers and the leader's
        # progress (seconds behind after an election or a member's return) do not say so yet
        followers: set[str] = set()
        if leader is not None:
            lead = raws[leader]
            followers = {peer for peer, own in raws.items() if peer != leader and own["state"] == "FOLLOWER"
                         and own["leader_id"] == leader and own["term"] == lead["term"]}
            # it is connected to them (a new leader read "reaches only 0 peers")
            if type(lead.get("peers_connected")) is int and len(followers) > lead["peers_connected"]:
                lead["peers_connected"] = len(followers)
        for name, report in raws.items():
            replicating = report["last_contact_ms"]
            if report["state"] != "LEADER":
                report["last_contact_ms"] = {}
                continue
            contacts: dict[str, float] = {}
            for peer, ok in replicating.items():
                if not ok and name == leader:
                    ok = peer in followers  # heard from (a member back from a restart is so first)
                if ok:
                    if name == leader:
                        self._last_ok[peer] = now
                    contacts[peer] = 0.0
                else:
                    contacts[peer] = round((now - self._last_ok.get(peer, 0.0)) * 1000.0, 3)
            report["last_contact_ms"] = contacts
        self._last_leader = leader
        return seen.get(leader) if leader is not None else None

    # ------------------------------------------------------------------ the probe

    def _probe_target(self) -> str | None:
        if self._last_leader is not None:
            return self._last_leader
        return self._members[0].name if len(self._members) == 1 else self._next_member()

    def _next_member(self) -> str:
        # no leader known: take turns, so one dead member does not hide the cluster's latency
        index = getattr(self, "_probe_turn", -1) + 1
        self._probe_turn = index
        return self._members[index % len(self._members)].name

    def _probe(self, name: str, deadline: float) -> tuple[str, float | None, str | None]:
        conn = self._probe_connections.get(name)
        if conn is None:
            conn = self._probe_connections[name] = Connection(self.member_urls()[name])
        try:
            if self._user is not None and self._token is None:
                self._token = self._authenticate(conn, deadline)
            started = time.monotonic()
            try:
                body = conn.request("POST", "/v3/kv/range", deadline, _PROBE_BODY, self._auth_header())
            except Silent as silent:
                if self._user is None or not _TOKEN_REFUSED.search(silent.detail):
                    raise
                # the token expired (etcd's simple tokens do when idle) or the leader changed: again
                self._token = self._authenticate(conn, deadline)
                started = time.monotonic()
                body = conn.request("POST", "/v3/kv/range", deadline, _PROBE_BODY, self._auth_header())
            doc = json.loads(body)
        except Silent as silent:
            return name, None, self._probe_trouble(silent, name)
        except ValueError:
            return name, None, "error: /v3/kv/range answered no JSON"
        if not isinstance(doc, dict) or "header" not in doc:
            return name, None, f"error: /v3/kv/range answered {str(doc)[:80]}"
        return name, (time.monotonic() - started) * 1000.0, None

    def _auth_header(self) -> dict[str, str] | None:
        return {"Authorization": self._token} if self._token else None

    def _authenticate(self, conn: Connection, deadline: float) -> str:
        """A token for the user (Silent: the answer's reason, never the password)."""
        body = json.dumps({"name": self._user, "password": self._password}).encode()
        try:
            doc = json.loads(conn.request("POST", "/v3/auth/authenticate", deadline, body))
        except ValueError:
            raise Silent("error", "/v3/auth/authenticate answered no JSON") from None
        token = doc.get("token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise Silent("error", "/v3/auth/authenticate answered no token (is auth enabled?)")
        return token

    def _probe_trouble(self, silent: Silent, member: str) -> str:
        """Why the probe measured nothing, saying what to do where that is known."""
        detail = silent.detail
        if "user name is empty" in detail and self._user is None:
            return f"etcd has auth enabled: set {USER_ENV} and {PASSWORD_ENV} for the probe's read"
        if "authentication failed" in detail:
            return f"etcd refused user {self._user!r}: authentication failed (wrong name or password)"
        if "permission denied" in detail:
            return f"user {self._user!r} may not read the probe key (base64 {PROBE_KEY}): grant its role read"
        # which member: "refused" beside the one member that answers read as if that one refused
        return f"the probe read at {member} failed ({silent.reason}: {detail})"

    def _client_view(self, probe: Future[tuple[str, float | None, str | None]] | None,
                     raws: dict[str, dict[str, Any]], now: float, since: float | None) -> EtcdClientView:
        probe_member = probe_error = None
        if probe is None:
            probe_error = "the previous probe is still waiting"
        elif not probe.done():
            probe_error = f"timeout: no answer within {self.timeout * 1000:.0f} ms"
        else:
            probe_member, latency, probe_error = probe.result()
            if latency is not None:
                self._latencies.append((now, latency))
        committed = self._committed.update(r["commit_index"] for r in raws.values())
        after = -1.0 if since is None else float(since)
        latencies = [ms for t, ms in self._latencies if t > after]
        return EtcdClientView(latencies_ms=latencies, proposals_committed=committed,
                              probe_member=probe_member, probe_error=probe_error,
                              latency_note=probe_error)


# ---------------------------------------------------------------------- discovery and factory


def build(arg: str = "", *, timeout: float | None = None, interval: float | None = None,
          **_context: Any) -> EtcdSource:
    """The factory of the ``etcd`` entry point: ``arg`` is ``URL[,URL...]``.

    ``timeout`` (s) bounds each member's answer in a poll (default 0.5 s, or half the
    ``interval`` when that is shorter); it must be below ``interval`` when both are given.
    """
    seeds = parse_urls(arg)
    if interval is not None:
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not interval > 0:
            raise SourceError(f"interval must be a positive number of seconds, got {interval!r}")
    if timeout is None:
        timeout = DEFAULT_TIMEOUT_S if interval is None else min(DEFAULT_TIMEOUT_S, 0.5 * float(interval))
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise SourceError(f"the etcd poll timeout must be a positive number of seconds, got {timeout!r}")
    if interval is not None and timeout >= interval:
        raise SourceError(f"the etcd poll timeout ({timeout:g} s) must be below the interval ({interval:g} s)")
    membership = discover(seeds, max(float(timeout), 1.0))
    user = os.environ.get(USER_ENV, "").strip() or None
    password = os.environ.get(PASSWORD_ENV, "")
    if password and user is None:
        raise SourceError(f"{PASSWORD_ENV} is set but {USER_ENV} is not: give both, or neither")
    return EtcdSource(list(membership.voters), timeout=float(timeout), seeds=seeds, user=user, password=password,
                      learners=membership.learners)

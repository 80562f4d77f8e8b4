"""``--source etcd:URL[,URL...]``: a real etcd (v3.4+) cluster, seen through its members' HTTP APIs.

One client URL is enough: :func:`build` asks the seeds for ``POST /v3/cluster/member/list`` and
polls every voting member it names, by member name: a learner (``isLearner``) does not vote, so it
is left out rather than counted in the majority, and a member added but not started yet (no
name, no client URL) is a voter that is DOWN (``error``) until it starts. Each poll asks every member, in parallel (one
persistent thread and one keep-alive connection per member), for ``GET /debug/vars``
(its ``raft.status``), under one deadline ``timeout`` (below the collector's interval): a member
that has not answered by then is ``timeout``, one whose port is closed is ``refused``, a bad answer
is ``error``. A stopped member therefore never delays a poll by more than the timeout.

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
import http.client
import json
import os
import re
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from raftctl.core.source import ClientView, NodeAnswer, Poll, SourceError
from raftctl.sources.members import CommitGrowth, MemberSource, Silent, Stale

__all__ = ["DEFAULT_TIMEOUT_S", "EtcdClientView", "EtcdMemberInfo", "EtcdSource", "build", "parse_urls"]

DEFAULT_TIMEOUT_S = 0.5
# an auth-enabled cluster's user for the latency probe, from the environment only (never echoed)
USER_ENV = "RAFTCTL_ETCD_USER"
PASSWORD_ENV = "RAFTCTL_ETCD_PASSWORD"
# a member's /metrics is asked every this many polls (see the module docstring)
DEFAULT_METRICS_EVERY = 3
# how long the members' requests wait for the probe read to finish alone (a leaderless cluster
# cannot answer it: then the members are asked anyway, and the probe runs on until the deadline)
PROBE_HEAD_START_S = 0.05
PROBE_KEY = base64.b64encode(b"\x00raftctl/probe").decode()  # read only, never written
# an answer that says the probe's token is missing, expired or no longer known to the member
_TOKEN_REFUSED = re.compile(r"invalid auth token|user name is empty|auth token is expired|token.*not found")
_PROBE_BODY = json.dumps({"key": PROBE_KEY, "count_only": True}).encode()
_JSON_HEADERS = {"Content-Type": "application/json"}
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


@dataclass(frozen=True)
class EtcdMemberInfo:
    name: str
    member_id: int
    url: str


def parse_urls(arg: str) -> list[str]:
    """``"http://a:2379,b:2379"`` -> normalized ``["http://a:2379", "http://b:2379"]``; SourceError if bad."""
    if not arg or not arg.strip():
        raise SourceError("the etcd source needs at least one client URL: "
                          "--source etcd:http://127.0.0.1:2379[,URL...]")
    urls: list[str] = []
    for raw in arg.split(","):
        text = raw.strip()
        if not text:
            raise SourceError(f"empty URL in etcd:{arg} (URLs are separated by single commas)")
        if "://" not in text:
            text = "http://" + text
        parts = urlsplit(text)
        if parts.scheme == "https":
            raise SourceError(f"{raw.strip()}: https (TLS) etcd endpoints are not supported yet; use http")
        if parts.scheme != "http":
            raise SourceError(f"{raw.strip()}: an etcd client URL must be http://HOST:PORT")
        try:
            port = parts.port
        except ValueError:
            raise SourceError(f"{raw.strip()}: bad port") from None
        if not parts.hostname:
            raise SourceError(f"{raw.strip()}: no host in the URL")
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
            raise SourceError(f"{raw.strip()}: give only http://HOST:PORT (no path, query or user)")
        host = parts.hostname
        if ":" in host:
            host = f"[{host}]"
        url = f"http://{host}:{port or 2379}"
        if url not in urls:
            urls.append(url)
    return urls


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 2379


class _Connection:
    """One keep-alive HTTP/1.1 connection to one member, every call under a deadline."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.host, self.port = _host_port(url)
        self._conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(self, method: str, path: str, deadline: float, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> bytes:
        """The body of a 200 answer; Silent otherwise (the connection is dropped on any failure).

        A kept-alive connection the member closed since (it was killed or restarted) is retried
        once on a new one, so a dead member reads as ``refused``, not as a broken connection.
        """
        reused = self._conn is not None
        try:
            return self._request(method, path, deadline, body, headers)
        except Stale:
            if not reused:
                raise Silent("error", f"{path}: the connection closed without an answer") from None
        try:
            return self._request(method, path, deadline, body, headers)
        except Stale:
            raise Silent("error", f"{path}: the connection closed without an answer") from None

    def _request(self, method: str, path: str, deadline: float, body: bytes | None,
                 headers: dict[str, str] | None = None) -> bytes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Silent("timeout", f"no answer to {path} before the poll timeout")
        try:
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=remaining)
                self._conn.connect()
            sock = self._conn.sock
            if sock is not None:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
            sent = dict(_JSON_HEADERS) if body is not None else {}
            if headers:
                sent.update(headers)
            self._conn.request(method, path, body=body, headers=sent)
            resp = self._conn.getresponse()
            data = resp.read()
            status = resp.status
            if resp.will_close:
                self.close()
        except ConnectionRefusedError:
            self.close()
            raise Silent("refused", "connection refused") from None
        except TimeoutError:
            self.close()
            raise Silent("timeout", f"no answer to {path} before the poll timeout") from None
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.close()
            raise Stale() from None
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise Silent("error", f"{path}: {type(exc).__name__}: {exc}".rstrip(": ")) from None
        if status != 200:
            said = _grpc_error(data)  # the gateway's JSON error: etcd's own words ("etcdserver: ...")
            raise Silent("error", f"{path} answered HTTP {status}" + (f": {said}" if said else ""))
        return data


def _grpc_error(body: bytes) -> str | None:
    """``error`` (else ``message``) of a gRPC gateway's error body, one short line; None for another body."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    said = (doc.get("error") or doc.get("message")) if isinstance(doc, dict) else None
    return " ".join(said.split())[:200] if isinstance(said, str) and said.strip() else None


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
                 password: str | None = None) -> None:
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
        self._members = list(members)
        self._names = {m.member_id: m.name for m in members}
        # per member one keep-alive connection and one thread: the members are asked in parallel
        self._connections = {m.name: _Connection(m.url) for m in members if m.url}
        self._pools = {m.name: ThreadPoolExecutor(1, thread_name_prefix=f"etcd-poll-{m.name}") for m in members}
        self._pending: dict[str, Future[NodeAnswer]] = {}
        self._probe_pool = ThreadPoolExecutor(1, thread_name_prefix="etcd-probe")
        self._probe_connections: dict[str, _Connection] = {}
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

    # ------------------------------------------------------------------ Source

    # ------------------------------------------------------------------ Source (see MemberSource)

    def _poll(self, since: float | None) -> Poll:
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
        self._finish_reports(raws, now)
        shape = (frozenset(raws), self._last_leader)
        if shape != self._shape:
            self._shape = shape
            self._unsettled_until = self._polls + self.metrics_every
        client = self._client_view(probe, raws, now, since)
        return Poll(float(now), answers, client, 1)

    def _shutdown(self) -> None:
        for pool in [*self._pools.values(), self._probe_pool]:
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
            raise Silent("error", f"{member.url} is etcd member {own_id:x}, not {member.name} "
                                   f"({member.member_id:x}): the member list is out of date")
        fetched, metrics = metrics_at
        active: dict[int, bool] = metrics["active_remotes"]
        match_index: dict[str, int] = {}
        replicating: dict[str, bool] = {}
        log_length = commit
        if state == "LEADER":
            for peer_hex, peer in progress.items():
                try:
                    peer_id = int(peer_hex, 16)
                    match = int(peer["match"])
                except (ValueError, KeyError, TypeError):
                    continue
                if peer_id == own_id:
                    log_length = max(commit, match)
                    continue
                name = self._names.get(peer_id, format(peer_id, "x"))
                match_index[name] = match
                replicating[name] = peer.get("state") == "StateReplicate" and active.get(peer_id, False)
        has_leader = metrics.get("etcd_server_has_leader")
        return {
            "node_id": member.name,
            "state": state,
            "term": term,
            "leader_id": self._name(lead),
            "commit_index": commit,
            "last_applied": applied,
            "log_length": log_length,
            "peers_connected": sum(1 for peer_id, on in active.items() if on and peer_id != own_id),
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
        }

    def _finish_reports(self, raws: dict[str, dict[str, Any]], now: float) -> None:
        """Turn the leaders' per-peer "replicating" flags into ms since the last poll they held.

        Only the claimant of the highest term moves the "last held" times: a stale leader that
        just woke up cannot vouch for anyone. A new leader (or a new term) starts its own count
        at the first poll that sees it: it was just elected by a majority, and its progress is
        StateProbe until its first appends are answered, so the old leader's times are not its.
        """
        leader: str | None = None
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
            conn = self._probe_connections[name] = _Connection(self.member_urls()[name])
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
            return name, None, self._probe_trouble(silent)
        except ValueError:
            return name, None, "error: /v3/kv/range answered no JSON"
        if not isinstance(doc, dict) or "header" not in doc:
            return name, None, f"error: /v3/kv/range answered {str(doc)[:80]}"
        return name, (time.monotonic() - started) * 1000.0, None

    def _auth_header(self) -> dict[str, str] | None:
        return {"Authorization": self._token} if self._token else None

    def _authenticate(self, conn: _Connection, deadline: float) -> str:
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

    def _probe_trouble(self, silent: Silent) -> str:
        """Why the probe measured nothing, saying what to do where that is known."""
        detail = silent.detail
        if "user name is empty" in detail and self._user is None:
            return f"etcd has auth enabled: set {USER_ENV} and {PASSWORD_ENV} for the probe's read"
        if "authentication failed" in detail:
            return f"etcd refused user {self._user!r}: authentication failed (wrong name or password)"
        if "permission denied" in detail:
            return f"user {self._user!r} may not read the probe key (base64 {PROBE_KEY}): grant its role read"
        return f"{silent.reason}: {detail}"

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


def _member_list(url: str, timeout: float) -> tuple[int | None, list[Any]]:
    """``(id of the member that answered, members)`` from one seed; SourceError with one line."""
    conn = _Connection(url)
    try:
        body = conn.request("POST", "/v3/cluster/member/list", time.monotonic() + timeout, b"{}")
    except Silent as silent:
        if silent.reason == "error" and "HTTP" in silent.detail:
            raise SourceError(f"{url} does not look like an etcd member: POST /v3/cluster/member/list "
                              f"answered {silent.detail.split('answered ')[-1]}") from None
        raise SourceError(f"cannot reach etcd at {url}: {silent.detail}") from None
    finally:
        conn.close()
    try:
        doc = json.loads(body)
        members = doc["members"]
        answering = doc.get("header", {}).get("member_id")
        if not isinstance(members, list):
            raise TypeError("members is not a list")
        return (None if answering is None else int(answering)), members
    except (ValueError, KeyError, TypeError, AttributeError):
        raise SourceError(f"{url} does not look like an etcd member: its member list answer "
                          f"is not etcd's (starts {body[:60]!r})") from None


def discover(seeds: list[str], timeout: float) -> list[EtcdMemberInfo]:
    """The members, as the first seed that answers lists them; a seed URL beats the advertised one."""
    errors: list[str] = []
    listing: list[Any] | None = None
    seed_of: dict[int, str] = {}
    with ThreadPoolExecutor(min(8, len(seeds))) as pool:
        results = list(pool.map(lambda u: _try(_member_list, u, timeout), seeds))
    for url, result in zip(seeds, results):
        if isinstance(result, SourceError):
            errors.append(str(result))
            continue
        answering, members = result
        if answering is not None:
            seed_of.setdefault(answering, url)
        if listing is None:
            listing = members
    if listing is None:
        if len(errors) == 1:
            raise SourceError(errors[0])
        raise SourceError("no etcd member answered: " + "; ".join(errors))
    out: list[EtcdMemberInfo] = []
    names: set[str] = set()
    for raw in listing:
        try:
            member_id = int(raw["ID"])
        except (KeyError, TypeError, ValueError):
            raise SourceError(f"the etcd member list has an entry without an ID: {raw!r}"[:200]) from None
        if raw.get("isLearner") is True:
            continue  # a learner does not vote: counted as a member, it would move the majority
        name = str(raw.get("name") or "") or format(member_id, "x")  # not started yet: no name
        if name in names:
            name = f"{name}-{member_id:x}"
        names.add(name)
        seed = seed_of.get(member_id)
        if seed is not None:
            url = seed
        else:
            advertised = [u for u in raw.get("clientURLs") or [] if isinstance(u, str) and u.startswith("http://")]
            if advertised:
                url = parse_urls(advertised[0])[0]
            elif not raw.get("name") and not raw.get("clientURLs"):
                url = ""  # added but not started yet: a voter all the same, DOWN until it starts
            else:
                raise SourceError(f"etcd member {name} advertises no http:// client URL "
                                  f"({', '.join(map(str, raw.get('clientURLs') or [])) or 'none'}); "
                                  f"raftctl reads etcd over plain http")
        out.append(EtcdMemberInfo(name, member_id, url))
    return out


def _try(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except SourceError as exc:
        return exc


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
    members = discover(seeds, max(float(timeout), 1.0))
    user = os.environ.get(USER_ENV, "").strip() or None
    password = os.environ.get(PASSWORD_ENV, "")
    if password and user is None:
        raise SourceError(f"{PASSWORD_ENV} is set but {USER_ENV} is not: give both, or neither")
    return EtcdSource(members, timeout=float(timeout), seeds=seeds, user=user, password=password)

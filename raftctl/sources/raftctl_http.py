"""``--source raftctl:URL[,URL...]``: `raftctl node` processes, seen through their HTTP APIs.

The argument lists the HTTP URLs of one or more nodes, ``http://127.0.0.1:7101,...``, or names
them, ``node1=http://127.0.0.1:7101,...``. One member is enough: :func:`build` asks every URL for
``GET /api/status`` once and takes the membership from the nodes' own reports (``members``,
``cluster_id``), each answering node's name from its ``node_id``, and the URLs of the members
not given from what their peers announce (``peer_urls``: the URL each peer sent in its hello).
A URL given beats an announced one. At start, a URL that answers but not as a raftctl node, a
node of another cluster, a name that is not the node's own or not a member, a URL that did not
answer and is no member's, and (unless every URL is named) no node answering at all are each
one line (:class:`SourceError`). A named spec whose nodes are all down at start watches the
named nodes and learns the rest of the membership from the first report that names it.

Each poll asks every member for ``GET /api/status`` in parallel (one persistent thread and one
keep-alive connection per member) under one deadline ``timeout``, below the collector's interval:
no answer by then is ``timeout``, a closed port ``refused``, anything else ``error`` (so is a
member whose URL no node has announced yet, and a URL that now answers as another node or a node
of another cluster). The membership, once known, stays: a node restarted announces nobody for a
while and lowers nothing. A member whose URL was announced (not given) follows its peers' word
when they announce another. The report is the node's own (``NodeHost.report``: the keys of
``Cluster.status``), so the collector reads a real cluster exactly as it reads the simulator.

Orders, throughput and latency are a client's knowledge, not a node's: a caller that runs a load
generator passes it as ``load=`` (anything with ``client_view(since) -> ClientView``, ``since`` a
``time.monotonic()`` value), as
``raftctl cluster up`` does. Without one, throughput is the cluster's committed entries per
second (the growth of the highest commit index a node reports, from the first poll that had an
answer: ``CommitGrowth``), as for etcd; orders and latency are then unknown (None).
"""

from __future__ import annotations

import socket
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from typing import Any, Collection, Mapping
from urllib.parse import urlsplit

import orjson

from raftctl.core.source import ClientView, NodeAnswer, Poll, SourceError
from raftctl.sources.members import CommitGrowth, MemberSource, Silent, Stale, member_url

__all__ = ["DEFAULT_TIMEOUT_S", "Membership", "NotANode", "RaftctlSource", "build", "discover",
           "parse_members"]

DEFAULT_TIMEOUT_S = 0.5
_MAX_HEAD = 16 * 1024
_MAX_BODY = 16 * 1024 * 1024
_MAX_MEMBERS = 1024  # a report's word: a longer member list, or a longer name, is not believed
_MAX_NAME = 200
_EXAMPLE = "--source raftctl:http://127.0.0.1:7101"


class NotANode(Silent):
    """The URL answered, but not as a raftctl node does (a 404, HTML, not HTTP): ``what`` is what
    it did, for the line that refuses it at start (``URL answered 404 to GET /api/status``)."""

    def __init__(self, detail: str, what: str) -> None:
        super().__init__("error", detail)
        self.what = what


def _normalize(raw: str) -> str:
    return member_url(raw, "a node URL: the node's --http address")


def _announced(raw: Any) -> str | None:
    """A URL a node announced for a peer (the node's word), normalized; None if it is no URL."""
    if not isinstance(raw, str) or len(raw) > 300:
        return None
    try:
        return _normalize(raw)
    except SourceError:
        return None


def _member_ids(report: dict[str, Any]) -> list[str] | None:
    """The member ids a report lists, if they are believable (its own id among them)."""
    ids = report.get("members")
    if not isinstance(ids, list) or not 0 < len(ids) <= _MAX_MEMBERS:
        return None
    if not all(isinstance(i, str) and 0 < len(i) <= _MAX_NAME for i in ids) or len(set(ids)) != len(ids):
        return None
    return ids if report.get("node_id") in ids else None


def parse_members(arg: str) -> tuple[list[str], dict[str, str]]:
    """The URLs in ``arg`` and the names given to some of them: ``([url, ...], {url: name})``."""
    if not arg or not arg.strip():
        # (no "..." at the end: the CLI ends a message with one full stop)
        raise SourceError(f"the raftctl source needs the nodes' HTTP URLs (one node's --http address is "
                          f"enough): {_EXAMPLE} watches the cluster that node belongs to; list more, "
                          "comma-separated, or name them (node1=http://127.0.0.1:7101,node2=http://127.0.0.1:7102)")
    urls: list[str] = []
    names: dict[str, str] = {}
    for item in arg.split(","):
        if not item.strip():
            raise SourceError(f"empty URL in raftctl:{arg} (URLs are separated by single commas)")
        name, sep, rest = item.partition("=")
        if sep and "://" not in name:
            url = _normalize(rest)
            name = name.strip()
            if not name or name in names.values():
                raise SourceError(f"raftctl:{arg}: node name {name!r} is empty or given twice")
            names[url] = name
        else:
            url = _normalize(item)
        if url in urls:
            raise SourceError(f"raftctl:{arg}: {url} is listed twice")
        urls.append(url)
    return urls, names


class _Member:
    """One node: its keep-alive connection, used by its one poll thread only.

    ``GET /api/status`` is written and read on a plain socket: a node answers with a
    Content-Length and no chunking, so the whole exchange is one send and (usually) one recv,
    without http.client's per-header parsing (a third of the client's share of a poll).
    ``url`` is None while no node has announced the member's; ``fixed`` when the URL is the
    user's (given, never replaced by what peers announce).
    """

    def __init__(self, name: str, url: str | None, fixed: bool = True) -> None:
        self.name = name
        self.fixed = fixed
        self.url: str | None = None
        self.host = "127.0.0.1"
        self.port = 80
        self.sock: socket.socket | None = None
        self._request = b""
        self.moved_to: str | None = None  # announced elsewhere while a poll of it was running
        self.pending: Future[NodeAnswer] | None = None
        self.aim(url)

    def aim(self, url: str | None) -> None:
        """Ask ``url`` from now on (only while no poll of this member runs)."""
        self.close()
        self.url = url
        self.moved_to = None
        if url is None:
            self._request = b""
            return
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self._request = (f"GET /api/status HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                         "Accept: application/json\r\n\r\n").encode("latin-1")

    @property
    def busy(self) -> bool:
        return self.pending is not None and not self.pending.done()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def status(self, deadline: float) -> dict[str, Any]:
        """GET /api/status; a kept-alive connection found closed is retried once on a new one."""
        reused = self.sock is not None
        try:
            return self._get(deadline)
        except Stale:
            self.close()
            if not reused:
                raise Silent("error", "the connection closed without an answer") from None
        try:
            return self._get(deadline)
        except Stale:
            self.close()
            raise Silent("error", "the connection closed without an answer") from None

    def _get(self, deadline: float) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Silent("timeout", "no answer before the poll timeout")
        try:
            if self.sock is None:
                self.sock = socket.create_connection((self.host, self.port), timeout=remaining)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            else:
                self.sock.settimeout(remaining)
            sock = self.sock
            sock.sendall(self._request)
            status, _length, closing, body = self._read(sock, deadline)
            if closing:
                self.close()
        except Silent:
            self.close()
            raise
        except ConnectionRefusedError:
            self.close()
            raise Silent("refused", "connection refused") from None
        except TimeoutError:
            self.close()
            raise Silent("timeout", "no answer before the poll timeout") from None
        except (ConnectionResetError, BrokenPipeError):
            raise Stale() from None
        except OSError as exc:
            self.close()
            raise Silent("error", f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
        if status != 200:
            if status >= 500:  # a node answers 503 when its loop missed the deadline
                raise Silent("error", f"/api/status answered HTTP {status}")
            raise NotANode(f"/api/status answered HTTP {status}", f"answered {status} to GET /api/status")
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise NotANode("/api/status did not answer JSON (is this a raftctl node?)",
                           "answered GET /api/status with something other than JSON") from None
        if not isinstance(doc, dict) or "state" not in doc or "term" not in doc:
            raise NotANode("/api/status is not a raftctl node report",
                           "answered GET /api/status with JSON that is not a node's report")
        return doc

    def _read(self, sock: socket.socket, deadline: float) -> tuple[int, int, bool, bytes]:
        """(status, Content-Length, whether the node closes, body) of one answer."""
        buf = b""
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(buf) > _MAX_HEAD:
                raise NotANode("the answer's head is too long (is this a raftctl node?)",
                               f"answered GET /api/status with a head longer than {_MAX_HEAD} bytes")
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                if buf:
                    raise Silent("error", "the connection closed in the middle of an answer")
                raise Stale()
            buf += chunk
        lines = buf[:end].split(b"\r\n")
        first = lines[0].split(b" ", 2)
        if len(first) < 2 or not first[0].startswith(b"HTTP/1.") or not first[1].isdigit():
            raise NotANode(f"not an HTTP answer: {lines[0][:60]!r} (is this a raftctl node?)",
                           f"answered GET /api/status with {lines[0][:60]!r}, not HTTP")
        status = int(first[1])
        length: int | None = None
        closing = first[0] == b"HTTP/1.0"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            key = name.strip().lower()
            if key == b"content-length":
                text = value.strip()
                if not text.isdigit():
                    raise NotANode("the answer has a bad Content-Length",
                                   "answered GET /api/status with a bad Content-Length")
                length = int(text)
            elif key == b"transfer-encoding":
                raise NotANode("the answer is chunked (is this a raftctl node?)",
                               "answered GET /api/status chunked, as no raftctl node does")
            elif key == b"connection":
                closing = value.strip().lower() == b"close"
        if length is None:
            raise NotANode("the answer has no Content-Length (is this a raftctl node?)",
                           "answered GET /api/status without a Content-Length")
        if length > _MAX_BODY:
            raise Silent("error", f"the answer's body is larger than {_MAX_BODY} bytes")
        body = buf[end + 4:]
        while len(body) < length:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            chunk = sock.recv(max(65536, length - len(body)))
            if not chunk:
                raise Silent("error", "the connection closed in the middle of an answer")
            body += chunk
        if len(body) > length:  # nothing was asked beyond this answer: a confused peer
            raise Silent("error", "the node sent more than its Content-Length")
        return status, length, closing, body


class RaftctlSource(MemberSource):
    """``raftctl:URL,...``: see the module docstring.

    ``members`` maps names to URLs (None: not known yet); ``announced`` names the members whose
    URL came from their peers' word (it follows what they announce); ``known`` says the
    membership came from a node's report (else the first report that lists it completes it);
    ``cluster_id`` is the cluster's (else the first report's): a node of another one is an error.
    """

    name = "raftctl"

    def __init__(self, members: Mapping[str, str | None], *, timeout: float = DEFAULT_TIMEOUT_S,
                 load: Any = None, clock: Any = time.monotonic, cluster_id: str | None = None,
                 announced: Collection[str] = (), known: bool = False) -> None:
        if not members:
            raise SourceError("the raftctl source has no nodes to watch")
        self.timeout = float(timeout)
        self.load = load
        self._committed = CommitGrowth()
        super().__init__(clock)
        self._cluster_id = cluster_id
        self._known = known
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._members = [self._new(name, url, url is not None and name not in announced)
                         for name, url in members.items()]

    def _new(self, name: str, url: str | None, fixed: bool) -> _Member:
        self._pools[name] = ThreadPoolExecutor(1, thread_name_prefix=f"raftctl-poll-{name}")
        return _Member(name, url, fixed)

    def _poll(self, since: float | None) -> Poll:
        """Ask every node in parallel; returns within about ``timeout`` s whatever happens."""
        started = time.monotonic()
        deadline = started + self.timeout
        # a poll is stamped when its counts were read: the nodes' commit indexes as it starts (a
        # live node answers within milliseconds; one stuck node must not stamp the others' figures
        # late, or throughput is counted over a shorter span than the commits grew in: 3x after a
        # SIGCONT), the load's own counters when its view is taken, after the nodes answered
        asked_at = self.now
        answers: dict[str, NodeAnswer] = {}
        asked = self._members
        for _ in range(2):  # a membership learned in this poll: the new members are asked too
            got = self._ask_all(asked, started, deadline)
            before = len(self._members)
            self._learn(got)
            answers.update(got)
            if len(self._members) == before or time.monotonic() >= deadline:
                break
            asked = [m for m in self._members if m.name not in answers]
        answers = {m.name: answers[m.name] for m in self._members if m.name in answers}
        if self.load is not None:
            now = self.now
            # the load generator keeps time.monotonic(); ``since`` is on this source's clock
            client = self.load.client_view(None if since is None else self._started + since)
        else:  # no client of our own: what the nodes say they committed (entries, not orders)
            now = asked_at
            client = ClientView(proposals_committed=self._committed.update(
                a.report.get("commit_index") for a in answers.values() if a.report is not None))
        return Poll(now, answers, client, 1)

    def _ask_all(self, members: list[_Member], started: float, deadline: float) -> dict[str, NodeAnswer]:
        futures: dict[str, Future[NodeAnswer]] = {}
        for member in members:
            if member.busy:
                continue  # still stuck in the previous poll: a timeout again
            if member.moved_to is not None:
                member.aim(member.moved_to)
            if member.url is None:
                continue
            member.pending = self._pools[member.name].submit(self._ask, member, deadline)
            futures[member.name] = member.pending
        if futures:
            wait_futures(list(futures.values()), timeout=max(0.0, deadline - time.monotonic()) + 0.05)
        answers: dict[str, NodeAnswer] = {}
        for member in members:
            future = futures.get(member.name)
            if member.url is None and future is None and not member.busy:
                answers[member.name] = NodeAnswer.silent(
                    member.name, "error", "its HTTP URL is unknown: no node that answers has heard from it "
                    f"since it started (give it: raftctl:{member.name}=http://HOST:PORT,...)")
            elif future is None or not future.done():
                answers[member.name] = NodeAnswer.silent(
                    member.name, "timeout", f"no answer within {self.timeout * 1000:.0f} ms",
                    round((time.monotonic() - started) * 1000.0, 3))
            else:
                answers[member.name] = future.result()
        return answers

    @staticmethod
    def _ask(member: _Member, deadline: float) -> NodeAnswer:
        started = time.monotonic()
        try:
            report = member.status(deadline)
        except Silent as silent:
            return NodeAnswer.silent(member.name, silent.reason, silent.detail,
                                     round((time.monotonic() - started) * 1000.0, 3))
        report.setdefault("node_id", member.name)
        return NodeAnswer(member.name, report, poll_ms=round((time.monotonic() - started) * 1000.0, 3))

    # ---- what the reports say about the membership (the nodes' word, checked) ----------

    def _learn(self, got: dict[str, NodeAnswer]) -> None:
        """Check each report is this member's, complete the membership, follow announced URLs."""
        by_name = {m.name: m for m in self._members}
        reports: list[dict[str, Any]] = []
        for name, answer in got.items():
            report = answer.report
            if report is None:
                continue
            problem = self._stranger(by_name[name], report)
            if problem is None:
                reports.append(report)
            else:
                got[name] = NodeAnswer.silent(name, "error", problem, answer.poll_ms)
        if not reports:
            return
        if not self._known:
            self._take_membership(reports)
        if any(not m.fixed for m in self._members):
            self._follow(reports)

    def _stranger(self, member: _Member, report: dict[str, Any]) -> str | None:
        """Why this report is not the member's (another cluster's node, another node), or None."""
        cid = report.get("cluster_id")
        if isinstance(cid, str):
            if self._cluster_id is None:
                self._cluster_id = cid
            elif cid != self._cluster_id:
                return (f"{member.url} now answers as a node of another cluster (cluster_id "
                        f"{cid[:40]!r}, not {self._cluster_id!r})")
        node_id = report.get("node_id")
        if node_id != member.name:
            return f"{member.url} now answers as {str(node_id)[:60]!r}, not {member.name}"
        return None

    def _take_membership(self, reports: list[dict[str, Any]]) -> None:
        for report in reports:
            ids = _member_ids(report)
            if ids is None:
                continue
            current = {m.name: m for m in self._members}
            ordered = [current.pop(i) if i in current else self._new(i, None, False) for i in ids]
            self._members = ordered + list(current.values())  # named ones it does not list stay
            self._known = True
            return

    def _follow(self, reports: list[dict[str, Any]]) -> None:
        """Members whose URL is not the user's: the URL most of the answering peers announce (the
        current one on a tie; kept while nobody announces one, as after a restart)."""
        for member in self._members:
            if member.fixed:
                continue
            counts: dict[str, int] = {}
            for report in reports:
                peers = report.get("peer_urls")
                url = _announced(peers.get(member.name)) if isinstance(peers, dict) else None
                if url is not None:
                    counts[url] = counts.get(url, 0) + 1
            if not counts:
                continue
            best = max(counts.values())
            current = member.moved_to or member.url
            if current is not None and counts.get(current) == best:
                continue
            url = min(u for u, c in counts.items() if c == best)
            if member.busy:
                member.moved_to = url
            else:
                member.aim(url)

    def _shutdown(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)
        for member in self._members:
            member.close()


# ---------------------------------------------------------------------- discovery and factory


@dataclass
class Membership:
    """What :func:`discover` found: the arguments of :class:`RaftctlSource`."""

    members: dict[str, str | None]
    announced: set[str] = field(default_factory=set)
    cluster_id: str | None = None
    known: bool = False


def _status_or_silence(member: _Member, deadline: float) -> dict[str, Any] | Silent:
    try:
        return member.status(deadline)
    except Silent as silent:
        return silent
    finally:
        member.close()


def _why(silent: Silent, timeout: float) -> str:
    if silent.reason == "timeout":
        return f"no answer within {round(timeout, 2):g} s"
    return silent.detail.removeprefix("/api/status ")


def _few(ids: list[str], limit: int = 8) -> str:
    return ", ".join(ids[:limit]) + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def discover(urls: list[str], names: dict[str, str], timeout: float) -> Membership:
    """Ask every URL for ``GET /api/status`` at once (answers within ``timeout`` s) and work out
    the membership; SourceError with one line when the URLs and the reports disagree."""
    probes = [_Member("probe", url) for url in urls]
    deadline = time.monotonic() + timeout
    with ThreadPoolExecutor(min(64, len(probes))) as pool:
        results = dict(zip(urls, pool.map(lambda m: _status_or_silence(m, deadline), probes)))
    for url in urls:
        result = results[url]
        if isinstance(result, NotANode):
            raise SourceError(f"{url} {result.what}: not a raftctl node")
    docs = {url: r for url, r in results.items() if isinstance(r, dict)}
    silent = {url: r for url, r in results.items() if isinstance(r, Silent)}
    if not docs:
        if len(names) == len(urls):  # named: watch them; the first report completes the membership
            return Membership({names[url]: url for url in urls})
        if len(urls) == 1:
            raise SourceError(f"{urls[0]} did not answer GET /api/status: {_why(silent[urls[0]], timeout)}; "
                              "is the node running? (name it, node1=URL, to watch a node that is down)")
        raise SourceError("none of the nodes answered GET /api/status ("
                          + "; ".join(f"{u}: {_why(silent[u], timeout)}" for u in urls)
                          + "): are they running? (name them, node1=URL,..., to watch nodes that are down)")
    answered = [u for u in urls if u in docs]
    node_of: dict[str, str] = {}
    for url in answered:
        doc = docs[url]
        nid = doc.get("node_id")
        node_of[url] = nid if isinstance(nid, str) and nid else names.get(url) or urlsplit(url).netloc
        if url in names and names[url] != node_of[url]:
            raise SourceError(f"{names[url]}={url} answers as {node_of[url]}: name it {node_of[url]}, "
                              "or leave the name out")
    first: dict[str, str] = {}  # cluster_id -> the first URL of that cluster
    for url in answered:
        cid = docs[url].get("cluster_id")
        if isinstance(cid, str):
            first.setdefault(cid, url)
    if len(first) > 1:
        (cid_a, a), (cid_b, b) = list(first.items())[:2]
        ids_a, ids_b = _member_ids(docs[a]) or [], _member_ids(docs[b]) or []
        raise SourceError(f"{b} is {node_of[b]} of another cluster than {a} ({node_of[a]}): cluster "
                          f"{cid_b[:40]} (members {_few(ids_b)}), not {cid_a[:40]} (members {_few(ids_a)}); "
                          "give the URLs of one cluster's nodes")
    cluster_id = next(iter(first), None)
    ids = next((m for m in (_member_ids(docs[u]) for u in answered) if m is not None), None)
    if ids is None:  # nodes that do not report their members: watch the URLs given
        return _given_only(urls, names, docs, node_of)
    for name in names.values():
        if name not in ids:
            raise SourceError(f"{name} is not a member of the cluster {answered[0]} belongs to "
                              f"(members {_few(ids, 50)})")
    url_of: dict[str, str] = {}
    for url in urls:
        whose = node_of.get(url) or names.get(url)
        if whose is None:
            continue
        if whose in url_of:
            raise SourceError(f"{url_of[whose]} and {url} are both node {whose!r}")
        url_of[whose] = url
    announced: dict[str, dict[str, int]] = {}
    for url in answered:
        peers = docs[url].get("peer_urls")
        if not isinstance(peers, dict):
            continue
        for nid in ids:
            peer_url = _announced(peers.get(nid))
            if peer_url is not None:
                counts = announced.setdefault(nid, {})
                counts[peer_url] = counts.get(peer_url, 0) + 1
    unresolved: list[str] = []
    for url in urls:  # the URLs given that did not answer: whose do the peers say they are?
        if url in docs or url in names:
            continue
        owner = next((n for n in ids if n not in url_of and url in announced.get(n, {})), None)
        if owner is None:
            unresolved.append(url)
        else:
            url_of[owner] = url
    loose: set[str] = set()
    for nid in ids:
        counts = announced.get(nid, {})
        if nid not in url_of and counts:
            best = max(counts.values())
            url_of[nid] = min(u for u, c in counts.items() if c == best)
            loose.add(nid)
    urlless = [nid for nid in ids if nid not in url_of]
    if unresolved:
        if len(unresolved) == 1 and len(urlless) == 1:  # the one URL left for the one member left
            url_of[urlless[0]] = unresolved[0]
            loose.add(urlless[0])
            urlless = []
        else:
            raise SourceError(_unresolved_line(unresolved, silent, ids, url_of, urlless, timeout))
    extras = [n for n in node_of.values() if n not in ids]  # (only without a cluster_id to tell)
    members: dict[str, str | None] = {nid: url_of.get(nid) for nid in ids + extras}
    return Membership(members, loose, cluster_id, True)


def _unresolved_line(unresolved: list[str], silent: dict[str, Silent], ids: list[str],
                     url_of: dict[str, str], urlless: list[str], timeout: float) -> str:
    known = ", ".join(f"{n}={url_of.get(n, '?')}" for n in ids[:8]) + (", ..." if len(ids) > 8 else "")
    if len(unresolved) == 1:
        url = unresolved[0]
        head = f"{url} did not answer GET /api/status ({_why(silent[url], timeout)}) and is none of the members' URLs"
        hint = f"name it ({urlless[0]}={url}) or leave it out" if urlless else "leave it out"
    else:
        head = f"{', '.join(unresolved)} did not answer GET /api/status and are none of the members' URLs"
        hint = f"name them ({urlless[0]}=URL,...) or leave them out" if urlless else "leave them out"
    return f"{head} ({known}): {hint}"


def _given_only(urls: list[str], names: dict[str, str], docs: dict[str, dict[str, Any]],
                node_of: dict[str, str]) -> Membership:
    """Nodes that list no members: the URLs given, named by themselves, their peers or their address."""
    peer_names: dict[str, str] = {}
    for doc in docs.values():
        peers = doc.get("peer_urls")
        for peer, raw in (peers.items() if isinstance(peers, dict) else ()):
            peer_url = _announced(raw)
            if isinstance(peer, str) and peer_url is not None:
                peer_names[peer_url] = peer
    members: dict[str, str | None] = {}
    for url in urls:
        name = names.get(url) or node_of.get(url) or peer_names.get(url) or urlsplit(url).netloc
        if name in members:
            raise SourceError(f"{members[name]} and {url} are both node {name!r}")
        members[name] = url
    return Membership(members)


def build(arg: str = "", *, timeout: float = DEFAULT_TIMEOUT_S, load: Any = None,
          **_context: Any) -> RaftctlSource:
    """The factory of the ``raftctl`` entry point."""
    urls, names = parse_members(arg)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 60:
        raise SourceError(f"timeout must be a number of seconds in (0, 60], got {timeout!r}")
    found = discover(urls, names, max(float(timeout), 1.0))
    return RaftctlSource(found.members, timeout=float(timeout), load=load, cluster_id=found.cluster_id,
                         announced=found.announced, known=found.known)

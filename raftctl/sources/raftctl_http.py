"""``--source raftctl:URL[,URL...]``: `raftctl node` processes, seen through their HTTP APIs.

The argument lists the nodes' HTTP URLs, ``http://127.0.0.1:7101,http://127.0.0.1:7102,...``, or
names them, ``node1=http://127.0.0.1:7101,...``. Without names, :func:`build` asks every URL for
``GET /api/status`` once and takes each answering node's ``node_id``; a node that is down then
is named by what its peers know of it (the URL it announced to them), else by its URL.

Each poll asks every member for ``GET /api/status`` in parallel (one persistent thread and one
keep-alive connection per member) under one deadline ``timeout``, below the collector's interval:
no answer by then is ``timeout``, a closed port ``refused``, anything else ``error``. The report is
the node's own (``NodeHost.report``: the keys of ``Cluster.status``), so the collector reads a real
cluster exactly as it reads the simulator.

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
from typing import Any
from urllib.parse import urlsplit

import orjson

from raftctl.core.source import ClientView, NodeAnswer, Poll, SourceError
from raftctl.sources.members import CommitGrowth, MemberSource, Silent, Stale

__all__ = ["DEFAULT_TIMEOUT_S", "RaftctlSource", "build", "parse_members"]

DEFAULT_TIMEOUT_S = 0.5
_MAX_HEAD = 16 * 1024
_MAX_BODY = 16 * 1024 * 1024


def _normalize(raw: str) -> str:
    text = raw.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme != "http":
        raise SourceError(f"{raw.strip()}: a node URL must be http://HOST:PORT")
    try:
        port = parts.port
    except ValueError:
        raise SourceError(f"{raw.strip()}: bad port") from None
    if not parts.hostname or port is None:
        raise SourceError(f"{raw.strip()}: give http://HOST:PORT (the node's --http address)")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise SourceError(f"{raw.strip()}: give only http://HOST:PORT (no path, query or user)")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"http://{host}:{port}"


def parse_members(arg: str) -> tuple[list[str], dict[str, str]]:
    """The URLs in ``arg`` and the names given to some of them: ``([url, ...], {url: name})``."""
    if not arg or not arg.strip():
        raise SourceError("the raftctl source needs the nodes' HTTP URLs: "
                          "--source raftctl:http://127.0.0.1:7101,http://127.0.0.1:7102,...")
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
    """

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self.url = url
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.sock: socket.socket | None = None
        self._request = (f"GET /api/status HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                         "Accept: application/json\r\n\r\n").encode("latin-1")
        self.pool = ThreadPoolExecutor(1, thread_name_prefix=f"raftctl-poll-{name}")
        self.pending: Future[NodeAnswer] | None = None

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
            raise Silent("error", f"/api/status answered HTTP {status}")
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise Silent("error", "/api/status did not answer JSON (is this a raftctl node?)") from None
        if not isinstance(doc, dict) or "state" not in doc or "term" not in doc:
            raise Silent("error", "/api/status is not a raftctl node report")
        return doc

    def _read(self, sock: socket.socket, deadline: float) -> tuple[int, int, bool, bytes]:
        """(status, Content-Length, whether the node closes, body) of one answer."""
        buf = b""
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(buf) > _MAX_HEAD:
                raise Silent("error", "the answer's head is too long (is this a raftctl node?)")
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
            raise Silent("error", f"not an HTTP answer: {lines[0][:60]!r} (is this a raftctl node?)")
        status = int(first[1])
        length: int | None = None
        closing = first[0] == b"HTTP/1.0"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            key = name.strip().lower()
            if key == b"content-length":
                text = value.strip()
                if not text.isdigit():
                    raise Silent("error", "the answer has a bad Content-Length")
                length = int(text)
            elif key == b"transfer-encoding":
                raise Silent("error", "the answer is chunked (is this a raftctl node?)")
            elif key == b"connection":
                closing = value.strip().lower() == b"close"
        if length is None:
            raise Silent("error", "the answer has no Content-Length (is this a raftctl node?)")
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
    """``raftctl:URL,...``: see the module docstring."""

    name = "raftctl"

    def __init__(self, members: dict[str, str], *, timeout: float = DEFAULT_TIMEOUT_S, load: Any = None,
                 clock: Any = time.monotonic) -> None:
        if not members:
            raise SourceError("the raftctl source has no nodes to watch")
        self.timeout = float(timeout)
        self.load = load
        self._committed = CommitGrowth()
        super().__init__(clock)
        self._members = [_Member(name, url) for name, url in members.items()]

    def _poll(self, since: float | None) -> Poll:
        """Ask every node in parallel; returns within about ``timeout`` s whatever happens."""
        started = time.monotonic()
        deadline = started + self.timeout
        futures: dict[str, Future[NodeAnswer]] = {}
        for member in self._members:
            if member.pending is not None and not member.pending.done():
                continue  # still stuck in the previous poll: a timeout again
            member.pending = member.pool.submit(self._ask, member, deadline)
            futures[member.name] = member.pending
        wait_futures(list(futures.values()), timeout=max(0.0, deadline - time.monotonic()) + 0.05)
        answers: dict[str, NodeAnswer] = {}
        for member in self._members:
            future = futures.get(member.name)
            if future is None or not future.done():
                answers[member.name] = NodeAnswer.silent(
                    member.name, "timeout", f"no answer within {self.timeout * 1000:.0f} ms",
                    round((time.monotonic() - started) * 1000.0, 3))
            else:
                answers[member.name] = future.result()
        now = self.now
        client: ClientView | None = None
        if self.load is not None:
            # the load generator keeps time.monotonic(); ``since`` is on this source's clock
            client = self.load.client_view(None if since is None else self._started + since)
        else:  # no client of our own: what the nodes say they committed (entries, not orders)
            client = ClientView(proposals_committed=self._committed.update(
                a.report.get("commit_index") for a in answers.values() if a.report is not None))
        return Poll(now, answers, client, 1)

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

    def _shutdown(self) -> None:
        for member in self._members:
            member.pool.shutdown(wait=False, cancel_futures=True)
            member.close()



def discover(urls: list[str], names: dict[str, str], timeout: float) -> dict[str, str]:
    """Name every URL: given names first, then each node's own ``node_id``, then what peers announced."""
    unnamed = [u for u in urls if u not in names]
    found: dict[str, str] = dict(names)
    peer_urls: dict[str, str] = {}
    if unnamed:
        probes = {url: _Member("probe", url) for url in urls}
        with ThreadPoolExecutor(max(1, len(probes))) as pool:
            deadline = time.monotonic() + timeout
            futures = {url: pool.submit(m.status, deadline) for url, m in probes.items()}
            for url, fut in futures.items():
                try:
                    doc = fut.result()
                except Silent:
                    continue
                finally:
                    probes[url].close()
                if url in unnamed and isinstance(doc.get("node_id"), str):
                    found[url] = doc["node_id"]
                for peer, peer_url in (doc.get("peer_urls") or {}).items():
                    if isinstance(peer, str) and isinstance(peer_url, str):
                        peer_urls[_normalize(peer_url)] = peer
        if not any(url in found for url in unnamed) and len(found) == len(names):
            raise SourceError(f"none of {', '.join(urls)} answered GET /api/status within "
                              f"{timeout:g} s: are the nodes running? (name them, node1=URL,..., to "
                              "watch nodes that are down)")
        for url in unnamed:
            if url not in found:
                found[url] = peer_urls.get(url, urlsplit(url).netloc)
    members: dict[str, str] = {}
    for url in urls:
        name = found[url]
        if name in members:
            raise SourceError(f"{members[name]} and {url} are both node {name!r}")
        members[name] = url
    return members


def build(arg: str = "", *, timeout: float = DEFAULT_TIMEOUT_S, load: Any = None,
          **_context: Any) -> RaftctlSource:
    """The factory of the ``raftctl`` entry point."""
    urls, names = parse_members(arg)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 60:
        raise SourceError(f"timeout must be a number of seconds in (0, 60], got {timeout!r}")
    members = discover(urls, names, max(float(timeout), 1.0))
    return RaftctlSource(members, timeout=float(timeout), load=load)

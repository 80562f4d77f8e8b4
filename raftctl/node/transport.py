"""TCP between node processes: length-prefixed frames of orjson-encoded Raft messages.

One outbound connection per peer, owned by a sender thread: the process loop hands it messages
with :meth:`Transport.send` (never blocking), and the thread writes everything queued as one
frame. The queue is bounded (the oldest messages are dropped when it is full, and counted):
Raft resends what matters, and a stalled peer must not make a node buffer without limit.
A peer that cannot be reached is retried with capped exponential back-off; what was queued for
it meanwhile is dropped (a burst of stale heartbeats helps nobody).

Inbound, an accept thread starts one reader thread per connection. The first frame of every
connection is a hello ``{"node", "cluster"}``; a connection from a node of another cluster (its
``cluster_id``, see ``wal.py``), or from a name that is not a peer, is told why in one frame
``{"refused": why}`` and closed; both sides log it, the same refusal at most every 30 s (the
refused node finds the frame at its next send in the connection's first second).
:meth:`Transport.peers_connected` counts a peer only while frames from it arrive (keepalives
every :data:`KEEPALIVE_S` when idle), so a peer that is stopped, hung, or refusing us does not
count however long its TCP connection stays open.
The hello also carries the sender's HTTP URL, which is how a follower learns where to redirect
clients to its leader. A frame is ``length (u32 BE) | payload``, at most :data:`MAX_FRAME`
bytes; anything malformed closes the connection.

:meth:`Transport.isolate` is the fault hook: traffic to and from the listed peers is dropped
(both ways, counted) until the list is cleared, which is how ``POST /api/control/isolate``
cuts a node off from its peers without root or iptables.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from raftctl.core.raft import Message
from raftctl.node.codec import dumps_messages, loads_messages

__all__ = ["MAX_FRAME", "Transport", "TransportStats"]

log = logging.getLogger(__name__)

MAX_FRAME = 64 * 1024 * 1024
_LEN = struct.Struct(">I")
CONNECT_TIMEOUT_S = 1.0
BACKOFF_MIN_S = 0.02
BACKOFF_MAX_S = 1.0
QUEUE_LIMIT = 20_000  # messages per peer
SEND_TIMEOUT_S = 5.0
# an idle connection carries an empty frame this often, so a dead peer shows as disconnected
# within a few of them (and a new one is connected before there is anything to send)
KEEPALIVE_S = 0.2
# a peer counts as connected only while frames from it (keepalives at least) arrive this often:
# a stopped or hung peer keeps its TCP connections open, and only its silence tells
LIVENESS_S = 5 * KEEPALIVE_S
# a connection that dies sooner than this after its hello (refused: another cluster, say) does not
# reset the back-off, so a peer that keeps refusing us is retried at most once per BACKOFF_MAX_S
STABLE_S = 1.0
REFUSAL_LOG_EVERY_S = 30.0
# how long a refusing node waits for the refused one to read why and close (it looks within
# KEEPALIVE_S, at its next frame)
REFUSED_LINGER_S = 2.0


class TransportStats:
    """Counters (read without a lock: each is written by one thread)."""

    def __init__(self) -> None:
        self.frames_sent = 0
        self.messages_sent = 0
        self.bytes_sent = 0
        self.frames_received = 0
        self.messages_received = 0
        self.dropped_queue_full = 0
        self.dropped_unreachable = 0
        self.dropped_isolated = 0
        self.connects = 0
        self.connect_failures = 0
        self.bad_frames = 0


class _Peer:
    """One peer's outbound side: its queue, its connection and its sender thread."""

    def __init__(self, transport: "Transport", peer_id: str, address: tuple[str, int]) -> None:
        self.transport = transport
        self.peer_id = peer_id
        self.address = address
        self.queue: deque[Message] = deque()
        self.cond = threading.Condition()
        self.sock: socket.socket | None = None
        self.connected = False
        self.connected_at = 0.0
        self.backoff = BACKOFF_MIN_S
        self.retry_at = 0.0
        self.thread = threading.Thread(target=self._run, name=f"raftctl-send-{peer_id}", daemon=True)

    def put(self, msgs: list[Message]) -> None:
        stats = self.transport.stats
        with self.cond:
            queue = self.queue
            queue.extend(msgs)
            over = len(queue) - self.transport.queue_limit
            if over > 0:
                for _ in range(over):
                    queue.popleft()
                stats.dropped_queue_full += over
            self.cond.notify()

    def _take(self) -> list[Message] | None:
        """Everything queued; [] after KEEPALIVE_S of nothing (a keepalive); None when stopping."""
        with self.cond:
            if not self.queue and not self.transport.stopping:
                self.cond.wait(KEEPALIVE_S)
            if self.transport.stopping:
                return None
            msgs = list(self.queue)
            self.queue.clear()
            return msgs

    def _connect(self) -> bool:
        now = time.monotonic()
        if now < self.retry_at:
            return False
        stats = self.transport.stats
        try:
            sock = socket.create_connection(self.address, timeout=CONNECT_TIMEOUT_S)
        except OSError:
            stats.connect_failures += 1
            self.retry_at = now + self.backoff
            self.backoff = min(self.backoff * 2, BACKOFF_MAX_S)
            return False
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(SEND_TIMEOUT_S)
        hello = orjson.dumps({"node": self.transport.node_id, "cluster": self.transport.cluster_id,
                              "http": self.transport.http_url})
        try:
            sock.sendall(_LEN.pack(len(hello)) + hello)
        except OSError:
            sock.close()
            stats.connect_failures += 1
            self.retry_at = now + self.backoff
            self.backoff = min(self.backoff * 2, BACKOFF_MAX_S)
            return False
        self.sock = sock
        self.connected = True
        self.connected_at = now
        stats.connects += 1
        return True

    def _refusal(self) -> bool:
        """While a connection is new: has the peer closed it, or refused us (``Transport._tell_refused``)?
        Then log why (at most every REFUSAL_LOG_EVERY_S) and disconnect. Peers never write on a
        connection they accepted otherwise, so anything to read is a refusal or the end."""
        sock = self.sock
        assert sock is not None
        try:
            sock.setblocking(False)  # (a socket with a timeout would wait for something to read)
            data = sock.recv(4096)
        except BlockingIOError:
            return False  # nothing to read: the peer took us
        except OSError:
            data = b""
        finally:
            try:
                sock.settimeout(SEND_TIMEOUT_S)
            except OSError:
                pass
        if len(data) > 4:
            try:
                why = orjson.loads(data[4:4 + _LEN.unpack(data[:4])[0]]).get("refused")
            except (orjson.JSONDecodeError, AttributeError, struct.error):
                why = None
            if isinstance(why, str):
                host, port = self.address
                self.transport._refused(f"peer {self.peer_id} ({host}:{port}) refused this node's "
                                        f"connection: {why[:300]}")
        self._disconnect()
        return True

    def _disconnect(self) -> None:
        if self.connected:
            now = time.monotonic()
            if now - self.connected_at >= STABLE_S:
                self.backoff = BACKOFF_MIN_S
            else:  # it did not last: the peer may be refusing us; back off as for a failed connect
                self.retry_at = now + self.backoff
                self.backoff = min(self.backoff * 2, BACKOFF_MAX_S)
        self.connected = False
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def _run(self) -> None:
        transport = self.transport
        stats = transport.stats
        while True:
            msgs = self._take()
            if msgs is None:
                break
            if self.peer_id in transport.isolated:
                stats.dropped_isolated += len(msgs)
                self._disconnect()  # an isolated peer is not connected either
                with self.cond:
                    if not transport.stopping:
                        self.cond.wait(KEEPALIVE_S)
                continue
            if self.sock is None and not self._connect():
                stats.dropped_unreachable += len(msgs)
                # wait for the back-off to pass (or for stop) before trying again
                with self.cond:
                    delay = self.retry_at - time.monotonic()
                    if delay > 0 and not transport.stopping:
                        self.cond.wait(delay)
                continue
            payload = dumps_messages(msgs)
            if len(payload) > MAX_FRAME:
                log.warning("dropping a frame of %d bytes to %s (limit %d)", len(payload), self.peer_id, MAX_FRAME)
                stats.dropped_queue_full += len(msgs)
                continue
            assert self.sock is not None
            if time.monotonic() - self.connected_at < STABLE_S and self._refusal():
                stats.dropped_unreachable += len(msgs)
                continue
            try:
                self.sock.sendall(_LEN.pack(len(payload)) + payload)
            except OSError:
                self._disconnect()
                stats.dropped_unreachable += len(msgs)
                continue
            if not msgs:
                continue  # a keepalive
            stats.frames_sent += 1
            stats.messages_sent += len(msgs)
            stats.bytes_sent += len(payload) + 4
        self._disconnect()


def _read_exact(stream: Any, n: int) -> bytes | None:
    data = stream.read(n)
    if data is None or len(data) < n:
        return None
    return bytes(data)


class Transport:
    """Raft messages between this node and its peers over TCP.

    ``deliver(msgs)`` is called from reader threads with messages addressed to this node (it
    must not block for long: the node process puts them on its loop's queue).
    """

    def __init__(self, node_id: str, cluster_id: str, addresses: dict[str, tuple[str, int]],
                 deliver: Callable[[list[Message]], None], *, groups: int = 1,
                 queue_limit: int = QUEUE_LIMIT, http_url: str | None = None) -> None:
        if node_id not in addresses:
            raise ValueError(f"{node_id!r} has no address among the peers")
        self.node_id = node_id
        self.cluster_id = cluster_id
        self.addresses = dict(addresses)
        self.deliver = deliver
        self.groups = groups
        self.queue_limit = queue_limit
        self.stats = TransportStats()
        self.stopping = False
        self.isolated: frozenset[str] = frozenset()
        self.peers = {pid: _Peer(self, pid, addr) for pid, addr in addresses.items() if pid != node_id}
        self._listener: socket.socket | None = None
        self._inbound: set[socket.socket] = set()
        self._inbound_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.last_heard: dict[str, float] = {}
        # this node's HTTP API, announced in every hello; peers' URLs as they announced them
        self.http_url = http_url
        self.peer_http: dict[str, str] = {}
        self._refusals: dict[str, tuple[float, int]] = {}  # what was refused -> (last logged, not logged since)

    # ---- life cycle ------------------------------------------------------------------------

    def start(self) -> "Transport":
        """Listen on this node's address (raises OSError if taken) and start the threads."""
        host, port = self.addresses[self.node_id]
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen(64)
        except OSError:
            sock.close()
            raise
        sock.settimeout(0.5)
        self._listener = sock
        accept = threading.Thread(target=self._accept_loop, name="raftctl-accept", daemon=True)
        accept.start()
        self._threads.append(accept)
        for peer in self.peers.values():
            peer.thread.start()
        return self

    def stop(self) -> None:
        """Close every socket and stop the threads (messages still queued are dropped)."""
        self.stopping = True
        for peer in self.peers.values():
            with peer.cond:
                peer.cond.notify_all()
        if self._listener is not None:
            try:
                self._listener.close()
            except OSError:
                pass
        with self._inbound_lock:
            inbound = list(self._inbound)
        for sock in inbound:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for peer in self.peers.values():
            if peer.thread.is_alive():
                peer.thread.join(timeout=2.0)
        for thread in self._threads:
            thread.join(timeout=2.0)

    # ---- sending ---------------------------------------------------------------------------

    def send(self, dst: str, msgs: list[Message]) -> None:
        """Queue ``msgs`` for ``dst`` (never blocks; unknown destinations are ignored)."""
        peer = self.peers.get(dst)
        if peer is not None:
            peer.put(msgs)

    def isolate(self, peers: Iterable[str]) -> list[str]:
        """Drop all traffic to and from ``peers`` from now on (an empty list heals)."""
        wanted = frozenset(peers)
        if self.node_id in wanted:
            raise ValueError(f"{self.node_id} cannot be cut off from itself; name its peers "
                             f"({', '.join(sorted(self.peers))})")
        unknown = sorted(wanted - set(self.peers))
        if unknown:
            raise ValueError(f"unknown peer(s) {', '.join(unknown)}; peers are {', '.join(sorted(self.peers))}")
        self.isolated = wanted
        return sorted(wanted)

    def peers_connected(self) -> int:
        """Peers not isolated, with a live outbound connection, that were heard from (a frame, a
        keepalive at least) within :data:`LIVENESS_S`: both directions work and the peer runs."""
        isolated = self.isolated
        heard = self.last_heard
        since = time.monotonic() - LIVENESS_S
        return sum(1 for p in self.peers.values()
                   if p.connected and p.peer_id not in isolated and heard.get(p.peer_id, -1e18) >= since)

    # ---- receiving -------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self.stopping:
            try:
                sock, _addr = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                if self.stopping:
                    break
                time.sleep(0.05)  # out of descriptors, say: do not spin
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(None)
            with self._inbound_lock:
                self._inbound.add(sock)
            thread = threading.Thread(target=self._read_loop, args=(sock,), name="raftctl-recv", daemon=True)
            thread.start()

    def _read_loop(self, sock: socket.socket) -> None:
        stats = self.stats
        stream: Any = None
        try:
            stream = sock.makefile("rb", buffering=256 * 1024)
            src = self._hello(stream, sock)
            if src is None:
                stats.bad_frames += 1
                return
            deliver = self.deliver
            me = self.node_id
            groups = self.groups
            while not self.stopping:
                head = _read_exact(stream, 4)
                if head is None:
                    return
                (length,) = _LEN.unpack(head)
                if length > MAX_FRAME:
                    stats.bad_frames += 1
                    return
                payload = _read_exact(stream, length)
                if payload is None:
                    return
                try:
                    msgs = loads_messages(payload, groups)
                except ValueError as err:
                    log.warning("bad frame from %s: %s; closing", src, err)
                    stats.bad_frames += 1
                    return
                stats.frames_received += 1
                if src in self.isolated:
                    stats.dropped_isolated += len(msgs)
                    continue
                good = [m for m in msgs if m.src == src and m.dst == me]
                if len(good) != len(msgs):
                    stats.bad_frames += 1
                self.last_heard[src] = time.monotonic()
                stats.messages_received += len(good)
                if good:
                    deliver(good)
        except OSError:
            return
        finally:
            with self._inbound_lock:
                self._inbound.discard(sock)
            # the file object holds a reference to the socket: close both, or the fd stays open
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
            try:
                sock.close()
            except OSError:
                pass

    def _hello(self, stream: Any, sock: socket.socket | None = None) -> str | None:
        head = _read_exact(stream, 4)
        if head is None:
            return None
        (length,) = _LEN.unpack(head)
        if length > 4096:
            return None
        payload = _read_exact(stream, length)
        if payload is None:
            return None
        try:
            hello = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(hello, dict) or hello.get("cluster") != self.cluster_id:
            cluster = hello.get("cluster") if isinstance(hello, dict) else None
            node = hello.get("node") if isinstance(hello, dict) else None
            self._refused(f"refused a connection from node {node!r} of cluster {cluster!r}: "
                          f"not our cluster ({self.cluster_id})")
            self._tell_refused(sock, f"{self.node_id} is of cluster {self.cluster_id}, not {cluster!r}: every "
                                     f"node needs the same --peers (ids and Raft addresses) and --cluster-token")
            return None
        src = hello.get("node")
        if not isinstance(src, str) or src not in self.peers:
            self._refused(f"refused a connection from {src!r}: not a peer")
            self._tell_refused(sock, f"{str(src)[:40]!r} is not among {self.node_id}'s --peers")
            return None
        url = hello.get("http")
        if isinstance(url, str) and url.startswith("http://") and len(url) < 200:
            self.peer_http[src] = url
        return src

    @staticmethod
    def _tell_refused(sock: socket.socket | None, why: str) -> None:
        """Tell the refused node why, in one frame ``{"refused": why}``, so that it can say so in its
        own log (``_Peer.refusal``); then let it close first (closing on its unread frames would
        reset the connection, and a reset may drop the frame before it is read)."""
        if sock is None:
            return
        note = orjson.dumps({"refused": why})
        try:
            sock.sendall(_LEN.pack(len(note)) + note)
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(REFUSED_LINGER_S)
            while sock.recv(65536):  # what it sent before it read the refusal
                pass
        except OSError:
            pass

    def _refused(self, what: str) -> None:
        """Log a refusal, the same one at most every REFUSAL_LOG_EVERY_S (a stranger retries)."""
        now = time.monotonic()
        last, quiet = self._refusals.get(what, (-1e18, 0))
        if now - last < REFUSAL_LOG_EVERY_S:
            self._refusals[what] = (last, quiet + 1)
            return
        if len(self._refusals) > 100:
            self._refusals.clear()
        self._refusals[what] = (now, 0)
        log.warning("%s%s", what, f" ({quiet} more like it since the last report)" if quiet else "")

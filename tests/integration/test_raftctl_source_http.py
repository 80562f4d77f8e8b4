"""The raftctl source's HTTP client against servers that answer oddly (no node processes)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import orjson
import pytest

from raftctl.sources.raftctl_http import RaftctlSource

REPORT = orjson.dumps({"node_id": "n1", "state": "FOLLOWER", "term": 3, "leader_id": "n2",
                       "commit_index": 7, "last_applied": 7, "log_length": 7, "peers_connected": 2})


def answer(body: bytes, status: str = "200 OK", extra: str = "") -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"{extra}\r\n").encode() + body


class OddServer:
    """Answers each request on a connection with the next of ``replies`` (bytes, sent in
    ``pieces`` writes; None: close without answering)."""

    def __init__(self, replies: list[bytes | None], pieces: int = 1) -> None:
        self.replies = list(replies)
        self.pieces = pieces
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket) -> None:
        with conn:
            buf = b""
            while self.replies:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    buf += chunk
                buf = buf.split(b"\r\n\r\n", 1)[1]
                reply = self.replies.pop(0)
                if reply is None:
                    return
                step = max(1, len(reply) // self.pieces)
                for at in range(0, len(reply), step):
                    conn.sendall(reply[at:at + step])
                if b"Connection: close" in reply:
                    return

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def serve() -> Iterator:
    servers: list[OddServer] = []

    def start(replies: list[bytes | None], pieces: int = 1) -> OddServer:
        server = OddServer(replies, pieces)
        servers.append(server)
        return server
    yield start
    for server in servers:
        server.close()


def poll_once(server: OddServer, polls: int = 1):
    with RaftctlSource({"n1": server.url}, timeout=1.0) as source:
        return [source.poll().answers["n1"] for _ in range(polls)]


def test_a_report_in_many_pieces_and_on_one_kept_alive_connection(serve) -> None:
    server = serve([answer(REPORT)] * 3, pieces=7)
    answers = poll_once(server, 3)
    assert all(a.report is not None and a.report["term"] == 3 for a in answers), answers
    assert server.connections == 1


def test_connection_close_answers_reconnect_and_a_closed_keepalive_is_retried_once(serve) -> None:
    server = serve([answer(REPORT, extra="Connection: close\r\n"), answer(REPORT), None, answer(REPORT)])
    answers = poll_once(server, 3)
    assert all(a.report is not None for a in answers), answers
    assert server.connections == 3  # a close, then one kept alive until it closed unanswered


@pytest.mark.parametrize("reply, detail", [
    (answer(b'{"error": "no"}', "404 Not Found"), "HTTP 404"),
    (answer(b"<html>hello</html>"), "did not answer JSON"),
    (answer(b'{"hello": 1}'), "not a raftctl node report"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "chunked"),
    (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", "no Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", "bad Content-Length"),
    (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "not an HTTP answer"),
    (answer(REPORT)[:-5], "closed in the middle"),
])
def test_odd_answers_are_one_clear_error(serve, reply: bytes, detail: str) -> None:
    server = serve([reply])
    [got] = poll_once(server)
    assert got.report is None and got.reason == "error" and detail in (got.detail or ""), got


def test_a_silent_server_is_a_timeout_within_the_deadline(serve) -> None:
    listener = socket.create_server(("127.0.0.1", 0))  # accepts (backlog) but never answers
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with RaftctlSource({"n1": url}, timeout=0.3) as source:
            got = source.poll().answers["n1"]
        assert got.report is None and got.reason == "timeout" and got.poll_ms is not None and got.poll_ms < 600, got
    finally:
        listener.close()


def report_at(commit: object) -> bytes:
    return answer(orjson.dumps({"node_id": "n1", "state": "LEADER", "term": 3, "leader_id": "n1",
                                "commit_index": commit, "last_applied": 7, "log_length": 7,
                                "peers_connected": 0}))


def test_without_a_load_throughput_is_the_commits_since_the_first_poll_and_never_the_history(serve) -> None:
    # a node that committed 5,000 entries before it was watched, then 40, a bad report, 10 more;
    # a restarted node reporting a lower index lowers no count
    server = serve([report_at(5000), report_at(5040), report_at("many"), report_at(5050), report_at(12)])
    with RaftctlSource({"n1": server.url}, timeout=1.0) as source:
        counts = []
        for _ in range(5):
            client = source.poll().client
            assert client is not None and client.orders_acknowledged is None and not client.latencies_ms
            counts.append(client.proposals_committed)
    assert counts == [0, 40, 40, 50, 50]


def test_a_poll_is_stamped_when_it_asked_not_when_a_stuck_node_timed_out(serve):
    """The commit counts are read as the poll starts (a live node answers in milliseconds); a
    stopped node holding the poll to its timeout must not stamp them later, or the collector
    divides a second's commits by a shorter span (3x throughput after a SIGCONT, a tester saw)."""
    import time

    quick = serve([answer(REPORT)] * 10)
    stuck = socket.create_server(("127.0.0.1", 0))  # accepts (the kernel does) and never answers
    try:
        url = f"http://127.0.0.1:{stuck.getsockname()[1]}"
        with RaftctlSource({"n1": quick.url, "n2": url}, timeout=0.4) as source:
            before = source.now
            started = time.monotonic()
            poll = source.poll()
            took = time.monotonic() - started
            assert poll.answers["n2"].reason == "timeout" and poll.answers["n1"].report is not None
            assert took >= 0.35, took
            assert poll.now - before < 0.1, (poll.now - before, took)
    finally:
        stuck.close()

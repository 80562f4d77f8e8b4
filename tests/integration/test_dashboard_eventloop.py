"""The single-threaded event loop behind DashboardServer: pipelining, split requests, idle timeout."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from dashboard_fixtures import get, monitored_cluster, wait_for
from raftctl import DashboardServer
from raftctl.dashboard import server as server_module

SEED = 91


@pytest.fixture(scope="module")
def collector():
    return monitored_cluster(SEED, warmup=2)[1]


@pytest.fixture
def server(collector):
    with DashboardServer(collector, port=0) as srv:
        yield srv


def read_responses(sock: socket.socket, count: int, deadline: float = 5.0) -> list[tuple[int, bytes]]:
    """Read `count` Content-Length framed responses -> [(status, body)]."""
    sock.settimeout(deadline)
    data = b""
    answers: list[tuple[int, bytes]] = []
    while len(answers) < count:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            lines = head.split(b"\r\n")
            length = next(int(v) for n, _, v in (line.partition(b":") for line in lines[1:]) if n.lower() == b"content-length")
            if len(rest) >= length:
                answers.append((int(lines[0].split()[1]), rest[:length]))
                data = rest[length:]
                continue
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {len(answers)} of {count} responses"
        data += chunk
    return answers


def test_pipelined_requests_are_answered_in_order(server):
    paths = ["/api/health", "/api/nonexistent", "/api/summary", "/api/health"]
    batch = b"".join(f"GET {p} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for p in paths)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(batch)
        statuses = [status for status, _ in read_responses(sock, len(paths))]
    assert statuses == [200, 404, 200, 200]


def test_request_split_into_single_bytes_with_a_small_body_keeps_the_connection(server):
    request = b"POST /api/health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    request += b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in request:
            sock.send(bytes([byte]))
        assert [s for s, _ in read_responses(sock, 2)] == [405, 200]


def test_silent_client_is_closed_after_the_idle_timeout(monkeypatch, server):
    monkeypatch.setattr(server_module, "CONNECTION_TIMEOUT", 0.3)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.settimeout(5)
        started = time.monotonic()
        assert sock.recv(1) == b""
        assert time.monotonic() - started < 4
    assert get(server.url, "/api/health")[0] == 200


def test_one_io_thread_serves_many_connections(server):
    before = threading.active_count()
    socks = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(30)]
    try:
        for sock in socks:
            sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        for sock in socks:
            assert read_responses(sock, 1)[0][0] == 200
        assert threading.active_count() == before
    finally:
        for sock in socks:
            sock.close()


def test_stop_frees_the_port_for_a_new_server(collector):
    first = DashboardServer(collector, port=0).start()
    port = first.port
    idle = socket.create_connection(("127.0.0.1", port))
    first.stop()
    assert not first.running
    try:
        with DashboardServer(collector, port=port) as second:
            assert wait_for(lambda: get(second.url, "/api/health")[0] == 200)
    finally:
        idle.close()

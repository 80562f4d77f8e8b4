"""The load generator against fake nodes on loopback: a hung leader is left soon, a slow one is not."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest

from raftctl.node.loadgen import LoadGenerator

pytestmark = pytest.mark.timeout(60)


class FakeNode:
    """``POST /api/orders``: 421 naming ``stale_leader`` until ``redirect_until``, then 200 after
    ``delay`` s; ``GET /api/status`` answers at once."""

    def __init__(self, name: str, *, delay: float = 0.0, stale_leader: str | None = None,
                 redirect_s: float = 0.0) -> None:
        self.name, self.delay, self.stale_leader = name, delay, stale_leader
        self.redirect_until = time.monotonic() + redirect_s
        self.posts = 0
        node = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def answer(self, code: int, doc: Any) -> None:
                body = orjson.dumps(doc)
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the load generator gave up on a slow answer, as it should

            def do_GET(self) -> None:
                self.answer(200, {"node_id": node.name, "state": "LEADER", "leader_id": node.name})

            def do_POST(self) -> None:
                orders = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
                node.posts += 1
                if node.stale_leader and time.monotonic() < node.redirect_until:
                    self.answer(421, {"leader": node.stale_leader, "leader_url": None})
                    return
                time.sleep(node.delay)
                self.answer(200, {"results": [{"client_id": o["client_id"], "seq": o["seq"], "index": 1}
                                              for o in orders]})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def hung_node() -> tuple[socket.socket, str]:
    """What a SIGSTOPped node is to a client: the kernel completes the handshake, nobody answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


def first_ack(load: LoadGenerator, timeout: float) -> float:
    started = time.monotonic()
    load.start()
    deadline = started + timeout
    while load.stats()["acknowledged"] == 0:
        assert time.monotonic() < deadline, f"nothing acknowledged within {timeout} s: {load.stats()}"
        time.sleep(0.01)
    return time.monotonic() - started


def test_a_hung_leader_is_given_up_soon_even_while_a_follower_still_names_it():
    hung, hung_url = hung_node()
    other = FakeNode("n2", stale_leader="n1", redirect_s=0.4)  # a follower that has not noticed yet
    load = LoadGenerator({"n1": hung_url, "n2": other.url}, workers=1, batch=1, timeout=5.0)
    try:
        took = first_ack(load, 10)
        assert took < 2.0, f"{took:.2f} s on a hung leader"
    finally:
        load.stop()
        other.close()
        hung.close()


def test_a_slow_leader_that_still_answers_its_status_is_waited_for():
    slow = FakeNode("n1", delay=1.2)
    other = FakeNode("n2", stale_leader="n1", redirect_s=3600)
    load = LoadGenerator({"n1": slow.url, "n2": other.url}, workers=1, batch=1, timeout=5.0)
    try:
        took = first_ack(load, 10)
        assert 1.1 < took < 3, took
        assert load.stats()["attempts_failed"] == 0, load.stats()  # no resend: it waited for the answer
    finally:
        load.stop()
        slow.close()
        other.close()

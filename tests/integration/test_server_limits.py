"""The dashboard server's bounded resources: request deadline, connection cap, EMFILE without spinning.

The slowloris and descriptor-limit tests run the server as a subprocess under ``ulimit -n 256``
with its real timeouts; the cap tests run it in-process with a small ``max_connections``. Every
wait is on a condition with a deadline.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from dashboard_fixtures import get, monitored_cluster, wait_for

from raftctl import DashboardServer

SEED = 17
HERE = Path(__file__).resolve().parent
FD_LIMIT = 256
SLOWLORIS_SOCKETS = 300

# A DashboardServer over a small simulated cluster; commands on stdin: "hog" takes every free
# file descriptor, "release" gives them back, "stats" prints the server's counters. Each command
# answers one JSON line on stdout.
SERVER_SCRIPT = r"""
import json, os, sys
sys.path.insert(0, sys.argv[1])
from dashboard_fixtures import monitored_cluster
from raftctl import DashboardServer

_, collector = monitored_cluster(int(sys.argv[2]), node_count=3, warmup=2)
server = DashboardServer(collector, port=0).start()
stats = getattr(server, "stats", dict)
print(json.dumps({"port": server.port}), flush=True)
hog = []
for line in sys.stdin:
    command = line.strip()
    if command == "hog":
        try:
            while True:
                hog.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        print(json.dumps({"hogged": len(hog)}), flush=True)
    elif command == "release":
        for fd in hog:
            os.close(fd)
        hog.clear()
        print(json.dumps({"released": True}), flush=True)
    elif command == "stats":
        print(json.dumps(stats()), flush=True)
server.stop()
"""


class ServerProcess:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            ["bash", "-c", f'ulimit -n {FD_LIMIT} && exec "$0" -c "$1" "$2" "$3"',
             sys.executable, SERVER_SCRIPT, str(HERE), str(SEED)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert self.proc.stdin and self.proc.stdout and self.proc.stderr
        self.stdin, self.stdout, self.stderr = self.proc.stdin, self.proc.stdout, self.proc.stderr
        self.port = self.command(None, timeout=30)["port"]
        self.url = f"http://127.0.0.1:{self.port}"

    def command(self, text: str | None, timeout: float = 10) -> dict:
        if text is not None:
            self.stdin.write(text + "\n")
            self.stdin.flush()
        # the server answers one line per command; a dead process shows as an empty read
        import selectors

        with selectors.DefaultSelector() as sel:
            sel.register(self.stdout, selectors.EVENT_READ)
            assert sel.select(timeout), f"server process did not answer {text!r} within {timeout} s"
        line = self.stdout.readline()
        assert line, f"server process exited: {self.stderr.read()[-2000:]}"
        return json.loads(line)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> str:
        try:
            self.stdin.close()
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        return self.stderr.read()


@pytest.fixture(scope="module")
def limited_server():
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc to read the server's CPU time")
    server = ServerProcess()
    try:
        yield server
    finally:
        stderr = server.close()
    # every refusal is one log line, rate limited: no tracebacks even under this abuse
    assert "Traceback" not in stderr, stderr[-3000:]


def health_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        return get(url, "/api/health", timeout=timeout)[0] == 200
    except OSError:
        return False


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed (or reset) the socket; never blocks."""
    sock.setblocking(False)
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def open_slowloris(port: int, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"G")
        socks.append(sock)
    return socks


def test_health_answers_while_300_slowloris_sockets_are_open_under_ulimit_256(limited_server):
    port = limited_server.port
    attackers = open_slowloris(port, SLOWLORIS_SOCKETS)
    try:
        cpu_before, wall_before = limited_server.cpu_seconds(), time.monotonic()
        answered = 0
        for _ in range(10):
            # keep 300 open: whatever the server closed to make room comes straight back
            for i, sock in enumerate(attackers):
                if closed_by_server(sock):
                    sock.close()
                    attackers[i] = open_slowloris(port, 1)[0]
            answered += health_ok(limited_server.url)
            time.sleep(0.3)  # spreads the ten checks over ~3 s, so the CPU figure is not a 10 ms sample
        cpu = (limited_server.cpu_seconds() - cpu_before) / (time.monotonic() - wall_before)
        stats = limited_server.command("stats")
    finally:
        for sock in attackers:
            sock.close()
    figures = f"/api/health answered {answered} of 10 times, server CPU {cpu:.0%} of a core; stats {stats}"
    print(figures)
    assert answered == 10 and cpu < 0.5, figures
    assert stats["max_connections"] < FD_LIMIT and stats["connections_evicted"] > 0, stats


def test_a_slowloris_trickling_a_byte_every_5_s_is_cut_by_the_request_deadline(limited_server):
    # the real REQUEST_TIMEOUT (10 s): the idle timeout (10 s) alone never fires at one byte per 5 s
    assert wait_for(lambda: limited_server.command("stats").get("connections_open", 0) == 0, timeout=15)
    request = b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
    socks = open_slowloris(limited_server.port, 20)
    started = time.monotonic()
    answers: dict[int, bytes] = {}
    try:
        position, next_byte_at = 1, started + 5.0
        while len(answers) < len(socks) and time.monotonic() - started < 20:
            for i, sock in enumerate(socks):
                if i in answers:
                    continue
                sock.setblocking(False)
                try:
                    answers[i] = sock.recv(65536)
                except BlockingIOError:
                    pass
                except OSError:
                    answers[i] = b""
            if time.monotonic() >= next_byte_at:  # one more byte on every open socket, every 5 s
                for i, sock in enumerate(socks):
                    if i not in answers:
                        try:
                            sock.send(request[position : position + 1])
                        except OSError:
                            answers[i] = b""
                position, next_byte_at = position + 1, next_byte_at + 5.0
            time.sleep(0.05)  # polling interval of this loop, which has its own 20 s deadline
        elapsed = time.monotonic() - started
    finally:
        for sock in socks:
            sock.close()
    print(f"{len(answers)} of {len(socks)} slowloris sockets cut after {elapsed:.1f} s")
    assert len(answers) == len(socks), f"{len(socks) - len(answers)} slowloris sockets still open after {elapsed:.1f} s"
    assert 9.0 <= elapsed <= 15.0, elapsed
    for data in answers.values():
        assert data.startswith(b"HTTP/1.1 408 "), data[:200]
        body = orjson.loads(data.partition(b"\r\n\r\n")[2])
        assert body["status"] == 408 and "10 s" in body["error"]
    assert limited_server.command("stats")["request_timeouts"] >= len(socks)


def test_a_request_that_stops_half_way_gets_a_408_not_a_silent_close(limited_server):
    # a request line or head begun and then silence: the client is told why (as Apache does),
    # after the real 10 s; a connection idle between requests is still closed without a word
    assert wait_for(lambda: limited_server.command("stats").get("connections_open", 0) == 0, timeout=15)
    halves = [b"GET /api/sum", b"GET /api/summary HTTP/1.1\r\nHost: x\r\n"]
    socks = []
    for half in halves:
        sock = socket.create_connection(("127.0.0.1", limited_server.port), timeout=20)
        sock.sendall(half)
        socks.append(sock)
    idle = socket.create_connection(("127.0.0.1", limited_server.port), timeout=20)
    # a request answered on its head whose (ignored) body never all arrives: that one answer
    # only, then the close; a 408 after it would be a second answer to one request
    bodied = socket.create_connection(("127.0.0.1", limited_server.port), timeout=20)
    bodied.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    started = time.monotonic()
    try:
        for sock in socks:
            data = b""
            while (chunk := sock.recv(65536)):
                data += chunk
            assert data.startswith(b"HTTP/1.1 408 "), data[:200]
            assert orjson.loads(data.partition(b"\r\n\r\n")[2])["status"] == 408
        assert idle.recv(65536) == b""  # nothing begun: closed, no answer
        data = b""
        while (chunk := bodied.recv(65536)):
            data += chunk
        assert data.startswith(b"HTTP/1.1 200 ") and data.count(b"HTTP/1.1 ") == 1, data[:400]
        elapsed = time.monotonic() - started
    finally:
        for sock in (*socks, idle, bodied):
            sock.close()
    assert 9.0 <= elapsed <= 15.0, elapsed


def test_out_of_descriptors_pauses_accept_instead_of_spinning_and_recovers(limited_server):
    assert wait_for(lambda: limited_server.command("stats").get("connections_open", 0) == 0, timeout=15)
    hogged = limited_server.command("hog")["hogged"]
    assert hogged > 100
    waiting = []
    try:
        # the kernel queues these in the listen backlog; accept() in the server fails with EMFILE
        waiting = [socket.create_connection(("127.0.0.1", limited_server.port), timeout=5) for _ in range(20)]
        for sock in waiting:
            sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        cpu_before, wall_before = limited_server.cpu_seconds(), time.monotonic()
        time.sleep(2.0)  # measuring CPU use over a fixed window, not waiting for an event
        cpu = (limited_server.cpu_seconds() - cpu_before) / (time.monotonic() - wall_before)
        stats = limited_server.command("stats")
    finally:
        limited_server.command("release")
    try:
        print(f"server CPU {cpu:.0%} of a core while out of descriptors; stats {stats}")
        assert cpu < 0.2, f"server used {cpu:.0%} of a core while out of descriptors (spinning)"
        assert stats["accept_pauses"] >= 1, stats
        # once descriptors are free again, the queued clients are answered and new ones too
        for sock in waiting:
            sock.settimeout(5)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        assert health_ok(limited_server.url)
    finally:
        for sock in waiting:
            sock.close()


# ---- in-process: the connection cap ----------------------------------------------------------------


@pytest.fixture(scope="module")
def collector():
    return monitored_cluster(SEED, warmup=2)[1]


def read_answer(sock: socket.socket, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_the_oldest_idle_connection_makes_room_for_a_new_one(collector):
    with DashboardServer(collector, port=0, max_connections=8) as server:
        socks = []
        try:
            for i in range(8):
                sock = socket.create_connection(("127.0.0.1", server.port))
                if i != 3:  # seven keep-alive connections idle after one answer; one that never sent a byte
                    sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
                    assert read_answer(sock).startswith(b"HTTP/1.1 200 ")
                socks.append(sock)
            assert wait_for(lambda: server.stats()["connections_open"] == 8)
            for victim in (0, 1):  # two newcomers that stay connected, each taking one slot
                newcomer = socket.create_connection(("127.0.0.1", server.port))
                newcomer.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
                assert read_answer(newcomer).startswith(b"HTTP/1.1 200 ")
                socks.append(newcomer)
                evicted = socks[victim]
                assert wait_for(lambda: closed_by_server(evicted))  # noqa: B023 - used at once
                assert not any(closed_by_server(sock) for sock in socks[victim + 1 :])
            # the idle keep-alive ones went first, not the one that has sent nothing yet
            assert not closed_by_server(socks[3])
            assert server.stats()["connections_evicted"] == 2
            assert server.stats()["connections_open"] == 8
        finally:
            for sock in socks:
                sock.close()


def test_when_all_are_unfinished_requests_the_oldest_gets_503(collector):
    with DashboardServer(collector, port=0, max_connections=8) as server:
        partial = []
        try:
            for _ in range(8):
                sock = socket.create_connection(("127.0.0.1", server.port))
                sock.sendall(b"GET /api/health HTTP/1.1\r\n")
                partial.append(sock)
                time.sleep(0.01)  # distinct start times, so "oldest" is well defined
            assert wait_for(lambda: server.stats()["connections_open"] == 8)
            assert health_ok(server.url)
            answer = read_answer(partial[0])
            assert answer.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1" in answer, answer
            assert not any(closed_by_server(sock) for sock in partial[2:])
        finally:
            for sock in partial:
                sock.close()


def test_new_connections_get_503_when_every_slot_is_busy_answering(collector):
    with DashboardServer(collector, port=0, max_connections=4) as server:
        busy = []
        try:
            for _ in range(4):
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.connect(("127.0.0.1", server.port))
                # far more answer than the socket buffers hold, never read: output stays pending
                sock.sendall(b"GET /static/app.js HTTP/1.1\r\nHost: x\r\n\r\n" * 1000)
                busy.append(sock)
            for sock in busy:  # a first answer byte has arrived on each (peeked, not read): all are being answered
                sock.settimeout(5)
                assert sock.recv(1, socket.MSG_PEEK) == b"H"
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as extra:
                extra.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = read_answer(extra)
            assert answer.startswith(b"HTTP/1.1 503 "), answer[:200]
            assert server.stats()["connections_refused"] >= 1
        finally:
            for sock in busy:
                sock.close()
        assert wait_for(lambda: health_ok(server.url))


def test_a_slow_but_steady_request_inside_the_deadline_is_answered(collector):
    with DashboardServer(collector, port=0) as server, socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n":
            sock.send(bytes([byte]))
            time.sleep(0.02)  # pacing the client's bytes, not waiting for the server
        assert read_answer(sock).startswith(b"HTTP/1.1 200 ")


def test_the_connection_cap_stays_below_the_descriptor_limit():
    import resource

    from raftctl.dashboard.server import MAX_CONNECTIONS, connection_limit

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = connection_limit()
    assert 4 <= limit <= MAX_CONNECTIONS
    if soft != resource.RLIM_INFINITY:
        assert limit < soft
    assert connection_limit(10) == min(10, limit)
    with pytest.raises(ValueError, match="max_connections"):
        DashboardServer(object(), max_connections=0)

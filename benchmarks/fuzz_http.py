"""Send seeded malformed HTTP/1.1 requests to the dashboard server; print how each kind was answered.

    .venv/bin/python benchmarks/fuzz_http.py [--count 2000] [--seed 16] [--url http://127.0.0.1:8080]

Without ``--url`` it starts its own DashboardServer over a small simulated cluster (in this process,
bound to 127.0.0.1) and also counts what the server logged. Every request is built to break
RFC 9112 in one way (a kind): non-ASCII or conflicting Content-Length, control characters in a
field, obsolete folding, a bad request line or version, a missing or doubled Host, a
Transfer-Encoding not ending in chunked, oversized lines, random bytes. A third of them are
pipelined behind a valid request, whose 200 must still come first. Each is sent on a fresh
connection; the expected answer is one 4xx JSON error followed by the server closing the
connection. At the end /api/health must still answer. Exit code 0 when every request got that.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable

VALID = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: fuzz\r\nAccept: */*\r\n\r\n"
CONTROL = [bytes([c]) for c in list(range(0x09)) + list(range(0x0B, 0x20)) + [0x7F]]  # not HTAB, not LF
NOT_TOKEN = [b" ", b"(", b")", b",", b"/", b";", b"<", b"=", b">", b"?", b"@", b"[", b"\\", b"]",
             b"{", b"}", b'"', b"\x00", b"\x7f", b"\xe9", b"\t"]
BAD_LENGTHS = [b"\xb2", b"\xb3", b"\xb9", "\u0663".encode(), "\uff18".encode(), b"+5", b"-5", b"5 5", b"0x5",
               b"5.0", b"1_0", b"", b"five", b"5e1", b"\xef\xbc\x95", b"5,", b"5;q=1", b"\t", b"0\x00"]
BAD_VERSIONS = [b"HTTP/2.0", b"HTTP/1", b"http/1.1", b"HTTP/1.1x", b"HTTP/11", b"HTTP/1.1 ", b"HTCPCP/1.0",
                b"HTTP/0.9", b"HTTP/1.\xb9"]


def build(rng: random.Random, kind: str) -> bytes:
    """One request that violates RFC 9112 in the way ``kind`` names."""
    host = b"Host: 127.0.0.1\r\n"
    if kind == "content_length_not_ascii_digits":
        return b"GET /api/health HTTP/1.1\r\n" + host + b"Content-Length: " + rng.choice(BAD_LENGTHS) + b"\r\n\r\n"
    if kind == "content_length_conflict":
        a = rng.randrange(0, 50)
        b = a + rng.randrange(1, 50)
        if rng.random() < 0.5:
            lines = b"Content-Length: %d\r\nContent-Length: %d\r\n" % (a, b)
        else:
            lines = b"Content-Length: %d, %d\r\n" % (a, b)
        return b"POST /api/health HTTP/1.1\r\n" + host + lines + b"\r\n" + b"x" * a
    if kind == "control_char_in_value":
        value = bytearray(b"raftctl-fuzz-value")
        value.insert(rng.randrange(0, len(value) + 1), rng.choice(CONTROL)[0])
        name = rng.choice([b"User-Agent", b"Accept", b"X-Test", b"Host", b"Cookie"])
        extra = b"" if name == b"Host" else host
        return b"GET /api/health HTTP/1.1\r\n" + extra + name + b": " + bytes(value) + b"\r\n\r\n"
    if kind == "bad_char_in_name":
        field_name = bytearray(b"X-Fuzz-Name")
        field_name.insert(rng.randrange(1, len(field_name)), rng.choice(NOT_TOKEN)[0])
        return b"GET /api/health HTTP/1.1\r\n" + host + bytes(field_name) + b": 1\r\n\r\n"
    if kind == "obsolete_line_folding":
        return b"GET /api/health HTTP/1.1\r\n" + host + b"X-Long: a\r\n" + rng.choice([b" ", b"\t"]) + b"b\r\n\r\n"
    if kind == "bad_request_line":
        choices = [
            b"GET  /api/health HTTP/1.1", b"GET /api/health", b"GET /api/health HTTP/1.1 extra",
            b"G\xe9T /api/health HTTP/1.1", b"GET /api/he alth HTTP/1.1", b"GET /api/\x00health HTTP/1.1",
            b"GET /api/\xe9 HTTP/1.1", b" GET /api/health HTTP/1.1", b"GET\t/api/health\tHTTP/1.1",
            b"GET /api/health\rHTTP/1.1", b"/api/health HTTP/1.1", b"GET",
        ]
        return rng.choice(choices) + b"\r\n" + host + b"\r\n"
    if kind == "bad_version":
        return b"GET /api/health " + rng.choice(BAD_VERSIONS) + b"\r\n" + host + b"\r\n"
    if kind == "host_missing_or_doubled":
        if rng.random() < 0.5:
            return b"GET /api/health HTTP/1.1\r\nAccept: */*\r\n\r\n"
        return b"GET /api/health HTTP/1.1\r\n" + host + b"Host: example.org\r\n\r\n"
    if kind == "transfer_encoding_not_chunked":
        coding = rng.choice([b"gzip", b"identity", b"chunked, gzip", b"x-fuzz", b","])
        return b"POST /api/health HTTP/1.1\r\n" + host + b"Transfer-Encoding: " + coding + b"\r\n\r\n"
    if kind == "absolute_form_bad_authority":
        target = rng.choice([b"ftp://x/api/health", b"http:///api/health", b"http://u:p@x/api/health",
                             b"gopher://x/"])
        return b"GET " + target + b" HTTP/1.1\r\n" + host + b"\r\n"
    if kind == "oversized":
        which = rng.randrange(3)
        if which == 0:
            return b"GET /api/summary?" + b"a" * rng.randrange(8200, 20000) + b" HTTP/1.1\r\n" + host + b"\r\n"
        if which == 1:
            return b"GET /api/health HTTP/1.1\r\n" + host + b"X-Big: " + b"a" * rng.randrange(16400, 30000) + b"\r\n\r\n"
        many = b"".join(b"X-H%d: 1\r\n" % i for i in range(101 + rng.randrange(50)))
        return b"GET /api/health HTTP/1.1\r\n" + host + many + b"\r\n"
    if kind == "random_bytes":
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        return b"\x01" + junk.replace(b"\n", b"") + b"\r\n\r\n"  # a leading control byte: never a method
    raise ValueError(kind)


KINDS = ["content_length_not_ascii_digits", "content_length_conflict", "control_char_in_value", "bad_char_in_name",
         "obsolete_line_folding", "bad_request_line", "bad_version", "host_missing_or_doubled",
         "transfer_encoding_not_chunked", "absolute_form_bad_authority", "oversized", "random_bytes"]


def exchange(port: int, data: bytes, timeout: float) -> tuple[list[tuple[int, bool]], str]:
    """Send ``data``; read until the server closes -> ([(status, is_json_error)], how it ended)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except OSError:
            pass  # the server may close on the first bad line while we are still sending
        received = b""
        ended = "closed"
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                ended = "still open"
                break
            except OSError:
                ended = "reset"
                break
            if not chunk:
                break
            received += chunk
    answers = []
    while received:
        head, sep, rest = received.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.split(b"\r\n")
        try:
            status = int(lines[0].split(b" ")[1])
            length = next(int(v) for n, _, v in (line.partition(b":") for line in lines[1:])
                          if n.strip().lower() == b"content-length")
        except (IndexError, ValueError, StopIteration):
            break
        body = rest[:length]
        is_json_error = False
        try:
            doc = json.loads(body)
            is_json_error = isinstance(doc, dict) and doc.get("status") == status and bool(doc.get("error"))
        except ValueError:
            pass
        answers.append((status, is_json_error))
        received = rest[length:]
    return answers, ended


def classify(answers: list[tuple[int, bool]], ended: str, pipelined: bool) -> str:
    expected_prefix = [(200, False)] if pipelined else []
    if pipelined and answers[:1] != [(200, False)]:
        return "pipelined request before it lost its answer"
    rest = answers[len(expected_prefix):]
    if not rest:
        return "no answer" if ended != "still open" else "no answer, connection left open"
    status, is_json = rest[0]
    if status >= 500:
        return f"server error {status}"
    if not 400 <= status < 500:
        return f"accepted ({status})"
    if not is_json:
        return f"{status} without a JSON error body"
    if len(rest) > 1:
        return f"{status} then more answers"
    if ended == "still open":
        return f"{status} JSON, connection left open"
    return f"{status} JSON error, then closed"


class _LogCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines = 0
        self.tracebacks = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.lines += 1
            if record.exc_info:
                self.tracebacks += 1


def _own_server() -> tuple[int, Callable[[], None], _LogCounter, object]:
    from raftctl import Cluster, DashboardServer, MetricsCollector, Workload

    counter = _LogCounter()
    logger = logging.getLogger("raftctl")
    logger.addHandler(counter)
    logger.setLevel(logging.WARNING)
    logger.propagate = False  # counted, not printed
    cluster = Cluster(node_count=3, seed=16)
    Workload(cluster, rate=50.0, seed=16)
    collector = MetricsCollector(collection_interval=1.0, retention_period=60)
    collector.set_cluster(cluster)
    cluster.run_until(lambda: cluster.leader_id is not None, timeout=10.0)
    for _ in range(3):
        cluster.run_for(1.0)
        collector.collect()
    server = DashboardServer(collector, port=0).start()
    return server.port, server.stop, counter, server


def _nothing() -> None:
    pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="malformed requests to send (default 2000)")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--url", help="an already running server on 127.0.0.1 (default: start one here)")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for each answer")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    if not 1 <= args.count <= 100_000:
        parser.error("--count must be between 1 and 100000")

    counter = None
    server = None
    stop: Callable[[], None] = _nothing
    if args.url:
        host, _, port_text = args.url.removeprefix("http://").rstrip("/").rpartition(":")
        if host not in ("127.0.0.1", "localhost"):
            parser.error("--url must be a server on 127.0.0.1")
        port = int(port_text)
    else:
        port, stop, counter, server = _own_server()

    rng = random.Random(args.seed)
    outcomes: Counter[str] = Counter()
    by_kind: dict[str, Counter[str]] = {kind: Counter() for kind in KINDS}
    examples: dict[str, bytes] = {}
    pipelined_count = 0
    started = time.monotonic()
    try:
        for i in range(args.count):
            kind = KINDS[i % len(KINDS)]
            data = build(rng, kind)
            pipelined = rng.random() < 1 / 3
            pipelined_count += pipelined
            answers, ended = exchange(port, (VALID if pipelined else b"") + data, args.timeout)
            outcome = classify(answers, ended, pipelined)
            outcomes[outcome] += 1
            by_kind[kind][outcome] += 1
            if not outcome.endswith("JSON error, then closed"):
                examples.setdefault(outcome, data[:120])
        elapsed = time.monotonic() - started
        try:
            health = exchange(port, VALID.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"), 5.0)[0]
            health_status = health[0][0] if health else None
        except OSError:
            health_status = None
        stats = getattr(server, "stats", lambda: None)()
    finally:
        stop()

    good = sum(n for outcome, n in outcomes.items() if outcome.endswith("JSON error, then closed"))
    figures = {
        "sent": args.count,
        "pipelined_behind_a_valid_request": pipelined_count,
        "answered_4xx_json_then_closed": good,
        "outcomes": dict(outcomes.most_common()),
        "health_after": health_status,
        "seconds": round(elapsed, 2),
    }
    if counter is not None:
        figures["server_log_lines"] = counter.lines
        figures["server_log_tracebacks"] = counter.tracebacks
    if stats is not None:
        figures["server_stats"] = stats
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"sent {args.count} malformed requests ({pipelined_count} pipelined behind a valid one) "
              f"in {elapsed:.1f} s, seed {args.seed}")
        for outcome, n in outcomes.most_common():
            print(f"  {n:6d}  {outcome}")
        print("by kind:")
        for kind in KINDS:
            row = ", ".join(f"{n} {outcome}" for outcome, n in by_kind[kind].most_common())
            print(f"  {kind:32s} {row}")
        for outcome, data in examples.items():
            print(f"  e.g. {outcome}: {data!r}")
        if counter is not None:
            print(f"server log: {counter.lines} lines at WARNING or above, {counter.tracebacks} with a traceback")
        print(f"/api/health afterwards: {health_status}")
    return 0 if good == args.count and health_status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())

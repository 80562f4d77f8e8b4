"""What one node's answer to the raftctl source costs, beside bare clients, in one run.

Usage: .venv/bin/python benchmarks/bench_node_poll.py [RATE]   (orders/s of load, default 100)

Starts 3 `raftctl node` processes (raftctl/node/launcher.py) with a paced load generator and
prints, per round (3 rounds of 200 polls, 5 ms apart), the median ms per node of: the source
polling all three nodes at once (``NodeAnswer.poll_ms``), node1's answer alone in such a poll
(given node1's URL only: the source learns the others from it), a bare
``http.client`` GET /api/status loop on that node, and a bare socket loop (the floor).
"""

import http.client
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_durable import free_base_port  # noqa: E402

from raftctl.node.launcher import ClusterLauncher, layout  # noqa: E402
from raftctl.node.loadgen import LoadGenerator  # noqa: E402
from raftctl.sources import build_source  # noqa: E402


def med(values: list[float]) -> str:
    return f"{statistics.median(values):.3f}"


def source_costs(spec: str, polls: int, only: str | None = None) -> list[float]:
    """Per-node answer times (ms) of ``polls`` source polls; ``only``: that node's answers alone."""
    source = build_source(spec, timeout=0.5)
    costs: list[float] = []
    try:
        for _ in range(polls):
            costs += [a.poll_ms for nid, a in source.poll().answers.items()
                      if a.poll_ms is not None and (only is None or nid == only)]
            time.sleep(0.005)
    finally:
        source.close()
    return costs


def http_client_costs(host: str, port: int, polls: int) -> list[float]:
    conn = http.client.HTTPConnection(host, port, timeout=2)
    costs: list[float] = []
    try:
        for _ in range(polls):
            started = time.perf_counter()
            conn.request("GET", "/api/status")
            conn.getresponse().read()
            costs.append((time.perf_counter() - started) * 1000)
            time.sleep(0.005)
    finally:
        conn.close()
    return costs


def socket_costs(host: str, port: int, polls: int) -> list[float]:
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    request = b"GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n"
    costs: list[float] = []
    try:
        for _ in range(polls):
            started = time.perf_counter()
            sock.sendall(request)
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += sock.recv(65536)
            head, _, body = buf.partition(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length"))
            while len(body) < length:
                body += sock.recv(65536)
            costs.append((time.perf_counter() - started) * 1000)
            time.sleep(0.005)
    finally:
        sock.close()
    return costs


def main() -> None:
    rate = float(sys.argv[1]) if len(sys.argv) > 1 else 100.0
    root = Path(tempfile.mkdtemp(prefix="bench-node-poll-"))
    launcher = ClusterLauncher(layout(3, root, free_base_port(), fast=True), root)
    try:
        launcher.start_all()
        if launcher.wait_leader(30) is None:
            raise SystemExit("no leader")
        urls = {node_id: spec.url for node_id, spec in launcher.specs.items()}
        gen = LoadGenerator(urls, rate=rate, workers=2, batch=1).start()
        time.sleep(1.0)
        host, port = urls["node1"].removeprefix("http://").split(":")
        print(f"3 nodes at {rate:g} orders/s; median ms per node answer, 200 polls each")
        for _ in range(3):
            every = source_costs("raftctl:" + ",".join(f"{k}={v}" for k, v in urls.items()), 200)
            # the source watches the whole membership whatever URLs it is given (it learns the
            # rest from the answers), so "one node" is node1's answer within the same kind of poll
            one = source_costs("raftctl:node1=" + urls["node1"], 200, only="node1")
            bare = http_client_costs(host, int(port), 200)
            floor = socket_costs(host, int(port), 200)
            print(f"source, all nodes at once {med(every)} | source, node1's answer {med(one)} | "
                  f"bare http.client {med(bare)} | bare socket {med(floor)}", flush=True)
        gen.stop()
    finally:
        launcher.close()


if __name__ == "__main__":
    main()

"""Load-test the dashboard API next to a bare stdlib ThreadingHTTPServer; print latency figures.

    .venv/bin/python benchmarks/bench_dashboard.py [--seconds 10] [--connections 50]

Each server runs in its own process; the load generator spreads keep-alive connections over
several client processes (threads + http.client) so the client's GIL is not what is measured.
The servers are measured one after the other in the same run, so they never share the CPUs.
Targets: /api/summary p99 <= 5 ms and >= 0.8x the bare server's req/s;
/api/metrics/history?duration=300 p99 <= 20 ms.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import os
import socket
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SEED = 7


def _serve_raftctl(port_queue, stop_event) -> None:
    from raftctl import Cluster, DashboardServer, MetricsCollector, Workload

    cluster = Cluster(node_count=5, seed=SEED)
    Workload(cluster, rate=200.0, seed=SEED)
    collector = MetricsCollector(collection_interval=1.0, retention_period=300)
    collector.set_cluster(cluster)
    for _ in range(310):  # a full retention window of history
        cluster.run_for(1.0)
        collector.collect()
    server = DashboardServer(collector, port=0).start()
    port_queue.put((server.port, len(collector.latest_bytes())))
    stop_event.wait()
    server.stop()


def _serve_bare(port_queue, stop_event, body_size) -> None:
    # The strictest stdlib baseline: the whole response prebuilt and written in one send, with
    # TCP_NODELAY. (send_response + a separate body write would hit Nagle / delayed-ACK stalls
    # and make any comparison meaningless.)
    body = b"x" * body_size
    response = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self):
            self.wfile.write(response)

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128

    httpd = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port_queue.put((httpd.server_address[1], body_size))
    stop_event.wait()
    httpd.shutdown()
    httpd.server_close()


def _client_process(port, path, connections, seconds, start_at, result_queue) -> None:
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections

    def worker(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.time() < start_at:
            time.sleep(0.001)
        deadline = start_at + seconds
        own = latencies[index]
        while True:
            began = time.perf_counter()
            if time.time() >= deadline:
                break
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    errors[index] += 1
            except (OSError, http.client.HTTPException):
                errors[index] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                continue
            own.append(time.perf_counter() - began)
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result_queue.put(([x for own in latencies for x in own], sum(errors)))


def load(port: int, path: str, connections: int, seconds: float, processes: int) -> dict:
    """Run ``connections`` keep-alive clients for ``seconds``; return throughput and percentiles."""
    result_queue: mp.Queue = mp.Queue()
    start_at = time.time() + 1.0
    per_process = [connections // processes + (1 if i < connections % processes else 0) for i in range(processes)]
    clients = [
        mp.Process(target=_client_process, args=(port, path, count, seconds, start_at, result_queue))
        for count in per_process
        if count
    ]
    for client in clients:
        client.start()
    latencies: list[float] = []
    errors = 0
    for _ in clients:
        values, errs = result_queue.get()
        latencies.extend(values)
        errors += errs
    for client in clients:
        client.join()
    latencies.sort()
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else [float("nan")] * 99
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / seconds,
        "p50_ms": quantiles[49] * 1000,
        "p99_ms": quantiles[98] * 1000,
    }


def start_server(target, *args):
    port_queue: mp.Queue = mp.Queue()
    stop_event = mp.Event()
    process = mp.Process(target=target, args=(port_queue, stop_event, *args), daemon=True)
    process.start()
    port, size = port_queue.get(timeout=120)
    return process, stop_event, port, size


def stop_server(process, stop_event) -> None:
    stop_event.set()
    process.join(timeout=10)


def fmt(name: str, result: dict) -> str:
    return (
        f"{name:<38} {result['rps']:>9.0f} req/s   p50 {result['p50_ms']:6.2f} ms   "
        f"p99 {result['p99_ms']:6.2f} ms   ({result['requests']} requests, {result['errors']} errors)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="load duration per scenario")
    parser.add_argument("--connections", type=int, default=50, help="concurrent keep-alive connections")
    parser.add_argument("--client-processes", type=int, default=max(2, min(5, os.cpu_count() or 2)))
    args = parser.parse_args()
    if args.seconds <= 0 or args.connections < 1 or args.client_processes < 1:
        parser.error("--seconds must be > 0, --connections and --client-processes >= 1")

    print(f"{args.connections} keep-alive connections, {args.seconds:g} s per scenario, "
          f"{args.client_processes} client processes, {os.cpu_count()} CPUs", flush=True)
    ours, ours_stop, ours_port, body_size = start_server(_serve_raftctl)
    try:
        summary = load(ours_port, "/api/summary", args.connections, args.seconds, args.client_processes)
        history = load(
            ours_port, "/api/metrics/history?duration=300", args.connections, args.seconds, args.client_processes
        )
        # One connection: the service time itself, without 50-deep queueing in front of it.
        summary_single = load(ours_port, "/api/summary", 1, args.seconds / 2, 1)
        history_single = load(ours_port, "/api/metrics/history?duration=300", 1, args.seconds / 2, 1)
    finally:
        stop_server(ours, ours_stop)
    bare, bare_stop, bare_port, _ = start_server(_serve_bare, body_size)
    try:
        baseline = load(bare_port, "/", args.connections, args.seconds, args.client_processes)
    finally:
        stop_server(bare, bare_stop)

    print(fmt("raftctl GET /api/summary", summary))
    print(fmt(f"bare ThreadingHTTPServer ({body_size} B body)", baseline))
    print(fmt("raftctl GET /api/metrics/history?d=300", history))
    print(fmt("raftctl GET /api/summary, 1 conn", summary_single))
    print(fmt("raftctl GET /api/metrics/history, 1 conn", history_single))
    # Closed loop: with N connections, mean latency = N / throughput (Little's law), so at 50
    # connections the p99 measures queueing behind the GIL as much as the server's own work.
    ratio = summary["rps"] / baseline["rps"] if baseline["rps"] else float("nan")
    print(f"throughput ratio raftctl/bare: {ratio:.2f}x (target >= 0.8x)")
    print(f"/api/summary p99: {summary['p99_ms']:.2f} ms (target <= 5 ms)")
    print(f"/api/metrics/history?duration=300 p99: {history['p99_ms']:.2f} ms at {args.connections} connections, "
          f"{history_single['p99_ms']:.2f} ms on one connection (target <= 20 ms)")
    print(f"little's law floor at {args.connections} connections: "
          f"{args.connections / summary['rps'] * 1000:.2f} ms mean for /api/summary")
    return 0


if __name__ == "__main__":
    sys.exit(main())

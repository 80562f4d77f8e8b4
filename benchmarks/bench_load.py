"""The dashboard under 200 concurrent clients while the collector samples a paced cluster.

Usage: .venv/bin/python benchmarks/bench_load.py [--seconds 60] [--clients 200] [--procs 2]
       [--interval 1.0] [--tracemalloc]

The server, the collector (1 s interval, wall clock) and the cluster (paced at real time, a
trading load on) run in this process; the clients run in ``--procs`` load-generator processes
(threads with keep-alive connections, rotating over /api/summary, /api/health, /metrics,
/api/alerts and /api/metrics/history?duration=60). Prints errors, requests/s, p50/p99 latency,
the collector's interval jitter (max |interval - 1.0 s|) and memory (RSS, and tracemalloc with
``--tracemalloc``) after warm-up vs at the end.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import sys
import threading
import time
import tracemalloc

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from raftctl import Cluster, DashboardServer, MetricsCollector, Workload  # noqa: E402

PATHS = ("/api/summary", "/api/health", "/metrics", "/api/alerts", "/api/metrics/history?duration=60")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(fraction * len(ordered) + 0.5) - 1))]


def client_proc(port: int, threads: int, seconds: float, start_at: float, queue) -> None:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        mine: list[float] = []
        conn = None
        j = i
        while time.time() < start_at:
            time.sleep(0.001)
        deadline = start_at + seconds
        while time.time() < deadline:
            path = PATHS[j % len(PATHS)]
            j += 1
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                t0 = time.perf_counter()
                conn.request("GET", path)
                response = conn.getresponse()
                body = response.read()
                mine.append(time.perf_counter() - t0)
                if response.status not in (200, 503) or not body:
                    raise RuntimeError(f"{path} -> HTTP {response.status}")
            except Exception as exc:
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    queue.put((latencies, errors))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--rate", type=float, default=100.0, help="orders per second")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--switch-interval", type=float, default=None,
                        help="sys.setswitchinterval for this process (s); default: Python's 0.005")
    args = parser.parse_args()
    if args.clients < 1 or args.procs < 1 or args.seconds <= 0:
        parser.error("--clients, --procs and --seconds must be positive")

    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    cluster = Cluster(node_count=5, seed=1)
    Workload(cluster, rate=args.rate, seed=1)
    collector = MetricsCollector(collection_interval=args.interval, retention_period=300)
    collector.set_cluster(cluster)
    server = DashboardServer(collector, port=0)
    cluster.start(speed=1.0)
    collector.start()
    server.start()
    if args.tracemalloc:
        tracemalloc.start()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    start_at = time.time() + args.warmup
    per_proc = [args.clients // args.procs + (1 if i < args.clients % args.procs else 0) for i in range(args.procs)]
    procs = [context.Process(target=client_proc, args=(server.port, n, args.seconds, start_at, queue))
             for n in per_proc if n]
    for p in procs:
        p.start()
    while time.time() < start_at:
        time.sleep(0.05)
    # Memory is read every 5 s under load: the first readings include the 200 connection
    # threads being created; "flat" is judged from the first reading under full load on.
    rss_series: list[tuple[float, float]] = []
    traced_series: list[float] = []
    sampler_stop = threading.Event()

    def sample_memory() -> None:
        t0 = time.time()
        while not sampler_stop.wait(5.0):
            rss_series.append((time.time() - t0, rss_mb()))
            if args.tracemalloc:
                traced_series.append(tracemalloc.get_traced_memory()[0])

    sampler = threading.Thread(target=sample_memory, daemon=True)
    sampler.start()
    rss_start = rss_mb()
    traced_start = tracemalloc.get_traced_memory()[0] if args.tracemalloc else 0
    samples_start = collector.samples_collected
    latencies: list[float] = []
    errors: list[str] = []
    for _ in procs:
        got_latencies, got_errors = queue.get(timeout=args.seconds + 120)
        latencies.extend(got_latencies)
        errors.extend(got_errors)
    for p in procs:
        p.join()
    sampler_stop.set()
    rss_end = rss_mb()
    traced_end = tracemalloc.get_traced_memory()[0] if args.tracemalloc else 0
    history = collector.history(duration=None)
    collector.stop()
    server.stop()
    cluster.stop()
    stamps = [s["timestamp"] for s in history if s["sequence"] > samples_start]
    intervals = [b - a for a, b in zip(stamps, stamps[1:])]
    jitter = max((abs(i - args.interval) for i in intervals), default=float("nan"))

    print(f"clients {args.clients} in {len(procs)} processes for {args.seconds:g} s "
          f"(collector every {args.interval:g} s over a paced 5-node cluster at {args.rate:g} orders/s)")
    print(f"errors            {len(errors)}" + (f"  e.g. {errors[:3]}" if errors else ""))
    print(f"requests          {len(latencies)}  ({len(latencies) / args.seconds:,.0f} req/s)")
    if latencies:
        print(f"latency           p50 {percentile(latencies, 0.5) * 1000:.2f} ms  "
              f"p99 {percentile(latencies, 0.99) * 1000:.2f} ms  max {max(latencies) * 1000:.1f} ms")
    print(f"collector         {len(intervals)} intervals, max |interval - {args.interval:g}| = "
          f"{jitter * 1000:.1f} ms, missed ticks {collector.missed_ticks}, collect errors {collector.collect_errors}")
    # The last reading under load, not rss_end: by then this process also holds every
    # client's latency list, which is the benchmark's data, not the server's memory.
    last_loaded = rss_series[-1][1] if rss_series else rss_end
    print(f"memory RSS        {rss_start:.1f} MB before the clients connect -> {last_loaded:.1f} MB at the "
          f"end of the load ({last_loaded - rss_start:+.1f} MB, includes the connections' buffers)")
    if len(rss_series) >= 3:
        loaded = rss_series[1:]  # from 10 s under load on
        print("memory RSS series " + "  ".join(f"{t:.0f}s:{mb:.1f}" for t, mb in rss_series))
        print(f"memory under load {loaded[0][1]:.1f} MB at {loaded[0][0]:.0f} s -> {loaded[-1][1]:.1f} MB "
              f"at {loaded[-1][0]:.0f} s ({loaded[-1][1] - loaded[0][1]:+.1f} MB)")
    if args.tracemalloc:
        print(f"memory traced     {traced_start / 1e6:.1f} MB -> {traced_end / 1e6:.1f} MB "
              f"({(traced_end - traced_start) / 1e6:+.1f} MB)")
        print("traced series     " + "  ".join(f"{b / 1e6:.2f}" for b in traced_series))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()

"""What the etcd source costs, and whether the collector keeps its cadence with a stopped member.

Usage: .venv/bin/python benchmarks/bench_etcd_poll.py [--polls 300] [--seconds 20] [--members 5]

Needs the `etcd` binary (apt-get install etcd-server). Starts its own clusters on free loopback
ports (raftctl/runtime/etcd_cluster.py) and removes them at the end. Prints:

1. references: GET /debug/vars then GET /metrics, sequential on one connection in a bare loop
   (what a poll that asks for both costs at the least), and GET /debug/vars alone; then the poll
   cost per member, median, p90 and mean of ``NodeAnswer.poll_ms`` (GET /debug/vars every poll;
   GET /metrics after it on the same connection every 3rd poll of a member, see
   raftctl/sources/etcd.py), split into the polls with and without /metrics: first each member
   polled alone, one member at a time (the per-member cost), then all members at once as a poll
   does (what a member's answer takes while the others are asked too, on this machine's cores);
2. the whole poll's wall time and the probe read's round trip (median, p99);
3. `raftctl serve --source etcd:... --interval 1` against ``--members`` members with one
   follower SIGSTOPped: the gaps between consecutive samples' wall timestamps (min, max, worst
   distance from 1 s).

The machine's load average is printed first: on a shared 2-core runner the per-member figures
grow with it (every member's /metrics costs etcd ~2.6 ms of CPU).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raftctl.runtime.etcd_cluster import EtcdCluster, EtcdNotFoundError  # noqa: E402
from raftctl.sources.etcd import EtcdSource, build, discover  # noqa: E402


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} ms, p90 {quantile(values, 0.9):.2f} ms"


def split(answers: list[tuple[float, bool]]) -> str:
    """``poll_ms`` figures, all of them and split by whether the poll asked for /metrics."""
    every = [ms for ms, _ in answers]
    with_metrics = [ms for ms, fetched in answers if fetched]
    without = [ms for ms, fetched in answers if not fetched]
    text = f"{ms(every)}, mean {statistics.fmean(every):.2f} ms"
    if with_metrics and without:
        text += (f" (with /metrics, {len(with_metrics)}: median {statistics.median(with_metrics):.2f} ms; "
                 f"without, {len(without)}: median {statistics.median(without):.2f} ms)")
    return text


def fetched_metrics(report: dict) -> bool:
    return report.get("metrics_age_s") == 0  # asked in this very poll


def reference(url: str, polls: int, paths: tuple[str, ...] = ("/debug/vars", "/metrics")) -> list[float]:
    """A floor: the GETs on one keep-alive connection, sequential, no threads, no parsing."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=2)
    out: list[float] = []
    try:
        for _ in range(polls):
            started = time.perf_counter()
            for path in paths:
                conn.request("GET", path)
                conn.getresponse().read()
            out.append((time.perf_counter() - started) * 1000.0)
    finally:
        conn.close()
    return out


def poll_costs(members: int, polls: int) -> None:
    with EtcdCluster(members) as cluster:
        cluster.wait_for_leader(15)
        infos = discover(cluster.client_urls[:1], 2.0)
        floor: list[float] = []
        vars_only: list[float] = []
        for info in infos:
            floor += reference(info.url, polls // len(infos))
            vars_only += reference(info.url, polls // len(infos), ("/debug/vars",))
        print(f"{members} members, references (bare sequential GETs, one member at a time): "
              f"/debug/vars + /metrics {ms(floor)}; /debug/vars alone {ms(vars_only)}")
        alone: list[tuple[float, bool]] = []
        for info in infos:
            with EtcdSource([info], timeout=0.5) as source:
                source.poll()  # connect
                for _ in range(polls // len(infos)):
                    answer = source.poll().answers[info.name]
                    assert answer.poll_ms is not None and answer.report is not None, answer
                    alone.append((answer.poll_ms, fetched_metrics(answer.report)))
        print(f"{members} members, one polled at a time ({len(alone)} answers): poll cost per member {split(alone)}")
        together: list[tuple[float, bool]] = []
        walls: list[float] = []
        probes: list[float] = []
        with build(cluster.client_urls[0], timeout=0.5) as source:
            last = source.poll()
            for _ in range(polls):
                started = time.perf_counter()
                poll = source.poll(since=last.now)
                walls.append((time.perf_counter() - started) * 1000.0)
                together += [(a.poll_ms, fetched_metrics(a.report)) for a in poll.answers.values()
                             if a.poll_ms is not None and a.report is not None]
                assert poll.client is not None
                probes += poll.client.latencies_ms
                last = poll
        print(f"{members} members polled at once ({polls} polls): per member {split(together)}; "
              f"whole poll median {statistics.median(walls):.2f} ms, p99 {quantile(walls, 0.99):.2f} ms; "
              f"probe read median {statistics.median(probes):.2f} ms, p99 {quantile(probes, 0.99):.2f} ms "
              f"({len(probes)} reads)")


def cadence(members: int, seconds: float, interval: float = 1.0) -> None:
    with EtcdCluster(members) as cluster:
        leader = cluster.wait_for_leader(15)
        stopped = next(n for n in cluster.members if n != leader)
        cluster.pause(stopped)
        proc = subprocess.Popen(
            [sys.executable, "-m", "raftctl", "serve", "--source", cluster.source_spec, "--port", "0",
             "--interval", str(interval)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ))
        try:
            assert proc.stderr is not None
            line = proc.stderr.readline()
            found = re.search(r"dashboard at (http://\S+)/ ", line)
            if found is None:
                raise SystemExit(f"serve did not start: {line}{proc.stderr.read()}")
            url = found.group(1)
            time.sleep(seconds + 2 * interval)  # a fixed measuring window, not a wait for a condition
            with urllib.request.urlopen(f"{url}/api/metrics/history?duration=300", timeout=5) as answer:
                samples = json.load(answer)["samples"]
        finally:
            proc.terminate()
            proc.wait(15)
        samples = samples[2:]  # start-up
        stamps = [s["timestamp"] for s in samples]
        gaps = [b - a for a, b in zip(stamps, stamps[1:])]
        down = {s["nodes"][stopped]["state"] for s in samples}
        print(f"serve --interval {interval:g}, {members} members, {stopped} SIGSTOPped (seen as {sorted(down)}): "
              f"{len(gaps)} gaps, min {min(gaps):.3f} s, max {max(gaps):.3f} s, worst |gap - {interval:g}| "
              f"{max(abs(g - interval) for g in gaps) * 1000:.1f} ms, median |gap - {interval:g}| "
              f"{statistics.median(abs(g - interval) for g in gaps) * 1000:.1f} ms, "
              f"stdev {statistics.pstdev(gaps) * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--members", type=int, default=5)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    try:
        poll_costs(3, args.polls)
        poll_costs(args.members, args.polls)
        cadence(args.members, args.seconds)
    except EtcdNotFoundError as err:
        print(err, file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()

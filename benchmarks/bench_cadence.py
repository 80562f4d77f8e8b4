"""How evenly `raftctl serve` spaces its samples in wall time.

Usage: .venv/bin/python benchmarks/bench_cadence.py [--interval 1 0.1] [--seconds 7]

Starts `raftctl serve --interval X` on a free loopback port, waits, reads
/api/metrics/history and prints the gaps between consecutive samples' wall-clock timestamps
(min, max, standard deviation). Run it from another checkout (PYTHONPATH=...) to compare trees.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gaps(interval: float, seconds: float) -> list[float]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "raftctl", "serve", "--port", str(port), "--interval", str(interval)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    try:
        deadline = time.monotonic() + seconds + 20
        url = f"http://127.0.0.1:{port}/api/metrics/history?duration=600"
        samples: list[dict] = []
        started = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    samples = json.load(answer)["samples"]
            except OSError:
                samples = []
            if samples and started is None:
                started = time.monotonic()
            if started is not None and time.monotonic() - started >= seconds:
                break
            time.sleep(0.2)  # polling the server's clock, not waiting for a condition of ours
        stamps = [s["timestamp"] for s in samples][2:]  # the first ones include start-up
        return [b - a for a, b in zip(stamps, stamps[1:])]
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, nargs="+", default=[1.0, 0.1])
    parser.add_argument("--seconds", type=float, default=7.0)
    args = parser.parse_args()
    for interval in args.interval:
        found = gaps(interval, args.seconds)
        if len(found) < 2:
            print(f"--interval {interval:g}: too few samples")
            continue
        print(f"--interval {interval:g}: {len(found)} gaps, min {min(found):.3f} s, max {max(found):.3f} s, "
              f"stdev {statistics.pstdev(found):.3f} s")


if __name__ == "__main__":
    main()

"""`raftctl replay` on a long recording: load time, memory, and the cost of the page's requests.

Usage: .venv/bin/python benchmarks/bench_replay.py [--hours H] [--trees TREE ...]

A recording is made once: a seeded 5-node demo run (``raftctl demo --fast``, jsonl sink) gives
its samples and alerts, tiled (sequence, sim_time and timestamp moved on) to ``--hours`` of 1 s
samples (default 8: about 28,800 samples, some 75 MB). Then, for each tree (default: this one),
a fresh process imports that tree's ``raftctl.runtime.replay``, loads the file and builds the
replay collector at its end, and prints:

* load s — ``load_recording`` plus ``ReplayCollector`` (the timeline is built there);
* peak MB — the process's peak resident set (``ru_maxrss``) less the one before loading;
* kept MB — what tracemalloc counts still allocated once loaded (the data the replay keeps);
* the page's requests at the end of the run, median of 20: ``latest_bytes``, ``history(300)``,
  ``node_history(node1, 300)``, ``state`` (GET /api/replay), in ms.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

_PROBE = r"""
import gc, json, os, resource, statistics, sys, time, tracemalloc
tree, path = sys.argv[1], sys.argv[2]
sys.path.insert(0, tree)
import orjson
from raftctl.runtime import replay
assert os.path.realpath(replay.__file__).startswith(os.path.realpath(tree)), replay.__file__
gc.collect()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
recording = replay.load_recording(path)
collector = replay.ReplayCollector(recording.runs[-1], paused=True)
load_s = time.perf_counter() - started
peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
collector.clock.seek(collector.clock.duration)
def timed(fn):
    times = []
    for _ in range(20):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return round(statistics.median(times) * 1000, 3)
out = {"samples": len(collector.samples), "load s": round(load_s, 2), "peak MB": round(peak_mb, 1),
       "latest_bytes ms": timed(collector.latest_bytes),
       "history(300) ms": timed(lambda: orjson.dumps(collector.history(300))),
       "node_history ms": timed(lambda: collector.node_history("node1", 300)),
       "state ms": timed(lambda: collector.state(path, 1, 1))}
del collector, recording
gc.collect()
tracemalloc.start()
recording = replay.load_recording(path)
collector = replay.ReplayCollector(recording.runs[-1], paused=True)
gc.collect()
out["kept MB"] = round(tracemalloc.get_traced_memory()[0] / 1e6, 1)
print(json.dumps(out))
"""


def make_recording(path: Path, hours: float, seed: int = 7) -> int:
    """A demo's jsonl recording tiled to ``hours`` of 1 s samples; returns the sample count."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "demo.jsonl"
        subprocess.run([sys.executable, "-m", "raftctl", "demo", "--nodes", "5", "--ticks", "600", "--fast",
                        "--no-dashboard", "--seed", str(seed), "--sink", f"jsonl:{source}"],
                       cwd=HERE, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rows = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
    samples = [r for r in rows if r.get("type") == "sample"]
    if not samples:
        raise SystemExit("the demo wrote no samples")
    span = samples[-1]["sim_time"] - samples[0]["sim_time"] + 1.0
    wanted = int(hours * 3600)
    written = 0
    with open(path, "w") as out:
        tile = 0
        while written < wanted:
            shift = tile * span
            for row in rows:
                if row.get("type") == "sample":
                    if written >= wanted:
                        break
                    written += 1
                    row = {**row, "sequence": written, "sim_time": row["sim_time"] + shift,
                           "timestamp": row["timestamp"] + shift}
                else:
                    row = {**row, **{k: row[k] + shift for k in ("started_at_sim", "resolved_at_sim",
                                                                 "started_at", "resolved_at")
                                     if isinstance(row.get(k), (int, float))}}
                out.write(json.dumps(row, separators=(",", ":")) + "\n")
            tile += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=8.0, help="hours of 1 s samples (default 8)")
    parser.add_argument("--trees", nargs="*", default=[str(HERE)], help="source trees to compare")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.jsonl"
        count = make_recording(path, args.hours)
        print(f"recording: {count} samples, {os.path.getsize(path) / 1e6:.1f} MB")
        for tree in args.trees:
            result = subprocess.run([sys.executable, "-c", _PROBE, str(Path(tree).resolve()), str(path)],
                                    capture_output=True, text=True, check=False)
            if result.returncode != 0:
                print(f"{tree}: failed\n{result.stderr[-2000:]}")
                continue
            figures = json.loads(result.stdout)
            print(f"{tree}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()

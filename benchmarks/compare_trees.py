"""Benchmark figures of several source trees side by side, alternating, in one sitting.

Usage:
    git worktree add /tmp/before 0148ec2
    .venv/bin/python benchmarks/compare_trees.py --bench collector --rounds 5 --cpu 1 /tmp/before .
    .venv/bin/python benchmarks/compare_trees.py --bench replication --rounds 5 --cpu 1 /tmp/before .

Each round runs, for each tree in turn, a fresh process with that tree first on ``sys.path``
and measures with that tree's own code (each figure is itself the best of 2 or 3 runs):

* ``collector``: its ``benchmarks/bench_collector.py`` functions ``cost_on_stand_in`` (5, 50 and
  500 nodes, best of 3) and ``cost_on_real_cluster`` (5 nodes, best of 2), in microseconds per
  node per sample (lower is better);
* ``replication``: its ``benchmarks/bench_replication.py`` ``run`` at 1,000 orders/s (simulated
  seconds per wall second, best of 2) and saturating (committed orders per wall second), higher
  is better.

Alternating the trees round by round keeps a noisy machine's drift out of the comparison, and
``--cpu N`` pins every probe to one CPU (the scheduler moving a probe between cores is the
largest noise on a small shared machine). The summary gives each figure's range over the rounds
and the change of its median against the first tree.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

_SETUP = r"""
import json, os, sys
tree = os.getcwd()
sys.path.insert(0, tree)
sys.path.insert(0, os.path.join(tree, "benchmarks"))
import raftctl
assert os.path.realpath(raftctl.__file__).startswith(os.path.realpath(tree)), raftctl.__file__
"""

_PROBES = {
    "collector": ("bench_collector.py", _SETUP + r"""
import bench_collector as b
out = {f"stand-in {n}": min(b.cost_on_stand_in(n, s) for _ in range(3)) for n, s in ((5, 2000), (50, 500), (500, 100))}
out["real 5"] = min(b.cost_on_real_cluster(5, 100)[0] for _ in range(2))
print(json.dumps(out))
""", "us per node per sample, best of 3 (stand-in) / 2 (real)"),
    "replication": ("bench_replication.py", _SETUP + r"""
import bench_replication as b
speed = []
for _ in range(2):
    wall, acked, sim = b.run(5, 1000.0, 20.0, 1)
    speed.append(sim / wall)
wall, acked, sim = b.run(5, 60_000.0, 3.0, 1)
print(json.dumps({"sim speed x": max(speed), "saturating orders/s": acked / wall}))
""", "5 nodes: simulated s per wall s at 1,000 orders/s (best of 2), committed orders per wall s saturating"),
}


def measure(tree: Path, bench: str, cpu: int | None = None) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    proc = subprocess.run([sys.executable, "-c", _PROBES[bench][1]], cwd=tree, env=env, capture_output=True,
                          text=True, timeout=900, preexec_fn=pin)
    if proc.returncode != 0:
        raise SystemExit(f"{tree}: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'failed'}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+", type=Path, help="source trees (git worktrees), the reference first")
    parser.add_argument("--bench", choices=sorted(_PROBES), default="collector")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cpu", type=int, default=None, help="pin every probe to this CPU")
    args = parser.parse_args()
    if args.rounds < 1:
        print("error: --rounds must be at least 1", file=sys.stderr)
        return 2
    if args.cpu is not None and args.cpu not in os.sched_getaffinity(0):
        print(f"error: --cpu {args.cpu}: this process may run on CPUs {sorted(os.sched_getaffinity(0))}",
              file=sys.stderr)
        return 2
    script, _, unit = _PROBES[args.bench]
    for tree in args.trees:
        if not (tree / "benchmarks" / script).is_file():
            print(f"error: {tree} has no benchmarks/{script}", file=sys.stderr)
            return 2
    results: dict[Path, list[dict[str, float]]] = {tree: [] for tree in args.trees}
    pinned = f", pinned to CPU {args.cpu}" if args.cpu is not None else ""
    print(f"{args.bench}: load average {os.getloadavg()[0]:.2f}; {unit}{pinned}")
    for round_no in range(1, args.rounds + 1):
        for tree in args.trees:
            figures = measure(tree, args.bench, args.cpu)
            results[tree].append(figures)
            print(f"round {round_no} {str(tree):24s} " + "  ".join(f"{k} {v:.2f}" for k, v in figures.items()),
                  flush=True)
    reference = args.trees[0]
    lower_is_better = args.bench == "collector"
    print("\nranges over the rounds (change of the medians, and of the best rounds, against the first tree;"
          " the best round is the one the machine's noise touched least):")
    for tree in args.trees:
        parts = []
        for key in results[tree][0]:
            values = sorted(r[key] for r in results[tree])
            ref = sorted(r[key] for r in results[reference])
            change = values[len(values) // 2] / ref[len(ref) // 2] - 1.0
            best = values[0] / ref[0] if lower_is_better else values[-1] / ref[-1]
            parts.append(f"{key} {values[0]:.2f}-{values[-1]:.2f} ({change:+.0%}; best {best - 1.0:+.0%})")
        print(f"  {str(tree):24s} " + "  ".join(parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The collector's cost in several source trees side by side, alternating, in one sitting.

Usage:
    git worktree add /tmp/before 0148ec2
    .venv/bin/python benchmarks/compare_collector.py --rounds 3 /tmp/before .

Each round runs, for each tree in turn (a fresh process, the tree first on ``sys.path``), that
tree's own ``benchmarks/bench_collector.py`` functions ``cost_on_stand_in`` (5, 50 and 500 nodes,
best of 3) and ``cost_on_real_cluster`` (5 nodes, best of 2), and prints microseconds per node per
sample. Alternating the trees round by round keeps a noisy machine's drift out of the comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

_PROBE = r"""
import json, os, sys
tree = os.getcwd()
sys.path.insert(0, tree)
sys.path.insert(0, os.path.join(tree, "benchmarks"))
import bench_collector as b
import raftctl
assert os.path.realpath(raftctl.__file__).startswith(os.path.realpath(tree)), raftctl.__file__
out = {f"stand-in {n}": min(b.cost_on_stand_in(n, s) for _ in range(3)) for n, s in ((5, 2000), (50, 500), (500, 100))}
out["real 5"] = min(b.cost_on_real_cluster(5, 100)[0] for _ in range(2))
print(json.dumps(out))
"""


def measure(tree: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run([sys.executable, "-c", _PROBE], cwd=tree, env=env, capture_output=True, text=True,
                          timeout=900)
    if proc.returncode != 0:
        raise SystemExit(f"{tree}: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'failed'}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+", type=Path, help="source trees (git worktrees), the reference first")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for tree in args.trees:
        if not (tree / "benchmarks" / "bench_collector.py").is_file():
            print(f"error: {tree} has no benchmarks/bench_collector.py", file=sys.stderr)
            return 2
    results: dict[Path, list[dict[str, float]]] = {tree: [] for tree in args.trees}
    print(f"load average {os.getloadavg()[0]:.2f}; us per node per sample, best of 3 (stand-in) / 2 (real)")
    for round_no in range(1, args.rounds + 1):
        for tree in args.trees:
            figures = measure(tree)
            results[tree].append(figures)
            print(f"round {round_no} {str(tree):24s} " + "  ".join(f"{k} {v:.2f}" for k, v in figures.items()),
                  flush=True)
    reference = args.trees[0]
    print("\nranges over the rounds (change of the medians against the first tree):")
    for tree in args.trees:
        parts = []
        for key in results[tree][0]:
            values = sorted(r[key] for r in results[tree])
            ref = sorted(r[key] for r in results[reference])
            change = values[len(values) // 2] / ref[len(ref) // 2] - 1.0
            parts.append(f"{key} {values[0]:.2f}-{values[-1]:.2f} ({change:+.0%})")
        print(f"  {str(tree):24s} " + "  ".join(parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

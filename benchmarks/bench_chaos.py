"""The chaos campaign's figures: safety, liveness, leaderless time and detection accuracy.

Usage: .venv/bin/python benchmarks/bench_chaos.py [--runs 1000] [--seed 1] [--duration 60]
       [--workers N] [--rate 20] [--json PATH]

The same campaign as ``raftctl chaos``; also prints the wall time and runs per second, and per
incident kind how many were detected, too short to observe or without effect.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import orjson  # noqa: E402

from raftctl.commands.chaos import report_rows  # noqa: E402
from raftctl.core.chaos import ALL_FAULTS, CampaignConfig  # noqa: E402
from raftctl.runtime.chaos_pool import run_campaign  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--json", metavar="PATH", help="also write the full report as JSON")
    args = parser.parse_args()
    config = CampaignConfig(runs=args.runs, seed=args.seed, nodes=args.nodes, duration_s=args.duration,
                            faults=ALL_FAULTS, rate=args.rate)
    try:
        report = run_campaign(config, workers=args.workers)
    except ValueError as err:
        parser.error(str(err))
    for name, value in report_rows(report):
        print(f"{name:<32}{value}")
    print(f"{'runs per wall second':<32}{report['runs'] / report['wall_seconds']:.2f} "
          f"({report['sim_seconds'] / report['wall_seconds']:.0f}x simulated/real, {report['workers']} workers)")
    for kind, row in report["health_changing_incidents"].items():
        print(f"  {kind:<14} total {row['total']:>6}  detected {row['detected']:>6}  missed {row['missed']:>4}  "
              f"shorter than 1 s {row['short']:>4}  unjudged {row['unjudged']:>4}")
    if args.json:
        with open(args.json, "wb") as f:
            f.write(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    sys.exit(1 if report["failing_seeds"] else 0)


if __name__ == "__main__":
    main()

"""Chaos on real etcd processes, scored honestly: the acceptance figures of issue 12.

Usage: .venv/bin/python benchmarks/bench_real_chaos.py [--faults 100] [--members 3,5] [--seed 1]
       [--json-out FILE]

Needs the `etcd` binary (apt-get install etcd-server). For each cluster size it starts a fresh
etcd cluster on free loopback ports (raftctl/runtime/etcd_cluster.py), runs one seeded campaign of
``--faults`` real faults (kill -9 then restart after 2-6 s, SIGSTOP then SIGCONT after 2-6 s, or
an immediate kill -9 + restart; on the leader 40 % of the time; at most a minority down) with the
collector sampling at 1 s on the wall clock, scores it with the honest scorer
(raftctl/core/detection.py: ground truth from the injector only, incidents of 2 s or more,
detected if a sample shows them within 2 s) and removes the cluster. It prints, per size:

* recall for incidents lasting >= 2 s, detection latency p50 / p99 / max, false alarms;
* etcd's own signals beside raftctl's, for faults on the leader and on followers: how many
  faults each showed, and how long after the fault (p50 / p99): ``etcd_server_has_leader`` = 0,
  ``etcd_server_leader_changes_seen_total`` rising, ``GET /health`` failing, each read every
  0.2 s on the surviving members (a best case: Prometheus scrapes every 15-60 s);
* the acceptance checks: recall >= 0.99, p50 and p99 <= 3 s, false alarms (0 expected).

It takes about 10 minutes per 100 faults; the machine's load average is printed first.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raftctl.runtime.etcd_cluster import EtcdNotFoundError, find_etcd  # noqa: E402
from raftctl.runtime.real_chaos import RealChaosConfig, report_lines, run_etcd_campaign  # noqa: E402


def checks(report: dict) -> list[tuple[str, bool]]:
    latency = report["detection_latency_s"]
    return [
        (f"recall {report['recall']:.4f} >= 0.99 (incidents >= {report['min_incident_s']:g} s)",
         report["recall"] >= 0.99),
        (f"detection latency p50 {latency['median']} s <= 3 s", latency["median"] is not None
         and latency["median"] <= 3.0),
        (f"detection latency p99 {latency['p99']} s <= 3 s", latency["p99"] is not None and latency["p99"] <= 3.0),
        (f"false alarms {report['false_alarms']} (0 expected)", report["false_alarms"] == 0),
        (f"faults injected {report['faults_injected_total']} >= 100", report["faults_injected_total"] >= 100),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--faults", type=int, default=100)
    parser.add_argument("--members", default="3,5", help="comma-separated cluster sizes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json-out", help="write every report (fault log included) to this file")
    parser.add_argument("--quiet", action="store_true", help="no per-fault progress lines on stderr")
    args = parser.parse_args()
    try:
        find_etcd()
    except EtcdNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    sizes = [int(x) for x in args.members.split(",") if x.strip()]
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; "
          f"{os.cpu_count()} CPUs", flush=True)
    running: list = []

    def stop(_signum: int, _frame: object) -> None:  # SIGTERM: stop the campaign, which cleans up
        if running:
            running[-1].stop()
        else:
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    reports = []
    ok = True
    for size in sizes:
        config = RealChaosConfig(faults=args.faults, seed=args.seed)
        started = time.monotonic()
        def progress(line: str, size: int = size) -> None:
            print(f"  [{size}] {line}", file=sys.stderr, flush=True)

        report = run_etcd_campaign(size, config, progress=None if args.quiet else progress,
                                   campaign_hook=running.append)
        reports.append(report)
        print(f"\n== {size} etcd members ({report.get('etcd_version')}), {args.faults} faults, seed {args.seed}, "
              f"{time.monotonic() - started:.0f} s ==")
        for name, value in report_lines(report):
            print(f"{name:<24} {value}")
        for miss in report["missed_incidents"][:10]:
            print(f"  MISSED t={miss['t']}s {miss['incident']} {miss['target']}")
        for alarm in report["false_alarm_examples"][:10]:
            print(f"  FALSE ALARM t={alarm['t']}s {alarm['alert']}")
        for text, held in checks(report):
            print(f"  {'PASS' if held else 'FAIL'} {text}")
            ok = ok and held
        sys.stdout.flush()
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(reports, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""`raftctl chaos`: seeded random fault campaigns with the safety checker and detection scoring."""

from __future__ import annotations

import shutil
import sys
from typing import Annotated, Any, Optional

import typer

from raftctl.commands._common import finite_float

HELP = (
    "Run seeded random fault schedules in simulated time with the Raft safety checker on, and "
    "score how well the metrics collector detected every fault. Run i uses seed SEED+i."
)
EPILOG = (
    "Examples:\n\n"
    "  raftctl chaos --runs 1000 --seed 1\n\n"
    "  raftctl chaos --runs 200 --faults crash,partition --json | jq .recall\n\n"
    "  raftctl chaos --replay 417        (rerun seed 417 and print every fault, leader change and alert)\n\n"
    "  raftctl chaos --mutants           (check the checker: it must catch each planted Raft bug)\n\n"
    "  raftctl chaos --target etcd --members 3 --faults 20   (real etcd processes: kill -9, SIGSTOP/SIGCONT, "
    "restart; needs etcd on PATH)\n\n"
    "Exit 0 when every run was safe and live after heal, 1 otherwise, 2 for usage errors. "
    "Each run: faults for --duration simulated seconds, then everything heals and a leader must "
    "appear within 2 s and all nodes converge. Orders arrive at --rate per simulated second "
    "(default 20, which keeps 1000 one-minute runs within a few minutes on two cores)."
)


def _parse_faults(text: str) -> tuple[str, ...]:
    from raftctl.core.chaos import parse_faults

    try:
        return parse_faults(text)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="'--faults'") from None


def command(
    ctx: typer.Context,
    runs: Annotated[int, typer.Option("--runs", min=1, max=1_000_000, help="Number of runs (seeds).")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the first run; run i uses SEED+i.")] = 1,
    nodes: Annotated[int, typer.Option("--nodes", min=1, max=51, help="Cluster size.")] = 5,
    duration: Annotated[float, typer.Option("--duration", callback=finite_float("--duration", 0.5, 86_400.0),
                                            help="Simulated seconds of faults per run.")] = 60.0,
    faults: Annotated[str, typer.Option("--faults", metavar="KIND,...", show_default=False,
                                        help="Fault kinds, comma-separated (default: all): crash, restart, "
                                             "partition, loss, duplicate, reorder, slow, pause, monitor_partition.")]
    = "crash,restart,partition,loss,duplicate,reorder,slow,pause,monitor_partition",
    rate: Annotated[float, typer.Option("--rate", callback=finite_float("--rate", 0.0, 100_000.0),
                                        help="Orders per simulated second in each run.")] = 20.0,
    interval: Annotated[float, typer.Option("--interval", callback=finite_float("--interval", 0.05, 60.0),
                                            help="Collector sampling interval (simulated s).")] = 1.0,
    deadline: Annotated[float, typer.Option("--deadline", callback=finite_float("--deadline", 0.05, 3600.0),
                                            help="An incident counts as detected only if a sample shows it "
                                                 "within this many simulated seconds.")] = 2.0,
    shards: Annotated[int, typer.Option("--shards", min=1, max=256,
                                        help="Raft groups per cluster (needs a sharding-capable Cluster).")] = 1,
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, max=256,
                                                   help="Processes \\[default: CPU count]. Results do not depend on it.",
                                                   show_default=False)] = None,
    replay: Annotated[Optional[int], typer.Option("--replay", metavar="SEED",
                                                  help="Rerun one seed verbosely instead of a campaign.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the figures as JSON on stdout.")] = False,
    mutants: Annotated[bool, typer.Option("--mutants", help="Run a short campaign against each planted-bug Raft "
                                          "variant instead; exit 0 only if the checker catches every one.")] = False,
    target: Annotated[str, typer.Option("--target", metavar="sim|etcd|processes",
                                        help="sim: the simulator; etcd: a fresh cluster of real etcd processes; "
                                             "processes: raftctl node processes under a trading load (--rate) "
                                             "(then --faults N is the number of faults, at most 1000).")] = "sim",
    members: Annotated[int, typer.Option("--members", min=1, max=15,
                                         help="Members (with --target etcd or processes).")] = 3,
) -> None:
    """Run a chaos campaign (or replay one seed) and print its figures."""
    if target not in ("sim", "etcd", "processes"):
        raise typer.BadParameter(f"must be sim, etcd or processes, got {target!r}", param_hint="'--target'")
    if target != "sim":
        raise typer.Exit(_etcd_campaign(ctx, members, faults, seed, interval, deadline, json_output,
                                        target=target, rate=rate))
    members_source = ctx.get_parameter_source("members")
    if members_source is not None and members_source.name != "DEFAULT":
        # silently running 5 simulated nodes for --members 3 would be a surprise
        raise typer.BadParameter("applies to --target etcd or processes; the simulator's size is --nodes",
                                 param_hint="'--members'")
    if mutants:
        raise typer.Exit(_mutants(json_output))
    from raftctl.core.chaos import CampaignConfig

    kinds = _parse_faults(faults)
    config = CampaignConfig(runs=runs, seed=seed, nodes=nodes, duration_s=duration, faults=kinds,
                            rate=rate, collection_interval=interval, shards=shards, deadline_s=deadline)
    try:
        config.validate()
    except ValueError as err:
        param = "'--shards'" if "shard" in str(err) else None
        raise typer.BadParameter(str(err), param_hint=param) from None
    if replay is not None:
        raise typer.Exit(_replay(replay, config, json_output))
    report = _interruptible(lambda: _campaign(config, workers))
    if json_output:
        from raftctl.commands._common import write_json

        write_json(report)
    else:
        print_report(report)
    raise typer.Exit(0 if not report["failing_seeds"] else 1)


def _interruptible(run: Any) -> Any:
    """Run a simulator campaign; Ctrl-C, SIGTERM or SIGHUP end it with one line and exit
    128 + the signal (its pool's workers are stopped; nothing of a simulated run is left)."""
    import signal

    caught: list[int] = []

    def stop(signum: int, _frame: Any) -> None:
        caught.append(signum)
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return run()
    except KeyboardInterrupt:
        signum = caught[0] if caught else signal.SIGINT
        print(f"interrupted by {signal.Signals(signum).name}: the campaign stopped; no figures", file=sys.stderr)
        raise typer.Exit(128 + signum) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _campaign(config: Any, workers: Optional[int]) -> dict:
    from raftctl.runtime.chaos_pool import run_campaign

    if not sys.stderr.isatty():
        return run_campaign(config, workers=workers)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from raftctl.commands._common import stderr_console

    with Progress(TextColumn("chaos"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("eta"), TimeRemainingColumn(), console=stderr_console(), transient=True) as bar:
        task = bar.add_task("runs", total=config.runs)
        return run_campaign(config, workers=workers,
                            progress=lambda done, total: bar.update(task, completed=done))


def _fmt(value: Any, unit: str = "") -> str:
    return "-" if value is None else f"{value:g}{unit}" if isinstance(value, float) else f"{value}{unit}"


def _shards(report: dict[str, Any]) -> str:
    """``"4 shards, "`` for a sharded run's runs line; nothing unsharded."""
    shards = report.get("shards") or 1
    return f"{shards} shards, " if shards > 1 else ""


def _heal_note(report: dict) -> str:
    """"; plus 12 steps that healed one (partition 5, ...)": the schedule's undoing steps, which
    the fault count leaves out."""
    total = report.get("heal_steps_total") or 0
    if not total:
        return ""
    kinds = ", ".join(f"{k} {v}" for k, v in report["heal_steps"].items())
    return f"; plus {total} step{'' if total == 1 else 's'} that undid one ({kinds})"


def _interval_note(report: dict) -> str:
    """Why recall falls when samples come less often than the deadline allows."""
    interval, deadline = report["collection_interval_s"], report["deadline_s"]
    if interval <= deadline:
        return ""
    return (f"; a sample every {interval:g} s cannot see every incident within {deadline:g} s: "
            f"use --interval at most {deadline:g}")


def report_rows(report: dict) -> list[tuple[str, str]]:
    """The campaign table as (figure, value) rows; pure, so it is easy to test."""
    faults = ", ".join(f"{k} {v}" for k, v in report["faults_injected"].items())
    gaps = report["leaderless_ms"]
    latency = report["detection_latency_s"]
    incidents = report["health_changing_incidents"]
    breakdown = ", ".join(f"{kind} {row['detected']}/{row['counted']}" for kind, row in incidents.items())
    violation_seeds = ", ".join(map(str, report["safety_violation_seeds"][:20])) or "none"
    liveness_seeds = ", ".join(map(str, report["liveness_failure_seeds"][:20])) or "none"
    workers = f"{report['workers']} worker{'' if report['workers'] == 1 else 's'}"
    return [
        ("runs", f"{report['runs']} (seeds {report['first_seed']}..{report['last_seed']}, "
                 f"{report['nodes']} nodes, {_shards(report)}{report['duration_s']:g} s each, {workers}, "
                 f"{report['wall_seconds']:g} s wall)"),
        ("faults injected", f"{report['faults_injected_total']} ({faults})" + _heal_note(report)),
        ("safety violations", f"{report['safety_violations']} (failing seeds: {violation_seeds})"),
        ("liveness failures after heal", f"{report['liveness_failures']} (seeds: {liveness_seeds})"),
        ("time without leader", f"median {_fmt(gaps['median'], ' ms')}, p99 {_fmt(gaps['p99'], ' ms')} "
                                f"over {gaps['periods']} periods"),
        ("orders acknowledged / applied", f"{report['orders_acknowledged']} / {report['orders_applied']} "
                                          f"(submitted {report['orders_submitted']})"),
        ("detection recall", f"{report['recall'] * 100:.2f}% ({report['incidents_detected']}/"
                             f"{report['incidents_counted']} incidents of 1 s or more seen within "
                             f"{report['deadline_s']:g} s: {breakdown})" + _interval_note(report)),
        ("not counted", f"{report['incidents_shorter_than_1s']} shorter than 1 s; "
                        f"{report['incidents_unjudged']} still open at the end of a run"),
        ("false alarms", f"{report['false_alarms']} of {report['alerts_fired']} alerts fired; "
                         f"unexplained non-HEALTHY samples: {report['unexplained_unhealthy_samples']}"),
        ("detection latency", f"median {_fmt(latency['median'], ' s')}, p99 {_fmt(latency['p99'], ' s')}, "
                              f"max {_fmt(latency['max'], ' s')} (interval {report['collection_interval_s']:g} s)"),
    ]


def print_report(report: dict) -> None:
    """The campaign's final table on stdout, failures listed under it."""
    from rich.table import Table

    from raftctl.commands._common import stdout_console

    table = Table(title="raftctl chaos", title_justify="left", show_header=False)
    table.add_column("figure", style="bold")
    table.add_column("value")
    for name, value in report_rows(report):
        table.add_row(name, value)
    console = stdout_console()
    console.print(table)
    for line in report["failure_examples"]:
        console.print(f"  FAIL {line}", markup=False)
    for miss in report["missed_incidents"][:10]:
        console.print(f"  MISSED seed={miss['seed']} t={miss['t']}s {miss['incident']} {miss['target'] or ''}".rstrip(),
                      markup=False)
    for alarm in report["false_alarm_examples"][:10]:
        console.print(f"  FALSE ALARM seed={alarm['seed']} t={alarm['t']}s {alarm['alert']}", markup=False)
    if report["failing_seeds"]:
        console.print(f"  replay one with: raftctl chaos --replay {report['failing_seeds'][0]} "
                      f"--nodes {report['nodes']} --duration {report['duration_s']:g}", markup=False)


def _mutants(json_output: bool) -> int:
    """``--mutants``: one line (or one JSON object) per planted bug; 0 only if all were caught."""
    from raftctl.core.mutants import run_mutant_campaign

    results = [r.as_dict() for r in run_mutant_campaign()]
    if json_output:
        from raftctl.commands._common import write_json

        write_json({"mutants": results})
    else:
        out = sys.stdout
        for r in results:
            if r["caught"]:
                text = r["violation"]
                text = text if len(text) <= 110 else text[:107] + "..."
                out.write(f"CAUGHT  {r['name']:<20} seed {r['seed']:<3} {text}\n")
            else:
                out.write(f"MISSED  {r['name']:<20} no violation on any seed\n")
        caught = sum(1 for r in results if r["caught"])
        out.write(f"{caught}/{len(results)} mutants caught by the safety checker\n")
        out.flush()
    return 0 if all(r["caught"] for r in results) else 1


_SIM_ONLY = ("runs", "nodes", "duration", "rate", "shards", "workers", "replay", "mutants")


def _etcd_campaign(ctx: typer.Context, members: int, faults: str, seed: int, interval: float,
                   deadline: float, json_output: bool, *, target: str = "etcd", rate: float = 100.0) -> int:
    """``--target etcd|processes``: one seeded campaign of real faults on a fresh cluster of real
    processes (raftctl/runtime/real_chaos.py; for processes raftctl/node/chaos_target.py)."""
    import signal
    import subprocess

    from raftctl.runtime.etcd_cluster import EtcdNotFoundError, EtcdStartError, find_etcd
    from raftctl.runtime.real_chaos import CampaignInterrupted, RealChaosConfig, report_lines, run_etcd_campaign

    def given(name: str) -> bool:
        source = ctx.get_parameter_source(name)
        return source is not None and source.name != "DEFAULT"

    for name in _SIM_ONLY:
        if given(name) and not (target == "processes" and name == "rate"):
            raise typer.BadParameter(f"--{name} does not apply to --target {target}")
    if not given("faults"):
        count = 20
    else:
        try:
            count = int(faults)
        except ValueError:
            raise typer.BadParameter(f"with --target {target} it is a number of faults, got {faults!r}",
                                     param_hint="'--faults'") from None
    # raftctl's nodes elect after 150-300 ms of silence; etcd's default is 1 s
    election_ms = 150.0 if target == "processes" else RealChaosConfig.election_timeout_ms
    from raftctl.runtime.real_chaos import DEFAULT_KINDS

    # node processes can also be cut off from their peers (their transport's fault rule)
    kinds = DEFAULT_KINDS + ("isolate",) if target == "processes" else DEFAULT_KINDS
    config = RealChaosConfig(faults=count, seed=seed, interval_s=interval, deadline_s=deadline,
                             election_timeout_ms=election_ms, kinds=kinds)
    try:
        config.validate(members)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="'--faults'") from None
    if target == "etcd":
        try:
            find_etcd()
        except EtcdNotFoundError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2

    running: list[Any] = []
    caught: list[int] = []

    def stop(signum: int, _frame: Any) -> None:
        # a running campaign stops at its next step (an exception raised into a fork or a
        # cleanup could be lost); before it runs, interrupt the cluster's start
        caught.append(signum)
        if running:
            running[0].stop()
        else:
            raise KeyboardInterrupt

    from raftctl.runtime.real_chaos import members_warning

    if (warning := members_warning(members)) is not None:
        print(f"warning: {warning}", file=sys.stderr)
    # SIGHUP too: a closed terminal or a dropped ssh session must not leave frozen nodes behind
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        say = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
        if target == "processes":
            from raftctl.node.chaos_target import run_process_campaign

            report = run_process_campaign(members, config, rate=rate, progress=say, campaign_hook=running.append)
        else:
            report = run_etcd_campaign(members, config, progress=say, campaign_hook=running.append)
    except (KeyboardInterrupt, CampaignInterrupted):
        signum = caught[0] if caught else signal.SIGINT
        what = "node" if target == "processes" else "etcd"
        print(f"interrupted by {signal.Signals(signum).name}: every {what} process and directory of the "
              "campaign is removed", file=sys.stderr)
        return 128 + signum
    except (EtcdStartError, RuntimeError, OSError, subprocess.SubprocessError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if json_output:
        from raftctl.commands._common import write_json

        write_json(report)
    else:
        out = sys.stdout
        width = shutil.get_terminal_size((0, 0)).columns if out.isatty() else 0
        for name, value in report_lines(report):
            out.write(_row(name, value, width))
        for miss in report["missed_incidents"][:10]:
            out.write(f"  MISSED t={miss['t']}s {miss['incident']} {miss['target'] or ''}".rstrip() + "\n")
        for alarm in report["false_alarm_examples"][:10]:
            out.write(f"  FALSE ALARM t={alarm['t']}s {alarm['alert']}\n")
        if "safety_violations" in report:
            out.write(_row("safety (node reports)",
                           f"{report['safety_violations']} violations over {report['safety_samples']} samples; "
                           f"{report['orders_acknowledged']} orders acknowledged, at least "
                           f"{report['orders_applied_min']} applied on every node", width))
            for line in report["safety_violation_examples"]:
                out.write(f"  VIOLATION {line}\n")
        out.flush()
    return 0 if report["recovered"] and not report["injector_errors"] and not report.get("safety_violations") else 1


def _row(name: str, value: str, width: int) -> str:
    """``name`` in a 24-column label, ``value`` after it; on a terminal of ``width`` columns the
    value wraps at word boundaries under itself (0: one line, for pipes and logs)."""
    if width < 50:
        return f"{name:<24} {value}\n"
    import textwrap

    lines = textwrap.wrap(value, width=width - 26, break_on_hyphens=False) or [""]
    return f"{name:<24} {lines[0]}\n" + "".join(f"{'':<25}{line}\n" for line in lines[1:])


def _replay(seed: int, config: Any, json_output: bool) -> int:
    from raftctl.core.chaos import run_one

    result = run_one(seed, nodes=config.nodes, duration_s=config.duration_s, faults=config.faults,
                     rate=config.rate, collection_interval=config.collection_interval,
                     shards=config.shards, keep_events=True, detect=True, deadline_s=config.deadline_s)
    detection = result.detection
    assert detection is not None  # replays run with detection on
    verdict = "OK" if result.ok else "FAIL"
    doc = {
        "seed": seed,
        "ok": result.ok,
        "safety_violations": result.violations,
        "liveness_ok": result.liveness_ok,
        "liveness_detail": result.liveness_detail,
        "faults_injected": result.faults,
        "heal_steps": result.heal_steps,
        "orders_submitted": result.orders_submitted,
        "orders_acknowledged": result.orders_acknowledged,
        "orders_applied": result.orders_applied,
        "trace_hash": f"{result.trace_hash:016x}",
        "recall": detection.recall,
        "false_alarms": len(detection.false_alarms),
        "timeline": [{"t": round(t, 3), "kind": kind, "what": text} for t, kind, text in result.timeline],
    }
    if json_output:
        from raftctl.commands._common import write_json

        write_json(doc)
        return 0 if result.ok else 1
    out = sys.stdout
    shards = f"{config.shards} shards, " if config.shards > 1 else ""
    out.write(f"replay seed {seed}: {config.nodes} nodes, {shards}{config.duration_s:g} s of faults "
              f"({','.join(config.faults)}), {config.rate:g} orders/s\n")
    for t, kind, text in result.timeline:
        out.write(f"  {t:9.3f}s  {kind:<6}  {text}\n")
    for line in result.violations:
        out.write(f"  VIOLATION {line}\n")
    if result.liveness_detail:
        out.write(f"  LIVENESS {result.liveness_detail}\n")
    out.write(f"orders submitted {result.orders_submitted}, acknowledged {result.orders_acknowledged}, "
              f"applied {result.orders_applied}; detection recall {detection.recall * 100:.1f}% "
              f"({detection.detected}/{detection.counted}), false alarms {len(detection.false_alarms)}; "
              f"trace {result.trace_hash:016x}\n")
    out.write(f"verdict: {verdict}" + ("" if result.ok else f" (safety violations {len(result.violations)}, "
                                        f"live after heal: {result.liveness_ok})") + "\n")
    out.flush()
    return 0 if result.ok else 1

"""`raftctl demo`: the seed's full demo — cluster, collector, dashboard, trading, faults, report."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from raftctl.commands._common import MAX_SHARDS, valid_host
from raftctl.commands.faults import DEFAULT_TICKS
from raftctl.core.scenarios import describe_all

HELP = "Run the full demo: a trading cluster with injected faults, live metrics, a dashboard and a final report."
EPILOG = (
    "Examples:\n\n"
    "  raftctl demo --nodes 5 --ticks 200\n\n"
    "  raftctl demo --fast --no-browser --json | jq .final\n\n"
    "  raftctl demo --fail-at 20,50 --seed 7 --port 0 --sink jsonl:demo.jsonl\n\n"
    "  raftctl demo --shards 4 --fast --no-browser\n\n"
    "  raftctl demo --scenario quorum_loss,split_brain_attempt --fast --no-browser\n\n"
    "Default faults: tick 30 a follower crashes, 60 the leader crashes, 100 a majority crashes "
    "(quorum loss), 130 the leader is cut off; each heals about 18 ticks later. With --shards, "
    "'the leader' is shard 0's (its node may lead other shards too) and 'a follower' is a node "
    "leading no shard when there is one.\n\n"
    "Scenarios for --scenario (played in order, 10 s apart; --ticks defaults to what they need):\n\n"
    + "\n\n".join(f"  {line}" for line in describe_all().splitlines())
)

TICK_SECONDS = 0.3  # simulated seconds per tick: 200 ticks = 1 minute
COLLECTION_INTERVAL = 1.0
ORDER_RATE = 100.0  # orders per simulated second
DEFAULT_SEED = 42
MAX_NODES = 51


def command(
    nodes: Annotated[int, typer.Option("--nodes", min=1, max=MAX_NODES, help="Cluster size.")] = 5,
    shards: Annotated[int, typer.Option("--shards", min=1, max=MAX_SHARDS,
                                        help="Raft groups (multi-Raft); symbols are spread over them.")] = 1,
    ticks: Annotated[Optional[int], typer.Option(
        "--ticks", min=1, max=1_000_000, show_default=False,
        help=f"Demo steps ({TICK_SECONDS:g} s simulated each) \\[default: {DEFAULT_TICKS}, "
             "or what the --scenario list needs].")] = None,
    fail_at: Annotated[Optional[str], typer.Option(
        "--fail-at", metavar="T1,T2,...",
        help="Ticks at which faults start ('none' for no faults) \\[default: 30,60,100,130 scaled to --ticks].",
        show_default=False)] = None,
    scenario: Annotated[Optional[list[str]], typer.Option(
        "--scenario", metavar="NAME[,NAME...]",
        help="Play named scenarios from the library instead of the tick schedule (listed below). Repeatable.",
        show_default=False)] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed: the same seed replays the same run.")] = DEFAULT_SEED,
    host: Annotated[str, typer.Option("--host", callback=valid_host,
                                      help="Dashboard address (127.0.0.1 keeps it local).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Dashboard port (0 picks a free one).")] = 8080,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open the dashboard in a browser.")] = False,
    no_dashboard: Annotated[bool, typer.Option("--no-dashboard", help="Do not start the web dashboard.")] = False,
    fast: Annotated[bool, typer.Option("--fast", help="Run simulated time as fast as possible.")] = False,
    sink: Annotated[Optional[list[str]], typer.Option("--sink", metavar="SPEC",
                                                      help="Stream samples and alerts to a sink (see 'raftctl sinks'). "
                                                           "Repeatable.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print only the final report, as JSON, on stdout.")] = False,
) -> None:
    """Run the full demo and print a report; exit 0 when it ends HEALTHY with equal digests."""
    ticks, lineup = _plan_faults(ticks, fail_at, scenario)
    sinks = _build_sinks(sink, json_output)

    from raftctl.commands.demo_run import DemoRun, DemoView

    run = DemoRun(nodes=nodes, shards=shards, ticks=ticks, lineup=lineup, seed=seed, tick_s=TICK_SECONDS,
                  interval=COLLECTION_INTERVAL, rate=ORDER_RATE, sinks=sinks, fast=fast)
    view = DemoView(run)
    try:
        run.setup()
        if not no_dashboard:
            url = run.start_dashboard(host, port)
            view.note(f"Dashboard: {url}/")
            if not no_browser:
                open_browser(url + "/")
        report = run.execute(view)
    finally:
        run.close()
    if json_output:
        from raftctl.commands._common import write_json

        write_json(report)
    else:
        view.print_report(report)
    raise typer.Exit(0 if report["ok"] else 1)


def _plan_faults(ticks: Optional[int], fail_at: Optional[str],
                 scenario: Optional[list[str]]) -> tuple[int, list[tuple[Any, float]]]:
    """The run length and the scenarios to play (with their start times on the tick clock)."""
    from raftctl.commands import faults
    from raftctl.core import scenarios

    if scenario:
        if fail_at is not None:
            raise typer.BadParameter("use either --fail-at or --scenario, not both", param_hint="'--scenario'")
        try:
            names = scenarios.parse_names(scenario)
        except ValueError as err:
            raise typer.BadParameter(str(err), param_hint="'--scenario'") from None
        lineup, needed = faults.scenario_lineup(names, TICK_SECONDS)
        if ticks is not None and ticks < needed:
            raise typer.BadParameter(f"the scenarios need {needed} ticks; raise --ticks or leave it out",
                                     param_hint="'--ticks'")
        return (ticks or needed), lineup
    ticks = ticks or DEFAULT_TICKS
    try:
        fail_ticks = faults.parse_fail_at(fail_at) if fail_at is not None else faults.default_fail_at(ticks)
        schedule = faults.schedule(fail_ticks, ticks, TICK_SECONDS)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="'--fail-at'") from None
    return ticks, [(schedule, 0.0)]


def _build_sinks(specs: Optional[list[str]], json_output: bool) -> list[Any]:
    from raftctl.commands._common import build_sinks

    if json_output and any((s or "").strip().split(":")[0] == "stdout" for s in specs or []):
        raise typer.BadParameter("the stdout sink would mix with the --json report on stdout; use jsonl:PATH",
                                 param_hint="'--sink'")
    try:
        return build_sinks(specs)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="'--sink'") from None


def display_available() -> bool:
    """A graphical session seems to exist (so opening a browser makes sense)."""
    import os
    import sys

    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_browser(url: str) -> bool:
    """Open ``url`` in a browser when a display is available; quietly nothing otherwise."""
    if not display_available():
        return False
    try:
        import webbrowser

        return bool(webbrowser.open(url, new=2))
    except Exception:  # no usable browser is not an error for a demo
        return False

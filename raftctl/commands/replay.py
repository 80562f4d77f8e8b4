"""`raftctl replay FILE.jsonl`: serve a recorded run through the same API and page, with a time control."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from raftctl.commands._common import CliError, count_of, finite_float, valid_host

HELP = "Replay a run recorded with --sink jsonl:FILE in the dashboard, with pause, seek and speed."
EPILOG = (
    "Examples:\n\n"
    "  raftctl demo --fast --no-dashboard --sink jsonl:run.jsonl\n\n"
    "  raftctl replay run.jsonl --speed 10\n\n"
    "  raftctl replay last-night.jsonl --port 0 --paused\n\n"
    "The page shows a control bar (play/pause, a seek bar with the run's health, speed); "
    "GET /api/replay tells where the replay is. A file holding several runs (the sink appends) "
    "replays the last one, or the one --run names."
)


def command(
    file: Annotated[str, typer.Argument(metavar="FILE.jsonl", help="A file written by the jsonl sink.",
                                        show_default=False)],
    speed: Annotated[float, typer.Option("--speed", metavar="X", callback=finite_float("--speed", 0.01, 1000),
                                         help="Recorded seconds per wall-clock second (0.01 to 1000).")] = 1.0,
    host: Annotated[str, typer.Option("--host", callback=valid_host,
                                      help="Listen address (127.0.0.1 keeps it local).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535,
                                      help="Dashboard port (0 picks a free one).")] = 8080,
    run: Annotated[Optional[int], typer.Option("--run", metavar="N", min=1,
                                               help="Which run of the file (1 = the first) \\[default: the last].",
                                               show_default=False)] = None,
    paused: Annotated[bool, typer.Option("--paused", help="Start paused at the beginning.")] = False,
) -> None:
    """Serve a recorded run until Ctrl-C or SIGTERM (then exit 0)."""
    import signal
    import sys
    import threading

    from raftctl.dashboard.server import DashboardServer
    from raftctl.runtime.replay import RecordingError, ReplayCollector, load_recording, replay_routes

    try:
        recording = load_recording(file)
    except RecordingError as err:
        raise CliError(str(err), exit_code=2) from None
    runs = len(recording.runs)
    if run is not None and run > runs:
        raise CliError(f"--run {run}: {file} holds {runs} run{'' if runs == 1 else 's'}", exit_code=2)
    number = run if run is not None else runs
    collector = ReplayCollector(recording.runs[number - 1], speed=speed, paused=paused)
    server = DashboardServer(collector, host=host, port=port, refresh_seconds=1.0,
                             routes=replay_routes(collector, file, number, runs))
    server.start()
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        which = f"run {number} of {runs}, " if runs > 1 else ""
        note = " (a torn last line was skipped)" if recording.skipped_torn_tail else ""
        sys.stderr.write(f"raftctl replay: {file}: {which}{count_of(len(collector.samples), 'sample')}, "
                         f"{collector.clock.duration:.0f} s at {speed:g}x{note}; dashboard at {server.url}/; "
                         "Ctrl-C or SIGTERM stops\n")
        sys.stderr.flush()
        try:
            while not stop.wait(0.2):
                pass
        except KeyboardInterrupt:
            pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop()

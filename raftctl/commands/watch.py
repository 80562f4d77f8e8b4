"""`raftctl watch`: a live, top-like terminal dashboard over a running server's API."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from raftctl.commands._common import finite_float
from raftctl.commands.summary import UrlOption, url_or_usage_error

HELP = "Live terminal dashboard (like top) over a running raftctl server."
EPILOG = (
    "Examples:\n\n"
    "  raftctl watch\n\n"
    "  raftctl watch --url http://127.0.0.1:9090 --interval 2\n\n"
    "  raftctl watch --once > frame.txt"
)
HISTORY_POINTS = 60


def command(
    url: UrlOption = None,
    interval: Annotated[
        float, typer.Option("--interval", callback=finite_float("--interval", 0.1, 3600),
                            help="Seconds between refreshes (0.1 to 3600).")
    ] = 1.0,
    once: Annotated[bool, typer.Option("--once", help="Print one frame and exit.")] = False,
) -> None:
    """Live terminal dashboard over a running raftctl server. Ctrl-C quits."""
    base = url_or_usage_error(url)
    watcher = Watcher(base, interval)
    if once:
        watcher.poll(raise_errors=True)
        from raftctl.commands._common import stdout_console

        stdout_console().print(watcher.frame())
        return
    try:
        watcher.run()
    except KeyboardInterrupt:
        # Ctrl-C is how one leaves a top-like view: a clean exit, not an error
        raise typer.Exit(0) from None


class Watcher:
    """Polls /api/summary, keeps a short history for sparklines, renders frames."""

    def __init__(self, base_url: str, interval: float) -> None:
        from collections import deque

        self.base_url = base_url
        self.interval = interval
        self.summary: Optional[dict[str, Any]] = None
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY_POINTS)
        self.error: Optional[str] = None
        self.updated_at: Optional[float] = None
        self._seeded = False
        self.replay: Optional[str] = None  # replay_banner's line, asked at each (re)connection
        self._connected = False

    def poll(self, raise_errors: bool = False) -> bool:
        """Fetch one sample; on failure remember the error (or raise it). Returns success."""
        import time

        from raftctl.commands._common import CliError, fetch_history, fetch_summary, replay_banner

        timeout = min(5.0, max(1.0, 2 * self.interval))
        try:
            summary = fetch_summary(self.base_url, timeout=timeout)
        except CliError as err:
            if raise_errors:
                raise
            self.error = err.message
            self._connected = False
            return False
        self.error = None
        if not self._connected or self._new_run(summary) or self.replay is not None:
            # a server that came back may be another one; a replay's position moves every poll
            self.replay = replay_banner(self.base_url, timeout)
            self._connected = True
        self.updated_at = time.time()
        if self._new_run(summary):
            # another collector (the server restarted, or another took its port): its history
            # is its own, and the old run's points and maxima must not sit beside its samples
            self.history.clear()
            self._seeded = False
        self.summary = summary
        if not self._seeded:
            self._seed_history(fetch_history, timeout)
        if not self.history or self.history[-1].get("sequence") != summary.get("sequence"):
            self.history.append(summary)
        return True

    def _new_run(self, summary: dict[str, Any]) -> bool:
        """True when ``summary`` comes from another run than the samples held: its collector
        started at another time, or its sequence went back (a replay sought back counts too)."""
        if not self.history:
            return False
        last = self.history[-1]

        def started(doc: dict[str, Any]) -> Any:
            collector = doc.get("collector")
            return collector.get("started_at") if isinstance(collector, dict) else None

        was, now = started(last), started(summary)
        if was is not None and now is not None and was != now:
            return True
        before, seq = last.get("sequence"), summary.get("sequence")
        return isinstance(before, int) and isinstance(seq, int) and seq < before

    def _seed_history(self, fetch_history, timeout: float) -> None:
        from raftctl.commands._common import CliError

        self._seeded = True
        interval = ((self.summary or {}).get("collector") or {}).get("collection_interval") or 1.0
        try:
            samples = fetch_history(self.base_url, HISTORY_POINTS * float(interval), timeout)
        except CliError:
            return  # sparklines then simply start from live samples
        for sample in samples[-HISTORY_POINTS:]:
            self.history.append(sample)

    def frame(self, width: Optional[int] = None, height: Optional[int] = None):
        """The current frame as a rich renderable; given the terminal's ``height``, one that fits
        it, alerts kept: the shard table goes first, then the performance lines, then the alerts
        are cut to what is left with a count of the others (rich cut the frame's bottom, alerts
        and footer, with a bare "...")."""
        import time

        from rich.text import Text

        from raftctl.commands.render import dashboard, firing_alerts

        status = f"disconnected, retrying… ({self.error})" if self.error else self.replay
        shown_summary = self.summary
        # the sample's own time (a replay's is the recording's), not when it was fetched: the
        # banner and the footer both say it
        stamp = (self.summary or {}).get("timestamp")
        sampled = stamp if isinstance(stamp, (int, float)) and not isinstance(stamp, bool) else self.updated_at
        if self.error and self.summary is not None:
            # the last frame stays, but not as the cluster's state now: a bright HEALTHY under a
            # red "disconnected" read as all well; it says STALE, and what it was and how old
            cluster = dict(self.summary.get("cluster") or {})
            was = cluster.get("health_status", "UNKNOWN")
            cluster["health_status"] = "STALE"
            shown_summary = {**self.summary, "cluster": cluster}
            if sampled is not None:
                age = max(0, int(time.time() - sampled))
                status = (f"{status}; below: the last sample, {was} as of "
                          f"{time.strftime('%H:%M:%S', time.localtime(sampled))} ({age} s ago)")
        footer = Text(style="dim")
        footer.append(self.base_url)
        if sampled is not None:
            footer.append("  ·  sample of " + time.strftime("%H:%M:%S", time.localtime(sampled)))
        footer.append(f"  ·  every {self.interval:g}s  ·  Ctrl-C quits")
        spark_width = 60  # the frame narrows it to what the terminal leaves

        def build(omit: tuple[str, ...] = (), alerts_limit: int | None = None, alerts_first: bool = False):
            return dashboard(shown_summary, self.history, title="raftctl watch", status_line=status,
                             width=spark_width, extra=footer, omit=omit, alerts_limit=alerts_limit,
                             alerts_first=alerts_first)

        if height is None or width is None:
            return build()
        room = height - 1  # Live keeps the cursor's line
        for omit in ((), ("shards",), ("shards", "performance")):
            frame = build(omit)
            lines = _frame_height(frame, width)
            if lines <= room:
                return frame
        # still too tall: the alerts and the footer go right under the header, as many alerts as
        # fit with half the room (an alert may wrap), and the node table last, cut where it must be
        least = ("shards", "performance")
        limit = len(firing_alerts(self.summary or {}))
        one = _frame_height(build(least, 1, True), width)  # the frame with a single alert line
        while limit > 1 and _frame_height(build(least, limit, True), width) - one > room // 2:
            limit -= 1
        return build(least, alerts_limit=limit, alerts_first=True)

    def run(self) -> None:
        """Refresh until interrupted: rich Live on a terminal, plain frames otherwise."""
        import time

        from raftctl.commands._common import stderr_console, stdout_console

        console = stdout_console()
        if console.is_terminal:
            from rich.live import Live

            with Live(console=console, auto_refresh=False, screen=False, transient=False) as live:
                while True:
                    self.poll()
                    live.update(self.frame(console.width, console.height), refresh=True)
                    time.sleep(self.interval)
        errors = stderr_console()
        was_down = False
        while True:
            ok = self.poll()
            if ok:
                if was_down:
                    errors.print("reconnected")
                console.print(self.frame(console.width))
                console.file.flush()
            elif not was_down:
                errors.print(f"disconnected, retrying… ({self.error})")
            was_down = not ok
            time.sleep(self.interval)


def _frame_height(frame: Any, width: int) -> int:
    """Lines ``frame`` takes at ``width`` columns."""
    import io

    from rich.console import Console

    console = Console(width=width, file=io.StringIO(), color_system=None, force_terminal=False)
    return len(console.render_lines(frame, console.options, pad=False))

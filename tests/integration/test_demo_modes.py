"""A demo with --fast and one in real time are the same run for the same seed (README: "The
same seed replays the same run"). --fast advanced with run_for's sum of tick steps, real time to
k * tick_s: they differ by a float ulp, so an event due exactly at a tick ran before that tick's
fault in one mode and after it in the other, and the runs parted (another leader cut off at tick
130 of the default demo, other trades, other latencies)."""

from __future__ import annotations

import contextlib

from raftctl.commands import faults
from raftctl.commands.demo_run import DemoRun


class _QuietView:
    def __init__(self, run: DemoRun | None = None) -> None:
        self.lines: list[str] = []
        self.run = run
        self.instants: list[float] = []
        self.base = 0.0

    def live(self):  # noqa: ANN201 - a context manager, as DemoView's
        return contextlib.nullcontext()

    def on_tick(self, tick: int) -> None:
        if self.run is not None:
            self.instants.append(self.run.cluster.now_ms)

    def on_fault(self, text: str) -> None:
        self.lines.append(text)

    def on_sample(self, index: int, sample: dict) -> None:
        pass

    def on_alert(self, alert: dict, tick: int) -> None:
        self.lines.append(f"tick {tick}: {alert['status']} {alert['name']}")


def _run(fast: bool, ticks: int, tick_s: float, view: _QuietView | None = None) -> tuple[dict, list[str], int]:
    fail = faults.default_fail_at(ticks)
    lineup = [(faults.schedule(fail, ticks, tick_s), 0.0)]
    run = DemoRun(nodes=5, ticks=ticks, lineup=lineup, seed=42, tick_s=tick_s, interval=1.0, rate=50.0,
                  sinks=[], fast=fast)
    view = view or _QuietView()
    view.run = run
    try:
        run.setup()
        view.base = run.cluster.now
        report = run.execute(view)
    finally:
        run.close()
    return report, view.lines, run.cluster.trace_hash


def test_fast_and_real_time_demos_of_one_seed_are_the_same_run():
    ticks, tick_s = 60, 0.05  # 3 s of wall time for the paced run; 0.05 * k drifts from the sum of steps
    fast, fast_lines, fast_trace = _run(True, ticks, tick_s)
    paced, paced_lines, paced_trace = _run(False, ticks, tick_s)
    assert fast_lines == paced_lines
    assert fast_trace == paced_trace, "the simulations parted"
    for key in ("final", "orders", "trades", "latency", "leader_changes"):
        if key in fast:
            assert fast[key] == paced[key], key


def test_a_fast_demo_stops_each_tick_at_the_instant_a_paced_one_does():
    """The pacer advances to base + k * tick_s; --fast summed tick_s k times, which is another
    float (3 * 0.3 s = 900.0 ms summed, 899.9999999999999 ms multiplied): an event due at that
    very instant ran on one side of the tick's fault in one mode and on the other in the other."""
    ticks, tick_s = 40, 0.3
    view = _QuietView()
    _run(True, ticks, tick_s, view)
    ticked = view.instants[:ticks]
    expected = [(view.base + k * tick_s) * 1000.0 for k in range(1, ticks + 1)]  # Pacer.advance_to's target
    assert ticked == expected

"""The one pacer: runs a Simulation against the wall clock.

``speed`` simulated seconds pass per wall second. The simulation advances in short slices
(``slice_ms`` simulated) under ``sim.lock``, releasing it between slices so readers (the
collector, the dashboard) never wait long, and sleeping until the wall clock catches up. Events
scheduled inside the simulation (samples every interval, faults at their instants) therefore
happen evenly spaced in wall time, within one slice. ``advance_to`` paces in the caller's thread
(the demo, ``serve``); ``start`` runs the same loop on a daemon thread (``Cluster.start``).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

__all__ = ["Pacer"]

FALL_BEHIND_RESET_S = 5.0  # further behind than this (a suspended laptop): do not try to catch up


class Pacer:
    """Paces ``sim`` (anything with ``lock``, ``now_ms`` and ``run_to(ms)``) against the wall clock."""

    def __init__(self, sim: Any, speed: float = 1.0, slice_ms: float = 20.0,
                 clock: Callable[[], float] = time.monotonic,
                 on_fall_behind: Callable[[float], None] | None = None) -> None:
        """``on_fall_behind(seconds)``: told the simulated seconds given up when the pacer falls
        too far behind to catch up (the process was stopped or starved): the samples of that
        stretch were never taken, and a collector counts them as missed ticks."""
        if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not speed > 0:
            raise ValueError("speed must be a positive number")
        if not slice_ms > 0:
            raise ValueError("slice_ms must be positive")
        self.sim = sim
        self.speed = float(speed)
        self.slice_ms = float(slice_ms)
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wall0: float | None = None
        self._sim0 = 0.0
        self.on_fall_behind = on_fall_behind

    # ---- the wall-clock mapping -----------------------------------------------------------

    def _anchor(self) -> None:
        self._wall0 = self._clock()
        self._sim0 = self.sim.now_ms

    def set_speed(self, speed: float) -> None:
        """Go on at ``speed`` from here (the mapping restarts at this instant)."""
        if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not speed > 0:
            raise ValueError("speed must be a positive number")
        self._anchor()
        self.speed = float(speed)

    def _due_ms(self) -> float:
        """The simulated time (ms) the wall clock says it should be now."""
        if self._wall0 is None:
            self._anchor()
        assert self._wall0 is not None
        due = self._sim0 + (self._clock() - self._wall0) * 1000.0 * self.speed
        if due - self.sim.now_ms > FALL_BEHIND_RESET_S * 1000.0 * self.speed:
            skipped = (due - self.sim.now_ms) / 1000.0
            self._anchor()  # far behind: restart the mapping from here
            due = self.sim.now_ms
            if self.on_fall_behind is not None:
                self.on_fall_behind(skipped)
        return due

    def _advance_slices(self, target_ms: float) -> None:
        sim = self.sim
        while sim.now_ms < target_ms and not self._stop.is_set():
            with sim.lock:
                sim.run_to(min(target_ms, sim.now_ms + self.slice_ms))
            # Let a reader waiting on the lock take it before this thread grabs it again:
            # Python locks are not fair.
            time.sleep(0)

    # ---- foreground -----------------------------------------------------------------------

    def advance_to(self, sim_seconds: float, stop: threading.Event | None = None) -> bool:
        """Advance to ``sim_seconds`` no faster than the wall clock allows; False if stopped."""
        target_ms = sim_seconds * 1000.0
        sim = self.sim
        while sim.now_ms < target_ms:
            if self._stop.is_set() or (stop is not None and stop.is_set()):
                return False
            due = min(self._due_ms(), target_ms)
            if due > sim.now_ms:
                self._advance_slices(due)
            if sim.now_ms < target_ms:
                wait = min(self.slice_ms / 1000.0 / self.speed, 0.05)
                if stop is not None:
                    stop.wait(wait)
                else:
                    self._stop.wait(wait)
        return True

    # ---- background -----------------------------------------------------------------------

    def start(self) -> None:
        """Advance forever on a daemon thread until :meth:`stop`."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._anchor()
        self._thread = threading.Thread(target=self._run, name="raftctl-pacer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._advance_slices(self._due_ms())
            self._stop.wait(0.005)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

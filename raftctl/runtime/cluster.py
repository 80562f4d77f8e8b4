"""``raftctl.Cluster``: the pure Simulation with a lock, paced against the wall clock on demand."""

from __future__ import annotations

import threading
from typing import Any

from raftctl.core.sim.simulation import Simulation
from raftctl.runtime.pacer import Pacer

__all__ = ["Cluster"]


class Cluster(Simulation):
    """A simulated Raft cluster of exchange nodes (see :class:`~raftctl.core.sim.simulation.Simulation`).

    ``lock`` is a ``threading.RLock`` held while the simulation advances; readers on other
    threads take it. ``start(speed)`` paces the simulation against the wall clock on a daemon
    thread; ``stop()`` ends that.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.lock = threading.RLock()
        self._pacer: Pacer | None = None
        super().__init__(*args, **kwargs)

    def start(self, speed: float = 1.0) -> None:
        """Run the simulation on a daemon thread, ``speed`` simulated seconds per wall second
        (already running: go on at ``speed``)."""
        pacer = Pacer(self, speed=speed)  # validates speed
        if self._pacer is not None and self._pacer.running:
            self._pacer.set_speed(speed)
            return
        self._pacer = pacer
        pacer.start()

    def stop(self) -> None:
        """Stop the pacing thread (the simulation state is kept)."""
        if self._pacer is not None:
            self._pacer.stop()
            self._pacer = None

    @property
    def running(self) -> bool:
        return self._pacer is not None and self._pacer.running

    @property
    def speed(self) -> float | None:
        """Simulated seconds per wall second while ``start`` paces it; None when not running."""
        pacer = self._pacer
        return pacer.speed if pacer is not None and pacer.running else None

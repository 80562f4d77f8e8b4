"""``raftctl.MetricsCollector``: the pure SampleCollector with a sampling thread and sink workers.

Sampling runs every ``collection_interval`` seconds of the collector clock on a daemon thread
(``start``: wall seconds, or simulated ones for a cluster paced by ``Cluster.start(speed)``),
or synchronously at simulated instants (``collect(now=...)``, as ``serve``, the demo and the
tests do). Each sink runs on its own worker thread behind a bounded drop-oldest queue, so
nothing slow happens on the sampling path.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any, Callable, Iterable, Mapping

from raftctl.core.alerts import DEFAULT_THRESHOLDS
from raftctl.core.collector import NO_SINKS, SampleCollector, UnknownNodeError
from raftctl.sinks.base import Sink, SinkWorker, build_sink

__all__ = ["MetricsCollector", "UnknownNodeError"]

log = logging.getLogger("raftctl.core.collector")


class MetricsCollector(SampleCollector):
    """Samples every node of a Cluster on an interval and streams to sinks.

    ``collection_interval`` and ``retention_period`` are seconds of the collector clock (the
    cluster's simulated clock unless ``collect(now=...)`` says otherwise); at most
    ``ceil(retention_period / collection_interval)`` samples are retained.
    ``leader_election_timeout`` is the default for the ``max_no_leader_s`` threshold.
    """

    def __init__(self, collection_interval: float = 1.0, retention_period: float = 300,
                 alert_callback: Callable[[dict[str, Any]], Any] | None = None,
                 sinks: Iterable[Any] | None = None,
                 alert_thresholds: Mapping[str, Any] | None = None,
                 leader_election_timeout: float = DEFAULT_THRESHOLDS["max_no_leader_s"],
                 *, max_sink_queue: int = 1000, alert_history_limit: int = 1000,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.RLock()  # guards published state and the stores
        self._collect_lock = threading.Lock()  # one collect() at a time
        super().__init__(collection_interval, retention_period, alert_callback, alert_thresholds,
                         leader_election_timeout, max_sink_queue=max_sink_queue,
                         alert_history_limit=alert_history_limit, wall_clock=wall_clock,
                         perf_clock=time.perf_counter)
        self._workers: list[SinkWorker] = []
        self.undrained_sinks: list[str] = []  # sinks the last stop() could not drain in time
        if isinstance(sinks, (str, Sink)):
            sinks = [sinks]  # one spec or sink; iterating a string would build one per letter
        elif sinks is not None and not isinstance(sinks, Iterable):
            raise ValueError(f"sinks must be a list of Sink objects or spec strings, got {sinks!r}")
        for sink in sinks or ():
            if isinstance(sink, str):
                sink = build_sink(sink)
            elif not isinstance(sink, Sink):
                raise ValueError(f"sinks must be Sink objects or spec strings, got {sink!r}")
            self._workers.append(SinkWorker(sink, max_queue=max_sink_queue))
        self._sinks_open = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ sinks on the sample path

    def _sink_counters(self) -> dict[str, int]:
        workers = self._workers
        if not workers:
            return NO_SINKS
        stats = [w.sink.stats() for w in workers]
        return {
            "sink_events_dropped": sum(w.dropped for w in workers),
            "sink_errors": sum(w.errors for w in workers),
            "sink_delivery_failures": sum(int(s.get("failed", 0)) for s in stats),
            # what a sink confirms delivered (a webhook: its receiver's 2xx), else what its worker
            # handed it without an error (a file or stdout sink writes it then)
            "sink_delivered": sum(int(s["delivered"]) if "delivered" in s else w.delivered
                                  for w, s in zip(workers, stats)),
            "sink_pending": sum(int(s.get("pending", 0)) for s in stats),
            "sink_expired": sum(int(s.get("expired", 0)) for s in stats),
        }

    def _fan_out(self, sample: dict[str, Any], events: list[dict[str, Any]]) -> None:
        if not self._workers:
            return
        self._open_sinks()
        for worker in self._workers:
            if worker.sink.accepts_samples:
                worker.submit("sample", sample)
            # one sample's events together: the webhook makes one notification per changed group
            worker.submit_alerts(events)

    # ------------------------------------------------------------------ background sampling

    def start(self) -> None:
        """Sample every ``collection_interval`` s of the collector clock on a daemon thread: wall
        seconds, or for a simulated cluster paced by ``Cluster.start(speed)``, simulated seconds
        (``collection_interval / speed`` wall seconds apart)."""
        if self._source is None:
            raise RuntimeError("no cluster to sample: call set_cluster() or set_source() first")
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._open_sinks()
            self._thread = threading.Thread(target=self._run, name="raftctl-collector", daemon=True)
            self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _wall_interval(self) -> float:
        """Wall seconds between samples: the interval is the collector clock's, which runs
        ``speed`` times the wall clock for a paced simulation (10 s of history at speed 10 were
        100 simulated seconds, in a tenth of the samples)."""
        speed = getattr(self._cluster, "speed", None)
        if isinstance(speed, (int, float)) and not isinstance(speed, bool) and speed > 0:
            return self.collection_interval / speed
        return self.collection_interval

    def _run(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            try:
                self.collect()
            except Exception:
                self.collect_errors += 1
                log.exception("metrics collection failed")
            interval = self._wall_interval()
            # fixed cadence: the next tick is scheduled from the previous one, not from now
            next_tick += interval
            delay = next_tick - time.monotonic()
            if delay < 0:
                missed = math.ceil(-delay / interval)
                self.missed_ticks += missed
                next_tick += missed * interval
                delay = next_tick - time.monotonic()
            if self._stop.wait(max(0.0, delay)):
                break

    def stop(self, timeout: float = 5.0) -> None:
        """Stop background sampling and close the sinks (draining them up to ``timeout`` s)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            self._thread = None
        self._close_sinks(timeout)

    close = stop

    def __enter__(self) -> "MetricsCollector":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ sinks

    def _open_sinks(self) -> None:
        if self._sinks_open:
            return
        with self._lock:
            if self._sinks_open:
                return
            for worker in self._workers:
                worker.start()
            self._sinks_open = True

    def _close_sinks(self, timeout: float) -> None:
        with self._lock:
            if not self._sinks_open:
                return
            self._sinks_open = False
            workers = list(self._workers)
        # each worker gets the whole budget, all at once: a hung webhook must not starve the
        # jsonl file's drain, and two hung sinks cost one budget, not two
        results: dict[int, bool] = {}

        def close(index: int, worker: SinkWorker) -> None:
            results[index] = worker.close(timeout)

        closers = [threading.Thread(target=close, args=(i, w), name=f"raftctl-close-{w.sink.name}", daemon=True)
                   for i, w in enumerate(workers)]
        for closer in closers:
            closer.start()
        for closer in closers:
            closer.join(timeout + 2.0)
        self.undrained_sinks = [w.sink.name for i, w in enumerate(workers) if not results.get(i, False)]

    def add_sink(self, sink: Any) -> None:
        """Attach a Sink (or a spec string) to a collector; opened with the others."""
        if isinstance(sink, str):
            sink = build_sink(sink)
        elif not isinstance(sink, Sink):
            raise ValueError(f"expected a Sink or a spec string, got {sink!r}")
        worker = SinkWorker(sink, max_queue=self.max_sink_queue)
        with self._lock:
            self._workers.append(worker)
            if self._sinks_open:
                worker.start()

    @property
    def sinks(self) -> list[Any]:
        return [worker.sink for worker in self._workers]

    def sink_stats(self) -> list[dict[str, Any]]:
        """Per-sink counters: queued, dropped, errors, delivered and sink-specific ones."""
        return [worker.stats() for worker in self._workers]

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every sink has handled what was queued; False on timeout."""
        deadline = time.monotonic() + timeout
        return all(w.wait_idle(max(0.0, deadline - time.monotonic())) for w in self._workers)

"""Chaos campaigns over a process pool: each seed is one pure run (``raftctl.core.chaos``)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from typing import Any, Callable, Iterator

from raftctl.core import chaos
from raftctl.core.chaos import CampaignConfig, aggregate

__all__ = ["run_campaign"]


def _worker(job: tuple[int, CampaignConfig]) -> dict[str, Any]:
    seed, config = job
    return chaos.run_summary(seed, config)  # looked up per call, so tests can replace it


def run_campaign(config: CampaignConfig, workers: int | None = None,
                 progress: Callable[[int, int], Any] | None = None) -> dict[str, Any]:
    """Run every seed of ``config`` (in processes when ``workers`` > 1) and aggregate.

    Results are gathered in seed order, so the figures do not depend on ``workers``.
    ``progress(done, total)`` is called as runs finish.
    """
    config.validate()
    if workers is None:
        workers = os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    workers = min(workers, config.runs)
    jobs = [(config.seed + i, config) for i in range(config.runs)]
    started = time.perf_counter()
    summaries: list[dict[str, Any]] = []
    if workers == 1:
        for job in jobs:
            summaries.append(_worker(job))
            if progress:
                progress(len(summaries), len(jobs))
    else:
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        chunk = max(1, min(8, config.runs // (workers * 8)))
        with _forked_without_handlers():
            pool = context.Pool(workers, initializer=_ignore_interrupts)
        with pool:
            for summary in pool.imap(_worker, jobs, chunksize=chunk):
                summaries.append(summary)
                if progress:
                    progress(len(summaries), len(jobs))
    report = aggregate(summaries, config)
    report["wall_seconds"] = round(time.perf_counter() - started, 2)
    report["workers"] = workers
    return report


@contextlib.contextmanager
def _forked_without_handlers() -> Iterator[None]:
    """While the pool forks its workers: SIGINT ignored and SIGTERM / SIGHUP at their defaults,
    so a worker has them from its first instant (a Ctrl-C between its fork and its initializer
    would otherwise raise in it); the parent's own handlers come back right after."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; the initializer still does it in the workers
        return
    wanted = {signal.SIGINT: signal.SIG_IGN, signal.SIGTERM: signal.SIG_DFL, signal.SIGHUP: signal.SIG_DFL}
    previous = {signum: signal.signal(signum, handler) for signum, handler in wanted.items()}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _ignore_interrupts() -> None:
    """In a pool worker: Ctrl-C (SIGINT to the terminal's whole process group) is the parent's
    to handle; it stops the pool (SIGTERM, which must then just end the worker, whatever handler
    the fork copied from the parent). Without this every worker printed its own traceback."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)

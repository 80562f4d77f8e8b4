"""SIGSTOP that has taken hold: a stopped process answers nobody from the moment this returns.

``kill(pid, SIGSTOP)`` returns once the signal is queued. The kernel stops a process's threads
only as the first of them gets a CPU and takes the signal; until then the others run on, so
on a busy machine a "stopped" node can still answer a poll sent right after the kill (the
cause of a flaky test). :func:`sigstop` waits until every thread shows as stopped in
``/proc/PID/task/*/stat``.
"""

from __future__ import annotations

import os
import signal
import time

__all__ = ["sigstop", "all_threads_stopped"]


def all_threads_stopped(pid: int) -> bool:
    """True when every thread of ``pid`` is stopped (state T or t); False if any runs, or the
    process is gone."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # a thread that ended meanwhile
        # "pid (comm) S ...": the state follows the last ')' (comm may hold spaces or parens)
        if stat[stat.rfind(b")") + 2:stat.rfind(b")") + 3] not in (b"T", b"t"):
            return False
    return bool(tasks)


def sigstop(pid: int, timeout: float = 2.0) -> bool:
    """SIGSTOP ``pid`` and wait (at most ``timeout`` s) until all its threads are stopped.
    Returns whether they are; without ``/proc`` it returns False right after the signal, and
    for a process that is gone (it died between the caller's check and the signal) at once."""
    try:
        os.kill(pid, signal.SIGSTOP)
    except ProcessLookupError:
        return False
    if not os.path.isdir(f"/proc/{pid}/task"):
        return False
    deadline = time.monotonic() + timeout
    while not all_threads_stopped(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True

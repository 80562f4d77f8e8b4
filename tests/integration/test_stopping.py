"""runtime/stopping.py: SIGSTOP that has taken hold on every thread of a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from raftctl.runtime.stopping import all_threads_stopped, sigstop

# a process with several busy threads: each must be seen stopped, not only the main one
BUSY = ("import threading\n"
        "def spin():\n"
        "    while True:\n"
        "        sum(range(1000))\n"
        "for _ in range(3):\n"
        "    threading.Thread(target=spin, daemon=True).start()\n"
        "print('ready', flush=True)\n"
        "spin()\n")


def user_ticks(pid: int) -> int:
    """CPU time (utime, clock ticks) of all the process's threads."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            total += int(f.read().rsplit(")", 1)[1].split()[11])
    return total


def test_sigstop_returns_once_every_thread_is_stopped_and_sigcont_undoes_it() -> None:
    proc = subprocess.Popen([sys.executable, "-c", BUSY], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        assert len(os.listdir(f"/proc/{proc.pid}/task")) >= 4
        assert not all_threads_stopped(proc.pid)  # spinning threads are running
        assert sigstop(proc.pid) is True
        assert all_threads_stopped(proc.pid)
        before = user_ticks(proc.pid)
        time.sleep(0.2)
        assert user_ticks(proc.pid) == before  # no thread used CPU time while stopped
        os.kill(proc.pid, signal.SIGCONT)
        deadline = time.monotonic() + 5
        while all_threads_stopped(proc.pid):
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        proc.kill()
        proc.wait(10)
    assert not all_threads_stopped(proc.pid)  # a process that is gone is not "stopped"
    assert sigstop(proc.pid) is False  # nor does stopping it raise (a pause racing a crash)

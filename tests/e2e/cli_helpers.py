"""Running the raftctl CLI as a subprocess, the way a user's shell would."""

from __future__ import annotations

import os
import subprocess
import sys

RAFTCTL = [sys.executable, "-m", "raftctl"]


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``raftctl ARGS`` with colours off and no RAFTCTL_URL; never allow a traceback."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "140"}
    env.pop("RAFTCTL_URL", None)
    proc = subprocess.run([*RAFTCTL, *args], capture_output=True, text=True, timeout=timeout, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def live_pids(root: object, marker: bytes) -> set[int]:
    """PIDs of live (not zombie) processes whose command line names ``root`` and holds ``marker``."""
    from pathlib import Path

    under = str(root).encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if under in cmdline and marker in cmdline and state != "Z":
            found.add(int(entry.name))
    return found

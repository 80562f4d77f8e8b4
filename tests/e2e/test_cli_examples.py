"""The seed's example scripts run as the seed prints them (subprocesses, ephemeral ports)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "DISPLAY": "", "WAYLAND_DISPLAY": ""})
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_quick_example_prints_the_seed_lines():
    proc = run_example("test_monitoring_quick.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("✓ Cluster created, leader: node")
    assert "✓ Metrics collector started" in lines
    assert any(line.startswith("[1] Healthy: 3/3, Leader: node") and line.endswith("Status: healthy") for line in lines)
    assert "✓ Health API: healthy" in lines
    assert "✓ Summary API: 3 nodes" in lines
    assert lines[-1] == "✓ MONITORING TEST COMPLETE"


def test_monitoring_demo_runs_the_schedule_and_ends_healthy():
    proc = run_example("monitoring_demo.py", "--fast", "--port", "0", "--no-browser")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    out = proc.stdout
    for tick in (30, 60, 100, 130):
        assert f"[tick {tick}]" in out
    assert "quorum lost" in out and "ALERT firing: quorum_loss" in out
    assert "✓ Final: HEALTHY" in out and "digests equal" in out


def test_production_usage_snippet_runs_with_cluster_nodes():
    proc = run_example("production_usage.py", "--port", "0", "--seconds", "6")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Dashboard: http://127.0.0.1:" in proc.stdout
    assert "PAGE FIRING" in proc.stdout  # the alert_callback of the snippet was called


def test_examples_refuse_bad_arguments_with_one_usage_line():
    for name, args, fragment in (("production_usage.py", ("--port", "0", "--seconds", "-3"), "--seconds"),
                                 ("production_usage.py", ("--port", "70000"), "--port"),
                                 ("monitoring_demo.py", ("--port", "-5"), "--port")):
        proc = run_example(name, *args, timeout=30)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, (name, args, proc.stderr)
        assert f"error: {fragment}" in proc.stderr and "Dashboard" not in proc.stdout, (name, args, proc.stderr)

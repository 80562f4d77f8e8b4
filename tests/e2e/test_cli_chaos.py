"""`raftctl chaos` as a subprocess: the table, --json, --replay, exit codes and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

RAFTCTL = [sys.executable, "-m", "raftctl"]


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "160"}
    proc = subprocess.run([*RAFTCTL, *args], capture_output=True, text=True, timeout=timeout, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_json_campaign_has_the_figures_named_for_what_they_count():
    proc = run("chaos", "--runs", "4", "--seed", "21", "--duration", "8", "--workers", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # not a TTY: no progress noise
    doc = json.loads(proc.stdout)
    for key in ("runs", "safety_violations", "liveness_failures", "failing_seeds", "faults_injected",
                "leaderless_ms", "orders_acknowledged", "orders_applied", "recall", "false_alarms",
                "detection_latency_s"):
        assert key in doc, key
    assert doc["runs"] == 4 and doc["first_seed"] == 21 and doc["last_seed"] == 24
    assert set(doc["leaderless_ms"]) >= {"median", "p99"}
    assert set(doc["detection_latency_s"]) == {"median", "p99", "max"}
    assert doc["failing_seeds"] == [] and doc["recall"] == 1.0 and doc["false_alarms"] == 0


def test_table_on_stdout():
    proc = run("chaos", "--runs", "2", "--seed", "3", "--duration", "6", "--workers", "1",
               "--faults", "crash,restart")
    assert proc.returncode == 0, proc.stderr
    for figure in ("runs", "faults injected", "safety violations", "liveness failures after heal",
                   "time without leader", "orders acknowledged / applied", "detection recall",
                   "false alarms", "detection latency"):
        assert figure in proc.stdout, figure
    assert "partition" not in proc.stdout.split("faults injected")[1].split("\n")[0]


def test_a_sharded_campaign_and_replay_say_how_many_shards():
    proc = run("chaos", "--runs", "1", "--seed", "3", "--duration", "6", "--shards", "3")
    assert proc.returncode == 0, proc.stderr
    runs = " ".join(proc.stdout.split("runs", 1)[1].split("faults injected")[0].split())
    assert "5 nodes, 3 shards, 6 s each" in runs, proc.stdout
    replay = run("chaos", "--replay", "3", "--duration", "6", "--shards", "3")
    assert replay.stdout.splitlines()[0].startswith("replay seed 3: 5 nodes, 3 shards, 6 s of faults"), replay.stdout
    plain = run("chaos", "--runs", "1", "--seed", "3", "--duration", "6")
    assert "shards" not in plain.stdout.split("faults injected")[0], plain.stdout


def test_replay_prints_faults_leaders_alerts_and_verdict():
    proc = run("chaos", "--replay", "7", "--duration", "10", "--faults", "crash,restart")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("replay seed 7")
    assert any(" leader " in line and "elected leader of term" in line for line in lines)
    assert any(" fault " in line and "crash node" in line for line in lines)
    assert any(" alert " in line for line in lines)
    assert lines[-1] == "verdict: OK"
    again = run("chaos", "--replay", "7", "--duration", "10", "--faults", "crash,restart")
    assert again.stdout == proc.stdout  # one seed, one story


@pytest.mark.parametrize("args, needle", [
    (("--faults", "crash,meteor"), "unknown fault kind(s) meteor"),
    (("--runs", "0"), "--runs"),
    (("--runs", "abc"), "--runs"),
    (("--nodes", "-3"), "--nodes"),
    (("--workers", "0"), "--workers"),
    (("--bogus",), "--bogus"),
])
def test_usage_errors_exit_2_with_one_line(args, needle):
    proc = run("chaos", *args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert needle in proc.stderr


def test_a_failing_run_exits_1_and_names_its_seed(monkeypatch, capsys):
    from raftctl import cli
    from raftctl.core import chaos

    real = chaos.run_summary

    def sabotaged(seed, config):
        summary = real(seed, config)
        if seed == 2:
            summary["liveness_ok"] = False
            summary["liveness_detail"] = "no leader within 2.0s after heal"
        return summary

    monkeypatch.setattr(chaos, "run_summary", sabotaged)
    code = cli.run(["chaos", "--runs", "3", "--seed", "1", "--duration", "4", "--workers", "1"])
    out = capsys.readouterr().out
    assert code == 1
    assert "seeds: 2" in out and "replay one with: raftctl chaos --replay 2" in out


def test_the_table_says_why_a_coarse_interval_loses_recall_and_counts_heals_apart():
    from raftctl.commands.chaos import report_rows

    proc = run("chaos", "--runs", "2", "--seed", "5000", "--duration", "20", "--workers", "1",
               "--interval", "10", "--json")
    report = json.loads(proc.stdout)
    rows = dict(report_rows(report))
    assert "a sample every 10 s cannot see every incident within 2 s" in rows["detection recall"]
    assert report["heal_steps_total"] == sum(report["heal_steps"].values()) > 0
    assert f"plus {report['heal_steps_total']} steps that undid one" in rows["faults injected"]
    fine = dict(report_rows(dict(report, collection_interval_s=1.0, heal_steps={}, heal_steps_total=0)))
    assert "cannot see" not in fine["detection recall"] and "undid" not in fine["faults injected"]

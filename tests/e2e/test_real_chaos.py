"""`raftctl chaos --target etcd`: a seeded campaign of real faults on real etcd processes, scored honestly.

The campaigns run as the user runs them (the CLI as a subprocess) with ``TMPDIR`` pointed at the
test's directory, so every etcd process the campaign starts carries that directory in its
``--data-dir`` and can be found in /proc: the tests see the processes while the campaign runs and
check that none, and no directory, is left afterwards (on SIGTERM too). One in-process campaign
samples too rarely for its deadline and must miss incidents: the score can fail.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cli_helpers import RAFTCTL, live_pids, run_cli
from etcd_fixtures import require_etcd

from raftctl.runtime.etcd_cluster import EtcdCluster
from raftctl.runtime.real_chaos import (
    DEFAULT_KINDS,
    ProcessCluster,
    RealChaosConfig,
    plan_faults,
    report_lines,
    run_etcd_campaign,
)


def etcd_pids(root: Path) -> set[int]:
    """PIDs of live processes whose command line names a directory under ``root``."""
    return live_pids(root, b"--data-dir")


def wait_gone(root: Path, timeout: float = 10.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while True:
        left = etcd_pids(root)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def campaign_env(tmp: Path) -> dict[str, str]:
    env = {**os.environ, "TMPDIR": str(tmp), "NO_COLOR": "1"}
    env.pop("ETCD_BINARY", None)
    return env


def leftovers(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir())


def test_campaign_on_three_members_reports_honest_figures_and_leaves_nothing(tmp_path: Path) -> None:
    require_etcd()
    proc = subprocess.Popen([*RAFTCTL, "chaos", "--target", "etcd", "--members", "3", "--faults", "6",
                             "--seed", "7", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=campaign_env(tmp_path))
    seen: set[int] = set()
    deadline = time.monotonic() + 150
    while proc.poll() is None:
        seen |= etcd_pids(tmp_path)
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the 6-fault campaign did not end within 150 s")
        time.sleep(0.5)
    out, err = proc.communicate()
    assert "Traceback" not in err, err
    assert proc.returncode == 0, err
    # the processes existed (the check below can fail), and none is left, nor any directory
    assert len(seen) >= 3, f"saw etcd pids {seen}"
    assert wait_gone(tmp_path, 2.0) == set()
    assert leftovers(tmp_path) == []

    report = json.loads(out)
    assert report["target"] == "etcd" and report["members"] == 3
    assert report["faults_injected_total"] == 6
    assert sum(report["faults_injected"].values()) == 6
    assert set(report["faults_injected"]) == set(DEFAULT_KINDS)
    assert report["injector_errors"] == [] and report["recovered"] is True
    assert report["min_incident_s"] == 2.0 and report["deadline_s"] == 2.0
    # recall is computed from counted incidents: a kill or pause holds 2-6 s, so some count
    assert report["incidents_counted"] >= 1
    assert report["recall"] == report["incidents_detected"] / report["incidents_counted"]
    latency = report["detection_latency_s"]
    assert latency["count"] == report["incidents_detected"]
    assert latency["max"] is None or latency["max"] <= report["deadline_s"]
    assert isinstance(report["false_alarms"], int) and report["false_alarms"] <= report["alerts_fired"]
    assert report["samples"] >= report["campaign_seconds"] - 3  # one sample a second
    log = report["fault_log"]
    assert [row["index"] for row in log] == list(range(6))
    assert all(log[i]["t"] < log[i + 1]["t"] for i in range(5))
    for row in log:
        assert row["member"] in report["member_names"]
        assert row["repaired_at"] is not None and row["repaired_at"] >= row["t"]
        if row["kind"] != "restart":
            assert 2.0 <= row["repaired_at"] - row["t"] <= 6.5  # held 2-6 s
            assert row["raftctl_node_down_verdict"] in ("detected", "missed")
        if row["raftctl_node_down_verdict"] == "detected":
            assert 0 < row["raftctl_node_down_s"] <= 2.0
        for key in ("etcd_has_leader_s", "etcd_leader_changes_s", "etcd_health_s"):
            assert row[key] is None or row[key] > 0
    signals = report["etcd_signals"]
    groups = [signals[g] for g in ("leader_faults", "follower_faults")]
    assert sum(g["faults"] + g["overlapping"] for g in groups) == 6
    assert groups[0]["faults"] + groups[0]["overlapping"] == report["leader_faults"]
    assert signals["alone"] == sum(1 for row in log if not row["overlaps"]) == groups[0]["faults"] + groups[1]["faults"]
    for group in ("leader_faults", "follower_faults"):
        for key in ("etcd_has_leader", "etcd_health", "etcd_leader_changes", "raftctl_node_down"):
            extra = {"judged"} if key.startswith("raftctl") else set()
            assert set(signals[group][key]) == {"shown", "count", "median", "p99", "max"} | extra
    # a follower's crash never takes the survivors' leader away: etcd's own signals cannot show it
    for row in log:
        if not row["was_leader"]:
            assert row["etcd_has_leader_s"] is None and row["etcd_leader_changes_s"] is None


def test_a_campaign_that_samples_too_rarely_misses_incidents(tmp_path: Path) -> None:
    """The score can fail: samples 5 s apart cannot show a kill within a 0.3 s deadline."""
    require_etcd()
    config = RealChaosConfig(faults=2, seed=3, kinds=("kill",), interval_s=5.0, deadline_s=0.3,
                             hold_min_s=2.0, hold_max_s=2.5, settle_s=1.0, tail_s=1.0)
    report = run_etcd_campaign(3, config, base_dir=str(tmp_path))
    assert report["faults_injected_total"] == 2 and report["incidents_counted"] >= 2
    assert report["recall"] < 1.0
    assert report["missed_incidents"]
    assert wait_gone(tmp_path, 2.0) == set() and leftovers(tmp_path) == []
    rows = dict(report_lines(report))
    assert "detection recall" in rows and rows["detection recall"].startswith(f"{report['recall'] * 100:.2f}%")


def test_sigterm_mid_campaign_removes_every_process_and_directory(tmp_path: Path) -> None:
    require_etcd()
    proc = subprocess.Popen([*RAFTCTL, "chaos", "--target", "etcd", "--members", "3", "--faults", "50",
                             "--seed", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=campaign_env(tmp_path))
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    lines = []
    while True:  # wait until the first fault is applied (the campaign is under way)
        line = proc.stderr.readline()
        lines.append(line)
        if line.startswith("fault 1/50") or not line or time.monotonic() > deadline:
            break
    assert lines[-1].startswith("fault 1/50"), "".join(lines)
    assert len(etcd_pids(tmp_path)) >= 2
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert "Traceback" not in err, err
    assert proc.returncode == 128 + signal.SIGTERM, err  # 143, as a shell says of a SIGTERM
    assert "interrupted by SIGTERM: every etcd process and directory of the campaign is removed" in err, err
    assert wait_gone(tmp_path) == set()
    assert leftovers(tmp_path) == []


def test_without_an_etcd_binary_one_line_and_exit_2(tmp_path: Path) -> None:
    env = campaign_env(tmp_path)
    env["PATH"] = str(tmp_path)  # nothing on it: no etcd
    proc = subprocess.run([*RAFTCTL, "chaos", "--target", "etcd", "--faults", "3"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "apt-get install etcd-server" in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["--runs", "5"], "--runs does not apply to --target etcd"),
    (["--faults", "crash"], "number of faults"),
    (["--faults", "0"], "faults must be a positive integer"),
    (["--members", "0"], "--members"),
    (["--faults", "1001"], "faults must be at most 1000"),
])
def test_bad_etcd_campaign_options_exit_2(args: list[str], message: str) -> None:
    proc = run_cli("chaos", "--target", "etcd", *args, timeout=60)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_the_plan_is_a_function_of_the_seed() -> None:
    config = RealChaosConfig(faults=200, seed=11)
    plan = plan_faults(config)
    assert plan == plan_faults(RealChaosConfig(faults=200, seed=11))
    assert plan != plan_faults(RealChaosConfig(faults=200, seed=12))
    assert {p.kind for p in plan} == set(DEFAULT_KINDS)
    assert all(2.0 <= p.hold_s <= 6.0 for p in plan if p.kind != "restart")
    assert all(p.hold_s == 0.0 for p in plan if p.kind == "restart")
    assert 0.25 < sum(p.aim_leader for p in plan) / len(plan) < 0.55
    assert RealChaosConfig().down_limit(3) == 1 and RealChaosConfig().down_limit(5) == 2
    with pytest.raises(ValueError, match="max_down"):
        RealChaosConfig(max_down=4).validate(3)
    with pytest.raises(ValueError, match="fault kinds"):
        RealChaosConfig(kinds=("partition",)).validate(3)
    RealChaosConfig(faults=1000).validate(3)
    with pytest.raises(ValueError, match="at most 1000"):
        RealChaosConfig(faults=1001).validate(3)


def test_a_two_member_campaign_is_warned_that_every_fault_costs_the_quorum() -> None:
    from raftctl.runtime.real_chaos import members_warning

    assert "every fault loses the quorum" in (members_warning(2) or "")
    assert all(members_warning(n) is None for n in (1, 3, 4, 5, 7))


def test_etcd_cluster_is_a_process_cluster() -> None:
    require_etcd()
    assert isinstance(EtcdCluster(3), ProcessCluster)  # not started: nothing to clean up

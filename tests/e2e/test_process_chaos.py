"""`raftctl chaos --target processes`: real faults on raftctl's own node processes, under load.

The campaign runs as a user runs it (the CLI as a subprocess) with ``TMPDIR`` pointed at the
test's directory: the node processes carry that directory in their ``--data-dir``, so the test
sees them in /proc while it runs and checks none, and no directory, is left afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from cli_helpers import RAFTCTL, live_pids

from raftctl.node.chaos_target import ReportSafety


def node_pids(root: Path) -> set[int]:
    """PIDs of live `raftctl node` processes under ``root``."""
    return live_pids(root, b"raftctl.node")


def test_a_campaign_on_node_processes_is_scored_safe_and_leaves_nothing(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path), "NO_COLOR": "1"}
    proc = subprocess.run([*RAFTCTL, "chaos", "--target", "processes", "--members", "3", "--faults", "4",
                           "--seed", "3", "--rate", "50", "--json"],
                          capture_output=True, text=True, timeout=240, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["target"] == "processes" and sum(report["faults_injected"].values()) == 4, report
    assert report["safety_violations"] == 0, report["safety_violation_examples"]
    assert report["converged"] and report["orders_acknowledged"] > 0
    assert report["orders_applied_min"] >= report["orders_acknowledged"]
    assert report["incidents_counted"] > 0 and 0.0 <= report["recall"] <= 1.0
    assert not node_pids(tmp_path), "node processes left running"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("raftctl-nodes-")], list(tmp_path.iterdir())


def test_report_safety_catches_two_leaders_in_a_term_and_diverged_state():
    safety = ReportSafety()
    node = {"up": True, "state": "FOLLOWER", "term": 2, "last_applied": 5, "state_digest": "a"}
    safety.observe({"sim_time": 1.0, "nodes": {"n1": dict(node, state="LEADER"), "n2": node, "n3": node}})
    assert safety.violations == []
    safety.observe({"sim_time": 2.0, "nodes": {"n1": dict(node, state="LEADER"), "n2": dict(node, state="STALE_LEADER"),
                                               "n3": dict(node, state_digest="b")}})
    assert len(safety.violations) == 2 and "two leaders in term 2" in " ".join(safety.violations)
    assert "different state" in " ".join(safety.violations)


def test_a_campaign_waits_for_the_cluster_to_be_whole_not_just_for_a_leader():
    """A leader is elected once a majority connects: a campaign started then saw the last node
    reach no peer in its first sample (node_isolated, a false alarm at t=0.009 s)."""
    from raftctl.node.chaos_target import NodeProcessCluster

    def report(state: str, peers: int) -> dict:
        return {"state": state, "leader_id": "node1", "peers_connected": peers}

    script = [
        {"node1": report("LEADER", 1), "node2": report("FOLLOWER", 1), "node3": None},
        {"node1": report("LEADER", 1), "node2": report("FOLLOWER", 1), "node3": report("FOLLOWER", 0)},
        {"node1": report("LEADER", 2), "node2": report("FOLLOWER", 2), "node3": report("FOLLOWER", 2)},
    ]
    cluster = object.__new__(NodeProcessCluster)  # its reports only: no processes
    calls = []

    def statuses() -> dict:
        calls.append(1)
        return script[min(len(calls), len(script)) - 1]

    cluster.statuses = statuses  # type: ignore[method-assign]
    assert cluster.wait_whole(5.0) == ("node1", [])
    assert len(calls) == 3

    calls.clear()
    script[2] = script[1]  # node3 never connects: the campaign is refused, saying why
    leader, missing = cluster.wait_whole(0.2)
    assert leader is None and missing == ["node1 reaches 1 of 2 peers", "node2 reaches 1 of 2 peers",
                                          "node3 reaches 0 of 2 peers"]


def test_processes_target_refuses_simulator_only_options():
    proc = subprocess.run([*RAFTCTL, "chaos", "--target", "processes", "--runs", "3"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "--runs" in proc.stderr


def test_the_node_cluster_moves_to_new_ports_when_another_program_takes_one(tmp_path, monkeypatch):
    """A port free at the check but taken before the node binds it: the node exits with "cannot
    listen" and the cluster starts again on new ports rather than running a member short."""
    import socket

    from raftctl.node import chaos_target

    thief = socket.socket()
    thief.bind(("127.0.0.1", 0))
    thief.listen()
    taken = thief.getsockname()[1]
    real = chaos_target.free_base_port
    bases = iter([taken - 2])  # node2's Raft port is BASE+2: the first try collides

    def pick(nodes: int) -> int:
        return next(bases, None) or real(nodes)

    monkeypatch.setattr(chaos_target, "free_base_port", pick)
    try:
        with chaos_target.NodeProcessCluster(3, base_dir=str(tmp_path)) as cluster:
            ports = {spec.raft[1] for spec in cluster.members.values()}
            assert taken not in ports, ports
            assert all(cluster.statuses().values()), cluster.statuses()
            assert cluster.diagnose() == ""
            cluster.kill("node3")
            assert cluster.diagnose().startswith("node3 exited with code -9"), cluster.diagnose()
    finally:
        thief.close()
    assert not node_pids(tmp_path)


def test_a_node_that_dies_while_starting_is_named_with_its_log(tmp_path, monkeypatch):
    import pytest

    from raftctl.node import chaos_target, launcher

    real_layout = launcher.layout

    def broken(*args, **kwargs):  # node2 gets an option the node refuses: it exits at once
        specs = real_layout(*args, **kwargs)
        specs[1].argv.append("--snapshot-threshold=1")
        return specs

    monkeypatch.setattr(chaos_target, "layout", broken)
    with pytest.raises(RuntimeError, match=r"node process node2 exited while starting: .*snapshot-threshold"):
        chaos_target.NodeProcessCluster(3, base_dir=str(tmp_path))
    assert not node_pids(tmp_path)
    assert not list(tmp_path.iterdir())


def _campaign_until_a_pause(tmp_path: Path) -> tuple[subprocess.Popen, list[str]]:
    """A campaign (default seed: its second fault is a pause) run until a node is SIGSTOPped."""
    import time

    env = {**os.environ, "TMPDIR": str(tmp_path), "NO_COLOR": "1"}
    proc = subprocess.Popen([*RAFTCTL, "chaos", "--target", "processes", "--members", "3", "--faults", "10"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("fault ") and " pause " in line:
            return proc, lines
    proc.kill()
    raise AssertionError("no pause fault within 90 s:\n" + "".join(lines))


def _gone(root: Path, timeout: float) -> set[int]:
    import time

    deadline = time.monotonic() + timeout
    while (pids := node_pids(root)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return pids


def test_a_campaign_ended_by_sighup_or_kill_9_during_a_pause_leaves_no_frozen_node(tmp_path):
    import signal
    import shutil

    # a closed terminal (SIGHUP): stopped like Ctrl-C, said so, exit 128 + 1, nothing left
    hup = tmp_path / "hup"
    hup.mkdir()
    proc, _lines = _campaign_until_a_pause(hup)
    try:
        proc.send_signal(signal.SIGHUP)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 129 and "interrupted by SIGHUP" in err and "Traceback" not in err, err
        assert _gone(hup, 10) == set(), "node processes left running"
        assert not [p for p in hup.iterdir() if p.name.startswith("raftctl-nodes-")], list(hup.iterdir())
    finally:
        for pid in node_pids(hup):  # only if the test failed: leave nothing frozen on the machine
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGKILL)

    # kill -9 (nothing can clean up): the nodes still die with it, the paused one too (it would
    # never act on SIGTERM), so none is left frozen; only the directory stays
    nine = tmp_path / "nine"
    nine.mkdir()
    proc, _lines = _campaign_until_a_pause(nine)
    proc.kill()
    proc.wait(timeout=30)
    try:
        assert _gone(nine, 10) == set(), "a node outlived its campaign (frozen by the pause?)"
    finally:
        for pid in node_pids(nine):
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(nine, ignore_errors=True)

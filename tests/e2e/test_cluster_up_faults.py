"""`raftctl cluster up` faults a tester found: bad data dirs and ports, cluster.json kept on failure,
and what it says about the nodes it starts and stops.

The runs that start nodes kill every process they started at the end (cluster.json's pids
included), passed or failed.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from node_fixtures import free_base_port, free_ports

pytestmark = pytest.mark.timeout(180)


def cluster_up(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "raftctl", "cluster", "up", *args], capture_output=True, text=True,
                          timeout=timeout)


def one_error_line(done: subprocess.CompletedProcess[str], code: int) -> str:
    assert done.returncode == code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
    return done.stderr


def test_bad_data_dirs_are_one_line_naming_the_path_and_exit_2(tmp_path, monkeypatch):
    afile = tmp_path / "afile"
    afile.write_text("x")
    # free ports, so that what the machine runs on the default ones (7001...) cannot answer first
    base = str(free_base_port(3))
    err = one_error_line(cluster_up("--data-dir", str(afile / "sub"), "--port", "0", "--base-port", base), 2)
    assert str(afile) in err and "not a directory" in err, err
    err = one_error_line(cluster_up("--data-dir", str(afile), "--port", "0", "--base-port", base), 2)
    assert str(afile) in err and "not a directory" in err, err
    err = one_error_line(cluster_up("--data-dir", "/proc/raftctl-nodefix", "--port", "0", "--base-port", base), 2)
    assert "/proc/raftctl-nodefix" in err and "cannot create" in err, err
    assert err.startswith("raftctl cluster up: error: "), err  # as Click names it in usage errors
    monkeypatch.chdir(tmp_path)
    err = one_error_line(cluster_up("--data-dir", "", "--port", "0", "--base-port", base), 2)
    assert "--data-dir is empty" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"], "nothing may be written into the cwd"
    done = subprocess.run([sys.executable, "-m", "raftctl", "node", "--id", "node1", "--peers", "node1=127.0.0.1:7001",
                           "--data-dir", ""], capture_output=True, text=True, timeout=30)
    assert "--data-dir is empty" in one_error_line(done, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_a_dashboard_host_or_port_that_cannot_work_is_refused_before_any_node_starts(tmp_path):
    base = free_base_port(3)
    root = tmp_path / "d"
    err = one_error_line(cluster_up("--data-dir", str(root), "--base-port", str(base), "--port", str(base + 101)), 2)
    assert f"--port {base + 101}" in err and "node1's HTTP port" in err, err
    err = one_error_line(cluster_up("--data-dir", str(root), "--base-port", str(base), "--port", str(base + 3)), 2)
    assert "node3's Raft port" in err, err
    (port,) = free_ports(1)
    err = one_error_line(cluster_up("--data-dir", str(root), "--base-port", str(base), "--host", "10.255.255.1",
                                    "--port", str(port)), 1)
    assert "--host 10.255.255.1" in err and "no such address" in err and "--port" not in err, err
    assert not root.exists(), "nothing may have been written"


def test_a_cluster_up_that_fails_leaves_cluster_json_as_it_was(tmp_path):
    base = free_base_port(3)
    root = tmp_path / "d"
    peers = ",".join(f"node{i}=127.0.0.1:{base + i}" for i in (1, 2, 3))
    doc = {"nodes": [{"id": f"node{i}", "pid": None, "raft": f"127.0.0.1:{base + i}",
                      "http": f"http://127.0.0.1:{base + 100 + i}", "data_dir": str(root / f"node{i}"),
                      "argv": [sys.executable, "-m", "raftctl", "node", "--id", f"node{i}", "--peers", peers,
                               "--data-dir", str(root / f"node{i}"), "--http", f"127.0.0.1:{base + 100 + i}"]}
                     for i in (1, 2, 3)]}
    (root / "node1").mkdir(parents=True)
    (root / "cluster.json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    before = (root / "cluster.json").read_bytes()
    (port,) = free_ports(1)
    # node1's dir is in use (by a node started from its argv, say): refused, cluster.json untouched
    lock = os.open(root / "node1" / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        other = free_base_port(3)
        for base_args in (["--base-port", str(base)], ["--base-port", str(other)], []):
            done = cluster_up("--data-dir", str(root), *base_args, "--port", str(port), "--rate", "0")
            assert done.returncode in (1, 2) and "Traceback" not in done.stderr, done.stderr
            assert (root / "cluster.json").read_bytes() == before, (base_args, done.stderr)
    finally:
        os.close(lock)
    # a node that cannot start (its dir is another node's): cluster up fails, cluster.json untouched
    (root / "node2").mkdir()
    (root / "node2" / "meta.json").write_bytes(orjson.dumps({"format": 1, "node_id": "node9", "cluster_id": "x",
                                                             "members": ["node9"], "shards": 1}))
    done = cluster_up("--data-dir", str(root), "--base-port", str(base), "--port", str(port), "--rate", "0")
    assert done.returncode == 1 and "node2 exited with code 2" in done.stderr, done.stderr
    assert (root / "cluster.json").read_bytes() == before


def pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class Run:
    """One `cluster up` whose stderr lines are collected as they come."""

    def __init__(self, root: Path, *args: str) -> None:
        self.root = root
        self.proc = subprocess.Popen([sys.executable, "-m", "raftctl", "cluster", "up", "--data-dir", str(root),
                                      "--rate", "0", "--interval", "0.5", *args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.pids: set[int] = set()
        self.extra: list[subprocess.Popen[bytes]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, text: str, timeout: float = 40.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            if self.proc.poll() is not None and not any(text in line for line in self.lines):
                time.sleep(0.2)  # the reader may still be behind
                if not any(text in line for line in self.lines):
                    break
            time.sleep(0.05)
        raise AssertionError(f"no line with {text!r}: {self.lines}")

    def nodes(self) -> list[dict[str, Any]]:
        doc = orjson.loads((self.root / "cluster.json").read_bytes())
        for node in doc["nodes"]:
            if isinstance(node.get("pid"), int):
                self.pids.add(node["pid"])
        return list(doc["nodes"])

    def stop(self) -> list[str]:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=40) == 0, self.lines
        time.sleep(0)  # the reader thread ends with the pipe
        return self.lines

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for p in self.extra:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        for pid in self.pids:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_what_cluster_up_says_of_one_node_and_of_nodes_killed_or_started_by_hand(tmp_path):
    base = free_base_port(3)
    (port,) = free_ports(1)
    run = Run(tmp_path / "one", "--nodes", "1", "--base-port", str(base), "--port", str(port))
    try:
        up = run.wait_line("up (")
        assert f"1 node up (Raft {base + 1}, HTTP {base + 101})" in up, up
        (node,) = run.nodes()
        os.kill(node["pid"], signal.SIGKILL)
        assert "node1 (pid" in run.wait_line("was killed by SIGKILL; not restarting it")
        lines = run.stop()
        last = lines[-1]
        assert "synced" not in last and "node1 was already dead (SIGKILL)" in last, lines
    finally:
        run.close()

    run = Run(tmp_path / "three", "--nodes", "3", "--base-port", str(base), "--port", str(port))
    try:
        run.wait_line("3 nodes up (")
        nodes = run.nodes()
        for node in nodes[1:]:
            os.kill(node["pid"], signal.SIGKILL)
        for node in nodes[1:]:
            run.wait_line(f"{node['id']} (pid {node['pid']}) was killed by SIGKILL")
        for node in nodes[1:]:  # started again by hand from cluster.json's argv
            run.extra.append(subprocess.Popen(node["argv"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        lines = run.stop()
        last = lines[-1]
        manual = [p.pid for p in run.extra]
        assert "node1 stopped (log synced)" in last, lines
        assert "node2, node3 were already dead (SIGKILL)" in last, lines
        assert f"stop them with kill {manual[0]} {manual[1]}" in last, lines
    finally:
        run.close()

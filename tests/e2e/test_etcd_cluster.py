"""EtcdCluster (raftctl/runtime/etcd_cluster.py) cleans up after itself and says how to get etcd."""

from __future__ import annotations

import http.client
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from etcd_fixtures import require_etcd

from raftctl.runtime.etcd_cluster import EtcdCluster, EtcdNotFoundError


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purposes; EtcdCluster waits for its children, so none should remain
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_without_an_etcd_binary_the_error_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("ETCD_BINARY", raising=False)
    with pytest.raises(EtcdNotFoundError, match=r"apt-get install etcd-server"):
        EtcdCluster(3)


def test_an_exception_inside_the_block_kills_every_member_and_removes_the_directory(tmp_path: Path) -> None:
    require_etcd()
    root: Path | None = None
    pids: list[int | None] = []
    with pytest.raises(RuntimeError, match="boom"):
        with EtcdCluster(3, base_dir=tmp_path) as cluster:
            cluster.pause("etcd1")  # a stopped member is killed too
            pids = [m.pid for m in cluster.members.values()]
            root = cluster.root
            assert root is not None and root.is_dir() and all(p is not None and alive(p) for p in pids)
            raise RuntimeError("boom")
    assert root is not None and not root.exists()
    assert not any(alive(p) for p in pids if p is not None)


def test_restart_reuses_the_data_dir_and_ports(tmp_path: Path) -> None:
    require_etcd()
    with EtcdCluster(3, base_dir=tmp_path) as cluster:
        leader = cluster.wait_for_leader(10)
        victim = next(n for n in cluster.members if n != leader)
        member_ids = cluster.member_ids()
        url = cluster.members[victim].client_url
        cluster.kill(victim)
        assert not cluster.members[victim].running
        cluster.restart(victim)
        assert cluster.members[victim].client_url == url and cluster.members[victim].starts == 2
        assert cluster.wait_for_leader(15) is not None
        assert cluster.member_ids() == member_ids  # the same member came back, not a new one


def test_the_module_command_prints_the_spec_and_cleans_up_on_ctrl_c() -> None:
    require_etcd()
    proc = subprocess.Popen([sys.executable, "-m", "raftctl.runtime.etcd_cluster", "--members", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        spec = proc.stdout.readline().strip()
        assert re.fullmatch(r"etcd:http://127\.0\.0\.1:\d+(,http://127\.0\.0\.1:\d+){2}", spec), spec
        # SIGTERM: a job started in the background (as CI starts the suite) inherits SIGINT
        # ignored, and Python then installs no Ctrl-C handler; SIGTERM is handled the same way
        proc.send_signal(signal.SIGTERM)
        # communicate() drains stderr while it waits (a full pipe must not look like a hang), and a
        # loaded CI machine gets time to stop three members and remove their directory
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert "Traceback" not in err
    pids = [int(p) for p in re.findall(r"pid (\d+)", err)]
    root = re.search(r"log (/\S+)/etcd1\.log", err)
    assert len(pids) == 3 and root is not None, err
    assert not Path(root.group(1)).exists()
    assert not any(alive(p) for p in pids)


def test_the_module_command_survives_a_killed_member_and_sighup_restarts_it() -> None:
    """kill -9 of a member (what a user does to see what raftctl says) no longer takes the whole
    cluster down: the exit is reported, the others keep serving, SIGHUP brings it back."""
    require_etcd()
    proc = subprocess.Popen([sys.executable, "-m", "raftctl.runtime.etcd_cluster", "--members", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    said: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)

    def wait_for(pattern: str, timeout: float = 30.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                said.append(lines.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
            found = re.search(pattern, said[-1])
            if found:
                return found
        raise AssertionError(f"{pattern!r} not said within {timeout} s; said: {''.join(said)}")

    threading.Thread(target=read, daemon=True).start()
    try:
        assert proc.stdout is not None
        spec = proc.stdout.readline().strip()
        urls = spec.removeprefix("etcd:").split(",")
        pid = int(wait_for(r"etcd2: client \S+, peer \S+, pid (\d+)").group(1))
        wait_for(r"watch it with")
        os.kill(pid, signal.SIGKILL)
        wait_for(r"etcd2 exited \(killed by SIGKILL\); its data dir is kept")
        assert proc.poll() is None  # still running, the other members too
        # the two others serve (after electing a new leader, if etcd2 led: /health is 503 till then)
        healthy_within(urls[0], 30)
        healthy_within(urls[2], 30)
        proc.send_signal(signal.SIGHUP)
        new_pid = int(wait_for(r"etcd2 restarted from its data dir: pid (\d+)").group(1))
        assert new_pid != pid and alive(new_pid)
        healthy_within(urls[1], 30)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert "Traceback" not in "".join(said)
    assert not alive(new_pid)


def healthy_within(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (status := _health(url)) != 200:
        assert time.monotonic() < deadline, f"{url}/health still {status} after {timeout} s"
        time.sleep(0.2)


def _health(url: str) -> int | None:
    host, _, port = url.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=2.0)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()

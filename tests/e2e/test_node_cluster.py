"""`raftctl cluster up` as a real command: node processes, load, collector and dashboard; restart on the same dir."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from node_fixtures import free_base_port, free_ports, http_json

pytestmark = pytest.mark.timeout(180)


def pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not running
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class ClusterUp:
    """One `raftctl cluster up` process and everything it or the test started, killed at the end."""

    def __init__(self, root: Path, base: int, port: int) -> None:
        self.root, self.base, self.port = root, base, port
        self.url = f"http://127.0.0.1:{port}"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.pids: set[int] = set()

    def up(self, *extra: str) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "raftctl", "cluster", "up", "--nodes", "3", "--data-dir", str(self.root),
                "--base-port", str(self.base), "--port", str(self.port), "--interval", "0.5", *extra]
        log = open(self.root.parent / "cluster-up.log", "ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs.append(proc)
        return proc

    def nodes(self) -> list[dict[str, Any]]:
        try:
            doc = orjson.loads((self.root / "cluster.json").read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return []
        for node in doc["nodes"]:
            if isinstance(node.get("pid"), int):
                self.pids.add(node["pid"])
        return list(doc["nodes"])

    def summary(self) -> dict[str, Any] | None:
        try:
            code, _, doc = http_json(self.url + "/api/summary", timeout=2)
        except OSError:
            return None
        return doc if code == 200 else None

    def wait(self, predicate: Any, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.1)
        log = (self.root.parent / "cluster-up.log").read_text(errors="replace")[-3000:]
        raise AssertionError(f"timed out waiting for {what}; last summary {self.summary()}\n{log}")

    def close(self) -> None:
        self.nodes()
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        for pid in self.pids:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


def healthy_with_load(cu: ClusterUp) -> dict[str, Any] | None:
    doc = cu.summary()
    if doc and doc["cluster"]["health_status"] == "HEALTHY" and (doc["performance"]["throughput_ops"] or 0) > 0:
        return doc
    return None


def test_cluster_up_runs_watches_survives_a_kill_and_comes_back_with_its_data(tmp_path):
    root = tmp_path / "data"
    (port,) = free_ports(1)
    cu = ClusterUp(root, free_base_port(3), port)
    manual: list[subprocess.Popen[bytes]] = []
    try:
        proc = cu.up("--rate", "100")
        doc = cu.wait(lambda: healthy_with_load(cu), 40, "a healthy cluster under load on the dashboard")
        nodes = cu.nodes()
        assert [n["id"] for n in nodes] == ["node1", "node2", "node3"]
        for i, node in enumerate(nodes, 1):
            assert pid_alive(node["pid"])
            assert node["raft"] == f"127.0.0.1:{cu.base + i}" and node["http"] == f"http://127.0.0.1:{cu.base + 100 + i}"
            assert node["argv"][node["argv"].index("--id") + 1] == node["id"]
        assert set(doc["nodes"]) == {"node1", "node2", "node3"}
        # the first sample's rate covers the load's whole life (the load starts after the source's
        # clock): no spike of the orders sent while the source was being built (618/s at --rate 100
        # was the fault). That life is a few ms, so one order more or less moves it by ~100/s: a
        # loaded CI machine saw 253; the bound is the fault's, not the rate's
        code, _, history = http_json(cu.url + "/api/metrics/history?duration=600&fields=performance", timeout=5)
        assert code == 200 and history["samples"][0]["performance"]["throughput_ops"] <= 450, history["samples"][:3]

        # kill -9 of a follower: the monitor sees it DOWN; cluster up does not restart it
        victim = next(n for n in nodes if n["id"] != doc["cluster"]["leader"])
        os.kill(victim["pid"], signal.SIGKILL)
        cu.wait(lambda: (cu.summary() or {}).get("nodes", {}).get(victim["id"], {}).get("state") == "DOWN", 10,
                f"{victim['id']} DOWN on the dashboard")
        assert cu.summary()["cluster"]["health_status"] == "DEGRADED"  # type: ignore[index]
        cu.wait(lambda: any(n["id"] == victim["id"] and n["pid"] is None for n in cu.nodes()), 5,
                "cluster.json to show the victim without a pid")
        assert not any(n["pid"] and n["id"] == victim["id"] for n in cu.nodes())

        # its argv from cluster.json starts it again; it catches up
        log = open(tmp_path / "manual.log", "ab")
        manual.append(subprocess.Popen(victim["argv"], stdout=log, stderr=subprocess.STDOUT))
        log.close()
        cu.wait(lambda: healthy_with_load(cu), 30, "healthy again after the manual restart")
        # cluster.json gives the pid of the process started by hand (the README's kill works again)
        cu.wait(lambda: any(n["id"] == victim["id"] and n["pid"] == manual[0].pid for n in cu.nodes()), 5,
                "cluster.json to give the pid of the node started by hand")
        said = (tmp_path / "cluster-up.log").read_text(errors="replace")
        assert f"{victim['id']} runs again (pid {manual[0].pid}, started outside it)" in said, said[-2000:]

        # SIGTERM stops cluster up and the nodes it started
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        started = [n["pid"] for n in nodes if n["id"] != victim["id"]]
        assert not any(pid_alive(p) for p in started)
        # it says which node it left running: the one started by hand, not by it
        said = (tmp_path / "cluster-up.log").read_text(errors="replace")
        assert (f"still running, started outside it (from cluster.json's argv?): "
                f"{victim['id']} (pid {manual[0].pid})") in said, said[-2000:]
        manual[0].send_signal(signal.SIGTERM)
        assert manual[0].wait(timeout=20) == 0
        applied = doc["nodes"][doc["cluster"]["leader"]]["last_applied"]

        # run again on the same dir: the same cluster, with its data
        proc = cu.up("--rate", "0")

        def back() -> dict[str, Any] | None:
            d = cu.summary()
            if d and d["cluster"]["leader"] and all(n["last_applied"] >= applied for n in d["nodes"].values()):
                return d
            return None

        cu.wait(back, 40, "the cluster back with at least the entries applied before")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        for m in manual:
            if m.poll() is None:
                m.kill()
                m.wait()
        cu.close()


def test_cluster_up_refuses_a_dir_of_another_size_and_ports_in_use(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "cluster.json").write_bytes(orjson.dumps({"nodes": [{"id": f"node{i}"} for i in range(1, 6)]}))
    done = subprocess.run([sys.executable, "-m", "raftctl", "cluster", "up", "--data-dir", str(root), "--port", "0"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "--nodes 5" in done.stderr and "Traceback" not in done.stderr
    import socket

    base = free_base_port(3)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", base + 2))
        holder.listen()
        done = subprocess.run([sys.executable, "-m", "raftctl", "cluster", "up", "--data-dir", str(tmp_path / "d2"),
                               "--base-port", str(base), "--port", "0"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and f"127.0.0.1:{base + 2}" in done.stderr and "in use" in done.stderr

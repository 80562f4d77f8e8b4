"""Real `raftctl node` processes on free loopback ports, for tests and benchmarks.

:class:`ProcessCluster` starts, kills (-9), stops (SIGTERM) and restarts node processes and
talks to their HTTP API; :func:`process_cluster` is a context manager that kills every process it
started when the block ends, however it ends. :class:`OrderClient` is a client that follows 421
redirects and retries 503s and dead nodes with the same ``(client_id, seq)``, as a client of an
exactly-once service must.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from raftctl.runtime.ports import free_base_port, free_ports  # noqa: F401 - the tests import both from here

REPO = Path(__file__).resolve().parent.parent


def http_json(url: str, method: str = "GET", body: Any = None, timeout: float = 2.0) -> tuple[int, dict[str, str], Any]:
    """One request; (status, headers, decoded JSON or raw bytes). Raises OSError when unreachable."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        payload = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        conn.request(method, parts.path or "/", body=payload, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        if hdrs.get("content-type", "").startswith("application/json"):
            return resp.status, hdrs, orjson.loads(data)
        return resp.status, hdrs, data
    except http.client.HTTPException as err:
        raise OSError(f"bad HTTP answer: {err}") from None
    finally:
        conn.close()


class ProcessCluster:
    """N `raftctl node` processes (node1..nodeN) with data dirs under ``root``."""

    def __init__(self, root: Path, nodes: int = 3, extra_args: list[str] | None = None,
                 use_cli: bool = True) -> None:
        self.root = Path(root)
        self.ids = [f"node{i}" for i in range(1, nodes + 1)]
        ports = free_ports(2 * nodes)
        self.raft = {nid: ("127.0.0.1", ports[i]) for i, nid in enumerate(self.ids)}
        self.http = {nid: ("127.0.0.1", ports[nodes + i]) for i, nid in enumerate(self.ids)}
        self.urls = {nid: f"http://127.0.0.1:{self.http[nid][1]}" for nid in self.ids}
        self.peers = ",".join(f"{nid}={h}:{p}" for nid, (h, p) in self.raft.items())
        self.extra_args = list(extra_args or [])
        self.use_cli = use_cli
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.all_procs: list[subprocess.Popen[bytes]] = []
        self.starts = {nid: 0 for nid in self.ids}

    def argv(self, nid: str) -> list[str]:
        # the CLI (`raftctl node`), or `python -m raftctl.node`: the same node, started without Typer
        entry = ["-m", "raftctl", "node"] if self.use_cli else ["-m", "raftctl.node"]
        return [sys.executable, *entry, "--id", nid, "--peers", self.peers,
                "--data-dir", str(self.root / nid), "--http", f"127.0.0.1:{self.http[nid][1]}", *self.extra_args]

    def start(self, nid: str) -> subprocess.Popen[bytes]:
        assert nid not in self.procs or self.procs[nid].poll() is not None, f"{nid} is running"
        self.root.mkdir(parents=True, exist_ok=True)
        self.starts[nid] += 1
        log = open(self.root / f"{nid}.log", "ab")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(self.argv(nid), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.root)
        log.close()
        self.procs[nid] = proc
        self.all_procs.append(proc)
        return proc

    def start_all(self) -> None:
        for nid in self.ids:
            self.start(nid)

    def kill(self, nid: str) -> None:
        """kill -9, then reap."""
        proc = self.procs.get(nid)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    def kill_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs.values():
            proc.wait(timeout=10)

    def terminate(self, nid: str, timeout: float = 10.0) -> int:
        proc = self.procs[nid]
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=timeout)

    def close(self) -> None:
        """Kill every process this cluster ever started (idempotent)."""
        for proc in self.all_procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.all_procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a kernel problem
                pass

    def log(self, nid: str) -> str:
        try:
            return (self.root / f"{nid}.log").read_text(errors="replace")
        except OSError:
            return ""

    # ---- the HTTP API --------------------------------------------------------------------

    def status(self, nid: str, timeout: float = 1.0) -> dict[str, Any] | None:
        try:
            code, _h, doc = http_json(self.urls[nid] + "/api/status", timeout=timeout)
        except OSError:
            return None
        return doc if code == 200 and isinstance(doc, dict) else None

    def must_status(self, nid: str) -> dict[str, Any]:
        """The node's report; AssertionError when it does not answer."""
        report = self.status(nid, timeout=5.0)
        assert report is not None, f"{nid} did not answer /api/status"
        return report

    def statuses(self) -> dict[str, dict[str, Any] | None]:
        return {nid: self.status(nid) for nid in self.ids}

    def wait_for(self, predicate: Any, timeout: float, what: str, interval: float = 0.02) -> Any:
        """Poll ``predicate()`` until it returns something truthy; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                logs = "\n".join(f"--- {nid} ---\n{self.log(nid)[-2000:]}" for nid in self.ids)
                raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{logs}")
            time.sleep(interval)

    def leader(self, among: list[str] | None = None) -> str | None:
        """A node that reports itself LEADER and that a majority of the answering nodes follow."""
        reports = {nid: self.status(nid, timeout=0.5) for nid in (among or self.ids)}
        leaders = [nid for nid, r in reports.items() if r and r["state"] == "LEADER"]
        if not leaders:
            return None
        return max(leaders, key=lambda nid: (reports[nid] or {}).get("term", 0))

    def wait_leader(self, timeout: float = 10.0, among: list[str] | None = None) -> str:
        return self.wait_for(lambda: self.leader(among), timeout, "a leader")

    def wait_ready(self, timeout: float = 20.0) -> str:
        """A leader, and every node answering /api/status (a majority elects one while the last
        node may still be starting its interpreter on a busy machine): returns the leader."""
        def ready() -> str | None:
            return self.leader() if all(r is not None for r in self.statuses().values()) else None
        return self.wait_for(ready, timeout, "every node answering, and a leader")


@contextlib.contextmanager
def process_cluster(root: Path, nodes: int = 3, extra_args: list[str] | None = None,
                    use_cli: bool = True) -> Iterator[ProcessCluster]:
    """A :class:`ProcessCluster` whose processes are all killed when the block ends (also on failure)."""
    cluster = ProcessCluster(root, nodes, extra_args, use_cli)
    try:
        yield cluster
    finally:
        cluster.close()


class OrderClient:
    """One client id, sequential seqs; sends a batch until some node answers 200 for it."""

    def __init__(self, cluster: ProcessCluster, client_id: str, seed: int = 0) -> None:
        self.cluster = cluster
        self.client_id = client_id
        self.rng = random.Random(seed)
        self.next_seq = 1
        self.target = cluster.ids[0]
        self.acked: dict[int, int] = {}  # seq -> log index (None for a duplicate answer)
        self.pending: list[dict[str, Any]] = []
        self.attempts = 0
        self.errors: dict[str, int] = {}

    def order(self, seq: int) -> dict[str, Any]:
        r = self.rng
        return {"client_id": self.client_id, "seq": seq, "symbol": r.choice(["BTC-USD", "ETH-USD"]),
                "side": r.choice(["buy", "sell"]), "type": "limit", "price": round(100 + r.uniform(-5, 5), 2),
                "qty": r.randint(1, 5)}

    def new_batch(self, size: int) -> None:
        assert not self.pending
        self.pending = [self.order(s) for s in range(self.next_seq, self.next_seq + size)]
        self.next_seq += size

    def _count(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    def try_once(self, timeout: float = 2.0) -> bool:
        """One attempt at the pending batch; True once it is acknowledged."""
        self.attempts += 1
        url = self.cluster.urls[self.target] + "/api/orders"
        try:
            code, headers, doc = http_json(url, "POST", self.pending, timeout=timeout)
        except OSError:
            self._count("unreachable")
            self.target = self.rng.choice(self.cluster.ids)
            return False
        if code == 200:
            for result in doc["results"]:
                self.acked[result["seq"]] = result["index"]
            self.pending = []
            return True
        if code == 421:
            self._count("421")
            leader = doc.get("leader")
            if leader in self.cluster.urls:
                self.target = leader
            return False
        self._count(str(code))
        if code == 400:
            raise AssertionError(f"the node refused our orders: {doc}")
        if code != 503:
            raise AssertionError(f"unexpected answer {code}: {doc}")
        self.target = self.rng.choice(self.cluster.ids)
        return False

    def send(self, deadline: float, size: int = 20) -> None:
        """Send batches (new ones once the last is acknowledged) until ``deadline``."""
        while time.monotonic() < deadline:
            if not self.pending:
                self.new_batch(size)
            if not self.try_once():
                time.sleep(0.01)  # back off a little before the next attempt

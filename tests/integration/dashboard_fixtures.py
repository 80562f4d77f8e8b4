"""Helpers for the dashboard tests: a fake collector of the contract's shape and small HTTP utils.

The fake stands in until the real MetricsCollector is available; it produces documents of the
shape in docs/CONTRACTS.md from a seeded random.Random.
"""

from __future__ import annotations

import http.client
import random
import socket
import threading
import time
from typing import Any, Callable

import orjson


class FakeCluster:
    """Just enough of a Cluster for the fake collector: node ids and crash / restart."""

    def __init__(self, node_count: int = 5) -> None:
        self.node_ids = [f"node{i}" for i in range(1, node_count + 1)]
        self.down: set[str] = set()
        self.now = 0.0

    def crash(self, node_id: str) -> None:
        self.down.add(node_id)

    def restart(self, node_id: str) -> None:
        self.down.discard(node_id)

    def run_for(self, seconds: float) -> None:
        self.now += seconds


class FakeCollector:
    """Produces contract-shaped samples on each collect(); thread-safe like the real one."""

    def __init__(self, cluster: FakeCluster, seed: int = 1, retention_period: float = 300.0) -> None:
        self.cluster = cluster
        self.rng = random.Random(seed)
        self.collection_interval = 1.0
        self.retention_period = retention_period
        self.version = 0
        self._samples: list[dict] = []
        self._latest: dict | None = None
        self._latest_bytes: bytes | None = None
        self._active: dict[str, dict] = {}
        self._history: list[dict] = []
        self._lock = threading.Lock()
        self._orders = 0
        self._trades = 0
        self._term = 1

    def collect(self) -> dict:
        cluster = self.cluster
        with self._lock:
            up = [n for n in cluster.node_ids if n not in cluster.down]
            size = len(cluster.node_ids)
            quorum = len(up) > size // 2
            leader = up[0] if quorum else None
            if not quorum:
                self._term += 1
            health = "HEALTHY" if len(up) == size else ("DEGRADED" if quorum else "UNHEALTHY")
            new_orders = self.rng.randint(50, 150) if quorum else 0
            self._orders += new_orders
            self._trades += new_orders // 3
            now = time.time()
            self._update_alerts(not quorum, now)
            nodes = {}
            for node_id in cluster.node_ids:
                alive = node_id in up
                nodes[node_id] = {
                    "state": ("LEADER" if node_id == leader else "FOLLOWER") if alive else "DOWN",
                    "commit_index": self._orders,
                    "last_applied": self._orders,
                    "log_length": self._orders,
                    "peers_connected": len(up) - 1 if alive else 0,
                    "term": self._term,
                    "up": alive,
                    "replication_lag": 0,
                    "state_digest": "ab12",
                }
            doc = {
                "timestamp": now,
                "sim_time": cluster.now,
                "sequence": self.version + 1,
                "cluster": {
                    "cluster_size": size,
                    "healthy_nodes": len(up),
                    "leader_node": leader,
                    "leader": leader,
                    "health_status": health,
                    "current_term": self._term,
                    "consensus_aligned": True,
                    "has_quorum": quorum,
                    "leader_changes": 1,
                    "health_reasons": [] if health == "HEALTHY" else ["nodes down"],
                },
                "performance": {
                    "total_orders": self._orders,
                    "total_trades": self._trades,
                    "throughput_ops": float(new_orders),
                    "avg_latency_ms": round(self.rng.uniform(5, 20), 3),
                    "p50_latency_ms": 10.0,
                    "p99_latency_ms": 30.0,
                    "commit_apply_lag": 0,
                },
                "nodes": nodes,
                "alerts": list(self._active.values()),
                "collector": {
                    "collection_interval": 1.0,
                    "retention_period": self.retention_period,
                    "samples_retained": len(self._samples) + 1,
                    "sink_events_dropped": 0,
                    "collection_ms": 0.2,
                },
            }
            self._samples.append(doc)
            cutoff = cluster.now - self.retention_period
            self._samples = [s for s in self._samples if s["sim_time"] > cutoff]
            self._latest = doc
            self._latest_bytes = orjson.dumps(doc)
            self.version += 1
            return doc

    def _update_alerts(self, quorum_lost: bool, now: float) -> None:
        if quorum_lost and "quorum_loss" not in self._active:
            alert = {
                "name": "quorum_loss",
                "severity": "critical",
                "status": "firing",
                "fingerprint": "f1",
                "labels": {},
                "message": "quorum lost",
                "started_at": now,
                "resolved_at": None,
            }
            self._active["quorum_loss"] = alert
            self._history.append(dict(alert))
        elif not quorum_lost and "quorum_loss" in self._active:
            alert = dict(self._active.pop("quorum_loss"), status="resolved", resolved_at=now)
            self._history.append(alert)

    def latest(self) -> dict | None:
        return self._latest

    def latest_bytes(self) -> bytes | None:
        return self._latest_bytes

    def history(self, duration: float) -> list[dict]:
        with self._lock:
            cutoff = self.cluster.now - duration
            return [s for s in self._samples if s["sim_time"] > cutoff]

    def node_history(self, node_id: str, duration: float) -> list[dict]:
        if node_id not in self.cluster.node_ids:
            raise KeyError(node_id)
        return [
            dict(s["nodes"][node_id], timestamp=s["timestamp"], sim_time=s["sim_time"]) for s in self.history(duration)
        ]

    def active_alerts(self) -> list[dict]:
        with self._lock:
            return list(self._active.values())

    def alert_history(self) -> list[dict]:
        with self._lock:
            return list(self._history)


def step(cluster: Any, collector: Any, seconds: float = 1.0) -> dict:
    """Advance the simulated cluster and take one sample."""
    cluster.run_for(seconds)
    return collector.collect()


def get(url: str, path: str, headers: dict[str, str] | None = None, method: str = "GET", timeout: float = 5.0):
    """One request on a fresh connection -> (status, headers dict lower-cased, body bytes)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def raw_exchange(url: str, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes on a new socket and return everything the server answers before closing."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.02) -> bool:
    """Poll predicate until true or the deadline passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()

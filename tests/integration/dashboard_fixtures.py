"""Helpers for the dashboard tests: a monitored simulated cluster and small HTTP utilities."""

from __future__ import annotations

import http.client
import socket
import time
from typing import Any, Callable

from raftctl import Cluster, MetricsCollector, Workload


def monitored_cluster(seed: int, node_count: int = 5, rate: float = 100.0, warmup: int = 5):
    """A seeded Cluster with a trading workload and a MetricsCollector that has taken samples."""
    cluster = Cluster(node_count=node_count, seed=seed)
    Workload(cluster, rate=rate, seed=seed)
    collector = MetricsCollector(collection_interval=1.0, retention_period=300)
    collector.set_cluster(cluster)
    assert cluster.run_until(lambda: cluster.leader_id is not None, timeout=10.0), f"no leader (seed={seed})"
    for _ in range(warmup):
        step(cluster, collector)
    return cluster, collector


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
    """Send raw bytes on a new socket; return the first response (head and Content-Length body)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while True:
            head, sep, body = received.partition(b"\r\n\r\n")
            if sep:
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if len(body) >= length:
                    return received
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                return received
            if not chunk:
                return received
            received += chunk


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.02) -> bool:
    """Poll predicate until true or the deadline passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()

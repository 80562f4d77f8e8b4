"""A trading load against `raftctl node` processes over HTTP, and what its client saw.

``workers`` threads, each one client session (its own ``client_id``, sequence numbers 1, 2, ...)
with one keep-alive connection, send batches of orders (:func:`random_order`) to the node they believe leads:
a 421 names the leader, a 503 or a dead node makes them try another, and a batch is resent with
the same ``(client_id, seq)`` until some leader acknowledges it (exactly once, whatever
happened). So at most ``workers * batch`` orders are outstanding. With ``rate`` set, orders are
paced to that many per second (a shared token bucket); without, they go as fast as the cluster
acknowledges them.

:meth:`LoadGenerator.client_view` is the source-side :class:`~raftctl.core.source.ClientView`
(orders, acknowledgements, latencies since a time), which ``raftctl cluster up`` hands to the
``raftctl`` source so the dashboard shows throughput and latency as the client measured them.
"""

from __future__ import annotations

import http.client
import os
import random
import threading
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import orjson

from raftctl.core.source import ClientView

__all__ = ["LoadGenerator", "random_order"]

_SYMBOLS = (("BTC-USD", 100.0), ("ETH-USD", 50.0), ("SOL-USD", 20.0))


def random_order(rng: random.Random) -> dict[str, Any]:
    """One order of the load: 70 % limit orders within 1 % of the symbol's price, 30 % market
    orders, which take liquidity so the books stay about the same size however long it runs."""
    symbol, mid = _SYMBOLS[rng.randrange(3)]
    side = "buy" if rng.random() < 0.5 else "sell"
    qty = rng.randint(1, 10)
    if rng.random() < 0.3:
        return {"symbol": symbol, "side": side, "type": "market", "qty": qty}
    return {"symbol": symbol, "side": side, "type": "limit", "price": round(mid * (1 + rng.uniform(-0.01, 0.01)), 2),
            "qty": qty}


class _Worker:
    def __init__(self, gen: "LoadGenerator", index: int) -> None:
        self.gen = gen
        self.client_id = f"{gen.client_prefix}{index}"
        self.rng = random.Random(gen.seed * 1_000_003 + index)
        self.next_seq = 1
        self.target = gen.ids[index % len(gen.ids)]
        self.conn: http.client.HTTPConnection | None = None
        self.conn_target: str | None = None
        self.thread = threading.Thread(target=self.run, name=f"raftctl-load-{index}", daemon=True)

    def orders(self, count: int) -> list[dict[str, Any]]:
        out = []
        for _ in range(count):
            order = random_order(self.rng)
            order["client_id"] = self.client_id
            order["seq"] = self.next_seq
            out.append(order)
            self.next_seq += 1
        return out

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def post(self, body: bytes) -> tuple[int, Any]:
        gen = self.gen
        if self.conn is None or self.conn_target != self.target:
            self.close()
            host, port = gen.addresses[self.target]
            self.conn = http.client.HTTPConnection(host, port, timeout=gen.timeout)
            self.conn_target = self.target
        try:
            self.conn.request("POST", "/api/orders", body=body, headers={"Content-Type": "application/json"})
            resp = self.conn.getresponse()
            data = resp.read()
            if resp.will_close:
                self.close()
        except (OSError, http.client.HTTPException):
            self.close()
            return 0, None
        try:
            return resp.status, orjson.loads(data)
        except orjson.JSONDecodeError:
            return resp.status, None

    def run(self) -> None:
        gen = self.gen
        while not gen.stopping.is_set():
            count = gen.take(gen.batch)
            if count == 0:
                continue
            batch = self.orders(count)
            body = orjson.dumps(batch)
            started = time.monotonic()
            with gen.lock:
                gen.submitted += count
                gen.outstanding += count
            while not gen.stopping.is_set():
                status, doc = self.post(body)
                if status == 200:
                    done = time.monotonic()
                    gen.acked(count, started, done)
                    break
                with gen.lock:
                    gen.attempts_failed += 1
                if status == 421 and isinstance(doc, dict) and doc.get("leader") in gen.addresses:
                    self.target = doc["leader"]
                    continue
                if status == 400:
                    with gen.lock:
                        gen.rejected += count
                        gen.outstanding -= count
                    break
                # 503, a dead node or a timeout: another node, after a short pause
                self.target = gen.ids[self.rng.randrange(len(gen.ids))]
                gen.stopping.wait(0.02)
        self.close()


class LoadGenerator:
    """Trading load over HTTP against nodes ``{id: url}``; see the module docstring."""

    def __init__(self, urls: dict[str, str], *, rate: float | None = None, workers: int = 10, batch: int = 100,
                 seed: int = 0, timeout: float = 5.0, client_prefix: str | None = None,
                 latency_window: int = 100_000) -> None:
        if not urls:
            raise ValueError("no nodes to send orders to")
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive (or None for as fast as acknowledged)")
        self.ids = list(urls)
        self.addresses: dict[str, tuple[str, int]] = {}
        for node_id, url in urls.items():
            parts = urlsplit(url)
            self.addresses[node_id] = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.rate = rate
        self.batch = max(1, batch)
        self.seed = seed
        self.timeout = timeout
        # a fresh session per run: a restarted generator must not reuse acknowledged seqs
        self.client_prefix = client_prefix or f"load{os.getpid()}x{int(time.time() * 1000) % 10**9}w"
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.submitted = 0
        self.acknowledged = 0
        self.outstanding = 0
        self.rejected = 0
        self.attempts_failed = 0
        self.latencies: deque[tuple[float, float]] = deque(maxlen=latency_window)  # (ack monotonic s, ms)
        self.t0 = time.monotonic()
        self._tokens = 0.0
        self._token_time = time.monotonic()
        self.workers = [_Worker(self, i) for i in range(max(1, workers))]

    # ---- pacing -------------------------------------------------------------------------------

    def take(self, wanted: int) -> int:
        """Orders this worker may send now (waits a little for tokens when paced)."""
        if self.rate is None:
            return wanted
        with self.lock:
            now = time.monotonic()
            # at most one batch per worker of credit builds up while the cluster is slow
            self._tokens = min(self._tokens + (now - self._token_time) * self.rate, float(wanted * len(self.workers)))
            self._token_time = now
            if self._tokens >= 1.0:
                count = min(wanted, int(self._tokens))
                self._tokens -= count
                return count
            wait = (1.0 - self._tokens) / self.rate
        self.stopping.wait(min(max(wait, 0.001), 0.05))
        return 0

    def acked(self, count: int, started: float, done: float) -> None:
        latency_ms = (done - started) * 1000.0
        at = done
        with self.lock:
            self.acknowledged += count
            self.outstanding -= count
            self.latencies.append((at, latency_ms))

    # ---- life cycle ---------------------------------------------------------------------------

    def start(self) -> "LoadGenerator":
        for worker in self.workers:
            worker.thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        deadline = time.monotonic() + timeout
        for worker in self.workers:
            worker.thread.join(timeout=max(0.0, deadline - time.monotonic()))

    # ---- what the client saw ------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic() - self.t0

    def client_view(self, since: float | None = None) -> ClientView:
        """Cumulative counters and the latencies of batches acknowledged after ``since``
        (a ``time.monotonic()`` value; None: all kept)."""
        with self.lock:
            if since is None:
                lat = [ms for _at, ms in self.latencies]
            else:
                lat = [ms for at, ms in self.latencies if at > since]
            return ClientView(orders_submitted=self.submitted, orders_acknowledged=self.acknowledged,
                              orders_pending=self.outstanding, proposals_failed=self.rejected,
                              latencies_ms=lat)

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {"submitted": self.submitted, "acknowledged": self.acknowledged, "outstanding": self.outstanding,
                    "rejected": self.rejected, "attempts_failed": self.attempts_failed}

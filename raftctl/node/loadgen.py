"""A trading load against `raftctl node` processes over HTTP, and what its client saw.

``workers`` threads, each one client session (its own ``client_id``, sequence numbers 1, 2, ...)
with one keep-alive connection, send batches of orders (:func:`random_order`) to the node they believe leads:
a 421 names the leader, a 503 or a dead node makes them try another, and a batch is resent with
the same ``(client_id, seq)`` until some leader acknowledges it (exactly once, whatever
happened). A node that takes long to answer is asked for its ``/api/status`` every
:data:`PROBE_EVERY_S` on another connection: one that answers is busy and waited for (up to
``timeout``), one that does not (SIGSTOPped, hung) is given up at once and avoided for
:data:`SUSPECT_S` (a 421 from a follower that still names it is not followed), so the load
finds a new leader as soon as there is one. So at most ``workers * batch`` orders are outstanding. With ``rate`` set, orders are
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
import select
import threading
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import orjson

from raftctl.core.source import ClientView

__all__ = ["LoadGenerator", "random_order"]

_SYMBOLS = (("BTC-USD", 100.0), ("ETH-USD", 50.0), ("SOL-USD", 20.0))
# while an answer is late: ask the node for its status this often, giving it this long to answer
PROBE_EVERY_S = 0.3
PROBE_TIMEOUT_S = 0.3
SUSPECT_S = 1.0  # a node that did not answer its probe is not sent to (nor followed to) this long


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
        """One attempt at the target: (status, document); 0 when unreachable, hung or too slow."""
        gen = self.gen
        if self.conn is None or self.conn_target != self.target:
            self.close()
            host, port = gen.addresses[self.target]
            self.conn = http.client.HTTPConnection(host, port, timeout=gen.timeout)
            self.conn_target = self.target
        try:
            self.conn.request("POST", "/api/orders", body=body, headers={"Content-Type": "application/json"})
            if not self.wait_answer():
                self.close()
                return 0, None
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

    def wait_answer(self) -> bool:
        """Until the answer starts to arrive (True), or the target looks hung or takes longer than
        the generator's ``timeout`` (False, the target then suspect)."""
        gen = self.gen
        conn = self.conn
        assert conn is not None and conn.sock is not None
        sock = conn.sock
        started = time.monotonic()
        while True:
            readable, _, _ = select.select([sock], [], [], PROBE_EVERY_S)
            if readable:
                return True
            if gen.stopping.is_set():
                return False
            target = self.target
            if gen.is_suspect(target) or time.monotonic() - started >= gen.timeout or not gen.answers(target):
                gen.suspect(target)
                return False

    def next_target(self) -> str:
        """Another node than the current target and not suspect; else the target itself if it is
        not suspect (a 503 from the only other node: ask it again); else anyone else."""
        gen = self.gen
        target = self.target
        fine = [nid for nid in gen.ids if nid != target and not gen.is_suspect(nid)]
        if not fine:
            fine = [target] if not gen.is_suspect(target) else [nid for nid in gen.ids if nid != target] or gen.ids
        return fine[self.rng.randrange(len(fine))]

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
                leader = doc.get("leader") if status == 421 and isinstance(doc, dict) else None
                if leader in gen.addresses and not gen.is_suspect(leader):
                    self.target = leader
                    continue
                if status == 400:
                    with gen.lock:
                        gen.rejected += count
                        gen.outstanding -= count
                    break
                # 503, a dead or hung node, a redirect to one: another node, after a short pause
                self.target = self.next_target()
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
        self.suspects: dict[str, float] = {}  # node -> until (monotonic s): it did not answer a probe
        self.hung_given_up = 0
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

    # ---- nodes that do not answer ----------------------------------------------------------------

    def answers(self, node_id: str) -> bool:
        """True if ``node_id`` answers ``GET /api/status`` within PROBE_TIMEOUT_S (it runs)."""
        host, port = self.addresses[node_id]
        conn = http.client.HTTPConnection(host, port, timeout=PROBE_TIMEOUT_S)
        try:
            conn.request("GET", "/api/status")
            conn.getresponse().read()
            return True
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def suspect(self, node_id: str) -> None:
        with self.lock:
            self.suspects[node_id] = time.monotonic() + SUSPECT_S
            self.hung_given_up += 1

    def is_suspect(self, node_id: str) -> bool:
        until = self.suspects.get(node_id)
        return until is not None and time.monotonic() < until

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
            if worker.thread.ident is not None:  # a generator never started has nothing to join
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
                    "rejected": self.rejected, "attempts_failed": self.attempts_failed,
                    "hung_given_up": self.hung_given_up}

"""The trading simulation: seeded traders submitting orders around a drifting price."""

from __future__ import annotations

import random
from collections import deque
from typing import Any

DEFAULT_SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD")
MAX_OPEN_ORDERS = 32
_BASE_PRICES = {"BTC-USD": 100.0, "ETH-USD": 50.0, "SOL-USD": 20.0}


class Trader:
    """One client session: its own id, sequence numbers (kept by the cluster) and open orders."""

    __slots__ = ("client_id", "open_orders")

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id
        self.open_orders: deque[tuple[str, str]] = deque()  # (order id, symbol), oldest first


class Workload:
    """Submits a mix of limit, market and cancel orders at ``rate`` orders per simulated second.

    Orders go to the cluster in batches every ``tick_s`` (as a client library would), so one
    AppendEntries carries many. The cluster redirects and retries them across leader changes;
    none is silently dropped. Mix: ``limit``/``market``/``cancel`` fractions.
    """

    def __init__(
        self,
        cluster: Any,
        rate: float = 200.0,
        seed: int | None = None,
        symbols: tuple[str, ...] | list[str] = DEFAULT_SYMBOLS,
        traders: int = 8,
        tick_s: float = 0.01,
        mix: tuple[float, float, float] = (0.6, 0.25, 0.15),
        max_outstanding: int | None = None,
    ) -> None:
        for attribute in ("every", "submit_many"):
            if not hasattr(cluster, attribute):
                raise ValueError(f"Workload needs a raftctl Cluster, got {type(cluster).__name__}")
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < float("inf"):
            raise ValueError(f"rate must be a non-negative number of orders per second, got {rate!r}")
        if isinstance(traders, bool) or not isinstance(traders, int) or traders < 1:
            raise ValueError(f"traders must be an integer >= 1, got {traders!r}")
        if isinstance(tick_s, bool) or not isinstance(tick_s, (int, float)) or not 0 < tick_s < float("inf"):
            raise ValueError(f"tick_s must be a positive number of seconds, got {tick_s!r}")
        if (not isinstance(mix, (tuple, list)) or len(mix) != 3
                or not all(isinstance(m, (int, float)) and not isinstance(m, bool) and m >= 0 for m in mix)
                or sum(mix) <= 0):
            raise ValueError("mix must be three non-negative fractions (limit, market, cancel)")
        if isinstance(symbols, str):  # iterating it would trade one symbol per letter
            symbols = [symbols]
        if not symbols or not all(isinstance(sym, str) and sym for sym in symbols):
            raise ValueError(f"symbols must be a non-empty list of symbol names, got {symbols!r}")
        if max_outstanding is not None and (isinstance(max_outstanding, bool) or not isinstance(max_outstanding, int)
                                            or max_outstanding < 1):
            raise ValueError(f"max_outstanding must be an integer >= 1 or None, got {max_outstanding!r}")
        if getattr(cluster, "workload", None) is not None:
            # both would run (double the rate) while only the newer is the cluster's, the one that
            # chaos pauses before its convergence check and that reports name
            raise ValueError("this cluster already has a Workload (cluster.workload): change its rate, "
                             "or pause it, rather than adding a second one")
        self.cluster = cluster
        self.rate = float(rate)
        self.rng = random.Random(cluster.seed * 7919 + 17 if seed is None else seed)
        self.symbols = list(symbols)
        self.mid = {s: _BASE_PRICES.get(s, 100.0) for s in self.symbols}
        self.traders = [Trader(f"trader{i}") for i in range(1, traders + 1)]
        self.tick_s = tick_s
        total = sum(mix)
        self.limit_share = mix[0] / total
        self.market_share = (mix[0] + mix[1]) / total
        self.carry = 0.0
        self.submitted = 0
        # Recent tickets, for callers that want to look at individual orders; off by default
        # so a long-running server does not hold thousands of them.
        self.tickets: deque[Any] = deque(maxlen=10_000)
        self.keep_tickets = False
        self.paused = False
        # Closed-loop cap: with this many orders unacknowledged, clients wait (a load generator
        # with a window). None = open loop: orders arrive at ``rate`` whatever happens.
        self.max_outstanding = max_outstanding
        self.skipped = 0
        cluster.workload = self
        cluster.every(tick_s, self._tick)

    def _tick(self, cluster: Any) -> None:
        if self.paused or self.rate <= 0:
            return
        self.carry += self.rate * self.tick_s
        count = int(self.carry)
        self.carry -= count
        if self.max_outstanding is not None:
            room = self.max_outstanding - len(cluster.outstanding)
            if room < count:
                self.skipped += count - max(room, 0)
                count = max(room, 0)
        rng = self.rng
        for symbol in self.symbols:
            # Random walk of the mid price, kept positive.
            self.mid[symbol] = max(1.0, self.mid[symbol] * (1.0 + rng.gauss(0.0, 0.0005)))
        if not count:
            return
        traders = self.traders
        batch = []
        for _ in range(count):
            trader = traders[int(rng.random() * len(traders))]
            batch.append((self._make_order(trader), trader))
        tickets = cluster.submit_many([(order, trader.client_id) for order, trader in batch])
        for (order, trader), ticket in zip(batch, tickets):
            if order.get("type") == "limit":
                trader.open_orders.append((ticket.order_id, order["symbol"]))
        self.submitted += count
        if self.keep_tickets:
            self.tickets.extend(tickets)

    def _make_order(self, trader: Trader) -> dict[str, Any]:
        rng = self.rng
        roll = rng.random()
        if len(trader.open_orders) >= MAX_OPEN_ORDERS:
            # A trader keeps a bounded number of orders working: past it, the oldest is
            # pulled. This keeps the books (and a long-running server's memory) bounded.
            order_id, symbol = trader.open_orders.popleft()
            return {"op": "cancel", "order_id": order_id, "symbol": symbol}
        if roll >= self.market_share and trader.open_orders:
            entry = trader.open_orders[rng.randrange(len(trader.open_orders))]
            trader.open_orders.remove(entry)
            # The symbol routes the cancel to its shard in a sharded cluster.
            return {"op": "cancel", "order_id": entry[0], "symbol": entry[1]}
        symbol = rng.choice(self.symbols)
        side = "buy" if rng.random() < 0.5 else "sell"
        qty = rng.randint(1, 10)
        if roll < self.limit_share or roll >= self.market_share:
            mid = self.mid[symbol]
            offset = rng.uniform(-0.01, 0.01) * mid
            # Buyers bid a little under, sellers ask a little over, with overlap so trades happen.
            price = round(mid + offset - (0.002 * mid if side == "buy" else -0.002 * mid), 2)
            return {"symbol": symbol, "side": side, "type": "limit", "price": max(price, 0.01), "qty": qty}
        return {"symbol": symbol, "side": side, "type": "market", "qty": qty}

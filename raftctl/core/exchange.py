"""Deterministic matching engine: the state machine every Raft node replicates.

One limit order book per symbol, price-time priority, limit and market orders,
partial fills and cancels.  Pure logic, no I/O, no clock, no randomness.

Conventions (part of the replicated contract, so every node must agree):

* Prices are stored as integer *ticks* of ``TICK_SIZE`` (0.01).  ``validate_order``
  converts a client price (int or float) to ticks by rounding to the nearest tick,
  once, before the command enters the log; after that only ints are used, so float
  rounding can never make two nodes disagree.
* Market orders are immediate-or-cancel: whatever cannot fill against the book at
  once is dropped and counted in ``orders_expired``; they never rest.
* A command that cannot be applied (malformed, cancel of an unknown / already
  filled / already cancelled id, a new order whose id is currently resting) is
  counted in ``orders_rejected`` and changes nothing else.  ``apply`` never raises.
* Ids of filled or cancelled orders are not remembered (memory stays bounded by
  the resting orders), so an id may be reused once it has left the book.

State digest: every resting order gets an odd 64-bit key ``k`` from a stable hash
of (symbol, side, price, sequence number, id); the book contributes
``sum(k * (qty + 1)) mod 2**64``.  The sum is updated in O(1) on fill and cancel,
and ``digest()`` hashes it together with the counters (so two digests differ
exactly when the states differ, up to a 2**-64 chance of collision; a change of
one order's quantity always shows).  Time priority is covered
because the sequence number (the value of ``orders_accepted`` when the order
arrived) fixes each order's place in its price level.

Computing ``k`` (a blake2b call) is the most expensive step of resting an order,
and most orders leave the book again before anyone asks for a digest.  So a new
resting order starts with ``k = 0`` (contributing nothing, and fills/cancels of
it subtract nothing) and is queued; ``digest()`` gives keys to the queued orders
that are still resting.  The queue is also flushed when it grows large, so
memory stays bounded even if nobody calls ``digest()``.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from hashlib import blake2b
from typing import Any, Iterator

import orjson

from raftctl.core.orders import (
    MAX_PRICE,
    MAX_QTY,
    MAX_TICKS,
    PRICE_SCALE,
    TICK_SIZE,
    check_qty,
    check_symbol,
    price_to_ticks,
    ticks_to_price,
    validate_order,
)

__all__ = [
    "TICK_SIZE",
    "PRICE_SCALE",
    "MAX_QTY",
    "MAX_PRICE",
    "Exchange",
    "validate_order",
    "price_to_ticks",
    "ticks_to_price",
]

_MAX_TICKS = MAX_TICKS
_MASK = (1 << 64) - 1
_UNKEYED_LIMIT = 4096
# Lower than any real key: a market order crosses every level.
_NO_LIMIT = -(1 << 62)

_SNAPSHOT_FORMAT = "raftctl-exchange"
_SNAPSHOT_VERSION = 1
_COUNTERS = (
    "orders_accepted",
    "trades_executed",
    "orders_cancelled",
    "orders_rejected",
    "orders_expired",
    "volume",
)


# --------------------------------------------------------------------------- book internals


class _Side:
    """One side of one book.

    ``keys`` is sorted ascending with the best level last; bids use key = ticks,
    asks key = -ticks, so "better" is always "larger" and the matching loop is
    the same for both sides.  ``levels[key]`` is ``[total_qty, live_orders, deque]``;
    deque entries are the order records (see ``Exchange``), cancelled ones stay
    in the deque with qty 0 until matching or compaction drops them.
    """

    __slots__ = ("symbol", "is_bid", "tag", "levels", "keys")

    def __init__(self, symbol: str, is_bid: bool) -> None:
        self.symbol = symbol
        self.is_bid = is_bid
        self.tag = f"{symbol}|{'B' if is_bid else 'S'}|".encode()
        self.levels: dict[int, list[Any]] = {}
        self.keys: list[int] = []


def _order_key(tag: bytes, ticks: int, seq: int, order_id: str) -> int:
    # Stable across processes (no hash()), odd so any qty change moves the sum.
    data = b"%b%d|%d|%b" % (tag, ticks, seq, order_id.encode())
    return int.from_bytes(blake2b(data, digest_size=8).digest(), "little") | 1


# An order record is a plain list (cheap to create, mutable in place):
#   [qty, order_id, seq, hash_key (0 until assigned), side, level_key]
# qty 0 marks a record that has left the book (filled or cancelled).


class Exchange:
    """Replicated matching engine: apply committed commands, expose a cheap digest.

    Not thread-safe, and ``digest()`` updates internal bookkeeping too: callers
    serialize all access (the cluster does so under ``cluster.lock``).
    """

    __slots__ = (
        "_books",
        "_index",
        "_hsum",
        "_unkeyed",
        "orders_accepted",
        "trades_executed",
        "orders_cancelled",
        "orders_rejected",
        "orders_expired",
        "volume",
    )

    def __init__(self) -> None:
        self._books: dict[str, tuple[_Side, _Side]] = {}
        self._index: dict[str, list[Any]] = {}  # resting order id -> order record
        self._hsum = 0
        self._unkeyed: list[list[Any]] = []  # resting records still waiting for their hash key
        self.orders_accepted = 0
        self.trades_executed = 0
        self.orders_cancelled = 0
        self.orders_rejected = 0
        self.orders_expired = 0
        self.volume = 0

    # ------------------------------------------------------------------ applying

    def apply(self, command: dict[str, Any], order_id: str) -> int:
        """Apply one committed command; return the number of trades it executed.

        ``command`` is normally the output of ``validate_order`` (raw client
        orders are normalized on a slower path).  ``order_id`` is the log-assigned
        id of a new order.  Invalid commands are counted as rejected; never raises.
        """
        # Hot path: every node runs this for every committed order, so it is one
        # flat function working on plain lists (see _Side) with locals only.
        try:
            op = command["op"]
            if op == "cancel":
                return self._cancel(command["order_id"])
            if op != "new":
                return self._apply_slow(command, order_id)
            book = self._books[command["symbol"]]
            qty = command["qty"]
            side = command["side"]
            order_type = command["type"]
            ticks = command["ticks"] if order_type == "limit" else 0
        except (KeyError, TypeError, IndexError):
            return self._apply_slow(command, order_id)
        if type(qty) is not int or not 0 < qty <= MAX_QTY or type(order_id) is not str:
            return self._apply_slow(command, order_id)
        if ticks:
            if type(ticks) is not int or not 0 < ticks <= _MAX_TICKS:
                return self._apply_slow(command, order_id)
            if side == "buy":
                own, opp = book
                own_key = ticks
            elif side == "sell":
                opp, own = book
                own_key = -ticks
            else:
                return self._apply_slow(command, order_id)
            # Lowest opposite-side key that still crosses: asks at or below our
            # bid (key -ask >= -bid), bids at or above our ask (key bid >= ask).
            threshold = -own_key
            index = self._index
            if order_id in index:
                self.orders_rejected += 1
                return 0
        elif order_type == "market":
            if side == "buy":
                own, opp = book
            elif side == "sell":
                opp, own = book
            else:
                return self._apply_slow(command, order_id)
            own_key = 0
            threshold = _NO_LIMIT
            index = self._index
        else:
            return self._apply_slow(command, order_id)

        self.orders_accepted = seq = self.orders_accepted + 1
        remaining = qty
        trades = 0
        keys = opp.keys
        if keys and keys[-1] >= threshold:
            hsum = self._hsum
            levels = opp.levels
            while keys:
                level_key = keys[-1]
                if level_key < threshold:
                    break
                level = levels[level_key]
                queue = level[2]
                while level[1]:
                    entry = queue[0]
                    resting = entry[0]
                    if not resting:  # cancelled earlier, dropped lazily now
                        queue.popleft()
                        continue
                    trades += 1
                    if resting <= remaining:
                        remaining -= resting
                        queue.popleft()
                        del index[entry[1]]
                        entry[0] = 0
                        hsum -= entry[3] * (resting + 1)
                        level[0] -= resting
                        level[1] -= 1
                        if not remaining:
                            break
                    else:
                        entry[0] = resting - remaining
                        hsum -= entry[3] * remaining
                        level[0] -= remaining
                        remaining = 0
                        break
                if not level[1]:
                    keys.pop()
                    del levels[level_key]
                if not remaining:
                    break
            self._hsum = hsum & _MASK
            self.trades_executed += trades
            self.volume += qty - remaining
        if remaining:
            if own_key:
                # Inline of _rest(): the hash key is assigned later (see module doc).
                entry = [remaining, order_id, seq, 0, own, own_key]
                index[order_id] = entry
                unkeyed = self._unkeyed
                unkeyed.append(entry)
                if len(unkeyed) >= _UNKEYED_LIMIT:
                    self._assign_keys()
                resting_level = own.levels.get(own_key)
                if resting_level is None:
                    own.levels[own_key] = [remaining, 1, deque((entry,))]
                    keys = own.keys
                    if not keys or own_key > keys[-1]:
                        keys.append(own_key)
                    else:
                        insort(keys, own_key)
                else:
                    resting_level[0] += remaining
                    resting_level[1] += 1
                    resting_level[2].append(entry)
            else:
                self.orders_expired += 1
        return trades

    def _apply_slow(self, command: Any, order_id: Any) -> int:
        try:
            normalized = validate_order(command)
        except ValueError:
            self.orders_rejected += 1
            return 0
        if normalized["op"] == "cancel":
            return self._cancel(normalized["order_id"])
        if type(order_id) is not str:
            self.orders_rejected += 1
            return 0
        self._book(normalized["symbol"])
        return self.apply(normalized, order_id)

    def _book(self, symbol: str) -> tuple[_Side, _Side]:
        book = self._books.get(symbol)
        if book is None:
            book = self._books[symbol] = (_Side(symbol, True), _Side(symbol, False))
        return book

    def _rest(self, side: _Side, level_key: int, seq: int, order_id: str, qty: int) -> None:
        entry = [qty, order_id, seq, 0, side, level_key]
        self._index[order_id] = entry
        unkeyed = self._unkeyed
        unkeyed.append(entry)
        if len(unkeyed) >= _UNKEYED_LIMIT:
            self._assign_keys()
        level = side.levels.get(level_key)
        if level is None:
            side.levels[level_key] = [qty, 1, deque((entry,))]
            keys = side.keys
            if not keys or level_key > keys[-1]:
                keys.append(level_key)
            else:
                insort(keys, level_key)
        else:
            level[0] += qty
            level[1] += 1
            level[2].append(entry)

    def _cancel(self, order_id: str) -> int:
        entry = self._index.pop(order_id, None) if type(order_id) is str else None
        if entry is None:
            self.orders_rejected += 1
            return 0
        qty = entry[0]
        entry[0] = 0
        self._hsum = (self._hsum - entry[3] * (qty + 1)) & _MASK
        side: _Side = entry[4]
        level_key = entry[5]
        level = side.levels[level_key]
        level[0] -= qty
        level[1] -= 1
        if not level[1]:
            del side.levels[level_key]
            keys = side.keys
            del keys[bisect_left(keys, level_key)]
        elif len(level[2]) > 2 * level[1] + 16:
            # Keep memory proportional to live orders when a level sees heavy cancel churn.
            level[2] = deque(e for e in level[2] if e[0])
        self.orders_cancelled += 1
        return 0

    # ------------------------------------------------------------------ reading

    def best_bid(self, symbol: str) -> float | None:
        """Highest resting buy price for ``symbol`` (currency units), or None."""
        book = self._books.get(symbol)
        if book is None or not book[0].keys:
            return None
        return ticks_to_price(book[0].keys[-1])

    def best_ask(self, symbol: str) -> float | None:
        """Lowest resting sell price for ``symbol`` (currency units), or None."""
        book = self._books.get(symbol)
        if book is None or not book[1].keys:
            return None
        return ticks_to_price(-book[1].keys[-1])

    def depth(self, symbol: str, levels: int = 5) -> dict[str, list[list[Any]]]:
        """Top ``levels`` price levels per side, best first: ``{"bids": [[price, qty, orders]], "asks": ...}``."""
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
            raise ValueError(f"levels must be a positive integer, got {levels!r}")
        book = self._books.get(symbol)
        if book is None:
            return {"bids": [], "asks": []}
        out = {}
        for name, side, sign in (("bids", book[0], 1), ("asks", book[1], -1)):
            rows = []
            for level_key in reversed(side.keys[-levels:]):
                level = side.levels[level_key]
                rows.append([ticks_to_price(sign * level_key), level[0], level[1]])
            out[name] = rows
        return out

    def symbols(self) -> list[str]:
        """Symbols that currently have resting orders, sorted."""
        return sorted(s for s, (bids, asks) in self._books.items() if bids.keys or asks.keys)

    @property
    def resting_orders(self) -> int:
        """Number of live orders resting in all books."""
        return len(self._index)

    def has_order(self, order_id: str) -> bool:
        """True if ``order_id`` is currently resting."""
        return order_id in self._index

    def order_qty(self, order_id: str) -> int | None:
        """Remaining quantity of a resting order, or None if it is not resting."""
        entry = self._index.get(order_id)
        return None if entry is None else entry[0]

    def stats(self) -> dict[str, int]:
        """All counters plus the number of resting orders."""
        out = {name: getattr(self, name) for name in _COUNTERS}
        out["resting_orders"] = len(self._index)
        return out

    # ------------------------------------------------------------------ digest

    def _counters(self) -> tuple[int, ...]:
        return (
            self.orders_accepted,
            self.trades_executed,
            self.orders_cancelled,
            self.orders_rejected,
            self.orders_expired,
            self.volume,
        )

    @staticmethod
    def _seal(hsum: int, counters: tuple[int, ...]) -> str:
        data = b"%d|%d|%d|%d|%d|%d|%d" % (hsum, *counters)
        return blake2b(data, digest_size=16, person=b"raftctl-exch-v1").hexdigest()

    def _assign_keys(self) -> None:
        hsum = self._hsum
        for entry in self._unkeyed:
            qty = entry[0]
            if qty:  # still resting (filled / cancelled records have qty 0)
                side = entry[4]
                level_key = entry[5]
                order_key = _order_key(side.tag, level_key if level_key > 0 else -level_key, entry[2], entry[1])
                entry[3] = order_key
                hsum += order_key * (qty + 1)
        self._hsum = hsum & _MASK
        self._unkeyed = []

    def digest(self) -> str:
        """Hex digest of the whole state (books incl. time priority, counters).

        Cost is O(1) plus hashing orders that came to rest since the last call.
        """
        if self._unkeyed:
            self._assign_keys()
        return self._seal(self._hsum, self._counters())

    def full_digest(self) -> str:
        """Same as ``digest()`` but recomputed from scratch (for cross-checking)."""
        hsum = 0
        for side in self._sides():
            for level_key in side.keys:
                ticks = level_key if level_key > 0 else -level_key
                for entry in side.levels[level_key][2]:
                    if entry[0]:
                        hsum += _order_key(side.tag, ticks, entry[2], entry[1]) * (entry[0] + 1)
        return self._seal(hsum & _MASK, self._counters())

    def _sides(self) -> Iterator[_Side]:
        for symbol in sorted(self._books):
            yield from self._books[symbol]

    def check_invariants(self) -> None:
        """Raise AssertionError if internal bookkeeping is inconsistent (testing aid)."""
        live = 0
        for symbol, (bids, asks) in self._books.items():
            for side in (bids, asks):
                assert side.keys == sorted(set(side.keys)), f"{symbol}: keys unsorted"
                assert set(side.keys) == set(side.levels), f"{symbol}: keys/levels mismatch"
                for level_key, (total, count, queue) in side.levels.items():
                    entries = [e for e in queue if e[0]]
                    assert entries, f"{symbol}: empty level {level_key}"
                    assert total == sum(e[0] for e in entries), f"{symbol}: level total"
                    assert count == len(entries), f"{symbol}: level count"
                    seqs = [e[2] for e in entries]
                    assert seqs == sorted(seqs), f"{symbol}: time priority broken"
                    for e in entries:
                        assert e[4] is side and e[5] == level_key
                        assert self._index.get(e[1]) is e, f"{symbol}: index mismatch {e[1]}"
                    live += len(entries)
            if bids.keys and asks.keys:
                assert bids.keys[-1] < -asks.keys[-1], f"{symbol}: crossed book"
        assert live == len(self._index), "index holds orders not in any book"

    # ------------------------------------------------------------------ snapshots

    def snapshot(self) -> bytes:
        """Deterministic compact encoding of the whole state (for log compaction)."""
        books = []
        for symbol in sorted(self._books):
            sides = []
            for side in self._books[symbol]:
                rows = []
                for level_key in reversed(side.keys):
                    orders = [[e[2], e[1], e[0]] for e in side.levels[level_key][2] if e[0]]
                    rows.append([level_key if level_key > 0 else -level_key, orders])
                sides.append(rows)
            if sides[0] or sides[1]:
                books.append([symbol, sides[0], sides[1]])
        return orjson.dumps([_SNAPSHOT_FORMAT, _SNAPSHOT_VERSION, list(self._counters()), books])

    @classmethod
    def restore(cls, data: bytes) -> "Exchange":
        """Rebuild an exchange from ``snapshot()`` bytes; raises ValueError on bad data."""
        try:
            doc = orjson.loads(data)
        except (orjson.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"invalid exchange snapshot: {exc}") from None
        if (
            not isinstance(doc, list)
            or len(doc) != 4
            or doc[0] != _SNAPSHOT_FORMAT
            or doc[1] != _SNAPSHOT_VERSION
        ):
            raise ValueError("invalid exchange snapshot: unknown format or version")
        exchange = cls()
        try:
            counters, books = doc[2], doc[3]
            if len(counters) != len(_COUNTERS) or not all(type(c) is int and c >= 0 for c in counters):
                raise ValueError("bad counters")
            for name, value in zip(_COUNTERS, counters):
                setattr(exchange, name, value)
            for symbol, bids, asks in books:
                if check_symbol(symbol) != symbol:
                    raise ValueError(f"bad symbol {symbol!r}")
                book = exchange._book(symbol)
                for side, rows, sign in ((book[0], bids, 1), (book[1], asks, -1)):
                    # Rows are best first; insert worst first so keys stay append-only.
                    for ticks, orders in reversed(rows):
                        if type(ticks) is not int or not 0 < ticks <= _MAX_TICKS or not orders:
                            raise ValueError(f"bad price level {ticks!r}")
                        for seq, order_id, qty in orders:
                            if type(seq) is not int or not 0 < seq <= exchange.orders_accepted:
                                raise ValueError(f"bad sequence number {seq!r}")
                            if type(order_id) is not str or order_id in exchange._index:
                                raise ValueError(f"bad or duplicate order id {order_id!r}")
                            check_qty(qty)
                            exchange._rest(side, sign * ticks, seq, order_id, qty)
            exchange.check_invariants()
        except (ValueError, TypeError, AssertionError) as exc:
            raise ValueError(f"invalid exchange snapshot: {exc}") from None
        return exchange

    # ------------------------------------------------------------------ test hooks

    def corrupt(self, rng: Any = None) -> str:
        """Test hook: silently change the state so the digest differs; returns what changed.

        Adds 1 to one resting order's quantity (chosen with ``rng.choice`` if an
        rng is given, else the smallest id) and always bumps ``volume``, so the damage
        survives the order later being filled or cancelled (as real corruption would).
        """
        self.volume += 1
        if not self._index:
            return "volume += 1"
        ids = sorted(self._index)
        order_id = rng.choice(ids) if rng is not None else ids[0]
        self._assign_keys()
        entry = self._index[order_id]
        entry[0] += 1
        entry[4].levels[entry[5]][0] += 1
        self._hsum = (self._hsum + entry[3]) & _MASK
        return f"qty of {order_id} += 1, volume += 1"

    def __repr__(self) -> str:
        return (
            f"Exchange(accepted={self.orders_accepted}, trades={self.trades_executed}, "
            f"resting={len(self._index)}, digest={self.digest()[:12]})"
        )

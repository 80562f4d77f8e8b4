"""Tests for the replicated matching engine (raftctl.core.exchange)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftctl.core.exchange import Exchange, price_to_ticks, validate_order

REPO = Path(__file__).resolve().parents[2]


def limit(side: str, price: float, qty: int, symbol: str = "AAPL") -> dict:
    return validate_order({"symbol": symbol, "side": side, "price": price, "qty": qty})


def market(side: str, qty: int, symbol: str = "AAPL") -> dict:
    return validate_order({"symbol": symbol, "side": side, "type": "market", "qty": qty})


def cancel(order_id: str) -> dict:
    return validate_order({"op": "cancel", "order_id": order_id})


def random_commands(rng: random.Random, count: int, symbols=("AAPL", "MSFT")) -> list[tuple[dict, str]]:
    """Seeded mixed workload with crossing limits, markets and cancels (incl. stale ids)."""
    commands = []
    ids: list[str] = []
    for n in range(count):
        order_id = f"c{rng.randrange(3)}:{n}"
        roll = rng.random()
        if roll < 0.2 and ids:
            commands.append((cancel(rng.choice(ids)), order_id))
            continue
        symbol = rng.choice(symbols)
        side = rng.choice(("buy", "sell"))
        qty = rng.randint(1, 20)
        if roll < 0.35:
            commands.append((market(side, qty, symbol), order_id))
        else:
            commands.append((limit(side, rng.randint(95, 105) + rng.choice((0, 0.5)), qty, symbol), order_id))
            ids.append(order_id)
    return commands


def run(commands) -> Exchange:
    exchange = Exchange()
    for command, order_id in commands:
        exchange.apply(command, order_id)
    return exchange


# --------------------------------------------------------------------------- matching


def test_price_time_priority_within_a_level():
    ex = Exchange()
    ex.apply(limit("sell", 101, 5), "first")
    ex.apply(limit("sell", 101, 5), "second")
    assert ex.apply(limit("buy", 101, 7), "taker") == 2
    assert not ex.has_order("first")
    assert ex.order_qty("second") == 3
    assert not ex.has_order("taker")
    assert ex.trades_executed == 2 and ex.volume == 7


def test_better_price_beats_earlier_time():
    ex = Exchange()
    ex.apply(limit("buy", 99, 5), "early_worse")
    ex.apply(limit("buy", 100, 5), "late_better")
    ex.apply(limit("sell", 99, 5), "taker")
    assert not ex.has_order("late_better")
    assert ex.order_qty("early_worse") == 5


def test_partial_fill_of_incoming_rests_remainder_at_its_limit():
    ex = Exchange()
    ex.apply(limit("sell", 100, 3), "s1")
    assert ex.apply(limit("buy", 100.5, 10), "b1") == 1
    assert ex.order_qty("b1") == 7
    assert ex.best_bid("AAPL") == 100.5
    assert ex.best_ask("AAPL") is None
    assert ex.depth("AAPL") == {"bids": [[100.5, 7, 1]], "asks": []}


def test_non_crossing_limit_does_not_trade():
    ex = Exchange()
    ex.apply(limit("sell", 101, 3), "s1")
    assert ex.apply(limit("buy", 100.99, 3), "b1") == 0
    assert ex.best_bid("AAPL") == 100.99 and ex.best_ask("AAPL") == 101.0
    assert ex.trades_executed == 0


def test_market_order_sweeps_several_levels():
    ex = Exchange()
    for i, (price, qty) in enumerate([(101, 2), (102, 3), (103, 4), (101, 1)]):
        ex.apply(limit("sell", price, qty), f"s{i}")
    assert ex.apply(market("buy", 7), "m") == 4  # s0, s3 at 101, s1 at 102, part of s2
    assert ex.depth("AAPL")["asks"] == [[103.0, 3, 1]]
    assert ex.volume == 7
    assert ex.orders_expired == 0


def test_market_remainder_is_cancelled_ioc():
    ex = Exchange()
    ex.apply(limit("buy", 100, 2), "b1")
    ex.apply(limit("buy", 99, 3), "b2")
    assert ex.apply(market("sell", 10), "m") == 2
    assert ex.depth("AAPL") == {"bids": [], "asks": []}  # nothing of the market order rests
    assert ex.orders_expired == 1 and ex.volume == 5
    assert not ex.has_order("m")


def test_market_order_on_empty_or_unknown_book_expires():
    ex = Exchange()
    assert ex.apply(market("buy", 10, "NEW"), "m1") == 0
    assert ex.orders_accepted == 1 and ex.orders_expired == 1
    assert ex.symbols() == []


def test_symbols_are_separate_books():
    ex = Exchange()
    ex.apply(limit("sell", 100, 5, "AAPL"), "a")
    assert ex.apply(limit("buy", 100, 5, "MSFT"), "m") == 0
    assert ex.symbols() == ["AAPL", "MSFT"]


def test_depth_limits_levels_and_orders_best_first():
    ex = Exchange()
    for i in range(8):
        ex.apply(limit("buy", 90 + i, 1), f"b{i}")
        ex.apply(limit("sell", 110 - i, 2), f"s{i}")
    depth = ex.depth("AAPL", levels=3)
    assert depth["bids"] == [[97.0, 1, 1], [96.0, 1, 1], [95.0, 1, 1]]
    assert depth["asks"] == [[103.0, 2, 1], [104.0, 2, 1], [105.0, 2, 1]]
    assert ex.depth("NOPE") == {"bids": [], "asks": []}
    with pytest.raises(ValueError, match="levels"):
        ex.depth("AAPL", levels=0)


# --------------------------------------------------------------------------- cancels


def test_cancel_resting_order_removes_it_and_its_level():
    ex = Exchange()
    ex.apply(limit("buy", 100, 5), "b1")
    assert ex.apply(cancel("b1"), "x") == 0
    assert ex.orders_cancelled == 1 and not ex.has_order("b1")
    assert ex.best_bid("AAPL") is None
    assert ex.apply(market("sell", 5), "m") == 0  # nothing left to hit


def test_cancel_of_filled_unknown_or_twice_cancelled_is_rejected():
    ex = Exchange()
    ex.apply(limit("sell", 100, 5), "s1")
    ex.apply(limit("buy", 100, 5), "b1")  # fills s1 completely
    ex.apply(limit("buy", 90, 5), "b2")
    for target in ("s1", "nope", "b2", "b2"):
        ex.apply(cancel(target), "x")
    assert ex.orders_cancelled == 1
    assert ex.orders_rejected == 3
    ex.check_invariants()


def test_cancel_partially_filled_order_and_lazy_deleted_entry_is_skipped():
    ex = Exchange()
    ex.apply(limit("sell", 100, 5), "s1")
    ex.apply(limit("sell", 100, 5), "s2")
    ex.apply(limit("sell", 100, 5), "s3")
    ex.apply(limit("buy", 100, 2), "b1")  # s1 left with 3
    ex.apply(cancel("s1"), "x")
    ex.apply(cancel("s2"), "y")
    assert ex.depth("AAPL")["asks"] == [[100.0, 5, 1]]
    assert ex.apply(limit("buy", 100, 4), "b2") == 1  # goes straight to s3
    assert ex.order_qty("s3") == 1
    ex.check_invariants()


def test_duplicate_resting_id_is_rejected_but_ids_can_be_reused_after_leaving():
    ex = Exchange()
    ex.apply(limit("buy", 100, 5), "id1")
    ex.apply(limit("buy", 101, 5), "id1")
    assert ex.orders_rejected == 1 and ex.order_qty("id1") == 5
    ex.apply(cancel("id1"), "x")
    ex.apply(limit("buy", 101, 5), "id1")
    assert ex.order_qty("id1") == 5 and ex.best_bid("AAPL") == 101.0


def test_cancel_churn_keeps_level_memory_bounded():
    ex = Exchange()
    ex.apply(limit("buy", 100, 1), "anchor")  # keeps the level alive
    for n in range(5000):
        ex.apply(limit("buy", 100, 1), f"o{n}")
        ex.apply(cancel(f"o{n}"), "x")
    level = ex._books["AAPL"][0].levels[10000]
    assert len(level[2]) < 64
    assert len(ex._unkeyed) < 5000
    ex.check_invariants()


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("order", "message"),
    [
        ({"symbol": "AAPL", "side": "hold", "price": 1, "qty": 1}, "unknown side"),
        ({"symbol": "AAPL", "side": "buy", "type": "stop", "price": 1, "qty": 1}, "unknown type"),
        ({"side": "buy", "price": 1, "qty": 1}, "missing field 'symbol'"),
        ({"symbol": "AAPL", "price": 1, "qty": 1}, "missing field 'side'"),
        ({"symbol": "AAPL", "side": "buy", "price": 1}, "missing field 'qty'"),
        ({"symbol": "AAPL", "side": "buy", "qty": 1}, "missing field 'price'"),
        ({"symbol": "AAPL", "side": "buy", "price": 0, "qty": 1}, "price must be positive"),
        ({"symbol": "AAPL", "side": "buy", "price": -3.5, "qty": 1}, "price must be positive"),
        ({"symbol": "AAPL", "side": "buy", "price": 0.001, "qty": 1}, "below one tick"),
        ({"symbol": "AAPL", "side": "buy", "price": float("nan"), "qty": 1}, "finite"),
        ({"symbol": "AAPL", "side": "buy", "price": "10", "qty": 1}, "price must be a number"),
        ({"symbol": "AAPL", "side": "buy", "price": True, "qty": 1}, "price must be a number"),
        ({"symbol": "AAPL", "side": "buy", "price": 1e12, "qty": 1}, "at most"),
        ({"symbol": "AAPL", "side": "buy", "price": 1, "qty": 0}, "qty must be positive"),
        ({"symbol": "AAPL", "side": "buy", "price": 1, "qty": -2}, "qty must be positive"),
        ({"symbol": "AAPL", "side": "buy", "price": 1, "qty": 1.5}, "qty must be an integer"),
        ({"symbol": "AAPL", "side": "buy", "price": 1, "qty": 2.0}, "qty must be an integer"),
        ({"symbol": "AAPL", "side": "buy", "price": 1, "qty": True}, "qty must be an integer"),
        ({"symbol": "AAPL", "side": "buy", "price": 1, "qty": 10**10}, "at most"),
        ({"symbol": "", "side": "buy", "price": 1, "qty": 1}, "invalid symbol"),
        ({"symbol": "A B", "side": "buy", "price": 1, "qty": 1}, "invalid symbol"),
        ({"symbol": "X" * 17, "side": "buy", "price": 1, "qty": 1}, "invalid symbol"),
        ({"symbol": 7, "side": "buy", "price": 1, "qty": 1}, "symbol must be a string"),
        ({"symbol": "AAPL", "side": "buy", "ticks": 2.5, "qty": 1}, "ticks must be an integer"),
        ({"op": "cancel"}, "missing field 'order_id'"),
        ({"op": "cancel", "order_id": 17}, "order_id must be a non-empty string"),
        ({"op": "cancel", "order_id": ""}, "order_id must be a non-empty string"),
        ({"op": "amend", "order_id": "x"}, "unknown op"),
    ],
)
def test_validate_order_rejects_bad_input_with_clear_message(order, message):
    with pytest.raises(ValueError, match=message):
        validate_order(order)


@pytest.mark.parametrize("order", [None, [], "buy 10 AAPL", 42])
def test_validate_order_rejects_non_objects(order):
    with pytest.raises(ValueError, match="must be a JSON object"):
        validate_order(order)


def test_validate_order_normalizes():
    assert validate_order({"symbol": "aapl", "side": "BUY", "price": 100.456, "qty": 3, "client": "x"}) == {
        "op": "new", "symbol": "AAPL", "side": "buy", "type": "limit", "ticks": 10046, "qty": 3,
    }
    assert validate_order({"symbol": "BTC-USD", "side": "sell", "type": "market", "price": -1, "qty": 2}) == {
        "op": "new", "symbol": "BTC-USD", "side": "sell", "type": "market", "qty": 2,
    }
    assert validate_order({"op": "cancel", "order_id": "c3:17"}) == {"op": "cancel", "order_id": "c3:17"}
    assert price_to_ticks(7) == 700 and price_to_ticks(0.1 + 0.2) == 30


def test_validate_order_is_idempotent():
    rng = random.Random(5)
    for command, _ in random_commands(rng, 300):
        assert validate_order(command) == command


# --------------------------------------------------------------------------- robustness of apply


@pytest.mark.parametrize(
    "command",
    [
        None,
        "cancel everything",
        [],
        {},
        {"op": "new"},
        {"op": "explode"},
        {"op": "cancel"},
        {"op": "cancel", "order_id": ["x"]},
        {"op": "new", "symbol": ["AAPL"], "side": "buy", "type": "limit", "ticks": 1, "qty": 1},
        {"op": "new", "symbol": "AAPL", "side": "buy", "type": "limit", "ticks": 100, "qty": -1},
        {"op": "new", "symbol": "AAPL", "side": "up", "type": "limit", "ticks": 100, "qty": 1},
        {"op": "new", "symbol": "AAPL", "side": "buy", "type": "limit", "ticks": True, "qty": 1},
        {"op": "new", "symbol": "AAPL", "side": "buy", "type": "iceberg", "ticks": 100, "qty": 1},
    ],
)
def test_apply_counts_garbage_as_rejected_and_never_raises(command):
    ex = Exchange()
    ex.apply(limit("buy", 1, 1), "seed")  # make the AAPL book exist so the fast path is used
    before = ex.stats()
    assert ex.apply(command, "id") == 0
    after = ex.stats()
    assert after.pop("orders_rejected") == before.pop("orders_rejected") + 1
    assert after == before
    ex.check_invariants()


def test_apply_rejects_non_string_order_id_for_new_orders():
    ex = Exchange()
    assert ex.apply(limit("buy", 1, 1), 17) == 0
    assert ex.orders_rejected == 1 and ex.resting_orders == 0


def test_apply_accepts_raw_client_orders_like_normalized_ones():
    raw = [
        ({"symbol": "aapl", "side": "sell", "price": 100.5, "qty": 4}, "a"),
        ({"symbol": "AAPL", "side": "Buy", "type": "market", "qty": 1}, "b"),
        ({"op": "cancel", "order_id": "a"}, "c"),
    ]
    normalized = [(validate_order(cmd), oid) for cmd, oid in raw]
    assert run(raw).digest() == run(normalized).digest()


# --------------------------------------------------------------------------- digest


def test_same_commands_give_equal_digests_and_any_difference_changes_it():
    commands = random_commands(random.Random(11), 500)
    base = run(commands).digest()
    assert run(commands).digest() == base
    # The extra orders rest far from the book (prices 95..105.5), so they differ
    # only in the resting state, not in counters.
    mutations = {
        "qty": (limit("buy", 50, 6), "zz"),
        "price": (limit("buy", 50.01, 5), "zz"),
        "id": (limit("buy", 50, 5), "zy"),
        "side": (limit("sell", 150, 5), "zz"),
        "symbol": (limit("buy", 50, 5, "IBM"), "zz"),
    }
    reference = run(commands + [(limit("buy", 50, 5), "zz")]).digest()
    assert reference != base
    digests = {name: run(commands + [extra]).digest() for name, extra in mutations.items()}
    assert len(set(digests.values()) | {reference}) == len(mutations) + 1, digests


def test_digest_covers_time_priority():
    first = run([(limit("sell", 101, 5), "o1"), (limit("sell", 101, 5), "o2")])
    second = run([(limit("sell", 101, 5), "o2"), (limit("sell", 101, 5), "o1")])
    assert first.depth("AAPL") == second.depth("AAPL")
    assert first.digest() != second.digest()


def test_digest_covers_each_counter():
    ex = run([(limit("buy", 100, 5), "b")])
    seen = {ex.digest()}
    for name in ("orders_accepted", "trades_executed", "orders_cancelled", "orders_rejected",
                 "orders_expired", "volume"):
        setattr(ex, name, getattr(ex, name) + 1)
        seen.add(ex.digest())
    assert len(seen) == 7


def test_corrupt_changes_digest():
    ex = run(random_commands(random.Random(3), 300))
    assert ex.resting_orders > 0
    for rng in (None, random.Random(1)):
        before = ex.digest()
        what = ex.corrupt(rng)
        assert ex.digest() != before, what
        assert ex.digest() == ex.full_digest()
    empty = Exchange()
    before = empty.digest()
    empty.corrupt()
    assert empty.digest() != before


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_digest_matches_full_digest_over_random_ops(seed):
    rng = random.Random(seed)
    commands = random_commands(rng, 6000, symbols=("AAPL", "MSFT", "X"))
    lazy = Exchange()  # only asked at the end: exercises deferred hashing and its flushes
    eager = Exchange()
    for step, (command, order_id) in enumerate(commands):
        lazy.apply(command, order_id)
        eager.apply(command, order_id)
        if step % 7 == 0:
            eager.digest()
        if step % 997 == 0:
            assert eager.digest() == eager.full_digest(), f"seed={seed} step={step}"
            eager.check_invariants()
    assert lazy.digest() == lazy.full_digest() == eager.digest(), f"seed={seed}"
    lazy.check_invariants()
    assert lazy.trades_executed > 500 and lazy.orders_cancelled > 50, f"seed={seed}: weak workload"


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["limit", "limit", "market", "cancel"]),
            st.sampled_from(["buy", "sell"]),
            st.integers(min_value=1, max_value=8),  # price in ticks (tight range: lots of crossing)
            st.integers(min_value=1, max_value=6),  # qty
            st.integers(min_value=0, max_value=40),  # cancel target (index of an earlier order)
        ),
        max_size=120,
    )
)
def test_hypothesis_engine_matches_reference_model(ops):
    ex = Exchange()
    model = ReferenceBook()
    for n, (kind, side, ticks, qty, target) in enumerate(ops):
        order_id = f"o{n}"
        if kind == "cancel":
            command = {"op": "cancel", "order_id": f"o{target}"}
        elif kind == "market":
            command = {"op": "new", "symbol": "S", "side": side, "type": "market", "qty": qty}
        else:
            command = {"op": "new", "symbol": "S", "side": side, "type": "limit", "ticks": ticks, "qty": qty}
        assert ex.apply(command, order_id) == model.apply(command, order_id), ops[: n + 1]
        if n % 10 == 0:
            assert ex.digest() == ex.full_digest()
    assert_same_as_model(ex, model)
    assert ex.digest() == ex.full_digest()


@pytest.mark.parametrize("seed", [21, 22])
def test_engine_matches_reference_model_on_seeded_workload(seed):
    commands = random_commands(random.Random(seed), 1500)
    ex, model = Exchange(), ReferenceBook()
    for step, (command, order_id) in enumerate(commands):
        assert ex.apply(command, order_id) == model.apply(command, order_id), f"seed={seed} step={step}"
    assert_same_as_model(ex, model)


class ReferenceBook:
    """Obviously-correct, slow matching model: a flat list scanned on every order."""

    def __init__(self):
        self.resting = []  # [seq, order_id, symbol, side, ticks, qty]
        self.counters = dict(accepted=0, trades=0, cancelled=0, rejected=0, expired=0, volume=0)

    def apply(self, command, order_id):
        c = self.counters
        if command["op"] == "cancel":
            hits = [o for o in self.resting if o[1] == command["order_id"]]
            if not hits:
                c["rejected"] += 1
                return 0
            self.resting.remove(hits[0])
            c["cancelled"] += 1
            return 0
        ticks = command.get("ticks")
        if ticks is not None and any(o[1] == order_id for o in self.resting):
            c["rejected"] += 1
            return 0
        c["accepted"] += 1
        side, symbol, qty = command["side"], command["symbol"], command["qty"]
        if side == "buy":
            crosses = [o for o in self.resting if o[2] == symbol and o[3] == "sell"
                       and (ticks is None or o[4] <= ticks)]
            crosses.sort(key=lambda o: (o[4], o[0]))
        else:
            crosses = [o for o in self.resting if o[2] == symbol and o[3] == "buy"
                       and (ticks is None or o[4] >= ticks)]
            crosses.sort(key=lambda o: (-o[4], o[0]))
        trades = 0
        for other in crosses:
            if not qty:
                break
            fill = min(qty, other[5])
            qty -= fill
            other[5] -= fill
            c["volume"] += fill
            trades += 1
            if not other[5]:
                self.resting.remove(other)
        c["trades"] += trades
        if qty:
            if ticks is None:
                c["expired"] += 1
            else:
                self.resting.append([c["accepted"], order_id, symbol, side, ticks, qty])
        return trades

    def depth(self, symbol, side):
        levels = {}
        for o in self.resting:
            if o[2] == symbol and o[3] == side:
                level = levels.setdefault(o[4], [0, 0])
                level[0] += o[5]
                level[1] += 1
        ordered = sorted(levels.items(), reverse=(side == "buy"))
        return [[ticks / 100, qty, count] for ticks, (qty, count) in ordered]


def assert_same_as_model(ex: Exchange, model: ReferenceBook) -> None:
    c = model.counters
    assert (ex.orders_accepted, ex.trades_executed, ex.orders_cancelled, ex.orders_rejected,
            ex.orders_expired, ex.volume) == (c["accepted"], c["trades"], c["cancelled"],
                                              c["rejected"], c["expired"], c["volume"])
    for symbol in {o[2] for o in model.resting} | set(ex.symbols()):
        depth = ex.depth(symbol, levels=1000)
        assert depth["bids"] == model.depth(symbol, "buy")
        assert depth["asks"] == model.depth(symbol, "sell")
    for o in model.resting:
        assert ex.order_qty(o[1]) == o[5]
    assert ex.resting_orders == len(model.resting)
    ex.check_invariants()


# --------------------------------------------------------------------------- snapshots


def test_snapshot_restore_round_trip_then_identical_behaviour():
    rng = random.Random(8)
    commands = random_commands(rng, 3000)
    original = run(commands[:2000])
    data = original.snapshot()
    restored = Exchange.restore(data)
    assert restored.digest() == original.digest() == restored.full_digest()
    assert restored.snapshot() == data
    assert restored.stats() == original.stats()
    for step, (command, order_id) in enumerate(commands[2000:]):
        assert restored.apply(command, order_id) == original.apply(command, order_id), f"step={step}"
        assert restored.digest() == original.digest(), f"step={step}"
    assert restored.snapshot() == original.snapshot()
    restored.check_invariants()


def test_snapshot_is_deterministic_and_ignores_empty_books():
    commands = random_commands(random.Random(4), 500)
    assert run(commands).snapshot() == run(commands).snapshot()
    ex = Exchange()
    ex.apply(market("buy", 3, "GHOST"), "m")
    assert Exchange.restore(ex.snapshot()).digest() == ex.digest()
    assert Exchange.restore(Exchange().snapshot()).digest() == Exchange().digest()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"{}",
        b'["something-else", 1, [0,0,0,0,0,0], []]',
        b'["raftctl-exchange", 99, [0,0,0,0,0,0], []]',
        b'["raftctl-exchange", 1, [0,0,0], []]',
        b'["raftctl-exchange", 1, [1,0,0,0,0,0], [["AAPL", [[10000, [[1, "a", 0]]]], []]]]',
        b'["raftctl-exchange", 1, [1,0,0,0,0,0], [["AAPL", [[10000, [[5, "a", 1]]]], []]]]',
        b'["raftctl-exchange", 1, [2,0,0,0,0,0], [["AAPL", [[10000, [[1, "a", 1], [2, "a", 1]]]], []]]]',
        b'["raftctl-exchange", 1, [2,0,0,0,0,0], [["AAPL", [[10000, [[2, "a", 1], [1, "b", 1]]]], []]]]',
        b'["raftctl-exchange", 1, [2,0,0,0,0,0], [["AAPL", [[10000, [[1, "a", 1]]]], [[9000, [[2, "b", 1]]]]]]]',
        b'["raftctl-exchange", 1, [1,0,0,0,0,0], [["bad sym", [], []]]]',
        b'["raftctl-exchange", 1, [1,0,0,0,0,0], [["AAPL", [[-5, [[1, "a", 1]]]], []]]]',
    ],
)
def test_restore_rejects_bad_snapshots(data):
    with pytest.raises(ValueError, match="invalid exchange snapshot"):
        Exchange.restore(data)


# --------------------------------------------------------------------------- determinism

_DIGEST_SCRIPT = """
import random, sys
sys.path.insert(0, sys.argv[1])
from tests.unit.test_exchange import random_commands, run
ex = run(random_commands(random.Random(99), 2000, symbols=("AAPL", "MSFT", "BTC-USD", "ETH/EUR")))
print(ex.digest(), ex.full_digest(), ex.snapshot().hex()[:64])
"""


def test_digest_is_identical_across_hash_seeds():
    outputs = set()
    for hash_seed in ("0", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        result = subprocess.run(
            [sys.executable, "-c", _DIGEST_SCRIPT, str(REPO)],
            capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=False,
        )
        assert result.returncode == 0, result.stderr
        outputs.add(result.stdout.strip())
    ex = run(random_commands(random.Random(99), 2000, symbols=("AAPL", "MSFT", "BTC-USD", "ETH/EUR")))
    outputs.add(f"{ex.digest()} {ex.full_digest()} {ex.snapshot().hex()[:64]}")
    assert len(outputs) == 1, outputs

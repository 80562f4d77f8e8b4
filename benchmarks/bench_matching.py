"""Matching-engine throughput on a seeded mixed workload.

Usage: .venv/bin/python benchmarks/bench_matching.py [--orders N] [--seed S] [--symbols K]

Workload: 60% limit orders around a drifting mid (some crossing), 25% market
orders, 15% cancels of recently submitted ids (some already filled, so they are
rejected, as in a real cluster).  Commands are generated and validated up front;
only Exchange.apply() (and digest()) is timed.  Prints orders/s, µs/order and
digest costs.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raftctl.core.exchange import Exchange, validate_order  # noqa: E402


def make_workload(count: int, seed: int, symbol_count: int) -> list[tuple[dict, str]]:
    """Return ``count`` (normalized command, order id) pairs."""
    rng = random.Random(seed)
    symbols = [f"SYM{i}" for i in range(symbol_count)]
    mids = {s: 100.0 for s in symbols}
    recent: list[str] = []
    commands: list[tuple[dict, str]] = []
    for n in range(count):
        order_id = f"c1:{n}"
        roll = rng.random()
        if roll < 0.15 and recent:
            target = recent[rng.randrange(len(recent))]
            commands.append((validate_order({"op": "cancel", "order_id": target}), order_id))
            continue
        symbol = symbols[rng.randrange(symbol_count)]
        mids[symbol] = max(1.0, mids[symbol] + rng.gauss(0.0, 0.02))
        side = "buy" if rng.random() < 0.5 else "sell"
        qty = rng.randint(1, 100)
        if roll < 0.40:
            order = {"symbol": symbol, "side": side, "type": "market", "qty": qty}
        else:
            # Mostly passive, sometimes aggressive (negative offset crosses the spread).
            offset = rng.gauss(0.15, 0.25)
            price = mids[symbol] - offset if side == "buy" else mids[symbol] + offset
            order = {"symbol": symbol, "side": side, "price": round(max(0.01, price), 2), "qty": qty}
            recent.append(order_id)
            if len(recent) > 2000:
                del recent[: len(recent) // 2]
        commands.append((validate_order(order), order_id))
    return commands


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--symbols", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; best is reported")
    args = parser.parse_args(argv)
    if args.orders < 1 or args.symbols < 1 or args.repeat < 1:
        parser.error("--orders, --symbols and --repeat must be positive")

    commands = make_workload(args.orders, args.seed, args.symbols)
    best = float("inf")
    exchange = Exchange()
    for _ in range(args.repeat):
        exchange = Exchange()
        apply = exchange.apply
        start = time.perf_counter()
        for command, order_id in commands:
            apply(command, order_id)
        best = min(best, time.perf_counter() - start)

    # As in a cluster: the collector / safety checker ask for digests while orders flow.
    interleaved = float("inf")
    every = 1000
    for _ in range(args.repeat):
        probe = Exchange()
        apply = probe.apply
        start = time.perf_counter()
        for n, (command, order_id) in enumerate(commands):
            apply(command, order_id)
            if n % every == 0:
                probe.digest()
        interleaved = min(interleaved, time.perf_counter() - start)

    digest_calls = 20_000
    start = time.perf_counter()
    for _ in range(digest_calls):
        exchange.digest()
    digest_us = (time.perf_counter() - start) / digest_calls * 1e6

    start = time.perf_counter()
    full = exchange.full_digest()
    full_ms = (time.perf_counter() - start) * 1e3
    start = time.perf_counter()
    snap = exchange.snapshot()
    snap_ms = (time.perf_counter() - start) * 1e3
    start = time.perf_counter()
    restored = Exchange.restore(snap)
    restore_ms = (time.perf_counter() - start) * 1e3
    assert full == exchange.digest() == restored.digest(), "digest mismatch"

    stats = exchange.stats()
    print(f"workload: {args.orders} orders, seed {args.seed}, {args.symbols} symbols "
          f"(60% limit / 25% market / 15% cancel)")
    print(f"result:   trades={stats['trades_executed']} volume={stats['volume']} "
          f"cancelled={stats['orders_cancelled']} rejected={stats['orders_rejected']} "
          f"expired={stats['orders_expired']} resting={stats['resting_orders']}")
    print(f"apply:    {args.orders / best:,.0f} orders/s  ({best / args.orders * 1e6:.2f} µs/order, "
          f"best of {args.repeat})")
    print(f"apply + digest() every {every} orders: {args.orders / interleaved:,.0f} orders/s")
    print(f"digest(): {digest_us:.2f} µs   full_digest(): {full_ms:.2f} ms")
    print(f"snapshot: {len(snap):,} bytes in {snap_ms:.2f} ms, restore {restore_ms:.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

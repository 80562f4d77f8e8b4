"""Client orders as the log carries them: validation and price ticks.

``validate_order`` turns a client's order into the normalized log command, once, before it
enters the Raft log; every node's matching engine (``raftctl/core/exchange.py``) then applies only
these commands. Prices become integer ticks here, so float rounding can never make two nodes
disagree.
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["TICK_SIZE", "PRICE_SCALE", "MAX_QTY", "MAX_PRICE", "MAX_TICKS", "validate_order",
           "price_to_ticks", "ticks_to_price", "check_symbol", "check_qty"]

PRICE_SCALE = 100  # ticks per currency unit
TICK_SIZE = 1 / PRICE_SCALE
MAX_QTY = 10**9
MAX_PRICE = 10**9
MAX_TICKS = MAX_PRICE * PRICE_SCALE

_SYMBOL_RE = re.compile(r"[A-Z0-9][A-Z0-9._/-]{0,15}")


def price_to_ticks(price: Any) -> int:
    """Convert a client price (int or float, currency units) to integer ticks."""
    if isinstance(price, bool) or not isinstance(price, (int, float)):
        raise ValueError(f"price must be a number, got {type(price).__name__}")
    if isinstance(price, float) and not math.isfinite(price):
        raise ValueError(f"price must be finite, got {price!r}")
    if price <= 0:
        raise ValueError(f"price must be positive, got {price!r}")
    if price > MAX_PRICE:
        raise ValueError(f"price must be at most {MAX_PRICE}, got {price!r}")
    ticks = price * PRICE_SCALE if isinstance(price, int) else round(price * PRICE_SCALE)
    if ticks < 1:
        raise ValueError(f"price {price!r} is below one tick ({TICK_SIZE})")
    return int(ticks)


def ticks_to_price(ticks: int) -> float:
    """Convert integer ticks back to a display price in currency units."""
    return ticks / PRICE_SCALE


def check_symbol(symbol: Any) -> str:
    if not isinstance(symbol, str):
        raise ValueError(f"symbol must be a string, got {type(symbol).__name__}")
    normalized = symbol.upper()
    if not _SYMBOL_RE.fullmatch(normalized):
        raise ValueError(
            f"invalid symbol {symbol!r}: expected 1-16 characters, letters, digits or . _ / -, "
            "starting with a letter or digit"
        )
    return normalized


def check_qty(qty: Any) -> int:
    if isinstance(qty, bool) or not isinstance(qty, int):
        raise ValueError(f"qty must be an integer, got {type(qty).__name__} {qty!r}")
    if qty <= 0:
        raise ValueError(f"qty must be positive, got {qty}")
    if qty > MAX_QTY:
        raise ValueError(f"qty must be at most {MAX_QTY}, got {qty}")
    return qty


def _check_choice(order: dict[str, Any], field: str, choices: tuple[str, ...], default: str | None = None) -> str:
    value = order.get(field, default)
    if value is None:
        raise ValueError(f"missing field {field!r}")
    if not isinstance(value, str) or value.lower() not in choices:
        raise ValueError(f"unknown {field} {value!r}: expected one of {', '.join(choices)}")
    return value.lower()


def validate_order(order: dict[str, Any]) -> dict[str, Any]:
    """Validate a client order or cancel and return the normalized log command.

    Accepts ``{"symbol", "side": "buy"|"sell", "type": "limit"|"market"
    (default limit), "price" (limit only), "qty"}`` or
    ``{"op": "cancel", "order_id": str}``.  Returns one of::

        {"op": "new", "symbol": "AAPL", "side": "buy", "type": "limit", "ticks": 10050, "qty": 10}
        {"op": "new", "symbol": "AAPL", "side": "sell", "type": "market", "qty": 10}
        {"op": "cancel", "order_id": "c3:17"}

    ``ticks`` is the price in integer ticks of ``TICK_SIZE`` (floats round to
    the nearest tick).  Unknown extra keys are ignored.  A normalized command
    validates to itself.  Raises ``ValueError`` with a readable message.
    """
    if not isinstance(order, dict):
        raise ValueError(f"order must be a JSON object, got {type(order).__name__}")
    op = order.get("op", "new")
    if op == "cancel":
        order_id = order.get("order_id")
        if order_id is None:
            raise ValueError("missing field 'order_id'")
        if not isinstance(order_id, str) or not order_id:
            raise ValueError(f"order_id must be a non-empty string, got {order_id!r}")
        return {"op": "cancel", "order_id": order_id}
    if op != "new":
        raise ValueError(f"unknown op {op!r}: expected 'new' or 'cancel'")
    for field in ("symbol", "side", "qty"):
        if field not in order:
            raise ValueError(f"missing field {field!r}")
    symbol = check_symbol(order["symbol"])
    side = _check_choice(order, "side", ("buy", "sell"))
    order_type = _check_choice(order, "type", ("limit", "market"), default="limit")
    qty = check_qty(order["qty"])
    if order_type == "market":
        return {"op": "new", "symbol": symbol, "side": side, "type": "market", "qty": qty}
    # "ticks" (already normalized) wins over "price", as in Exchange.apply's fast path.
    if "ticks" in order:
        ticks = order["ticks"]
        if isinstance(ticks, bool) or not isinstance(ticks, int) or not 0 < ticks <= MAX_TICKS:
            raise ValueError(f"ticks must be an integer in 1..{MAX_TICKS}, got {ticks!r}")
    elif "price" in order:
        ticks = price_to_ticks(order["price"])
    else:
        raise ValueError("missing field 'price' (required for limit orders)")
    return {"op": "new", "symbol": symbol, "side": side, "type": "limit", "ticks": ticks, "qty": qty}

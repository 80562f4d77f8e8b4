"""POST /api/orders' body checks (raftctl/node/http_api.py parse_orders): a bad order is one
400 naming it and what it must be."""

from __future__ import annotations

import orjson
import pytest

from raftctl.node.http_api import MAX_ORDERS, BadRequest, parse_orders

ORDER = {"client_id": "c1", "seq": 1, "symbol": "BTC-USD", "side": "buy", "price": 100, "qty": 1}


def test_one_order_or_a_list():
    assert [(c, s) for c, s, _ in parse_orders(orjson.dumps(ORDER))] == [("c1", 1)]
    assert [(c, s) for c, s, _ in parse_orders(orjson.dumps([ORDER, {**ORDER, "seq": 2}]))] == [("c1", 1), ("c1", 2)]


@pytest.mark.parametrize("body, message", [
    ({**ORDER, "seq": 0}, "seq must be an integer from 1 to 2**63 - 1, got 0"),
    ({**ORDER, "seq": True}, "seq must be an integer from 1 to 2**63 - 1, got True"),
    ({**ORDER, "seq": 2**63}, "seq must be an integer from 1 to 2**63 - 1, got 9223372036854775808"),
    ({**ORDER, "seq": "7"}, "seq must be an integer from 1 to 2**63 - 1, got 7"),
    ({**ORDER, "client_id": "a:b"}, "client_id must be a non-empty string"),
    ([], "no orders"),
])
def test_a_bad_order_is_named(body, message):
    with pytest.raises(BadRequest) as caught:
        parse_orders(orjson.dumps(body))
    assert message in caught.value.message


def test_a_seq_beyond_64_bits_says_the_range_it_must_be_in():
    # a JSON number too big for 64 bits arrives as a float; "a positive integer" did not say why
    with pytest.raises(BadRequest) as caught:
        parse_orders(b'{"client_id": "c1", "seq": 123456789012345678901234567890, "symbol": "X", '
                     b'"side": "buy", "price": 1, "qty": 1}')
    assert "seq must be an integer from 1 to 2**63 - 1" in caught.value.message


def test_too_many_orders_in_one_request():
    with pytest.raises(BadRequest, match=f"at most {MAX_ORDERS} orders per request"):
        parse_orders(orjson.dumps([{**ORDER, "seq": i} for i in range(1, MAX_ORDERS + 2)]))

"""The HTTP address a node advertises (raftctl/node/main.py: advertised_http)."""

from __future__ import annotations

import pytest

from raftctl.commands._common import CliError
from raftctl.node.main import advertised_http


def test_the_http_address_is_told_as_given_unless_it_is_a_wildcard():
    assert advertised_http(("127.0.0.1", 7101), ("127.0.0.1", 7001)) == (("127.0.0.1", 7101), None)
    assert advertised_http(("10.0.0.5", 7101), ("10.0.0.6", 7001)) == (("10.0.0.5", 7101), None)


def test_a_wildcard_http_host_is_told_as_the_raft_host_the_peers_reach():
    assert advertised_http(("0.0.0.0", 7101), ("10.0.0.5", 7001)) == (("10.0.0.5", 7101), None)
    assert advertised_http(("::", 7101), ("fd00::5", 7001)) == (("fd00::5", 7101), None)
    told, warning = advertised_http(("0.0.0.0", 7101), ("0.0.0.0", 7001))
    assert told == ("0.0.0.0", 7101) and warning is not None and "--advertise-http" in warning


def test_an_advertised_address_wins_and_is_never_a_wildcard():
    assert advertised_http(("0.0.0.0", 7101), ("10.0.0.5", 7001), ("node1.example", 80)) == (("node1.example", 80), None)
    with pytest.raises(CliError) as err:
        advertised_http(("0.0.0.0", 7101), ("10.0.0.5", 7001), ("::", 80))
    assert err.value.exit_code == 2 and "wildcard" in err.value.message


def test_every_batch_failed_by_one_lost_leadership_gets_its_message():
    """A leader that loses office fails every waiting batch with one shared answer document; the
    HTTP handler popped "error" from it, so the first client got the reason and the others
    "unavailable" (and several threads changed one dict)."""
    from concurrent.futures import Future

    import orjson

    from raftctl.node.http_api import NodeApi

    shared = {"error": "node3 lost leadership before the orders were applied; retry with the same client_id and seq",
              "leader": "node2", "leader_url": "http://127.0.0.1:7102"}

    class Node:
        node_id = "node3"

        def submit(self, orders):
            future: Future = Future()
            future.set_result((421, shared))
            return future

    api = NodeApi(Node())  # type: ignore[arg-type]
    body = orjson.dumps({"client_id": "c", "seq": 1, "symbol": "BTC-USD", "side": "buy", "price": 100, "qty": 1})
    answers = [api.handle("POST", "/api/orders", body, "127.0.0.1") for _ in range(3)]
    for status, headers, payload in answers:
        doc = orjson.loads(payload)
        assert status == 421 and doc["error"] == shared["error"] and doc["leader"] == "node2", doc
        assert ("Location", "http://127.0.0.1:7102/api/orders") in headers
    assert "error" in shared  # the shared document is read, not changed

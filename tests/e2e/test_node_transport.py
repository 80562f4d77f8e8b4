"""The node transport on real loopback sockets: frames, reconnect, the bounded queue, hellos, isolation."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable

import orjson
import pytest
from node_fixtures import free_ports

from raftctl.core.raft import APPEND, VOTE, Message
from raftctl.node.codec import dumps_messages, loads_messages
from raftctl.node.transport import Transport

pytestmark = pytest.mark.timeout(60)


class Inbox:
    def __init__(self) -> None:
        self.msgs: list[Message] = []
        self.cond = threading.Condition()

    def __call__(self, msgs: list[Message]) -> None:
        with self.cond:
            self.msgs.extend(msgs)
            self.cond.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.msgs) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"got {len(self.msgs)} of {count} messages"
                self.cond.wait(left)
            return list(self.msgs)


def pair(**kwargs: object) -> tuple[Transport, Transport, Inbox, Inbox, dict[str, tuple[str, int]]]:
    p1, p2 = free_ports(2)
    addrs = {"a": ("127.0.0.1", p1), "b": ("127.0.0.1", p2)}
    ia, ib = Inbox(), Inbox()
    ta = Transport("a", "cid", addrs, ia, **kwargs)  # type: ignore[arg-type]
    tb = Transport("b", "cid", addrs, ib, **kwargs)  # type: ignore[arg-type]
    return ta, tb, ia, ib, addrs


def wait(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_messages_arrive_in_order_with_every_field_and_entries_intact():
    ta, tb, _ia, ib, _ = pair()
    ta.start()
    tb.start()
    try:
        entries = [(3, ("c1", 7, {"op": "new", "symbol": "X", "side": "buy", "type": "limit", "ticks": 5, "qty": 1},
                        "c1:7")), (3, None)]
        sent = [Message(APPEND, "a", "b", 3, prev_index=i, prev_term=2, entries=entries, commit=i, epoch=1)
                for i in range(200)]
        for i in range(0, 200, 10):
            ta.send("b", sent[i:i + 10])
        got = ib.wait_for(200)
        assert [m.prev_index for m in got] == list(range(200))
        assert all(m.entries == entries and m.term == 3 and m.src == "a" and m.epoch == 1 for m in got)
        wait(lambda: ta.peers_connected() == 1 and tb.peers_connected() == 1, what="both connected (keepalives)")
    finally:
        ta.stop()
        tb.stop()


def test_a_peer_that_comes_up_later_is_reached_after_back_off_and_a_dead_one_shows_disconnected():
    ta, tb, _ia, ib, _ = pair()
    ta.start()
    try:
        ta.send("b", [Message(VOTE, "a", "b", 1)])
        wait(lambda: ta.stats.dropped_unreachable >= 1, what="a drop while b is down")
        assert ta.peers_connected() == 0
        tb.start()
        deadline = time.monotonic() + 5
        while not ib.msgs:  # Raft resends; so do we, until one arrives
            assert time.monotonic() < deadline, "never reconnected"
            ta.send("b", [Message(VOTE, "a", "b", 2)])
            time.sleep(0.05)
        assert ta.stats.connects >= 1 and ta.stats.connect_failures >= 1
        tb.stop()
        wait(lambda: ta.peers_connected() == 0, what="the stopped peer to show as disconnected")
    finally:
        ta.stop()
        tb.stop()


def test_the_queue_is_bounded_and_drops_the_oldest_counting_them():
    ta, _tb, _ia, _ib, _ = pair(queue_limit=100)
    peer = ta.peers["b"]  # not started: nothing drains the queue
    peer.put([Message(VOTE, "a", "b", t) for t in range(250)])
    assert len(peer.queue) == 100 and ta.stats.dropped_queue_full == 150
    assert [m.term for m in peer.queue] == list(range(150, 250)), "the newest must be kept"


def test_isolation_drops_both_ways_and_healing_restores_traffic():
    ta, tb, ia, ib, _ = pair()
    ta.start()
    tb.start()
    try:
        ta.send("b", [Message(VOTE, "a", "b", 1)])
        ib.wait_for(1)
        assert ta.isolate(["b"]) == ["b"]
        with pytest.raises(ValueError, match="unknown peer"):
            ta.isolate(["zz"])
        for t in range(2, 12):
            ta.send("b", [Message(VOTE, "a", "b", t)])
            tb.send("a", [Message(VOTE, "b", "a", t)])
            time.sleep(0.01)
        wait(lambda: ta.stats.dropped_isolated >= 20, what="drops both ways")
        assert len(ib.msgs) == 1 and ia.msgs == []
        assert ta.peers_connected() == 0
        ta.isolate([])
        deadline = time.monotonic() + 5
        while not ia.msgs or len(ib.msgs) < 2:
            assert time.monotonic() < deadline, "traffic did not come back"
            ta.send("b", [Message(VOTE, "a", "b", 99)])
            tb.send("a", [Message(VOTE, "b", "a", 99)])
            time.sleep(0.05)
    finally:
        ta.stop()
        tb.stop()


def frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def test_a_node_of_another_cluster_a_stranger_and_bad_frames_are_refused():
    ta, _tb, ia, _ib, addrs = pair()
    ta.start()
    try:
        msg = dumps_messages([Message(VOTE, "b", "a", 5)])
        for hello, body, told in [
            ({"node": "b", "cluster": "other"}, msg, "a is of cluster cid, not 'other'"),  # another cluster
            ({"node": "mallory", "cluster": "cid"}, msg, "'mallory' is not among a's --peers"),  # not a peer
            ({"node": "b", "cluster": "cid"}, b"[[1,2]]", None),   # a malformed message
            ({"node": "b", "cluster": "cid"}, b"{nope", None),     # not JSON
        ]:
            with socket.create_connection(addrs["a"], timeout=2) as s:
                s.sendall(frame(orjson.dumps(hello)) + frame(body))
                s.settimeout(2)
                if told is not None:  # a refused node is told why, in one frame, before the end
                    data = b""
                    while chunk := s.recv(4096):
                        data += chunk
                    (length,) = struct.unpack(">I", data[:4])
                    assert len(data) == 4 + length and told in orjson.loads(data[4:])["refused"], data
                else:
                    assert s.recv(1) == b"", "the connection should be closed"
        # a message claiming another sender is dropped, the connection's own one is taken
        with socket.create_connection(addrs["a"], timeout=2) as s:
            forged = dumps_messages([Message(VOTE, "c", "a", 6), Message(VOTE, "b", "a", 7)])
            s.sendall(frame(orjson.dumps({"node": "b", "cluster": "cid"})) + frame(forged))
            got = ia.wait_for(1)
        assert [m.term for m in got] == [7]
        assert ta.stats.bad_frames >= 5
        # an oversized length closes the connection before reading it
        with socket.create_connection(addrs["a"], timeout=2) as s:
            s.sendall(frame(orjson.dumps({"node": "b", "cluster": "cid"})) + struct.pack(">I", 1 << 31))
            s.settimeout(2)
            assert s.recv(1) == b""
    finally:
        ta.stop()


def test_a_node_refused_by_its_peer_says_why_in_its_own_log(caplog):
    """The operator tester: a node started with a wrong peer list ran as a silent CANDIDATE at term
    0; only its peers' logs said they refused it. The refused node now logs why itself."""
    p1, p2 = free_ports(2)
    addrs = {"a": ("127.0.0.1", p1), "b": ("127.0.0.1", p2)}
    ta = Transport("a", "cluster-a", addrs, Inbox())
    tb = Transport("b", "cluster-b", addrs, Inbox())
    ta.start()
    tb.start()
    caplog.set_level("WARNING", logger="raftctl.node.transport")
    try:
        def told() -> bool:
            ta.send("b", [Message(VOTE, "a", "b", 1)])
            return any("peer b (127.0.0.1:%d) refused this node's connection: b is of cluster cluster-b, "
                       "not 'cluster-a'" % p2 in r.getMessage() for r in caplog.records)

        wait(told, 10, "a to log why b refused it")
        assert ta.peers_connected() == 0 and tb.peers_connected() == 0
        said = [r.getMessage() for r in caplog.records if "refused this node's connection" in r.getMessage()]
        assert len(said) == 1, said  # once per REFUSAL_LOG_EVERY_S, however often it retries
    finally:
        ta.stop()
        tb.stop()


def test_the_codec_refuses_what_is_not_a_message():
    good = dumps_messages([Message(APPEND, "a", "b", 1, entries=[(1, None)])])
    assert loads_messages(good)[0].entries == [(1, None)]
    for bad in [b"{}", b"[1]", b'[["x"]]', good.replace(b'"a"', b"1", 1), good.replace(b"[1,null]", b"[1,7]"),
                good.replace(b"[1,null]", b'[1,["c",1,{},2]]')]:
        with pytest.raises(ValueError):
            loads_messages(bad)
    with pytest.raises(ValueError, match="group"):
        loads_messages(dumps_messages([Message(VOTE, "a", "b", 1, group=3)]), groups=1)


def test_a_peer_whose_connections_stay_open_but_that_sends_nothing_is_not_connected():
    """What SIGSTOP does to a peer: its sockets stay open, the kernel takes our bytes, it says nothing."""
    ta, _tb, _ia, _ib, addrs = pair()
    with socket.socket() as listener:  # b's port: accepts a's connection and never reads it
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(addrs["b"])
        listener.listen()
        ta.start()
        try:
            held: list[socket.socket] = []
            out = socket.create_connection(addrs["a"], timeout=2)  # b's side: a hello, then silence
            held.append(out)
            out.sendall(frame(orjson.dumps({"node": "b", "cluster": "cid"})) + frame(dumps_messages([])))
            wait(lambda: ta.peers["b"].connected and ta.peers_connected() == 1, what="b counted while it speaks")
            listener.settimeout(2)
            held.append(listener.accept()[0])
            silent = time.monotonic()
            wait(lambda: ta.peers_connected() == 0, timeout=3, what="silent b counted as not connected")
            assert ta.peers["b"].connected, "the TCP connection is still open: only the silence tells"
            assert time.monotonic() - silent < 2.5
            out.sendall(frame(dumps_messages([])))  # it speaks again
            wait(lambda: ta.peers_connected() == 1, what="b counted again")
            for s in held:
                s.close()
        finally:
            ta.stop()

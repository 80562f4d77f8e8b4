"""runtime/ports.py: free loopback ports for the processes raftctl starts, below the ephemeral range."""

from __future__ import annotations

import socket

import pytest

from raftctl.runtime import ports


def test_free_ports_are_distinct_free_and_below_the_ephemeral_range():
    low = ports.ephemeral_low()
    got = ports.free_ports(20)
    assert len(set(got)) == 20 and all(10000 <= p < low for p in got), (got, low)
    for port in got:  # each can be listened on now
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_free_ports_skip_excluded_and_taken_ports(monkeypatch):
    lo = ports.free_base_port(5) + 1  # lo..lo+4 are free now: make them the whole range
    monkeypatch.setattr(ports, "_LOWEST", lo)
    monkeypatch.setattr(ports, "ephemeral_low", lambda default=32768: lo + 5)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", lo + 2))
        taken.listen()
        assert sorted(ports.free_ports(3, exclude=[lo + 1])) == [lo, lo + 3, lo + 4]
        with pytest.raises(RuntimeError, match="no 4 free loopback ports"):
            ports.free_ports(4, exclude=[lo + 1], attempts=200)


def test_a_base_port_leaves_room_for_the_node_layout():
    base = ports.free_base_port(5)
    assert base + 105 < ports.ephemeral_low()
    for port in [base + i for i in range(1, 6)] + [base + 100 + i for i in range(1, 6)]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_the_ephemeral_range_is_read_from_the_kernel(tmp_path, monkeypatch):
    import builtins

    real_open = builtins.open
    fake = tmp_path / "range"
    fake.write_text("40000\t60999\n")
    def fake_open(path, *args, **kwargs):
        return real_open(fake if "ip_local_port_range" in str(path) else path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    assert ports.ephemeral_low() == 40000
    fake.write_text("garbage")
    assert ports.ephemeral_low() == 32768

"""Free loopback ports for the processes raftctl starts (node clusters, etcd clusters, tests).

The ports come from below the kernel's ephemeral range. Outgoing connections take their local
ports from that range, so a server listening inside it can lose its port to any client's
``connect`` in the moment between our check and its own ``bind``, or while a killed member is
down and waiting for its restart. Below it only another listener can take one.
"""

from __future__ import annotations

import random
import socket
from typing import Iterable

__all__ = ["ephemeral_low", "free_base_port", "free_ports"]

_LOWEST = 10000


def ephemeral_low(default: int = 32768) -> int:
    """The first port of the kernel's ephemeral range (``ip_local_port_range``)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return default


def _all_free(ports: Iterable[int]) -> bool:
    sockets: list[socket.socket] = []
    try:
        for port in ports:
            sock = socket.socket()
            sockets.append(sock)
            sock.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        for sock in sockets:
            sock.close()


def free_ports(count: int, exclude: Iterable[int] = (), attempts: int = 500) -> list[int]:
    """``count`` distinct loopback TCP ports, each free when checked, below the ephemeral range."""
    taken = set(exclude)
    high = ephemeral_low()
    rng = random.Random()
    ports: list[int] = []
    for _ in range(attempts):
        if len(ports) == count:
            return ports
        port = rng.randrange(_LOWEST, high)
        if port not in taken and _all_free([port]):
            taken.add(port)
            ports.append(port)
    if len(ports) == count:
        return ports
    raise RuntimeError(f"no {count} free loopback ports between {_LOWEST} and {high}")


def free_base_port(nodes: int, attempts: int = 500) -> int:
    """A base port B with B+1..B+nodes and B+101..B+100+nodes all free (the node launcher's layout)."""
    high = max(_LOWEST + 1, ephemeral_low() - 100 - nodes)
    rng = random.Random()
    for _ in range(attempts):
        base = rng.randrange(_LOWEST, high)
        if _all_free([base + i for i in range(1, nodes + 1)] + [base + 100 + i for i in range(1, nodes + 1)]):
            return base
    raise RuntimeError("no free loopback ports for the node processes")

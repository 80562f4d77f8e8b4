"""The simulated clock and its event queue.

Time is a float of simulated milliseconds. Events are ``(at_ms, seq, kind, payload)`` on a heap;
``seq`` breaks ties in insertion order, so the same pushes always pop in the same order.
"""

from __future__ import annotations

import heapq
from typing import Any

__all__ = ["DELIVER", "TIMER", "FLUSH", "CALL", "EventQueue"]

# Event kinds.
DELIVER = 0  # a packet reaches a node: (src, dst, messages, reserved)
TIMER = 1    # a node's Raft timer: (node, boots)
FLUSH = 2    # a leader sends the entries proposed since the last flush: (node, shard)
CALL = 3     # a scheduled callable


class EventQueue:
    """A heap of timed events plus the current simulated time."""

    __slots__ = ("heap", "seq", "now_ms")

    def __init__(self) -> None:
        self.heap: list[tuple[float, int, int, Any]] = []
        self.seq = 0
        self.now_ms = 0.0

    def push(self, at_ms: float, kind: int, payload: Any) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (at_ms, self.seq, kind, payload))

    def __len__(self) -> int:
        return len(self.heap)

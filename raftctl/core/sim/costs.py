"""Simulated CPU time a node spends, so that a busy leader saturates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from raftctl.core.raft import Message

__all__ = ["NodeCosts"]


@dataclass
class NodeCosts:
    """Simulated CPU time per unit of work (microseconds).

    All zero (the default) means nodes process instantly and only the network takes time.
    ``per_packet_us`` is paid per network packet sent or received (one packet carries every
    message one node has for another at that moment, across Raft groups), ``per_message_us``
    per Raft message in it, ``per_entry_us`` per log entry encoded or decoded (a leader encodes
    each entry once per follower), ``apply_us`` per entry applied to the state machine,
    ``client_request_us`` by a leader per client order it accepts. A leader whose queue of work
    exceeds ``max_queue_ms`` pushes back: clients hold the order and retry.
    """

    per_packet_us: float = 0.0
    per_message_us: float = 0.0
    per_entry_us: float = 0.0
    apply_us: float = 0.0
    client_request_us: float = 0.0
    max_queue_ms: float = 50.0

    @property
    def enabled(self) -> bool:
        return bool(self.per_packet_us or self.per_message_us or self.per_entry_us or self.apply_us
                    or self.client_request_us)

    @classmethod
    def realistic(cls) -> "NodeCosts":
        """Figures in the range of a real Raft server handling small requests.

        ``apply_us`` = 3 is what this project's matching engine costs per order
        (benchmarks/bench_matching.py: about 2.7 µs); a client request (RPC decode, validation,
        session lookup, reply) costs far more than an entry's encode or decode.
        """
        return cls(per_packet_us=20.0, per_message_us=5.0, per_entry_us=2.0, apply_us=3.0,
                   client_request_us=60.0)

    def validate(self) -> None:
        for name in ("per_packet_us", "per_message_us", "per_entry_us", "apply_us", "client_request_us",
                     "max_queue_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")

    def packet_ms(self, msgs: Sequence[Message]) -> float:
        """CPU time (ms) to encode or decode one packet carrying ``msgs``: the one cost formula."""
        return (self.per_packet_us + self.per_message_us * len(msgs)
                + self.per_entry_us * sum(len(m.entries) for m in msgs)) / 1000.0

"""The simulated network: latency, loss, duplication, reordering, partitions and slow links."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["MONITOR", "NetworkConfig", "Network"]

# the endpoint the monitor (the collector's source) polls from; see Network.monitor_reaches
MONITOR = "monitor"


@dataclass
class NetworkConfig:
    """Simulated network behaviour. Probabilities are per message."""

    latency_min_ms: float = 1.0
    latency_max_ms: float = 5.0
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_max_ms: float = 30.0

    def validate(self) -> None:
        if not 0 <= self.latency_min_ms <= self.latency_max_ms:
            raise ValueError("network latency must satisfy 0 <= latency_min_ms <= latency_max_ms")
        for name in ("loss", "duplicate", "reorder"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(f"network {name} must be a probability in [0, 1), got {value!r}")
        if self.reorder_max_ms < 0:
            raise ValueError("reorder_max_ms must be >= 0")


class Network:
    """Who can reach whom, and how long a packet takes.

    ``groups`` maps each endpoint to a partition group (None = fully connected); ``slow`` maps
    an endpoint to a latency factor. Random draws come from the simulation's ``rng``.

    The monitor is an endpoint too (:data:`MONITOR`). ``monitor_group`` is the partition group it
    was placed in, or None when no partition named it: a cut between members (``isolate``, a
    partition of the nodes only) leaves the monitor reaching everybody, as a firewall rule
    between members would.
    """

    def __init__(self, config: NetworkConfig, rng: random.Random) -> None:
        config.validate()
        self.config = config
        self.rng = rng
        self.groups: dict[str, int] | None = None
        self.monitor_group: int | None = None
        self.slow: dict[str, float] = {}
        self.messages_sent = 0
        self.messages_dropped = 0
        self.messages_duplicated = 0
        self.packets_sent = 0
        self.duplicate_delay = -1.0

    def connected(self, a: str, b: str) -> bool:
        groups = self.groups
        return groups is None or groups.get(a) == groups.get(b)

    def monitor_reaches(self, node_id: str) -> bool:
        """Whether the monitor's polls get through to ``node_id``."""
        group = self.monitor_group
        return group is None or self.groups is None or self.groups.get(node_id) == group

    def transit(self, src: str, dst: str, message_count: int) -> float:
        """The delay (ms) of one packet, or -1.0 when it is lost.

        A duplicated packet's second copy is left in :attr:`duplicate_delay` (else -1.0): one
        float per packet, no list, on the simulator's hottest path.
        """
        net = self.config
        rng = self.rng
        self.messages_sent += message_count
        self.packets_sent += 1
        self.duplicate_delay = -1.0
        groups = self.groups
        if (groups is not None and groups.get(src) != groups.get(dst)) or (net.loss and rng.random() < net.loss):
            self.messages_dropped += message_count
            return -1.0
        duplicated = bool(net.duplicate) and rng.random() < net.duplicate
        slow = self.slow
        factor = max(slow.get(src, 1.0), slow.get(dst, 1.0)) if slow else 1.0
        delay = rng.uniform(net.latency_min_ms, net.latency_max_ms) * factor
        if net.reorder and rng.random() < net.reorder:
            delay += rng.uniform(0.0, net.reorder_max_ms)
        if duplicated:
            self.messages_duplicated += message_count
            second = rng.uniform(net.latency_min_ms, net.latency_max_ms) * factor
            if net.reorder and rng.random() < net.reorder:
                second += rng.uniform(0.0, net.reorder_max_ms)
            self.duplicate_delay = second
        return delay

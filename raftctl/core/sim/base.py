"""The state the simulator's parts share, declared once so that each part type-checks alone.

:class:`~raftctl.core.sim.simulation.Simulation` builds it; the fault injector and the status
views are mixed in and read it.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Callable, ContextManager

from raftctl.core.sim.events import EventQueue
from raftctl.core.sim.network import Network

if TYPE_CHECKING:
    from raftctl.core.sim.gateway import ClientGateway
    from raftctl.core.sim.simulation import ExchangeNode

__all__ = ["SimulationBase"]


class SimulationBase:
    """Fields and basic lookups of a simulated cluster."""

    lock: ContextManager[Any]
    seed: int
    rng: random.Random
    shards: int
    node_ids: list[str]
    nodes: list["ExchangeNode"]
    network: Network
    events: EventQueue
    counters: dict[str, int]
    gateway: "ClientGateway"
    fault_log: list[tuple[float, str, tuple[Any, ...]]]
    trace_hash: int
    _by_id: dict[str, "ExchangeNode"]
    _observers: list[Callable[[str, dict[str, Any]], None]]
    _checker: Any

    @property
    def checker(self) -> Any:
        """The safety checker watching this cluster (``SafetyChecker(cluster)`` attaches itself)."""
        return self._checker

    @checker.setter
    def checker(self, value: Any) -> None:
        self._checker = value
        for node in self.nodes:
            node.observer = value

    @property
    def now_ms(self) -> float:
        return self.events.now_ms

    @property
    def now(self) -> float:
        """Simulated seconds since the cluster was created."""
        return self.events.now_ms / 1000.0

    def node(self, node_id: str) -> "ExchangeNode":
        try:
            return self._by_id[node_id]
        except (KeyError, TypeError):
            raise ValueError(
                f"unknown node id {node_id!r}; known: {', '.join(self.node_ids)}"
            ) from None

    def add_observer(self, fn: Callable[[str, dict[str, Any]], None]) -> None:
        """Register ``fn(event, details)`` for fault and leadership events."""
        if not callable(fn):  # it would fail later, in the middle of the next fault
            raise ValueError(f"add_observer needs a function (event, details), got {type(fn).__name__}")
        self._observers.append(fn)

    def notify(self, event: str, **details: Any) -> None:
        for fn in self._observers:
            fn(event, details)

    @property
    def leader_id(self) -> str | None:
        """The live leader (shard 0); the status views define it."""
        raise NotImplementedError

    def shard_leaders(self) -> dict[int, str | None]:
        """Each shard's current leader; the status views define it."""
        raise NotImplementedError

    def boot(self, node: "ExchangeNode") -> None:
        raise NotImplementedError

    def finish(self, node: "ExchangeNode", depart: float) -> None:
        raise NotImplementedError

    def _deliver(self, payload: tuple[str, str, list[Any], bool]) -> None:
        raise NotImplementedError

"""The one fault vocabulary: every kind of fault the simulator can inject, defined once.

The fault injector records each fault under its :class:`FaultKind` (``cluster.fault_log`` and
the observer events), random campaigns draw from :data:`CAMPAIGN_KINDS`, named scenarios use the
verbs of :data:`SCENARIO_ACTIONS` (each produces the kinds listed for it), and the detection
scorer reasons about the same kinds (``raftctl/core/detection.py``).
"""

from __future__ import annotations

from enum import Enum

__all__ = ["FaultKind", "CAMPAIGN_KINDS", "NETWORK_KINDS", "SCENARIO_ACTIONS", "STARTUP", "parse_kinds"]


class FaultKind(str, Enum):
    """A fault as the injector records it."""

    CRASH = "crash"          # node stops; volatile state lost, storage kept
    RESTART = "restart"      # a crashed node boots from its storage
    PARTITION = "partition"  # the network splits into groups (isolating a node is one)
    HEAL = "heal"            # partitions and slowness removed
    SLOW = "slow"            # every message to or from a node takes longer
    LOSS = "loss"            # messages dropped with a probability
    DUPLICATE = "duplicate"  # messages delivered twice with a probability
    REORDER = "reorder"      # messages delayed out of order with a probability
    LATENCY = "latency"      # the network's base latency changed
    CORRUPT = "corrupt"      # test hook: one state machine silently damaged
    PAUSE = "pause"          # node frozen (GC pause, SIGSTOP): state and timers kept, nothing processed
    RESUME = "resume"        # a paused node carries on, handling what waited for it
    MONITOR_PARTITION = "monitor_partition"  # campaigns: cut the monitor off from some nodes
                                             # (recorded as a partition that names "monitor")

    def __str__(self) -> str:
        return self.value


# network settings (NetworkConfig fields) and the kind each change is recorded as
NETWORK_KINDS: dict[str, FaultKind] = {
    "loss": FaultKind.LOSS,
    "duplicate": FaultKind.DUPLICATE,
    "reorder": FaultKind.REORDER,
    "reorder_max_ms": FaultKind.REORDER,
    "latency_min_ms": FaultKind.LATENCY,
    "latency_max_ms": FaultKind.LATENCY,
}

# what `raftctl chaos --faults` may draw from
CAMPAIGN_KINDS: tuple[FaultKind, ...] = (
    FaultKind.CRASH, FaultKind.RESTART, FaultKind.PARTITION, FaultKind.LOSS,
    FaultKind.DUPLICATE, FaultKind.REORDER, FaultKind.SLOW, FaultKind.PAUSE,
    FaultKind.MONITOR_PARTITION,
)

# scenario verbs (raftctl/core/scenarios.py) and the fault kinds each one injects
SCENARIO_ACTIONS: dict[str, tuple[FaultKind, ...]] = {
    "crash": (FaultKind.CRASH,),
    "restart": (FaultKind.RESTART,),
    "isolate": (FaultKind.PARTITION,),
    "partition": (FaultKind.PARTITION,),
    "heal": (FaultKind.HEAL,),
    "pause": (FaultKind.PAUSE,),
    "resume": (FaultKind.RESUME,),
    "monitor_partition": (FaultKind.PARTITION,),
    "slow": (FaultKind.SLOW,),
    "network": (FaultKind.LOSS, FaultKind.DUPLICATE, FaultKind.REORDER, FaultKind.LATENCY),
}

# the first election of a fresh cluster: not a fault, but it explains early alerts
STARTUP = "startup"


def parse_kinds(text: str | list[str] | tuple[str, ...],
                allowed: tuple[FaultKind, ...] = CAMPAIGN_KINDS) -> tuple[FaultKind, ...]:
    """``"crash,partition"`` -> ``(CRASH, PARTITION)``; ValueError naming the valid kinds."""
    items = text.split(",") if isinstance(text, str) else list(text)
    names = tuple(dict.fromkeys(str(i).strip() for i in items if str(i).strip()))
    valid = ", ".join(k.value for k in allowed)
    if not names:
        raise ValueError(f"no fault kinds given; choose from {valid}")
    values = {k.value: k for k in allowed}
    unknown = [n for n in names if n not in values]
    if unknown:
        raise ValueError(f"unknown fault kind(s) {', '.join(unknown)}; choose from {valid}")
    return tuple(values[n] for n in names)

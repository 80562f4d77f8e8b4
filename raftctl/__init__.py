"""raftctl: a simulated Raft exchange cluster, its metrics collector, dashboard and sinks.

Public names are imported lazily so that ``import raftctl`` stays cheap (the CLI's
``--help`` and ``raftctl sinks`` must not pay for the simulator or the server).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Cluster": "raftctl.runtime.cluster",
    "Workload": "raftctl.core.workload",
    "SafetyChecker": "raftctl.core.safety",
    "Exchange": "raftctl.core.exchange",
    "MetricsCollector": "raftctl.runtime.collector",
    "DashboardServer": "raftctl.dashboard.server",
    "Simulation": "raftctl.core.sim.simulation",
    "NodeCosts": "raftctl.core.sim.costs",
    "NetworkConfig": "raftctl.core.sim.network",
    "NodeHost": "raftctl.core.node",
    "Sink": "raftctl.sinks.base",
    "build_sink": "raftctl.sinks.base",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'raftctl' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

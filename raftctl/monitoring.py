"""Compatibility module for the seed's snippet ``from monitoring import MetricsCollector, DashboardServer``.

Write ``from raftctl.monitoring import MetricsCollector, DashboardServer`` (or import them from
``raftctl`` directly); this module only re-exports them, loading each on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MetricsCollector", "DashboardServer", "Cluster"]  # noqa: F822  (loaded lazily by __getattr__)


def __getattr__(name: str) -> Any:
    if name in __all__:
        import raftctl

        value = getattr(raftctl, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'raftctl.monitoring' has no attribute {name!r}")

"""Lets the seed's snippet run word for word from this folder:

    from monitoring import MetricsCollector, DashboardServer

It re-exports raftctl's classes; in your own code import them from ``raftctl``.
"""

from raftctl.monitoring import Cluster, DashboardServer, MetricsCollector  # noqa: F401

__all__ = ["Cluster", "DashboardServer", "MetricsCollector"]

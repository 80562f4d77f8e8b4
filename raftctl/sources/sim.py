"""``--source sim``: the built-in simulated cluster (the default)."""

from __future__ import annotations

from typing import Any

from raftctl.core.sim.monitor import SimSource
from raftctl.core.source import SourceError

__all__ = ["SimSource", "build"]


def build(arg: str = "", *, cluster: Any = None, **_context: Any) -> SimSource:
    """The factory of the ``sim`` entry point: needs the cluster the caller built."""
    if arg:
        raise SourceError(f"the sim source takes no argument (got 'sim:{arg}'); "
                          "size and seed come from --nodes and --seed")
    if cluster is None:
        raise SourceError("the sim source needs a simulated cluster to watch")
    return SimSource(cluster)

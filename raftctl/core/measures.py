"""The few formulas every module shares, written once: quorum, percentile, latency histogram."""

from __future__ import annotations

import bisect
import math
from typing import Iterable, Sequence

__all__ = ["quorum_size", "cut_off_below", "percentile", "sorted_percentile", "LatencyHistogram", "LATENCY_BUCKETS_S"]


def quorum_size(cluster_size: int) -> int:
    """Votes needed for a majority of ``cluster_size`` nodes."""
    return cluster_size // 2 + 1


def cut_off_below(cluster_size: int, refused: int) -> int:
    """A node that answers but says it reaches fewer peers than this is cut off: fewer than a
    majority needs while some peer it does not reach is running (a survivor whose other peers all
    refused the poll reaches every running one); 0 for one node, which needs no peer."""
    if cluster_size <= 1:
        return 0
    return min(quorum_size(cluster_size) - 1, cluster_size - 1 - refused)


def sorted_percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values: always one of them, never interpolated."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    rank = min(len(sorted_values), max(1, math.ceil(fraction * len(sorted_values))))
    return float(sorted_values[rank - 1])


def percentile(values: Iterable[float], fraction: float) -> float | None:
    """Nearest-rank percentile of ``values`` (any order); None for no values."""
    ordered = sorted(values)
    return sorted_percentile(ordered, fraction) if ordered else None


# Upper bounds (seconds) of the consensus-latency histogram, as Prometheus buckets.
LATENCY_BUCKETS_S: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                        1.0, 2.5, 5.0, 10.0)


class LatencyHistogram:
    """Cumulative counts of latencies at or below each bucket bound, over a collector's life."""

    __slots__ = ("bounds", "_bounds_ms", "_le", "_cumulative", "count", "total")

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS_S) -> None:
        self.bounds = tuple(bounds)
        self._bounds_ms = tuple(b * 1000.0 for b in self.bounds)
        self._le = list(self.bounds)  # shared by every document: published documents are read-only
        # cumulative counts per bound; each observation makes a new list, so a document may share it
        self._cumulative = [0] * len(self.bounds)
        self.count = 0
        self.total = 0.0

    def observe_ms(self, latencies_ms: Iterable[float]) -> None:
        values = list(latencies_ms)
        values.sort()
        self.observe_sorted_ms(values, math.fsum(values))

    def observe_sorted_ms(self, sorted_ms: Sequence[float], total_ms: float) -> None:
        """Add latencies (ms) given in ascending order: a bisection per bound that falls within
        them (bounds below the smallest count none, bounds above the largest count all)."""
        n = len(sorted_ms)
        if n == 0:
            return
        bounds = self._bounds_ms
        right = bisect.bisect_right
        low = bisect.bisect_left(bounds, sorted_ms[0])
        high = right(bounds, sorted_ms[-1], low)
        cumulative = self._cumulative[:]  # a new list: a published document may hold the old one
        for i in range(low, high):
            cumulative[i] += right(sorted_ms, bounds[i])
        for i in range(high, len(bounds)):
            cumulative[i] += n
        self._cumulative = cumulative
        self.count += n
        self.total += total_ms / 1000.0

    def document(self) -> dict[str, object]:
        """``{"le": [...], "counts": [cumulative...], "count": N, "sum": seconds}``."""
        return {"le": self._le, "counts": self._cumulative, "count": self.count, "sum": round(self.total, 6)}

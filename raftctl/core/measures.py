"""The few formulas every module shares, written once: quorum, percentile, latency histogram."""

from __future__ import annotations

import bisect
import math
from itertools import accumulate
from typing import Iterable, Sequence

__all__ = ["quorum_size", "percentile", "sorted_percentile", "LatencyHistogram", "LATENCY_BUCKETS_S"]


def quorum_size(cluster_size: int) -> int:
    """Votes needed for a majority of ``cluster_size`` nodes."""
    return cluster_size // 2 + 1


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

    __slots__ = ("bounds", "_bounds_ms", "_le", "buckets", "count", "total")

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS_S) -> None:
        self.bounds = tuple(bounds)
        self._bounds_ms = tuple(b * 1000.0 for b in self.bounds)
        self._le = list(self.bounds)  # shared by every document: published documents are read-only
        self.buckets = [0] * len(self.bounds)  # per bucket, not cumulative
        self.count = 0
        self.total = 0.0

    def observe_ms(self, latencies_ms: Iterable[float]) -> None:
        bounds = self.bounds
        buckets = self.buckets
        n = len(bounds)
        for ms in latencies_ms:
            s = ms / 1000.0
            self.count += 1
            self.total += s
            i = bisect.bisect_left(bounds, s)
            if i < n:
                buckets[i] += 1

    def observe_sorted_ms(self, sorted_ms: Sequence[float], total_ms: float) -> None:
        """Add latencies (ms) given in ascending order: a bisection per bound, no loop per value."""
        previous = 0
        buckets = self.buckets
        right = bisect.bisect_right
        n = len(sorted_ms)
        for i, bound_ms in enumerate(self._bounds_ms):
            at = right(sorted_ms, bound_ms)
            buckets[i] += at - previous
            previous = at
            if at == n:
                break  # every value placed; the higher buckets get nothing
        self.count += len(sorted_ms)
        self.total += total_ms / 1000.0

    def document(self) -> dict[str, object]:
        """``{"le": [...], "counts": [cumulative...], "count": N, "sum": seconds}``."""
        return {"le": self._le, "counts": list(accumulate(self.buckets)), "count": self.count,
                "sum": round(self.total, 6)}

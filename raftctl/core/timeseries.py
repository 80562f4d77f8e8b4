"""Compact, bounded time series for the metrics collector.

Each numeric series is one ``array`` used as a ring buffer, so a retained sample costs a few
bytes per value instead of a dict per sample; memory stops growing once the ring is full.
"""

from __future__ import annotations

import bisect
import math
from array import array
from typing import Any, Iterable, Iterator

__all__ = ["Ring", "SampleStore", "STATE_CODES", "STATE_NAMES", "HEALTH_CODES", "HEALTH_NAMES"]

STATE_NAMES = ("LEADER", "FOLLOWER", "CANDIDATE", "DOWN")
STATE_CODES = {name: code for code, name in enumerate(STATE_NAMES)}
HEALTH_NAMES = ("HEALTHY", "DEGRADED", "UNHEALTHY")
HEALTH_CODES = {name: code for code, name in enumerate(HEALTH_NAMES)}

_ABSENT = -1  # node not part of the cluster at that sample
_UNKNOWN = -1  # integer metric with no value (e.g. replication lag without a leader)


class Ring:
    """A fixed-capacity ring buffer over an ``array`` (typecode ``'d'``, ``'q'``, ...).

    Grows by appending until ``capacity`` values are held, then overwrites the oldest.
    Index 0 is always the oldest retained value.
    """

    __slots__ = ("_data", "_capacity", "_head")

    def __init__(self, typecode: str, capacity: int, prefill: Iterable[float] = ()) -> None:
        if capacity < 1:
            raise ValueError("ring capacity must be >= 1")
        self._data = array(typecode, prefill)
        self._capacity = capacity
        self._head = 0  # slot of the oldest value once the ring is full
        if len(self._data) > capacity:
            raise ValueError("prefill longer than capacity")

    def append(self, value: float) -> None:
        data = self._data
        if len(data) < self._capacity:
            data.append(value)
        else:
            data[self._head] = value
            self._head = (self._head + 1) % self._capacity

    def __len__(self) -> int:
        return len(self._data)

    def __getitem__(self, index: int) -> Any:
        size = len(self._data)
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError("ring index out of range")
        if size < self._capacity:
            return self._data[index]
        return self._data[(self._head + index) % self._capacity]

    def __iter__(self) -> Iterator[Any]:
        data = self._data
        if len(data) < self._capacity or self._head == 0:
            return iter(data)
        return iter(data[self._head:] + data[: self._head])

    def tail(self, count: int) -> list:
        """The newest ``count`` values, oldest first."""
        size = len(self._data)
        count = max(0, min(count, size))
        if count == 0:
            return []
        if size < self._capacity:
            return self._data[size - count:].tolist()
        start = (self._head + size - count) % self._capacity
        end = start + count
        if end <= self._capacity:
            return self._data[start:end].tolist()
        return self._data[start:].tolist() + self._data[: end - self._capacity].tolist()

    @property
    def capacity(self) -> int:
        return self._capacity

    def nbytes(self) -> int:
        return self._data.buffer_info()[1] * self._data.itemsize


# Scalar series: (key in the flat row, section in the sample document, typecode).
_SCALARS: tuple[tuple[str, str | None, str], ...] = (
    ("timestamp", None, "d"),
    ("sim_time", None, "d"),
    ("sequence", None, "q"),
    ("cluster_size", "cluster", "q"),
    ("healthy_nodes", "cluster", "q"),
    ("current_term", "cluster", "q"),
    ("leader_changes", "cluster", "q"),
    ("total_orders", "performance", "q"),
    ("total_trades", "performance", "q"),
    ("throughput_ops", "performance", "d"),
    ("avg_latency_ms", "performance", "d"),
    ("p50_latency_ms", "performance", "d"),
    ("p99_latency_ms", "performance", "d"),
    ("commit_apply_lag", "performance", "q"),
    ("alerts_firing", None, "q"),
)
_NODE_INTS = ("commit_index", "last_applied", "log_length", "peers_connected", "term",
              "replication_lag")


class _NodeSeries:
    __slots__ = ("state", "ints", "last_contact_ms")

    def __init__(self, capacity: int, prefill: int) -> None:
        self.state = Ring("b", capacity, [_ABSENT] * prefill)
        self.ints = {key: Ring("q", capacity, [_UNKNOWN] * prefill) for key in _NODE_INTS}
        self.last_contact_ms = Ring("d", capacity, [math.nan] * prefill)


class SampleStore:
    """Retains at most ``capacity`` samples as parallel ring buffers.

    ``append`` takes a full sample document; ``window`` rebuilds dicts for the samples whose
    ``sim_time`` lies in the requested window. Not thread-safe: the collector serialises access.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._scalars = {key: Ring(code, capacity) for key, _section, code in _SCALARS}
        self._health = Ring("b", capacity)
        self._aligned = Ring("b", capacity)
        self._quorum = Ring("b", capacity)
        self._leader = Ring("i", capacity)  # index into _node_ids, -1 = no leader
        self._reasons: list[tuple[str, ...]] = []  # ring of shared tuples, same head rule
        self._reasons_head = 0
        self._reason_cache: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._node_ids: list[str] = []
        self._node_index: dict[str, int] = {}
        self._nodes: dict[str, _NodeSeries] = {}
        self._count = 0  # samples currently retained

    def __len__(self) -> int:
        return self._count

    @property
    def node_ids(self) -> list[str]:
        return list(self._node_ids)

    def has_node(self, node_id: str) -> bool:
        return node_id in self._nodes

    def _node(self, node_id: str) -> _NodeSeries:
        series = self._nodes.get(node_id)
        if series is None:
            # a node first seen now was absent from every earlier retained sample
            series = _NodeSeries(self.capacity, self._count)
            self._nodes[node_id] = series
            self._node_index[node_id] = len(self._node_ids)
            self._node_ids.append(node_id)
        return series

    def append(self, sample: dict) -> None:
        """Store one sample document (as built by the collector)."""
        cluster = sample["cluster"]
        performance = sample["performance"]
        nodes = sample["nodes"]
        for key, section, _code in _SCALARS:
            if section is None:
                value = len(sample["alerts"]) if key == "alerts_firing" else sample[key]
            else:
                value = (cluster if section == "cluster" else performance)[key]
            self._scalars[key].append(value if value is not None else _UNKNOWN)
        self._health.append(HEALTH_CODES[cluster["health_status"]])
        self._aligned.append(1 if cluster["consensus_aligned"] else 0)
        self._quorum.append(1 if cluster["has_quorum"] else 0)
        for node_id in nodes:
            self._node(node_id)
        leader = cluster["leader_node"]
        self._leader.append(self._node_index[leader] if leader in self._node_index else -1)
        self._append_reasons(tuple(cluster["health_reasons"]))
        for node_id, series in self._nodes.items():
            node = nodes.get(node_id)
            if node is None:
                series.state.append(_ABSENT)
                for ring in series.ints.values():
                    ring.append(_UNKNOWN)
                series.last_contact_ms.append(math.nan)
                continue
            series.state.append(STATE_CODES[node["state"]])
            for key, ring in series.ints.items():
                value = node.get(key)
                ring.append(_UNKNOWN if value is None else value)
            contact = node.get("last_contact_ms")
            series.last_contact_ms.append(math.nan if contact is None else contact)
        if self._count < self.capacity:
            self._count += 1

    def _append_reasons(self, reasons: tuple[str, ...]) -> None:
        # share one tuple per distinct reason set so a long steady state costs a pointer per sample
        shared = self._reason_cache.get(reasons)
        if shared is None:
            if len(self._reason_cache) > 1024:
                self._reason_cache.clear()
            shared = self._reason_cache[reasons] = reasons
        if len(self._reasons) < self.capacity:
            self._reasons.append(shared)
        else:
            self._reasons[self._reasons_head] = shared
            self._reasons_head = (self._reasons_head + 1) % self.capacity

    def _reason_at(self, index: int) -> tuple[str, ...]:
        if len(self._reasons) < self.capacity:
            return self._reasons[index]
        return self._reasons[(self._reasons_head + index) % self.capacity]

    def _first_index(self, since: float | None) -> int:
        if since is None:
            return 0
        times = self._scalars["sim_time"]
        # sim_time never decreases (the collector enforces it), so bisect on the ring view
        return bisect.bisect_right(_RingView(times), since)

    def window(self, since: float | None = None) -> list[dict]:
        """Samples with ``sim_time > since`` (all retained when None), oldest first."""
        start = self._first_index(since)
        count = self._count - start
        if count <= 0:
            return []
        cols = {key: ring.tail(count) for key, ring in self._scalars.items()}
        health = self._health.tail(count)
        aligned = self._aligned.tail(count)
        quorum = self._quorum.tail(count)
        leader = self._leader.tail(count)
        node_cols = {
            node_id: (s.state.tail(count), {k: r.tail(count) for k, r in s.ints.items()},
                      s.last_contact_ms.tail(count))
            for node_id, s in self._nodes.items()
        }
        out = []
        for i in range(count):
            leader_id = self._node_ids[leader[i]] if leader[i] >= 0 else None
            nodes = {}
            for node_id, (states, ints, contacts) in node_cols.items():
                if states[i] == _ABSENT:
                    continue
                nodes[node_id] = _node_row(states[i], ints, contacts[i], i)
            out.append({
                "timestamp": cols["timestamp"][i],
                "sim_time": cols["sim_time"][i],
                "sequence": cols["sequence"][i],
                "cluster": {
                    "cluster_size": cols["cluster_size"][i],
                    "healthy_nodes": cols["healthy_nodes"][i],
                    "leader_node": leader_id,
                    "leader": leader_id,
                    "health_status": HEALTH_NAMES[health[i]],
                    "current_term": cols["current_term"][i],
                    "consensus_aligned": bool(aligned[i]),
                    "has_quorum": bool(quorum[i]),
                    "leader_changes": cols["leader_changes"][i],
                    "health_reasons": list(self._reason_at(start + i)),
                },
                "performance": {
                    "total_orders": cols["total_orders"][i],
                    "total_trades": cols["total_trades"][i],
                    "throughput_ops": cols["throughput_ops"][i],
                    "avg_latency_ms": cols["avg_latency_ms"][i],
                    "p50_latency_ms": cols["p50_latency_ms"][i],
                    "p99_latency_ms": cols["p99_latency_ms"][i],
                    "commit_apply_lag": cols["commit_apply_lag"][i],
                },
                "nodes": nodes,
                "alerts_firing": cols["alerts_firing"][i],
            })
        return out

    def node_window(self, node_id: str, since: float | None = None) -> list[dict]:
        """One node's rows (with timestamp and sim_time) for samples with ``sim_time > since``."""
        series = self._nodes[node_id]
        start = self._first_index(since)
        count = self._count - start
        if count <= 0:
            return []
        timestamps = self._scalars["timestamp"].tail(count)
        sim_times = self._scalars["sim_time"].tail(count)
        states = series.state.tail(count)
        ints = {k: r.tail(count) for k, r in series.ints.items()}
        contacts = series.last_contact_ms.tail(count)
        out = []
        for i in range(count):
            if states[i] == _ABSENT:
                continue
            row = {"timestamp": timestamps[i], "sim_time": sim_times[i], "node_id": node_id}
            row.update(_node_row(states[i], ints, contacts[i], i))
            out.append(row)
        return out

    def nbytes(self) -> int:
        """Bytes held by the ring arrays (for reports; excludes small fixed overhead)."""
        total = sum(r.nbytes() for r in self._scalars.values())
        total += sum(r.nbytes() for r in (self._health, self._aligned, self._quorum, self._leader))
        total += 8 * len(self._reasons)
        for s in self._nodes.values():
            total += s.state.nbytes() + s.last_contact_ms.nbytes()
            total += sum(r.nbytes() for r in s.ints.values())
        return total


def _node_row(state: int, ints: dict[str, list], contact: float, i: int) -> dict:
    lag = ints["replication_lag"][i]
    return {
        "state": STATE_NAMES[state],
        "commit_index": ints["commit_index"][i],
        "last_applied": ints["last_applied"][i],
        "log_length": ints["log_length"][i],
        "peers_connected": ints["peers_connected"][i],
        "term": ints["term"][i],
        "up": state != STATE_CODES["DOWN"],
        "replication_lag": None if lag == _UNKNOWN else lag,
        "last_contact_ms": None if math.isnan(contact) else contact,
    }


class _RingView:
    """Sequence adapter so ``bisect`` can search a Ring without copying it."""

    __slots__ = ("_ring",)

    def __init__(self, ring: Ring) -> None:
        self._ring = ring

    def __len__(self) -> int:
        return len(self._ring)

    def __getitem__(self, index: int) -> Any:
        return self._ring[index]

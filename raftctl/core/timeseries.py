"""Compact, bounded time series for the metrics collector.

Samples are kept as fixed-width rows of numbers in a few ``array`` ring buffers (one for the
cluster's floats, one for its integers, one per node), so a retained sample costs 8 bytes per
value instead of a dict per sample, and memory stops growing once the rings are full.
"""

from __future__ import annotations

import bisect
import math
import struct
from typing import Any
from array import array

from raftctl.core.sample import HEALTH_STATES, NODE_STATES

__all__ = ["RowRing", "SampleStore", "WindowSnapshot", "STATE_CODES", "STATE_NAMES", "HEALTH_CODES", "HEALTH_NAMES"]

STATE_NAMES = NODE_STATES  # codes are positions in the vocabularies of core/sample.py
STATE_CODES = {name: code for code, name in enumerate(STATE_NAMES)}
HEALTH_NAMES = HEALTH_STATES
HEALTH_CODES = {name: code for code, name in enumerate(HEALTH_NAMES)}

_ABSENT = -1  # node not part of the cluster at that sample
_UNKNOWN = -1  # integer metric with no value (e.g. replication lag without a leader)
_QUORUM_CODES = {True: 1, False: 0, None: _UNKNOWN}  # has_quorum: None when the monitor cannot tell
_DOWN = STATE_CODES["DOWN"]


def clamp_row(row: tuple[Any, ...], typecode: str) -> tuple[Any, ...]:
    """``row`` with every integer held within a 64-bit signed ``q`` (floats pass as they are)."""
    if typecode != "q":
        return row
    return tuple(min(max(v, -(2 ** 63)), 2 ** 63 - 1) if type(v) is int else v for v in row)


class RowRing:
    """Fixed-width rows in one ``array``, used as a ring of at most ``capacity`` rows.

    A row is written with a single C call (``extend`` while growing, ``pack_into`` once full),
    which keeps a sample's cost at a handful of calls however many values it carries.
    """

    __slots__ = ("data", "width", "capacity", "head", "_packer")

    def __init__(self, typecode: str, width: int, capacity: int) -> None:
        self.data = array(typecode)
        self.width = width
        self.capacity = capacity
        self.head = 0  # oldest row once full
        self._packer = struct.Struct(f"={width}{typecode}")

    def __len__(self) -> int:
        return len(self.data) // self.width

    def append(self, row: tuple[Any, ...]) -> None:
        size = len(self.data)
        try:
            if size < self.capacity * self.width:
                self.data.extend(row)
                return
            self._packer.pack_into(self.data, self.head * self.width * self.data.itemsize, *row)
        except (OverflowError, struct.error):
            # a number beyond the row's type (a report's 2**70): drop what extend wrote, keep the bound
            del self.data[size:]
            self.append(clamp_row(row, self.data.typecode))
            return
        self.head = (self.head + 1) % self.capacity

    def pad(self, rows: int, row: tuple[Any, ...]) -> None:
        for _ in range(rows):
            self.append(row)

    def tail_raw(self, count: int) -> array[Any]:
        """The newest ``count`` rows as one flat array copy, oldest first (a memcpy or two)."""
        size = len(self)
        count = max(0, min(count, size))
        width = self.width
        if count == 0:
            return array(self.data.typecode)
        if size < self.capacity:
            return self.data[(size - count) * width:]
        start = (self.head + size - count) % self.capacity
        end = start + count
        if end <= self.capacity:
            return self.data[start * width:end * width]
        return self.data[start * width:] + self.data[: (end - self.capacity) * width]

    def tail(self, count: int) -> list[list[Any]]:
        """The newest ``count`` rows as lists, oldest first."""
        return split_rows(self.tail_raw(count), self.width)

    def nbytes(self) -> int:
        return self.data.buffer_info()[1] * self.data.itemsize


# Row layouts. Floats: timestamp, sim_time and the latency/throughput gauges.
_FLOATS = ("timestamp", "sim_time", "throughput_ops", "avg_latency_ms", "p50_latency_ms",
           "p99_latency_ms")
# Integers: counters, gauges and small codes (health, booleans, leader index).
_INTS = ("sequence", "cluster_size", "healthy_nodes", "current_term", "leader_changes",
         "total_orders", "total_trades", "total_committed", "commit_apply_lag", "alerts_firing", "health",
         "aligned", "quorum", "leader", "proposals_pending", "proposals_failed")
# Per node: state code, the node gauges, and last contact in microseconds (-1 = unknown).
_NODE = ("state", "commit_index", "last_applied", "log_length", "peers_connected", "term",
         "replication_lag", "last_contact_us")
_ABSENT_ROW = (_ABSENT,) + (_UNKNOWN,) * (len(_NODE) - 1)
_NODE_ROW = struct.Struct(f"={len(_NODE)}q")
_FLOAT_ROW = struct.Struct(f"={len(_FLOATS)}d")  # the float and integer rings' rows, as RowRing packs them
_INT_ROW = struct.Struct(f"={len(_INTS)}q")  # a node ring's row, as RowRing("q", len(_NODE)) packs it


class SampleStore:
    """Retains at most ``capacity`` samples as rows in a few ring-buffered arrays.

    ``append`` takes a full sample document; ``window`` rebuilds dicts for the samples whose
    ``sim_time`` lies in the requested window. Not thread-safe: the collector serialises access.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._floats = RowRing("d", len(_FLOATS), capacity)
        self._ints = RowRing("q", len(_INTS), capacity)
        self._reasons: list[tuple[str, ...]] = []  # ring of shared tuples, same head rule
        self._reasons_head = 0
        self._reason_cache: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._node_ids: list[str] = []
        self._node_index: dict[str, int] = {}
        self._nodes: dict[str, RowRing] = {}
        self._count = 0  # samples currently retained

    def __len__(self) -> int:
        return self._count

    @property
    def node_ids(self) -> list[str]:
        return list(self._node_ids)

    def has_node(self, node_id: str) -> bool:
        return node_id in self._nodes

    def _add_node(self, node_id: str) -> RowRing:
        table = RowRing("q", len(_NODE), self.capacity)
        # a node first seen now was absent from every earlier retained sample
        table.pad(self._count, _ABSENT_ROW)
        self._nodes[node_id] = table
        self._node_index[node_id] = len(self._node_ids)
        self._node_ids.append(node_id)
        return table

    def append(self, sample: dict[str, Any]) -> None:
        """Store one sample document (as built by the collector)."""
        cluster = sample["cluster"]
        perf = sample["performance"]
        nodes = sample["nodes"]
        if not self._nodes.keys() >= nodes.keys():  # a node not seen before (one C-level check)
            for node_id in nodes:
                if node_id not in self._nodes:
                    self._add_node(node_id)
        full = self._count == self.capacity
        head = self._floats.head  # where this sample goes in every ring once they are full
        leader = cluster["leader_node"]
        avg, p50, p99 = perf["avg_latency_ms"], perf["p50_latency_ms"], perf["p99_latency_ms"]
        pending, failed = perf.get("proposals_pending"), perf.get("proposals_failed")
        committed = perf.get("total_committed")
        nan = math.nan  # stands for null in the float ring
        float_row = (sample["timestamp"], sample["sim_time"], perf["throughput_ops"],
                     nan if avg is None else avg, nan if p50 is None else p50, nan if p99 is None else p99)
        int_row = (
            sample["sequence"], cluster["cluster_size"], cluster["healthy_nodes"],
            cluster["current_term"], cluster["leader_changes"],
            _UNKNOWN if perf["total_orders"] is None else perf["total_orders"],
            _UNKNOWN if perf["total_trades"] is None else perf["total_trades"],
            _UNKNOWN if committed is None else committed, perf["commit_apply_lag"], len(sample["alerts"]),
            HEALTH_CODES[cluster["health_status"]], 1 if cluster["consensus_aligned"] else 0,
            _QUORUM_CODES[cluster["has_quorum"]], self._node_index.get(leader, -1),
            _UNKNOWN if pending is None else pending, _UNKNOWN if failed is None else failed)
        floats, ints = self._floats, self._ints
        packed = False
        if full:  # the common case: one C call per ring, at the slot they share
            try:
                _FLOAT_ROW.pack_into(floats.data, head * _FLOAT_ROW.size, *float_row)
                _INT_ROW.pack_into(ints.data, head * _INT_ROW.size, *int_row)
                floats.head = ints.head = (head + 1) % self.capacity
                packed = True
            except (OverflowError, struct.error):  # a number to clamp: the rings' own way below
                pass
        if not packed:
            floats.append(float_row)
            ints.append(int_row)
        self._append_reasons(tuple(cluster["health_reasons"]))
        state_codes = STATE_CODES
        unknown = _UNKNOWN
        # one C call per node row, at one offset for every node ring: they turn in step with the
        # float ring (a ring added when full holds only absent rows, so its rotation does not matter)
        pack = _NODE_ROW.pack_into
        offset = head * _NODE_ROW.size
        next_head = (head + 1) % self.capacity
        for node_id, table in self._nodes.items():
            node = nodes.get(node_id)
            if full and node is not None and node["up"]:
                # the common case: a node that answered has int gauges (reports.read_nodes), so
                # they go in as they are; anything else fails the pack and takes the long way
                lag = node["replication_lag"]
                contact = node["last_contact_ms"]
                try:
                    pack(table.data, offset, state_codes[node["state"]], node["commit_index"], node["last_applied"],
                         node["log_length"], node["peers_connected"], node["term"],
                         unknown if lag is None else lag, unknown if contact is None else round(contact * 1000))
                    table.head = next_head
                    continue
                except (OverflowError, struct.error, TypeError):
                    pass
            if node is None:
                row: tuple[Any, ...] = _ABSENT_ROW
            else:
                lag = node["replication_lag"]
                contact = node["last_contact_ms"]
                commit, applied, length = node["commit_index"], node["last_applied"], node["log_length"]
                peers, term = node["peers_connected"], node["term"]
                row = (state_codes[node["state"]], unknown if commit is None else commit,
                       unknown if applied is None else applied, unknown if length is None else length,
                       unknown if peers is None else peers, unknown if term is None else term,
                       unknown if lag is None else lag,
                       unknown if contact is None else round(contact * 1000))
            try:
                if full:
                    pack(table.data, offset, *row)
                    table.head = next_head
                else:
                    table.data.extend(row)
            except (OverflowError, struct.error):  # a report's number beyond 64 bits: kept as the bound
                if not full:
                    del table.data[self._count * len(_NODE):]  # what extend wrote before it failed
                row = clamp_row(row, "q")
                if full:
                    pack(table.data, offset, *row)
                    table.head = next_head
                else:
                    table.data.extend(row)
        if self._count < self.capacity:
            self._count += 1

    def _append_reasons(self, reasons: tuple[str, ...]) -> None:
        # share one tuple per distinct reason set so a long steady state costs a pointer per sample
        shared = self._reason_cache.get(reasons) if reasons else ()
        if shared is None:
            if len(self._reason_cache) > 1024:
                self._reason_cache.clear()
            shared = self._reason_cache[reasons] = reasons
        if len(self._reasons) < self.capacity:
            self._reasons.append(shared)
        else:
            self._reasons[self._reasons_head] = shared
            self._reasons_head = (self._reasons_head + 1) % self.capacity

    def _reasons_slice(self, start: int, count: int) -> list[tuple[str, ...]]:
        reasons = self._reasons
        if len(reasons) == self.capacity and self._reasons_head:
            reasons = reasons[self._reasons_head:] + reasons[: self._reasons_head]
        return reasons[start:start + count]

    def _first_index(self, since: float | None) -> int:
        if since is None:
            return 0
        # sim_time never decreases (the collector enforces it), so bisect on the ring
        return bisect.bisect_right(_SimTimes(self._floats), since)

    def snapshot(self, since: float | None = None) -> "WindowSnapshot":
        """Copy the raw rows of the window (fast; take it under the lock, build outside)."""
        start = self._first_index(since)
        count = max(0, self._count - start)
        return WindowSnapshot(
            floats=self._floats.tail_raw(count),
            ints=self._ints.tail_raw(count),
            nodes=[(node_id, table.tail_raw(count)) for node_id, table in self._nodes.items()],
            node_ids=list(self._node_ids),
            reasons=self._reasons_slice(start, count),
            count=count,
        )

    def node_snapshot(self, node_id: str, since: float | None = None) -> "WindowSnapshot":
        """Like ``snapshot`` for one node (KeyError when the node was never seen)."""
        table = self._nodes[node_id]
        start = self._first_index(since)
        count = max(0, self._count - start)
        return WindowSnapshot(floats=self._floats.tail_raw(count), ints=array("q"),
                              nodes=[(node_id, table.tail_raw(count))], node_ids=[node_id],
                              reasons=[], count=count)

    def window(self, since: float | None = None) -> list[dict[str, Any]]:
        """Samples with ``sim_time > since`` (all retained when None), oldest first."""
        return self.snapshot(since).samples()

    def node_window(self, node_id: str, since: float | None = None) -> list[dict[str, Any]]:
        """One node's rows (with timestamp and sim_time) for samples with ``sim_time > since``."""
        return self.node_snapshot(node_id, since).node_rows()

    def nbytes(self) -> int:
        """Bytes held by the ring arrays (for reports; excludes small fixed overhead)."""
        total = self._floats.nbytes() + self._ints.nbytes() + 8 * len(self._reasons)
        return total + sum(table.nbytes() for table in self._nodes.values())


def split_rows(flat: array[Any], width: int) -> list[list[Any]]:
    values = flat.tolist()
    return [values[i:i + width] for i in range(0, len(values), width)]


class WindowSnapshot:
    """Raw rows copied out of a SampleStore; turning them into dicts needs no lock."""

    __slots__ = ("floats", "ints", "nodes", "node_ids", "reasons", "count")

    def __init__(self, floats: array[Any], ints: array[Any], nodes: list[Any], node_ids: list[str],
                 reasons: list[Any], count: int) -> None:
        self.floats = floats
        self.ints = ints
        self.nodes = nodes
        self.node_ids = node_ids
        self.reasons = reasons
        self.count = count

    def samples(self) -> list[dict[str, Any]]:
        """The window as history dicts, oldest first."""
        if self.count == 0:
            return []
        floats = split_rows(self.floats, len(_FLOATS))
        ints = split_rows(self.ints, len(_INTS))
        node_rows = [(node_id, split_rows(raw, len(_NODE))) for node_id, raw in self.nodes]
        node_ids = self.node_ids
        out = []
        for i in range(self.count):
            timestamp, sim_time, throughput, avg, p50, p99 = floats[i]
            (sequence, size, healthy, term, changes, orders, trades, committed, apply_lag, firing, health,
             aligned, quorum, leader, pending, failed) = ints[i]
            leader_id = node_ids[leader] if leader >= 0 else None
            nodes = {}
            for node_id, rows in node_rows:
                row = rows[i]
                if row[0] != _ABSENT:
                    nodes[node_id] = _node_row(row)
            out.append({
                "timestamp": timestamp,
                "sim_time": sim_time,
                "sequence": sequence,
                "cluster": {
                    "cluster_size": size,
                    "healthy_nodes": healthy,
                    "leader_node": leader_id,
                    "leader": leader_id,
                    "health_status": HEALTH_NAMES[health],
                    "current_term": term,
                    "consensus_aligned": bool(aligned),
                    "has_quorum": None if quorum == _UNKNOWN else bool(quorum),
                    "leader_changes": changes,
                    "health_reasons": list(self.reasons[i]),
                },
                "performance": {
                    "total_orders": None if orders == _UNKNOWN else orders,
                    "total_trades": None if trades == _UNKNOWN else trades,
                    "total_committed": None if committed == _UNKNOWN else committed,
                    "throughput_ops": throughput,
                    "avg_latency_ms": None if avg != avg else avg,  # NaN stands for null
                    "p50_latency_ms": None if p50 != p50 else p50,
                    "p99_latency_ms": None if p99 != p99 else p99,
                    "commit_apply_lag": apply_lag,
                    "proposals_pending": None if pending == _UNKNOWN else pending,
                    "proposals_failed": None if failed == _UNKNOWN else failed,
                },
                "nodes": nodes,
                "alerts_firing": firing,
            })
        return out

    def node_rows(self) -> list[dict[str, Any]]:
        """The single node of a node snapshot, one dict per sample it was present in."""
        if self.count == 0:
            return []
        (node_id, raw), = self.nodes
        floats = split_rows(self.floats, len(_FLOATS))
        out = []
        for i, row in enumerate(split_rows(raw, len(_NODE))):
            if row[0] == _ABSENT:
                continue
            entry = {"timestamp": floats[i][0], "sim_time": floats[i][1], "node_id": node_id}
            entry.update(_node_row(row))
            out.append(entry)
        return out


def _node_row(row: list[Any]) -> dict[str, Any]:
    state, commit_index, last_applied, log_length, peers, term, lag, contact = row
    return {
        "state": STATE_NAMES[state],
        "commit_index": None if commit_index == _UNKNOWN else commit_index,
        "last_applied": None if last_applied == _UNKNOWN else last_applied,
        "log_length": None if log_length == _UNKNOWN else log_length,
        "peers_connected": None if peers == _UNKNOWN else peers,
        "term": None if term == _UNKNOWN else term,
        "up": state != _DOWN,
        "replication_lag": None if lag == _UNKNOWN else lag,
        "last_contact_ms": None if contact == _UNKNOWN else contact / 1000.0,
    }


class _SimTimes:
    """Sequence view of the sim_time column so ``bisect`` can search it without copying."""

    __slots__ = ("_table",)

    def __init__(self, table: RowRing) -> None:
        self._table = table

    def __len__(self) -> int:
        return len(self._table)

    def __getitem__(self, index: int) -> float:
        table = self._table
        size = len(table)
        slot = index if size < table.capacity else (table.head + index) % table.capacity
        return table.data[slot * table.width + 1]



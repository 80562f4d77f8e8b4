"""The event log: what changed from one sample to the next, for the dashboard's timeline.

Pure and bounded. After each sample the collector records here, in order:

* ``fault``  — a fault the source knows it injected (the simulator's injector does; a real
  cluster's source knows none): ``{"fault", "args"}`` at the time it was injected;
* ``leader`` — the leader the reports back changed, or its term did (an election):
  ``{"leader", "term", "previous"}``; ``leader`` None when none is backed any more. In a sharded
  sample every Raft group's change is one, with ``shard`` (shard 0's is the cluster's);
* ``node``   — a node went DOWN, came back, or became / stopped being a STALE_LEADER:
  ``{"node", "from", "to", "reason"}``; or the membership changed (an etcd member added or
  removed while watched): ``{"node", "from", "to", "member": "joined"|"left"}`` (``from`` None
  for a node that joined, ``to`` None for one that left);
* ``health`` — the cluster's health changed: ``{"from", "to", "reasons"}``;
* ``alert``  — an alert fired or resolved: ``{"name", "status", "severity", "labels", "message"}``.

Every event has ``seq`` (increasing, never reused), ``t`` (sim_time) and ``timestamp``.
``since(seq)`` returns the newer ones (``GET /api/events?since=SEQ``).
"""

from __future__ import annotations

from collections import deque
from operator import itemgetter
from typing import Any, Iterable, Mapping

__all__ = ["EventLog", "EVENT_KINDS"]

EVENT_KINDS = ("fault", "leader", "node", "health", "alert")
_WATCHED_STATES = ("DOWN", "STALE_LEADER")
_STATE = itemgetter("state")


def _same_states(old: Mapping[str, Mapping[str, Any]], new: Mapping[str, Mapping[str, Any]]) -> bool:
    """True when ``new`` has the same nodes as ``old``, in the same order and states: then no node
    changed (the common case, found with C-level comparisons since this runs for every node)."""
    if len(old) != len(new) or list(old) != list(new):
        return False
    try:
        return list(map(_STATE, old.values())) == list(map(_STATE, new.values()))
    except KeyError:  # a document without a state: let the loop read it with get()
        return False


class EventLog:
    """At most ``limit`` events, oldest dropped first."""

    def __init__(self, limit: int = 1000) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self._events: deque[dict[str, Any]] = deque(maxlen=limit)
        self.sequence = 0

    def __len__(self) -> int:
        return len(self._events)

    def _add(self, t: float, timestamp: float, kind: str, **fields: Any) -> None:
        self.sequence += 1
        self._events.append({"seq": self.sequence, "t": round(float(t), 6), "timestamp": timestamp,
                             "kind": kind, **fields})

    def record(self, previous: Mapping[str, Any] | None, sample: Mapping[str, Any],
               alert_events: Iterable[Mapping[str, Any]] = (),
               faults: Iterable[tuple[float, str, tuple[Any, ...]]] = (),
               states_unchanged: bool = False) -> None:
        """Record what changed between ``previous`` (None: the first sample) and ``sample``.

        ``states_unchanged``: the caller knows that ``sample`` has exactly ``previous``'s nodes,
        each in the same state (``reports.Reading.states_unchanged``), so no node event is due."""
        t, ts = sample["sim_time"], sample["timestamp"]
        for at, kind, args in faults:
            # the wall clock of that instant, from the sample's by the simulated offset
            self._add(at, ts - (t - at), "fault", fault=kind, args=[a if isinstance(a, (str, int, float)) else list(a)
                                                         for a in args])
        cluster = sample["cluster"]
        before = previous["cluster"] if previous is not None else None
        leader, term = cluster.get("leader_node"), cluster.get("current_term")
        shards = sample.get("shards")
        if shards:
            self._shard_leaders(t, ts, (previous or {}).get("shards") or (), shards)
        elif before is None or before.get("leader_node") != leader or \
                (leader is not None and before.get("current_term") != term):
            if before is not None or leader is not None:
                self._add(t, ts, "leader", leader=leader, term=term if leader is not None else None,
                          previous=before.get("leader_node") if before is not None else None)
        old_nodes = previous["nodes"] if previous is not None else {}
        new_nodes = sample["nodes"]
        if not states_unchanged and not _same_states(old_nodes, new_nodes):
            self._node_events(t, ts, old_nodes, new_nodes)
        status = cluster.get("health_status")
        if before is None or before.get("health_status") != status:
            self._add(t, ts, "health", **{"from": before.get("health_status") if before else None,
                                          "to": status}, reasons=list(cluster.get("health_reasons") or ()))
        for event in alert_events:
            self._add(t, ts, "alert", name=event.get("name"), status=event.get("status"),
                      severity=event.get("severity"), labels=dict(event.get("labels") or {}),
                      message=event.get("message"))

    def _shard_leaders(self, t: float, ts: float, old_docs: Iterable[Mapping[str, Any]],
                       new_docs: Iterable[Mapping[str, Any]]) -> None:
        """A leader event per group whose leader or leader's term changed (the shards' documents)."""
        old = {doc.get("shard"): doc for doc in old_docs}
        for doc in new_docs:
            leader, term = doc.get("leader"), doc.get("term")
            was = old.get(doc.get("shard"))
            if was is None and leader is None:
                continue
            if was is not None and was.get("leader") == leader and (leader is None or was.get("term") == term):
                continue
            self._add(t, ts, "leader", shard=doc.get("shard"), leader=leader,
                      term=term if leader is not None else None,
                      previous=was.get("leader") if was is not None else None)

    def _node_events(self, t: float, ts: float, old_nodes: Mapping[str, Any], new_nodes: Mapping[str, Any]) -> None:
        for node_id, old in old_nodes.items():
            if node_id not in new_nodes:
                self._add(t, ts, "node", node=node_id, **{"from": old.get("state"), "to": None}, member="left")
        for node_id, node in new_nodes.items():
            state = node.get("state")
            old = old_nodes.get(node_id)
            if old is None and old_nodes:  # a sample before this one had other nodes: this one joined
                self._add(t, ts, "node", node=node_id, **{"from": None, "to": state}, member="joined",
                          reason=node.get("down_reason"))
                continue
            was = old.get("state") if old is not None else None
            if state == was or (was is None and state not in _WATCHED_STATES):
                continue
            if state in _WATCHED_STATES or was in _WATCHED_STATES:
                self._add(t, ts, "node", node=node_id, **{"from": was, "to": state},
                          reason=node.get("down_reason"))

    def since(self, seq: int | None = None) -> list[dict[str, Any]]:
        """Events with ``seq`` above ``seq`` (all retained ones for None), oldest first."""
        if seq is None:
            return [dict(e) for e in self._events]
        return [dict(e) for e in self._events if e["seq"] > seq]

"""SampleCollector: samples a cluster, keeps bounded history, derives health, raises alerts.

Pure: no threads, no wall clock. One ``collect()`` takes a single consistent read of the cluster
(statuses, counters, leader and latencies under ``cluster.lock``), builds the sample document of
docs/CONTRACTS.md (typed in ``raftctl/core/sample.py``), evaluates health and alert rules (pure
functions), stores the sample in ring buffers and publishes it as pre-serialised JSON bytes.
``raftctl.MetricsCollector`` (raftctl/runtime/collector.py) adds the sampling thread, the sink
workers and the wall clock.

Metric definitions (where the seed leaves room):

* ``healthy_nodes`` — nodes that are up, not cut off from a majority of their peers
  (``node_isolated``) and, when there is a leader, that the leader has heard from within
  ``max_follower_contact_ms`` (a node partitioned away is up but not operational).

* ``total_orders`` — ``stats()["orders_submitted"]``: cumulative orders submitted (the seed).
* ``total_committed`` — the count ``throughput_ops`` is the rate of (cumulative; None when the
  source counts neither), exported to Prometheus as a counter.
* ``throughput_ops`` — orders acknowledged (committed through consensus) per second of collector
  clock since the previous sample; the first sample averages since the source clock's zero
  (every source counts from it: ``ClientView``).
* ``total_trades`` — ``trades_executed`` of the leader (else the highest of the live nodes).
* ``avg/p50/p99_latency_ms`` — consensus latency of orders committed since the previous sample
  (``cluster.latencies_since``); null when nothing committed in the interval. The average and
  the (nearest-rank) percentiles are exact.
* ``latency_histogram`` (top level, not in history) — every committed order's latency since the
  collector started, in cumulative buckets (``measures.LATENCY_BUCKETS_S``), for Prometheus.
* ``proposals_pending`` / ``proposals_failed`` — orders submitted and not yet acknowledged; and
  client proposals a node refused (no leader, a leadership transfer, a leader's full queue).
* ``current_term`` — the leader's term; with no leader, the highest term of a live node.
* ``replication_lag`` — per node, entries behind the leader's commit index (leader's
  ``match_index`` when known); ``None`` when there is no leader.
* ``commit_apply_lag`` — the largest ``commit_index - last_applied`` over live nodes.

Sharded clusters (``Cluster(shards=K)``, K > 1): the top-level fields are shard 0's (as the
Cluster reports them), ``shards`` holds one summary per shard, ``cluster.shard_count`` = K,
``consensus_aligned`` is true only if every shard is aligned, ``health_status`` is the worst
shard's (their reasons prefixed ``shardN:``), and leader / divergence alerts are raised once per
kind, listing their shards (``alert["shards"]``). History keeps the top-level series only.
"""

from __future__ import annotations

import logging
import math
from math import ceil as _ceil
from types import MappingProxyType
from typing import Any, Callable, ContextManager, Mapping

import orjson

from raftctl.core.alerts import DEFAULT_THRESHOLDS, AlertEngine, validate_thresholds
from raftctl.core.event_log import EventLog
from raftctl.core.health import evaluate_health
from raftctl.core.measures import LatencyHistogram
from raftctl.core.reports import read_nodes, shard_documents
from raftctl.core.sample import HEALTH_STATES
from raftctl.core.sim.monitor import SimSource
from raftctl.core.sim.simulation import NullLock
from raftctl.core.source import ClientView, Source
from raftctl.core.timeseries import SampleStore

__all__ = ["SampleCollector", "UnknownNodeError", "positive_number"]

log = logging.getLogger(__name__)

# Rings beyond this many samples would be a configuration mistake (e.g. 0.001 s for a week).
MAX_RETAINED_SAMPLES = 1_000_000


_HEALTH_RANK = {name: rank for rank, name in enumerate(HEALTH_STATES)}


# a collector without sinks reports these (read-only: collector documents copy it)
NO_SINKS: dict[str, int] = {"sink_events_dropped": 0, "sink_errors": 0, "sink_delivery_failures": 0,
                            "sink_delivered": 0, "sink_pending": 0, "sink_expired": 0}


def _was_aligned(latest: Mapping[str, Any]) -> bool:
    """What the last sample knew of shard 0's (unsharded: the cluster's) digests, for a sample
    in which no two could be compared (every node at another applied index, or one up): a
    divergence does not resolve for want of a comparison."""
    shards = latest.get("shards")
    known = shards[0] if shards else latest["cluster"]
    return known.get("consensus_aligned") is not False


class UnknownNodeError(KeyError, ValueError):
    """Raised for a node id the monitored cluster does not have."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0]) if self.args else "unknown node"


def positive_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be > 0 and finite, got {value!r}")
    return float(value)


def _isolated_counted(reasons: list[str], nodes: Mapping[str, Mapping[str, Any]], max_contact_ms: float) -> int:
    """How many of the nodes ``reasons`` call ``node_isolated`` ``read_nodes`` counted healthy."""
    count = 0
    for reason in reasons:
        if reason.startswith("node_isolated:"):
            node = nodes.get(reason[len("node_isolated:"):])
            if node is not None and node["up"] and node["state"] != "STALE_LEADER":
                contact = node["last_contact_ms"]
                count += contact is None or contact <= max_contact_ms
    return count


class SampleCollector:
    """Samples every node of a Cluster when asked; see the module docstring.

    ``collection_interval`` and ``retention_period`` are seconds of the collector clock (the
    cluster's simulated clock unless ``collect(now=...)`` says otherwise); at most
    ``ceil(retention_period / collection_interval)`` samples are retained.
    ``leader_election_timeout`` is the default for the ``max_no_leader_s`` threshold.
    """

    _lock: ContextManager[Any]
    _collect_lock: ContextManager[Any]

    def __init__(self, collection_interval: float = 1.0, retention_period: float = 300,
                 alert_callback: Callable[[dict[str, Any]], Any] | None = None,
                 alert_thresholds: Mapping[str, Any] | None = None,
                 leader_election_timeout: float = DEFAULT_THRESHOLDS["max_no_leader_s"],
                 *, max_sink_queue: int = 1000, alert_history_limit: int = 1000,
                 wall_clock: Callable[[], float] | None = None,
                 perf_clock: Callable[[], float] | None = None) -> None:
        """``wall_clock`` stamps each sample's ``timestamp`` (default: the collector clock);
        ``perf_clock`` times ``collection_ms`` (default: not timed, 0)."""
        self.collection_interval = positive_number("collection_interval", collection_interval)
        self.retention_period = positive_number("retention_period", retention_period)
        leader_election_timeout = positive_number("leader_election_timeout", leader_election_timeout)
        if alert_callback is not None and not callable(alert_callback):
            raise ValueError(f"alert_callback must be callable or None, got {alert_callback!r}")
        for name, value in (("max_sink_queue", max_sink_queue),
                            ("alert_history_limit", alert_history_limit)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        capacity = math.ceil(self.retention_period / self.collection_interval - 1e-9)
        if capacity > MAX_RETAINED_SAMPLES:
            raise ValueError(f"retention_period / collection_interval = {capacity} samples; "
                             f"at most {MAX_RETAINED_SAMPLES} can be retained")
        self.capacity = max(1, capacity)
        self.alert_callback = alert_callback
        self.max_sink_queue = max_sink_queue
        self.alert_history_limit = alert_history_limit
        self._wall_clock = wall_clock
        self._perf_clock = perf_clock
        self._base_thresholds = validate_thresholds({"max_no_leader_s": leader_election_timeout})
        self._thresholds = dict(self._base_thresholds)
        if alert_thresholds is not None:
            self.alert_thresholds = alert_thresholds

        self._cluster: Any = None
        self._source: Source | None = None
        if not hasattr(self, "_lock"):
            self._lock = NullLock()  # guards published state and the stores
            self._collect_lock = NullLock()  # one collect() at a time
        self.samples_collected = 0
        self.collect_errors = 0
        self.callback_errors = 0
        self.missed_ticks = 0
        # never reset, not even by set_cluster: readers cache derived documents per version
        self._sequence = 0
        self._reset_state()

    # ------------------------------------------------------------------ configuration

    @property
    def alert_thresholds(self) -> Mapping[str, Any]:
        """Current thresholds, read-only (``alert_thresholds["x"] = 1`` raises TypeError instead
        of changing a copy nobody reads): assign a dict to change them."""
        return MappingProxyType(dict(self._thresholds))

    @alert_thresholds.setter
    def alert_thresholds(self, value: Mapping[str, Any]) -> None:
        # the keys given change, the others keep their current values (one assignment after
        # another adds up, as a user setting one threshold at a time expects)
        self._thresholds = validate_thresholds(value, self._thresholds)

    def set_cluster(self, cluster: Any) -> None:
        """Monitor ``cluster`` (a Cluster, or its nodes as the seed passes them) through the
        ``sim`` source: the collector sees only what its nodes report to the monitor."""
        target = cluster
        if not hasattr(target, "statuses"):
            try:
                nodes = list(target)
            except TypeError:
                raise ValueError(f"set_cluster needs a Cluster or a list of its nodes, "
                                 f"got {type(cluster).__name__}") from None
            if not nodes:
                raise ValueError("set_cluster got an empty list of nodes")
            owners = {id(getattr(node, "cluster", None)) for node in nodes}
            target = getattr(nodes[0], "cluster", None)
            if target is None or len(owners) != 1:
                raise ValueError("set_cluster: nodes must all belong to one Cluster (node.cluster)")
        for attribute in ("statuses", "stats", "latencies_since", "lock", "now", "leader_id"):
            if not hasattr(target, attribute):
                raise ValueError(f"set_cluster: object has no {attribute!r}; not a raftctl Cluster")
        if target is self._cluster:
            return
        self.set_source(SimSource(target))
        self._cluster = target

    def set_source(self, source: Source) -> None:
        """Monitor whatever ``source`` polls (``raftctl/core/source.py``); resets history."""
        if not isinstance(source, Source):
            raise ValueError(f"set_source needs a Source (poll/members/now/close), got {type(source).__name__}")
        with self._collect_lock, self._lock:
            if source is not self._source:
                self._source = source
                self._cluster = getattr(source, "cluster", None)
                self._reset_state()

    @property
    def cluster(self) -> Any:
        """The simulated cluster watched through the ``sim`` source (None for other sources)."""
        return self._cluster

    @property
    def source(self) -> Source | None:
        return self._source

    def _reset_state(self) -> None:
        with self._lock:
            self._store = SampleStore(self.capacity)
            self._engine = AlertEngine(history_limit=self.alert_history_limit)
            previous_log = getattr(self, "_event_log", None)
            self._event_log = EventLog(limit=self.alert_history_limit)
            if previous_log is not None:  # event numbers are never reused, even for a new source
                self._event_log.sequence = previous_log.sequence
            self._latest: dict[str, Any] | None = None
            self._latest_bytes: bytes | None = None
            self._histogram = LatencyHistogram()
            # (now, cluster_now, orders_acked, orders_acked_by_shard or None)
            self._prev: tuple[float, float, int, list[Any] | None] | None = None
            self._leader_key: tuple[str, int] | None = None
            self._shard_leader_keys: dict[int, tuple[str, int]] = {}  # sharded: each group's
            self._shard_leader_changes: dict[int, int] = {}  # sharded: each group's changes
            self._leader_changes = 0
            self._started_at: float | None = None  # the first sample's timestamp

    # ------------------------------------------------------------------ sampling

    def count_missed(self, seconds: float) -> None:
        """``seconds`` of the collector clock passed with no chance to sample (a paced
        simulation that fell too far behind, its process stopped): every whole interval of it is
        a missed tick."""
        if seconds > 0:
            self.missed_ticks += int(seconds // self.collection_interval)

    def collect(self, now: float | None = None) -> dict[str, Any]:
        """Take one sample; ``now`` defaults to the cluster's clock. Returns the sample document.

        The returned dict is the published one: treat it as read-only.
        """
        with self._collect_lock:
            return self._collect(now)

    def _collect(self, now: float | None) -> dict[str, Any]:
        perf_clock = self._perf_clock
        started = perf_clock() if perf_clock is not None else 0.0
        source = self._source
        if source is None:
            raise RuntimeError("no cluster to sample: call set_cluster() or set_source() first")
        prev = self._prev
        poll = source.poll(prev[1] if prev else None)
        source_now = float(poll.now)
        if now is None:
            now = source_now
        elif isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now):
            raise ValueError(f"now must be a finite number (collector clock seconds), got {now!r}")
        now = float(now)
        if prev is not None and now < prev[0]:
            raise ValueError(f"collector clock went backwards: now={now} < previous sample {prev[0]}")
        timestamp = float(self._wall_clock()) if self._wall_clock is not None else now

        thresholds = self._thresholds
        max_contact = float(thresholds["max_follower_contact_ms"])
        latest = self._latest
        reading = read_nodes(poll, max_contact, latest["nodes"] if latest is not None else None, now)
        view = reading.leader
        leader_id = view.leader
        if leader_id is not None and view.term is not None and poll.shards <= 1:  # (sharded: per shard below)
            key = (leader_id, view.term)  # an int: find_leader counts a report's odd term as 0
            if self._leader_key is not None and key != self._leader_key:
                self._leader_changes += 1
            self._leader_key = key
        client = poll.client or ClientView()
        # throughput: orders the client saw committed, else proposals the cluster committed
        counted = client.orders_acknowledged if client.orders_acknowledged is not None \
            else client.proposals_committed
        acked = int(counted or 0)
        if prev is None:
            throughput = acked / source_now if source_now > 0 else 0.0
        else:
            elapsed = now - prev[0]
            throughput = (acked - prev[2]) / elapsed if elapsed > 0 else 0.0
        latencies = client.latencies_ms
        avg_latency: float | None
        p50: float | None
        p99: float | None
        if latencies:
            total_ms = sum(latencies)
            avg_latency = total_ms / len(latencies)
            # one sort (in C) serves the exact percentiles and the histogram's bucket counts
            ordered = sorted(latencies)
            # measures.sorted_percentile's nearest rank, inline (it runs every sample): for n >= 1,
            # ceil(f * n) is a rank in 1..n for both fractions
            count = len(ordered)
            p50, p99 = float(ordered[_ceil(0.50 * count) - 1]), float(ordered[_ceil(0.99 * count) - 1])
            self._histogram.observe_sorted_ms(ordered, total_ms)
            avg_latency, p50, p99 = round(avg_latency, 3), round(p50, 3), round(p99, 3)
        else:
            # nothing committed in the interval: no latency to report, and never a fake 0
            avg_latency = p50 = p99 = None
        histogram = self._histogram
        size = len(poll.answers)
        nodes = reading.nodes

        cluster_doc: dict[str, Any] = {
            "cluster_size": size,
            "healthy_nodes": reading.healthy,
            "leader_node": leader_id,
            "leader": leader_id,
            "health_status": "HEALTHY",
            "current_term": reading.current_term,  # read_nodes' numbers are ints already
            "consensus_aligned": reading.aligned if reading.compared or latest is None
            else reading.aligned and _was_aligned(latest),
            "has_quorum": reading.has_quorum,
            "leader_changes": self._leader_changes,
            "health_reasons": [],
            "nodes_reached": reading.reached,
        }
        sample: dict[str, Any] = {
            "timestamp": timestamp,
            "sim_time": now,
            "sequence": self._sequence + 1,
            "cluster": cluster_doc,
            "performance": {
                "total_orders": None if client.orders_submitted is None else int(client.orders_submitted),
                "total_trades": reading.total_trades,
                "total_committed": None if counted is None else acked,
                "throughput_ops": round(throughput, 3),
                "avg_latency_ms": avg_latency,  # rounded to 3 places above
                "p50_latency_ms": p50,
                "p99_latency_ms": p99,
                "commit_apply_lag": reading.commit_apply_lag,
                "proposals_pending": client.orders_pending,
                "proposals_failed": client.proposals_failed,
                "latency_count": len(latencies) if latencies else 0,
                "latency_note": None if latencies else client.latency_note,
            },
            "latency_histogram": histogram.document(),
            "nodes": nodes,
            "alerts": [],
        }
        max_lag = thresholds["max_replication_lag"]
        status_name, reasons = evaluate_health(sample, max_replication_lag=max_lag, max_contact_ms=max_contact,
                                               nodes_quiet=reading.nodes_quiet(max_lag))
        if 2 * reading.reached <= size and reading.has_quorum:  # fewer than a majority answered
            cluster_doc["has_quorum"] = None  # not lost on evidence, and no majority heard: unknown
        if status_name != "HEALTHY":
            # a node cut off from a majority of its peers is not operational either, though the
            # leader heard from it a moment ago (the first sample after a partition)
            cluster_doc["healthy_nodes"] -= _isolated_counted(reasons, nodes, max_contact)
        shard_count = poll.shards
        if shard_count > 1:
            acked_by_shard = list(client.acknowledged_by_shard or [0] * shard_count)
            node_shards: dict[str, list[dict[str, Any]]] = {}
            shard_docs = shard_documents(
                poll, max_contact, thresholds, client.shard_latencies_ms or [], acked_by_shard,
                prev[3] if prev and prev[3] else None, now - prev[0] if prev else 0.0, node_shards,
                client.pending_by_shard, latest.get("shards") if latest is not None else None)
            sample["shards"] = shard_docs
            # leader changes beyond each group's first leader, summed over the groups
            keys, changes = self._shard_leader_keys, self._shard_leader_changes
            for doc in shard_docs:
                shard = doc["shard"]
                if doc["leader"] is not None:
                    key = (doc["leader"], doc["term"])
                    if keys.get(shard, key) != key:
                        self._leader_changes += 1
                        changes[shard] = changes.get(shard, 0) + 1
                    keys[shard] = key
                doc["leader_changes"] = changes.get(shard, 0)
            cluster_doc["leader_changes"] = self._leader_changes
            for node_id, entries in node_shards.items():
                nodes[node_id]["shards"] = entries
            cluster_doc["shard_count"] = shard_count
            cluster_doc["consensus_aligned"] = all(d["consensus_aligned"] for d in shard_docs)
            # the cluster is as healthy as its sickest shard
            for doc in shard_docs:
                if _HEALTH_RANK[doc["health_status"]] > _HEALTH_RANK[status_name]:
                    status_name = doc["health_status"]
                reasons += [f"shard{doc['shard']}:{r}" for r in doc.pop("_reasons")
                            if doc["shard"] != 0 or r not in reasons]
        else:
            acked_by_shard = None
        # what only the history of samples shows: a leader whose commit index stands still while
        # orders wait, or one that committed below what was committed before (commit_watch.py)
        told = self._engine.observe_commits(sample, thresholds)
        if told:
            status_name = "UNHEALTHY"
            reasons = reasons + told
            for doc in sample.get("shards") or ():  # and so is the shard it names
                if any(r.startswith(f"shard{doc['shard']}:") for r in told):
                    doc["health_status"] = "UNHEALTHY"
        cluster_doc["health_status"] = status_name
        cluster_doc["health_reasons"] = reasons

        with self._lock:
            events = self._engine.evaluate(sample, thresholds, reading.live_terms, commits_observed=True)
            sample["alerts"] = self._engine.active()
            self._event_log.record(self._latest, sample, events, poll.faults, reading.states_unchanged)
            engine = self._engine
            retained = len(self._store) + 1
            if self._started_at is None:
                self._started_at = timestamp
            collector_doc: dict[str, Any] = {
                "collection_interval": self.collection_interval,
                "retention_period": self.retention_period,
                "samples_retained": retained if retained < self.capacity else self.capacity,
                "samples_collected": self.samples_collected + 1,
                "alerts_fired": engine.fired_total,
                "alerts_resolved": engine.resolved_total,
                **self._sink_counters(),
                "missed_ticks": self.missed_ticks,
                "started_at": self._started_at,
            }
            collector_doc["collection_ms"] = (
                round((perf_clock() - started) * 1000.0, 4) if perf_clock is not None else 0.0)
            sample["collector"] = collector_doc
            self._store.append(sample)
            self._latest = sample
            self._latest_bytes = None  # serialised when first read (latest_bytes): a sample no one reads costs nothing
            self._sequence += 1
            self.samples_collected += 1
            self._prev = (now, source_now, acked, acked_by_shard)

        self._fan_out(sample, events)
        for event in events:
            self._notify(event)
        return sample

    def look(self) -> dict[str, Any]:
        """What the monitor would say right now, from a fresh poll, without taking a sample:
        nothing is stored, no alert fires. ``{"health_status", "health_reasons", "leader_node",
        "nodes": {id: {"state", "term", "down_reason"}}}``; the demo prints it as a fault lands."""
        source = self._source
        if source is None:
            raise RuntimeError("no cluster to look at: call set_cluster() or set_source() first")
        peek = getattr(source, "peek", None)
        poll = peek() if callable(peek) else source.poll(None)
        max_contact = float(self._thresholds["max_follower_contact_ms"])
        latest = self._latest
        reading = read_nodes(poll, max_contact, latest["nodes"] if latest is not None else None)
        view = {"cluster": {"cluster_size": len(poll.answers), "healthy_nodes": reading.healthy,
                            "leader_node": reading.leader.leader, "consensus_aligned": reading.aligned,
                            "nodes_reached": reading.reached, "has_quorum": reading.has_quorum},
                "nodes": reading.nodes}
        status, reasons = evaluate_health(view, max_replication_lag=self._thresholds["max_replication_lag"],
                                          max_contact_ms=max_contact)
        return {"health_status": status, "health_reasons": reasons, "leader_node": reading.leader.leader,
                "nodes": {nid: {"state": n["state"], "term": n["term"], "down_reason": n["down_reason"]}
                          for nid, n in reading.nodes.items()}}

    def _sink_counters(self) -> dict[str, int]:
        """The sink figures of ``sample["collector"]``; none without sinks (see the runtime)."""
        return NO_SINKS

    def _fan_out(self, sample: dict[str, Any], events: list[dict[str, Any]]) -> None:
        """Hand the sample and alert events on (the runtime's sink workers); nothing here."""

    def _notify(self, event: dict[str, Any]) -> None:
        if self.alert_callback is None:
            return
        try:
            self.alert_callback(dict(event, labels=dict(event["labels"])))
        except Exception:
            # a broken pager hook must never stop monitoring
            self.callback_errors += 1
            log.exception("alert_callback raised on %s %s", event["status"], event["name"])

    # ------------------------------------------------------------------ reads (thread-safe)

    @property
    def version(self) -> int:
        """Sequence number of the latest sample (0 before the first); changes on every sample."""
        return self._sequence

    def latest(self) -> dict[str, Any] | None:
        """A private copy of the newest sample document (None before the first sample)."""
        data = self.latest_bytes()
        return None if data is None else orjson.loads(data)

    def latest_bytes(self) -> bytes | None:
        """The newest sample serialised as JSON bytes (what GET /api/summary returns): serialised
        once, by its first reader; the published document is never changed after it is published."""
        data = self._latest_bytes
        if data is None:
            with self._lock:
                if self._latest_bytes is None and self._latest is not None:
                    self._latest_bytes = orjson.dumps(self._latest)
                data = self._latest_bytes
        return data

    def _since(self, duration: float | None) -> float | None:
        if duration is None:
            return None
        duration = positive_number("duration", duration)
        latest = self._latest
        if latest is None:
            return None
        return float(latest["sim_time"]) - duration

    def history(self, duration: float | None = 60) -> list[dict[str, Any]]:
        """Samples whose ``sim_time`` is within the last ``duration`` s (None: all), oldest first.

        Rebuilt from the ring buffers: each has ``timestamp``, ``sim_time``, ``sequence``,
        ``cluster``, ``performance``, ``nodes`` (without ``state_digest``) and ``alerts_firing``.
        """
        with self._lock:
            snapshot = self._store.snapshot(self._since(duration))
        # dicts are built outside the lock so a long read never holds up the next sample
        return snapshot.samples()

    def node_history(self, node_id: str, duration: float | None = 60) -> list[dict[str, Any]]:
        """One node's metrics over the last ``duration`` s; UnknownNodeError for a bad id."""
        with self._lock:
            since = self._since(duration)
            if not self._store.has_node(node_id):
                known = list(self._source.members() if self._source is not None else self._store.node_ids)
                if node_id in known:
                    return []
                raise UnknownNodeError(f"unknown node {node_id!r}; known nodes: {', '.join(known) or 'none'}")
            snapshot = self._store.node_snapshot(node_id, since)
        return snapshot.node_rows()

    def events(self, since: int | None = None) -> list[dict[str, Any]]:
        """Timeline events newer than event ``since`` (``raftctl/core/event_log.py``)."""
        if since is not None and (isinstance(since, bool) or not isinstance(since, int)):
            raise ValueError(f"since must be an event number (int) or None, got {since!r}")
        with self._lock:
            return self._event_log.since(since)

    @property
    def events_sequence(self) -> int:
        return self._event_log.sequence

    def active_alerts(self) -> list[dict[str, Any]]:
        """Alerts currently firing."""
        with self._lock:
            return self._engine.active()

    def alert_history(self) -> list[dict[str, Any]]:
        """Recent alerts, firing and resolved, oldest first (bounded)."""
        with self._lock:
            return self._engine.history()

    def retained_bytes(self) -> int:
        """Bytes held by the history ring buffers."""
        with self._lock:
            return self._store.nbytes()

"""Chaos on real processes, scored honestly (``raftctl chaos --target etcd``).

A seeded campaign of real faults against a cluster of OS processes, graded by the same honest
scorer as the simulator's campaigns (:class:`raftctl.core.detection.DetectionTracker`):

* **ground truth** comes from the injector only. Every fault is handed to the tracker at the
  instant it is applied (the clock is read just before the signal is sent), with the leader just
  before it. The leader is the injector's own reading of the processes
  (:meth:`ProcessCluster.leader`), never the monitor's;
* **the monitor** is the ordinary collector (:class:`raftctl.runtime.collector.MetricsCollector`)
  on the cluster's source, sampling on the wall clock every ``interval_s`` on its own thread; its
  samples (through a sink) and alert events (``alert_callback``) go to the tracker.

Both run on one clock: the source's ``now`` (monotonic seconds since the source was built, which
is the start of the campaign), so a sample's ``sim_time`` and a fault's time compare directly.

The injector (:func:`plan_faults` + :class:`RealChaosCampaign`): ``faults`` faults drawn from the
seed, each one of

* ``kill`` — kill -9, then a restart from the data dir after a hold of ``hold_min_s`` to
  ``hold_max_s`` (2–6 s);
* ``pause`` — SIGSTOP, SIGCONT after a hold (the process keeps its sockets and answers nobody);
* ``restart`` — kill -9 and an immediate restart from the data dir (a bounce);

aimed at the leader with probability ``leader_share``, else at a random running member. At most
``max_down`` members are faulted at once (default: a minority, so a quorum keeps running); a
member just brought back counts as down for ``settle_s`` more seconds, so the next fault does not
land on a cluster still catching up. The plan (kinds, aims, holds, gaps) is a pure function of
the seed; which member "the leader" is, and so the outcome, depends on the real processes.

Member isolation (iptables with per-member uids) is not used: it needs root and changes the
host's firewall; the injector sticks to signals and restarts, which any user can send.

For etcd the campaign also records etcd's own signals (:class:`EtcdSignalWatcher`): every
``signal_interval_s`` each member's ``etcd_server_has_leader`` and
``etcd_server_leader_changes_seen_total`` (``GET /metrics``) and ``GET /health``. For each fault
the report gives how long until a *surviving* member's signal showed it (has_leader 0, a
leader-change count above its value before the fault, /health not 200 / ``"false"``), beside
raftctl's own detection latency of the same fault.

:class:`ProcessCluster` is what the campaign needs of a cluster; :class:`EtcdCluster` is the first
implementation, and the node processes of ``raftctl cluster up`` can plug in the same way.
Everything the campaign starts (collector thread, source, watcher threads) stops on return, on an
exception and on Ctrl-C; :func:`run_etcd_campaign` also removes the etcd processes and directory.
"""

from __future__ import annotations

import contextlib
import heapq
import http.client
import json
import random
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterator, Mapping, Protocol, runtime_checkable

from raftctl.core.detection import DetectionTracker
from raftctl.core.faults import FaultKind
from raftctl.core.measures import percentile
from raftctl.sinks.base import Sink

__all__ = [
    "DEFAULT_KINDS",
    "FAULT_KINDS", "CampaignClock", "CampaignInterrupted", "EtcdSignalWatcher", "FaultRecord", "PlannedFault", "ProcessCluster",
    "RealChaosCampaign", "RealChaosConfig", "SignalReading", "plan_faults", "signal_summary", "report_lines", "run_etcd_campaign",
]

FAULT_KINDS = ("kill", "pause", "restart", "isolate")
# what a campaign draws from unless told: isolation needs a cluster that can cut one member off
DEFAULT_KINDS = ("kill", "pause", "restart")
_KIND_WEIGHTS = {"kill": 0.4, "pause": 0.4, "restart": 0.2, "isolate": 0.3}


@runtime_checkable
class ProcessCluster(Protocol):
    """A cluster of real processes the campaign can fault (EtcdCluster is one)."""

    @property
    def members(self) -> Mapping[str, Any]: ...       # member name -> anything (names are what count)

    @property
    def source_spec(self) -> str: ...                 # the ``--source`` spec that watches it

    def kill(self, name: str) -> None: ...            # kill -9; the data dir stays
    def pause(self, name: str) -> None: ...           # SIGSTOP
    def resume(self, name: str) -> None: ...          # SIGCONT
    def restart(self, name: str) -> None: ...         # a new process on the killed member's data dir
    def leader(self) -> str | None: ...               # the member that says it leads, as the processes tell
    def close(self) -> None: ...                      # kill everything, remove every directory
    # optional: diagnose() -> str, a line on members whose process has died (put in a warm-up error)


MAX_REAL_FAULTS = 1000  # a campaign of real processes runs in wall time


def members_warning(members: int) -> str | None:
    """What a campaign on ``members`` should say first when the size makes every fault a quorum
    loss: with 2 (allowed: such clusters are run, and the result is worth seeing)."""
    if members == 2:
        return "with 2 members a majority is both, so every fault loses the quorum; 3 members tolerate one"
    return None


@dataclass(frozen=True)
class RealChaosConfig:
    """A campaign's parameters (see the module docstring)."""

    faults: int = 20
    seed: int = 1
    interval_s: float = 1.0
    deadline_s: float = 2.0
    min_incident_s: float = 2.0
    hold_min_s: float = 2.0
    hold_max_s: float = 6.0
    gap_min_s: float = 1.0
    gap_max_s: float = 3.0
    settle_s: float = 2.0
    max_down: int | None = None
    kinds: tuple[str, ...] = DEFAULT_KINDS
    leader_share: float = 0.4
    election_timeout_ms: float = 1000.0   # etcd's --election-timeout; Raft randomizes in [T, 2T)
    warmup_timeout_s: float = 30.0
    tail_s: float = 4.0
    recovery_timeout_s: float = 20.0
    signal_interval_s: float = 0.2

    def validate(self, members: int | None = None, cluster: Any = None) -> None:
        if isinstance(self.faults, bool) or not isinstance(self.faults, int) or self.faults < 1:
            raise ValueError(f"faults must be a positive integer, got {self.faults!r}")
        if self.faults > MAX_REAL_FAULTS:
            # each real fault holds for seconds and waits for recovery: more is hours of wall time
            raise ValueError(f"faults must be at most {MAX_REAL_FAULTS} (each takes about "
                             f"{self.hold_min_s + self.gap_min_s:g}-{self.hold_max_s + self.gap_max_s:g} s "
                             f"of wall time), got {self.faults}")
        for name in ("interval_s", "deadline_s", "hold_min_s", "signal_interval_s", "election_timeout_ms"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.hold_max_s < self.hold_min_s or self.gap_max_s < self.gap_min_s or self.gap_min_s < 0:
            raise ValueError("hold and gap ranges must be ordered (min <= max) and not negative")
        unknown = [k for k in self.kinds if k not in FAULT_KINDS]
        if unknown or not self.kinds:
            raise ValueError(f"fault kinds must be among {', '.join(FAULT_KINDS)}, got {list(self.kinds)}")
        if "isolate" in self.kinds and cluster is not None and not callable(getattr(cluster, "isolate", None)):
            raise ValueError("this cluster cannot isolate a member (no isolate/heal): leave 'isolate' out")
        if not 0.0 <= self.leader_share <= 1.0:
            raise ValueError(f"leader_share must be within 0..1, got {self.leader_share!r}")
        if members is not None:
            if members < 1:
                raise ValueError("a campaign needs at least one member")
            if self.max_down is not None and not 1 <= self.max_down <= members:
                raise ValueError(f"max_down must be within 1..{members}, got {self.max_down!r}")

    def down_limit(self, members: int) -> int:
        return self.max_down if self.max_down is not None else max(1, (members - 1) // 2)


@dataclass(frozen=True)
class PlannedFault:
    """One fault as the seed plans it; the member is chosen when it is applied."""

    kind: str
    aim_leader: bool
    hold_s: float
    gap_s: float
    pick: float  # in [0, 1): which of the candidate members (sorted by name)


def plan_faults(config: RealChaosConfig) -> list[PlannedFault]:
    """The seeded plan: a pure function of the config (same seed, same plan)."""
    rng = random.Random(config.seed)
    kinds = list(config.kinds)
    weights = [_KIND_WEIGHTS[k] for k in kinds]
    plan = []
    for _ in range(config.faults):
        kind = rng.choices(kinds, weights)[0]
        aim_leader = rng.random() < config.leader_share
        hold = rng.uniform(config.hold_min_s, config.hold_max_s)
        gap = rng.uniform(config.gap_min_s, config.gap_max_s)
        plan.append(PlannedFault(kind, aim_leader, 0.0 if kind == "restart" else round(hold, 3),
                                 round(gap, 3), rng.random()))
    return plan


@dataclass
class FaultRecord:
    """A fault as applied: what, to whom, when (campaign clock), and when it was repaired."""

    index: int
    kind: str
    member: str
    t: float
    leader_before: str | None
    hold_s: float
    repaired_at: float | None = None

    @property
    def was_leader(self) -> bool:
        return self.leader_before == self.member


@dataclass(frozen=True)
class _Timing:
    election_timeout_min_ms: float
    election_timeout_max_ms: float


class CampaignClock:
    """What the honest scorer reads of a cluster, for real processes.

    ``now`` is the campaign clock (pinned to a fault's instant while that fault is delivered),
    ``node_ids`` the member names, ``config`` the election timeouts, ``add_observer`` the fault
    feed. ``lock`` serialises every call into the tracker (injector, collector and sink threads).
    """

    def __init__(self, node_ids: list[str], clock: Callable[[], float], election_timeout_ms: float) -> None:
        self.node_ids = list(node_ids)
        self.config = _Timing(float(election_timeout_ms), 2.0 * float(election_timeout_ms))
        self._clock = clock
        self._pinned: float | None = None
        self._observers: list[Callable[[str, dict[str, Any]], Any]] = []
        self.lock = threading.RLock()

    @property
    def now(self) -> float:
        return self._pinned if self._pinned is not None else float(self._clock())

    def add_observer(self, fn: Callable[[str, dict[str, Any]], Any]) -> None:
        self._observers.append(fn)

    def record(self, kind: FaultKind, member: str, leader: str | None, at: float) -> None:
        """Deliver one fault event, as of ``at`` (campaign clock), to every observer. An isolation
        is a partition of ``member`` from the others; its repair a heal."""
        if kind is FaultKind.PARTITION:
            args: tuple[Any, ...] = (((member,), tuple(n for n in self.node_ids if n != member)),)
        elif kind is FaultKind.HEAL:
            args = ()
        else:
            args = (member,)
        with self.lock:
            self._pinned = at
            try:
                for fn in self._observers:
                    fn(kind.value, {"args": args, "leader": leader})
            finally:
                self._pinned = None


class _TrackerSink(Sink):
    """Hands every sample to the tracker (on the sink's own worker thread)."""

    name = "real-chaos-tracker"

    def __init__(self, feed: Callable[[dict], None]) -> None:
        super().__init__(None)
        self._feed = feed
        self.samples = 0
        self.latest: dict | None = None

    def emit_sample(self, sample: dict) -> None:
        self._feed(sample)
        self.samples += 1
        self.latest = sample


# ---------------------------------------------------------------------- etcd's own signals

@dataclass(frozen=True)
class SignalReading:
    t: float            # campaign clock when the answer arrived
    member: str
    signal: str         # has_leader | leader_changes | health
    value: float | None  # None: the member did not answer


def _get(url: str, path: str, timeout: float) -> tuple[int, bytes]:
    host, _, port = url.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port.rstrip("/")), timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _metric(text: bytes, name: bytes) -> float | None:
    """The value of an unlabelled series in Prometheus text (found with bytes.find, not a regex pass)."""
    at = text.find(b"\n" + name + b" ")
    if at < 0:
        return None
    end = text.find(b"\n", at + 1)
    try:
        return float(text[at + len(name) + 2: end if end >= 0 else None])
    except ValueError:
        return None


class EtcdSignalWatcher:
    """etcd's own health signals per member, read every ``interval_s`` (one thread per member)."""

    def __init__(self, urls: Mapping[str, str], clock: Callable[[], float], interval_s: float = 0.2,
                 timeout_s: float = 2.0) -> None:
        self.urls = dict(urls)
        self.clock = clock
        self.interval = float(interval_s)
        self.timeout = float(timeout_s)
        self.readings: list[SignalReading] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for name, url in self.urls.items():
            thread = threading.Thread(target=self._run, args=(name, url), name=f"etcd-signals-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, name: str, url: str) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            has_leader = changes = None
            try:
                status, body = _get(url, "/metrics", self.timeout)
                if status == 200:
                    has_leader = _metric(body, b"etcd_server_has_leader")
                    changes = _metric(body, b"etcd_server_leader_changes_seen_total")
            except (OSError, http.client.HTTPException):
                pass
            t = self.clock()
            self.readings.append(SignalReading(t, name, "has_leader", has_leader))
            self.readings.append(SignalReading(t, name, "leader_changes", changes))
            health: float | None = None
            try:
                status, body = _get(url, "/health", self.timeout)
                try:
                    said = json.loads(body).get("health")
                except (ValueError, AttributeError):
                    said = None
                health = 1.0 if status == 200 and said in ("true", True) else 0.0
            except (OSError, http.client.HTTPException):
                pass
            self.readings.append(SignalReading(self.clock(), name, "health", health))
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 1.0)
        self._threads.clear()


# ---------------------------------------------------------------------- the campaign

class CampaignInterrupted(Exception):
    """``stop()`` was called (Ctrl-C / SIGTERM handlers use it)."""


class RealChaosCampaign:
    """One campaign on a running :class:`ProcessCluster`; :meth:`run` returns the report dict.

    The caller owns the cluster (and closes it); everything the campaign starts is stopped when
    :meth:`run` returns or raises. ``source_context`` goes to the source's factory with the
    interval; ``sample_hook(sample)`` sees every sample too (other checkers, such as safety).
    """

    def __init__(self, cluster: ProcessCluster, config: RealChaosConfig, *, target: str = "processes",
                 signals: bool = True, progress: Callable[[str], None] | None = None,
                 source_context: Mapping[str, Any] | None = None,
                 sample_hook: Callable[[dict], Any] | None = None) -> None:
        self.cluster = cluster
        self.names = sorted(cluster.members)
        config.validate(len(self.names), cluster)
        self.config = config
        self.target = target
        self.want_signals = signals
        self.progress = progress
        self.source_context = dict(source_context or {})
        self.sample_hook = sample_hook  # also sees every sample (after the tracker), on the sink's thread
        self.records: list[FaultRecord] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self.clock: CampaignClock | None = None
        self.tracker: DetectionTracker | None = None
        self.watcher: EtcdSignalWatcher | None = None
        self._sink: _TrackerSink | None = None

    def stop(self) -> None:
        """Ask a running campaign to stop at its next step (it then cleans up and raises)."""
        self._stop.set()

    def _say(self, text: str) -> None:
        if self.progress is not None:
            self.progress(text)

    # ---- the run ------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        from raftctl.runtime.collector import MetricsCollector
        from raftctl.sources import build_source

        cfg = self.config
        wall_started = time.monotonic()
        source = build_source(self.cluster.source_spec, interval=cfg.interval_s, **self.source_context)
        collector: MetricsCollector | None = None
        try:
            clock = CampaignClock(self.names, lambda: source.now, cfg.election_timeout_ms)
            self.clock = clock
            tracker = DetectionTracker(clock, collection_interval=cfg.interval_s, deadline_s=cfg.deadline_s,
                                       min_incident_s=cfg.min_incident_s)
            self.tracker = tracker

            def on_sample(sample: dict) -> None:
                with clock.lock:
                    tracker.observe_sample(sample)
                if self.sample_hook is not None:
                    self.sample_hook(sample)

            def on_alert(event: dict) -> None:
                with clock.lock:
                    tracker.observe_alert(event)

            self._sink = _TrackerSink(on_sample)
            collector = MetricsCollector(collection_interval=cfg.interval_s, retention_period=600,
                                         alert_callback=on_alert, sinks=[self._sink])
            collector.set_source(source)
            if self.want_signals:
                urls = {name: getattr(member, "client_url", None) for name, member in self.cluster.members.items()}
                if all(isinstance(u, str) for u in urls.values()):
                    self.watcher = EtcdSignalWatcher({k: str(v) for k, v in urls.items()}, lambda: source.now,
                                                     cfg.signal_interval_s)
            collector.start()
            if self.watcher is not None:
                self.watcher.start()
            self._warm_up(collector)
            self._inject()
            self._wait(cfg.tail_s)
            recovered_at = self._recover(collector)
            with clock.lock:
                tracker.finish()
            end = clock.now
        finally:
            if self.watcher is not None:
                self.watcher.stop()
            if collector is not None:
                collector.stop()  # drains the tracker sink
            source.close()
        return self._report(end, recovered_at, time.monotonic() - wall_started)

    def _wait(self, seconds: float) -> None:
        if self._stop.wait(max(0.0, seconds)):
            raise CampaignInterrupted("campaign stopped")

    def _latest(self) -> dict | None:
        return self._sink.latest if self._sink is not None else None

    def _healthy(self) -> bool:
        latest = self._latest()
        return latest is not None and latest["cluster"]["health_status"] == "HEALTHY"

    def _warm_up(self, collector: Any) -> None:
        """Until the monitor has seen the cluster HEALTHY and the tracker's startup window is over."""
        assert self.tracker is not None and self.clock is not None
        deadline = time.monotonic() + self.config.warmup_timeout_s
        while not (self._healthy() and self.clock.now >= self.tracker.startup_s):
            if time.monotonic() > deadline:
                diagnose = getattr(self.cluster, "diagnose", None)
                why = diagnose() if callable(diagnose) else ""
                raise RuntimeError(f"the cluster was not HEALTHY within {self.config.warmup_timeout_s:g} s "
                                   f"of the campaign start; last sample: {self._brief()}"
                                   + (f"; {why}" if why else ""))
            self._wait(0.1)

    def _brief(self) -> str:
        latest = self._latest()
        if latest is None:
            return "none"
        c = latest["cluster"]
        return f"{c['health_status']} leader={c['leader_node']} reasons={c['health_reasons']}"

    def _recover(self, collector: Any) -> float | None:
        """Wait until the monitor shows HEALTHY again; the campaign clock then, or None."""
        assert self.clock is not None
        deadline = time.monotonic() + self.config.recovery_timeout_s
        while time.monotonic() < deadline:
            if self._healthy():
                return self.clock.now
            self._wait(0.1)
        return None

    # ---- the injector -------------------------------------------------------------------------

    def _apply(self, action: Callable[[str], None] | None, kind: FaultKind, member: str,
               leader: str | None) -> float | None:
        """Apply ``action`` and record it, with ``leader``, as of the instant just before; None if it failed."""
        assert self.clock is not None
        at = self.clock.now
        try:
            if action is None:
                raise RuntimeError("this cluster cannot do that")
            action(member)
        except Exception as exc:  # noqa: BLE001 - a member that died on its own is a finding, not a crash
            self.errors.append(f"t={at:.3f}s {kind.value} {member}: {exc}")
            return None
        self.clock.record(kind, member, leader, at)
        return at

    def _leader(self) -> str | None:
        try:
            return self.cluster.leader()
        except Exception:  # noqa: BLE001 - no reading is "no leader known"
            return None

    def _inject(self) -> None:
        assert self.clock is not None
        cfg = self.config
        plan = plan_faults(cfg)
        limit = cfg.down_limit(len(self.names))
        clock = self.clock
        repairs: list[tuple[float, int, FaultRecord]] = []
        faulted: set[str] = set()
        settling: dict[str, float] = {}
        next_at = clock.now
        done = 0
        while done < len(plan) or repairs:
            if self._stop.is_set():
                raise CampaignInterrupted("campaign stopped")
            now = clock.now
            if repairs and repairs[0][0] <= now:
                _due, _i, record = heapq.heappop(repairs)
                repair = {"pause": (self.cluster.resume, FaultKind.RESUME),
                          "isolate": (getattr(self.cluster, "heal", None), FaultKind.HEAL)}.get(
                    record.kind, (self.cluster.restart, FaultKind.RESTART))
                at = self._apply(*repair, record.member, self._leader())
                record.repaired_at = at
                faulted.discard(record.member)
                settling[record.member] = clock.now + cfg.settle_s
                continue
            busy = faulted | {m for m, until in settling.items() if until > now}
            if done < len(plan) and now >= next_at and len(busy) < limit:
                planned = plan[done]
                done += 1
                candidates = [m for m in self.names if m not in busy]
                leader = self._leader()
                member = leader if planned.aim_leader and leader in candidates \
                    else candidates[int(planned.pick * len(candidates))]
                assert member is not None
                action, fault_kind = {
                    "pause": (self.cluster.pause, FaultKind.PAUSE),
                    "isolate": (getattr(self.cluster, "isolate", None), FaultKind.PARTITION),
                }.get(planned.kind, (self.cluster.kill, FaultKind.CRASH))
                at = self._apply(action, fault_kind, member, leader)
                next_at = clock.now + planned.gap_s
                if at is None:
                    continue
                record = FaultRecord(len(self.records), planned.kind, member, at, leader, planned.hold_s)
                self.records.append(record)
                self._say(f"fault {done}/{len(plan)}: {planned.kind} {member}"
                          f"{' (leader)' if record.was_leader else ''} at {at:.1f}s"
                          + (f", hold {planned.hold_s:.1f}s" if planned.kind != "restart" else ""))
                if planned.kind == "restart":
                    record.repaired_at = self._apply(self.cluster.restart, FaultKind.RESTART, member,
                                                     None if member == leader else leader)
                    settling[member] = clock.now + cfg.settle_s
                else:
                    faulted.add(member)
                    heapq.heappush(repairs, (at + planned.hold_s, record.index, record))
                continue
            wake = [now + 0.05]
            if repairs:
                wake.append(repairs[0][0])
            self._wait(max(0.0, min(wake) - now))

    # ---- the report ---------------------------------------------------------------------------

    def _report(self, end: float, recovered_at: float | None, wall_s: float) -> dict[str, Any]:
        assert self.tracker is not None
        cfg = self.config
        with self.clock.lock if self.clock is not None else contextlib.nullcontext():
            detection = self.tracker.report()
        incidents = self.tracker.incidents
        kinds = {k: sum(1 for r in self.records if r.kind == k) for k in cfg.kinds}
        rows = [self._fault_row(r, incidents) for r in self.records]
        latencies = detection.latencies_s
        counted = detection.counted
        return {
            "target": self.target,
            "members": len(self.names),
            "member_names": self.names,
            "seed": cfg.seed,
            "faults_requested": cfg.faults,
            "faults_injected_total": len(self.records),
            "faults_injected": kinds,
            "leader_faults": sum(1 for r in self.records if r.was_leader),
            "max_down": cfg.down_limit(len(self.names)),
            "hold_s": [cfg.hold_min_s, cfg.hold_max_s],
            "collection_interval_s": cfg.interval_s,
            "deadline_s": cfg.deadline_s,
            "min_incident_s": cfg.min_incident_s,
            "campaign_seconds": round(end, 3),
            "wall_seconds": round(wall_s, 3),
            "samples": detection.samples,
            "recall": detection.recall,
            "incidents_counted": counted,
            "incidents_detected": detection.detected,
            "incidents_shorter": sum(v["short"] for v in detection.incidents.values()),
            "incidents_unjudged": sum(v["unjudged"] for v in detection.incidents.values()),
            "health_changing_incidents": detection.incidents,
            "detection_latency_s": _summary(latencies),
            "alerts_fired": detection.alerts_fired,
            "false_alarms": len(detection.false_alarms),
            "false_alarm_examples": [{"t": round(t, 3), "alert": name} for t, name in detection.false_alarms[:20]],
            "missed_incidents": [{"t": round(t, 3), "incident": kind, "target": target}
                                 for t, kind, target in detection.missed[:20]],
            "unexplained_unhealthy_samples": detection.unexplained_unhealthy,
            "etcd_signals": self._signal_summary(rows) if self.watcher is not None else None,
            "recovered": recovered_at is not None,
            "injector_errors": self.errors,
            "fault_log": rows,
        }

    def _fault_row(self, record: FaultRecord, incidents: list[Any]) -> dict[str, Any]:
        row: dict[str, Any] = asdict(record)
        for key in ("t", "repaired_at"):
            row[key] = None if row[key] is None else round(row[key], 3)
        row["was_leader"] = record.was_leader
        for name, kind in (("raftctl_node_down", "node_down"), ("raftctl_leader_loss", "leader_loss")):
            match = next((i for i in incidents if i.kind == kind and i.target == record.member
                          and abs(i.start - record.t) < 1e-9), None)
            row[f"{name}_verdict"] = None if match is None else match.verdict
            row[f"{name}_s"] = None if match is None or match.latency_s is None else round(match.latency_s, 3)
        row["overlaps"] = [r.index for r in self.records if r is not record and self._window(r)[0] <= self._window(record)[1]
                           and self._window(record)[0] <= self._window(r)[1]]
        if self.watcher is not None:
            row.update(self._signals_for(record))
        return row

    def _window(self, record: FaultRecord) -> tuple[float, float]:
        """From the fault to a deadline after its repair: where its effects (and signals) are looked for."""
        end = record.repaired_at if record.repaired_at is not None else record.t
        return record.t, end + self.config.deadline_s

    def _excluded(self, member: str, t: float) -> bool:
        """A member that is faulted (or still rejoining) at ``t`` is not a surviving one."""
        settle = self.config.settle_s
        for r in self.records:
            if r.member == member:
                end = (r.repaired_at if r.repaired_at is not None else float("inf")) + settle
                if r.t <= t <= end:
                    return True
        return False

    def _signals_for(self, record: FaultRecord) -> dict[str, float | None]:
        assert self.watcher is not None
        start, stop = self._window(record)
        out: dict[str, float | None] = {"etcd_has_leader_s": None, "etcd_leader_changes_s": None,
                                        "etcd_health_s": None}
        baseline: dict[str, float] = {}
        for reading in self.watcher.readings:
            if reading.signal == "leader_changes" and reading.t <= start and reading.value is not None:
                baseline[reading.member] = reading.value
        for reading in sorted(self.watcher.readings, key=lambda r: r.t):
            if not start < reading.t <= stop or reading.value is None or reading.member == record.member \
                    or self._excluded(reading.member, reading.t):
                continue
            key = {"has_leader": "etcd_has_leader_s", "leader_changes": "etcd_leader_changes_s",
                   "health": "etcd_health_s"}[reading.signal]
            if out[key] is not None:
                continue
            shown = (reading.value > baseline.get(reading.member, float("inf"))
                     if reading.signal == "leader_changes" else reading.value == 0)
            if shown:
                out[key] = round(reading.t - start, 3)
        return out

    def _signal_summary(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return signal_summary(rows, self.config.signal_interval_s)


_SIGNAL_KEYS = ("etcd_has_leader_s", "etcd_leader_changes_s", "etcd_health_s", "raftctl_node_down_s",
                "raftctl_leader_loss_s")


def signal_summary(rows: list[dict[str, Any]], interval_s: float) -> dict[str, Any]:
    """etcd's signals beside raftctl's, per fault group, from the fault log rows; pure.

    A signal seen while faults overlap cannot be pinned on one of them, so ``leader_faults`` and
    ``follower_faults`` take only the faults alone in their window; ``*_all`` take every fault
    (each overlapping fault is credited with the first signal in its own window).
    """
    out: dict[str, Any] = {"interval_s": interval_s, "alone": sum(1 for r in rows if not r["overlaps"])}
    for group, wanted in (("leader_faults", True), ("follower_faults", False)):
        for suffix, alone_only in (("", True), ("_all", False)):
            subset = [r for r in rows if r["was_leader"] is wanted and not (alone_only and r["overlaps"])]
            doc: dict[str, Any] = {"faults": len(subset),
                                   "overlapping": sum(1 for r in subset if r["overlaps"]) if not alone_only
                                   else sum(1 for r in rows if r["was_leader"] is wanted and r["overlaps"])}
            for key in _SIGNAL_KEYS:
                values = [r[key] for r in subset if r.get(key) is not None]
                doc[key.removesuffix("_s")] = {"shown": len(values), **_summary(values)}
                if key.startswith("raftctl_"):  # incidents shorter than min_incident_s are not judged
                    verdict = key.removesuffix("_s") + "_verdict"
                    doc[key.removesuffix("_s")]["judged"] = sum(1 for r in subset
                                                                if r.get(verdict) in ("detected", "missed"))
            out[group + suffix] = doc
    return out


def _summary(values: list[float]) -> dict[str, Any]:
    def rounded(x: float | None) -> float | None:
        return None if x is None else round(x, 3)

    return {"count": len(values), "median": rounded(percentile(values, 0.5)),
            "p99": rounded(percentile(values, 0.99)), "max": rounded(max(values) if values else None)}


# ---------------------------------------------------------------------- etcd

@contextlib.contextmanager
def _etcd_cluster(members: int, **kwargs: Any) -> Iterator[Any]:
    from raftctl.runtime.etcd_cluster import EtcdCluster

    with EtcdCluster(members, **kwargs) as cluster:
        if cluster.wait_for_leader(timeout=15.0) is None:
            raise RuntimeError("the etcd members did not agree on a leader within 15 s")
        yield cluster


def run_etcd_campaign(members: int, config: RealChaosConfig, *, etcd_binary: str | None = None,
                      base_dir: str | None = None, progress: Callable[[str], None] | None = None,
                      campaign_hook: Callable[[RealChaosCampaign], None] | None = None) -> dict[str, Any]:
    """Start a fresh etcd cluster, run one campaign on it, remove it; the report dict.

    Raises ``EtcdNotFoundError`` without an etcd binary. ``campaign_hook`` gets the campaign
    before it runs (so a signal handler can call its ``stop``).
    """
    config.validate(members)
    with _etcd_cluster(members, etcd_binary=etcd_binary, base_dir=base_dir,
                       election_ms=int(config.election_timeout_ms),
                       heartbeat_ms=max(1, int(config.election_timeout_ms) // 10)) as cluster:
        campaign = RealChaosCampaign(cluster, config, target="etcd", progress=progress)
        if campaign_hook is not None:
            campaign_hook(campaign)
        report = campaign.run()
        report["etcd_version"] = _etcd_version(cluster)
        return report


def _etcd_version(cluster: Any) -> str | None:
    for member in cluster.members.values():
        with contextlib.suppress(OSError, ValueError, http.client.HTTPException):
            status, body = _get(member.client_url, "/version", 1.0)
            if status == 200:
                return str(json.loads(body).get("etcdserver"))
    return None


def _fmt(x: Any, unit: str = " s") -> str:
    return "-" if x is None else f"{x:g}{unit}"


def report_lines(report: dict[str, Any]) -> list[tuple[str, str]]:
    """The campaign's figures as (figure, value) rows; pure."""
    latency = report["detection_latency_s"]
    breakdown = ", ".join(f"{k} {v['detected']}/{v['counted']}"
                          for k, v in report["health_changing_incidents"].items() if v["counted"])
    kinds = ", ".join(f"{k} {v}" for k, v in report["faults_injected"].items())
    rows = [
        ("campaign", f"{report['target']} {report['members']} members, seed {report['seed']}, "
                     f"{report['campaign_seconds']:g} s ({report['wall_seconds']:g} s wall), "
                     f"{report['samples']} samples at {report['collection_interval_s']:g} s"),
        ("faults injected", f"{report['faults_injected_total']} ({kinds}; {report['leader_faults']} on the "
                            f"leader; at most {report['max_down']} down)"),
        ("detection recall", f"{report['recall'] * 100:.2f}% ({report['incidents_detected']}/"
                             f"{report['incidents_counted']} incidents of {report['min_incident_s']:g} s or more "
                             f"seen within {report['deadline_s']:g} s: {breakdown or 'none'})"),
        ("not counted", f"{report['incidents_shorter']} shorter than {report['min_incident_s']:g} s; "
                        f"{report['incidents_unjudged']} unjudged"),
        ("detection latency", f"p50 {_fmt(latency['median'])}, p99 {_fmt(latency['p99'])}, "
                              f"max {_fmt(latency['max'])}"),
        ("false alarms", f"{report['false_alarms']} of {report['alerts_fired']} alerts fired; unexplained "
                         f"non-HEALTHY samples: {report['unexplained_unhealthy_samples']}"),
    ]
    signals = report.get("etcd_signals")
    if signals:
        groups = [("leader_faults", "leader faults", "alone"), ("follower_faults", "follower faults", "alone")]
        if any(signals[g]["overlapping"] for g in ("leader_faults", "follower_faults")):
            groups += [("leader_faults_all", "leader faults", "all"), ("follower_faults_all", "follower faults", "all")]
        for group, title, which in groups:
            doc = signals[group]
            if not doc["faults"]:
                continue
            parts = []
            for key, name in (("raftctl_node_down", "raftctl node_down"), ("raftctl_leader_loss", "raftctl leader"),
                              ("etcd_has_leader", "etcd has_leader"), ("etcd_leader_changes", "etcd leader_changes"),
                              ("etcd_health", "etcd /health")):
                s = doc[key]
                if key == "raftctl_leader_loss" and group.startswith("follower_faults"):
                    continue
                parts.append(f"{name} {s['shown']}/{s.get('judged', doc['faults'])} p50 {_fmt(s['median'])} "
                             f"p99 {_fmt(s['p99'])}")
            rows.append((f"{title} ({doc['faults']} {which})", "; ".join(parts)))
    rows.append(("recovered", "yes, HEALTHY at the end" if report["recovered"] else "NO: not HEALTHY at the end"))
    if report["injector_errors"]:
        rows.append(("injector errors", "; ".join(report["injector_errors"][:5])))
    return rows


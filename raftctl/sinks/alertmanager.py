"""``alertmanager:URL`` sink: alerts pushed to Alertmanager's API v2 the way Prometheus pushes them.

Every firing alert is POSTed to ``URL/api/v2/alerts`` on each sample while it fires (or every
``resend`` seconds), with ``endsAt`` four intervals ahead, so Alertmanager resolves it by itself
if raftctl goes away. A resolved alert is sent with its real ``endsAt`` until Alertmanager has
taken it. Like Prometheus, which re-sends on every evaluation whatever became of the last send,
every sample tries while anything fires or waits to be taken, so the first sample after an
outage hands Alertmanager the whole current state; after a failed push a sample that waited in
the queue during it is not pushed again (at most one attempt per collection interval), and
pushes that events alone would trigger (no samples: an API user, ``raftctl alerts``) back off
``backoff`` * 2^n seconds up to ``max_backoff``. An alert event the queue dropped is made good
from the next sample's list of active alerts.

Labels: ``alertname``, ``severity``, ``cluster`` (option, default "raftctl"), ``instance``
(option, default the dashboard's ``host:port``) and the alert's own (``node``, ``shard``).
Annotations: ``summary``, ``description`` and ``runbook_url``: the ``runbook_base`` option (default
``docs/runbooks/``, the path the shipped Prometheus rules give; set it to where you host the docs)
followed by the alert's runbook, e.g. ``RaftctlNodeDown.md``. ``generatorURL`` is the dashboard: the ``generator_url`` option,
else the URL the host program tells the sink (``raftctl serve`` after it binds, ``raftctl
alerts`` from ``--url``), else ``$RAFTCTL_URL``, else ``http://<this host's FQDN>:8080/``.

Spec: ``alertmanager:http://127.0.0.1:9093?cluster=prod&instance=exchange-a:8080``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import orjson

from raftctl.sinks.alertmodel import (
    RUNBOOK_BASE,
    alert_annotations,
    alert_labels,
    default_instance,
    fingerprint,
    go_time,
    idempotency_key,
    without_userinfo,
)
from raftctl.sinks.base import Sink, is_loopback_host, opt_float, opt_str, parse_sink_url, split_credentials

__all__ = ["AlertmanagerSink"]

log = logging.getLogger(__name__)
_ACKED_KEPT = 10_000  # event keys a push carried, remembered so a late copy of the event is no news


class AlertmanagerSink(Sink):
    """Push alerts to an Alertmanager (API v2) as Prometheus does."""

    name = "alertmanager"
    spec_syntax = "alertmanager:URL[?OPTIONS]"
    description = "push alerts to Alertmanager's API v2 as Prometheus does, re-sent while firing"
    accepts_samples = True  # every sample re-sends what fires
    spec_options: ClassVar[Mapping[str, Callable[[str], Any]]] = {
        "cluster": opt_str, "instance": opt_str, "generator_url": opt_str,
        "timeout": opt_float(0.0, above=True), "resend": opt_float(0.0),
        "backoff": opt_float(0.0, above=True), "max_backoff": opt_float(0.0, above=True),
        "max_age": opt_float(0.0, above=True), "runbook_base": opt_str,
    }

    def __init__(self, arg: str | None = None, cluster: str = "raftctl", instance: str | None = None,
                 generator_url: str | None = None, timeout: float = 5.0, resend: float = 0.0,
                 backoff: float = 1.0, max_backoff: float = 30.0, max_age: float = 86_400.0,
                 runbook_base: str = RUNBOOK_BASE, **options: Any) -> None:
        super().__init__(arg, **options)
        if not arg:
            raise ValueError("alertmanager sink needs Alertmanager's URL: alertmanager:http://HOST:9093")
        if not isinstance(runbook_base, str):
            raise ValueError(f"alertmanager sink runbook_base must be a URL or path prefix, got {runbook_base!r}")
        self.runbook_base = runbook_base
        from raftctl.sinks.webhook import safe_url

        parts = parse_sink_url("alertmanager", arg, safe_url(arg))  # a password in the URL is not echoed
        if parts.query or parts.fragment:
            raise ValueError("alertmanager sink URL takes no query of its own; options: "
                             + ", ".join(sorted(self.spec_options)))
        for label, value in (("timeout", timeout), ("backoff", backoff), ("max_backoff", max_backoff),
                             ("max_age", max_age), ("resend", resend)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"alertmanager sink {label} must be a number >= 0, got {value!r}")
        if timeout <= 0:
            raise ValueError(f"alertmanager sink timeout must be > 0, got {timeout!r}")
        if not isinstance(cluster, str) or not cluster:
            raise ValueError("alertmanager sink cluster must be a non-empty name")
        path = parts.path.rstrip("/")
        # credentials in the URL go as HTTP Basic auth, never into a log line or stats()
        bare, self._authorization = split_credentials(f"{parts.scheme}://{parts.netloc}{path}")
        self.base_url = bare
        self.endpoint = self.base_url + "/api/v2/alerts"
        self.cluster = cluster
        self.timeout = float(timeout)
        self.resend = float(resend)
        self.backoff = float(backoff)
        self.max_backoff = max(float(max_backoff), self.backoff)
        self.max_age = float(max_age)
        self._instance_option = instance
        self._generator_option = generator_url
        self._identity: tuple[str, str] | None = None
        self._loopback = is_loopback_host(parts.hostname)
        self._opener: Any = None
        self._lock = threading.Lock()
        self._firing: dict[str, dict[str, Any]] = {}    # fingerprint -> alert as pushed
        self._resolved: dict[str, dict[str, Any]] = {}  # fingerprint -> resolved, not yet taken
        self._unacked: set[str] = set()                  # event keys no successful push carried yet
        self._acked: OrderedDict[str, None] = OrderedDict()  # event keys a successful push carried
        self._interval = 1.0
        self._run = False         # one run of `raftctl alerts` (prime()): no samples, it ends at close()
        self._next_try = 0.0      # monotonic: when an event alone may push again after a failure
        self._failed_at = 0.0     # monotonic: when the last failed push gave up
        self._failures = 0        # consecutive failed pushes
        self._last_ok = 0.0       # monotonic: the last push Alertmanager took
        self.pushes = 0
        self.push_failures = 0
        self.delivered = 0
        self.expired = 0
        self.reconciled = 0
        self.last_error: str | None = None

    # ------------------------------------------------------------------ identity

    def identity(self) -> tuple[str, str]:
        """(instance, generatorURL), fixed the first time an alert needs them."""
        if self._identity is None:
            from raftctl.sinks.webhook import dashboard_url_fallback

            dashboard = without_userinfo(self.dashboard_url or dashboard_url_fallback())
            generator = self._generator_option or dashboard.rstrip("/") + "/"
            self._identity = (self._instance_option or default_instance(dashboard), generator)
        return self._identity

    def _member(self, alert: dict) -> dict[str, Any]:
        instance, generator = self.identity()
        labels = alert_labels(alert, self.cluster, instance)
        return {"labels": labels, "annotations": alert_annotations(alert, self.runbook_base), "generatorURL": generator,
                "startsAt": go_time(alert.get("started_at")), "_started": alert.get("started_at"),
                "_resolved": alert.get("resolved_at"), "_fp": fingerprint(labels)}

    # ------------------------------------------------------------------ lifecycle

    def open(self) -> None:
        import urllib.request

        handlers = [urllib.request.ProxyHandler({})] if self._loopback else []
        self._opener = urllib.request.build_opener(*handlers)

    def close(self) -> None:
        # hand over what Alertmanager has not taken yet (resolutions above all), one last try
        # whatever the back-off; firing ones expire there by themselves at their endsAt, as
        # when a Prometheus goes away. A `raftctl alerts` run re-sends what still fires, as
        # Prometheus re-sends at every evaluation, or Alertmanager would resolve it between runs
        with self._lock:
            if self._resolved or self._unacked or (self._run and self._firing):
                self._push_locked()

    def outcome(self, alert: dict) -> str | None:
        """What became of one alert event: "delivered" once a push Alertmanager took carried it,
        "pending" while none has (`raftctl alerts` then keeps it for its next run)."""
        member = self._member(alert)
        status = "resolved" if alert.get("status") == "resolved" else "firing"
        key = idempotency_key(member["_fp"], member["startsAt"], status)
        with self._lock:
            return "delivered" if key in self._acked else "pending"

    def prime(self, firing: Iterable[dict]) -> None:
        """A `raftctl alerts` run: ``firing`` = the alerts an earlier run told Alertmanager were
        firing (the run's events then say which resolved). They are pushed again at close(), with
        ``endsAt`` four ``resend`` periods ahead (give ``resend=`` the cron period), or with no
        ``endsAt`` when ``resend`` is 0, so Alertmanager keeps them until its resolve_timeout."""
        with self._lock:
            self._run = True
            for alert in firing:
                member = self._member(alert)
                self._firing[member["_fp"]] = member
                self._acked[idempotency_key(member["_fp"], member["startsAt"], "firing")] = None

    # ------------------------------------------------------------------ events

    def emit_alert(self, alert: dict) -> None:
        self.emit_alerts([alert])

    def emit_alerts(self, alerts: Iterable[dict]) -> None:
        """Apply events; push once if one told something a push has not carried yet (the
        collector's sample before them usually has: it lists what fires)."""
        with self._lock:
            changed = False
            for alert in alerts:
                changed = self._apply(alert) or changed
            if changed and (not self._failures or time.monotonic() >= self._next_try):
                self._push_locked()

    def emit_sample(self, sample: dict) -> None:
        with self._lock:
            interval = (sample.get("collector") or {}).get("collection_interval")
            if isinstance(interval, (int, float)) and not isinstance(interval, bool) and interval > 0:
                self._interval = float(interval)
            self._reconcile(sample)
            if not self._firing and not self._resolved:
                return
            now = time.monotonic()
            if self._failures:
                # every sample tries again, except one that waited in the queue while the last
                # attempt failed (a hung Alertmanager must not make the worker fall behind)
                due = now - self._failed_at >= 0.5 * self._interval
            else:
                due = bool(self._unacked) or self.resend <= 0 or now - self._last_ok >= self.resend
            if due:
                self._push_locked()

    def _apply(self, alert: dict) -> bool:
        """Take one event into the state to push; True if it is news to Alertmanager."""
        member = self._member(alert)
        fp, starts = member["_fp"], member["startsAt"]
        resolved_key = idempotency_key(fp, starts, "resolved")
        firing_key = idempotency_key(fp, starts, "firing")
        known = resolved_key in self._acked or resolved_key in self._unacked
        current = self._firing.get(fp)
        if alert.get("status") == "resolved":
            pending = self._resolved.get(fp)
            if resolved_key in self._unacked and pending is not None and pending["startsAt"] == starts:
                self._resolved[fp] = member  # the event's own end beats the sample's estimate
                return False
            if known or (current is not None and current["startsAt"] != starts):
                return False  # told already, or the end of an earlier episode than the one firing
            self._firing.pop(fp, None)
            self._resolved[fp] = member
            self._unacked.add(resolved_key)
            return True
        if known or (current is not None and current["startsAt"] == starts):
            return False  # firing already, or a late copy of an episode that has ended
        superseded = self._resolved.pop(fp, None)
        if superseded is not None:  # the earlier episode's end, not taken yet: the new one replaces it
            self._unacked.discard(idempotency_key(fp, superseded["startsAt"], "resolved"))
        if current is not None:
            self._unacked.discard(idempotency_key(fp, current["startsAt"], "firing"))
        self._firing[fp] = member
        if firing_key not in self._acked:
            self._unacked.add(firing_key)
        return True

    def _reconcile(self, sample: dict) -> None:
        """Follow the sample's list of what fires now (it comes before its events, and makes
        good events a full queue dropped)."""
        active = [a for a in sample.get("alerts") or () if isinstance(a, dict) and a.get("status") == "firing"]
        seen = set()
        for alert in active:
            member = self._member(alert)
            seen.add(member["_fp"])
            if self._apply(alert):
                self.reconciled += 1
        when = sample.get("timestamp")
        for fp in [fp for fp in self._firing if fp not in seen]:
            member = self._firing.pop(fp)
            member["_resolved"] = when if isinstance(when, (int, float)) else time.time()
            self._resolved[fp] = member
            self._unacked.add(idempotency_key(fp, member["startsAt"], "resolved"))
            self.reconciled += 1

    # ------------------------------------------------------------------ delivery

    def _body(self, now: float) -> tuple[bytes, set[str]]:
        # a run of `raftctl alerts` without resend= does not know when the next run comes: no
        # endsAt, Alertmanager's resolve_timeout applies (as for any client that sets none)
        valid_until = None if self._run and self.resend <= 0 else go_time(now + 4 * max(self._interval, self.resend))
        out, keys = [], set()
        for fp, member in self._firing.items():
            doc = {"labels": member["labels"], "annotations": member["annotations"],
                   "startsAt": member["startsAt"], "generatorURL": member["generatorURL"]}
            if valid_until is not None:
                doc["endsAt"] = valid_until
            out.append(doc)
            keys.add(idempotency_key(fp, member["startsAt"], "firing"))
        for fp, member in self._resolved.items():
            out.append({"labels": member["labels"], "annotations": member["annotations"],
                        "startsAt": member["startsAt"], "endsAt": go_time(member["_resolved"]),
                        "generatorURL": member["generatorURL"]})
            # the episode whole: a firing never pushed (it fired and ended during an outage) is told too
            keys.add(idempotency_key(fp, member["startsAt"], "resolved"))
            keys.add(idempotency_key(fp, member["startsAt"], "firing"))
        return orjson.dumps(out), keys

    def _push_locked(self) -> None:
        """POST the whole current state once (the callers decide when)."""
        self._expire(time.time())
        if not self._firing and not self._resolved:
            return
        body, keys = self._body(time.time())
        error = self._post(body)
        now_mono = time.monotonic()
        if error is None:
            if self._failures:
                log.warning("alertmanager %s: push taken again after %d failed attempt(s)",
                            self.base_url, self._failures)
            self.pushes += 1
            self._failures = 0
            self._next_try = 0.0
            self._last_ok = now_mono
            taken = keys & self._unacked
            self.delivered += len(taken)
            self._unacked -= taken
            for key in keys:
                self._acked[key] = None
                self._acked.move_to_end(key)
            while len(self._acked) > _ACKED_KEPT:
                self._acked.popitem(last=False)
            self._resolved.clear()
            return
        self.push_failures += 1
        self._failures += 1
        self._failed_at = now_mono
        self.last_error = error
        delay = min(self.max_backoff, self.backoff * 2 ** (self._failures - 1))
        self._next_try = now_mono + delay
        if self._failures == 1 or self._failures % 10 == 0:
            log.warning("alertmanager %s: push failed (%s, %d in a row); trying again at every sample",
                        self.base_url, error, self._failures)

    def _expire(self, now: float) -> None:
        for fp in [fp for fp, m in self._resolved.items()
                   if isinstance(m["_resolved"], (int, float)) and now - m["_resolved"] > self.max_age]:
            member = self._resolved.pop(fp)
            for status in ("firing", "resolved"):
                key = idempotency_key(fp, member["startsAt"], status)
                if key in self._unacked:
                    self._unacked.discard(key)
                    self.expired += 1
            log.warning("alertmanager %s: resolution of %s older than %.0f s dropped undelivered",
                        self.base_url, member["labels"].get("alertname"), self.max_age)

    def _post(self, body: bytes) -> str | None:
        import urllib.error
        import urllib.request

        if self._opener is None:
            self.open()
        headers = {"Content-Type": "application/json", "User-Agent": "raftctl-alertmanager/1"}
        if self._authorization:
            headers["Authorization"] = self._authorization
        request = urllib.request.Request(self.endpoint, data=body, method="POST", headers=headers)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                response.read()
            return None
        except urllib.error.HTTPError as exc:
            detail = ""
            try:
                detail = exc.read(300).decode("utf-8", "replace").strip()
            except OSError:
                detail = ""
            return f"HTTP {exc.code}" + (f": {detail}" if detail else "")
        except urllib.error.URLError as exc:
            return str(getattr(exc, "reason", exc))
        except OSError as exc:
            return str(exc) or type(exc).__name__

    # ------------------------------------------------------------------ figures

    @property
    def failed(self) -> int:
        return self.expired

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"url": self.base_url, "delivered": self.delivered, "pending": len(self._unacked),
                    "expired": self.expired, "failed": self.expired, "firing": len(self._firing),
                    "resolved_unsent": len(self._resolved), "pushes": self.pushes,
                    "push_failures": self.push_failures, "last_error": self.last_error}

    def __repr__(self) -> str:
        return f"AlertmanagerSink({self.base_url!r})"


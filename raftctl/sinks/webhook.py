"""``webhook:URL`` sink: alert notifications POSTed as a real Alertmanager's webhook sends them.

The payload is Alertmanager's webhook format, version "4", and behaves like it: alerts are
grouped (by ``alertname`` and ``cluster`` unless ``group_by`` says otherwise), every change of a
group produces one notification carrying every alert of the group, firing and resolved, and the
notification's ``status`` is "firing" while any member fires. The events of one sample
(``emit_alerts``, which the collector calls) or of one ``raftctl alerts`` run (``prime`` ...
``close``) are one change: each group they touch gets one notification with its state after
all of them, as Alertmanager sends one when three nodes go down at once. Fingerprints are Alertmanager's
(FNV-64a over the sorted label pairs), labels carry ``cluster`` and ``instance`` so two raftctl
servers never collide, and ``groupKey``, ``groupLabels``, ``commonLabels``,
``commonAnnotations``, ``externalURL``, ``generatorURL`` and ``truncatedAlerts`` are set as
Alertmanager sets them.

Delivery loses nothing: each notification goes to an on-disk spool first (see
``raftctl.sinks.spool``) and a delivery thread sends the spool in order, retrying with capped
exponential back-off until the receiver takes it or it is older than ``max_age`` (then it is
counted as expired and logged). A restarted raftctl delivers what the previous one could not.
Every notification carries an idempotency key in the ``Idempotency-Key`` header and the
payload's ``idempotencyKey`` field: the key (fingerprint, startsAt and status) of the event
that caused it, or the keys of the events, comma-separated, when several alerts of the group
changed at once (``alertmodel.notification_key``). raftctl never queues one event twice, so
the key is unique per notification, and a receiver can drop the copies a timeout makes us send.

Options go in the spec's query string (``webhook:http://h/hook?receiver=ops&group_by=alertname,shard``);
query parameters that are not options stay part of the URL. With a shared secret the body is
signed with HMAC-SHA256 in ``X-Raftctl-Signature: sha256=<hex>``; the secret comes from the
``RAFTCTL_WEBHOOK_SECRET`` environment variable (or the ``secret`` keyword in Python), never
from the spec, so it stays off command lines.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import orjson

from raftctl.sinks.alertmodel import (
    RUNBOOK_BASE,
    ZERO_TIME,
    alert_annotations,
    alert_labels,
    default_instance,
    fingerprint,
    go_time,
    idempotency_key,
    label_set_string,
    notification_key,
    sort_alerts,
    without_userinfo,
)
from raftctl.sinks.base import (Sink, is_loopback_host, opt_float, opt_int, opt_list, opt_str, parse_sink_url,
                                split_credentials)
from raftctl.sinks.spool import Spool, SpoolRecord, default_state_dir

__all__ = [
    "IDEMPOTENCY_HEADER",
    "SIGNATURE_HEADER",
    "WebhookSink",
    "alertmanager_payload",
    "dashboard_url_fallback",
    "rfc3339",
    "safe_url",
]

SIGNATURE_HEADER = "X-Raftctl-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SECRET_ENV = "RAFTCTL_WEBHOOK_SECRET"
DEFAULT_GROUP_BY = ("alertname", "cluster")
log = logging.getLogger(__name__)


def rfc3339(timestamp: float | None) -> str:
    """Unix seconds as Alertmanager writes them (``2025-11-28T07:16:00.5Z``; None -> zero time)."""
    return go_time(timestamp)


def safe_url(url: str) -> str:
    """A URL fit for a log line: no user:password, no query (tokens live there)."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:  # not a URL (a typo): the text, less what may be secret
        return url.split("?", 1)[0].split("#", 1)[0].rpartition("@")[2]
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"


def dashboard_url_fallback() -> str:
    """Where the dashboard is when nobody said: ``$RAFTCTL_URL``, else this host on port 8080."""
    import socket

    env = os.environ.get("RAFTCTL_URL", "").strip()
    if env.startswith(("http://", "https://")):
        return env.rstrip("/")
    return f"http://{socket.getfqdn() or 'localhost'}:8080"


def _am_alert(alert: dict, labels: dict[str, str], generator_url: str,
              runbook_base: str = RUNBOOK_BASE) -> dict[str, Any]:
    resolved = alert.get("status") == "resolved"
    return {
        "status": "resolved" if resolved else "firing",
        "labels": labels,
        "annotations": alert_annotations(alert, runbook_base),
        "startsAt": go_time(alert.get("started_at")),
        "endsAt": go_time(alert.get("resolved_at")) if resolved else ZERO_TIME,
        "generatorURL": generator_url,
        "fingerprint": fingerprint(labels),
    }


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    common = dict(maps[0])
    for other in maps[1:]:
        common = {k: v for k, v in common.items() if other.get(k) == v}
    return dict(sorted(common.items()))


def group_payload(members: Iterable[dict[str, Any]], group_labels: dict[str, str], *, receiver: str,
                  external_url: str, max_alerts: int = 0) -> dict[str, Any]:
    """One Alertmanager webhook v4 notification for a group's members (pure)."""
    alerts = sort_alerts(members)
    truncated = 0
    if max_alerts and len(alerts) > max_alerts:
        truncated = len(alerts) - max_alerts
        alerts = alerts[:max_alerts]
    firing = any(a["status"] == "firing" for a in alerts)
    group = dict(sorted(group_labels.items()))
    return {
        "receiver": receiver,
        "status": "firing" if firing else "resolved",
        "alerts": alerts,
        "groupLabels": group,
        "commonLabels": _common([a["labels"] for a in alerts]),
        "commonAnnotations": _common([a["annotations"] for a in alerts]),
        "externalURL": external_url,
        "version": "4",
        "groupKey": "{}:" + label_set_string(group),
        "truncatedAlerts": truncated,
    }


def alertmanager_payload(alert: dict, receiver: str = "raftctl", external_url: str = "", *,
                         cluster: str = "raftctl", instance: str | None = None,
                         generator_url: str | None = None,
                         group_by: Iterable[str] = DEFAULT_GROUP_BY, runbook_base: str = RUNBOOK_BASE) -> dict:
    """One alert event alone in its group, as an Alertmanager webhook v4 notification."""
    labels = alert_labels(alert, cluster, instance or default_instance(external_url or None))
    member = _am_alert(alert, labels, generator_url if generator_url is not None else external_url, runbook_base)
    return group_payload([member], _group_labels(labels, tuple(group_by)), receiver=receiver,
                         external_url=external_url)


def _group_labels(labels: dict[str, str], group_by: tuple[str, ...]) -> dict[str, str]:
    if "..." in group_by:
        return dict(labels)
    return {name: labels[name] for name in group_by if name in labels}


class _Attempt:
    DELIVERED, RETRY, TIMEOUT, REJECTED = "delivered", "retry", "timeout", "rejected"


class WebhookSink(Sink):
    """POST alert groups to an HTTP(S) endpoint, spooled on disk until delivered."""

    name = "webhook"
    spec_syntax = "webhook:URL[?OPTIONS]"
    description = "POST alert groups in Alertmanager webhook v4 format to URL; spooled until delivered"
    accepts_samples = False  # a sample per second must never crowd alerts out of the queue
    emits_alerts_inline = True  # emit_alert only appends to the spool: no worker queue to overflow
    spec_keeps_unknown_query = True
    spec_options: ClassVar[Mapping[str, Callable[[str], Any]]] = {
        "receiver": opt_str, "group_by": opt_list, "cluster": opt_str, "instance": opt_str,
        "generator_url": opt_str, "external_url": opt_str, "spool": opt_str, "runbook_base": opt_str,
        "max_age": opt_float(0.0, above=True), "max_events": opt_int(1), "max_alerts": opt_int(0),
        "timeout": opt_float(0.0, above=True), "backoff": opt_float(0.0, above=True),
        "max_backoff": opt_float(0.0, above=True), "drain": opt_float(0.0),
    }

    def __init__(self, arg: str | None = None, secret: str | None = None, timeout: float = 5.0,
                 backoff: float = 0.5, max_backoff: float = 60.0, receiver: str = "raftctl",
                 external_url: str | None = None, generator_url: str | None = None,
                 group_by: Iterable[str] = DEFAULT_GROUP_BY, cluster: str = "raftctl",
                 instance: str | None = None, spool: str | os.PathLike | None = None,
                 max_age: float = 86_400.0, max_events: int = 10_000, max_alerts: int = 0,
                 drain: float = 2.0, persist: bool = True, runbook_base: str = RUNBOOK_BASE,
                 **options: Any) -> None:
        super().__init__(arg, **options)
        if not arg:
            raise ValueError("webhook sink needs a URL: webhook:http://HOST:PORT/PATH")
        if not isinstance(runbook_base, str):
            raise ValueError(f"webhook sink runbook_base must be a URL or path prefix, got {runbook_base!r}")
        self.runbook_base = runbook_base
        parts = parse_sink_url("webhook", arg, safe_url(arg))
        for label, value in (("timeout", timeout), ("backoff", backoff), ("max_backoff", max_backoff),
                             ("max_age", max_age), ("drain", drain)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"webhook sink {label} must be a number >= 0, got {value!r}")
        for label, value in (("timeout", timeout), ("max_age", max_age)):
            if value <= 0:
                raise ValueError(f"webhook sink {label} must be > 0, got {value!r}")
        for label, value, low in (("max_events", max_events, 1), ("max_alerts", max_alerts, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"webhook sink {label} must be an integer >= {low}, got {value!r}")
        group = tuple(group_by)
        if not group or not all(isinstance(g, str) and g for g in group):
            raise ValueError(f"webhook sink group_by must name labels, got {group_by!r}")
        if not isinstance(cluster, str) or not cluster:
            raise ValueError("webhook sink cluster must be a non-empty name")
        self.url = arg
        self.secret = secret if secret is not None else os.environ.get(SECRET_ENV) or None
        self.timeout = float(timeout)
        self.backoff = float(backoff)
        self.max_backoff = max(float(max_backoff), self.backoff)
        self.receiver = receiver
        self.group_by = group
        self.cluster = cluster
        self.max_alerts = max_alerts
        self.drain = float(drain)
        self._instance_option = instance
        self._external_option = external_url
        self._generator_option = generator_url
        self._identity: tuple[str, str, str] | None = None  # (instance, external, generator), fixed at first use
        spool_dir = Path(spool).expanduser() if spool else None
        if spool_dir is not None and not spool_dir.is_absolute():
            spool_dir = Path.cwd() / spool_dir
        self._spool_dir = spool_dir
        self._persist = persist
        self.max_age = float(max_age)
        self.max_events = max_events
        self._spool: Spool | None = None
        # counters: alert events (a notification may report several), and notifications
        self.delivered = 0
        self.expired = 0
        self.rejected = 0
        self.duplicates = 0
        self.notifications_delivered = 0
        self.attempts_failed = 0
        self.last_error: str | None = None
        self._outcomes: dict[str, str] = {}
        self._groups: dict[tuple[tuple[str, str], ...], dict[str, dict[str, Any]]] = {}
        self._batch: list[dict] | None = None  # events held until end_batch() (a `raftctl alerts` run)
        self._cond = threading.Condition()
        self._closing = False
        self._drain_deadline = 0.0
        self._thread: threading.Thread | None = None
        self._opener: Any = None
        self._loopback = is_loopback_host(parts.hostname)
        self._expired_logged = 0

    # ------------------------------------------------------------------ identity

    def identity(self) -> tuple[str, str, str]:
        """(instance, externalURL, generatorURL), fixed the first time an alert needs them."""
        if self._identity is None:
            dashboard = without_userinfo(self.dashboard_url or dashboard_url_fallback())
            external = (self._external_option or dashboard).rstrip("/")
            generator = self._generator_option or dashboard.rstrip("/") + "/"
            instance = self._instance_option or default_instance(dashboard)
            self._identity = (instance, external, generator)
        return self._identity

    def labels_for(self, alert: dict) -> dict[str, str]:
        return alert_labels(alert, self.cluster, self.identity()[0])

    def key_for(self, alert: dict) -> str:
        """The idempotency key of one alert event."""
        labels = self.labels_for(alert)
        status = "resolved" if alert.get("status") == "resolved" else "firing"
        return idempotency_key(fingerprint(labels), go_time(alert.get("started_at")), status)

    # ------------------------------------------------------------------ lifecycle

    def open(self) -> None:
        import urllib.request  # imported here so listing/building sinks stays light

        with self._cond:
            if self._thread is not None:
                return
            handlers = [urllib.request.ProxyHandler({})] if self._loopback else []
            self._opener = urllib.request.build_opener(*handlers)  # a local receiver never goes via a proxy
            directory = (self._spool_dir or default_state_dir()) if self._persist else None
            name = "webhook-spool-" + hashlib.sha256(self.url.encode()).hexdigest()[:16] + ".jsonl"
            self._spool = Spool(directory, name, max_events=self.max_events, max_age=self.max_age)
            self._spool.open()
            self._closing = False
            self._thread = threading.Thread(target=self._deliver_loop, daemon=True,
                                            name=f"raftctl-webhook-{safe_url(self.url)}")
            self._thread.start()
            self._cond.notify_all()

    def close(self) -> None:
        """Spool a held batch, then try to deliver what is pending for up to ``drain`` s; the
        rest stays spooled."""
        self.end_batch()
        with self._cond:
            thread = self._thread
            if thread is None:
                return
            self._closing = True
            self._drain_deadline = time.monotonic() + self.drain
            self._cond.notify_all()
        thread.join(self.drain + self.timeout * 2 + 1.0)
        with self._cond:
            self._thread = None
            if self._spool is not None and not thread.is_alive():
                self._spool.close()

    # ------------------------------------------------------------------ events

    def prime(self, alerts: Iterable[dict]) -> None:
        """Make firing ``alerts`` members of their groups without notifying, and start a batch
        (``begin_batch``) that ``close()`` ends: the cron path tells a fresh sink what the
        receiver already knows is firing, then hands it one run's events, which become one
        notification per changed group."""
        with self._cond:
            for alert in alerts:
                labels = self.labels_for(alert)
                member = _am_alert(dict(alert, status="firing"), labels, self.identity()[2], self.runbook_base)
                group = tuple(sorted(_group_labels(labels, self.group_by).items()))
                self._groups.setdefault(group, {})[member["fingerprint"]] = member
            self.begin_batch()

    def begin_batch(self) -> None:
        """Hold the events ``emit_alert`` gets until ``end_batch()`` (or ``close()``)."""
        with self._cond:
            if self._batch is None:
                self._batch = []

    def end_batch(self) -> None:
        """Spool the held events as one change (see ``emit_alerts``)."""
        with self._cond:
            held, self._batch = self._batch, None
        if held:
            self.emit_alerts(held)

    def emit_alert(self, alert: dict) -> None:
        with self._cond:
            if self._batch is not None:
                self._batch.append(alert)
                return
        self.emit_alerts([alert])

    def emit_alerts(self, alerts: Iterable[dict]) -> None:
        """One sample's alert events: every group they change gets one notification carrying
        the group's state after all of them, spooled before this returns.

        Its idempotency key names the events it reports that were never queued before; an event
        already spooled or delivered (a cron run repeating one it could not confirm) still
        updates its group but is never reported again, and a group with nothing new is not
        notified. Groups are notified in the order the events first touch them.
        """
        instance, external, generator = self.identity()
        changes: dict[tuple[tuple[str, str], ...], tuple[dict[str, str], list[str]]] = {}
        with self._cond:
            if self._spool is None:
                self.open()  # Condition's lock is re-entrant
            spool = self._spool
            assert spool is not None
            for alert in alerts:
                labels = alert_labels(alert, self.cluster, instance)
                member = _am_alert(alert, labels, generator, self.runbook_base)
                group_labels = _group_labels(labels, self.group_by)
                group = tuple(sorted(group_labels.items()))
                key = idempotency_key(member["fingerprint"], member["startsAt"], member["status"])
                self._groups.setdefault(group, {})[member["fingerprint"]] = member
                _labels, new_keys = changes.setdefault(group, (group_labels, []))
                if key in new_keys or spool.seen(key) is not None:
                    self.duplicates += 1
                    self._outcomes.setdefault(key, spool.seen(key) or "pending")
                else:
                    new_keys.append(key)
            for group, (group_labels, new_keys) in changes.items():
                members = self._groups[group]
                if new_keys:
                    payload = group_payload(list(members.values()), group_labels, receiver=self.receiver,
                                            external_url=external, max_alerts=self.max_alerts)
                    payload["idempotencyKey"] = key = notification_key(new_keys)
                    spool.add(key, payload, events=new_keys)
                    for event_key in new_keys:
                        self._outcomes[event_key] = "pending"
                # Alertmanager drops resolved alerts from a group once their resolution is notified
                for fp in [fp for fp, m in members.items() if m["status"] == "resolved"]:
                    del members[fp]
                if not members:
                    del self._groups[group]
            self._cond.notify_all()

    def outcome(self, alert: dict) -> str | None:
        """What became of one alert event: delivered, pending, expired, rejected or None."""
        key = self.key_for(alert)
        with self._cond:
            if self._spool is not None:
                seen = self._spool.seen(key)
                if seen is not None:
                    return seen
            return self._outcomes.get(key)

    def wait_delivered(self, timeout: float) -> bool:
        """Wait until the spool is empty (a held batch is spooled first); False on timeout."""
        self.end_batch()
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._spool is not None and self._spool.pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.1))
        return True

    # ------------------------------------------------------------------ delivery

    def _next_record(self) -> SpoolRecord | None:
        """Under the lock: wait for a record due now; None when the thread should stop."""
        while True:
            spool = self._spool
            record = spool.head() if spool is not None else None
            now = time.monotonic()
            if self._closing and (record is None or now >= self._drain_deadline):
                return None
            if record is None:
                self._cond.wait()
                continue
            if spool is not None and time.time() - record.created > self.max_age:
                spool.finish(record.key, "expired")
                self._record_outcome(record, "expired")
                self.expired += len(record.events)
                self._cond.notify_all()
                continue
            wait = record.next_at - now
            if wait <= 0:
                return record
            if self._closing:
                wait = min(wait, self._drain_deadline - now)
            self._cond.wait(max(0.0, wait))

    def _deliver_loop(self) -> None:
        while True:
            with self._cond:
                record = self._next_record()
                if record is None:
                    self._log_expired()
                    self._sync_spool()
                    return
                self._log_expired()
                timeout = min(self.timeout * (2 ** record.timeouts), max(self.timeout, self.max_backoff))
            self._sync_spool()
            result, error = self._attempt(record, timeout)
            with self._cond:
                spool = self._spool
                if spool is None:
                    return
                if result == _Attempt.DELIVERED:
                    spool.finish(record.key, "delivered")
                    self._record_outcome(record, "delivered")
                    self.delivered += len(record.events)
                    self.notifications_delivered += 1
                elif result == _Attempt.REJECTED:
                    spool.finish(record.key, "rejected")
                    self._record_outcome(record, "rejected")
                    self.rejected += len(record.events)
                    log.warning("webhook %s refused %s: %s; not retried", safe_url(self.url), record.key, error)
                else:
                    self.attempts_failed += 1
                    record.attempts += 1
                    if result == _Attempt.TIMEOUT:
                        record.timeouts += 1  # it may have arrived: wait longer for the answer next time
                    delay = min(self.max_backoff, self.backoff * (2 ** (record.attempts - 1)))
                    record.next_at = time.monotonic() + delay
                    if record.attempts == 1 or record.attempts % 10 == 0:
                        log.warning("webhook %s: delivery failed (%s), %d notification(s) pending; "
                                    "retrying in %.1f s", safe_url(self.url), error, len(spool.pending), delay)
                self.last_error = error if result != _Attempt.DELIVERED else self.last_error
                self._cond.notify_all()

    def _record_outcome(self, record: SpoolRecord, outcome: str) -> None:
        self._outcomes[record.key] = outcome
        for event_key in record.events:
            self._outcomes[event_key] = outcome

    def _sync_spool(self) -> None:
        """fsync what emit_alert appended, off the lock so emitting never waits for the disk."""
        with self._cond:
            fd = self._spool.sync_handle() if self._spool is not None else None
        if fd is None:
            return
        try:
            os.fsync(fd)
        except OSError as err:
            log.warning("webhook spool: fsync failed (%s)", err.strerror or err)
        finally:
            os.close(fd)

    def _log_expired(self) -> None:
        if self.expired > self._expired_logged:
            log.warning("webhook %s: %d event(s) older than %.0f s dropped undelivered (total %d)",
                        safe_url(self.url), self.expired - self._expired_logged, self.max_age, self.expired)
            self._expired_logged = self.expired

    def _attempt(self, record: SpoolRecord, timeout: float) -> tuple[str, str | None]:
        import urllib.error
        import urllib.request

        body = orjson.dumps(record.payload)
        headers = {"Content-Type": "application/json", "User-Agent": "raftctl-webhook/2",
                   IDEMPOTENCY_HEADER: record.key}
        if self.secret:
            digest = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            headers[SIGNATURE_HEADER] = f"sha256={digest}"
        target, authorization = split_credentials(self.url)  # user:pw@ in the URL: HTTP Basic auth
        if authorization:
            headers["Authorization"] = authorization
        request = urllib.request.Request(target, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=timeout) as response:
                response.read()
            return _Attempt.DELIVERED, None
        except urllib.error.HTTPError as exc:
            if exc.code >= 500 or exc.code in (408, 429):
                return _Attempt.RETRY, f"HTTP {exc.code}"
            return _Attempt.REJECTED, f"HTTP {exc.code}"
        except urllib.error.URLError as exc:  # not sent: refused, unreachable, connect timeout
            return _Attempt.RETRY, str(getattr(exc, "reason", exc))
        except (TimeoutError, ConnectionError) as exc:  # sent, no answer in time (or cut)
            return _Attempt.TIMEOUT, f"no answer within {round(timeout, 2):g} s" if isinstance(exc, TimeoutError) else str(exc)
        except OSError as exc:
            return _Attempt.RETRY, str(exc)

    # ------------------------------------------------------------------ figures

    @property
    def sent(self) -> int:
        return self.delivered

    @property
    def failed(self) -> int:
        """Events given up on (expired, refused, pushed out of a full spool)."""
        overflow = self._spool.overflowed_events if self._spool is not None else 0
        return self.expired + self.rejected + overflow

    def stats(self) -> dict[str, Any]:
        """Counts of alert events (``delivered``, ``pending``, ``expired``, ...; a notification
        may report several) and of notifications (``notifications_*``)."""
        with self._cond:
            spool = self._spool
            pending = spool.events_pending() if spool is not None else 0
            overflow = spool.overflowed_events if spool is not None else 0
            return {"url": safe_url(self.url), "delivered": self.delivered, "pending": pending,
                    "expired": self.expired + overflow, "rejected": self.rejected,
                    "duplicates_skipped": self.duplicates, "spool_overflowed": overflow,
                    "notifications_delivered": self.notifications_delivered,
                    "notifications_pending": len(spool.pending) if spool is not None else 0,
                    "attempts_failed": self.attempts_failed, "failed": self.failed,
                    "sent": self.delivered, "last_error": self.last_error,
                    "spool": str(spool.path) if spool is not None and (spool.persistent or spool.kept_on_disk)
                    else None}

    def __repr__(self) -> str:
        return f"WebhookSink({safe_url(self.url)!r})"


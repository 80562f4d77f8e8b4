"""``webhook:URL`` sink: alert events POSTed in the Alertmanager webhook (version 4) format.

Anything that accepts Alertmanager notifications (a webhook receiver, a chat bridge) accepts
these unchanged. Samples are ignored. Delivery has a per-request timeout and a bounded number of
retries with exponential back-off; with a shared secret the body is signed with HMAC-SHA256 in
the ``X-Raftctl-Signature: sha256=<hex>`` header. The secret comes from the ``secret`` option or
the ``RAFTCTL_WEBHOOK_SECRET`` environment variable (kept off command lines).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import threading
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import orjson

from raftctl.sinks.base import Sink

__all__ = ["WebhookSink", "alertmanager_payload", "rfc3339", "SIGNATURE_HEADER"]

SIGNATURE_HEADER = "X-Raftctl-Signature"
SECRET_ENV = "RAFTCTL_WEBHOOK_SECRET"
_ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's "not ended" endsAt
log = logging.getLogger(__name__)


def rfc3339(timestamp: float | None) -> str:
    """Unix seconds -> ``2025-11-28T07:16:00.123Z`` (None -> Alertmanager's zero time)."""
    if timestamp is None:
        return _ZERO_TIME
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alertmanager_payload(alert: dict, receiver: str = "raftctl", external_url: str = "") -> dict:
    """One alert event as an Alertmanager webhook v4 notification."""
    labels = {"alertname": alert["name"], "severity": alert["severity"]}
    labels.update({str(k): str(v) for k, v in (alert.get("labels") or {}).items()})
    annotations = {"summary": alert["message"], "description": alert["message"]}
    return {
        "version": "4",
        "groupKey": "{}:{alertname=\"%s\"}" % alert["name"],
        "truncatedAlerts": 0,
        "status": alert["status"],
        "receiver": receiver,
        "groupLabels": {"alertname": alert["name"]},
        "commonLabels": dict(labels),
        "commonAnnotations": dict(annotations),
        "externalURL": external_url,
        "alerts": [{
            "status": alert["status"],
            "labels": labels,
            "annotations": annotations,
            "startsAt": rfc3339(alert["started_at"]),
            "endsAt": rfc3339(alert.get("resolved_at")),
            "generatorURL": external_url,
            "fingerprint": alert["fingerprint"],
        }],
    }


class _Retryable(Exception):
    pass


class WebhookSink(Sink):
    """POST alert events (firing and resolved) to an HTTP(S) endpoint."""

    name = "webhook"
    spec_syntax = "webhook:URL"
    description = "POST alert events in Alertmanager webhook v4 format to URL"
    accepts_samples = False  # a sample per second must never crowd alerts out of the queue

    def __init__(self, arg: str | None = None, secret: str | None = None, timeout: float = 2.0,
                 retries: int = 3, backoff: float = 0.2, max_backoff: float = 5.0,
                 receiver: str = "raftctl", external_url: str = "", **options: Any) -> None:
        super().__init__(arg, **options)
        if not arg:
            raise ValueError("webhook sink needs a URL: webhook:http://HOST:PORT/PATH")
        parts = urlsplit(arg)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"webhook sink URL must be http:// or https:// with a host, got {arg!r}")
        try:
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:
            raise ValueError(f"webhook sink URL has a bad port: {arg!r}") from exc
        for label, value in (("timeout", timeout), ("backoff", backoff), ("max_backoff", max_backoff)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"webhook sink {label} must be a number >= 0, got {value!r}")
        if timeout <= 0:
            raise ValueError(f"webhook sink timeout must be > 0, got {timeout!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"webhook sink retries must be an integer >= 0, got {retries!r}")
        self.url = arg
        self.secret = secret if secret is not None else os.environ.get(SECRET_ENV) or None
        self.timeout = float(timeout)
        self.retries = retries
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.receiver = receiver
        self.external_url = external_url
        self.sent = 0
        self.failed = 0
        self.attempts_failed = 0
        self.last_error: str | None = None
        self._closing = threading.Event()
        self._opener = None
        self._loopback = _is_loopback(parts.hostname)

    def open(self) -> None:
        import urllib.request  # imported here so listing/building sinks stays light

        self._closing.clear()
        # a local receiver must never be routed through an environment proxy
        handlers = [urllib.request.ProxyHandler({})] if self._loopback else []
        self._opener = urllib.request.build_opener(*handlers)

    def emit_alert(self, alert: dict) -> None:
        body = orjson.dumps(alertmanager_payload(alert, self.receiver, self.external_url))
        headers = {"Content-Type": "application/json", "User-Agent": "raftctl-webhook/1"}
        if self.secret:
            digest = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            headers[SIGNATURE_HEADER] = f"sha256={digest}"
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                self._post(body, headers)
                self.sent += 1
                return
            except _Retryable as exc:
                self.attempts_failed += 1
                self.last_error = str(exc)
            except Exception as exc:  # 4xx and the like: retrying will not help
                self.attempts_failed += 1
                self.last_error = str(exc)
                break
            if attempt < self.retries and self._closing.wait(min(delay, self.max_backoff)):
                break  # closing: give up instead of sleeping through shutdown
            delay *= 2
        self.failed += 1
        log.warning("webhook %s: giving up on %s %s: %s", self.url, alert["status"], alert["name"],
                    self.last_error)

    def _post(self, body: bytes, headers: dict[str, str]) -> None:
        import urllib.error
        import urllib.request

        if self._opener is None:
            self.open()
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            if exc.code >= 500 or exc.code == 429:
                raise _Retryable(f"HTTP {exc.code}") from exc
            raise RuntimeError(f"HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError) as exc:  # refused, reset, timed out
            raise _Retryable(str(getattr(exc, "reason", exc))) from exc

    def close(self) -> None:
        self._closing.set()

    def stats(self) -> dict[str, Any]:
        return {"url": self.url, "sent": self.sent, "failed": self.failed,
                "attempts_failed": self.attempts_failed, "last_error": self.last_error}

    def __repr__(self) -> str:
        return f"WebhookSink({self.url!r})"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

"""Alertmanager's data model, as the webhook and alertmanager sinks speak it.

Pure helpers, no I/O: an alert event's label set (``alertname``, ``severity``, ``cluster``,
``instance`` and the alert's own labels such as ``shard``), its annotations (``summary``,
``description``, ``runbook_url``), its fingerprint computed exactly as
Alertmanager computes it (prometheus/common ``model.LabelSet.Fingerprint``: FNV-64a over the
label pairs sorted by name, each name and value followed by the separator byte 0xff, printed
as 16 hex digits), the label-set string used in a ``groupKey``, Go's RFC 3339 time format and
Alertmanager's order of alerts within a notification.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from raftctl.core.alerts import ALERT_RUNBOOKS

__all__ = [
    "RUNBOOK_BASE",
    "ZERO_TIME",
    "alert_annotations",
    "alert_labels",
    "default_instance",
    "fingerprint",
    "go_time",
    "idempotency_key",
    "label_set_string",
    "notification_key",
    "sort_alerts",
    "without_userinfo",
]

ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time: "not ended"
_FNV64_OFFSET = 14695981039346656037
_FNV64_PRIME = 1099511628211
_MASK64 = (1 << 64) - 1
_SEPARATOR = 0xFF


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of a label set: FNV-64a, 16 lower-case hex digits."""
    digest = _FNV64_OFFSET
    for name in sorted(labels):
        for chunk in (name.encode(), labels[name].encode()):
            for byte in chunk:
                digest = ((digest ^ byte) * _FNV64_PRIME) & _MASK64
            digest = ((digest ^ _SEPARATOR) * _FNV64_PRIME) & _MASK64
    return f"{digest:016x}"


def _go_quote(value: str) -> str:
    """Go's ``%q`` for the strings label values hold (printable text, common escapes)."""
    out = ['"']
    escapes = {'"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n",
               "\r": "\\r", "\t": "\\t", "\v": "\\v"}
    for ch in value:
        if ch in escapes:
            out.append(escapes[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def label_set_string(labels: Mapping[str, str]) -> str:
    """``model.LabelSet.String()``: ``{alertname="x", cluster="y"}``, names sorted."""
    return "{" + ", ".join(f"{name}={_go_quote(labels[name])}" for name in sorted(labels)) + "}"


def go_time(timestamp: float | None) -> str:
    """Unix seconds as Go marshals a ``time.Time`` in UTC (RFC 3339, trailing zeros trimmed).

    ``None`` is Go's zero time, which Alertmanager sends as the ``endsAt`` of a firing alert.
    """
    if timestamp is None:
        return ZERO_TIME
    micros = round(timestamp * 1_000_000)
    seconds, fraction = divmod(micros, 1_000_000)
    text = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        text += "." + f"{fraction:06d}".rstrip("0")
    return text + "Z"


def without_userinfo(url: str) -> str:
    """``http://user:pw@host:8080/x`` -> ``http://host:8080/x``: credentials never go into alerts."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def default_instance(dashboard_url: str | None) -> str:
    """The ``instance`` label: the dashboard's ``host:port`` when known, else this host's name."""
    if dashboard_url:
        parts = urlsplit(dashboard_url)
        if parts.netloc:
            return parts.netloc.rpartition("@")[2]  # never a user:password part
    return socket.gethostname() or "localhost"


def alert_labels(alert: Mapping[str, Any], cluster: str, instance: str) -> dict[str, str]:
    """The label set of a raftctl alert event as sent to Alertmanager."""
    labels = {"alertname": str(alert["name"]), "severity": str(alert.get("severity") or "warning"),
              "cluster": cluster, "instance": instance}
    own = alert.get("labels") or {}
    labels.update({str(k): str(v) for k, v in own.items() if str(k) not in ("alertname", "severity")})
    return {name: value for name, value in labels.items() if value != ""}  # empty = absent, as in Prometheus


RUNBOOK_BASE = "docs/runbooks/"  # as the shipped Prometheus rules' runbook_url: a path in the repository


def alert_annotations(alert: Mapping[str, Any], runbook_base: str = RUNBOOK_BASE) -> dict[str, str]:
    """``summary`` and ``description`` from the alert's message, and ``runbook_url``:
    ``runbook_base`` followed by the alert's runbook file (core/alerts.py ``ALERT_RUNBOOKS``)."""
    message = str(alert.get("message") or alert.get("name"))
    annotations = {"summary": message, "description": message}
    runbook = ALERT_RUNBOOKS.get(str(alert.get("name")))
    if runbook is not None:
        annotations["runbook_url"] = f"{runbook_base}{runbook}.md"
    return annotations


def idempotency_key(fingerprint_hex: str, starts_at: str, status: str) -> str:
    """One key per event: the same firing (or resolution) of the same alert always gets it."""
    return f"{fingerprint_hex}:{starts_at}:{status}"


MAX_KEY_CHARS = 1024  # an Idempotency-Key header stays well within any server's header limit


def notification_key(event_keys: Iterable[str]) -> str:
    """The idempotency key of a notification reporting ``event_keys`` (in order).

    One event: its own key. Several (the alerts of one group that changed in one sample): their
    keys joined by commas, or, past ``MAX_KEY_CHARS``, as many as fit followed by ``+N`` for
    the rest. A notification key is unique because no event is ever reported by two
    notifications, and every key holds its first event's whole key; event keys hold no comma.
    """
    keys = list(event_keys)
    if not keys:
        raise ValueError("a notification reports at least one event")
    joined = ",".join(keys)
    if len(keys) == 1 or len(joined) <= MAX_KEY_CHARS:
        return joined
    shown: list[str] = []
    used = 0
    for index, key in enumerate(keys):
        rest = f",+{len(keys) - index - 1}"
        if shown and used + 1 + len(key) + len(rest) > MAX_KEY_CHARS:
            break
        shown.append(key)
        used += len(key) + (1 if len(shown) > 1 else 0)
    return ",".join(shown) + f",+{len(keys) - len(shown)}"


def _labels_before(left: Mapping[str, str], right: Mapping[str, str]) -> bool:
    """``model.LabelSet.Before``: compare sorted (name, value) pairs, then length."""
    left_names, right_names = sorted(left), sorted(right)
    for i in range(min(len(left_names), len(right_names))):
        if left_names[i] != right_names[i]:
            return left_names[i] < right_names[i]
        if left[left_names[i]] != right[right_names[i]]:
            return left[left_names[i]] < right[right_names[i]]
    return len(left_names) < len(right_names)


def sort_alerts(alerts: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Alertmanager's order in a notification (``types.AlertSlice``): by ``job``, then
    ``instance`` (alerts carrying the label first), then by the whole label set."""
    import functools

    def compare(a: dict[str, Any], b: dict[str, Any]) -> int:
        la, lb = a["labels"], b["labels"]
        for key in ("job", "instance"):
            if key not in la and key not in lb:
                continue
            if key not in la:
                return 1
            if key not in lb:
                return -1
            if la[key] != lb[key]:
                return -1 if la[key] < lb[key] else 1
        if _labels_before(la, lb):
            return -1
        if _labels_before(lb, la):
            return 1
        return 0

    return sorted(alerts, key=functools.cmp_to_key(compare))

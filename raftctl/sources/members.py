"""What the two HTTP sources (``etcd``, ``raftctl``) share: members by name and URL, a clock that
starts with the source, one poll at a time, and the two ways a member gives no answer."""

from __future__ import annotations

import re
import threading
from typing import Any, Iterable, Protocol

from urllib.parse import urlsplit

from raftctl.core.source import Poll, SourceError

__all__ = ["CommitGrowth", "MemberSource", "Silent", "Stale", "member_url"]


def member_url(raw: str, what: str, default_port: int | None = None, user_hint: str = "") -> str:
    """``HOST:PORT`` or ``http://HOST:PORT`` -> ``http://HOST:PORT`` (``[v6]`` bracketed; the
    port ``default_port`` when left out, required when None); SourceError naming ``what`` (say,
    "an etcd client URL") otherwise, never echoing a password (``user_hint``: where a user goes)."""
    text = raw.strip()
    shown = re.sub(r"(//)?[^/@]*@", lambda m: (m.group(1) or "") + "***@", text, count=1)  # never echo a password
    text = text if "://" in text else "http://" + text
    parts = urlsplit(text)
    if parts.scheme == "https":
        raise SourceError(f"{shown}: https (TLS) endpoints are not supported yet; use http")
    if parts.scheme != "http":
        raise SourceError(f"{shown}: {what} must be http://HOST:PORT")
    try:
        port = parts.port or default_port
    except ValueError:
        raise SourceError(f"{shown}: bad port") from None
    if not parts.hostname or port is None:
        missing = "no host in the URL" if not parts.hostname else "no port in the URL"
        raise SourceError(f"{shown}: {missing}; give http://HOST:PORT ({what})")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise SourceError(f"{shown}: give only http://HOST:PORT (no path, query or user"
                          f"{'; ' + user_hint if parts.username and user_hint else ''})")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"http://{host}:{port}"


class Silent(Exception):
    """A member gave no usable answer: ``reason`` is one of ``NO_ANSWER_REASONS``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Stale(Exception):
    """A kept-alive connection the member closed since (it was killed or restarted): ask again
    on a new one."""


class CommitGrowth:
    """Entries the cluster committed since the source first heard from it: the highest commit
    index any member reported, less that of the first poll with an answer (``ClientView``
    counts from the source clock's zero; what a cluster committed before it was watched is no
    throughput of this watch). It never goes down: a member that lags or restarts lowers no
    count. ``None`` until a member answered."""

    __slots__ = ("_before", "value")

    def __init__(self) -> None:
        self._before: int | None = None
        self.value: int | None = None

    def update(self, commit_indexes: Iterable[Any]) -> int | None:
        """Fold in one poll's commit indexes (a report's word: anything but an int is skipped)."""
        highest = max((c for c in commit_indexes if type(c) is int and c >= 0), default=None)
        if highest is not None:
            if self._before is None:
                self._before = highest
            grown = highest - self._before
            if self.value is None or grown > self.value:
                self.value = grown
        return self.value


class _Named(Protocol):
    name: str
    url: str


class MemberSource:
    """Base of a source polling ``_members`` (objects with ``name`` and ``url``) over HTTP.
    Subclasses set ``name``, build ``_members`` and define ``_poll`` and ``_shutdown``."""

    name = "members"
    _members: list[Any]

    def __init__(self, clock: Any) -> None:
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._closed = False

    @property
    def now(self) -> float:
        """Seconds since the source was built (its clock, the monotonic one unless given)."""
        return float(self._clock() - self._started)

    def members(self) -> list[str]:
        return [m.name for m in self._members]

    def member_urls(self) -> dict[str, str]:
        """``{name: url}``; a raftctl member whose URL no node has announced yet maps to None."""
        return {m.name: m.url for m in self._members}

    def poll(self, since: float | None = None) -> Poll:
        if self._closed:
            raise RuntimeError(f"this {self.name} source is closed")
        with self._lock:  # one poll at a time: the per-member state is the poll's
            return self._poll(since)

    def _poll(self, since: float | None) -> Poll:
        raise NotImplementedError

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._shutdown()

    def _shutdown(self) -> None:
        """Stop the pools and close the connections (once)."""

    def __enter__(self) -> "MemberSource":
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()

"""The HTTP side of the etcd source: its client URLs and one keep-alive connection per member,
every call under the poll's deadline (``Silent`` with a reason when there is no usable answer)."""

from __future__ import annotations

import http.client
import json
import time
from urllib.parse import urlsplit

from raftctl.core.source import SourceError
from raftctl.sources.members import Silent, Stale, member_url

__all__ = ["Connection", "grpc_error", "parse_urls"]

_JSON_HEADERS = {"Content-Type": "application/json"}


def parse_urls(arg: str) -> list[str]:
    """``"http://a:2379,b:2379"`` -> normalized ``["http://a:2379", "http://b:2379"]``; SourceError if bad."""
    if not arg or not arg.strip():
        raise SourceError("the etcd source needs at least one client URL: "
                          "--source etcd:http://127.0.0.1:2379[,URL...]")
    urls: list[str] = []
    for raw in arg.split(","):
        text = raw.strip()
        if not text:
            raise SourceError(f"empty URL in etcd:{arg} (URLs are separated by single commas)")
        url = member_url(text, "an etcd client URL", default_port=2379,
                         user_hint="an etcd user goes in RAFTCTL_ETCD_USER and RAFTCTL_ETCD_PASSWORD")
        if url not in urls:
            urls.append(url)
    return urls


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 2379


class Connection:
    """One keep-alive HTTP/1.1 connection to one member, every call under a deadline."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.host, self.port = _host_port(url)
        self._conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(self, method: str, path: str, deadline: float, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> bytes:
        """The body of a 200 answer; Silent otherwise (the connection is dropped on any failure).

        A kept-alive connection the member closed since (it was killed or restarted) is retried
        once on a new one, so a dead member reads as ``refused``, not as a broken connection.
        """
        reused = self._conn is not None
        try:
            return self._request(method, path, deadline, body, headers)
        except Stale:
            if not reused:
                raise Silent("error", f"{path}: the connection closed without an answer") from None
        try:
            return self._request(method, path, deadline, body, headers)
        except Stale:
            raise Silent("error", f"{path}: the connection closed without an answer") from None

    def _request(self, method: str, path: str, deadline: float, body: bytes | None,
                 headers: dict[str, str] | None = None) -> bytes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Silent("timeout", f"no answer to {path} before the poll timeout")
        try:
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=remaining)
                self._conn.connect()
            sock = self._conn.sock
            if sock is not None:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
            sent = dict(_JSON_HEADERS) if body is not None else {}
            if headers:
                sent.update(headers)
            self._conn.request(method, path, body=body, headers=sent)
            resp = self._conn.getresponse()
            data = resp.read()
            status = resp.status
            if resp.will_close:
                self.close()
        except ConnectionRefusedError:
            self.close()
            raise Silent("refused", "connection refused") from None
        except TimeoutError:
            self.close()
            raise Silent("timeout", f"no answer to {path} before the poll timeout") from None
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.close()
            raise Stale() from None
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise Silent("error", f"{path}: {type(exc).__name__}: {exc}".rstrip(": ")) from None
        if status != 200:
            said = grpc_error(data)  # the gateway's JSON error: etcd's own words ("etcdserver: ...")
            raise Silent("error", f"{path} answered HTTP {status}" + (f": {said}" if said else ""))
        return data


def grpc_error(body: bytes) -> str | None:
    """``error`` (else ``message``) of a gRPC gateway's error body, one short line; None for another body."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    said = (doc.get("error") or doc.get("message")) if isinstance(doc, dict) else None
    return " ".join(said.split())[:200] if isinstance(said, str) and said.strip() else None

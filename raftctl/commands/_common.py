"""Helpers shared by the command modules: errors, URL handling, HTTP, output streams.

Kept free of heavy imports so ``raftctl --help`` stays fast.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

DEFAULT_URL = "http://127.0.0.1:8080"
URL_ENV = "RAFTCTL_URL"
HTTP_TIMEOUT_S = 5.0


class CliError(Exception):
    """A failure the user can act on: printed as one line on stderr, then exit ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class ServerUnreachable(CliError):
    """The server did not answer (refused, timed out, DNS failure)."""


class BadAnswer(CliError):
    """The server answered, but not with the document we expected."""


# Credentials given in a --url (http://user:pw@host): kept here, keyed by the URL without them,
# and sent as HTTP Basic auth. The URL the commands see, print and store never carries them.
_CREDENTIALS: dict[str, tuple[str, str]] = {}
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://)[^/?#]*@")


def stderr_line(text: str) -> None:
    """Write ``text`` as one line on stderr (its whitespace runs folded), never raising: a closed
    or broken stderr must not turn a message into a traceback."""
    line = " ".join(str(text).split())
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def count_of(number: int, noun: str) -> str:
    """``count_of(1, "sample")`` -> ``1 sample``; ``count_of(3, "sample")`` -> ``3 samples``."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def redact_url(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``, for messages."""
    return _USERINFO.sub(r"\1***@", url)


def normalize_url(url: str | None) -> str:
    """Validate a server URL (``http(s)://[user:pw@]host[:port][/prefix]``) and return it without a trailing slash.

    Credentials in the URL are taken out (and later sent as Basic auth by ``http_get_bytes``):
    the URL returned, and every message, never contains the password. Raises ``ValueError`` with
    a readable message for anything else.
    """
    if url is None:  # not given: the environment's (an empty RAFTCTL_URL counts as unset), or the default
        url = os.environ.get(URL_ENV, "").strip() or DEFAULT_URL
    elif not url.strip():  # given, but empty (a script's unset variable): never a silent default
        raise ValueError("the URL is empty: give http://HOST[:PORT], or leave --url out for "
                         f"${URL_ENV} or {DEFAULT_URL}")
    url = url.strip()
    shown = repr(redact_url(url))
    if any(ch.isspace() for ch in url):
        raise ValueError(f"{shown} is not a valid URL (it contains whitespace)")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{shown} is not a valid server URL: expected http://HOST[:PORT] or https://HOST[:PORT]")
    if not parts.hostname:
        raise ValueError(f"{shown} is not a valid server URL: the host is missing")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{shown} is not a valid server URL: the port must be a number from 1 to 65535") from None
    if port == 0:
        raise ValueError(f"{shown} is not a valid server URL: the port must be a number from 1 to 65535")
    if parts.query or parts.fragment:
        raise ValueError(f"{shown} is not a valid server URL: drop the '?query' or '#fragment'")
    endpoint = re.search(r"/(api(/[^/]*)*|metrics|openapi\.json)/?$", parts.path)
    if endpoint is not None:  # a path is a proxy's prefix; an endpoint of ours is a mistake
        raise ValueError(f"{shown} names an endpoint ({endpoint.group(0)}): give the server's base URL, "
                         f"http://HOST[:PORT][/prefix], and raftctl asks for the endpoints itself")
    base, credentials = _split_credentials(url)
    base = base.rstrip("/")
    if credentials is not None:
        _CREDENTIALS[base] = credentials
    return base


def _split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """(url without userinfo, (user, password) or None); the parts are percent-decoded."""
    from urllib.parse import unquote

    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    return parts._replace(netloc=hostport).geturl(), (unquote(user), unquote(password))


def http_get_bytes(base_url: str, path: str, timeout: float = HTTP_TIMEOUT_S) -> tuple[int, bytes]:
    """GET ``base_url + path``; return (status, body).

    Raises ``ServerUnreachable`` when there is no answer and ``BadAnswer`` for an HTTP error
    status other than 503 (which /api/health uses for UNHEALTHY). Credentials from the URL go
    in an Authorization header and never into a message.
    """
    import base64
    import http.client
    import urllib.error
    import urllib.request

    from raftctl import __version__

    base_url, credentials = _split_credentials(base_url)
    credentials = credentials or _CREDENTIALS.get(base_url.rstrip("/"))
    shown = redact_url(base_url)
    url = base_url + path
    headers = {"Accept": "application/json", "User-Agent": f"raftctl/{__version__}"}
    if credentials is not None:
        token = base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {token}"
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        body = err.read() if err.fp is not None else b""
        if err.code == 503:
            return err.code, body
        detail = _error_detail(body) or err.reason
        if err.code == 404 and "try /api/status" in str(detail):  # a node's own API (its 404 says so)
            detail = (f"{detail}. This is a raftctl node's HTTP API, not a dashboard: watch its cluster with "
                      f"'raftctl serve --source raftctl:{shown}', or give the dashboard 'cluster up' printed")
        raise BadAnswer(f"{shown + path} answered HTTP {err.code}: {detail}") from None
    except urllib.error.URLError as err:
        raise ServerUnreachable(f"cannot reach {shown}: {_reason_text(err.reason)}") from None
    except TimeoutError:
        raise ServerUnreachable(f"cannot reach {shown}: no answer within {round(timeout, 2):g} s") from None
    except http.client.RemoteDisconnected as err:  # closed before answering: no answer, not a bad one
        raise ServerUnreachable(f"cannot reach {shown}: {_reason_text(err)}") from None
    except http.client.HTTPException as err:  # it answered, but not in HTTP (another service on the port)
        said = " ".join(str(err).split())[:60]
        raise BadAnswer(f"{shown + path} did not answer in HTTP ({type(err).__name__}"
                        f"{': ' + repr(said) if said else ''}): is this a raftctl server?") from None
    except (OSError, ValueError) as err:  # ValueError: http.client refusing a malformed URL
        raise ServerUnreachable(f"cannot reach {shown}: {_reason_text(err)}") from None


def page_refresh_seconds(collection_interval: float) -> float:
    """How often the dashboard page asks for news: every sample, at least every second, at most
    every 5 s (at the old fixed 5 s a 1 s fault never reached the cards at a 1 s interval)."""
    return min(5.0, max(1.0, float(collection_interval)))


def replay_state(base_url: str, timeout: float = HTTP_TIMEOUT_S) -> dict[str, Any] | None:
    """``/api/replay``'s answer (with its ``file``) when ``base_url`` is a ``raftctl replay``
    server, else None (a live server has no such endpoint, or it cannot be asked)."""
    try:
        state = http_get_json(base_url, "/api/replay", timeout)
    except CliError:
        return None
    if not isinstance(state, dict) or not isinstance(state.get("file"), str):
        return None
    return state


def replay_banner(base_url: str, timeout: float = HTTP_TIMEOUT_S) -> str | None:
    """"REPLAY of FILE: ..." when ``base_url`` is a ``raftctl replay`` server (it answers
    ``/api/replay``; a live server has none), else None: its samples are a recording's, which
    ``summary`` and ``watch`` must not pass off as a live cluster."""
    import time

    state = replay_state(base_url, timeout)
    if state is None:
        return None
    parts = [f"REPLAY of {state['file']}"]
    runs, run = state.get("runs"), state.get("run")
    if isinstance(runs, int) and runs > 1 and isinstance(run, int):
        parts.append(f"run {run} of {runs}")
    index, samples = state.get("index"), state.get("samples")
    if isinstance(index, int) and isinstance(samples, int):
        parts.append(f"sample {index + 1} of {samples}")
    stamp = state.get("timestamp")
    if isinstance(stamp, (int, float)) and not isinstance(stamp, bool):
        parts.append("recorded " + time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)))
    if state.get("ended") is True:
        parts.append("ended")
    elif state.get("paused") is True:
        parts.append("paused")
    return ", ".join(parts) + ": not a live cluster"


def http_get_json(base_url: str, path: str, timeout: float = HTTP_TIMEOUT_S) -> Any:
    """GET ``base_url + path`` and decode the JSON body (``BadAnswer`` if it is not JSON)."""
    import orjson

    _status, body = http_get_bytes(base_url, path, timeout)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadAnswer(f"{redact_url(base_url) + path} did not answer with JSON (is this a raftctl server?)") from None


def _reason_text(reason: Any) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    text = str(reason)
    return text or reason.__class__.__name__


def _error_detail(body: bytes) -> str:
    try:
        import orjson

        doc = orjson.loads(body)
    except ValueError:  # orjson.JSONDecodeError
        return ""
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        return doc["error"]
    return ""


def fetch_summary(base_url: str, timeout: float = HTTP_TIMEOUT_S) -> dict[str, Any]:
    """GET /api/summary and check it has the shape of the sample document."""
    doc = http_get_json(base_url, "/api/summary", timeout)
    check_summary(doc, redact_url(base_url) + "/api/summary")
    return doc


def check_summary(doc: Any, where: str) -> None:
    """Raise ``BadAnswer`` unless ``doc`` looks like the collector's sample document."""
    if not isinstance(doc, dict):
        raise BadAnswer(f"{where} did not answer with a summary document")
    if "cluster" not in doc:
        # a raftctl server without a sample answers 503 {"error": "no sample collected yet"};
        # any other object is some other server's answer
        if isinstance(doc.get("error"), str) and "no sample" in doc["error"]:
            raise BadAnswer(f"{where} has no sample yet (the collector has not run); try again in a second")
        raise BadAnswer(f"{where} did not answer with a summary document (is this a raftctl server?)")
    for key, kind in (("cluster", dict), ("performance", dict), ("nodes", dict)):
        if not isinstance(doc.get(key), kind):
            raise BadAnswer(f"{where} answered a document without a valid {key!r} section")


def fetch_history(base_url: str, duration: float, timeout: float = HTTP_TIMEOUT_S) -> list[dict[str, Any]]:
    """GET /api/metrics/history; accepts a bare list or an object with a ``samples`` list."""
    doc = http_get_json(base_url, f"/api/metrics/history?duration={duration:g}", timeout)
    samples = doc.get("samples") if isinstance(doc, dict) else doc
    if not isinstance(samples, list):
        return []
    return [s for s in samples if isinstance(s, dict) and isinstance(s.get("cluster"), dict)]


def write_json(doc: Any) -> None:
    """Write ``doc`` as JSON followed by a newline on stdout (the data stream)."""
    import orjson

    sys.stdout.flush()
    sys.stdout.buffer.write(orjson.dumps(doc) + b"\n")
    sys.stdout.buffer.flush()


def write_raw_json(body: bytes) -> None:
    """Write an already-serialised JSON body unchanged (plus a newline) on stdout."""
    sys.stdout.flush()
    sys.stdout.buffer.write(body.rstrip(b"\n") + b"\n")
    sys.stdout.buffer.flush()


class _TrailingSpacesCut:
    """A text stream that writes each line without the spaces rich pads it with to the width
    (a table cell, a grid row): piped or redirected output carries no trailing blanks."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._partial = ""

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        if lines:
            self._stream.write("\n".join(line.rstrip(" ") for line in lines) + "\n")
        return len(text)

    def flush(self) -> None:
        if self._partial:
            self._stream.write(self._partial)
            self._partial = ""
        self._stream.flush()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "utf-8"


def stdout_console():  # -> rich.console.Console
    """Console for data on stdout; rich itself honours NO_COLOR and non-TTY output."""
    from rich.console import Console

    if not sys.stdout.isatty():
        return Console(file=_TrailingSpacesCut(sys.stdout), highlight=False, soft_wrap=False)  # type: ignore[arg-type]
    return Console(highlight=False, soft_wrap=False)


def stderr_console():  # -> rich.console.Console
    """Console for progress and diagnostics on stderr."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


# -- Typer option validators (callback=...) --------------------------------------------------
# A float option with min=/max= is range-checked while it is converted, so "nan" gets a range
# message; give such options no min/max and one of these callbacks instead.


def finite_float(name: str, minimum: float | None = None, maximum: float | None = None) -> Callable[[Any], Any]:
    """A callback for a float option: refuses NaN ("not a number"), ±inf ("not finite"), then the range.

    ``name`` is the option as the user types it (``"--interval"``); ``None`` passes through.
    """

    def check(value: Any) -> Any:
        import typer

        if value is None:
            return None
        if isinstance(value, float) and math.isnan(value):
            raise typer.BadParameter(f"{value!r} is not a number", param_hint=f"'{name}'")
        if isinstance(value, float) and math.isinf(value):
            raise typer.BadParameter(f"{value!r} is not a finite number", param_hint=f"'{name}'")
        if minimum is not None and maximum is not None and not minimum <= value <= maximum:
            raise typer.BadParameter(f"{value:g} is not between {minimum:g} and {maximum:g}", param_hint=f"'{name}'")
        if minimum is not None and value < minimum:
            raise typer.BadParameter(f"{value:g} is less than {minimum:g}", param_hint=f"'{name}'")
        if maximum is not None and value > maximum:
            raise typer.BadParameter(f"{value:g} is more than {maximum:g}", param_hint=f"'{name}'")
        return value

    return check


def valid_host(value: Any) -> Any:
    """A callback for ``--host``: an IPv4/IPv6 address or a host name (``[::1]`` is taken as ``::1``).

    ``999.1.1.1`` is refused here as "not a valid IPv4 address", before anything is started.
    """
    import typer

    from raftctl.dashboard.server import validate_listen_host

    if value is None:
        return None
    host = value.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return validate_listen_host(host)
    except ValueError as err:
        raise typer.BadParameter(str(err).removeprefix("host "), param_hint="'--host'") from None


def build_sinks(specs: list[str] | None) -> list[Any]:
    """Build sinks from spec strings; a bad spec becomes ``ValueError`` naming the spec."""
    if not specs:
        return []
    from raftctl.sinks.base import build_sink

    sinks = []
    for spec in specs:
        sinks.append(build_sink(spec))
    return sinks


MAX_SHARDS = 64
# Tickers the workload knows prices for come first, so a 1-shard-like feel is kept.
_SHARD_TICKERS = ("BTC", "ETH", "SOL", "ADA", "DOT", "XRP", "LTC", "AVAX", "LINK", "ATOM", "XLM", "ALGO")
SYMBOLS_PER_SHARD = 2


def sharded_symbols(shards: int) -> tuple[list[str], dict[str, int]]:
    """Symbols for a workload over ``shards`` Raft groups and a round-robin shard map.

    Every shard gets ``SYMBOLS_PER_SHARD`` symbols, so every group receives orders (a stable
    hash over a few symbols would leave some groups idle). ValueError outside 1..MAX_SHARDS.
    """
    if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= MAX_SHARDS:
        raise ValueError(f"shards must be an integer from 1 to {MAX_SHARDS}, got {shards!r}")
    count = shards * SYMBOLS_PER_SHARD
    symbols = [f"{_SHARD_TICKERS[i]}-USD" if i < len(_SHARD_TICKERS) else f"TKN{i:03d}-USD"
               for i in range(count)]
    return symbols, {symbol: i % shards for i, symbol in enumerate(symbols)}


def build_trading_cluster(nodes: int, seed: int, shards: int, rate: float) -> Any:
    """A cluster whose (shard) leaders are elected, with a seeded trading load when ``rate`` > 0.

    With shards, the load trades two symbols per shard, mapped round-robin, so every shard works.
    """
    from raftctl.runtime.cluster import Cluster
    from raftctl.core.workload import Workload

    workload_options: dict[str, Any] = {}
    if shards > 1:
        symbols, shard_map = sharded_symbols(shards)
        cluster = Cluster(node_count=nodes, seed=seed, shards=shards, shard_map=shard_map)
        cluster.run_until(lambda: None not in cluster.shard_leaders().values(), timeout=10.0)
        workload_options["symbols"] = symbols
    else:
        cluster = Cluster(node_count=nodes, seed=seed)
        cluster.run_until(lambda: cluster.leader_id is not None, timeout=10.0)
    if rate > 0:
        Workload(cluster, rate=rate, seed=seed, **workload_options)
    return cluster


def plain_metavars(command: Any) -> Any:
    """Give every option of ``command`` (and its subcommands) a plain placeholder for --help.

    Typer's help shows a type tag such as ``<bool>`` or ``<int range>`` for any option without a
    metavar. Here a flag gets none, a choice its values (``none|demo|random``) and any other
    option its name in capitals (``--port PORT``). Options that declare a metavar keep it.
    """
    seen: set[int] = set()

    def fix(param: Any) -> None:
        if getattr(param, "param_type_name", None) == "argument" and hasattr(param, "display_type_rich"):
            # an argument is shown by its name (its metavar); the type tag after it is the noise
            param.display_type_rich = lambda ctx: None
        if param is None or getattr(param, "metavar", "") is not None:
            return
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            param.metavar = ""
            return
        choices = getattr(getattr(param, "type_descriptor", None), "choices", None) \
            or getattr(getattr(param, "type", None), "choices", None)
        if choices:
            param.metavar = "|".join(str(getattr(choice, "value", choice)) for choice in choices)
        else:
            param.metavar = str(param.name or "value").upper()

    def walk(cmd: Any) -> None:
        if id(cmd) in seen:
            return
        seen.add(id(cmd))
        for param in getattr(cmd, "params", ()):
            fix(param)
        make_help_option = getattr(cmd, "get_help_option", None)
        if callable(make_help_option):
            # the help option is built on first use; give it no placeholder when it is
            def get_help_option(ctx: Any, _make: Callable[[Any], Any] = make_help_option) -> Any:
                option = _make(ctx)
                fix(option)
                return option

            cmd.get_help_option = get_help_option
        for sub in (getattr(cmd, "commands", None) or {}).values():
            walk(sub)

    walk(command)
    return command

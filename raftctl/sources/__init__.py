"""Source plugins: where the collector's reports come from (``raftctl serve --source SPEC``).

A spec is ``name`` or ``name:argument`` (``sim``, ``etcd:http://127.0.0.1:2379,...``). Each name
is an entry point in the group ``raftctl.sources`` whose object is a factory
``factory(argument: str, **context) -> Source`` (see ``raftctl/core/source.py``); ``context``
carries what the caller has (``cluster=`` for ``sim``, ``timeout=`` for network sources). A
third-party package adds a source by declaring such an entry point.
"""

from __future__ import annotations

import re
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from raftctl.core.source import Source, SourceError

__all__ = ["ENTRY_POINT_GROUP", "SourceError", "build_source", "parse_source_spec", "source_names"]

ENTRY_POINT_GROUP = "raftctl.sources"

_NAME = re.compile(r"[a-z][a-z0-9_-]*\Z")


def _entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)
    return found


def source_names() -> list[str]:
    """Names of the registered sources, sorted (imports nothing)."""
    return sorted(_entry_points())


def parse_source_spec(spec: Any) -> tuple[str, str]:
    """``"etcd:http://a,http://b"`` -> ``("etcd", "http://a,http://b")``; SourceError if malformed."""
    if not isinstance(spec, str) or not spec.strip():
        raise SourceError(f"a source spec must be a non-empty string like 'sim' or "
                          f"'etcd:http://127.0.0.1:2379', got {spec!r}")
    name, _, arg = spec.strip().partition(":")
    name = name.strip().lower()
    if not _NAME.match(name):
        raise SourceError(f"bad source spec {spec!r}: the name before ':' must be a word like 'sim' or 'etcd'")
    return name, arg.strip()


def build_source(spec: str, **context: Any) -> Source:
    """Build the source a spec names; SourceError (one line, naming the known sources) otherwise."""
    name, arg = parse_source_spec(spec)
    registry = _entry_points()
    ep = registry.get(name)
    if ep is None:
        known = ", ".join(sorted(registry)) or "(none registered: is raftctl installed?)"
        raise SourceError(f"unknown source {name!r} in {spec!r}; available sources: {known}")
    try:
        factory = ep.load()
    except Exception as exc:  # noqa: BLE001 - a broken plugin is a configuration error
        raise SourceError(f"source {name!r} cannot be loaded from {ep.value}: {exc}") from exc
    try:
        source = factory(arg, **context)
    except SourceError:
        raise
    except (ValueError, TypeError, OSError) as exc:
        raise SourceError(f"source {spec!r}: {exc}") from exc
    if not isinstance(source, Source):
        raise SourceError(f"source {name!r} ({ep.value}) did not build a Source")
    return source

"""Who is in an etcd cluster: its member list (``POST /v3/cluster/member/list``).

:func:`discover` reads it from the seeds when the source is built. While the source runs an
operator may add, remove or promote members; :func:`read_membership` reads the list again from
one member (the source asks when a report says the list changed, see ``etcd.py``).
:func:`membership_from` turns a list into the voters the source polls, by name, and the learners
it names but does not poll: a learner does not vote, so counted as a member it would move the
majority. A voter added but not started yet has no name and no client URL: it is named by its
hex ID and polled as DOWN until it starts (then it has its own name).
"""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from raftctl.core.source import SourceError
from raftctl.sources.etcd_http import Connection, parse_urls
from raftctl.sources.members import Silent

__all__ = ["EtcdMemberInfo", "Membership", "discover", "membership_from", "read_membership"]


@dataclass(frozen=True)
class EtcdMemberInfo:
    name: str
    member_id: int
    url: str  # "" for a voter added but not started yet


@dataclass(frozen=True)
class Membership:
    """The voters (in the list's order) and the learners (``(id, name)`` pairs) of one list."""

    voters: tuple[EtcdMemberInfo, ...]
    learners: tuple[tuple[int, str], ...] = ()
    unstarted: frozenset[int] = frozenset()  # added but not started: no name, no client URL yet

    def ids(self) -> frozenset[int]:
        """Every member's ID, learners too (what a leader's ``progress`` names)."""
        return frozenset([m.member_id for m in self.voters] + [member_id for member_id, _ in self.learners])


def _member_list(url: str, timeout: float) -> tuple[int | None, list[Any]]:
    """``(id of the member that answered, members)`` from one member; SourceError with one line."""
    conn = Connection(url)
    try:
        body = conn.request("POST", "/v3/cluster/member/list", time.monotonic() + timeout, b"{}")
    except Silent as silent:
        if silent.reason == "error" and "HTTP" in silent.detail:
            raise SourceError(f"{url} does not look like an etcd member: POST /v3/cluster/member/list "
                              f"answered {silent.detail.split('answered ')[-1]}") from None
        raise SourceError(f"cannot reach etcd at {url}: {silent.detail}") from None
    finally:
        conn.close()
    try:
        doc = json.loads(body)
        members = doc["members"]
        answering = doc.get("header", {}).get("member_id")
        if not isinstance(members, list):
            raise TypeError("members is not a list")
        return (None if answering is None else int(answering)), members
    except (ValueError, KeyError, TypeError, AttributeError):
        raise SourceError(f"{url} does not look like an etcd member: its member list answer "
                          f"is not etcd's (starts {body[:60]!r})") from None


def membership_from(listing: Sequence[Any], urls: Mapping[int, str]) -> Membership:
    """The voters and learners of one member list; ``urls`` (member ID -> URL) beats the
    advertised client URL (a seed the user gave, or the URL the source already polls).
    SourceError for an entry without an ID, or a started voter with no http:// client URL."""
    voters: list[EtcdMemberInfo] = []
    learners: list[tuple[int, str]] = []
    unstarted: set[int] = set()
    names: set[str] = set()
    for raw in listing:
        try:
            member_id = int(raw["ID"])
        except (KeyError, TypeError, ValueError):
            raise SourceError(f"the etcd member list has an entry without an ID: {raw!r}"[:200]) from None
        name = str(raw.get("name") or "") or format(member_id, "x")  # not started yet: no name
        if name in names:
            name = f"{name}-{member_id:x}"
        names.add(name)
        if not raw.get("name") and not raw.get("clientURLs"):
            unstarted.add(member_id)
        if raw.get("isLearner") is True:
            learners.append((member_id, name))
            continue
        url = urls.get(member_id)
        if not url:
            advertised = [u for u in raw.get("clientURLs") or [] if isinstance(u, str) and u.startswith("http://")]
            if advertised:
                url = parse_urls(advertised[0])[0]
            elif member_id in unstarted:
                url = ""  # added but not started yet: a voter all the same, DOWN until it starts
            else:
                raise SourceError(f"etcd member {name} advertises no http:// client URL "
                                  f"({', '.join(map(str, raw.get('clientURLs') or [])) or 'none'}); "
                                  f"raftctl reads etcd over plain http")
        voters.append(EtcdMemberInfo(name, member_id, url))
    voters.sort(key=lambda m: _natural(m.name))  # etcd lists by ID: etcd1, etcd2, ..., etcd10 reads better
    return Membership(tuple(voters), tuple(learners), frozenset(unstarted))


def _natural(name: str) -> list[Any]:
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)]


def _try(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except SourceError as exc:
        return exc


def discover(seeds: list[str], timeout: float) -> Membership:
    """The membership as the first seed that answers lists it; a seed's URL beats the advertised one."""
    errors: list[str] = []
    listing: list[Any] | None = None
    seed_of: dict[int, str] = {}
    with ThreadPoolExecutor(min(8, len(seeds))) as pool:
        results = list(pool.map(lambda u: _try(_member_list, u, timeout), seeds))
    for url, result in zip(seeds, results, strict=True):
        if isinstance(result, SourceError):
            errors.append(str(result))
            continue
        answering, members = result
        if answering is not None:
            seed_of.setdefault(answering, url)
        if listing is None:
            listing = members
    if listing is None:
        if len(errors) == 1:
            raise SourceError(errors[0])
        raise SourceError("no etcd member answered: " + "; ".join(errors))
    return membership_from(listing, seed_of)


def read_membership(candidates: Sequence[str], urls: Mapping[int, str], timeout: float) -> Membership:
    """The membership as the first of ``candidates`` (client URLs, the leader's first) that
    answers lists it, each asked under ``timeout``; SourceError naming why when none does."""
    errors: list[str] = []
    for url in candidates:
        try:
            answering, listing = _member_list(url, timeout)
        except SourceError as exc:
            errors.append(str(exc))
            continue
        known = dict(urls)
        if answering is not None:
            known.setdefault(answering, url)
        return membership_from(listing, known)
    raise SourceError("no etcd member answered the member list: " + "; ".join(errors or ["none to ask"]))
